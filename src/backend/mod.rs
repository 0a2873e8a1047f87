//! Storage backends: one small trait over the places a repository can live (format-spec §1).
//! Backends move bytes by name; they know nothing of the format.

use crate::error::{Error, Result, SourceError};
use crate::time::Time;
use std::sync::Arc;

pub mod capped;
pub mod fault;
pub mod local;
pub mod opendal;
pub mod options;
pub mod remote;
pub mod retry;
#[cfg(feature = "remote")]
pub mod s3lock;
pub mod staged;
#[cfg(feature = "remote")]
pub mod streamed;
pub mod url;

pub use options::Options;
pub use staged::{Spill, Staged};
pub use url::RepoUrl;

/// What a backend promises about concurrent writers and listings (format-spec §1.4). Prune and
/// other multi-writer protocols consult it to refuse modes a service cannot make safe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guarantees {
    /// `write_new` is refused atomically by the service when the name exists, across processes
    /// and hosts. When false, `write_new` checks and writes under a lock that protects only
    /// against this process.
    pub conditional_create: bool,
    /// An object is either absent or complete under its final name, even if the writer dies
    /// mid-write. When false a crash can leave a torn object (which `check` reports).
    pub atomic_write: bool,
    /// A listing started after a write returned includes that object (read-after-write
    /// consistent listings).
    pub consistent_list: bool,
}

/// One stored object as a listing or stat reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Path relative to the repository root, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// The backend's modification time, where it has one.
    pub modified: Option<Time>,
}

/// What the repository needs from storage.
pub trait Backend: Send + Sync {
    /// A human-readable location, for messages (never contains secrets).
    fn location(&self) -> String;
    /// Reads a whole object.
    fn read(&self, path: &str) -> Result<Vec<u8>>;
    /// Reads `len` bytes at `offset`.
    fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>>;
    /// Reads the whole object when it holds at most `max` bytes; `Ok(Err(size))` when it holds
    /// more, having read at most `max + 1` bytes of it (`size` is its size, or at least `max + 1`).
    /// By default the size is asked for first ([`Backend::stat`], a second request), and the read
    /// checked again, as the object may change in between; a backend that can bound the read
    /// itself does so: the local backend takes the size from the open file, a remote one reads in
    /// one request and stops past `max` bytes, whatever size the server gives (format-spec §12.6).
    fn read_at_most(&self, path: &str, max: u64) -> Result<std::result::Result<Vec<u8>, u64>> {
        if let Some(info) = self.stat(path)? {
            if info.size > max {
                return Ok(Err(info.size));
            }
        }
        let bytes = self.read(path)?;
        if bytes.len() as u64 > max {
            return Ok(Err(bytes.len() as u64));
        }
        Ok(Ok(bytes))
    }
    /// Stores a new object atomically; fails with an "exists" error (see
    /// [`Error::is_exists`]) if the name is taken. Never overwrites.
    fn write_new(&self, path: &str, data: &[u8]) -> Result<()>;
    /// An empty object to append a pack's bytes to before its name is known (format-spec §5.3),
    /// stored later by [`Backend::write_staged`]; `kind_dir` is the pack type's folder (`data/`,
    /// `tree/`), `capacity` the expected size, and `spill` where the writer offers to keep it
    /// when the backend cannot stage beside its objects. By default it goes where `spill` says
    /// (an unnamed file in the writer's cache directory, so an open pack costs no memory); the
    /// local backend stages in a temporary file beside the packs, which it then renames.
    fn stage(&self, kind_dir: &str, capacity: usize, spill: Spill<'_>) -> Result<Staged> {
        let _ = kind_dir;
        Staged::spill(spill, capacity)
    }
    /// Stores a staged object under `path` as [`Backend::write_new`] does (create-if-not-exists,
    /// an "exists" error when the name is taken). By default its bytes go through `write_new`.
    fn write_staged(&self, path: &str, staged: Staged) -> Result<()> {
        self.write_new(path, &staged.into_bytes()?)
    }
    /// Size and time of an object, `None` when it does not exist.
    fn stat(&self, path: &str) -> Result<Option<ObjectInfo>>;
    /// Every object under `prefix` (a directory such as `index/`), recursively.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>>;
    /// Deletes an object; deleting a missing object is not an error.
    fn delete(&self, path: &str) -> Result<()>;
    /// Makes every object written so far durable. A backend may defer the durability of pack
    /// objects (`data/`, `tree/`) until this call; writers call it before they write an index
    /// file that names those packs (format-spec §1.3, §11), so nothing is ever referenced before
    /// it is durable. Other objects are durable when `write_new` returns.
    fn sync(&self) -> Result<()> {
        Ok(())
    }
    /// Prepares an empty location for a new repository.
    fn create_root(&self) -> Result<()> {
        Ok(())
    }
    /// What this backend guarantees (see [`Guarantees`]). The default is the safe answer: none.
    fn guarantees(&self) -> Guarantees {
        Guarantees { conditional_create: false, atomic_write: false, consistent_list: false }
    }
    /// How many pack uploads a writer should keep in flight: more hides a network round trip,
    /// fewer saves memory (a remote service is sent each pack from a buffer of its size).
    fn upload_concurrency(&self) -> usize {
        2
    }
}

