//! Prune (format-spec §10.4–§10.6): the maintenance lock, the sweep of due marks and
//! the mark of unreferenced packs, planned first and then carried out. It deletes only what a
//! mark condemned after the grace period and the waited sessions have passed, and never on the
//! word of a listing alone. Prints nothing; the CLI renders plans and reports.
//!
//! [`lock`] holds the maintenance lock, [`marks`] reads and writes marks and waits, [`plan`]
//! decides from the snapshots what to sweep, mark and repack, [`execute`] carries a plan out.

mod copies;
mod execute;
mod lock;
mod marks;
mod plan;

pub use execute::execute;
pub use lock::{backend_now, PruneLock};
pub use plan::{plan, PackUse};

use crate::error::{Error, Override, Result};
use crate::id::{BlobId, BlobKind, IndexId, PackId, SnapshotId};
use crate::index::IndexPack;
use crate::lease;
use crate::repository::{ReadRepository, Repository};
use crate::time::Time;
use serde::Serialize;

/// The oldest writer protocol that honours prune marks (format-spec §10.3, P6).
pub const MIN_WRITER_FOR_PRUNE: u32 = 1;

/// Tunables of a prune run.
#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// Repack a pack when the unused share of its blob bytes exceeds this (0.0–1.0).
    pub max_unused: f64,
    /// At most this many bytes of packs are repacked in one run.
    pub max_repack_size: u64,
    /// How long a mark waits before its sweep, in seconds.
    pub grace_secs: i64,
    /// Minimum age of an unindexed pack before it is condemned, in seconds.
    pub orphan_min_age_secs: i64,
    /// Proceed past the safety stops (listing and index disagree; an unusual share would go).
    pub force: bool,
    /// Share of the pack bytes above which a sweep stops unless forced.
    pub max_delete_share: f64,
    /// Validity of this run's maintenance lock, in seconds.
    pub lock_duration_secs: u64,
    /// Validity assumed for a writer lease object past its backend time, in seconds
    /// (`duration_secs` + the skew allowance of §10.1). Tests lower it to simulate time passing.
    pub lease_timeout_secs: i64,
    /// Take the maintenance lock even when another run seems to hold it (after a crash on
    /// another host; only when no other prune runs).
    pub break_lock: bool,
    /// Set (by a signal handler) to stop between steps; every step is idempotent, so the next
    /// run finishes the work (P5).
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Repack partly used packs at all (off: only whole unused packs are condemned, and no pack is
    /// read, which suits repositories whose `data/` lives in an archive tier).
    pub repack: bool,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            max_unused: 0.05,
            max_repack_size: u64::MAX,
            grace_secs: 24 * 3600,
            orphan_min_age_secs: 3600,
            force: false,
            max_delete_share: 0.5,
            lock_duration_secs: lease::LOCK_DURATION_SECS,
            lease_timeout_secs: (lease::LEASE_DURATION_SECS + lease::LEASE_SKEW_SECS) as i64,
            break_lock: false,
            cancel: None,
            repack: true,
        }
    }
}

/// A pack and its stored size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PackRef {
    /// `data` or `tree`.
    pub kind: BlobKind,
    /// The pack.
    pub id: PackId,
    /// Stored size in bytes.
    pub size: u64,
}

/// What the sweep of the due marks will do.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SweepPlan {
    /// The marks swept (their suffixes).
    pub marks: Vec<String>,
    /// Packs deleted.
    pub delete: Vec<PackRef>,
    /// Condemned packs kept because a snapshot still needs them or they were indexed since.
    pub rescued: Vec<PackRef>,
    /// Index files replaced by new ones.
    pub old_index: Vec<IndexId>,
    /// Bytes returned.
    pub delete_bytes: u64,
    /// Copies outside the condemned packs read and verified before their condemned twins are
    /// deleted (format-spec §10.6 sweep step 2).
    pub verified_copies: u64,
    /// Index entries outside the condemned packs that did not give the blob they claim (forged
    /// by a write-only key, damaged, or in an archive tier); each keeps its condemned twins.
    pub bad_copies: Vec<BadCopy>,
    /// The packs the new index files describe, each with the BLAKE3 of its index entry as the
    /// plan read it: the sweep reads the old files again, one at a time, and refuses an entry
    /// that changed (the plan holds no blob list but those of the condemned packs).
    #[serde(skip)]
    keep: std::collections::BTreeMap<PackId, [u8; 32]>,
}

/// The BLAKE3 of a pack's index entry (its encoding), as [`SweepPlan`] records the kept ones.
fn entry_digest(ip: &IndexPack) -> [u8; 32] {
    *blake3::hash(&postcard::to_allocvec(ip).unwrap_or_default()).as_bytes()
}

/// An indexed location that did not give the blob it claims when the sweep read it.
#[derive(Clone, Debug, Serialize)]
pub struct BadCopy {
    /// `data` or `tree`.
    pub kind: BlobKind,
    /// The blob.
    pub blob: BlobId,
    /// The pack the index entry points into.
    pub pack: PackId,
    /// Why it failed (read, open or verify).
    pub error: String,
}

