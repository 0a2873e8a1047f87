//! Layer 1, the stored format as data: ids, times, the object layout, trees, manifests, index
//! and pack layouts, patterns, the error type. Pure: no I/O, no keys, no crypto; every other layer builds on it.

pub mod cert;
pub mod config;
pub mod error;
pub mod filter;
pub mod id;
pub mod index;
pub mod keyfile;
pub mod layout;
pub mod lease;
pub mod ledger;
pub mod pack;
pub mod snapshot;
pub mod time;
pub mod tree;
pub mod treeread;
pub mod treewalk;
pub mod units;
