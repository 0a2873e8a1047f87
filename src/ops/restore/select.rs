//! The walk of a restore: which entries of a snapshot it restores, handed in pre-order to a
//! [`Sink`] as the walk meets them, and each directory handed again once everything below it was
//! handed (post-order), so that a restore can plan and carry out its entries in batches whose
//! memory does not grow with the number of entries (format-spec §7.5). What it keeps is one
//! record per directory on the current path.

use super::RestoreOptions;
use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::tree::{Content, Node, NodeKind};
use crate::trees::{Control, Visitor};
use std::path::{Path, PathBuf};

/// What receives the entries of a restore walk.
pub(super) trait Sink {
    /// An entry to restore, in pre-order: the directories on the way to it came before it.
    fn entry(&mut self, path: PathBuf, node: Node) -> Result<()>;
    /// A directory that [`Sink::entry`] received, now that everything below it was handed.
    fn dir_done(&mut self, path: PathBuf, node: Node) -> Result<()>;
    /// `n` more bytes of tree blobs (directory parts) were read.
    fn tree_bytes(&mut self, _n: u64) {}
}

/// A directory on the current path of the walk.
struct Open {
    /// Selected by the includes (or below a selected directory).
    selected: bool,
    /// Its entry went to the sink (it is selected, or something below it is).
    handed: bool,
    /// Its path and node; `None` for the start of the walk, whose entry is the caller's.
    entry: Option<(PathBuf, Node)>,
}

/// The visitor of a restore walk: what the excludes leave, of that what the includes select
/// (with everything below a selected directory), and the directories on the way to a selected
/// entry, which are handed only once something below them is.
pub(super) struct Select<'o, 's> {
    opts: &'o RestoreOptions,
    sink: &'s mut dyn Sink,
    dirs: Vec<Open>,
    /// Entries kept plus the ids their contents name, against `max` (format-spec §7.5).
    weight: u64,
    max: u64,
}

impl<'o, 's> Select<'o, 's> {
    /// A walk that hands `sink` what `opts` selects, refused past `max` entries and chunk ids.
    pub fn new(opts: &'o RestoreOptions, sink: &'s mut dyn Sink, max: u64) -> Self {
        Select { opts, sink, dirs: vec![Open { selected: false, handed: true, entry: None }], weight: 0, max }
    }

    /// Hands the directories on the current path that were held back, outermost first.
    fn hand_ancestors(&mut self) -> Result<()> {
        let from = self.dirs.iter().rposition(|d| d.handed).map_or(0, |i| i + 1);
        for d in &mut self.dirs[from..] {
            d.handed = true;
            if let Some((p, n)) = &d.entry {
                self.sink.entry(p.clone(), n.clone())?;
            }
        }
        Ok(())
    }
}

impl Visitor for Select<'_, '_> {
    fn tree_blob(&mut self, _id: &BlobId, plain: &[u8]) {
        self.sink.tree_bytes(plain.len() as u64);
    }

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
        let inherited = self.dirs.last().is_some_and(|d| d.selected);
        let selected = inherited || self.opts.includes.is_empty() || self.opts.includes.matches(path);
        if let NodeKind::Dir { .. } = n.kind {
            if selected {
                self.hand_ancestors()?;
                self.sink.entry(path.to_path_buf(), n.clone())?;
            }
            self.dirs.push(Open { selected, handed: selected, entry: Some((path.to_path_buf(), n.clone())) });
            return Ok(Control::Descend);
        }
        if selected {
            self.hand_ancestors()?;
            self.sink.entry(path.to_path_buf(), n.clone())?;
        }
        Ok(Control::Skip)
    }

    fn leave(&mut self, _: &Path, _: &BlobId) -> Result<()> {
        if self.dirs.len() == 1 {
            // The start directory: its entry, if any, is the caller's.
            return Ok(());
        }
        let Some(d) = self.dirs.pop() else { return Ok(()) };
        match d.entry {
            Some((p, n)) if d.handed => self.sink.dir_done(p, n),
            _ => Ok(()),
        }
    }
}

/// The refusal of a restore with more entries and chunks than `max`, at `path`.
pub(super) fn too_many(max: u64, path: &Path) -> Error {
    Error::refused(format!(
        "restore stopped at {}: the snapshot has more entries and chunks than the limit of {max} (format-spec §7.5)",
        path.display()
    ))
}

/// Where a restore walk starts: a directory's tree (with the entry of the directory itself when
/// it is a subtree the user named), or a single entry that is not a directory.
pub(super) enum Start {
    /// Walk `tree`, the directory at `base`; `entry` is the directory's own entry, if restored.
    Tree { tree: BlobId, base: PathBuf, entry: Option<(PathBuf, Node)> },
    /// Restore one entry.
    One(PathBuf, Node),
}

impl Start {
    /// Where the restore of `root` (or of `sub` within it) starts. A `sub` that does not exist
    /// restores the whole snapshot, as it always has.
    pub fn find(repo: &crate::repository::ReadRepository, root: &BlobId, sub: Option<&Path>) -> Result<Start> {
        let whole = || Start::Tree { tree: *root, base: PathBuf::from("/"), entry: None };
        let Some(s) = sub else { return Ok(whole()) };
        Ok(match crate::browse::find(repo, root, s)? {
            None => whole(),
            Some(n) => match n.kind {
                NodeKind::Dir { tree } => {
                    Start::Tree { tree, base: s.to_path_buf(), entry: Some((s.to_path_buf(), n)) }
                }
                _ => Start::One(s.to_path_buf(), n),
            },
        })
    }

    /// The tree blob that errors of the walk name.
    pub fn tree(&self, root: &BlobId) -> BlobId {
        match self {
            Start::Tree { tree, .. } => *tree,
            Start::One(..) => *root,
        }
    }

    /// Walks from here within `limits`, handing `sink` what `opts` selects.
    pub fn walk(
        self,
        repo: &crate::repository::ReadRepository,
        opts: &RestoreOptions,
        limits: &crate::tree::Limits,
        sink: &mut dyn Sink,
    ) -> Result<()> {
        match self {
            Start::One(p, n) => sink.entry(p, n),
            Start::Tree { tree, base, entry } => {
                if let Some((p, n)) = &entry {
                    sink.entry(p.clone(), n.clone())?;
                }
                let mut walker = crate::trees::Walker::new(repo).limits(*limits);
                walker.walk(&tree, &base, &mut Select::new(opts, sink, limits.max_entries))?;
                match entry {
                    Some((p, n)) => sink.dir_done(p, n),
                    None => Ok(()),
                }
            }
        }
    }
}
