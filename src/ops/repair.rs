//! The repair operations. `repair index` writes index files, rebuilt from the pack headers, for
//! stored packs that no readable index file describes (packs of an interrupted backup, or packs
//! whose index file was damaged); it only adds. A new index file names the damaged index files it
//! stands in for (`supersedes`), so `check` reports those as superseded rather than as errors, and
//! a later prune can remove them. `repair snapshots` writes, for each snapshot whose trees reference
//! lost data, a new snapshot that keeps every intact item and records what was lost
//! (format-spec §8.2); it removes the original only when asked, after the new one is committed.

use crate::error::{Error, Result};
use crate::id::{BlobId, BlobKind, IndexId, PackId, SnapshotId};
use crate::index::IndexPack;
use crate::layout::{pack_path, Object, ObjectType, StoredId};
use crate::repository::ReadRepository;
use crate::snapshot::Snapshot;
use crate::tree::{Node, NodeKind, Time};
use crate::trees::{rebuild, write_dir, Control, DirFault, IdsOnly, Listing, Rebuilder, Rebuilt, TreeSink, Walker};
use crate::writer::{write_index_file, IndexPart, Writer, WriterOptions, BLOBS_PER_INDEX};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

mod file;
pub use file::MAX_LOST_RANGES;

/// Options of `repair index`.
#[derive(Clone, Debug)]
pub struct RepairOptions {
    /// Compute and report; write nothing.
    pub dry_run: bool,
    /// Leave alone packs younger than this many seconds (by the backend's clock): they may
    /// belong to a backup still running, whose own index file is on its way.
    pub min_age_secs: u64,
}

impl Default for RepairOptions {
    fn default() -> Self {
        RepairOptions { dry_run: false, min_age_secs: 3600 }
    }
}

/// What `repair index` found and did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RepairReport {
    /// Packs now described by a new index file (hex paths).
    pub indexed: Vec<String>,
    /// Unindexed packs left alone because they are recent.
    pub skipped_recent: Vec<String>,
    /// Packs that could not be read or whose header does not open: (path, reason). Nothing
    /// can be rebuilt from them; `check` reports what they affect.
    pub unreadable: Vec<(String, String)>,
    /// Damaged index files the new index files supersede.
    pub superseded: Vec<String>,
    /// New index files written (empty on a dry run).
    pub index_files: Vec<String>,
}

