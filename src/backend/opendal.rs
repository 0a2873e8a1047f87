//! Backends through OpenDAL: the `fs` service (reads of the local backend), `memory` (tests only)
//! and the remote services [`super::remote`] configures. Each call runs on a private tokio
//! runtime; call it from plain threads only. Errors name the backend's location, never a secret.

use super::retry::backoff;
use super::{backend_err, check_path, not_found, Backend, Guarantees, ObjectInfo, Staged};
use crate::error::{Error, Result};
use crate::time::Time;
use opendal::{Buffer, BytesRange, ErrorKind, Operator};
use std::future::IntoFuture;
use std::path::Path;
use std::sync::Mutex;

/// A backend over an OpenDAL operator.
pub struct OpendalBackend {
    op: Operator,
    rt: tokio::runtime::Runtime,
    location: String,
    /// Serializes check-then-write on services without conditional writes (memory, WebDAV).
    create_lock: Mutex<()>,
    /// What the service promises; `conditional_create` selects how `write_new` works.
    guarantees: Guarantees,
    /// Pack uploads to keep in flight.
    uploads: usize,
    /// Multipart part size for large objects (0: one request).
    chunk: usize,
    /// Remote: errors other than "not found"/"exists" name the location (the local backend's
    /// errors already do through its paths).
    remote: bool,
    /// The operator writes go through (see [`Remote::writer`]).
    writer: Operator,
    /// The operator listings go through (without OpenDAL's retry layer; see
    /// [`super::remote::layered`]), and how often a failed listing is retried whole.
    lister: Operator,
    list_retries: usize,
    /// How long a failed create waits to learn whether its name is now taken.
    probe_timeout: std::time::Duration,
    /// Packs staged in files go up as streamed, presigned PUTs (S3; see [`super::streamed`]).
    #[cfg(feature = "remote")]
    streaming: Option<super::streamed::Streaming>,
}

/// The parts of a remote backend besides its main operator.
pub struct Remote {
    /// The operator for writes: the main one with a longer timeout per step (a whole request
    /// body), see [`super::remote::layered`].
    pub writer: Operator,
    /// The operator for listings: the service without the retry layer.
    pub lister: Operator,
    /// Whole-listing retries.
    pub list_retries: usize,
    /// How long a failed create waits to learn whether its name is now taken (`io_timeout`).
    pub probe_timeout: std::time::Duration,
    /// The location for messages (no secrets).
    pub location: String,
    /// Streamed uploads of staged packs, where the service takes them.
    #[cfg(feature = "remote")]
    pub streaming: Option<super::streamed::Streaming>,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("cairn-io")
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the I/O runtime: {e}")))
}

impl std::fmt::Debug for OpendalBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpendalBackend").field("location", &self.location).finish_non_exhaustive()
    }
}

