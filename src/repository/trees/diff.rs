//! The two-tree walk: two directories of one repository walked in step by name, each entry
//! reported as added, removed, changed or the same. Subtrees with equal tree ids are never read,
//! so comparing two snapshots reads only what differs between them. The walk keeps the limits of
//! the one walker ([`crate::treewalk`], format-spec §7.5): depth, parts per directory and entries
//! per walk; a directory below itself is refused. The pairing of two listings by name is the pure
//! [`pairs`].

use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::tree::{Limits, Node, NodeKind};
use crate::treeread::{read_dir_with, DirFault, TreeSource};
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
/// [`Control::Stop`] ends the walk. A directory that cannot be read whole, or beyond a limit of
/// [`Limits::default`], is an error naming its tree blob and path.
pub fn diff(
    src: &dyn TreeSource,
    old: &BlobId,
    new: &BlobId,
    base: &Path,
    f: &mut dyn FnMut(&DiffEntry) -> Result<Control>,
) -> Result<()> {
    diff_dirs(src, Some(*old), Some(*new), base, Limits::default(), f)
}

/// [`diff`] of two directories either of which may be absent (`None`: every entry of the other
/// is added or removed), within `limits`.
pub fn diff_dirs(
    src: &dyn TreeSource,
    old: Option<BlobId>,
    new: Option<BlobId>,
    base: &Path,
    limits: Limits,
    f: &mut dyn FnMut(&DiffEntry) -> Result<Control>,
) -> Result<()> {
    let root = new.or(old).unwrap_or(BlobId([0; 32]));
    let mut d =
        Diff { src, path: base.to_path_buf(), on_path: Default::default(), f, limits, entries: 0, depth: 0, root };
    d.dir(old, new).map(|_| ())
}

/// The entries of two listings in canonical order (format-spec §7.2), paired by name: each name of
/// either once, in increasing order, with its node on each side where it has one. Listings whose
/// names do not strictly increase pair as far as a merge of them does.
pub fn pairs<'a>(old: &'a [Node], new: &'a [Node]) -> Vec<(Option<&'a Node>, Option<&'a Node>)> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(old.len().max(new.len()));
    while i < old.len() || j < new.len() {
        let order = match (old.get(i), new.get(j)) {
            (Some(x), Some(y)) => x.name.cmp(&y.name),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        let pair = match order {
            Ordering::Less => (old.get(i), None),
            Ordering::Greater => (None, new.get(j)),
            Ordering::Equal => (old.get(i), new.get(j)),
        };
        i += usize::from(pair.0.is_some());
        j += usize::from(pair.1.is_some());
        out.push(pair);
    }
    out
}

struct Diff<'a, 'f> {
    src: &'a dyn TreeSource,
    path: PathBuf,
    /// The directories on the way down, per side (a tree met again on its own side is a cycle).
    on_path: [HashSet<BlobId>; 2],
    f: &'f mut dyn FnMut(&DiffEntry) -> Result<Control>,
    limits: Limits,
    entries: u64,
    depth: usize,
    root: BlobId,
}

fn dir_tree(n: Option<&Node>) -> Option<BlobId> {
    match n.map(|n| &n.kind) {
        Some(NodeKind::Dir { tree }) => Some(*tree),
        _ => None,
    }
}

impl Diff<'_, '_> {
    /// Reads one side's listing; none for a side that is no directory.
    fn listing(&mut self, side: usize, tree: Option<BlobId>) -> Result<Vec<Node>> {
        let Some(t) = tree else { return Ok(Vec::new()) };
        if !self.on_path[side].insert(t) {
            return Err(DirFault::Cycle(t).error_at(&t, &self.path));
        }
        if self.depth > self.limits.max_depth {
            return Err(DirFault::TooDeep(t).error_at(&t, &self.path));
        }
        match read_dir_with(self.src, &t, self.limits.max_dir_parts, &mut |_, _| {}) {
            (l, None) => Ok(l.nodes),
            (_, Some(f)) => Err(f.error_at(&t, &self.path)),
        }
    }

