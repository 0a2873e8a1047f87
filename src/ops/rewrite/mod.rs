//! `rewrite`: audited erasure (format-spec §8.4). For every snapshot given that holds a path
//! matching the patterns, a new snapshot without those paths: same time, host, user and the
//! sources that still hold something, the tags plus `rewritten`, `replaces` naming the old id
//! (the manifest rule of `tag`, [`crate::tag`]), and trees rewritten bottom-up ([`erase`]), every
//! unchanged subtree kept by id. Everything is planned (read, nothing written) before the first
//! write; each replacement is committed (packs → index → manifest) before its original is
//! deleted (`forget`), so a crash in between leaves both, and the next run finds the replacement
//! and finishes. One ledger entry records the request (reason, patterns, ids), never the erased
//! data. Prints nothing.

mod erase;

pub use erase::{Erased, Removed, MAX_LISTED};

use crate::error::{Error, Result};
use crate::filter::Patterns;
use crate::id::{BlobId, EntryId, SnapshotId};
use crate::ledger::{Event, Replaced};
use crate::repository::ReadRepository;
use crate::select::Listed;
use crate::snapshot::Snapshot;
use crate::tag::{commit_replacement, replacement};
use crate::trees::Rebuilt;
use crate::writer::{Writer, WriterOptions};
use erase::Erase;
use serde::Serialize;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The tag every rewritten snapshot carries (format-spec §8.4).
pub const TAG_REWRITTEN: &str = "rewritten";

/// What a rewrite does.
#[derive(Clone, Debug, Default)]
pub struct RewriteOptions {
    /// The patterns of the paths that go (the syntax of backup's `--exclude`, [`Patterns`]).
    pub excludes: Vec<String>,
    /// The request reference recorded in the ledger (a ticket number; never the data).
    pub reason: String,
    /// Delete each original once its replacement is committed.
    pub forget: bool,
    /// Plan and report; write and delete nothing.
    pub dry_run: bool,
}

/// One snapshot that holds a matching path, and what was done with it.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotRewrite {
    /// The snapshot.
    pub snapshot: SnapshotId,
    /// Its time (RFC 3339), host and source paths, to recognise it.
    pub time: String,
    /// Host.
    pub host: String,
    /// Source paths.
    pub paths: Vec<String>,
    /// The removed entries, the first [`MAX_LISTED`] in walk order.
    pub removed: Vec<Removed>,
    /// Entries removed in all (each the top of a removed subtree).
    pub entries: u64,
    /// Files removed, those inside removed directories included.
    pub files: u64,
    /// Bytes of file content removed (what the snapshot no longer restores; storage is freed
    /// only for chunks nothing else uses, after prune, docs/erasure.md).
    pub bytes: u64,
    /// Sources that held nothing else and leave the snapshot's `paths` and `sources`.
    pub sources_dropped: Vec<String>,
    /// The replacement written (none on a dry run, or when every source went).
    pub new: Option<SnapshotId>,
    /// True when the replacement was written by an earlier run (interrupted before it could
    /// delete the original or record the entry); nothing new is written then.
    pub already_replaced: bool,
    /// True when every source went: no replacement is written (the original goes with `forget`).
    pub emptied: bool,
    /// True when the original was deleted.
    pub forgotten: bool,
}

/// What a rewrite found and did.
#[derive(Clone, Debug, Serialize)]
pub struct RewriteReport {
    /// True when nothing was written.
    pub dry_run: bool,
    /// The request reference.
    pub reason: String,
    /// The patterns.
    pub patterns: Vec<String>,
    /// Snapshots looked at.
    pub examined: u64,
    /// The snapshots that hold a matching path.
    pub snapshots: Vec<SnapshotRewrite>,
    /// Files removed over all snapshots.
    pub files: u64,
    /// Bytes of file content removed over all snapshots.
    pub bytes: u64,
    /// The ledger entry recorded (none on a dry run or when nothing matched).
    pub ledger_entry: Option<EntryId>,
}

