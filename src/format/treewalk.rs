//! The one walk over trees: from a directory's tree, every node below it in pre-order (names in
//! byte order) with its absolute path, reading each directory across its parts from any
//! [`TreeSource`]. The visitor says per node whether to descend, and per directory that cannot be
//! read whole whether to go on; it is the only place that decides what an error means for its
//! operation. The walk keeps the reference's limits (format-spec §7.5): depth and parts per
//! directory become faults of the directory, the entries of one walk an error; a directory met
//! again below itself is a fault ([`DirFault::Cycle`]).

use crate::error::{Error, Override, Result};
use crate::id::BlobId;
use crate::tree::{entry_bytes, Limits, Node, NodeKind};
use crate::treeread::{read_dir_with, DirFault, Listing, TreeSource};
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// What the walk does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Read the directory and walk its entries (for any other node: go on).
    Descend,
    /// Leave the directory unread and go on with the next entry.
    Skip,
    /// End the walk now: no further calls, and [`Walker::walk`] returns `Ok`.
    Stop,
}

/// What a walk calls. Only [`Visitor::node`] is required; a closure
/// `FnMut(&Path, &Node) -> Result<Control>` is a visitor.
///
/// Calls come in this order for a directory entered: `enter`, then `tree_blob` per part read,
/// then `fault` if it could not be read whole, then `node` per entry (a directory entry's own
/// calls follow its `node`), then `leave`. An error returned by any call ends the walk with it.
pub trait Visitor {
    /// A directory (the root included) is about to be read. [`Control::Skip`] leaves it unread
    /// and calls no `leave` for it.
    fn enter(&mut self, _path: &Path, _tree: &BlobId) -> Result<Control> {
        Ok(Control::Descend)
    }
    /// A part of a directory as read, with its plaintext. A directory entered again in the same
    /// walker may come from its cache of small directories, without these calls.
    fn tree_blob(&mut self, _id: &BlobId, _plain: &[u8]) {}
    /// The directory could not be read whole (or its parts are out of order, or it is beyond a
    /// limit); `readable` holds the parts read before the fault. [`Control::Descend`] walks those
    /// entries, [`Control::Skip`] none. By default the fault is the walk's error, naming the
    /// tree blob and the directory's path.
    fn fault(&mut self, path: &Path, tree: &BlobId, fault: DirFault, _readable: &Listing) -> Result<Control> {
        Err(fault.error_at(tree, path))
    }
    /// An entry, with its absolute path. For a directory, [`Control::Descend`] enters it.
    fn node(&mut self, path: &Path, node: &Node) -> Result<Control>;
    /// After the last entry of a directory that `enter` let in.
    fn leave(&mut self, _path: &Path, _tree: &BlobId) -> Result<()> {
        Ok(())
    }
}

impl<F: FnMut(&Path, &Node) -> Result<Control>> Visitor for F {
    fn node(&mut self, path: &Path, node: &Node) -> Result<Control> {
        self(path, node)
    }
}

/// Walks trees of one source; keeps, across walks, the directories already walked when asked to
/// skip them.
pub struct Walker<'r> {
    src: &'r dyn TreeSource,
    seen: Option<HashSet<BlobId>>,
    sorted: bool,
    limits: Limits,
    /// Directories read whole, by tree id, while they hold at most [`CACHED_NODES`] entries in all:
    /// a directory met again (a subtree a snapshot names twice) is not read again.
    cache: HashMap<BlobId, Rc<[Node]>>,
    cached: usize,
    /// Under an expansion budget: the tree blobs read, their plaintext bytes, and the
    /// [`entry_bytes`] of the entries visited, over all walks of this walker.
    parts_read: HashSet<BlobId>,
    distinct: u64,
    held: u64,
}

/// Entries the walker keeps of directories already read (a few MiB).
const CACHED_NODES: usize = 16384;

struct Level {
    tree: BlobId,
    nodes: std::vec::IntoIter<Node>,
    /// True when this level put `tree` on the way down (a cycle's level did not).
    on_path: bool,
}

enum Opened {
    Level(Level),
    Skipped,
    Stop,
}

impl<'r> Walker<'r> {
    /// A walker over `src`'s trees, with the reference's limits.
    pub fn new(src: &'r dyn TreeSource) -> Self {
        Walker {
            src,
            seen: None,
            sorted: false,
            limits: Limits::default(),
            cache: HashMap::new(),
            cached: 0,
            parts_read: HashSet::new(),
            distinct: 0,
            held: 0,
        }
    }

