//! The object size limits on reads (format-spec §12.6, "Object size limits"): a whole-object read
//! of a config, key file, lease, snapshot, index file or prune-state object larger than its
//! type's [`ObjectType::max_size`] is refused as corrupt before it is read, so a planted huge
//! object cannot exhaust memory. Packs are read by range and have no limit here.

use super::{Backend, DynBackend, Guarantees, ObjectInfo, Spill, Staged};
use crate::error::{Damaged, Error, Result};
use crate::layout::{Object, ObjectType};

/// Reads the whole object `path`, refusing it as corrupt when it is larger than `max` bytes,
/// without reading more than `max + 1` of them ([`Backend::read_at_most`]: the local backend
/// takes the size from the open file; the remote ones stop reading past `max` bytes, whatever
/// size the server gives).
pub fn read_capped(b: &dyn Backend, path: &str, max: u64) -> Result<Vec<u8>> {
    let too_big = |size: u64| {
        let what = match Object::parse(path) {
            Some(o) => Damaged::Object(o),
            None => Damaged::Other(path.to_string()),
        };
        Error::Corrupt {
            object: what,
            reason: format!("{size} bytes, more than the {max} bytes this object type may have (format-spec §12.6)"),
        }
    };
    b.read_at_most(path, max)?.map_err(too_big)
}

/// A backend whose whole-object reads keep to the size limit of each object type (see
/// [`read_capped`]); everything else passes straight through. A repository reads through one.
pub struct CappedBackend {
    inner: DynBackend,
}

impl CappedBackend {
    /// Wraps `inner`.
    pub fn new(inner: DynBackend) -> Self {
        CappedBackend { inner }
    }
}

impl Backend for CappedBackend {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn read(&self, path: &str) -> Result<Vec<u8>> {
        match ObjectType::of_path(path).and_then(ObjectType::max_size) {
            Some(max) => read_capped(self.inner.as_ref(), path, max),
            None => self.inner.read(path),
        }
    }

    fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.inner.read_range(path, offset, len)
    }

    fn read_at_most(&self, path: &str, max: u64) -> Result<std::result::Result<Vec<u8>, u64>> {
        self.inner.read_at_most(path, max)
    }

    fn write_new(&self, path: &str, data: &[u8]) -> Result<()> {
        self.inner.write_new(path, data)
    }

    fn stage(&self, kind_dir: &str, capacity: usize, spill: Spill<'_>) -> Result<Staged> {
        self.inner.stage(kind_dir, capacity, spill)
    }

    fn write_staged(&self, path: &str, staged: Staged) -> Result<()> {
        self.inner.write_staged(path, staged)
    }

    fn stat(&self, path: &str) -> Result<Option<ObjectInfo>> {
        self.inner.stat(path)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.inner.list(prefix)
    }

    fn delete(&self, path: &str) -> Result<()> {
        self.inner.delete(path)
    }

    fn sync(&self) -> Result<()> {
        self.inner.sync()
    }

    fn create_root(&self) -> Result<()> {
        self.inner.create_root()
    }

    fn guarantees(&self) -> Guarantees {
        self.inner.guarantees()
    }

    fn upload_concurrency(&self) -> usize {
        self.inner.upload_concurrency()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn an_object_over_its_type_limit_is_corrupt_and_not_read() {
        let inner: DynBackend = Arc::new(super::super::opendal::OpendalBackend::memory("capped").unwrap());
        let b = CappedBackend::new(inner.clone());
        let cfg = Object::Config(1).path();
        inner.write_new(&cfg, &vec![0u8; (1 << 20) + 1]).unwrap();
        let e = b.read(&cfg).unwrap_err();
        assert!(matches!(e, Error::Corrupt { object: Damaged::Object(Object::Config(1)), .. }), "{e}");
        assert!(e.to_string().contains("1048577 bytes"), "{e}");
        let ok = Object::Config(2).path();
        inner.write_new(&ok, &vec![0u8; 1 << 20]).unwrap();
        assert_eq!(b.read(&ok).unwrap().len(), 1 << 20);
        let pack = "data/00/0000000000000000000000000000000000000000000000000000000000000000";
        inner.write_new(pack, &vec![0u8; (1 << 20) + 1]).unwrap();
        assert_eq!(b.read(pack).unwrap().len(), (1 << 20) + 1, "packs have no whole-object limit");
    }

    #[test]
    fn the_local_backend_takes_the_size_from_the_open_file() {
        let tmp = tempfile::tempdir().unwrap();
        let inner: DynBackend = Arc::new(super::super::local::LocalBackend::new(tmp.path()).unwrap());
        let b = CappedBackend::new(inner.clone());
        let (big, ok, missing) = (Object::Config(1).path(), Object::Config(2).path(), Object::Config(3).path());
        inner.write_new(&big, &vec![7u8; (1 << 20) + 1]).unwrap();
        inner.write_new(&ok, &vec![7u8; 1 << 20]).unwrap();
        assert_eq!(inner.read_at_most(&big, 1 << 20).unwrap(), Err((1 << 20) + 1));
        let e = b.read(&big).unwrap_err();
        assert!(matches!(e, Error::Corrupt { object: Damaged::Object(Object::Config(1)), .. }), "{e}");
        assert!(e.to_string().contains("1048577 bytes"), "{e}");
        assert_eq!(b.read(&ok).unwrap(), vec![7u8; 1 << 20]);
        assert!(b.read(&missing).unwrap_err().is_not_found());
    }
}
