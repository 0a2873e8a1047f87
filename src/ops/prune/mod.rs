//! Prune (DESIGN §7, format-spec §10.4–§10.6): the maintenance lock, the sweep of due marks and
//! the mark of unreferenced packs, planned first and then carried out. It deletes only what a
//! mark condemned after the grace period and the waited sessions have passed, and never on the
//! word of a listing alone. Prints nothing; the CLI renders plans and reports.

use crate::cache::Location;
use crate::error::{Error, Result};
use crate::id::{pack_path, BlobId, BlobKind, IndexId, PackId, SnapshotId};
use crate::index::IndexPack;
use crate::lease::{self, MaintenanceLock, PruneMark, PruneWait};
use crate::repository::{hostname, Repository};
use crate::tree::{Content, NodeKind, Time, TreeBlob};
use crate::units::{human_bytes, human_secs};
use crate::writer::{Writer, WriterOptions};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

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
    #[serde(skip)]
    keep: Vec<IndexPack>,
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

/// The backend's current time: the stamp of a fresh probe object (format-spec §10.6).
pub fn backend_now(repo: &Repository) -> Result<Time> {
    let path = format!("prune/clock-{}", hex::encode(crate::crypto::random_32()));
    let b = repo.backend();
    b.write_new(&path, b"t")?;
    let info = b.stat(&path);
    let _ = b.delete(&path);
    match info?.and_then(|i| i.modified) {
        Some(t) => Ok(t),
        None => Err(Error::Invalid(format!(
            "{}: the storage reports no modification times; prune needs them to measure the grace period",
            b.location()
        ))),
    }
}

fn pid_alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks whether the process exists.
    let r = unsafe { libc::kill(pid as i32, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The maintenance lock held by this run (format-spec §10.4).
pub struct PruneLock<'r> {
    repo: &'r Repository,
    n: u64,
    holder: [u8; 32],
    stamped: Time,
    duration: u64,
    released: bool,
}

impl<'r> PruneLock<'r> {
    /// Takes the lock, or fails with [`Error::Lease`] naming who holds it.
    pub fn acquire(repo: &'r Repository, duration: u64, break_lock: bool) -> Result<Self> {
        let b = repo.backend();
        let now = backend_now(repo)?;
        let links = Self::links(repo)?;
        let next = match links.last() {
            None => 0,
            Some((n, info)) => {
                let path = lease::lock_path(*n);
                let bytes = b.read(&path)?;
                match lease::decode_lock(repo.keys(), &path, &bytes) {
                    Err(e) if !break_lock => {
                        return Err(Error::Lease(format!(
                            "the maintenance lock {path} does not verify ({e}); make sure no prune runs, then delete it"
                        )))
                    }
                    Err(_) => {}
                    Ok(MaintenanceLock::V1 { released, host, pid, duration_secs, client_time, .. }) => {
                        let stamped = info.unwrap_or(client_time);
                        let expired = stamped.secs.saturating_add(duration_secs as i64) <= now.secs;
                        let dead = host == hostname() && !pid_alive(pid);
                        if !released && !expired && !dead && !break_lock {
                            return Err(Error::Lease(format!(
                                "another prune holds the repository (host {host}, pid {pid}, since {}, lock {path})",
                                stamped.to_rfc3339()
                            )));
                        }
                    }
                }
                n + 1
            }
        };
        let holder = crate::crypto::random_32();
        let path = lease::lock_path(next);
        let link = MaintenanceLock::V1 {
            holder,
            host: hostname(),
            pid: std::process::id(),
            duration_secs: duration,
            released: false,
            client_time: Time::now(),
        };
        b.write_new(&path, &lease::encode_lock(repo.keys(), &path, &link)).map_err(|e| {
            if e.is_exists() {
                Error::Lease(format!("another prune took the maintenance lock ({path}) at the same moment"))
            } else {
                e
            }
        })?;
        if Self::links(repo)?.iter().any(|(n, _)| *n > next) {
            return Err(Error::Lease("another prune took the maintenance lock at the same moment".into()));
        }
        let stamped = b.stat(&path)?.and_then(|i| i.modified).unwrap_or(now);
        Ok(PruneLock { repo, n: next, holder, stamped, duration, released: false })
    }

    fn links(repo: &Repository) -> Result<Vec<(u64, Option<Time>)>> {
        let mut v: Vec<(u64, Option<Time>)> = repo
            .backend()
            .list("prune/")?
            .into_iter()
            .filter_map(|o| lease::parse_lock_path(&o.path).map(|n| (n, o.modified)))
            .collect();
        v.sort_by_key(|(n, _)| *n);
        Ok(v)
    }

    /// Fails unless the lock is still ours and valid by the backend's time; called before every
    /// destructive step.
    pub fn ensure(&self) -> Result<Time> {
        let now = backend_now(self.repo)?;
        // Leave a margin for the step about to run.
        if now.secs.saturating_add(60) >= self.stamped.secs.saturating_add(self.duration as i64) {
            return Err(Error::Lease(format!(
                "the maintenance lock expired (taken {}); stopped before deleting more",
                self.stamped.to_rfc3339()
            )));
        }
        if Self::links(self.repo)?.iter().any(|(n, _)| *n > self.n) {
            return Err(Error::Lease("the maintenance lock was taken over; stopped".into()));
        }
        Ok(now)
    }

    /// The backend time the lock was taken at.
    pub fn taken_at(&self) -> Time {
        self.stamped
    }

    /// Releases the lock: a released link above ours, then the older links go.
    pub fn release(mut self) -> Result<()> {
        self.released = true;
        self.write_release()
    }

    fn write_release(&self) -> Result<()> {
        let b = self.repo.backend();
        let path = lease::lock_path(self.n + 1);
        let link = MaintenanceLock::V1 {
            holder: self.holder,
            host: hostname(),
            pid: std::process::id(),
            duration_secs: 0,
            released: true,
            client_time: Time::now(),
        };
        b.write_new(&path, &lease::encode_lock(self.repo.keys(), &path, &link))?;
        for (n, _) in Self::links(self.repo)? {
            if n <= self.n {
                b.delete(&lease::lock_path(n))?;
            }
        }
        Ok(())
    }
}

impl Drop for PruneLock<'_> {
    fn drop(&mut self) {
        if !self.released {
            // An error path: release the lock if storage still answers; otherwise it expires
            // (or is stale at once on this host, once this process has exited).
            let _ = self.write_release();
        }
    }
}

