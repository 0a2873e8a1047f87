//! cairn: a content-addressed, deduplicating, encrypted backup repository.
//!
//! The source folders are the layers, bottom up:
//! 1. [`format`]: format types, no I/O.
//! 2. [`codec`]: crypto, compression, chunking, blob framing.
//! 3. [`backend`]: storage.
//! 4. [`repository`]: the repository, its writer and the local cache.
//! 5. [`ops`]: the operations and the pure retention policy.
//!
//! Every concept module is re-exported at the crate root (`cairn::id`, `cairn::backup`, ...).
//!
//! Without the default `cache` feature only the layers below the repository build (no RocksDB):
//! that is what the fuzz targets link.
//!
//! The normative description of every stored byte is `format-spec/` in the source tree.
#![warn(missing_docs)]

pub mod backend;
pub mod codec;
pub mod format;
pub mod ops;
#[cfg(feature = "cache")]
pub mod repository;

pub use codec::{blob, chunker, compress, crypto};
pub use format::{config, error, filter, id, index, keyfile, lease, pack, snapshot, tree, units};
#[cfg(feature = "cache")]
pub use ops::{backup, browse, check, copy, forget, prune, repair, restore};
pub use ops::{fsmeta, retention};
#[cfg(feature = "cache")]
pub use repository::{cache, writer};

pub use error::{Error, Result};