    /// Walks below one pair of directories; true when the walk was stopped.
    fn dir(&mut self, old: Option<BlobId>, new: Option<BlobId>) -> Result<bool> {
        if old == new {
            return Ok(false);
        }
        let a = self.listing(0, old)?;
        let b = self.listing(1, new)?;
        let mut stopped = false;
        for (o, n) in pairs(&a, &b) {
            let change = match (o, n) {
                (Some(x), Some(y)) if x == y => Change::Same,
                (Some(_), Some(_)) => Change::Changed,
                (Some(_), None) => Change::Removed,
                _ => Change::Added,
            };
            let name = o.or(n).map(|x| x.name.as_slice()).unwrap_or_default();
            self.path.push(OsStr::from_bytes(name));
            self.entries += 1;
            if self.entries > self.limits.max_entries {
                return Err(Error::refused(format!(
                    "the walk of tree {} passed the limit of {} entries at {} (format-spec §7.5)",
                    self.root,
                    self.limits.max_entries,
                    self.path.display()
                )));
            }
            let ctl = (self.f)(&DiffEntry { path: &self.path, change, old: o, new: n })?;
            let (ot, nt) = (dir_tree(o), dir_tree(n));
            stopped = match ctl {
                Control::Stop => true,
                Control::Descend if change != Change::Same && (ot.is_some() || nt.is_some()) => {
                    self.depth += 1;
                    let r = self.dir(ot, nt)?;
                    self.depth -= 1;
                    r
                }
                _ => false,
            };
            self.path.pop();
            if stopped {
                break;
            }
        }
        for (side, t) in [old, new].into_iter().enumerate() {
            if let Some(t) = t {
                self.on_path[side].remove(&t);
            }
        }
        Ok(stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::TreeBlob;
    use proptest::prelude::*;
    use std::collections::{BTreeSet, HashMap};

    fn fifo(name: &[u8]) -> Node {
        Node::bare(name, NodeKind::Fifo)
    }

    proptest! {
        /// Every name of either listing comes once, in increasing order, with the node of each side that has it.
        #[test]
        fn pairs_merge_two_sorted_listings(a in proptest::collection::btree_set(proptest::collection::vec(0u8..4, 1..3), 0..8),
                                           b in proptest::collection::btree_set(proptest::collection::vec(0u8..4, 1..3), 0..8)) {
            let old: Vec<Node> = a.iter().map(|n| fifo(n)).collect();
            let new: Vec<Node> = b.iter().map(|n| fifo(n)).collect();
            let got = pairs(&old, &new);
            let names: Vec<Vec<u8>> = got.iter().map(|(o, n)| o.or(*n).unwrap().name.clone()).collect();
            let union: Vec<Vec<u8>> = a.union(&b).cloned().collect::<BTreeSet<_>>().into_iter().collect();
            prop_assert_eq!(&names, &union);
            for ((o, n), name) in got.iter().zip(&names) {
                prop_assert_eq!(o.is_some(), a.contains(name));
                prop_assert_eq!(n.is_some(), b.contains(name));
                prop_assert!(o.iter().chain(n.iter()).all(|x| &x.name == name));
            }
        }
    }

    fn id(n: u8) -> BlobId {
        BlobId([n; 32])
    }

    fn put(m: &mut HashMap<BlobId, Vec<u8>>, n: u8, nodes: Vec<Node>) {
        m.insert(id(n), TreeBlob::DirV1 { nodes, next: None }.encode());
    }

    fn dir(name: &str, tree: BlobId) -> Node {
        Node::bare(name.as_bytes(), NodeKind::Dir { tree })
    }

    fn walk(m: &HashMap<BlobId, Vec<u8>>, old: u8, new: u8, limits: Limits) -> (Vec<String>, Result<()>) {
        let mut seen = Vec::new();
        let r = diff_dirs(m, Some(id(old)), Some(id(new)), Path::new("/"), limits, &mut |e: &DiffEntry| {
            seen.push(format!("{:?} {}", e.change, e.path.display()));
            Ok(Control::Descend)
        });
        (seen, r)
    }

    #[test]
    fn a_tree_on_both_sides_at_different_depths_is_no_cycle() {
        // Old /d is X = {e: Z}; new /d is Y = {e: X}: the contents moved one level down.
        let mut m = HashMap::new();
        put(&mut m, 3, vec![fifo(b"z")]);
        put(&mut m, 2, vec![dir("e", id(3))]);
        put(&mut m, 4, vec![dir("e", id(2))]);
        put(&mut m, 1, vec![dir("d", id(2))]);
        put(&mut m, 5, vec![dir("d", id(4))]);
        let (seen, r) = walk(&m, 1, 5, Limits::default());
        r.unwrap();
        assert_eq!(seen, ["Changed /d", "Changed /d/e", "Added /d/e/e", "Added /d/e/e/z", "Removed /d/e/z"]);
    }

    #[test]
    fn the_walk_keeps_the_limits_of_the_one_walker() {
        // A chain /d/d/d/d/d on the new side only.
        let mut m = HashMap::new();
        put(&mut m, 20, vec![]);
        for n in 10..15u8 {
            put(&mut m, n, vec![dir("d", id(n + 1))]);
        }
        put(&mut m, 15, vec![]);
        let (seen, r) = walk(&m, 20, 10, Limits { max_depth: 2, ..Limits::default() });
        assert_eq!(seen.len(), 3, "{seen:?}");
        let e = r.unwrap_err().to_string();
        assert!(e.contains("deeper than the limit") && e.contains("/d/d/d"), "{e}");
        let (seen, r) = walk(&m, 20, 10, Limits { max_entries: 2, ..Limits::default() });
        assert_eq!(seen.len(), 2);
        assert!(r.unwrap_err().to_string().contains("limit of 2 entries"));
        walk(&m, 20, 10, Limits::default()).1.unwrap();
        // A directory below itself on one side.
        put(&mut m, 14, vec![dir("d", id(12))]);
        let e = walk(&m, 20, 10, Limits::default()).1.unwrap_err().to_string();
        assert!(e.contains("contains itself"), "{e}");
    }
}
