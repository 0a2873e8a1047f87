//! The rebuild that erases (format-spec §8.4): every entry whose absolute path matches the
//! patterns is left out with everything below it; the directories above a removed entry are
//! written again, every other subtree keeps its id. It counts what goes (entries, files, bytes of
//! content) and lists the first [`MAX_LISTED`] removed paths.

use crate::error::Result;
use crate::filter::Patterns;
use crate::id::BlobId;
use crate::repository::ReadRepository;
use crate::tree::{Node, NodeKind};
use crate::treeread::{DirFault, Listing};
use crate::trees::{rebuild, write_dir, Control, IdsOnly, Rebuilder, Rebuilt, TreeSink, Visitor, Walker};
use crate::writer::Writer;
use serde::Serialize;
use std::path::Path;

/// At most this many removed paths are listed per snapshot (all are counted).
pub const MAX_LISTED: usize = 1000;

/// One entry a rewrite removes, with what lay below it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// Its absolute path in the snapshot (lossy UTF-8 for display).
    pub path: String,
    /// `file`, `dir`, `symlink` or `other`.
    pub kind: &'static str,
    /// Files it held (1 for a file).
    pub files: u64,
    /// Bytes of file content it held (a file's size; a directory's files' sizes).
    pub bytes: u64,
}

/// What a rewritten directory carries up: whether anything below it changed, and what went.
#[derive(Clone, Debug, Default)]
pub struct Erased {
    /// True when an entry below was removed.
    pub changed: bool,
    /// The first [`MAX_LISTED`] removed entries.
    pub items: Vec<Removed>,
    /// Entries removed (the top of each removed subtree).
    pub entries: u64,
    /// Files removed, those inside removed directories included.
    pub files: u64,
    /// Bytes of file content removed.
    pub bytes: u64,
}

impl Erased {
    fn add(&mut self, other: Erased) {
        self.changed |= other.changed;
        self.entries += other.entries;
        self.files += other.files;
        self.bytes += other.bytes;
        let room = MAX_LISTED.saturating_sub(self.items.len());
        self.items.extend(other.items.into_iter().take(room));
    }
}

/// One rebuild of a snapshot's tree without the matching paths.
pub struct Erase<'a, 'w> {
    /// The repository the trees are read from.
    pub repo: &'a ReadRepository,
    /// What goes.
    pub patterns: &'a Patterns,
    /// Where new tree blobs go: the writer, or nowhere (a plan: ids only).
    pub writer: Option<&'a Writer<'w>>,
}

impl Erase<'_, '_> {
    /// The new root of the tree `root` and what was removed from it; `done` carries directories
    /// already rebuilt (by path) across the snapshots of one run.
    pub fn run(&mut self, root: &BlobId, done: &mut Rebuilt<Erased>) -> Result<(BlobId, Erased)> {
        let mut walker = Walker::new(self.repo).sorted();
        rebuild(&mut walker, root, self, done)
    }
}

impl Rebuilder for Erase<'_, '_> {
    type State = Erased;

    fn by_path(&self) -> bool {
        true
    }

    fn keep(&mut self, path: &Path, node: &Node, state: &mut Erased) -> Result<bool> {
        if !self.patterns.matches(path) {
            return Ok(true);
        }
        let (kind, files, bytes) = match &node.kind {
            NodeKind::File { .. } => ("file", 1, node.size),
            NodeKind::Dir { tree } if self.writer.is_none() => {
                let mut sizes = Sizes::default();
                Walker::new(self.repo).walk(tree, path, &mut sizes)?;
                ("dir", sizes.files, sizes.bytes)
            }
            // The plan counted it; the writing pass does not read what it drops.
            NodeKind::Dir { .. } => ("dir", 0, 0),
            NodeKind::Symlink { .. } => ("symlink", 0, 0),
            _ => ("other", 0, 0),
        };
        let path = path.to_string_lossy().into_owned();
        state.add(Erased {
            changed: true,
            items: vec![Removed { path, kind, files, bytes }],
            entries: 1,
            files,
            bytes,
        });
        Ok(false)
    }

    fn entry(&mut self, _: &Path, _: &mut Node, _: &mut Erased) -> Result<()> {
        Ok(())
    }

    fn finish(&mut self, tree: &BlobId, entries: Vec<Node>, state: &Erased) -> Result<BlobId> {
        if !state.changed {
            return Ok(*tree);
        }
        match self.writer {
            Some(w) => write_dir(w as &dyn TreeSink, entries),
            None => write_dir(&IdsOnly(self.repo), entries),
        }
    }

    fn absorb(&mut self, parent: &mut Erased, _: &[u8], child: Erased, rewritten: bool) {
        parent.changed |= rewritten;
        parent.add(child);
    }
}

/// Counts the files and bytes below a removed directory. A part that cannot be read is not
/// counted (it goes all the same).
#[derive(Default)]
struct Sizes {
    files: u64,
    bytes: u64,
}

impl Visitor for Sizes {
    fn fault(&mut self, _: &Path, _: &BlobId, _: DirFault, _: &Listing) -> Result<Control> {
        Ok(Control::Descend)
    }

    fn node(&mut self, _: &Path, n: &Node) -> Result<Control> {
        if let NodeKind::File { .. } = n.kind {
            self.files += 1;
            self.bytes += n.size;
        }
        Ok(Control::Descend)
    }
}
