//! Trees as the operations use them (format-spec §7): [`read`] reads one directory across its
//! continuation parts and one file's chunk lists, [`walk`] is the one walk over a tree that
//! restore, check, prune, copy, repair and browse share, [`diff`] walks two trees in step,
//! [`write`] turns nodes into tree blobs (backup, copy, repair) and [`rebuild`] writes a walked
//! tree again with changes (copy, repair). Reads through the [`Repository`] and stores through
//! a [`crate::writer::Writer`]; knows no command and prints nothing.
//!
//! [`Repository`]: crate::repository::Repository

pub mod diff;
pub mod read;
pub mod rebuild;
pub mod walk;
pub mod write;

pub use diff::{diff, Change, DiffEntry};
pub use read::{chunk_ids, chunk_list, read_dir, read_dir_with, read_tree, DirFault, ListFault, Listing};
pub use rebuild::{rebuild, Rebuilder, Rebuilt};
pub use walk::{Control, Visitor, Walker};
pub use write::{write_content, write_dir, IdsOnly, TreeSink};

#[cfg(test)]
mod tests;
