//! Local-disk backend. Stats, listings and deletes go through OpenDAL's `fs` service; reads (one
//! open and read each, no hop to a blocking thread) and creation are our own, creation because
//! OpenDAL's fs (0.59) neither refuses to overwrite atomically nor fsyncs the directory: temp file
//! → fsync → `renameat2(RENAME_NOREPLACE)` (or `link()`) → fsync of the directory (format-spec
//! §1.2).

use super::opendal::OpendalBackend;
use super::staged::{Spill, Staged, StagedFile};
use super::{backend_err, check_path, exists, Backend, ObjectInfo};
use crate::error::{Error, Result};
use crate::layout::{ObjectType, LEDGER_DIR};
use std::ffi::CString;
use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A repository in a local directory.
pub struct LocalBackend {
    root: PathBuf,
    /// Made on first use, and only once the root exists: OpenDAL's fs service creates its root,
    /// and no command but `init` may create a repository directory.
    reader: std::sync::OnceLock<OpendalBackend>,
    /// Packs renamed into place but not yet fsynced, and the lock that makes `sync` atomic: a
    /// `sync` returns only when every pack written before it began is durable.
    unsynced: std::sync::Mutex<Vec<PathBuf>>,
}

impl LocalBackend {
    /// A backend rooted at `root` (which need not exist yet).
    pub fn new(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref();
        let root = if root.is_absolute() {
            root.to_path_buf()
        } else {
            std::env::current_dir().map_err(|e| Error::io(root, e))?.join(root)
        };
        Ok(LocalBackend { root, reader: std::sync::OnceLock::new(), unsynced: std::sync::Mutex::new(Vec::new()) })
    }

    /// The OpenDAL reader; `None` while the root directory does not exist.
    fn reader(&self) -> Result<Option<&OpendalBackend>> {
        if let Some(r) = self.reader.get() {
            return Ok(Some(r));
        }
        if !self.root.is_dir() {
            return Ok(None);
        }
        let r = OpendalBackend::fs(&self.root)?;
        Ok(Some(self.reader.get_or_init(|| r)))
    }

    fn full(&self, path: &str) -> PathBuf {
        self.root.join(path)
    }

    /// Opens the object at `path` for reading; a missing one is "not found".
    fn open_for_read(&self, path: &str) -> Result<File> {
        File::open(self.full(path)).map_err(|e| read_err(path, e))
    }

    /// The folder `path` goes in, created (and its parent fsynced) when missing.
    fn object_dir(&self, path: &str) -> Result<PathBuf> {
        let dst = self.full(path);
        let dir = dst.parent().expect("object paths have a parent").to_path_buf();
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(|e| backend_err("mkdir", path, e))?;
            if let Some(pp) = dir.parent() {
                fsync_dir(pp).map_err(|e| backend_err("fsync", path, e))?;
            }
        }
        Ok(dir)
    }

    /// Names a written temporary file `path` unless that name exists: fsync (deferred to `sync`
    /// for packs) → `renameat2(RENAME_NOREPLACE)` or `link()` → fsync of the folder. The
    /// temporary file is removed when it is not placed.
    fn place(&self, path: &str, staged: StagedFile) -> Result<()> {
        let dst = self.full(path);
        let dir = dst.parent().expect("object paths have a parent").to_path_buf();
        // Packs are made durable in batches by `sync` (before any index names them), so their
        // write-back overlaps the backup's work; everything else is durable on return.
        let deferred = ObjectType::of_path(path).and_then(ObjectType::blob_kind).is_some();
        if !deferred {
            staged.file().sync_all().map_err(|e| backend_err("write", path, e))?;
        }
        let Some(tmp) = staged.persist() else {
            return Err(Error::Internal(format!("{path}: a staged file without a name cannot be placed")));
        };
        let res = (|| -> std::io::Result<bool> {
            let placed = rename_noreplace(&tmp, &dst)?;
            if placed {
                if deferred {
                    self.unsynced.lock().unwrap_or_else(|p| p.into_inner()).push(dst.clone());
                } else {
                    fsync_dir(&dir)?;
                }
            }
            Ok(placed)
        })();
        match res {
            Ok(true) => Ok(()),
            Ok(false) => {
                let _ = fs::remove_file(&tmp);
                Err(exists(path))
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(backend_err("write", path, e))
            }
        }
    }
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn cstr(p: &Path) -> std::io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| std::io::Error::other("path contains NUL"))
}

