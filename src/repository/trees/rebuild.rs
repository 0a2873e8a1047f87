//! Rebuilding a tree: the walk's entries, changed where the caller says, written again bottom-up
//! (a directory after everything below it), each source directory once (once per path, for a
//! rebuilder whose changes depend on the path). Copy between chunkers (files cut again), repair
//! (lost items left out) and rewrite (erased paths left out) are rebuilds; what to change and
//! whether a directory is written again is theirs, the order and the bookkeeping are here.

use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::tree::{Node, NodeKind};
use crate::treeread::{DirFault, Listing};
use crate::treewalk::{Control, Visitor, Walker};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What a rebuild changes.
pub trait Rebuilder {
    /// What a directory carries up to its parent besides its new id (repair: its losses).
    type State: Clone + Default;
    /// Whether the entry `node` at `path` (a directory included) stays in its directory; `false`
    /// leaves it out, and nothing below it is read. `state` is its directory's. By default every
    /// entry stays.
    fn keep(&mut self, _path: &Path, _node: &Node, _state: &mut Self::State) -> Result<bool> {
        Ok(true)
    }
    /// True when what this rebuilder changes depends on where a directory is, not only on its
    /// tree (rewrite's path patterns): a directory is then rebuilt once per path it appears at.
    fn by_path(&self) -> bool {
        false
    }
    /// An entry that is not a directory, changed in place where need be; `state` is its
    /// directory's.
    fn entry(&mut self, path: &Path, node: &mut Node, state: &mut Self::State) -> Result<()>;
    /// The directory `tree` could not be read whole (see [`Visitor::fault`]); `state` is its own.
    fn fault(
        &mut self,
        _path: &Path,
        tree: &BlobId,
        fault: DirFault,
        _readable: &Listing,
        _state: &mut Self::State,
    ) -> Result<Control> {
        Err(fault.into_error(tree))
    }
    /// The new id of the directory `tree`, whose entries are now `entries`: written, or kept.
    fn finish(&mut self, tree: &BlobId, entries: Vec<Node>, state: &Self::State) -> Result<BlobId>;
    /// Takes a rebuilt subdirectory `name`'s state into its parent's; `rewritten` is true when
    /// its id changed.
    fn absorb(&mut self, _parent: &mut Self::State, _name: &[u8], _child: Self::State, _rewritten: bool) {}
}

/// Directories rebuilt so far, by source tree id (and path, for a rebuilder that works
/// [`Rebuilder::by_path`]): the new id and the state carried up. Kept across rebuilds, a directory
/// shared by several snapshots is rebuilt once.
pub type Rebuilt<S> = HashMap<(BlobId, Option<PathBuf>), (BlobId, S)>;

/// Rebuilds the tree `root` with `walker`; returns the new root and its state.
pub fn rebuild<R: Rebuilder>(
    walker: &mut Walker,
    root: &BlobId,
    r: &mut R,
    done: &mut Rebuilt<R::State>,
) -> Result<(BlobId, R::State)> {
    let mut v = Rebuild { r, done, pending: None, frames: Vec::new(), root: None };
    walker.walk(root, Path::new("/"), &mut v)?;
    v.root.ok_or_else(|| Error::Internal(format!("rebuilding tree {root} ended early")))
}

struct Frame<S> {
    /// The directory's node in its parent (none for the root).
    node: Option<Node>,
    /// Its entries so far, rebuilt.
    entries: Vec<Node>,
    state: S,
}

struct Rebuild<'x, R: Rebuilder> {
    r: &'x mut R,
    done: &'x mut Rebuilt<R::State>,
    /// The directory node whose tree `enter` is called for next.
    pending: Option<Node>,
    /// Per directory being rebuilt, the root first.
    frames: Vec<Frame<R::State>>,
    root: Option<(BlobId, R::State)>,
}

impl<R: Rebuilder> Rebuild<'_, R> {
    /// Where the directory `tree` at `path` is kept in [`Rebuilt`].
    fn key(&self, path: &Path, tree: &BlobId) -> (BlobId, Option<PathBuf>) {
        (*tree, self.r.by_path().then(|| path.to_path_buf()))
    }

    /// Places the rebuilt directory `tree`, now `new`: in its parent, or as the root.
    fn place(&mut self, node: Option<Node>, tree: &BlobId, new: BlobId, state: R::State) {
        let (Some(mut n), Some(up)) = (node, self.frames.last_mut()) else {
            self.root = Some((new, state));
            return;
        };
        self.r.absorb(&mut up.state, &n.name, state, new != *tree);
        n.kind = NodeKind::Dir { tree: new };
        up.entries.push(n);
    }
}

impl<R: Rebuilder> Visitor for Rebuild<'_, R> {
    fn enter(&mut self, path: &Path, tree: &BlobId) -> Result<Control> {
        let node = self.pending.take();
        if let Some((new, state)) = self.done.get(&self.key(path, tree)).cloned() {
            self.place(node, tree, new, state);
            return Ok(Control::Skip);
        }
        self.frames.push(Frame { node, entries: Vec::new(), state: R::State::default() });
        Ok(Control::Descend)
    }

    fn fault(&mut self, path: &Path, tree: &BlobId, fault: DirFault, readable: &Listing) -> Result<Control> {
        let f = self.frames.last_mut().expect("entered");
        self.r.fault(path, tree, fault, readable, &mut f.state)
    }

    fn node(&mut self, path: &Path, n: &Node) -> Result<Control> {
        let f = self.frames.last_mut().expect("entered");
        if !self.r.keep(path, n, &mut f.state)? {
            return Ok(Control::Skip);
        }
        let mut n = n.clone();
        if let NodeKind::Dir { .. } = n.kind {
            self.pending = Some(n);
            return Ok(Control::Descend);
        }
        self.r.entry(path, &mut n, &mut f.state)?;
        f.entries.push(n);
        Ok(Control::Skip)
    }

    fn leave(&mut self, path: &Path, tree: &BlobId) -> Result<()> {
        let f = self.frames.pop().expect("entered");
        let new = self.r.finish(tree, f.entries, &f.state)?;
        self.done.insert(self.key(path, tree), (new, f.state.clone()));
        self.place(f.node, tree, new, f.state);
        Ok(())
    }
}
