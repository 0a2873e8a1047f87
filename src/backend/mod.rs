//! Storage backends: one small trait over the places a repository can live (format-spec §1).
//! Backends move bytes by name; they know nothing of the format.

use crate::error::{Error, Result};
use crate::tree::Time;
use std::sync::Arc;

pub mod fault;
pub mod local;
pub mod opendal;

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
    /// Stores a new object atomically; fails with an "exists" error (see
    /// [`Error::is_exists`]) if the name is taken. Never overwrites.
    fn write_new(&self, path: &str, data: &[u8]) -> Result<()>;
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
}

/// A shared backend.
pub type DynBackend = Arc<dyn Backend>;

/// Opens the backend a repository URL names: a plain path, `file:///path`, or `memory://NAME`.
pub fn open_url(url: &str) -> Result<DynBackend> {
    if let Some(rest) = url.strip_prefix("memory://") {
        return Ok(Arc::new(opendal::OpendalBackend::memory(rest)?));
    }
    if let Some(rest) = url.strip_prefix("file://") {
        return Ok(Arc::new(local::LocalBackend::new(rest)?));
    }
    if url.contains("://") {
        let scheme = url.split("://").next().unwrap_or_default();
        return Err(Error::Invalid(format!(
            "repository URL scheme {scheme}:// is not supported by this build (supported: a path, file://, memory://)"
        )));
    }
    if url.is_empty() {
        return Err(Error::Invalid("no repository given (use -r/--repo or CAIRN_REPOSITORY)".into()));
    }
    Ok(Arc::new(local::LocalBackend::new(url)?))
}

pub(crate) fn backend_err(op: &'static str, path: &str, message: impl ToString) -> Error {
    Error::Backend { op, path: path.to_string(), message: message.to_string(), not_found: false, exists: false }
}

pub(crate) fn not_found(op: &'static str, path: &str) -> Error {
    Error::Backend { op, path: path.to_string(), message: "no such object".into(), not_found: true, exists: false }
}

pub(crate) fn exists(path: &str) -> Error {
    Error::Backend {
        op: "create",
        path: path.to_string(),
        message: "an object with this name already exists".into(),
        not_found: false,
        exists: true,
    }
}

/// Rejects object paths that could escape the repository root.
pub(crate) fn check_path(path: &str) -> Result<()> {
    if path.is_empty()
        || path.starts_with('/')
        || path.split('/').any(|c| c.is_empty() || c == "." || c == "..")
        || path.contains('\0')
    {
        return Err(Error::Invalid(format!("invalid object path {path:?}")));
    }
    Ok(())
}