/// Compiles the patterns; none (or only empty ones) is a usage error.
pub fn patterns(excludes: &[String]) -> Result<Patterns> {
    let p = Patterns::new(excludes.iter().map(|p| (p.as_str(), false))).map_err(Error::Usage)?;
    if p.is_empty() {
        return Err(Error::Usage("rewrite needs at least one --exclude pattern (`/` alone names nothing)".into()));
    }
    Ok(p)
}

/// Rewrites each of `targets` that holds a path matching `opts.excludes` (format-spec §8.4).
/// `all` is every snapshot of the repository ([`crate::select::list_all`]): a replacement an
/// interrupted run already committed is found there and used instead of writing another.
pub fn rewrite(
    repo: &ReadRepository,
    targets: &[Listed],
    all: &[Listed],
    opts: &RewriteOptions,
) -> Result<RewriteReport> {
    let patterns = patterns(&opts.excludes)?;
    if !opts.dry_run {
        repo.check_writer_version()?;
    }
    // The plan: every target walked, nothing written.
    let mut planned = Rebuilt::new();
    let mut plan: Vec<(&Listed, BlobId, SnapshotRewrite)> = Vec::new();
    for l in targets {
        let (root, erased) = Erase { repo, patterns: &patterns, writer: None }.run(&l.snapshot.root(), &mut planned)?;
        if !erased.changed {
            continue;
        }
        let sources_dropped: Vec<String> = l
            .snapshot
            .sources()
            .iter()
            .map(|s| s.absolute_path())
            .filter(|p| covered(&patterns, p))
            .map(|p| String::from_utf8_lossy(&p).into_owned())
            .collect();
        let emptied = sources_dropped.len() == l.snapshot.sources().len();
        let entry = SnapshotRewrite {
            snapshot: l.id,
            time: l.snapshot.time().to_rfc3339(),
            host: l.snapshot.host().to_string(),
            paths: l.snapshot.display_paths(),
            removed: erased.items,
            entries: erased.entries,
            files: erased.files,
            bytes: erased.bytes,
            sources_dropped,
            new: None,
            already_replaced: false,
            emptied,
            forgotten: false,
        };
        plan.push((l, root, entry));
    }
    let mut report = RewriteReport {
        dry_run: opts.dry_run,
        reason: opts.reason.clone(),
        patterns: opts.excludes.clone(),
        examined: targets.len() as u64,
        files: plan.iter().map(|(_, _, e)| e.files).sum(),
        bytes: plan.iter().map(|(_, _, e)| e.bytes).sum(),
        snapshots: Vec::new(),
        ledger_entry: None,
    };
    if opts.dry_run {
        report.snapshots = plan.into_iter().map(|(_, _, e)| e).collect();
        return Ok(report);
    }
    let mut written = Rebuilt::new();
    let mut failed = None;
    for (l, root, mut entry) in plan {
        if let Err(e) = carry_out(repo, l, &root, all, &patterns, &mut written, opts.forget, &mut entry) {
            failed = Some(e);
            break;
        }
        report.snapshots.push(entry);
    }
    // The ledger entry (format-spec §13.3), after the work: the request, never the data. A run
    // that stopped on an error records what it did before it returns the error.
    if !report.snapshots.is_empty() {
        let replaced =
            report.snapshots.iter().filter_map(|e| e.new.map(|new| Replaced { old: e.snapshot, new })).collect();
        let removed = report.snapshots.iter().filter(|e| e.forgotten).map(|e| e.snapshot).collect();
        let event = Event::Rewrite { reason: opts.reason.clone(), patterns: opts.excludes.clone(), replaced, removed };
        match (repo.ledger_record(event), failed) {
            (Ok(id), None) => report.ledger_entry = Some(id),
            (Err(e), None) | (_, Some(e)) => return Err(e),
        }
    } else if let Some(e) = failed {
        return Err(e);
    }
    Ok(report)
}

