//! Planning a prune (format-spec §10.6): which marks are due to sweep, which packs no snapshot
//! needs (to mark), and which packs to repack. Reads only; writes nothing.

use super::copies::Copies;
use super::marks::{live_sessions, stored_marks};
use super::{MarkPlan, PackRef, PruneOptions, PrunePlan, Repack, SweepPlan, Waiting, MIN_WRITER_FOR_PRUNE};
use crate::error::{Error, Override, Result};
use crate::id::{BlobId, BlobKind, IndexId, PackId};
use crate::index::IndexPack;
use crate::layout::{pack_path, Object, ObjectType, StoredId};
use crate::repository::ReadRepository;
use crate::time::Time;
use crate::tree::{Content, Node, NodeKind};
use crate::trees::{chunk_list, Control, DirFault, ListFault, Listing, Visitor, Walker};
use crate::units::{human_bytes, human_secs};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

/// Every blob the given snapshots reference, through trees, continuations and chunk lists.
///
/// Tree blobs are held exactly: the walk relies on them to read each chunk list once. Data
/// blobs, the bulk (one per chunk), are held as the first 8 bytes of their ids in a sorted
/// vector, 8 bytes a blob instead of the ~60 of a hash set entry (a prune plan at 10 million
/// blobs, benches/README.md "Scale"). A prefix can only answer "referenced" for a blob that is
/// not, never the reverse, and every use of the answer errs towards keeping: a blob taken for
/// referenced keeps its pack, or is copied by a repack (format-spec §10.6).
pub(super) struct Refs {
    trees: HashSet<BlobId>,
    data: Vec<u64>,
}

/// The first 8 bytes of a blob id, as [`Refs`] keeps data blobs.
fn prefix(id: &BlobId) -> u64 {
    u64::from_be_bytes([id.0[0], id.0[1], id.0[2], id.0[3], id.0[4], id.0[5], id.0[6], id.0[7]])
}

impl Refs {
    /// Walks every snapshot's trees, each shared directory once. A tree that cannot be read
    /// stops the plan: a blob it references would look unused.
    fn walk(repo: &ReadRepository, roots: impl IntoIterator<Item = BlobId>) -> Result<Refs> {
        let mut refs = Refs { trees: HashSet::new(), data: Vec::new() };
        let mut walker = Walker::new(repo).skip_seen();
        let mut visit = RefsVisitor { repo, refs: &mut refs };
        for root in roots {
            walker.walk(&root, Path::new("/"), &mut visit)?;
        }
        refs.compact();
        refs.data.shrink_to_fit();
        Ok(refs)
    }

    /// Notes data blobs; when the vector is full it is sorted and deduplicated before it grows,
    /// so ids met under many distinct trees do not pile up.
    fn add_data(&mut self, ids: impl IntoIterator<Item = BlobId>) {
        for id in ids {
            if self.data.len() == self.data.capacity() && self.data.len() >= 1024 {
                self.compact();
                if self.data.len() > self.data.capacity() / 2 {
                    self.data.reserve(self.data.len());
                }
            }
            self.data.push(prefix(&id));
        }
    }

    fn compact(&mut self) {
        self.data.sort_unstable();
        self.data.dedup();
    }

    /// True when a snapshot references the blob; for a data blob, possibly also when one whose
    /// id shares its first 8 bytes is (see [`Refs`]). Call after [`Refs::walk`].
    pub(super) fn contains(&self, kind: BlobKind, id: &BlobId) -> bool {
        match kind {
            BlobKind::Tree => self.trees.contains(id),
            BlobKind::Data => self.data.binary_search(&prefix(id)).is_ok(),
        }
    }
}

struct RefsVisitor<'a> {
    repo: &'a ReadRepository,
    refs: &'a mut Refs,
}

fn unreadable(t: &BlobId, e: impl std::fmt::Display) -> Error {
    Error::refused(format!(
        "prune cannot read tree {t} ({e}); nothing was changed. Run `cairn check`, and `cairn repair` if it reports damage"
    ))
}