/// A remote service's error: its location, OpenDAL's message with the deeper causes it leaves
/// out, and a hint; the OpenDAL error itself stays the source.
#[derive(Debug)]
struct ServiceError {
    text: String,
    source: opendal::Error,
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for ServiceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl OpendalBackend {
    /// Reads `range` of `path` into one buffer of `presize` bytes (at most [`MAX_PRESIZE`]) as
    /// the response arrives: its pieces are dropped as they are copied, rather than gathered whole
    /// and then copied whole. `None` when the server sends more than `limit` bytes: reading stops
    /// at the first piece too many, so a hostile or broken server cannot grow the buffer past what
    /// was asked for (format-spec §12.6).
    fn read_bounded(
        &self,
        path: &str,
        range: impl Into<BytesRange>,
        limit: u64,
        presize: u64,
    ) -> Result<Option<Vec<u8>>> {
        use futures_util::TryStreamExt;
        let range = range.into();
        let mut v = Vec::with_capacity(presize.min(limit).min(MAX_PRESIZE) as usize);
        self.rt
            .block_on(async {
                let mut s = self.op.reader_with(path).await?.into_stream(range).await?;
                while let Some(piece) = s.try_next().await? {
                    if (v.len() + piece.len()) as u64 > limit {
                        return Ok(None);
                    }
                    for b in piece {
                        v.extend_from_slice(&b);
                    }
                }
                Ok(Some(()))
            })
            .map(|done| done.map(|()| v))
            .map_err(|e| self.map_err("read", path, e))
    }

    fn map_err(&self, op: &'static str, path: &str, e: opendal::Error) -> Error {
        if e.kind() == ErrorKind::NotFound {
            return not_found(op, path);
        }
        if e.kind() == ErrorKind::ConditionNotMatch {
            return super::exists(path);
        }
        if self.remote {
            // OpenDAL's message shows the first cause; the useful one (a refused certificate, a
            // reset connection) is often deeper.
            let mut text = e.to_string();
            let mut cause = std::error::Error::source(&e).and_then(|s| s.source());
            while let Some(c) = cause {
                text.push_str(&format!(": {c}"));
                cause = c.source();
            }
            let refused = e.kind() == ErrorKind::PermissionDenied
                || text.contains("status: 401")
                || text.contains("status: 403")
                || text.contains("Permission denied");
            let hint = if refused { " (the service refused the credentials)" } else { "" };
            return backend_err(op, path, ServiceError { text: format!("{}: {text}{hint}", self.location), source: e });
        }
        backend_err(op, path, e)
    }

    /// A remote service's operator (already layered), with what the service guarantees.
    pub fn remote(op: Operator, r: Remote, guarantees: Guarantees, uploads: usize, chunk: usize) -> Result<Self> {
        Ok(OpendalBackend {
            op,
            rt: runtime()?,
            location: r.location,
            create_lock: Mutex::new(()),
            guarantees,
            uploads,
            chunk,
            remote: true,
            writer: r.writer,
            lister: r.lister,
            list_retries: r.list_retries,
            probe_timeout: r.probe_timeout,
            #[cfg(feature = "remote")]
            streaming: r.streaming,
        })
    }

    /// The OpenDAL `fs` service rooted at `root`.
    pub fn fs(root: &Path) -> Result<Self> {
        let b = opendal::services::Fs::default().root(&root.to_string_lossy());
        let op = Operator::new(b).map_err(|e| backend_err("open", &root.display().to_string(), e))?;
        Ok(OpendalBackend {
            writer: op.clone(),
            lister: op.clone(),
            list_retries: 0,
            probe_timeout: std::time::Duration::from_secs(60),
            op,
            rt: runtime()?,
            location: root.display().to_string(),
            create_lock: Mutex::new(()),
            guarantees: Guarantees { conditional_create: false, atomic_write: false, consistent_list: true },
            uploads: 2,
            chunk: 0,
            remote: false,
            #[cfg(feature = "remote")]
            streaming: None,
        })
    }

    /// An in-memory store (unit tests only: it vanishes with the process).
    pub fn memory(name: &str) -> Result<Self> {
        let op = Operator::new(opendal::services::Memory::default()).map_err(|e| backend_err("open", "memory", e))?;
        Ok(OpendalBackend {
            writer: op.clone(),
            lister: op.clone(),
            list_retries: 0,
            probe_timeout: std::time::Duration::from_secs(60),
            op,
            rt: runtime()?,
            location: format!("memory://{name}"),
            create_lock: Mutex::new(()),
            // One process owns the map, and the create lock serializes check-then-write.
            guarantees: Guarantees { conditional_create: true, atomic_write: true, consistent_list: true },
            uploads: 2,
            chunk: 0,
            remote: false,
            #[cfg(feature = "remote")]
            streaming: None,
        })
    }

    /// Stores `body` under `path` if the name is free.
    ///
    /// Remote services with conditional create send one `If-None-Match: *` (or `O_EXCL`) write.
    /// OpenDAL's retry layer may resend it after a timeout or a dropped connection, and if the
    /// first attempt landed, the resend is refused as "exists". So an "exists" answer is checked:
    /// when the stored object holds exactly `body`, the create is complete and this returns
    /// `Ok`; otherwise it is the "exists" error. (Names are random or content hashes, so equal
    /// bytes under the same name mean this write, or — for packs — the same pack.)
    ///
    /// Services without conditional create (WebDAV, memory, the `fs` reader) stat and then write
    /// under a process-wide lock: that never overwrites an object this process can see, but two
    /// processes can race between the stat and the write (format-spec §1.3, §1.4).
    fn create(&self, path: &str, body: Buffer) -> Result<()> {
        check_path(path)?;
        let len = body.len();
        if self.remote && self.guarantees.conditional_create {
            let mut w = self.writer.write_with(path, body.clone()).if_not_exists(true);
            if self.chunk > 0 && len > self.chunk {
                w = w.chunk(self.chunk).concurrent(2);
            }
            match self.rt.block_on(w.into_future()) {
                Ok(_) => Ok(()),
                // A server may answer "exists" before it has read the body and close the connection,
                // which the client reports as a failed send (s3s-fs does): a failed create whose name
                // is now taken is checked like a refused one.
                Err(e) if e.kind() == ErrorKind::ConditionNotMatch || self.taken_now(path) => match self.read(path) {
                    Ok(stored) if stored[..] == body.to_bytes()[..] => {
                        tracing::debug!("{path}: already stored with the same bytes (a retried create)");
                        Ok(())
                    }
                    _ => Err(super::exists(path)),
                },
                Err(e) => Err(self.map_err("write", path, e)),
            }
        } else {
            let _g = self.create_lock.lock().unwrap_or_else(|p| p.into_inner());
            if self.stat(path)?.is_some() {
                return Err(super::exists(path));
            }
            let mut w = self.writer.write_with(path, body);
            if self.chunk > 0 && len > self.chunk {
                w = w.chunk(self.chunk);
            }
            self.rt.block_on(w.into_future()).map(|_| ()).map_err(|e| self.map_err("write", path, e))
        }
    }

    /// True when `path` exists, asked after a create failed; false when that is not known within
    /// the probe's time (a stalled server must not hold a failure up for a whole `timeout`).
    fn taken_now(&self, path: &str) -> bool {
        self.rt.block_on(async {
            matches!(tokio::time::timeout(self.probe_timeout, self.op.exists(path)).await, Ok(Ok(true)))
        })
    }

    /// [`OpendalBackend::create`] of a staged file, streamed from it ([`super::streamed`]).
    #[cfg(feature = "remote")]
    fn create_streamed(&self, path: &str, file: std::sync::Arc<super::staged::StagedFile>) -> Result<()> {
        use super::streamed::Put;
        let Some(streaming) = &self.streaming else {
            return Err(Error::Internal("a streamed upload without its settings".into()));
        };
        if self.guarantees.conditional_create {
            match self.rt.block_on(streaming.put(&self.op, path, &file, true))? {
                Put::Created => Ok(()),
                // As in `create`: a retried create whose first attempt landed, or the same pack.
                Put::Exists if self.stored_equals(path, &file)? => {
                    tracing::debug!("{path}: already stored with the same bytes (a retried create)");
                    Ok(())
                }
                Put::Exists => Err(super::exists(path)),
            }
        } else {
            let _g = self.create_lock.lock().unwrap_or_else(|p| p.into_inner());
            if self.stat(path)?.is_some() {
                return Err(super::exists(path));
            }
            self.rt.block_on(streaming.put(&self.op, path, &file, false)).map(|_| ())
        }
    }

    /// True when the object at `path` holds exactly the bytes of `file`, compared a range at a
    /// time (a pack is not held whole for this either).
    #[cfg(feature = "remote")]
    fn stored_equals(&self, path: &str, file: &super::staged::StagedFile) -> Result<bool> {
        use std::os::unix::fs::FileExt;
        const RANGE: u64 = 4 << 20;
        match self.stat(path)? {
            Some(info) if info.size == file.len() => {}
            _ => return Ok(false),
        }
        let mut mine = Vec::new();
        let mut at = 0;
        while at < file.len() {
            let n = (file.len() - at).min(RANGE);
            let stored = match self.read_range(path, at, n) {
                Ok(b) => b,
                Err(e) if e.is_not_found() => return Ok(false),
                Err(e) => return Err(e),
            };
            mine.resize(n as usize, 0);
            file.file().read_exact_at(&mut mine, at).map_err(|e| file.error("read", e))?;
            if stored != mine {
                return Ok(false);
            }
            at += n;
        }
        Ok(true)
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
        self.rt.block_on(self.op.read(path)).map(|b| b.to_vec()).map_err(|e| self.map_err("read", path, e))
    }

    fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        check_path(path)?;
        let end = offset.checked_add(len).ok_or_else(|| backend_err("read", path, "range overflows"))?;
        let v = self.read_bounded(path, offset..end, len, len)?.ok_or_else(|| {
            backend_err("read", path, format!("the server sent more than the {len} bytes asked for at {offset}"))
        })?;
        if v.len() as u64 != len {
            return Err(backend_err("read", path, format!("short read: {} of {len} bytes at {offset}", v.len())));
        }
        Ok(v)
    }