/// A pack to repack.
#[derive(Clone, Debug, Serialize)]
pub struct Repack {
    /// The pack.
    pub pack: PackRef,
    /// Bytes of blobs still referenced.
    pub used_bytes: u64,
    /// Bytes of blobs nothing references.
    pub unused_bytes: u64,
    #[serde(skip)]
    entry: IndexPack,
    #[serde(skip)]
    used: Vec<usize>,
}

/// What the mark will record.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MarkPlan {
    /// Snapshots seen (the marked set).
    pub snapshots: Vec<SnapshotId>,
    /// Indexed packs no snapshot uses.
    pub unused: Vec<PackRef>,
    /// Stored packs no index names, old enough.
    pub orphans: Vec<PackRef>,
    /// Partly used packs to repack.
    pub repack: Vec<Repack>,
    /// Bytes the sweep of this mark will return (less what repacking writes again).
    pub reclaim_bytes: u64,
}

/// A mark that is not swept in this run, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Waiting {
    /// The mark's suffix.
    pub mark: String,
    /// Packs it condemns.
    pub packs: usize,
    /// Why it waits.
    pub reason: String,
    /// True when its wait object is missing and this run writes it.
    pub write_wait: bool,
    /// True when its wait object does not verify and this run replaces it.
    #[serde(skip)]
    pub replace_wait: bool,
}

/// The plan of one prune run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PrunePlan {
    /// The backend's time the plan was made at (the client's for a dry run).
    pub now: Time,
    /// Snapshots in the repository.
    pub snapshots: usize,
    /// Packs and their bytes in the repository (by listing).
    pub packs: usize,
    /// Bytes of all packs.
    pub pack_bytes: u64,
    /// Bytes of blobs no snapshot references (in indexed packs).
    pub unused_bytes: u64,
    /// The sweep of due marks.
    pub sweep: Option<SweepPlan>,
    /// Marks left for a later run.
    pub waiting: Vec<Waiting>,
    /// The new mark.
    pub mark: Option<MarkPlan>,
    /// Why no new mark is made, when none is.
    pub no_mark_reason: Option<String>,
    /// Things the operator should know.
    pub warnings: Vec<String>,
}

/// What a prune run did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    /// Packs deleted.
    pub deleted_packs: usize,
    /// Bytes deleted.
    pub deleted_bytes: u64,
    /// Index files replaced.
    pub replaced_index: usize,
    /// Packs rescued.
    pub rescued_packs: usize,
    /// Copies verified by the sweep before deleting their condemned twins.
    pub verified_copies: u64,
    /// Packs repacked.
    pub repacked_packs: usize,
    /// Blobs written again by the repack.
    pub repacked_blobs: u64,
    /// Packs skipped by the repack because they could not be read.
    pub repack_skipped: Vec<String>,
    /// The mark written, if any.
    pub marked: Option<String>,
    /// Packs it condemns.
    pub condemned: usize,
    /// Waits written for marks that lacked one.
    pub waits_written: usize,
}

pub(super) fn cancelled(opts: &PruneOptions) -> Result<()> {
    match &opts.cancel {
        Some(c) if c.load(std::sync::atomic::Ordering::Relaxed) => Err(Error::Interrupted),
        _ => Ok(()),
    }
}

/// Refuses prune on storage whose guarantees the protocol needs but lacks (format-spec §1.4,
/// §10.4), unless forced: without conditional create the maintenance lock cannot keep two prunes
/// apart; without consistent listings the lease listing after the mark may miss a new writer.
fn refuse_unsafe_storage(repo: &Repository, opts: &PruneOptions) -> Result<()> {
    let g = repo.backend().guarantees();
    let mut why = Vec::new();
    if !g.conditional_create {
        why.push(
            "it cannot create an object only if the name is free, so the maintenance lock cannot keep two prunes apart",
        );
    }
    if !g.consistent_list {
        why.push(
            "its listings may miss objects just written, so prune could miss a backup that started after its mark",
        );
    }
    if why.is_empty() || opts.force {
        return Ok(());
    }
    Err(Error::refused_unless(
        format!(
            "prune refuses to run on {}: {}. Nothing was changed. Safe to override only if one host alone ever prunes this repository and no backup runs during prune",
            repo.backend().location(),
            why.join("; ")
        ),
        Override::Force,
    ))
}

/// Runs prune: takes the lock, plans, and unless `dry_run` carries the plan out.
pub fn run(repo: &ReadRepository, opts: &PruneOptions, dry_run: bool) -> Result<(PrunePlan, Option<PruneReport>)> {
    if dry_run {
        return Ok((plan(repo, opts, Time::now())?, None));
    }
    repo.check_writer_version()?;
    refuse_unsafe_storage(repo, opts)?;
    let lock = PruneLock::acquire(repo, opts.lock_duration_secs, opts.break_lock)?;
    let p = plan(repo, opts, lock.taken_at())?;
    let r = execute(repo, opts, &p, &lock)?;
    lock.release()?;
    repo.ledger_record(crate::ledger::Event::Prune {
        packs_deleted: p.sweep.as_ref().map(|s| s.delete.iter().map(|d| d.id).collect()).unwrap_or_default(),
        bytes_returned: r.deleted_bytes,
    })?;
    Ok((p, Some(r)))
}
