//! The restore plan (format-spec §7): which entries to create, in pre-order, and which blobs to read
//! from which pack, so that each pack is read once. Reads trees and the index; writes nothing.
//! Hostile trees cost it little (format-spec §7.5): each chunk list is read and placed once however
//! often files name it, a hole costs no buffer, and the walk's entries and the plan's chunk
//! placements stay within the limit of entries, and the memory the plan holds within the
//! expansion budget ([`Limits::expanding`]).

use super::RestoreOptions;
use crate::browse;
use crate::cache::Location;
use crate::error::Error;
use crate::error::Result;
use crate::id::{BlobId, BlobKind, PackId};
use crate::ops::PathMessage;
use crate::repository::ReadRepository;
use crate::tree::{Content, HardlinkGroups, Limits, Node, NodeKind};
use crate::trees::{chunk_list, Control, Visitor, Walker};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// One entry to create.
#[derive(Clone, Debug)]
pub struct PlanEntry {
    /// The path in the snapshot (absolute).
    pub path: PathBuf,
    /// The node.
    pub node: Node,
    /// For files: the size and whether another entry is its hardlink primary.
    pub link_to: Option<usize>,
}

/// One blob to read and where it goes.
#[derive(Clone, Debug)]
pub struct PlanBlob {
    /// The blob.
    pub id: BlobId,
    /// Where it is.
    pub loc: Location,
    /// (entry index, offset in file).
    pub targets: Vec<(usize, u64)>,
}

/// A restore plan: what to create and which packs to read.
#[derive(Debug, Default)]
pub struct RestorePlan {
    /// Entries in pre-order.
    pub entries: Vec<PlanEntry>,
    /// Blobs to read, grouped by pack.
    pub packs: BTreeMap<PackId, Vec<PlanBlob>>,
    /// Bytes of file content.
    pub total_bytes: u64,
    /// Bytes that are holes (all-zero chunks) and are not written.
    pub hole_bytes: u64,
    /// Files that cannot be restored (their data is not indexed).
    pub unrestorable: Vec<PathMessage>,
}

/// Computes the plan for restoring the tree `root` (or the subtree at `sub`), within the
/// reference's limits for an expanding walk ([`Limits::expanding`]).
pub fn plan(repo: &ReadRepository, root: &BlobId, sub: Option<&Path>, opts: &RestoreOptions) -> Result<RestorePlan> {
    plan_with(repo, root, sub, opts, &Limits::expanding())
}

/// [`plan`] within `limits`: a deeper or larger tree is refused with an error naming the tree and
/// the path; more entries plus chunk placements than `limits.max_entries` is an
/// [`Error::Refused`], and so is a plan that passes `limits.expansion`: the
/// [`crate::tree::entry_bytes`] of the entries walked plus 16 bytes per chunk placement and 160
/// per blob to read, against the budget's cap for the distinct tree bytes
/// read (directories and chunk lists).
pub fn plan_with(
    repo: &ReadRepository,
    root: &BlobId,
    sub: Option<&Path>,
    opts: &RestoreOptions,
    limits: &Limits,
) -> Result<RestorePlan> {
    let mut p = RestorePlan::default();
    let mut files = Files::new(repo, limits.max_entries);
    let (start_tree, base) = match sub {
        None => (*root, PathBuf::from("/")),
        Some(s) => match browse::find(repo, root, s)? {
            None => (*root, PathBuf::from("/")),
            Some(n) => match n.kind {
                NodeKind::Dir { tree } => {
                    // Restore the directory itself with its ancestors' names.
                    p.entries.push(PlanEntry { path: s.to_path_buf(), node: n.clone(), link_to: None });
                    (tree, s.to_path_buf())
                }
                _ => {
                    files.add_entry(&mut p, s.to_path_buf(), n)?;
                    return Ok(p);
                }
            },
        },
    };
    let mut c = Collect { opts, out: Vec::new(), dirs: vec![(false, 0, false)], weight: 0, max: limits.max_entries };
    let mut walker = Walker::new(repo).limits(*limits);
    walker.walk(&start_tree, &base, &mut c)?;
    if let Some(x) = limits.expansion {
        let (held, distinct) = walker.expansion();
        files.budget = Some(Budget { x, root: start_tree, held, distinct });
    }
    drop(walker);
    p.entries.reserve_exact(c.out.len());
    let mut groups: HashMap<u64, usize> = HashMap::new();
    let mut members = HardlinkGroups::default();
    for (path, node) in c.out {
        if let Err(m) = members.admit(&node) {
            p.unrestorable.push(PathMessage { path: path.display().to_string(), message: m });
            continue;
        }
        if let Some(&primary) = groups.get(&node.hardlink).filter(|_| node.hardlink != 0) {
            p.entries.push(PlanEntry { path, node, link_to: Some(primary) });
            continue;
        }
        let hl = node.hardlink;
        let idx = files.add_entry(&mut p, path, node)?;
        if hl != 0 {
            if let Some(i) = idx {
                groups.insert(hl, i);
            }
        }
    }
    Ok(p)
}