    /// Under an expansion budget ([`Limits::expansion`]), the bytes the walks of this walker
    /// have counted so far: the [`entry_bytes`] of the entries visited, and the plaintext of the
    /// distinct tree blobs read (zero without a budget).
    pub fn expansion(&self) -> (u64, u64) {
        (self.held, self.distinct)
    }

    /// Skips, silently, every directory (by tree id) that this walker has entered before, in
    /// this walk or an earlier one: a walk over many snapshots reads each shared subtree once.
    pub fn skip_seen(mut self) -> Self {
        self.seen = Some(HashSet::new());
        self
    }

    /// Walks a directory whose parts are out of order between them in canonical order, the first
    /// of equal names kept (what a rebuilt directory holds): [`DirFault::Order`] is no fault
    /// here. Parts are each checked when decoded.
    pub fn sorted(mut self) -> Self {
        self.sorted = true;
        self
    }

    /// Walks with `limits` instead of the reference's.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Walks the directory `root`, whose path is `base`. More entries than the limit end the
    /// walk with [`Error::Refused`], naming `root` and the path reached.
    pub fn walk(&mut self, root: &BlobId, base: &Path, v: &mut dyn Visitor) -> Result<()> {
        let mut path: PathBuf = base.to_path_buf();
        let mut on_path: HashSet<BlobId> = HashSet::new();
        let mut entries = 0u64;
        let mut stack = match self.open(root, &path, 0, v, &mut on_path)? {
            Opened::Level(l) => vec![l],
            Opened::Skipped | Opened::Stop => return Ok(()),
        };
        while let Some(top) = stack.last_mut() {
            let Some(node) = top.nodes.next() else {
                let Some(done) = stack.pop() else { break };
                if done.on_path {
                    on_path.remove(&done.tree);
                }
                v.leave(&path, &done.tree)?;
                if !stack.is_empty() {
                    path.pop();
                }
                continue;
            };
            path.push(OsStr::from_bytes(&node.name));
            entries += 1;
            if entries > self.limits.max_entries {
                return Err(Error::refused(format!(
                    "the walk of tree {root} passed the limit of {} entries at {} (format-spec §7.5)",
                    self.limits.max_entries,
                    path.display()
                )));
            }
            if let Some(x) = self.limits.expansion {
                self.held += entry_bytes(path.as_os_str().len(), &node);
                if self.held > x.cap(self.distinct) {
                    return Err(expansion_refused(root, &path, self.held, x, self.distinct));
                }
            }
            match (v.node(&path, &node)?, &node.kind) {
                (Control::Stop, _) => return Ok(()),
                (Control::Descend, NodeKind::Dir { tree }) => {
                    match self.open(tree, &path, stack.len(), v, &mut on_path)? {
                        Opened::Level(l) => {
                            stack.push(l);
                            continue;
                        }
                        Opened::Skipped => {}
                        Opened::Stop => return Ok(()),
                    }
                }
                _ => {}
            }
            path.pop();
        }
        Ok(())
    }

    /// Enters and reads one directory, `depth` levels below the walk's start.
    fn open(
        &mut self,
        tree: &BlobId,
        path: &Path,
        depth: usize,
        v: &mut dyn Visitor,
        on_path: &mut HashSet<BlobId>,
    ) -> Result<Opened> {
        if let Some(seen) = &mut self.seen {
            if !seen.insert(*tree) {
                return Ok(Opened::Skipped);
            }
        }
        match v.enter(path, tree)? {
            Control::Descend => {}
            Control::Skip => return Ok(Opened::Skipped),
            Control::Stop => return Ok(Opened::Stop),
        }
        let (read, mut fault) = if on_path.contains(tree) {
            (Listing::default(), Some(DirFault::Cycle(*tree)))
        } else if depth > self.limits.max_depth {
            (Listing::default(), Some(DirFault::TooDeep(*tree)))
        } else if let Some(nodes) = self.cache.get(tree) {
            let nodes: Vec<Node> = nodes.to_vec();
            let fresh = on_path.insert(*tree);
            return Ok(Opened::Level(Level { tree: *tree, nodes: nodes.into_iter(), on_path: fresh }));
        } else {
            let counting = self.limits.expansion.is_some();
            let (parts_read, distinct) = (&mut self.parts_read, &mut self.distinct);
            read_dir_with(self.src, tree, self.limits.max_dir_parts, &mut |id, plain| {
                if counting && parts_read.insert(*id) {
                    *distinct += plain.len() as u64;
                }
                v.tree_blob(id, plain)
            })
        };
        if self.sorted && matches!(fault, Some(DirFault::Order(_))) {
            fault = None;
        }
        let whole = fault.is_none();
        let mut nodes = match fault {
            None => read.nodes,
            Some(f) => match v.fault(path, tree, f, &read)? {
                Control::Descend => read.nodes,
                Control::Skip => Vec::new(),
                Control::Stop => return Ok(Opened::Stop),
            },
        };
        if self.sorted && !nodes.windows(2).all(|w| w[0].name < w[1].name) {
            nodes.sort_by(|a, b| a.name.cmp(&b.name));
            nodes.dedup_by(|a, b| a.name == b.name);
        }
        if whole && self.cached + nodes.len() <= CACHED_NODES {
            self.cached += nodes.len();
            self.cache.insert(*tree, nodes.as_slice().into());
        }
        let fresh = on_path.insert(*tree);
        Ok(Opened::Level(Level { tree: *tree, nodes: nodes.into_iter(), on_path: fresh }))
    }
}

