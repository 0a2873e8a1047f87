//! Layer 5, the operations a user asks for: backup, restore, browse (and diff, find, stats), copy,
//! forget, prune, check, repair, the audit ledger, timed restore drills, with the pure retention policy and the file-metadata system calls they share. Each
//! works on an open [`crate::repository::Repository`]; none prints. [`PathMessage`] is how they
//! report what went wrong with one path.

#[cfg(feature = "cache")]
pub mod backup;
#[cfg(feature = "cache")]
pub mod browse;
#[cfg(feature = "cache")]
pub mod check;
#[cfg(feature = "cache")]
pub mod copy;
#[cfg(feature = "cache")]
pub mod diff;
#[cfg(feature = "cache")]
pub mod drill;
#[cfg(feature = "cache")]
pub mod find;
#[cfg(feature = "cache")]
pub mod forget;
pub mod fsmeta;
#[cfg(feature = "cache")]
pub mod keys;
#[cfg(feature = "cache")]
pub mod ledger;
#[cfg(feature = "cache")]
pub mod mount;
#[cfg(feature = "cache")]
pub mod prune;
#[cfg(feature = "cache")]
pub mod repair;
#[cfg(feature = "cache")]
pub mod restore;
pub mod retention;
#[cfg(feature = "cache")]
pub mod scan;
#[cfg(feature = "cache")]
pub mod select;
#[cfg(feature = "cache")]
pub mod stats;
#[cfg(feature = "cache")]
pub mod status;
#[cfg(feature = "cache")]
pub mod tag;

/// A path and what went wrong with it (a file backup could not read, restore could not write).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathMessage {
    /// The path.
    pub path: String,
    /// The message.
    pub message: String,
}