/// A mark in storage with its wait.
struct StoredMark {
    suffix: String,
    mark: PruneMark,
    /// The wait and its backend time.
    wait: Option<(PruneWait, Time)>,
    wait_invalid: bool,
}

fn stored_marks(repo: &Repository, warnings: &mut Vec<String>) -> Result<Vec<StoredMark>> {
    let b = repo.backend();
    let listing = b.list("prune/")?;
    let waits: HashMap<String, Option<Time>> = listing
        .iter()
        .filter_map(|o| o.path.strip_prefix("prune/wait-").map(|s| (s.to_string(), o.modified)))
        .collect();
    let mut out = Vec::new();
    for o in &listing {
        let Some(suffix) = o.path.strip_prefix("prune/mark-") else { continue };
        let mark = match lease::decode_prune_mark(repo.keys(), &o.path, &b.read(&o.path)?) {
            Ok(m) => m,
            Err(e) => {
                warnings.push(format!("{}: {e}; ignored (it condemns nothing)", o.path));
                continue;
            }
        };
        let mut wait = None;
        let mut wait_invalid = false;
        if let Some(t) = waits.get(suffix) {
            let path = format!("prune/wait-{suffix}");
            match (lease::decode_wait(repo.keys(), &path, &b.read(&path)?), t) {
                (Ok(w), Some(t)) => wait = Some((w, *t)),
                (Ok(_), None) => wait_invalid = true,
                (Err(e), _) => {
                    warnings.push(format!("{path}: {e}; its mark is not swept"));
                    wait_invalid = true;
                }
            }
        }
        out.push(StoredMark { suffix: suffix.to_string(), mark, wait, wait_invalid });
    }
    Ok(out)
}

/// Sessions whose newest lease object is alive by backend time `now`.
fn live_sessions(repo: &Repository, now: Time, timeout: i64) -> Result<HashSet<[u8; 32]>> {
    let mut newest: HashMap<[u8; 32], i64> = HashMap::new();
    for o in repo.backend().list("leases/")? {
        let Some((session, _)) = lease::parse_lease_path(&o.path) else { continue };
        // An object without a time counts as written now.
        let t = o.modified.map(|t| t.secs).unwrap_or(now.secs);
        let e = newest.entry(session).or_insert(t);
        *e = (*e).max(t);
    }
    Ok(newest.into_iter().filter(|(_, t)| t.saturating_add(timeout) > now.secs).map(|(s, _)| s).collect())
}