/// Runs `repair index`.
pub fn repair_index(repo: &ReadRepository, opts: &RepairOptions) -> Result<RepairReport> {
    repo.check_writer_version()?;
    let mut report = RepairReport::default();
    let mut covered: HashSet<PackId> = HashSet::new();
    let mut damaged: Vec<IndexId> = Vec::new();
    let mut superseded: HashSet<IndexId> = HashSet::new();
    for o in repo.backend().list(ObjectType::Index.dir())? {
        let Some(id) = IndexId::from_path(&o.path) else { continue };
        match repo.read_index(&id) {
            Ok(f) => {
                covered.extend(f.packs().iter().map(|p| p.id));
                superseded.extend(f.supersedes().iter().copied());
            }
            Err(e) if e.is_not_found() => {}
            Err(crate::Error::Corrupt { .. }) => damaged.push(id),
            Err(e) => return Err(e),
        }
    }
    damaged.retain(|d| !superseded.contains(d));
    let now = Time::now().secs;
    let mut rebuilt: Vec<IndexPack> = Vec::new();
    for kind in [BlobKind::Tree, BlobKind::Data] {
        let t = ObjectType::pack(kind);
        for o in repo.backend().list(t.dir())? {
            let Some(Object::Pack(_, id)) = t.parse(&o.path) else { continue };
            if covered.contains(&id) {
                continue;
            }
            let age = o.modified.map(|m| now - m.secs).unwrap_or(i64::MAX);
            if age < opts.min_age_secs as i64 {
                report.skipped_recent.push(o.path.clone());
                continue;
            }
            let entry = repo
                .backend()
                .read(&o.path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| crate::codec::packer::index_entry(repo.keys(), &id, kind, &bytes));
            match entry {
                Ok(p) => {
                    report.indexed.push(o.path.clone());
                    rebuilt.push(p);
                }
                Err(e) => report.unreadable.push((o.path.clone(), e)),
            }
        }
    }
    // A damaged index file is superseded only when every stored pack is described again after
    // this run: until then it may be the only record of a pack left alone here, and `check` must
    // keep reporting it.
    if !report.skipped_recent.is_empty() || !report.unreadable.is_empty() {
        damaged.clear();
    }
    report.superseded = damaged.iter().map(|d| d.path()).collect();
    if opts.dry_run || (rebuilt.is_empty() && damaged.is_empty()) {
        return Ok(report);
    }
    // The packs were found in storage and read back whole. With nothing to rebuild, one empty
    // index file still records the damaged ones as superseded (their packs are indexed elsewhere).
    let mut chunks = IndexPart::split(rebuilt, BLOBS_PER_INDEX);
    if chunks.is_empty() {
        chunks.push(Vec::new());
    }
    for (i, packs) in chunks.into_iter().enumerate() {
        let supersedes = if i == 0 { damaged.clone() } else { Vec::new() };
        let id = write_index_file(repo.backend(), repo.keys(), repo.cache(), supersedes, packs)?;
        report.index_files.push(id.path());
    }
    let detail =
        format!("{} pack(s) indexed, {} index file(s) superseded", report.indexed.len(), report.superseded.len());
    repo.ledger_record(crate::ledger::Event::Repair {
        what: "index".into(),
        written: vec![],
        removed: vec![],
        detail,
    })?;
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// repair snapshots (format-spec §8.2)

/// The tag every snapshot written by `repair snapshots` carries (format-spec §8.2).
pub const TAG_REPAIRED: &str = "repaired";
/// Prefix of the tag naming the snapshot a repaired one replaces: `repaired-from:<64 hex>`.
pub const TAG_REPAIRED_FROM: &str = "repaired-from:";
/// Prefix of the tags naming lost items: `lost:<path>` (a directory ends in `/`).
pub const TAG_LOST: &str = "lost:";
/// Prefix of the tag counting lost items beyond [`MAX_LOST_TAGS`]: `lost-more:<n>`.
pub const TAG_LOST_MORE: &str = "lost-more:";
/// At most this many `lost:` tags per repaired snapshot (the report lists every item).
pub const MAX_LOST_TAGS: usize = 256;

/// Options of `repair snapshots`.
#[derive(Clone, Debug, Default)]
pub struct RepairSnapshotsOptions {
    /// Plan and report; write and remove nothing.
    pub dry_run: bool,
    /// Read every data blob the snapshots reference and verify it (unseal, decompress, recompute
    /// the id). Without it nothing under `data/` is read: a data blob counts as lost when no index
    /// file names it or when none of its packs is in the storage listing.
    pub read_data: bool,
    /// Remove each original snapshot after its repaired replacement is committed.
    pub forget: bool,
}

/// A byte range of a file whose content is lost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LostRange {
    /// Offset in the original file; unknown after a chunk of unknown length.
    pub offset: Option<u64>,
    /// Length; unknown when no index file describes the lost blob (or a chunk list is lost).
    pub length: Option<u64>,
    /// The lost data blob, or the lost chunk list (hex id).
    pub blob: String,
    /// Why it is lost.
    pub reason: String,
}

/// One damaged item of a snapshot and what was lost of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LostItem {
    /// The path in the snapshot (lossy UTF-8 for display).
    pub path: String,
    /// `file` (some content lost) or `dir` (some or all of its listing lost).
    pub kind: &'static str,
    /// What the repaired snapshot holds instead.
    pub what: String,
    /// For files: the lost byte ranges of the original content, in order.
    pub ranges: Vec<LostRange>,
    /// For files: the original size.
    pub size_before: u64,
    /// For files: the size of the kept (intact) content.
    pub size_after: u64,
}

/// One damaged snapshot and what repair did with it.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotRepair {
    /// The damaged snapshot (hex id).
    pub snapshot: String,
    /// Its time, host and paths (to recognise it).
    pub time: String,
    /// Host.
    pub host: String,
    /// Source paths.
    pub paths: Vec<String>,
    /// The repaired snapshot written (hex id); none on a dry run.
    pub repaired: Option<String>,
    /// A repaired snapshot that already existed for it (written by an earlier run); nothing new
    /// was written then.
    pub already_repaired_by: Option<String>,
    /// True when the original was removed (`--forget`).
    pub forgotten: bool,
    /// Everything lost, per path.
    pub lost: Vec<LostItem>,
}

