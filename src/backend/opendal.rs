//! Backends through OpenDAL: the `fs` service (reads of the local backend) and `memory` (unit
//! tests only). Each call runs on a private tokio runtime; call it from plain threads only.

use super::{backend_err, check_path, not_found, Backend, ObjectInfo};
use crate::error::{Error, Result};
use crate::tree::Time;
use opendal::{ErrorKind, Operator};
use std::future::IntoFuture;
use std::path::Path;
use std::sync::Mutex;

/// A backend over an OpenDAL operator.
pub struct OpendalBackend {
    op: Operator,
    rt: tokio::runtime::Runtime,
    location: String,
    /// Serializes check-then-write on services without conditional writes (memory).
    create_lock: Mutex<()>,
    conditional_write: bool,
}

fn map_err(op: &'static str, path: &str, e: opendal::Error) -> Error {
    if e.kind() == ErrorKind::NotFound {
        return not_found(op, path);
    }
    if e.kind() == ErrorKind::ConditionNotMatch {
        return super::exists(path);
    }
    backend_err(op, path, e)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("cairn-io")
        .build()
        .map_err(|e| Error::Invalid(format!("cannot start the I/O runtime: {e}")))
}

impl OpendalBackend {
    /// The OpenDAL `fs` service rooted at `root`.
    pub fn fs(root: &Path) -> Result<Self> {
        let b = opendal::services::Fs::default().root(&root.to_string_lossy());
        let op = Operator::new(b).map_err(|e| backend_err("open", &root.display().to_string(), e))?;
        Ok(OpendalBackend {
            op,
            rt: runtime()?,
            location: root.display().to_string(),
            create_lock: Mutex::new(()),
            conditional_write: false,
        })
    }

    /// An in-memory store (unit tests only: it vanishes with the process).
    pub fn memory(name: &str) -> Result<Self> {
        let op = Operator::new(opendal::services::Memory::default()).map_err(|e| backend_err("open", "memory", e))?;
        Ok(OpendalBackend {
            op,
            rt: runtime()?,
            location: format!("memory://{name}"),
            create_lock: Mutex::new(()),
            conditional_write: false,
        })
    }

    fn info(path: String, m: &opendal::Metadata) -> ObjectInfo {
        ObjectInfo {
            path,
            size: m.content_length(),
            modified: m.last_modified().map(|t| {
                // Through SystemTime: OpenDAL's timestamp converts only into its own jiff version.
                let t: std::time::SystemTime = t.into();
                match t.duration_since(std::time::UNIX_EPOCH) {
                    Ok(d) => Time { secs: d.as_secs() as i64, nanos: d.subsec_nanos() },
                    Err(e) => Time::from_nanos(-(e.duration().as_nanos() as i128)),
                }
            }),
        }
    }
}

impl Backend for OpendalBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn read(&self, path: &str) -> Result<Vec<u8>> {
        check_path(path)?;
        self.rt.block_on(self.op.read(path)).map(|b| b.to_vec()).map_err(|e| map_err("read", path, e))
    }

    fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        check_path(path)?;
        let end = offset.checked_add(len).ok_or_else(|| backend_err("read", path, "range overflows"))?;
        let v = self
            .rt
            .block_on(self.op.read_with(path).range(offset..end).into_future())
            .map(|b| b.to_vec())
            .map_err(|e| map_err("read", path, e))?;
        if v.len() as u64 != len {
            return Err(backend_err("read", path, format!("short read: {} of {len} bytes at {offset}", v.len())));
        }
        Ok(v)
    }

    fn write_new(&self, path: &str, data: &[u8]) -> Result<()> {
        check_path(path)?;
        if self.conditional_write {
            self.rt
                .block_on(self.op.write_with(path, data.to_vec()).if_not_exists(true).into_future())
                .map(|_| ())
                .map_err(|e| map_err("write", path, e))
        } else {
            let _g = self.create_lock.lock().unwrap_or_else(|p| p.into_inner());
            if self.stat(path)?.is_some() {
                return Err(super::exists(path));
            }
            self.rt.block_on(self.op.write(path, data.to_vec())).map(|_| ()).map_err(|e| map_err("write", path, e))
        }
    }

    fn stat(&self, path: &str) -> Result<Option<ObjectInfo>> {
        check_path(path)?;
        match self.rt.block_on(self.op.stat(path)) {
            Ok(m) => Ok(Some(Self::info(path.to_string(), &m))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(map_err("stat", path, e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let prefix = if prefix.ends_with('/') { prefix.to_string() } else { format!("{prefix}/") };
        let entries = match self.rt.block_on(self.op.list_with(&prefix).recursive(true).into_future()) {
            Ok(v) => v,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(map_err("list", &prefix, e)),
        };
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            if !e.metadata().is_file() {
                continue;
            }
            let path = e.path().trim_start_matches('/').to_string();
            let m = if e.metadata().content_length() == 0 && e.metadata().last_modified().is_none() {
                self.rt.block_on(self.op.stat(&path)).map_err(|er| map_err("stat", &path, er))?
            } else {
                e.metadata().clone()
            };
            out.push(Self::info(path, &m));
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn delete(&self, path: &str) -> Result<()> {
        check_path(path)?;
        match self.rt.block_on(self.op.delete(path)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(map_err("delete", path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_backend_basics() {
        let b = OpendalBackend::memory("t").unwrap();
        b.write_new("index/a", b"1").unwrap();
        assert!(b.write_new("index/a", b"2").unwrap_err().is_exists());
        assert_eq!(b.read("index/a").unwrap(), b"1");
        let l = b.list("index/").unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].size, 1);
        assert!(b.read("index/b").unwrap_err().is_not_found());
        b.delete("index/a").unwrap();
        assert!(b.list("index/").unwrap().is_empty());
    }
}
