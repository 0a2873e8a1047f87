//! The one walk over trees: from a directory's tree, every node below it in pre-order (names in
//! byte order) with its absolute path, reading each directory across its parts. The visitor says
//! per node whether to descend, and per directory that cannot be read whole whether to go on; it
//! is the only place that decides what an error means for its operation.

use super::read::{read_dir_with, DirFault, Listing};
use crate::error::Result;
use crate::id::BlobId;
use crate::repository::ReadRepository;
use crate::tree::{Node, NodeKind};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

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
    /// A part of a directory as read, with its plaintext.
    fn tree_blob(&mut self, _id: &BlobId, _plain: &[u8]) {}
    /// The directory could not be read whole; `readable` holds the parts read before the fault.
    /// [`Control::Descend`] walks those entries, [`Control::Skip`] none. By default the fault is
    /// the walk's error.
    fn fault(&mut self, _path: &Path, tree: &BlobId, fault: DirFault, _readable: &Listing) -> Result<Control> {
        Err(fault.into_error(tree))
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

/// Walks trees of one repository; keeps, across walks, the directories already walked when
/// asked to skip them.
pub struct Walker<'r> {
    repo: &'r ReadRepository,
    seen: Option<HashSet<BlobId>>,
    sorted: bool,
}

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
    /// A walker over `repo`'s trees.
    pub fn new(repo: &'r ReadRepository) -> Self {
        Walker { repo, seen: None, sorted: false }
    }

    /// Skips, silently, every directory (by tree id) that this walker has entered before, in
    /// this walk or an earlier one: a walk over many snapshots reads each shared subtree once.
    pub fn skip_seen(mut self) -> Self {
        self.seen = Some(HashSet::new());
        self
    }

    /// Walks a directory whose parts are out of order between them in canonical order, the first
    /// of equal names kept (what a rebuilt directory holds). Parts are each checked when decoded.
    pub fn sorted(mut self) -> Self {
        self.sorted = true;
        self
    }

    /// Walks the directory `root`, whose path is `base`.
    pub fn walk(&mut self, root: &BlobId, base: &Path, v: &mut dyn Visitor) -> Result<()> {
        let mut path: PathBuf = base.to_path_buf();
        let mut on_path: HashSet<BlobId> = HashSet::new();
        let mut stack = match self.open(root, &path, v, &mut on_path)? {
            Opened::Level(l) => vec![l],
            Opened::Skipped | Opened::Stop => return Ok(()),
        };
        while let Some(top) = stack.last_mut() {
            let Some(node) = top.nodes.next() else {
                let done = stack.pop().expect("a level");
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
            match (v.node(&path, &node)?, &node.kind) {
                (Control::Stop, _) => return Ok(()),
                (Control::Descend, NodeKind::Dir { tree }) => match self.open(tree, &path, v, &mut on_path)? {
                    Opened::Level(l) => {
                        stack.push(l);
                        continue;
                    }
                    Opened::Skipped => {}
                    Opened::Stop => return Ok(()),
                },
                _ => {}
            }
            path.pop();
        }
        Ok(())
    }

    /// Enters and reads one directory.
    fn open(
        &mut self,
        tree: &BlobId,
        path: &Path,
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
        let (read, fault) = if on_path.contains(tree) {
            (Listing::default(), Some(DirFault::Cycle(*tree)))
        } else {
            read_dir_with(self.repo, tree, &mut |id, plain| v.tree_blob(id, plain))
        };
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
        let fresh = on_path.insert(*tree);
        Ok(Opened::Level(Level { tree: *tree, nodes: nodes.into_iter(), on_path: fresh }))
    }
}
