//! Layer 4, an open repository: the [`Repository`] handle (any key) and the [`ReadRepository`]
//! handle (a full key), and their accessors. Opening and
//! pinning is [`open`], keeping the cache in step with the index files [`sync`], reading blobs
//! [`reads`], snapshots [`snapshots`], who wrote them [`attribution`], key files [`keys`], the audit ledger [`ledger`], reading, walking and writing trees
//! [`trees`]; the write side is [`writer`] and the local state [`cache`] (format-spec §1, §4, §7,
//! §9). Prints nothing; knows no command.

pub mod attribution;
pub mod blobmap;
pub mod cache;
mod cachedir;
pub mod filescache;
pub mod identity;
pub mod keys;
pub mod ledger;
pub mod open;
pub mod probe;
pub mod reads;
pub mod snapshots;
pub mod sync;
pub mod trees;
pub mod writer;
mod writer_lease;

pub use attribution::{Certificates, Signer};
pub use identity::{hostname, username};
pub use keys::KeyInfo;
pub use open::{config_objects, find_secret_key, InitOptions, OpenOptions};

use crate::backend::DynBackend;
use crate::cache::Cache;
use crate::chunker::Chunker;
use crate::compress::Compression;
use crate::config::{Config, WRITER_VERSION};
use crate::crypto::{MasterKeys, Session};
use crate::error::{Error, Result};
use crate::id::KeyId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// An open repository, under a key of either kind: what writing needs (backup, the writer,
/// keys, the index). Reading snapshots, trees and data needs a [`ReadRepository`], which
/// [`Repository::readable`] gives for a full key only, so asking a write-only key to read does
/// not compile. Cloning it is cheap; clones share the open repository.
///
/// ```compile_fail
/// fn read(repo: &cairn::repository::Repository, id: &cairn::id::SnapshotId) {
///     let _ = repo.load_snapshot(id); // a write-only key may hold this handle
/// }
/// ```
/// ```
/// fn read(repo: &cairn::repository::Repository, id: &cairn::id::SnapshotId) -> cairn::Result<()> {
///     let snapshot = repo.readable()?.load_snapshot(id)?; // fails for a write-only key
///     println!("{}", snapshot.host());
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct Repository {
    shared: Arc<Shared>,
}

/// A repository opened with a full key: everything [`Repository`] does (through `Deref`), and
/// reading snapshots, trees and data (format-spec §12). Cloning it is cheap; clones share the
/// open repository.
#[derive(Clone)]
pub struct ReadRepository {
    repo: Repository,
}

impl std::ops::Deref for ReadRepository {
    type Target = Repository;
    fn deref(&self) -> &Repository {
        &self.repo
    }
}

/// The state of an open repository, shared by its handles.
struct Shared {
    backend: DynBackend,
    keys: MasterKeys,
    key_id: KeyId,
    /// The signing secret of the key in use (format-spec §4.3); known only when it was opened with
    /// its password.
    sign_secret: Option<crate::crypto::Secret>,
    config: Config,
    config_n: u64,
    cache: std::sync::Arc<Cache>,
    chunker: Chunker,
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    /// Bundle bodies opened lately ([`reads`]): the members of one bundle are read one after
    /// another, and each would otherwise decompress the whole bundle again.
    bundles: Mutex<reads::BundleBodies>,
    /// Windows of tree packs read lately ([`reads`]): a walk reads many small trees from few packs.
    tree_windows: Mutex<reads::TreeWindows>,
    /// The certificates under `certs/`, once read (format-spec §4.3).
    certs: Mutex<Option<Arc<Certificates>>>,
    /// Set once the cache has been brought up to date with the index files in this process.
    index_synced: std::sync::atomic::AtomicBool,
    /// Serializes the first sync, so no lookup runs before it has finished.
    sync_lock: Mutex<()>,
    /// The time ledger entries are dated with, when set ([`Repository::set_ledger_clock`]).
    ledger_clock: Mutex<Option<crate::time::Time>>,
}

impl Repository {
    /// The same repository as a [`ReadRepository`]; fails with [`Error::WriteOnlyKey`] when it
    /// was opened with a write-only key.
    pub fn readable(&self) -> Result<ReadRepository> {
        if !self.shared.keys.can_read() {
            return Err(Error::WriteOnlyKey { key: Some(self.shared.key_id) });
        }
        Ok(ReadRepository { repo: self.clone() })
    }

    /// Test-only: dates the ledger entries this handle (and its clones) writes `t` instead of the
    /// system clock; `None` returns to the clock. A scripted month of operations (the report's
    /// tests) runs in seconds with entries dated day by day. Nothing else reads it.
    pub fn set_ledger_clock(&self, t: Option<crate::time::Time>) {
        *self.shared.ledger_clock.lock().unwrap_or_else(|p| p.into_inner()) = t;
    }

    /// The time the next ledger entry is dated with: the clock set by
    /// [`Repository::set_ledger_clock`], else now.
    pub fn ledger_now(&self) -> crate::time::Time {
        self.shared.ledger_clock.lock().unwrap_or_else(|p| p.into_inner()).unwrap_or_else(crate::time::Time::now)
    }

    /// The signing secret of the key in use (format-spec §4.3), when it was opened with its
    /// password.
    pub fn key_sign_secret(&self) -> Option<&crate::crypto::Secret> {
        self.shared.sign_secret.as_ref()
    }

    /// The verified certificate of `key` (format-spec §4.3): `Ok(None)` when there is none;
    /// an error naming it when it does not verify.
    pub fn key_certificate(&self, key: &KeyId) -> Result<Option<crate::cert::KeyCert>> {
        // Listed and verified already in this process ([`Repository::certificates`]): not read
        // again. Anything else (not there then, or not verifying) is read now.
        let cached = self.shared.certs.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(Ok(cert)) = cached.as_ref().and_then(|c| c.certs.get(key)) {
            return Ok(Some(cert.clone()));
        }
        let path = crate::codec::attribution::cert_path(key);
        let bytes = match self.shared.backend.read(&path) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        crate::codec::attribution::decode_cert(&self.shared.keys, key, &bytes)
            .map(Some)
            .map_err(|e| Error::refused(format!("key certificate: {e}")))
    }

    /// The storage backend.
    pub fn backend(&self) -> &DynBackend {
        &self.shared.backend
    }
    /// The key material.
    pub fn keys(&self) -> &MasterKeys {
        &self.shared.keys
    }
    /// The key file this repository was opened with.
    pub fn key_id(&self) -> KeyId {
        self.shared.key_id
    }
    /// The ruling config.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }
    /// Its number in the chain.
    pub fn config_number(&self) -> u64 {
        self.shared.config_n
    }
    /// The local cache.
    pub fn cache(&self) -> &Cache {
        &self.shared.cache
    }
    /// The local cache, shared.
    pub fn cache_arc(&self) -> std::sync::Arc<Cache> {
        self.shared.cache.clone()
    }
    /// The keyed chunker.
    pub fn chunker(&self) -> &Chunker {
        &self.shared.chunker
    }
    /// The default compression of the repository.
    pub fn default_compression(&self) -> Compression {
        Compression::from_level(self.shared.config.compression_level())
    }

    /// Refuses to write when the config demands a newer writer protocol.
    pub fn check_writer_version(&self) -> Result<()> {
        let required = self.shared.config.min_writer_version();
        if required > WRITER_VERSION {
            return Err(Error::WriterTooOld { required, have: WRITER_VERSION });
        }
        Ok(())
    }
}
