//! cairn: a content-addressed, deduplicating, encrypted backup repository.
//!
//! Layers, bottom up (each module uses only those above it in this list):
//! - format types, no I/O: [`id`], [`units`], [`tree`], [`snapshot`], [`config`], [`keyfile`], [`lease`],
//!   [`index`], [`pack`], [`blob`]
//! - crypto and compression: [`crypto`], [`compress`], [`chunker`]
//! - storage: [`backend`]; local state: [`cache`]
//! - the repository: [`repository`], [`writer`]
//! - operations: [`backup`], [`restore`], [`browse`], [`copy`], [`forget`], [`prune`], [`check`], [`repair`],
//!   [`keys`], [`select`], [`scan`], [`probe`]; the pure retention policy: [`retention`]
//!
//! Without the default `cache` feature only the format layers build (no RocksDB): that is what the
//! fuzz targets link.
//!
//! The normative description of every stored byte is `format-spec/` in the source tree.
#![warn(missing_docs)]

pub mod backend;
#[cfg(feature = "cache")]
pub mod backup;
pub mod blob;
#[cfg(feature = "cache")]
pub mod browse;
#[cfg(feature = "cache")]
pub mod cache;
#[cfg(feature = "cache")]
pub mod check;
pub mod chunker;
pub mod compress;
pub mod config;
#[cfg(feature = "cache")]
pub mod copy;
pub mod crypto;
pub mod error;
pub mod filter;
#[cfg(feature = "cache")]
pub mod forget;
pub mod fsmeta;
pub mod id;
pub mod index;
pub mod keyfile;
#[cfg(feature = "cache")]
pub mod keys;
pub mod lease;
pub mod pack;
pub mod probe;
#[cfg(feature = "cache")]
pub mod prune;
#[cfg(feature = "cache")]
pub mod repair;
#[cfg(feature = "cache")]
pub mod repository;
#[cfg(feature = "cache")]
pub mod restore;
pub mod retention;
#[cfg(feature = "cache")]
pub mod scan;
#[cfg(feature = "cache")]
pub mod select;
pub mod snapshot;
pub mod tree;
pub mod units;
#[cfg(feature = "cache")]
pub mod writer;

pub use error::{Error, Result};