/// What `repair snapshots` found and did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RepairSnapshotsReport {
    /// Snapshots looked at.
    pub snapshots: u64,
    /// Snapshots found intact (left alone).
    pub intact: u64,
    /// Damaged snapshots and what was done with each.
    pub damaged: Vec<SnapshotRepair>,
    /// Snapshots whose manifest cannot be read: (path, reason). Nothing can be rebuilt from them.
    pub unreadable: Vec<(String, String)>,
    /// Data blobs found lost.
    pub lost_blobs: u64,
    /// True on a dry run.
    pub dry_run: bool,
}

/// True when `e` means the object is gone or damaged (as opposed to a storage or cache failure,
/// which must stop a repair rather than make it drop intact items).
fn is_loss(e: &Error) -> bool {
    matches!(e, Error::Corrupt { .. }) || e.is_not_found()
}

/// What is known about data blobs, shared by every snapshot of a run.
struct Damage<'r> {
    repo: &'r ReadRepository,
    read_data: bool,
    /// Packs in the storage listing (data and tree).
    listed: HashSet<PackId>,
    /// Per data blob: its plain length when indexed, and why it is lost (none when intact).
    data: HashMap<BlobId, (Option<u64>, Option<String>)>,
}

impl Damage<'_> {
    fn data_blob(&mut self, id: &BlobId) -> Result<(Option<u64>, Option<String>)> {
        if let Some(v) = self.data.get(id) {
            return Ok(v.clone());
        }
        let locs = self.repo.locate(BlobKind::Data, id)?;
        let len = locs.first().map(|l| l.plain_length as u64);
        let lost = if locs.is_empty() {
            Some("the data blob is in no index file".to_string())
        } else if !locs.iter().any(|l| self.listed.contains(&l.pack)) {
            Some(format!("its pack {} is not in storage", pack_path(BlobKind::Data, &locs[0].pack)))
        } else if self.read_data {
            match self.repo.read_blob(BlobKind::Data, id) {
                Ok(_) => None,
                Err(e) if is_loss(&e) => Some(e.to_string()),
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        self.data.insert(*id, (len, lost.clone()));
        Ok((len, lost))
    }
}

/// The losses under a directory, with paths relative to it.
type Losses = Vec<(PathBuf, LostItem)>;

/// One pass over one snapshot: computes (and with a writer, stores) the repaired trees.
struct Pass<'a, 'r, 'w> {
    repo: &'r ReadRepository,
    damage: &'a mut Damage<'r>,
    writer: Option<&'a Writer<'w>>,
}

/// What a repaired directory carries up: whether anything in it changed, and the losses under it.
#[derive(Clone, Default)]
struct DirLoss {
    changed: bool,
    losses: Losses,
}

impl<'a, 'r, 'w> Pass<'a, 'r, 'w> {
    /// The repaired tree of the root directory, and the losses under it.
    fn run(mut self, root: &BlobId) -> Result<(BlobId, Losses)> {
        // The parts were each canonical; the rebuilt listing is canonical even if they were not.
        let mut walker = Walker::new(self.repo).sorted();
        let (new, state) = rebuild(&mut walker, root, &mut self, &mut Rebuilt::new())?;
        Ok((new, state.losses))
    }

    /// Runs `f` with where this pass puts tree blobs: the writer, or nowhere (ids only).
    fn with_sink<T>(&self, f: impl FnOnce(&dyn TreeSink) -> T) -> T {
        match self.writer {
            Some(w) => f(w),
            None => f(&IdsOnly(self.repo)),
        }
    }
}

