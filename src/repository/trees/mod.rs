//! Trees as the operations use them (format-spec §7): [`read`] makes the repository a source of
//! tree blobs for the reader of [`crate::treeread`] (a directory across its continuation parts,
//! a file's chunk lists) and the one walk of [`crate::treewalk`] that restore, check, prune,
//! copy, repair and browse share (both re-exported here), [`diff`] walks two trees in step,
//! [`write`] turns nodes into tree blobs (backup, copy, repair) and [`rebuild`] writes a walked
//! tree again with changes (copy, repair). Reads through the [`Repository`] and stores through
//! a [`crate::writer::Writer`]; knows no command and prints nothing.
//!
//! [`Repository`]: crate::repository::Repository

pub mod diff;
pub mod read;
pub mod rebuild;
pub mod write;

pub use crate::treeread::{
    chunk_ids, chunk_ids_iter, chunk_list, read_dir, read_dir_with, ChunkIds, DirFault, ListFault, Listing, TreeSource,
};
pub use crate::treewalk::{expansion_refused, Control, Visitor, Walker};
pub use diff::{diff, diff_dirs, pairs, Change, DiffEntry};
pub use read::read_tree;
pub use rebuild::{rebuild, Rebuilder, Rebuilt};
pub use write::{write_content, write_dir, ContentWriter, IdsOnly, TreeSink};

#[cfg(test)]
mod tests;