impl Visitor for RefsVisitor<'_> {
    fn tree_blob(&mut self, id: &BlobId, _: &[u8]) {
        self.refs.trees.insert(*id);
    }

    fn fault(&mut self, _: &Path, tree: &BlobId, fault: DirFault, _: &Listing) -> Result<Control> {
        match fault {
            // Every part was read (before the chain came back to one, or out of order): nothing
            // is left unseen. Restore refuses such a directory; prune keeps what it references.
            DirFault::Loop(_) | DirFault::Order(_) => Ok(Control::Descend),
            f => Err(unreadable(&f.blob(), f.into_error(tree))),
        }
    }

    fn node(&mut self, _: &Path, n: &Node) -> Result<Control> {
        match &n.kind {
            NodeKind::File { content: Content::Chunks(ids) } => self.refs.add_data(ids.iter().copied()),
            NodeKind::File { content: Content::Inline(_) } => {}
            NodeKind::File { content: Content::Indirect { lists, .. } } => {
                for l in lists {
                    if !self.refs.trees.insert(*l) {
                        continue;
                    }
                    match chunk_list(self.repo, l) {
                        Ok(ids) => self.refs.add_data(ids),
                        Err(ListFault::Unreadable(e)) => return Err(unreadable(l, e)),
                        Err(ListFault::NotAList) => {
                            return Err(unreadable(
                                l,
                                Error::corrupt_blob(BlobKind::Tree, *l, None, "expected a chunk list"),
                            ))
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(Control::Descend)
    }
}

/// How much of one indexed pack the snapshots use, as prune accounts it (format-spec §10.6): the
/// blobs `used` says are referenced (every copy of a referenced blob counts as used), their
/// stored bytes, and the stored bytes of all its blobs (pack headers excluded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackUse {
    /// Positions in the pack's blob list of the blobs in use.
    pub used: Vec<usize>,
    /// Their stored (sealed) bytes.
    pub used_bytes: u64,
    /// Stored bytes of all the pack's blobs.
    pub total_bytes: u64,
}

impl PackUse {
    /// The use of `ip` by the blobs for which `used(kind, id)` holds.
    pub fn of(ip: &IndexPack, used: impl Fn(BlobKind, &BlobId) -> bool) -> PackUse {
        // A bundle's stored bytes are shared by its members (format-spec §5.5): an unused member
        // counts its share, so a bundle with one is repacked like a pack with an unused blob.
        let shares = ip.stored_shares();
        let total_bytes = shares.iter().sum();
        let used: Vec<usize> = (0..ip.blobs.len()).filter(|&i| used(ip.blobs[i].kind, &ip.blobs[i].id)).collect();
        let used_bytes = used.iter().map(|&i| shares[i]).sum();
        PackUse { used, used_bytes, total_bytes }
    }

    /// Stored bytes of the blobs not in use.
    pub fn unused_bytes(&self) -> u64 {
        self.total_bytes - self.used_bytes
    }

    /// True when the pack is partly used and its unused share passes `max_unused` (0.0–1.0): a
    /// prune with that `--max-unused` repacks it.
    pub fn worth_repacking(&self, max_unused: f64) -> bool {
        !self.used.is_empty()
            && self.total_bytes > 0
            && self.unused_bytes() as f64 > max_unused * self.total_bytes as f64
    }

    /// The bytes a prune with `max_unused` (and no repack size limit) returns from pack `ip`: all
    /// of it when nothing is used, the unused blobs' bytes when it is worth repacking, else none.
    pub fn reclaim(&self, ip: &IndexPack, max_unused: f64) -> u64 {
        if self.used.is_empty() {
            ip.size
        } else if self.worth_repacking(max_unused) {
            self.unused_bytes()
        } else {
            0
        }
    }
}

fn read_index(repo: &ReadRepository, id: &IndexId) -> Result<crate::index::IndexFile> {
    repo.read_index(id).map_err(|e| {
        Error::refused(format!(
            "prune cannot read index file {id} ({e}); nothing was changed. Run `cairn repair index`"
        ))
    })
}

/// What the second read of the index says of one pack: its use, whether any blob is in use, and
/// the digest of its entry.
type Use = (PackUse, bool, [u8; 32]);

/// The use of every indexed pack, from a second read of the index files (each pack's entry
/// from the first file that lists it, as in the first read), and the digest of each entry
/// ([`super::SweepPlan`]). Blob lists are put back into `packs` only where the plan needs them:
/// the packs the due marks condemn (a sweep looks at their referenced blobs) and the packs worth
/// repacking; `used` positions are kept only for the latter (so `worth_repacking` of any other
/// answers false), beside whether any blob is in use.
fn pack_uses(
    repo: &ReadRepository,
    index: &[IndexId],
    packs: &mut BTreeMap<PackId, IndexPack>,
    refs: &Refs,
    condemned: &BTreeSet<PackId>,
    max_unused: f64,
) -> Result<HashMap<PackId, Use>> {
    let mut uses = HashMap::new();
    for id in index {
        for ip in read_index(repo, id)?.into_packs() {
            let Some(entry) = packs.get_mut(&ip.id) else { continue };
            if uses.contains_key(&ip.id) {
                continue;
            }
            let digest = super::entry_digest(&ip);
            let mut u = PackUse::of(&ip, |k, b| refs.contains(k, b));
            let repack = u.worth_repacking(max_unused);
            if condemned.contains(&ip.id) || repack {
                entry.blobs = ip.blobs;
            }
            let in_use = !u.used.is_empty();
            if !repack {
                u.used = Vec::new();
            }
            uses.insert(ip.id, (u, in_use, digest));
        }
    }
    Ok(uses)
}

/// The copies outside the `condemned` packs of the `wanted` blobs, from a third read of the
/// index files, one at a time (each pack's entry from the first file that lists it).
fn outside_copies<'a>(
    repo: &'a ReadRepository,
    index: &[IndexId],
    condemned: &BTreeSet<PackId>,
    wanted: &HashSet<(BlobKind, BlobId)>,
) -> Result<Copies<'a>> {
    let mut copies = Copies::new(repo);
    let mut seen = HashSet::new();
    for id in index {
        for ip in read_index(repo, id)?.packs() {
            if !condemned.contains(&ip.id) && seen.insert(ip.id) {
                copies.add(ip, wanted);
            }
        }
    }
    Ok(copies)
}

/// Plans a prune run. `now` is the backend's time (the lock's), or the client's for a dry run.
pub fn plan(repo: &ReadRepository, opts: &PruneOptions, now: Time) -> Result<PrunePlan> {
    let required = repo.config().min_writer_version();
    if required < MIN_WRITER_FOR_PRUNE {
        return Err(Error::refused(format!(
            "the repository admits writers of protocol {required}, which do not honour prune marks; prune needs {MIN_WRITER_FOR_PRUNE}"
        )));
    }
    let mut p = PrunePlan { now, ..Default::default() };
    let marks = stored_marks(repo, &mut p.warnings)?;

    // Snapshots first, then the index, then the listing (format-spec §10.6 mark step 1).
    let snapshots = repo.list_snapshots_strict().map_err(|e| {
        Error::refused(format!("prune cannot read every snapshot ({e}); nothing was changed. Run `cairn check`"))
    })?;
    p.snapshots = snapshots.len();
    // The walk reads trees through the cache: bring it up to date with index files that appeared
    // since this process last looked (every listed snapshot's index files exist, §11 I2).
    repo.sync_index()?;
    // The packs, first without their blob lists: those are read again, one file at a time, once
    // the walk has said which blobs are used (memory in proportion to the packs, not the blobs).
    let mut old_index = Vec::new();
    let mut packs: BTreeMap<PackId, IndexPack> = BTreeMap::new();
    for o in repo.backend().list(ObjectType::Index.dir())? {
        let Some(id) = IndexId::from_path(&o.path) else { continue };
        let f = read_index(repo, &id)?;
        old_index.push(id);
        for ip in f.packs() {
            packs.entry(ip.id).or_insert_with(|| IndexPack { blobs: Vec::new(), sessions: ip.sessions.clone(), ..*ip });
        }
    }
    let mut listed: HashMap<PackId, (BlobKind, u64, Option<Time>)> = HashMap::new();
    for kind in [BlobKind::Data, BlobKind::Tree] {
        let t = ObjectType::pack(kind);
        for o in repo.backend().list(t.dir())? {
            let Some(Object::Pack(_, id)) = t.parse(&o.path) else { continue };
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
            return Err(Error::refused_unless(
                format!("{msg}. Nothing was deleted. A short listing or a lost pack: run `cairn check`"),
                Override::Force,
            ));
        }
        p.warnings.push(format!("{msg} (forced: going on)"));
    }

    let refs = Refs::walk(repo, snapshots.iter().map(|(_, s)| s.root()))?;
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
            None if m.replace_wait => {
                Some("its wait object does not verify; written again, the grace period starts again".to_string())
            }
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
                    replace_wait: m.replace_wait,
                    reason,
                });
            }
        }
    }
    let condemned: BTreeSet<PackId> = due.iter().flat_map(|m| m.mark.condemned().iter().map(|(_, id)| *id)).collect();
    let uses = pack_uses(repo, &old_index, &mut packs, &refs, &condemned, opts.max_unused)?;
    let mut sweeping: HashSet<PackId> = HashSet::new();
    if !due.is_empty() {
        let mut s = SweepPlan { marks: due.iter().map(|m| m.suffix.clone()).collect(), ..Default::default() };
        // Walking every snapshot, not only those outside the marked sets, costs nothing more (the
        // mark walks them all) and keeps a wrong or forged mark from deleting anything in use.
        // A blob is safe when a copy outside the condemned packs reads and verifies: any key can
        // write index entries, so an entry alone proves nothing (format-spec §10.6, §12).
        // The referenced blobs of each condemned pack; only their copies outside are looked up.
        let used_in: HashMap<PackId, Vec<(BlobKind, BlobId)>> = condemned
            .iter()
            .map(|id| {
                let used = packs
                    .get(id)
                    .map(|ip| ip.blobs.iter().map(|b| (b.kind, b.id)).filter(|(k, b)| refs.contains(*k, b)).collect())
                    .unwrap_or_default();
                (*id, used)
            })
            .collect();
        let wanted: HashSet<(BlobKind, BlobId)> = used_in.values().flatten().copied().collect();
        let mut copies = outside_copies(repo, &old_index, &condemned, &wanted)?;
        for id in &condemned {
            let Some(&(lk, size, _)) = listed.get(id) else { continue };
            let r = PackRef { kind: lk, id: *id, size };
            let used = used_in.get(id).map(Vec::as_slice).unwrap_or_default();
            let needed = pending.contains(id)
                || used.iter().any(|(k, b)| !copies.indexed(*k, b))
                || match used.iter().find(|(k, b)| !copies.good(*k, b)) {
                    Some((k, b)) => {
                        p.warnings.push(format!(
                            "{} kept: it holds {k} blob {b}, which a snapshot needs, and no other indexed copy of it reads and verifies (see the bad copies)",
                            pack_path(lk, id)
                        ));
                        true
                    }
                    None => false,
                };
            if needed {
                s.rescued.push(r);
            } else {
                s.delete_bytes += size;
                sweeping.insert(*id);
                s.delete.push(r);
            }
        }
        for c in &copies.bad {
            p.warnings.push(format!(
                "index entry for {} blob {} in {} does not give the blob ({}); a forged or damaged index entry: run `cairn check --read-data`",
                c.kind,
                c.blob,
                pack_path(c.kind, &c.pack),
                c.error
            ));
        }
        s.verified_copies = copies.verified;
        s.bad_copies = std::mem::take(&mut copies.bad);
        s.old_index = old_index.clone();
        for id in packs.keys().filter(|id| !sweeping.contains(id)) {
            // Both reads list the same files: a pack the second did not meet means a file changed.
            let (_, _, digest) = uses.get(id).ok_or_else(|| {
                Error::refused(format!(
                    "pack {id} was in the index when prune first read it and not the second time; nothing was changed, run prune again"
                ))
            })?;
            s.keep.insert(*id, *digest);
        }
        if p.pack_bytes > 0 && s.delete_bytes as f64 > opts.max_delete_share * p.pack_bytes as f64 {
            let msg = format!(
                "the sweep would delete {} of {} of pack data ({:.0} %)",
                human_bytes(s.delete_bytes),
                human_bytes(p.pack_bytes),
                100.0 * s.delete_bytes as f64 / p.pack_bytes as f64
            );
            if !opts.force {
                return Err(Error::refused_unless(
                    format!(
                        "{msg}, more than the {:.0} % that prune deletes unasked. Nothing was deleted; check `cairn snapshots`",
                        100.0 * opts.max_delete_share
                    ),
                    Override::Force,
                ));
            }
            p.warnings.push(format!("{msg} (forced: going on)"));
        }
        p.sweep = Some(s);
    }

    // Unused share of every indexed pack.
    let mut partial = Vec::new();
    let mut unused_packs = Vec::new();
    for ip in packs.values() {
        let Some((u, in_use, _)) = uses.get(&ip.id) else { continue };
        p.unused_bytes += u.unused_bytes();
        if condemned_before.contains(&ip.id) {
            continue;
        }
        let r = PackRef { kind: ip.kind, id: ip.id, size: ip.size };
        if !in_use {
            unused_packs.push(r);
        } else if u.worth_repacking(opts.max_unused) {
            let (used_bytes, unused_bytes) = (u.used_bytes, u.unused_bytes());
            partial.push(Repack { pack: r, used_bytes, unused_bytes, entry: ip.clone(), used: u.used.clone() });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn id(first: u8, last: u8) -> BlobId {
        let mut b = [0u8; 32];
        b[0] = first;
        b[31] = last;
        BlobId(b)
    }

    /// Data blobs are kept as 8-byte prefixes: every id added is found, an id sharing the prefix
    /// is taken for referenced too (the safe side), others are not; tree blobs are exact.
    #[test]
    fn refs_answer_referenced_for_every_id_added_and_err_only_towards_keeping() {
        let mut r = Refs { trees: HashSet::new(), data: Vec::new() };
        r.add_data([id(1, 1), id(2, 2)]);
        r.trees.insert(id(3, 3));
        r.compact();
        assert!(r.contains(BlobKind::Data, &id(1, 1)));
        assert!(r.contains(BlobKind::Data, &id(2, 2)));
        assert!(r.contains(BlobKind::Data, &id(1, 9)), "same first 8 bytes: kept");
        assert!(!r.contains(BlobKind::Data, &id(4, 1)));
        assert!(!r.contains(BlobKind::Data, &id(3, 3)), "a tree id is not a data id");
        assert!(r.contains(BlobKind::Tree, &id(3, 3)));
        assert!(!r.contains(BlobKind::Tree, &id(3, 4)), "tree ids are exact");
        assert!(!r.contains(BlobKind::Tree, &id(1, 1)));
    }

    /// The same ids met again and again (under many distinct trees) do not grow the vector.
    #[test]
    fn refs_compact_repeated_data_ids_as_they_grow() {
        let mut r = Refs { trees: HashSet::new(), data: Vec::new() };
        for _ in 0..100 {
            r.add_data((0..1000u32).map(|i| {
                let mut b = [0u8; 32];
                b[..4].copy_from_slice(&i.to_be_bytes());
                BlobId(b)
            }));
        }
        assert!(r.data.capacity() <= 4096, "capacity {} for 1000 distinct ids", r.data.capacity());
        r.compact();
        assert_eq!(r.data.len(), 1000);
    }
}