/// A shared backend.
pub type DynBackend = Arc<dyn Backend>;

/// Opens the backend a repository URL names, with default options (see [`open_url_with`]).
pub fn open_url(url: &str) -> Result<DynBackend> {
    open_url_with(url, &Options::default())
}

/// Opens the backend a repository URL names: a plain path, `file:///path`, `memory://NAME`, or a
/// remote service (`s3://`, `sftp://`, `webdav(s)://`, `gcs://`, `azblob://`) configured by
/// `options`. Opening a remote service makes no request except what its builder does itself;
/// the first storage call reports bad credentials. With the `ledger_retention` option an `s3://`
/// repository writes its ledger entries with object-lock retention ([`s3lock`]); any other
/// location refuses the option (a usage error).
pub fn open_url_with(url: &str, options: &Options) -> Result<DynBackend> {
    let parsed = RepoUrl::parse(url)?;
    #[cfg(feature = "remote")]
    s3lock::refuse_unless_s3(&parsed, options)?;
    let backend: DynBackend = match parsed {
        RepoUrl::Memory(name) => Arc::new(opendal::OpendalBackend::memory(&name)?),
        RepoUrl::Local(path) => Arc::new(local::LocalBackend::new(path)?),
        remote => {
            let inner: DynBackend = Arc::new(remote::open(&remote, options)?);
            #[cfg(feature = "remote")]
            if let Some(r) = s3lock::Retention::from_options(options)? {
                // Ledger entries are created with object-lock retention (format-spec §13.7).
                let locked: DynBackend = Arc::new(s3lock::LedgerLock::new(inner, &remote, options, r)?);
                return fault::pause_from_env(locked);
            }
            inner
        }
    };
    // Test-only: a pause point the black-box tests arm through the environment.
    fault::pause_from_env(backend)
}

pub(crate) fn backend_err(op: &'static str, path: &str, source: impl Into<SourceError>) -> Error {
    Error::storage(op, path, source)
}

pub(crate) fn not_found(op: &'static str, path: &str) -> Error {
    Error::Backend { op, path: path.to_string(), source: "no such object".into(), not_found: true, exists: false }
}

pub(crate) fn exists(path: &str) -> Error {
    Error::Backend {
        op: "create",
        path: path.to_string(),
        source: "an object with this name already exists".into(),
        not_found: false,
        exists: true,
    }
}

/// Rejects object paths that could escape the repository root.
pub(crate) fn check_path(path: &str) -> Result<()> {
    if !crate::layout::is_valid_path(path) {
        return Err(Error::Usage(format!("invalid object path {path:?}")));
    }
    Ok(())
}