/// Every blob the given snapshots reference, through trees, continuations and chunk lists.
struct Refs {
    blobs: HashSet<(BlobKind, BlobId)>,
}

impl Refs {
    fn walk(repo: &Repository, roots: impl IntoIterator<Item = BlobId>) -> Result<Refs> {
        let mut blobs = HashSet::new();
        let mut stack: Vec<BlobId> = roots.into_iter().collect();
        while let Some(t) = stack.pop() {
            if !blobs.insert((BlobKind::Tree, t)) {
                continue;
            }
            let tb = repo.read_tree_blob(&t).map_err(|e| {
                Error::Invalid(format!(
                    "prune cannot read tree {t} ({e}); nothing was changed. Run `cairn check`, and `cairn repair` if it reports damage"
                ))
            })?;
            match tb {
                TreeBlob::DirV1 { nodes, next } => {
                    stack.extend(next);
                    for n in nodes {
                        match n.kind {
                            NodeKind::Dir { tree } => stack.push(tree),
                            NodeKind::File { content: Content::Chunks(ids) } => {
                                blobs.extend(ids.into_iter().map(|i| (BlobKind::Data, i)))
                            }
                            NodeKind::File { content: Content::Indirect { lists, .. } } => stack.extend(lists),
                            _ => {}
                        }
                    }
                }
                TreeBlob::ChunkListV1 { ids } => blobs.extend(ids.into_iter().map(|i| (BlobKind::Data, i))),
            }
        }
        Ok(Refs { blobs })
    }
}