/// Carries out the plan for one snapshot `l` (its rewritten tree is `root`): reuses an earlier
/// run's replacement, or writes one (none when every source went), then with `forget` deletes
/// `l`; records in `entry` what was done.
#[allow(clippy::too_many_arguments)]
fn carry_out(
    repo: &ReadRepository,
    l: &Listed,
    root: &BlobId,
    all: &[Listed],
    patterns: &Patterns,
    written: &mut Rebuilt<Erased>,
    forget: bool,
    entry: &mut SnapshotRewrite,
) -> Result<()> {
    if let Some(r) = earlier_replacement(l, root, all) {
        entry.new = Some(r);
        entry.already_replaced = true;
    } else if !entry.emptied {
        // Written and committed, then (with `forget`) the original deleted.
        entry.new = Some(write_replacement(repo, l, patterns, written, forget)?);
        entry.forgotten = forget;
        return Ok(());
    }
    if forget {
        repo.remove_snapshot(&l.id)?;
        entry.forgotten = true;
    }
    Ok(())
}

/// A rewritten snapshot already in storage that replaces `l` (an earlier run committed it, then
/// stopped): tagged `rewritten`, its last `replaces` entry `l`, of `l`'s time and host, with the
/// tree this run computed (`root`), and signed by an unrevoked full key unless `l` is a manifest a
/// rewrite does not sign (unattributed or flagged, format-spec §8.3). A manifest a write-only key
/// planted is never taken for one: no original is deleted on its word.
fn earlier_replacement(l: &Listed, root: &BlobId, all: &[Listed]) -> Option<SnapshotId> {
    let signs = l.eligible() && l.attribution.key_id().is_some();
    all.iter()
        .find(|r| {
            r.snapshot.replaces().last() == Some(&l.id)
                && r.snapshot.tags().iter().any(|t| t == TAG_REWRITTEN)
                && r.snapshot.root() == *root
                && r.snapshot.time() == l.snapshot.time()
                && r.snapshot.host() == l.snapshot.host()
                && (!signs || (r.eligible() && r.attribution.is_full_key()))
        })
        .map(|r| r.id)
}

/// Writes the replacement of `l`: its trees without the matching paths, then its manifest;
/// then, with `forget`, deletes `l`.
fn write_replacement(
    repo: &ReadRepository,
    l: &Listed,
    patterns: &Patterns,
    done: &mut Rebuilt<Erased>,
    forget: bool,
) -> Result<SnapshotId> {
    let writer =
        Writer::new(repo, WriterOptions { compression: repo.default_compression(), ..Default::default() }, "rewrite")?;
    let root = match (Erase { repo, patterns, writer: Some(&writer) }).run(&l.snapshot.root(), done) {
        Ok((root, _)) => root,
        Err(e) => {
            writer.abandon();
            return Err(e);
        }
    };
    let (mut snap, sign) = replacement(l, repo.key_id());
    rewritten_fields(&mut snap, root, patterns);
    commit_replacement(repo, writer, &l.id, &snap, sign, forget)
}

/// The fields a rewrite changes (format-spec §8.4): the root, the sources (and `paths`) that
/// still hold something, the `rewritten` tag, the program.
fn rewritten_fields(snap: &mut Snapshot, root: BlobId, patterns: &Patterns) {
    let v = snap.v3_mut();
    v.root = root;
    v.sources.retain(|s| !covered(patterns, &s.absolute_path()));
    v.paths.retain(|p| !covered(patterns, p));
    if !v.tags.iter().any(|t| t == TAG_REWRITTEN) {
        v.tags.push(TAG_REWRITTEN.to_string());
    }
    v.program = format!("cairn {} (rewrite)", env!("CARGO_PKG_VERSION"));
}

/// True when the source at `abs` (an absolute path, as bytes) is erased whole.
fn covered(patterns: &Patterns, abs: &[u8]) -> bool {
    patterns.matches_or_ancestor(Path::new(OsStr::from_bytes(abs)))
}
