//! The restore plan (format-spec §7): which entries to create, in pre-order, and which blobs to read
//! from which pack, so that each pack is read once. Reads trees and the index; writes nothing.

use super::RestoreOptions;
use crate::browse;
use crate::cache::Location;
use crate::error::Result;
use crate::id::{BlobId, BlobKind, PackId};
use crate::ops::PathMessage;
use crate::repository::ReadRepository;
use crate::tree::{Node, NodeKind};
use crate::trees::{chunk_ids, Control, Visitor, Walker};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

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

/// Computes the plan for restoring the tree `root` (or the subtree at `sub`).
pub fn plan(repo: &ReadRepository, root: &BlobId, sub: Option<&Path>, opts: &RestoreOptions) -> Result<RestorePlan> {
    let mut p = RestorePlan::default();
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
                    let parent = s.parent().unwrap_or(Path::new("/")).to_path_buf();
                    add_entry(repo, &mut p, s.to_path_buf(), n, &mut HashMap::new(), &mut HashMap::new())?;
                    let _ = parent;
                    return Ok(p);
                }
            },
        },
    };
    let mut groups: HashMap<u64, usize> = HashMap::new();
    let mut zero_ids: HashMap<u32, BlobId> = HashMap::new();
    let mut c = Collect { opts, out: Vec::new(), dirs: vec![(false, 0, false)] };
    Walker::new(repo).walk(&start_tree, &base, &mut c)?;
    for (path, node) in c.out {
        if let Some(&primary) = groups.get(&node.hardlink).filter(|_| node.hardlink != 0) {
            p.entries.push(PlanEntry { path, node, link_to: Some(primary) });
            continue;
        }
        let hl = node.hardlink;
        let idx = add_entry(repo, &mut p, path, node, &mut zero_ids, &mut HashMap::new())?;
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
}

impl Visitor for Collect<'_> {
    fn node(&mut self, path: &Path, n: &Node) -> Result<Control> {
        if self.opts.excludes.matches(path) {
            return Ok(Control::Skip);
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

fn add_entry(
    repo: &ReadRepository,
    p: &mut RestorePlan,
    path: PathBuf,
    node: Node,
    zero_ids: &mut HashMap<u32, BlobId>,
    _scratch: &mut HashMap<u64, usize>,
) -> Result<Option<usize>> {
    let idx = p.entries.len();
    if let NodeKind::File { content } = &node.kind {
        let ids = match chunk_ids(repo, content) {
            Ok(v) => v,
            Err(e) => {
                p.unrestorable.push(PathMessage { path: path.display().to_string(), message: e.to_string() });
                return Ok(None);
            }
        };
        let mut placed = Vec::with_capacity(ids.len());
        let mut off = 0u64;
        for id in &ids {
            let locs = repo.locate(BlobKind::Data, id)?;
            let Some(loc) = locs.into_iter().next() else {
                p.unrestorable.push(PathMessage {
                    path: path.display().to_string(),
                    message: format!("data blob {id} is not in any index"),
                });
                return Ok(None);
            };
            let len = loc.plain_length;
            let zero = *zero_ids.entry(len).or_insert_with(|| repo.keys().content_id(&vec![0u8; len as usize]));
            if *id == zero {
                p.hole_bytes += len as u64;
            } else {
                placed.push((*id, loc, off));
            }
            off += len as u64;
        }
        if off != node.size {
            p.unrestorable.push(PathMessage {
                path: path.display().to_string(),
                message: format!("content is {off} bytes, the tree says {}", node.size),
            });
            return Ok(None);
        }
        p.total_bytes += off;
        for (id, loc, o) in placed {
            let list = p.packs.entry(loc.pack).or_default();
            match list.iter_mut().find(|b| b.id == id) {
                Some(b) => b.targets.push((idx, o)),
                None => list.push(PlanBlob { id, loc, targets: vec![(idx, o)] }),
            }
        }
    }
    p.entries.push(PlanEntry { path, node, link_to: None });
    Ok(Some(idx))
}