/// Plans a prune run. `now` is the backend's time (the lock's), or the client's for a dry run.
pub fn plan(repo: &Repository, opts: &PruneOptions, now: Time) -> Result<PrunePlan> {
    let required = repo.config().v1().min_writer_version;
    if required < MIN_WRITER_FOR_PRUNE {
        return Err(Error::Invalid(format!(
            "the repository admits writers of protocol {required}, which do not honour prune marks; prune needs {MIN_WRITER_FOR_PRUNE}"
        )));
    }
    let mut p = PrunePlan { now, ..Default::default() };
    let marks = stored_marks(repo, &mut p.warnings)?;

    // Snapshots first, then the index, then the listing (format-spec §10.6 mark step 1).
    let snapshots = repo.list_snapshots_strict().map_err(|e| {
        Error::Invalid(format!("prune cannot read every snapshot ({e}); nothing was changed. Run `cairn check`"))
    })?;
    p.snapshots = snapshots.len();
    // The walk reads trees through the cache: bring it up to date with index files that appeared
    // since this process last looked (every listed snapshot's index files exist, §11 I2).
    repo.sync_index()?;
    let mut old_index = Vec::new();
    let mut packs: BTreeMap<PackId, IndexPack> = BTreeMap::new();
    for o in repo.backend().list("index/")? {
        let Some(id) = o.path.strip_prefix("index/").and_then(IndexId::from_hex) else { continue };
        let f = repo.read_index(&id).map_err(|e| {
            Error::Invalid(format!(
                "prune cannot read index file {id} ({e}); nothing was changed. Run `cairn repair index`"
            ))
        })?;
        old_index.push(id);
        for ip in f.packs() {
            packs.entry(ip.id).or_insert_with(|| ip.clone());
        }
    }
    let mut listed: HashMap<PackId, (BlobKind, u64, Option<Time>)> = HashMap::new();
    for kind in [BlobKind::Data, BlobKind::Tree] {
        for o in repo.backend().list(&format!("{}/", kind.prefix()))? {
            let Some(id) = o.path.rsplit('/').next().and_then(PackId::from_hex) else { continue };
            listed.insert(id, (kind, o.size, o.modified));
        }
    }
    p.packs = listed.len();
    p.pack_bytes = listed.values().map(|(_, s, _)| s).sum();

    // Listing and index must agree before anything is planned for deletion (P4).
    let mut disagree = Vec::new();
    for ip in packs.values() {
        match listed.get(&ip.id) {
            None => disagree.push(format!("{} is in the index but not in the listing", pack_path(ip.kind, &ip.id))),
            Some((k, s, _)) if *k != ip.kind || *s != ip.size => disagree.push(format!(
                "{} is listed with {s} bytes, the index says {}",
                pack_path(ip.kind, &ip.id),
                ip.size
            )),
            _ => {}
        }
    }
    if !disagree.is_empty() {
        let msg = format!(
            "the storage listing and the index disagree on {} pack(s), e.g. {}",
            disagree.len(),
            disagree.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
        );
        if !opts.force {
            return Err(Error::Invalid(format!(
                "{msg}. Nothing was deleted. A short listing or a lost pack: run `cairn check`; --force overrides"
            )));
        }
        p.warnings.push(format!("{msg} (--force: going on)"));
    }

    let refs = Refs::walk(repo, snapshots.iter().map(|(_, s)| s.v1().root))?;
    // Every pack some mark condemns, due or pending: a new mark leaves them to theirs.
    let condemned_before: HashSet<PackId> =
        marks.iter().flat_map(|m| m.mark.condemned().iter().map(|(_, id)| *id)).collect();

    // Sweep of the due marks.
    let live = live_sessions(repo, now, opts.lease_timeout_secs)?;
    let mut due = Vec::new();
    let mut pending = HashSet::new();
    for m in &marks {
        let reason = match &m.wait {
            _ if m.wait_invalid => Some("its wait object is damaged".to_string()),
            None => Some("its wait object is missing; written now, the grace period starts again".to_string()),
            Some((w, t)) => {
                let due_at = t.secs.saturating_add(opts.grace_secs);
                let busy = w.sessions().iter().filter(|s| live.contains(*s)).count();
                if due_at > now.secs {
                    Some(format!("grace period: due in {}", human_secs(due_at - now.secs)))
                } else if busy > 0 {
                    Some(format!("{busy} writer session(s) alive when it was made have not ended"))
                } else {
                    None
                }
            }
        };
        match reason {
            None => due.push(m),
            Some(reason) => {
                pending.extend(m.mark.condemned().iter().map(|(_, id)| *id));
                p.waiting.push(Waiting {
                    mark: m.suffix.clone(),
                    packs: m.mark.condemned().len(),
                    write_wait: m.wait.is_none() && !m.wait_invalid,
                    reason,
                });
            }
        }
    }
    let mut sweeping: HashSet<PackId> = HashSet::new();
    if !due.is_empty() {
        let mut s = SweepPlan { marks: due.iter().map(|m| m.suffix.clone()).collect(), ..Default::default() };
        let condemned: BTreeSet<PackId> =
            due.iter().flat_map(|m| m.mark.condemned().iter().map(|(_, id)| *id)).collect();
        // Walking every snapshot, not only those outside the marked sets, costs nothing more (the
        // mark walks them all) and keeps a wrong or forged mark from deleting anything in use.
        // A blob is safe when some copy lives outside the condemned packs.
        let mut outside: HashSet<(BlobKind, BlobId)> = HashSet::new();
        for ip in packs.values().filter(|ip| !condemned.contains(&ip.id)) {
            outside.extend(ip.blobs.iter().map(|b| (b.kind, b.id)));
        }
        for id in &condemned {
            let Some(&(lk, size, _)) = listed.get(id) else { continue };
            let r = PackRef { kind: lk, id: *id, size };
            let needed = packs.get(id).is_some_and(|ip| {
                ip.blobs.iter().any(|b| refs.blobs.contains(&(b.kind, b.id)) && !outside.contains(&(b.kind, b.id)))
            });
            if needed || pending.contains(id) {
                s.rescued.push(r);
            } else {
                s.delete_bytes += size;
                sweeping.insert(*id);
                s.delete.push(r);
            }
        }
        s.old_index = old_index.clone();
        s.keep = packs.values().filter(|ip| !sweeping.contains(&ip.id)).cloned().collect();
        if p.pack_bytes > 0 && s.delete_bytes as f64 > opts.max_delete_share * p.pack_bytes as f64 {
            let msg = format!(
                "the sweep would delete {} of {} of pack data ({:.0} %)",
                human_bytes(s.delete_bytes),
                human_bytes(p.pack_bytes),
                100.0 * s.delete_bytes as f64 / p.pack_bytes as f64
            );
            if !opts.force {
                return Err(Error::Invalid(format!(
                    "{msg}, more than the {:.0} % that prune deletes unasked. Nothing was deleted; check `cairn snapshots`, then run again with --force",
                    100.0 * opts.max_delete_share
                )));
            }
            p.warnings.push(format!("{msg} (--force: going on)"));
        }
        p.sweep = Some(s);
    }

    // Unused share of every indexed pack.
    let mut partial = Vec::new();
    let mut unused_packs = Vec::new();
    for ip in packs.values() {
        let total: u64 = ip.blobs.iter().map(|b| b.length as u64).sum();
        let used: Vec<usize> =
            (0..ip.blobs.len()).filter(|&i| refs.blobs.contains(&(ip.blobs[i].kind, ip.blobs[i].id))).collect();
        let used_bytes: u64 = used.iter().map(|&i| ip.blobs[i].length as u64).sum();
        p.unused_bytes += total - used_bytes;
        if condemned_before.contains(&ip.id) {
            continue;
        }
        let r = PackRef { kind: ip.kind, id: ip.id, size: ip.size };
        if used.is_empty() {
            unused_packs.push(r);
        } else if total > 0 && (total - used_bytes) as f64 > opts.max_unused * total as f64 {
            partial.push(Repack { pack: r, used_bytes, unused_bytes: total - used_bytes, entry: ip.clone(), used });
        }
    }

    // A new mark, unless one is still pending.
    if !p.waiting.is_empty() {
        p.no_mark_reason = Some(format!("{} earlier mark(s) still pending", p.waiting.len()));
        return Ok(p);
    }
    let mut m = MarkPlan { snapshots: snapshots.iter().map(|(id, _)| *id).collect(), ..Default::default() };
    m.unused = unused_packs;
    for (id, (kind, size, modified)) in &listed {
        if packs.contains_key(id) || condemned_before.contains(id) {
            continue;
        }
        let old = modified.is_some_and(|t| t.secs.saturating_add(opts.orphan_min_age_secs) <= now.secs);
        if old {
            m.orphans.push(PackRef { kind: *kind, id: *id, size: *size });
        }
    }
    m.orphans.sort_by_key(|a| a.id);
    if opts.repack {
        partial.sort_by(|a, b| {
            let sa = a.unused_bytes as f64 / (a.used_bytes + a.unused_bytes) as f64;
            let sb = b.unused_bytes as f64 / (b.used_bytes + b.unused_bytes) as f64;
            sb.total_cmp(&sa).then(a.pack.id.cmp(&b.pack.id))
        });
        let mut budget = opts.max_repack_size;
        for r in partial {
            if r.pack.size > budget {
                continue;
            }
            budget -= r.pack.size;
            m.repack.push(r);
        }
    }
    m.reclaim_bytes = m.unused.iter().chain(&m.orphans).map(|r| r.size).sum::<u64>()
        + m.repack.iter().map(|r| r.unused_bytes).sum::<u64>();
    if m.unused.is_empty() && m.orphans.is_empty() && m.repack.is_empty() {
        p.no_mark_reason = Some("nothing to condemn: every pack is in use".into());
    } else {
        p.mark = Some(m);
    }
    Ok(p)
}