/// Collects the entries to restore in pre-order: what the excludes leave, of that what the
/// includes select (with everything below a selected directory), and the directories on the way
/// to a selected entry.
struct Collect<'o> {
    opts: &'o RestoreOptions,
    out: Vec<(PathBuf, Node)>,
    /// Per directory being walked, the start first: whether it is selected, where its entry is
    /// in `out`, and whether anything below it was kept.
    dirs: Vec<(bool, usize, bool)>,
    /// Entries kept plus the ids their contents name (what `out` holds), against `max`.
    weight: u64,
    max: u64,
}

impl Visitor for Collect<'_> {
    fn node(&mut self, path: &Path, n: &Node) -> Result<Control> {
        if self.opts.excludes.matches(path) {
            return Ok(Control::Skip);
        }
        self.weight += 1 + match &n.kind {
            NodeKind::File { content: Content::Chunks(ids) } => ids.len() as u64,
            NodeKind::File { content: Content::Indirect { lists, .. } } => lists.len() as u64,
            _ => 0,
        };
        if self.weight > self.max {
            return Err(too_many(self.max, path));
        }
        let (inherited, _, any) = self.dirs.last_mut().expect("entered");
        let sel = *inherited || self.opts.includes.is_empty() || self.opts.includes.matches(path);
        if let NodeKind::Dir { .. } = n.kind {
            self.dirs.push((sel, self.out.len(), false));
            self.out.push((path.to_path_buf(), n.clone()));
            return Ok(Control::Descend);
        }
        if sel {
            *any = true;
            self.out.push((path.to_path_buf(), n.clone()));
        }
        Ok(Control::Skip)
    }

    fn leave(&mut self, _: &Path, _: &BlobId) -> Result<()> {
        if self.dirs.len() == 1 {
            // The start directory: its entry, if any, is the caller's.
            return Ok(());
        }
        let (sel, at, any) = self.dirs.pop().expect("entered");
        if !sel && !any {
            self.out.truncate(at);
        } else if let Some(up) = self.dirs.last_mut() {
            up.2 = true;
        }
        Ok(())
    }
}

fn too_many(max: u64, path: &Path) -> Error {
    Error::refused(format!(
        "restore stopped at {}: the snapshot has more entries and chunks than the limit of {max} (format-spec §7.5)",
        path.display()
    ))
}

/// Bytes counted per chunk id of a chunk list read (its place in the list's run).
const RUN_CHUNK_BYTES: u64 = std::mem::size_of::<(BlobId, Location, u64)>() as u64;

/// Bytes counted per blob the plan reads (its [`PlanBlob`] and its place in the lookup of blobs).
const PLAN_BLOB_BYTES: u64 = 160;

/// The expansion budget of the plan as the walk left it: bytes held and distinct tree bytes read,
/// to which placing the contents adds.
struct Budget {
    x: crate::tree::Expansion,
    root: BlobId,
    held: u64,
    distinct: u64,
}

impl Budget {
    fn add(&mut self, held: u64, distinct: u64, path: &Path) -> Result<()> {
        self.held += held;
        self.distinct += distinct;
        if self.held > self.x.cap(self.distinct) {
            return Err(crate::trees::expansion_refused(&self.root, path, self.held, self.x, self.distinct));
        }
        Ok(())
    }
}

/// Where a run of chunks goes, relative to its start: its number of chunk ids, its length, the
/// bytes that are holes, and the chunks to write (id, location, offset).
#[derive(Debug, Default)]
struct Run {
    ids: u64,
    len: u64,
    holes: u64,
    chunks: Vec<(BlobId, Location, u64)>,
}

/// Places files' contents: each chunk list once, holes without a buffer.
struct Files<'r> {
    repo: &'r ReadRepository,
    /// The content id of an all-zero chunk, per length.
    zero_ids: HashMap<u32, BlobId>,
    /// Per chunk list placed: its run, or why it cannot be restored.
    lists: HashMap<BlobId, Rc<std::result::Result<Run, String>>>,
    /// Per pack and blob: where the blob is in the plan's list for the pack.
    at: HashMap<(PackId, BlobId), usize>,
    /// Chunk placements so far, against `max`.
    placed: u64,
    max: u64,
    budget: Option<Budget>,
}

/// All-zero bytes to hash a hole of any length in pieces.
static ZEROS: [u8; 65536] = [0; 65536];

impl<'r> Files<'r> {
    fn new(repo: &'r ReadRepository, max: u64) -> Self {
        Files {
            repo,
            zero_ids: HashMap::new(),
            lists: HashMap::new(),
            at: HashMap::new(),
            placed: 0,
            max,
            budget: None,
        }
    }

    /// The content id of `len` zero bytes, computed once per length in 64 KiB pieces.
    fn zero_id(&mut self, len: u32) -> BlobId {
        let key = &self.repo.keys().id_key.0;
        *self.zero_ids.entry(len).or_insert_with(|| {
            let mut h = blake3::Hasher::new_keyed(key);
            let mut left = len as usize;
            while left > 0 {
                let n = left.min(ZEROS.len());
                h.update(&ZEROS[..n]);
                left -= n;
            }
            BlobId(*h.finalize().as_bytes())
        })
    }

