//! Layer 1, the stored format as data: ids, trees, manifests, index and pack layouts, patterns,
//! the error type.

pub mod config;
pub mod error;
pub mod filter;
pub mod id;
pub mod index;
pub mod keyfile;
pub mod lease;
pub mod pack;
pub mod snapshot;
pub mod tree;
pub mod units;
