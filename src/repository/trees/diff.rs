//! The two-tree walk: two directories of one repository walked in step by name, each entry
//! reported as added, removed, changed or the same. Subtrees with equal tree ids are never read,
//! so comparing two snapshots reads only what differs between them.

use crate::error::Result;
use crate::id::BlobId;
use crate::repository::ReadRepository;
use crate::tree::{Node, NodeKind};
use crate::treeread::{read_dir, DirFault};
use crate::treewalk::Control;
use std::cmp::Ordering;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How an entry differs between the old and the new tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Only in the new tree.
    Added,
    /// Only in the old tree.
    Removed,
    /// In both, with different nodes (a directory whose tree differs is changed).
    Changed,
    /// In both, with equal nodes (a directory's node holds its tree id: nothing below differs).
    Same,
}

/// One entry of a two-tree walk.
#[derive(Debug)]
pub struct DiffEntry<'a> {
    /// The absolute path.
    pub path: &'a Path,
    /// How it differs.
    pub change: Change,
    /// The node in the old tree.
    pub old: Option<&'a Node>,
    /// The node in the new tree.
    pub new: Option<&'a Node>,
}

/// Walks the directories `old` and `new` (whose path is `base`) in step, in pre-order and name
/// order, calling `f` for each entry of either. [`Control::Descend`] on an entry that is a
/// directory on either side walks below it: the entries of a directory on one side only are all
/// added (or removed), and a directory whose tree id is the same on both sides is not read.
/// [`Control::Stop`] ends the walk. A directory that cannot be read whole is an error.
pub fn diff(
    repo: &ReadRepository,
    old: &BlobId,
    new: &BlobId,
    base: &Path,
    f: &mut dyn FnMut(&DiffEntry) -> Result<Control>,
) -> Result<()> {
    let mut d = Diff { repo, path: base.to_path_buf(), on_path: HashSet::new(), f };
    d.dir(Some(*old), Some(*new)).map(|_| ())
}

struct Diff<'a, 'f> {
    repo: &'a ReadRepository,
    path: PathBuf,
    on_path: HashSet<BlobId>,
    f: &'f mut dyn FnMut(&DiffEntry) -> Result<Control>,
}

fn dir_tree(n: Option<&Node>) -> Option<BlobId> {
    match n.map(|n| &n.kind) {
        Some(NodeKind::Dir { tree }) => Some(*tree),
        _ => None,
    }
}

impl Diff<'_, '_> {
    /// Reads one side's listing; none for a side that is no directory.
    fn listing(&mut self, tree: Option<BlobId>) -> Result<Vec<Node>> {
        let Some(t) = tree else { return Ok(Vec::new()) };
        if !self.on_path.insert(t) {
            return Err(DirFault::Cycle(t).into_error(&t));
        }
        read_dir(self.repo, &t)
    }

    /// Walks below one pair of directories; true when the walk was stopped.
    fn dir(&mut self, old: Option<BlobId>, new: Option<BlobId>) -> Result<bool> {
        if old == new {
            return Ok(false);
        }
        let a = self.listing(old)?;
        let b = self.listing(new)?;
        let (mut i, mut j) = (0, 0);
        let mut stopped = false;
        while i < a.len() || j < b.len() {
            let order = match (a.get(i), b.get(j)) {
                (Some(x), Some(y)) => x.name.cmp(&y.name),
                (Some(_), None) => Ordering::Less,
                _ => Ordering::Greater,
            };
            let (o, n) = match order {
                Ordering::Less => (a.get(i), None),
                Ordering::Greater => (None, b.get(j)),
                Ordering::Equal => (a.get(i), b.get(j)),
            };
            i += usize::from(o.is_some());
            j += usize::from(n.is_some());
            let change = match (o, n) {
                (Some(x), Some(y)) if x == y => Change::Same,
                (Some(_), Some(_)) => Change::Changed,
                (Some(_), None) => Change::Removed,
                _ => Change::Added,
            };
            let name = o.or(n).map(|x| x.name.as_slice()).unwrap_or_default();
            self.path.push(OsStr::from_bytes(name));
            let ctl = (self.f)(&DiffEntry { path: &self.path, change, old: o, new: n })?;
            let (ot, nt) = (dir_tree(o), dir_tree(n));
            stopped = match ctl {
                Control::Stop => true,
                Control::Descend if change != Change::Same && (ot.is_some() || nt.is_some()) => self.dir(ot, nt)?,
                _ => false,
            };
            self.path.pop();
            if stopped {
                break;
            }
        }
        for t in [old, new].into_iter().flatten() {
            self.on_path.remove(&t);
        }
        Ok(stopped)
    }
}