impl Rebuilder for Pass<'_, '_, '_> {
    type State = DirLoss;

    fn entry(&mut self, _: &Path, n: &mut Node, state: &mut DirLoss) -> Result<()> {
        let NodeKind::File { content } = &n.kind else { return Ok(()) };
        if let Some((content, size, item)) = self.file(content, n.size)? {
            state.changed = true;
            state.losses.push((PathBuf::from(OsStr::from_bytes(&n.name)), item));
            n.kind = NodeKind::File { content };
            n.size = size;
        }
        Ok(())
    }

    fn fault(
        &mut self,
        _: &Path,
        tree: &BlobId,
        fault: DirFault,
        readable: &Listing,
        state: &mut DirLoss,
    ) -> Result<Control> {
        let reason = match fault {
            DirFault::Loop(t) => format!("tree {t}: the directory's parts form a loop"),
            DirFault::Unreadable(_, e) if !is_loss(&e) => return Err(e),
            f => f.into_error(tree).to_string(),
        };
        let what = if readable.parts.is_empty() {
            format!("the directory listing is lost ({reason}); kept as an empty directory with its metadata")
        } else {
            format!(
                "part {} of the directory listing is lost ({reason}); the {} entries of the readable parts are kept, \
                 later entries are missing",
                readable.parts.len() + 1,
                readable.nodes.len()
            )
        };
        state.changed = true;
        state.losses.push((
            PathBuf::new(),
            LostItem { path: String::new(), kind: "dir", what, ranges: vec![], size_before: 0, size_after: 0 },
        ));
        Ok(Control::Descend)
    }

    fn finish(&mut self, tree: &BlobId, entries: Vec<Node>, state: &DirLoss) -> Result<BlobId> {
        if state.changed {
            self.with_sink(|s| write_dir(s, entries))
        } else {
            Ok(*tree)
        }
    }

    fn absorb(&mut self, parent: &mut DirLoss, name: &[u8], child: DirLoss, rewritten: bool) {
        parent.changed |= rewritten;
        let name = PathBuf::from(OsStr::from_bytes(name));
        parent.losses.extend(child.losses.into_iter().map(|(rel, item)| {
            let p = if rel.as_os_str().is_empty() { name.clone() } else { name.join(rel) };
            (p, item)
        }));
    }
}

/// Finishes the losses found under the root: absolute paths, in path order.
fn absolute(losses: Losses) -> Vec<LostItem> {
    let mut out: Vec<(PathBuf, LostItem)> =
        losses.into_iter().map(|(rel, item)| (Path::new("/").join(rel), item)).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter()
        .map(|(p, mut item)| {
            item.path = p.to_string_lossy().into_owned();
            item
        })
        .collect()
}

/// The tags of the repaired replacement of `original` (format-spec §8.2).
fn repaired_tags(tags: &[String], original: &SnapshotId, lost: &[LostItem]) -> Vec<String> {
    let mut out: Vec<String> = tags.iter().filter(|t| !t.starts_with(TAG_LOST_MORE)).cloned().collect();
    if !out.iter().any(|t| t == TAG_REPAIRED) {
        out.push(TAG_REPAIRED.to_string());
    }
    out.push(format!("{TAG_REPAIRED_FROM}{original}"));
    for item in lost.iter().take(MAX_LOST_TAGS) {
        let slash = if item.kind == "dir" && !item.path.ends_with('/') { "/" } else { "" };
        out.push(format!("{TAG_LOST}{}{slash}", item.path));
    }
    if lost.len() > MAX_LOST_TAGS {
        out.push(format!("{TAG_LOST_MORE}{}", lost.len() - MAX_LOST_TAGS));
    }
    out
}