    /// One request: the object is read as it arrives and cut off past `max` bytes. Only an
    /// object found too big is asked for its size, for the message (at least `max + 1`).
    fn read_at_most(&self, path: &str, max: u64) -> Result<std::result::Result<Vec<u8>, u64>> {
        check_path(path)?;
        // Nothing reserved ahead: a small object arrives in one piece, which sizes the buffer.
        match self.read_bounded(path, .., max, 0)? {
            Some(v) => Ok(Ok(v)),
            None => {
                let size = self.stat(path)?.map_or(0, |i| i.size);
                Ok(Err(size.max(max.saturating_add(1))))
            }
        }
    }

    /// See [`OpendalBackend::create`].
    fn write_new(&self, path: &str, data: &[u8]) -> Result<()> {
        self.create(path, Buffer::from(data.to_vec()))
    }

    /// A pack staged in a file goes up from the file as it is sent where the service allows
    /// ([`super::streamed`]): an upload in flight holds a few pieces of it. Otherwise it is read
    /// back once, and its bytes become the request body without another copy: an upload in
    /// flight holds one pack in memory, and an open pack none (it is staged in a file, see
    /// [`Backend::stage`]).
    fn write_staged(&self, path: &str, staged: Staged) -> Result<()> {
        check_path(path)?;
        match staged {
            #[cfg(feature = "remote")]
            Staged::File(f) if self.streaming.is_some() => self.create_streamed(path, std::sync::Arc::new(f)),
            staged => self.create(path, Buffer::from(staged.into_bytes()?)),
        }
    }

