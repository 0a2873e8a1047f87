//! Layer 4, an open repository: the [`Repository`] handle and its accessors. Opening and
//! pinning is [`open`], keeping the cache in step with the index files [`sync`], reading blobs
//! and trees [`reads`], snapshots [`snapshots`], key files [`keys`]; the write side is [`writer`]
//! and the local state [`cache`] (format-spec §1, §4, §9). Prints nothing; knows no command.

pub mod cache;
pub mod identity;
pub mod keys;
pub mod open;
pub mod reads;
pub mod snapshots;
pub mod sync;
pub mod writer;

pub use identity::{hostname, username};
pub use keys::KeyInfo;
pub use open::{InitOptions, OpenOptions};

use crate::backend::DynBackend;
use crate::cache::Cache;
use crate::chunker::Chunker;
use crate::compress::Compression;
use crate::config::{Config, WRITER_VERSION};
use crate::crypto::{MasterKeys, Session};
use crate::error::{Error, Result};
use crate::id::KeyId;
use std::collections::HashMap;
use std::sync::Mutex;

/// An open repository.
pub struct Repository {
    backend: DynBackend,
    keys: MasterKeys,
    key_id: KeyId,
    config: Config,
    config_n: u64,
    cache: std::sync::Arc<Cache>,
    chunker: Chunker,
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    /// Set once the cache has been brought up to date with the index files in this process.
    index_synced: std::sync::atomic::AtomicBool,
    /// Serializes the first sync, so no lookup runs before it has finished.
    sync_lock: Mutex<()>,
}

impl Repository {
    /// The storage backend.
    pub fn backend(&self) -> &DynBackend {
        &self.backend
    }
    /// The key material.
    pub fn keys(&self) -> &MasterKeys {
        &self.keys
    }
    /// The key file this repository was opened with.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }
    /// The ruling config.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// Its number in the chain.
    pub fn config_number(&self) -> u64 {
        self.config_n
    }
    /// The local cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }
    /// The local cache, shared.
    pub fn cache_arc(&self) -> std::sync::Arc<Cache> {
        self.cache.clone()
    }
    /// The keyed chunker.
    pub fn chunker(&self) -> &Chunker {
        &self.chunker
    }
    /// The default compression of the repository.
    pub fn default_compression(&self) -> Compression {
        Compression::from_level(self.config.compression_level())
    }

    /// Refuses to write when the config demands a newer writer protocol.
    pub fn check_writer_version(&self) -> Result<()> {
        let required = self.config.min_writer_version();
        if required > WRITER_VERSION {
            return Err(Error::WriterTooOld { required, have: WRITER_VERSION });
        }
        Ok(())
    }
}