/// The refusal of a walk of `root` that passed its expansion budget at `path`.
pub fn expansion_refused(root: &BlobId, path: &Path, held: u64, x: crate::tree::Expansion, distinct: u64) -> Error {
    Error::refused_unless(
        format!(
            "the walk of tree {root} reached {} with {held} bytes of entries, more than the limit of {} bytes \
             (the larger of {} and {} times the {distinct} bytes of distinct tree blobs read): the snapshot names \
             the same subtrees too many times (format-spec §7.5)",
            path.display(),
            x.cap(distinct),
            x.floor,
            x.factor
        ),
        Override::TreeMemory,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::id::BlobKind;
    use crate::tree::{Content, TreeBlob};
    use crate::treeread::{chunk_ids, chunk_ids_iter};
    use std::collections::HashMap;

    type Map = HashMap<BlobId, Vec<u8>>;

    fn id(n: u8) -> BlobId {
        BlobId([n; 32])
    }

    fn node(name: &str, kind: NodeKind) -> Node {
        Node::bare(name.as_bytes(), kind)
    }

    fn dir(name: &str, tree: BlobId) -> Node {
        node(name, NodeKind::Dir { tree })
    }

    fn put(m: &mut Map, n: u8, nodes: Vec<Node>, next: Option<BlobId>) {
        m.insert(id(n), TreeBlob::DirV1 { nodes, next }.encode());
    }

    fn walk(m: &Map, limits: Limits) -> (Vec<String>, Result<()>) {
        let mut seen = Vec::new();
        let mut v = |p: &Path, _: &Node| {
            seen.push(p.display().to_string());
            Ok(Control::Descend)
        };
        let r = Walker::new(m).limits(limits).walk(&id(1), Path::new("/"), &mut v);
        (seen, r)
    }

    fn corrupt_blob(r: &Result<()>) -> (BlobId, String) {
        match r {
            Err(Error::Corrupt { object: crate::error::Damaged::Blob { kind: BlobKind::Tree, id, .. }, reason }) => {
                (*id, reason.clone())
            }
            other => panic!("expected a corrupt tree blob, got {other:?}"),
        }
    }

    #[test]
    fn names_must_increase_across_parts() {
        // Part 1 holds `x` a symlink, part 2 `x` a directory: each part is canonical alone.
        let mut m = Map::new();
        put(&mut m, 3, vec![], None);
        put(&mut m, 1, vec![dir("d", id(4))], None);
        put(&mut m, 4, vec![node("x", NodeKind::Symlink { target: b"/etc".to_vec() })], Some(id(5)));
        put(&mut m, 5, vec![dir("x", id(3))], None);
        let (seen, r) = walk(&m, Limits::default());
        assert_eq!(seen, ["/d"], "no entry of the directory is walked");
        let (blob, reason) = corrupt_blob(&r);
        assert_eq!(blob, id(5), "the part that breaks the order is named");
        assert!(reason.contains(&id(4).to_string()) && reason.contains("(directory /d)"), "{reason}");
        // The listing holds every part, for those (prune) that keep what it references.
        let (l, f) = read_dir_with(&m, &id(4), 10, &mut |_, _| {});
        assert!(matches!(f, Some(DirFault::Order(b)) if b == id(5)));
        assert_eq!(l.parts, [id(4), id(5)]);
        // A part that starts after the previous part's last name is fine; an empty part too.
        put(&mut m, 5, vec![dir("y", id(3))], None);
        put(&mut m, 6, vec![], Some(id(5)));
        put(&mut m, 4, vec![node("x", NodeKind::Fifo)], Some(id(6)));
        let (seen, r) = walk(&m, Limits::default());
        r.unwrap();
        assert_eq!(seen, ["/d", "/d/x", "/d/y"]);
        put(&mut m, 5, vec![dir("x", id(3))], None);
        let (_, r) = walk(&m, Limits::default());
        assert_eq!(corrupt_blob(&r).0, id(5), "the order is checked across an empty part");
        // The sorting walk of repair takes such a directory as rebuilt: first of equal names kept.
        let mut seen = Vec::new();
        let mut v = |p: &Path, n: &Node| {
            seen.push(format!("{} {}", p.display(), n.type_name()));
            Ok(Control::Descend)
        };
        Walker::new(&m).sorted().walk(&id(1), Path::new("/"), &mut v).unwrap();
        assert_eq!(seen, ["/d dir", "/d/x fifo"]);
    }

    #[test]
    fn a_directory_below_itself_is_refused() {
        // Content ids rule this out in a repository; a source that does not verify ids can hold it.
        let mut m = Map::new();
        put(&mut m, 1, vec![dir("a", id(2))], None);
        put(&mut m, 2, vec![dir("b", id(1)), node("f", NodeKind::Fifo)], None);
        let (seen, r) = walk(&m, Limits::default());
        assert_eq!(seen, ["/a", "/a/b"]);
        let (blob, reason) = corrupt_blob(&r);
        assert_eq!(blob, id(1));
        assert!(reason.contains("contains itself") && reason.contains("/a/b"), "{reason}");
        // The same directory twice side by side is no cycle.
        put(&mut m, 1, vec![dir("a", id(2)), dir("c", id(2))], None);
        put(&mut m, 2, vec![node("f", NodeKind::Fifo)], None);
        let (seen, r) = walk(&m, Limits::default());
        r.unwrap();
        assert_eq!(seen, ["/a", "/a/f", "/c", "/c/f"]);
    }

    #[test]
    fn depth_parts_and_entries_are_limited() {
        // A chain of directories 10 deep: /d/d/d...
        let mut m = Map::new();
        for n in 1..=10u8 {
            put(&mut m, n, vec![dir("d", id(n + 1))], None);
        }
        put(&mut m, 11, vec![], None);
        let limits = Limits { max_depth: 4, ..Limits::default() };
        let (seen, r) = walk(&m, limits);
        assert_eq!(seen.len(), 5, "depths 0 to 4 are read: {seen:?}");
        let (blob, reason) = corrupt_blob(&r);
        assert_eq!(blob, id(6));
        assert!(reason.contains("deeper than the limit") && reason.contains("/d/d/d/d/d)"), "{reason}");
        walk(&m, Limits { max_depth: 10, ..Limits::default() }).1.unwrap();

        // A directory of three parts.
        let mut m = Map::new();
        put(&mut m, 1, vec![node("a", NodeKind::Fifo)], Some(id(2)));
        put(&mut m, 2, vec![node("b", NodeKind::Fifo)], Some(id(3)));
        put(&mut m, 3, vec![node("c", NodeKind::Fifo)], None);
        let (_, r) = walk(&m, Limits { max_dir_parts: 2, ..Limits::default() });
        assert_eq!(corrupt_blob(&r).0, id(3));
        walk(&m, Limits { max_dir_parts: 3, ..Limits::default() }).1.unwrap();

        // A doubling DAG: 12 blobs, 2^13 - 2 entries.
        let mut m = Map::new();
        put(&mut m, 13, vec![], None);
        for n in (1..=12u8).rev() {
            put(&mut m, n, vec![dir("a", id(n + 1)), dir("b", id(n + 1))], None);
        }
        let (seen, r) = walk(&m, Limits::default());
        r.unwrap();
        assert_eq!(seen.len(), (1 << 13) - 2);
        let (seen, r) = walk(&m, Limits { max_entries: 1000, ..Limits::default() });
        assert_eq!(seen.len(), 1000, "the walk stops at the limit");
        match r {
            Err(Error::Refused { reason, .. }) => {
                assert!(reason.contains(&id(1).to_string()) && reason.contains("limit of 1000 entries"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_expanding_walk_holds_at_most_its_budget() {
        // A doubling DAG: 13 blobs of a few hundred bytes, 2^13 - 2 paths of 256+ bytes each.
        let mut m = Map::new();
        put(&mut m, 13, vec![], None);
        for n in (1..=12u8).rev() {
            put(&mut m, n, vec![dir("a", id(n + 1)), dir("b", id(n + 1))], None);
        }
        let distinct: u64 = (1..=13u8).map(|n| m[&id(n)].len() as u64).sum();
        let x = crate::tree::Expansion { floor: 64 << 10, factor: 16 };
        let (seen, r) = walk(&m, Limits { expansion: Some(x), ..Limits::default() });
        match r {
            Err(e @ Error::Refused { .. }) => {
                assert_eq!(e.lifted_by(), Some(Override::TreeMemory));
                let m = e.to_string();
                let want = format!("limit of {} bytes", 64 << 10);
                assert!(m.contains(&id(1).to_string()) && m.contains(&want), "{m}");
                assert!(m.contains(&format!("the {distinct} bytes of distinct tree blobs")), "{m}");
            }
            other => panic!("{other:?}"),
        }
        // Each entry counts at least 256 bytes: the walk stopped within 256 entries of the floor.
        assert!(seen.len() < 256, "{}", seen.len());
        // A budget above what the entries take, or none, lets the walk through.
        let x = crate::tree::Expansion { floor: 16 << 20, factor: 16 };
        walk(&m, Limits { expansion: Some(x), ..Limits::default() }).1.unwrap();
        walk(&m, Limits::default()).1.unwrap();
        // With no floor, the factor alone decides: here large enough for every entry.
        let x = crate::tree::Expansion { floor: 0, factor: 1 << 20 };
        walk(&m, Limits { expansion: Some(x), ..Limits::default() }).1.unwrap();
    }

    /// A source that counts its reads.
    struct Counted<'m>(&'m Map, std::cell::Cell<usize>);

    impl TreeSource for Counted<'_> {
        fn load_tree(&self, id: &BlobId) -> Result<(Vec<u8>, TreeBlob)> {
            self.1.set(self.1.get() + 1);
            self.0.load_tree(id)
        }
    }

    #[test]
    fn a_directory_met_again_is_not_read_again() {
        let mut m = Map::new();
        put(&mut m, 13, vec![node("f", NodeKind::Fifo)], None);
        for n in (1..=12u8).rev() {
            put(&mut m, n, vec![dir("a", id(n + 1)), dir("b", id(n + 1))], None);
        }
        let src = Counted(&m, Default::default());
        let mut entries = 0;
        let mut v = |_: &Path, _: &Node| {
            entries += 1;
            Ok(Control::Descend)
        };
        Walker::new(&src).walk(&id(1), Path::new("/"), &mut v).unwrap();
        assert_eq!(entries, (1 << 13) - 2 + (1 << 12));
        assert_eq!(src.1.get(), 13, "each of the 13 tree blobs read once");
    }

    #[test]
    fn chunk_ids_stream_one_list_at_a_time_and_keep_the_count() {
        let mut m = Map::new();
        let list = |ids: Vec<BlobId>| TreeBlob::ChunkListV1 { ids }.encode();
        m.insert(id(1), list(vec![id(10), id(11)]));
        m.insert(id(2), list(vec![id(12)]));
        put(&mut m, 3, vec![], None);
        let c = Content::Indirect { lists: vec![id(1), id(2), id(1)], count: 5 };
        assert_eq!(chunk_ids(&m, &c).unwrap(), [id(10), id(11), id(12), id(10), id(11)]);
        // A list is read when the ids before it are used up.
        let mut it = chunk_ids_iter(&m, &c);
        assert_eq!(it.next().unwrap().unwrap(), id(10));
        let bad = Content::Indirect { lists: vec![id(1), id(3)], count: 3 };
        let got: Vec<_> = chunk_ids_iter(&m, &bad).collect();
        assert_eq!(got.len(), 3, "two ids, then the error of the directory where a list belongs");
        assert!(matches!(&got[2], Err(Error::Corrupt { reason, .. }) if reason == "expected a chunk list"));
        for count in [4, 6] {
            let c = Content::Indirect { lists: vec![id(1), id(2), id(1)], count };
            let e = chunk_ids(&m, &c).unwrap_err().to_string();
            assert!(e.contains("count mismatch"), "{e}");
        }
        // More lists than §7.5 allows, or a count the lists cannot hold, is refused unread.
        let many = Content::Indirect { lists: vec![id(9); crate::tree::MAX_CHUNK_LISTS + 1], count: 1 };
        assert!(chunk_ids(&m, &many).unwrap_err().to_string().contains("more than the limit"));
        let huge = Content::Indirect { lists: vec![id(9)], count: crate::tree::CHUNK_LIST_LEN as u64 + 1 };
        assert!(chunk_ids(&m, &huge).unwrap_err().to_string().contains("cannot hold"));
    }
}