fn cancelled(opts: &PruneOptions) -> Result<()> {
    match &opts.cancel {
        Some(c) if c.load(std::sync::atomic::Ordering::Relaxed) => Err(Error::Interrupted),
        _ => Ok(()),
    }
}

/// Carries out a plan made under `lock`.
pub fn execute(repo: &Repository, opts: &PruneOptions, plan: &PrunePlan, lock: &PruneLock) -> Result<PruneReport> {
    let b = repo.backend();
    let mut report = PruneReport::default();

    for w in plan.waiting.iter().filter(|w| w.write_wait) {
        write_wait(repo, &w.mark, opts)?;
        report.waits_written += 1;
    }

    if let Some(s) = &plan.sweep {
        cancelled(opts)?;
        lock.ensure()?;
        // New index files first (P3): every surviving pack, superseding every old file.
        b.sync()?;
        // With no pack left, one empty file still records what it supersedes.
        let parts: Vec<&[IndexPack]> =
            if s.keep.is_empty() { vec![&[]] } else { s.keep.chunks(crate::writer::PACKS_PER_INDEX).collect() };
        for part in parts {
            crate::writer::write_index_file(b, repo.keys(), repo.cache(), s.old_index.clone(), part.to_vec())?;
        }
        lock.ensure()?;
        for id in &s.old_index {
            cancelled(opts)?;
            b.delete(&format!("index/{id}"))?;
            report.replaced_index += 1;
        }
        for r in &s.delete {
            cancelled(opts)?;
            b.delete(&pack_path(r.kind, &r.id))?;
            report.deleted_packs += 1;
            report.deleted_bytes += r.size;
        }
        report.rescued_packs = s.rescued.len();
        for m in &s.marks {
            b.delete(&format!("prune/wait-{m}"))?;
            b.delete(&format!("prune/mark-{m}"))?;
        }
        // This process's cache still names the replaced files: the sync finds them gone and
        // rebuilds it from storage.
        repo.sync_index()?;
    }

    if let Some(m) = &plan.mark {
        let mut condemned: Vec<(BlobKind, PackId)> =
            m.unused.iter().chain(&m.orphans).map(|r| (r.kind, r.id)).collect();
        if !m.repack.is_empty() {
            let mut w = Writer::new(repo, WriterOptions::default(), "prune")?;
            w.condemn(m.repack.iter().map(|r| r.pack.id));
            for r in &m.repack {
                cancelled(opts)?;
                match repack_one(repo, &w, r) {
                    Ok(n) => {
                        report.repacked_blobs += n;
                        report.repacked_packs += 1;
                        condemned.push((r.pack.kind, r.pack.id));
                    }
                    // Unreadable (an archive tier, a damaged pack): left alone, not condemned.
                    // Upload failures surface at `finish`, before any mark.
                    Err(e) => {
                        report.repack_skipped.push(format!("{}: {e}", pack_path(r.pack.kind, &r.pack.id)));
                    }
                }
            }
            // New packs and their index exist before the mark condemns the old ones.
            w.finish()?;
        }
        if !condemned.is_empty() {
            // A long repack may outlive the lock; a mark made after another prune took over would race it.
            lock.ensure()?;
            let suffix = hex::encode(crate::crypto::random_32());
            let path = format!("prune/mark-{suffix}");
            let mark =
                PruneMark::V1 { created: Time::now(), condemned: condemned.clone(), snapshots: m.snapshots.clone() };
            b.write_new(&path, &lease::encode_prune_mark(repo.keys(), &path, &mark))?;
            write_wait(repo, &suffix, opts)?;
            report.condemned = condemned.len();
            report.marked = Some(suffix);
        }
    }
    Ok(report)
}