    fn stat(&self, path: &str) -> Result<Option<ObjectInfo>> {
        check_path(path)?;
        match self.rt.block_on(self.op.stat(path)) {
            Ok(m) => Ok(Some(Self::info(path.to_string(), &m))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.map_err("stat", path, e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let prefix = if prefix.ends_with('/') { prefix.to_string() } else { format!("{prefix}/") };
        // Retried whole, never page by page (see `super::remote::layered`).
        let mut attempt = 0u32;
        let entries = loop {
            match self.rt.block_on(self.lister.list_with(&prefix).recursive(true).into_future()) {
                Ok(v) => break v,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) if e.is_temporary() && (attempt as usize) < self.list_retries => {
                    attempt += 1;
                    let wait = backoff(attempt);
                    tracing::warn!("storage list {prefix} failed, retry {attempt} in {:.1}s: {e}", wait.as_secs_f64());
                    std::thread::sleep(wait);
                }
                Err(e) => return Err(self.map_err("list", &prefix, e)),
            }
        };
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            if !e.metadata().is_file() {
                continue;
            }
            let path = e.path().trim_start_matches('/').to_string();
            let m = if e.metadata().content_length() == 0 && e.metadata().last_modified().is_none() {
                self.rt.block_on(self.op.stat(&path)).map_err(|er| self.map_err("stat", &path, er))?
            } else {
                e.metadata().clone()
            };
            out.push(Self::info(path, &m));
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn guarantees(&self) -> Guarantees {
        self.guarantees
    }

    fn upload_concurrency(&self) -> usize {
        self.uploads
    }

    fn delete(&self, path: &str) -> Result<()> {
        check_path(path)?;
        match self.rt.block_on(self.op.delete(path)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.map_err("delete", path, e)),
        }
    }
}

/// The most a ranged read reserves before its bytes arrive (a pack's ranged reads are a few MiB).
const MAX_PRESIZE: u64 = 64 << 20;

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