/// Moves `tmp` to `dst` unless `dst` exists; `Ok(false)` when it does.
fn rename_noreplace(tmp: &Path, dst: &Path) -> std::io::Result<bool> {
    let (a, b) = (cstr(tmp)?, cstr(dst)?);
    // SAFETY: both are valid NUL-terminated paths; AT_FDCWD with absolute paths.
    let r = unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), libc::RENAME_NOREPLACE) };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EEXIST) => Ok(false),
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => {
            // The filesystem lacks RENAME_NOREPLACE: link() is atomic and fails on existence.
            match fs::hard_link(tmp, dst) {
                Ok(()) => {
                    fs::remove_file(tmp)?;
                    Ok(true)
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(e),
            }
        }
        _ => Err(e),
    }
}

/// A read of `path` that failed with `e`: "not found" when the file is missing.
fn read_err(path: &str, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        super::not_found("read", path)
    } else {
        backend_err("read", path, e)
    }
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn read(&self, path: &str) -> Result<Vec<u8>> {
        check_path(path)?;
        fs::read(self.full(path)).map_err(|e| read_err(path, e))
    }

    /// Read here (open, seek, read, close) rather than through OpenDAL's `fs` service, where each
    /// read took a hop to a blocking thread and back and a copy of its bytes: a restore reads
    /// thousands of tree blobs one after another and paid that each time.
    fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        check_path(path)?;
        offset.checked_add(len).ok_or_else(|| backend_err("read", path, "range overflows"))?;
        let cap = usize::try_from(len).map_err(|_| backend_err("read", path, "range too large"))?;
        let mut f = self.open_for_read(path)?;
        f.seek(SeekFrom::Start(offset)).map_err(|e| backend_err("read", path, e))?;
        // Capacity for what the object can hold: a hostile index entry's length is not allocated
        // beyond the file's end.
        let size = f.metadata().map_err(|e| backend_err("read", path, e))?.len();
        let mut buf = Vec::with_capacity(cap.min(size.saturating_sub(offset) as usize));
        f.take(len).read_to_end(&mut buf).map_err(|e| backend_err("read", path, e))?;
        if buf.len() as u64 != len {
            return Err(backend_err("read", path, format!("short read: {} of {len} bytes at {offset}", buf.len())));
        }
        Ok(buf)
    }

    /// One open: the size from the open file, then a read of at most `max + 1` bytes.
    fn read_at_most(&self, path: &str, max: u64) -> Result<std::result::Result<Vec<u8>, u64>> {
        use std::io::Read;
        check_path(path)?;
        let f = self.open_for_read(path)?;
        let size = f.metadata().map_err(|e| backend_err("read", path, e))?.len();
        if size > max {
            return Ok(Err(size));
        }
        let mut buf = Vec::with_capacity(size as usize);
        f.take(max.saturating_add(1)).read_to_end(&mut buf).map_err(|e| backend_err("read", path, e))?;
        if buf.len() as u64 > max {
            return Ok(Err(buf.len() as u64));
        }
        Ok(Ok(buf))
    }

    fn write_new(&self, path: &str, data: &[u8]) -> Result<()> {
        check_path(path)?;
        let dir = self.object_dir(path)?;
        let mut staged = StagedFile::create(&dir).map_err(|e| backend_err("write", path, e))?;
        staged.append(data).map_err(|e| backend_err("write", path, e))?;
        self.place(path, staged)
    }

    /// A temporary file in the pack type's folder, whatever `spill` offers: the pack's bytes
    /// never sit whole in memory, and the rename that names it stays within one file system.
    fn stage(&self, kind_dir: &str, _capacity: usize, _spill: Spill<'_>) -> Result<Staged> {
        if ![ObjectType::DataPack, ObjectType::TreePack].iter().any(|t| t.dir() == kind_dir) {
            return Err(Error::Usage(format!("not a pack folder: {kind_dir:?}")));
        }
        let dir = self.full(kind_dir);
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(|e| backend_err("mkdir", kind_dir, e))?;
        }
        Ok(Staged::File(StagedFile::create(&dir).map_err(|e| backend_err("create", kind_dir, e))?))
    }

    fn write_staged(&self, path: &str, staged: Staged) -> Result<()> {
        check_path(path)?;
        match staged {
            Staged::File(f) if f.is_named() => {
                self.object_dir(path)?;
                self.place(path, f)
            }
            other => self.write_new(path, &other.into_bytes()?),
        }
    }

    fn stat(&self, path: &str) -> Result<Option<ObjectInfo>> {
        check_path(path)?;
        match self.reader()? {
            Some(r) => r.stat(path),
            None => Ok(None),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        if !self.full(prefix).is_dir() {
            return Ok(Vec::new());
        }
        let Some(r) = self.reader()? else { return Ok(Vec::new()) };
        let mut v = r.list(prefix)?;
        v.retain(|o| !o.path.rsplit('/').next().unwrap_or("").starts_with(".tmp-"));
        Ok(v)
    }

    fn delete(&self, path: &str) -> Result<()> {
        check_path(path)?;
        match fs::remove_file(self.full(path)) {
            Ok(()) => {
                if let Some(d) = self.full(path).parent() {
                    fsync_dir(d).map_err(|e| backend_err("fsync", path, e))?;
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(backend_err("delete", path, e)),
        }
    }

    fn guarantees(&self) -> super::Guarantees {
        // renameat2(RENAME_NOREPLACE)/link() refuse an existing name, also across processes;
        // temp file + rename makes every object whole or absent (format-spec §1.2).
        super::Guarantees { conditional_create: true, atomic_write: true, consistent_list: true }
    }

    fn sync(&self) -> Result<()> {
        // Held across the fsyncs: a concurrent `sync` must not return while packs taken by this
        // one are still being flushed.
        let mut pending = self.unsynced.lock().unwrap_or_else(|p| p.into_inner());
        let mut dirs: Vec<PathBuf> = Vec::new();
        for p in pending.iter() {
            let shown = p.strip_prefix(&self.root).unwrap_or(p).display().to_string();
            File::open(p).and_then(|f| f.sync_all()).map_err(|e| backend_err("fsync", &shown, e))?;
            if let Some(d) = p.parent() {
                if !dirs.iter().any(|x| x == d) {
                    dirs.push(d.to_path_buf());
                }
            }
        }
        for d in &dirs {
            let shown = d.strip_prefix(&self.root).unwrap_or(d).display().to_string();
            fsync_dir(d).map_err(|e| backend_err("fsync", &shown, e))?;
        }
        pending.clear();
        Ok(())
    }

    fn create_root(&self) -> Result<()> {
        let loc = self.location();
        if self.root.exists() {
            let mut it = fs::read_dir(&self.root).map_err(|e| Error::io(&self.root, e))?;
            if it.next().is_some() {
                return Err(Error::refused(format!(
                    "{loc}: directory is not empty; refusing to create a repository in it"
                )));
            }
        }
        let mut dirs: Vec<&str> = ObjectType::ALL.iter().map(|t| t.dir()).collect();
        dirs.push(LEDGER_DIR);
        dirs.dedup();
        for d in dirs {
            fs::create_dir_all(self.root.join(d)).map_err(|e| Error::io(self.root.join(d), e))?;
        }
        for t in [ObjectType::DataPack, ObjectType::TreePack] {
            for sub in t.fan_out_dirs() {
                let d = self.root.join(sub);
                fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
            }
            fsync_dir(&self.root.join(t.dir())).map_err(|e| Error::io(self.root.join(t.dir()), e))?;
        }
        fsync_dir(&self.root).map_err(|e| Error::io(&self.root, e))?;
        if let Some(p) = self.root.parent() {
            let _ = fsync_dir(p);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_if_not_exists_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("repo")).unwrap();
        b.create_root().unwrap();
        b.write_new("index/abc", b"one").unwrap();
        b.write_new("data/ab/abc", b"pack").unwrap();
        assert_eq!(b.unsynced.lock().unwrap().len(), 1, "pack durability is deferred");
        b.sync().unwrap();
        assert!(b.unsynced.lock().unwrap().is_empty());
        assert_eq!(b.read("data/ab/abc").unwrap(), b"pack");
        let e = b.write_new("index/abc", b"two").unwrap_err();
        assert!(e.is_exists(), "{e}");
        assert_eq!(b.read("index/abc").unwrap(), b"one");
        assert_eq!(b.read_range("index/abc", 1, 2).unwrap(), b"ne");
        let l = b.list("index/").unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].path, "index/abc");
        assert_eq!(l[0].size, 3);
        assert!(b.stat("index/nope").unwrap().is_none());
        assert!(b.read("index/nope").unwrap_err().is_not_found());
        assert!(b.write_new("../escape", b"x").is_err());
        b.delete("index/abc").unwrap();
        b.delete("index/abc").unwrap();
        assert!(b.list("index/").unwrap().is_empty());
    }

    #[test]
    fn concurrent_creators_of_one_name_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let b = std::sync::Arc::new(LocalBackend::new(dir.path()).unwrap());
        let hs: Vec<_> = (0..8u8)
            .map(|i| {
                let b = b.clone();
                std::thread::spawn(move || b.write_new("x/y", &[i; 1000]).is_ok())
            })
            .collect();
        let wins = hs.into_iter().filter(|_| true).map(|h| h.join().unwrap()).filter(|w| *w).count();
        assert_eq!(wins, 1);
        let d = b.read("x/y").unwrap();
        assert!(d.iter().all(|&x| x == d[0]));
    }
}