/// Runs `repair snapshots` (format-spec §8.2): finds the snapshots whose trees reference lost data
/// (a tree or data blob that no index file names, whose packs are all missing from storage, or,
/// with `read_data`, that does not open and verify), and for each writes a new snapshot whose
/// trees keep every intact item: a file with lost chunks keeps its intact chunks in order, a
/// directory whose listing is lost becomes an empty directory with its metadata. Writes go packs →
/// index → snapshot; the original is removed only with `forget`, after its replacement is
/// committed. A storage or cache failure stops the run (it never counts as loss).
pub fn repair_snapshots(repo: &ReadRepository, opts: &RepairSnapshotsOptions) -> Result<RepairSnapshotsReport> {
    if !opts.dry_run {
        repo.check_writer_version()?;
    }
    repo.sync_index()?;
    let mut listed: HashSet<PackId> = HashSet::new();
    for kind in [BlobKind::Data, BlobKind::Tree] {
        listed.extend(crate::check::listing(repo, kind)?.into_keys());
    }
    let mut report = RepairSnapshotsReport { dry_run: opts.dry_run, ..Default::default() };
    let mut snaps: Vec<(SnapshotId, Snapshot)> = Vec::new();
    for id in repo.snapshot_ids()? {
        report.snapshots += 1;
        match repo.load_snapshot(&id) {
            Ok(s) => snaps.push((id, s)),
            Err(e) if is_loss(&e) => report.unreadable.push((id.path(), e.to_string())),
            Err(e) => return Err(e),
        }
    }
    snaps.sort_by(|a, b| a.1.time().cmp(&b.1.time()).then(a.0.cmp(&b.0)));
    // Originals that an earlier run already replaced.
    let mut replaced: HashMap<String, SnapshotId> = HashMap::new();
    for (id, s) in &snaps {
        for t in s.tags() {
            if let Some(orig) = t.strip_prefix(TAG_REPAIRED_FROM) {
                replaced.insert(orig.to_string(), *id);
            }
        }
    }
    let mut damage = Damage { repo, read_data: opts.read_data, listed, data: HashMap::new() };
    for (sid, snap) in &snaps {
        // First pass: find the losses, writing nothing.
        let (root, losses) = Pass { repo, damage: &mut damage, writer: None }.run(&snap.root())?;
        if root == snap.root() {
            report.intact += 1;
            continue;
        }
        let lost = absolute(losses);
        let mut entry = SnapshotRepair {
            snapshot: sid.to_hex(),
            time: snap.time().to_rfc3339(),
            host: snap.host().to_string(),
            paths: snap.display_paths(),
            repaired: None,
            already_repaired_by: replaced.get(&sid.to_hex()).map(|r| r.to_hex()),
            forgotten: false,
            lost,
        };
        if opts.dry_run {
            report.damaged.push(entry);
            continue;
        }
        if entry.already_repaired_by.is_none() {
            let writer = Writer::new(
                repo,
                WriterOptions { compression: repo.default_compression(), ..Default::default() },
                "repair snapshots",
            )?;
            let written = Pass { repo, damage: &mut damage, writer: Some(&writer) }.run(&snap.root());
            let (new_root, _) = match written {
                Ok(v) => v,
                Err(e) => {
                    writer.abandon();
                    return Err(e);
                }
            };
            debug_assert_eq!(new_root, root, "both passes compute the same trees");
            // Signed by the repairing key only when the original is attributed and unflagged
            // (format-spec §4.3): a repair must not attribute what nobody could.
            let (att, allowed) = repo.attribute_snapshot(sid, snap)?;
            let sign =
                att.key_id().is_some() && crate::select::flags(&att, allowed, snap.time(), Time::now()).is_empty();
            let mut new = snap.with_writer(None);
            let v = new.v3_mut();
            v.root = new_root;
            v.tags = repaired_tags(snap.tags(), sid, &entry.lost);
            v.program = format!("cairn {} (repair snapshots)", env!("CARGO_PKG_VERSION"));
            let id = writer.commit_all(&[(new, sign)])?[0];
            entry.repaired = Some(id.to_hex());
        }
        if opts.forget {
            // Only now: the replacement is committed (packs → index → snapshot).
            repo.remove_snapshot(sid)?;
            entry.forgotten = true;
        }
        report.damaged.push(entry);
    }
    report.lost_blobs = damage.data.values().filter(|(_, lost)| lost.is_some()).count() as u64;
    if !opts.dry_run && !report.damaged.is_empty() {
        let ids = |f: fn(&SnapshotRepair) -> Option<&str>| -> Vec<SnapshotId> {
            report.damaged.iter().filter_map(f).filter_map(SnapshotId::from_hex).collect()
        };
        repo.ledger_record(crate::ledger::Event::Repair {
            what: "snapshots".into(),
            written: ids(|d| d.repaired.as_deref()),
            removed: ids(|d| d.forgotten.then_some(d.snapshot.as_str())),
            detail: format!("{} damaged snapshot(s), {} lost blob(s)", report.damaged.len(), report.lost_blobs),
        })?;
    }
    Ok(report)
}