/// Lists the live writer sessions after the mark is stored and records them (format-spec §10.5).
fn write_wait(repo: &Repository, suffix: &str, opts: &PruneOptions) -> Result<()> {
    let now = backend_now(repo)?;
    let mut sessions: Vec<[u8; 32]> = live_sessions(repo, now, opts.lease_timeout_secs)?.into_iter().collect();
    sessions.sort();
    let path = format!("prune/wait-{suffix}");
    let w = PruneWait::V1 { created: Time::now(), sessions };
    repo.backend().write_new(&path, &lease::encode_wait(repo.keys(), &path, &w))
}

/// Stores the referenced blobs of one pack again through `w`; returns how many.
fn repack_one(repo: &Repository, w: &Writer, r: &Repack) -> Result<u64> {
    let ip = &r.entry;
    let path = pack_path(ip.kind, &ip.id);
    let bytes = repo.backend().read(&path)?;
    if bytes.len() as u64 != ip.size {
        return Err(Error::corrupt("pack", &path, format!("{} bytes, the index says {}", bytes.len(), ip.size)));
    }
    let mut n = 0;
    for &i in &r.used {
        let bl = &ip.blobs[i];
        let session = *ip.sessions.get(bl.session as usize).ok_or_else(|| Error::corrupt("index", &path, "session"))?;
        let loc = Location {
            kind: bl.kind,
            pack: ip.id,
            offset: bl.offset,
            length: bl.length,
            plain_length: bl.plain_length,
            session,
        };
        let start = bl.offset as usize;
        let end = start.saturating_add(bl.length as usize);
        let sealed = bytes.get(start..end).ok_or_else(|| Error::corrupt("pack", &path, "blob past its end"))?;
        let plain = repo.open_blob_at(&loc, &bl.id, sealed)?;
        if w.store_with_id(bl.kind, bl.id, &plain)? {
            n += 1;
        }
    }
    Ok(n)
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
    Err(Error::Invalid(format!(
        "prune refuses to run on {}: {}. Nothing was changed. If only one host ever prunes this repository and no backup runs during prune, --force overrides",
        repo.backend().location(),
        why.join("; ")
    )))
}

/// Runs prune: takes the lock, plans, and unless `dry_run` carries the plan out.
pub fn run(repo: &Repository, opts: &PruneOptions, dry_run: bool) -> Result<(PrunePlan, Option<PruneReport>)> {
    if dry_run {
        return Ok((plan(repo, opts, Time::now())?, None));
    }
    repo.check_writer_version()?;
    refuse_unsafe_storage(repo, opts)?;
    let lock = PruneLock::acquire(repo, opts.lock_duration_secs, opts.break_lock)?;
    let p = plan(repo, opts, lock.taken_at())?;
    let r = execute(repo, opts, &p, &lock)?;
    lock.release()?;
    Ok((p, Some(r)))
}