    /// Places `ids` one after the other.
    fn run(&mut self, ids: &[BlobId]) -> Result<std::result::Result<Run, String>> {
        let mut r = Run::default();
        for id in ids {
            let Some(loc) = self.repo.locate(BlobKind::Data, id)?.into_iter().next() else {
                return Ok(Err(format!("data blob {id} is not in any index")));
            };
            let len = loc.plain_length;
            if *id == self.zero_id(len) {
                r.holes += len as u64;
            } else {
                r.chunks.push((*id, loc, r.len));
            }
            r.len += len as u64;
            r.ids += 1;
        }
        Ok(Ok(r))
    }

    /// The run of chunk list `l`, read and placed once.
    fn list(&mut self, l: &BlobId) -> Result<Rc<std::result::Result<Run, String>>> {
        if let Some(r) = self.lists.get(l) {
            return Ok(r.clone());
        }
        let r = match chunk_list(self.repo, l) {
            Ok(ids) => {
                if let Some(b) = &mut self.budget {
                    // The list's plaintext is read once; its run is kept.
                    b.add(RUN_CHUNK_BYTES * ids.len() as u64, 32 * ids.len() as u64, Path::new("/"))?;
                }
                self.run(&ids)?
            }
            Err(f) => Err(f.into_error(l).to_string()),
        };
        let r = Rc::new(r);
        self.lists.insert(*l, r.clone());
        Ok(r)
    }

    /// Adds the entry for `node`; for a file, the blobs of its content. Returns the entry's
    /// index, or `None` when the file cannot be restored (recorded in `unrestorable`).
    fn add_entry(&mut self, p: &mut RestorePlan, path: PathBuf, node: Node) -> Result<Option<usize>> {
        let idx = p.entries.len();
        if let NodeKind::File { content } = &node.kind {
            let fail = |p: &mut RestorePlan, message: String| {
                p.unrestorable.push(PathMessage { path: path.display().to_string(), message });
                Ok(None)
            };
            // The runs of the content, in order: one per chunk list (a list named again is the
            // same run, placed once).
            let mut runs: Vec<Rc<std::result::Result<Run, String>>> = Vec::new();
            match content {
                // Written from the node when the file is created (write::write_inline).
                Content::Inline(_) => {}
                Content::Chunks(ids) => runs.push(Rc::new(self.run(ids)?)),
                Content::Indirect { lists, count } => {
                    if let Err(e) = crate::tree::check_indirect(lists, *count) {
                        return fail(p, e);
                    }
                    for l in lists {
                        runs.push(self.list(l)?);
                    }
                }
            }
            let mut off = content.inline().map_or(0, |b| b.len() as u64);
            let mut holes = 0u64;
            for r in &runs {
                match r.as_ref() {
                    Err(m) => return fail(p, m.clone()),
                    Ok(run) => {
                        off = match off.checked_add(run.len) {
                            Some(o) => o,
                            None => return fail(p, "content longer than 2^64 bytes".into()),
                        };
                        holes += run.holes;
                    }
                }
            }
            if let Content::Indirect { lists, count } = content {
                let ids: u64 = runs.iter().map(|r| r.as_ref().as_ref().map_or(0, |r| r.ids)).sum();
                if ids != *count {
                    let first = lists.first().copied().unwrap_or(BlobId([0; 32]));
                    return fail(
                        p,
                        format!("tree blob {first}: chunk list count mismatch: {ids} ids, the content says {count}"),
                    );
                }
            }
            if off != node.size {
                return fail(p, format!("content is {off} bytes, the tree says {}", node.size));
            }
            p.total_bytes += off;
            p.hole_bytes += holes;
            let mut start = 0u64;
            for r in &runs {
                let Ok(run) = r.as_ref() else { continue };
                self.placed += run.chunks.len() as u64;
                if self.placed > self.max {
                    return Err(too_many(self.max, &path));
                }
                if let Some(b) = &mut self.budget {
                    b.add(16 * run.chunks.len() as u64, 0, &path)?;
                }
                for (id, loc, o) in &run.chunks {
                    let list = p.packs.entry(loc.pack).or_default();
                    match self.at.get(&(loc.pack, *id)) {
                        Some(&i) => list[i].targets.push((idx, start + o)),
                        None => {
                            if let Some(b) = &mut self.budget {
                                b.add(PLAN_BLOB_BYTES, 0, &path)?;
                            }
                            self.at.insert((loc.pack, *id), list.len());
                            list.push(PlanBlob { id: *id, loc: loc.clone(), targets: vec![(idx, start + o)] });
                        }
                    }
                }
                start += run.len;
            }
        }
        p.entries.push(PlanEntry { path, node, link_to: None });
        Ok(Some(idx))
    }
}
