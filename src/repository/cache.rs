//! The local cache: blob id → locations, the set of index files ingested, and the
//! files cache. Derived state only: deleting it is always safe. One RocksDB per repository id; a
//! second process that finds it locked runs on a private temporary database instead of failing.
//! The cache names every backed-up path: its directories are created 0700 and its own files
//! 0600, and a directory not owned by this user or writable by others is refused (README
//! "Security model").

use crate::error::{Error, Result};
use crate::id::{BlobId, BlobKind, IndexId, PackId, RepoId};
use crate::index::IndexPack;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where a blob is stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// Blob kind (= the kind of its pack).
    pub kind: BlobKind,
    /// The pack.
    pub pack: PackId,
    /// Offset of the sealed blob in the pack.
    pub offset: u64,
    /// Sealed length.
    pub length: u32,
    /// Plain length.
    pub plain_length: u32,
    /// Session public key that sealed it.
    pub session: [u8; 32],
}

impl Location {
    /// The location an index entry describes: blob `b` of pack `ip`; `None` when the blob names
    /// no session of the pack (an index file that fails validation, format-spec §6.2).
    pub fn of(ip: &IndexPack, b: &crate::index::IndexBlob) -> Option<Location> {
        Some(Location {
            kind: b.kind,
            pack: ip.id,
            offset: b.offset,
            length: b.length,
            plain_length: b.plain_length,
            session: *ip.sessions.get(b.session as usize)?,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct LocVal {
    offset: u64,
    length: u32,
    plain_length: u32,
    session: [u8; 32],
}

/// What the files cache remembers of a file (keyed by its absolute path).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Size.
    pub size: u64,
    /// mtime in ns.
    pub mtime: i128,
    /// ctime in ns.
    pub ctime: i128,
    /// Inode number.
    pub inode: u64,
    /// Device.
    pub dev: u64,
    /// The file's data blob ids.
    pub content: Vec<BlobId>,
    /// Its extended attributes: a change to them moves ctime, so a hit need not read them again.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// The file's bytes when its content is inline in its tree node (format-spec §7.3); its
    /// `content` is then empty.
    pub inline: Option<Vec<u8>>,
}

enum Store {
    #[cfg(feature = "cache")]
    Rocks(rocksdb::DB),
    Mem(std::sync::RwLock<std::collections::BTreeMap<Vec<u8>, Vec<u8>>>),
}

/// The cache of one repository.
pub struct Cache {
    store: Store,
    /// cairn's lock on the cache directory, held while the database is open (after `store`, so
    /// it is released after the database closes).
    _lock: Option<std::fs::File>,
    dir: PathBuf,
    temporary: bool,
    note: Option<String>,
}

const BLOB: u8 = b'b';
const INDEX: u8 = b'i';
const FILE: u8 = b'f';

fn blob_prefix(kind: BlobKind, id: &BlobId) -> Vec<u8> {
    let mut k = Vec::with_capacity(66);
    k.push(BLOB);
    k.push(kind.code());
    k.extend_from_slice(&id.0);
    k
}

impl Cache {
    /// Opens (creating) the cache of `repo` under `root`; if another process holds it, a private
    /// temporary cache is used instead and [`Cache::note`] says so.
    pub fn open(root: &Path, repo: &RepoId) -> Result<Self> {
        private_dir(root, true)?;
        let dir = root.join(repo.to_hex());
        private_dir(&dir, false)?;
        let _ = write_private(
            &root.join("CACHEDIR.TAG"),
            b"Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by cairn.\n",
        );
        // RocksDB creates its directory with the process umask: create it 0700 first.
        private_dir(&dir.join("db"), false)?;
        // cairn's own lock first: RocksDB rotates its info log before it takes its lock, so two
        // processes opening one database at once can fail on each other's log files.
        let lock = lock_dir(&dir)?;
        let opened = match lock {
            Some(_) => Self::open_at(&dir.join("db")),
            None => Err("lock held by another cairn process".to_string()),
        };
        match opened {
            Ok(store) => Ok(Cache { store, _lock: lock, dir, temporary: false, note: None }),
            Err(msg) if msg.to_lowercase().contains("lock") => {
                let mut c = Self::temporary(Some(&root.join("tmp")))?;
                c.note = Some(format!(
                    "the cache at {} is in use by another cairn process; running with a private temporary cache",
                    dir.display()
                ));
                Ok(c)
            }
            Err(msg) => Err(Error::Cache { path: dir, message: msg }),
        }
    }

    /// A cache that lives only as long as this value (for `--no-cache` and lock contention), in
    /// a new directory of unpredictable name, created 0700, under `parent` (default: the
    /// system's temporary directory).
    pub fn temporary(parent: Option<&Path>) -> Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let parent = match parent {
            Some(p) => {
                private_dir(p, false)?;
                p.to_path_buf()
            }
            None => std::env::temp_dir(),
        };
        let dir =
            parent.join(format!("cairn-tmp-{}-{}", std::process::id(), hex::encode(&crate::crypto::random_32()[..6])));
        // Not `create_dir_all`: a directory someone else created under this name is not used.
        std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(|e| Error::io(&dir, e))?;
        let store = Self::open_at(&dir.join("db")).map_err(|m| Error::Cache { path: dir.clone(), message: m })?;
        Ok(Cache { store, _lock: None, dir, temporary: true, note: None })
    }

    /// [`Cache::temporary`] with a note that there is no cache directory to use.
    pub fn without_root() -> Result<Self> {
        let mut c = Self::temporary(None)?;
        c.note = Some(
            "no cache directory: HOME and XDG_CACHE_HOME are unset and this user has no home directory; \
             running without a cache (and without the repository pin); give one with --cache-dir"
                .into(),
        );
        Ok(c)
    }

    #[cfg(feature = "cache")]
    fn open_at(path: &Path) -> std::result::Result<Store, String> {
        let mut o = rocksdb::Options::default();
        o.create_if_missing(true);
        o.set_max_open_files(128);
        o.set_keep_log_file_num(2);
        o.set_max_log_file_size(1 << 20);
        // Small memtables: the cache is a few bytes per blob and file, and every megabyte here
        // counts against the backup's memory budget.
        o.set_write_buffer_size(4 << 20);
        // A small block cache too: RocksDB's default (32 MiB) filled up with the data blocks that
        // a backup's lookups of new blob ids read, a third of a first backup's peak heap at a
        // million small files (benches/README.md, "First backup: memory and CPU"). The ids are
        // random, so a larger cache rarely serves a lookup anyway.
        let mut table = rocksdb::BlockBasedOptions::default();
        table.set_block_cache(&rocksdb::Cache::new_lru_cache(8 << 20));
        o.set_block_based_table_factory(&table);
        rocksdb::DB::open(&o, path).map(Store::Rocks).map_err(|e| e.to_string())
    }

    #[cfg(not(feature = "cache"))]
    fn open_at(_path: &Path) -> std::result::Result<Store, String> {
        Ok(Store::Mem(Default::default()))
    }

    /// A message worth showing the user about how the cache was opened.
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// The directory of this cache.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn err(&self, e: impl ToString) -> Error {
        Error::Cache { path: self.dir.clone(), message: e.to_string() }
    }

    pub(super) fn get(&self, k: &[u8]) -> Result<Option<Vec<u8>>> {
        match &self.store {
            #[cfg(feature = "cache")]
            Store::Rocks(db) => db.get(k).map_err(|e| self.err(e)),
            Store::Mem(m) => Ok(m.read().unwrap_or_else(|p| p.into_inner()).get(k).cloned()),
        }
    }

    pub(super) fn put_batch(&self, items: Vec<(Vec<u8>, Vec<u8>)>) -> Result<()> {
        match &self.store {
            #[cfg(feature = "cache")]
            Store::Rocks(db) => {
                let mut b = rocksdb::WriteBatch::default();
                for (k, v) in items {
                    b.put(k, v);
                }
                db.write(b).map_err(|e| self.err(e))
            }
            Store::Mem(m) => {
                let mut m = m.write().unwrap_or_else(|p| p.into_inner());
                for (k, v) in items {
                    m.insert(k, v);
                }
                Ok(())
            }
        }
    }

    pub(super) fn scan(&self, prefix: &[u8], mut f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
        match &self.store {
            #[cfg(feature = "cache")]
            Store::Rocks(db) => {
                let it = db.iterator(rocksdb::IteratorMode::From(prefix, rocksdb::Direction::Forward));
                for item in it {
                    let (k, v) = item.map_err(|e| self.err(e))?;
                    if !k.starts_with(prefix) || !f(&k, &v) {
                        break;
                    }
                }
                Ok(())
            }
            Store::Mem(m) => {
                let m = m.read().unwrap_or_else(|p| p.into_inner());
                for (k, v) in m.range(prefix.to_vec()..) {
                    if !k.starts_with(prefix) || !f(k, v) {
                        break;
                    }
                }
                Ok(())
            }
        }
    }

    pub(super) fn delete_prefix(&self, prefix: &[u8]) -> Result<()> {
        let mut keys = Vec::new();
        self.scan(prefix, |k, _| {
            keys.push(k.to_vec());
            true
        })?;
        match &self.store {
            #[cfg(feature = "cache")]
            Store::Rocks(db) => {
                let mut b = rocksdb::WriteBatch::default();
                for k in keys {
                    b.delete(k);
                }
                db.write(b).map_err(|e| self.err(e))
            }
            Store::Mem(m) => {
                let mut m = m.write().unwrap_or_else(|p| p.into_inner());
                for k in keys {
                    m.remove(&k);
                }
                Ok(())
            }
        }
    }

    /// Records the packs of one index file and marks the file ingested, atomically.
    pub fn ingest_index(&self, id: &IndexId, packs: &[IndexPack]) -> Result<()> {
        let mut items = Vec::new();
        for p in packs {
            for b in &p.blobs {
                let Some(session) = p.sessions.get(b.session as usize) else {
                    continue;
                };
                let mut k = blob_prefix(b.kind, &b.id);
                k.extend_from_slice(&p.id.0);
                let v = LocVal { offset: b.offset, length: b.length, plain_length: b.plain_length, session: *session };
                items.push((k, postcard::to_allocvec(&v).expect("encodes")));
            }
        }
        let mut k = vec![INDEX];
        k.extend_from_slice(&id.0);
        items.push((k, Vec::new()));
        self.put_batch(items)
    }

    /// Records packs this process just stored (before their index file exists).
    pub fn add_packs(&self, packs: &[IndexPack]) -> Result<()> {
        let mut items = Vec::new();
        for p in packs {
            for b in &p.blobs {
                let mut k = blob_prefix(b.kind, &b.id);
                k.extend_from_slice(&p.id.0);
                let v = LocVal {
                    offset: b.offset,
                    length: b.length,
                    plain_length: b.plain_length,
                    session: p.sessions[b.session as usize],
                };
                items.push((k, postcard::to_allocvec(&v).expect("encodes")));
            }
        }
        self.put_batch(items)
    }

    /// The index files already ingested.
    pub fn ingested(&self) -> Result<Vec<IndexId>> {
        let mut v = Vec::new();
        self.scan(&[INDEX], |k, _| {
            if let Ok(b) = <[u8; 32]>::try_from(&k[1..]) {
                v.push(IndexId(b));
            }
            true
        })?;
        Ok(v)
    }

    /// Forgets every blob location and ingested index (before a rebuild), and with them the
    /// backup sessions whose blobs the blob map was known to hold (`filescache`): any removal from
    /// the blob map must forget those sessions.
    pub fn clear_index(&self) -> Result<()> {
        self.forget_sessions()?;
        self.delete_prefix(&[BLOB])?;
        self.delete_prefix(&[INDEX])
    }

    /// Every known location of a blob.
    pub fn lookup(&self, kind: BlobKind, id: &BlobId) -> Result<Vec<Location>> {
        let prefix = blob_prefix(kind, id);
        let mut out = Vec::new();
        let mut bad = false;
        self.scan(&prefix, |k, v| {
            match (<[u8; 32]>::try_from(&k[34..]), postcard::from_bytes::<LocVal>(v)) {
                (Ok(pack), Ok(l)) => out.push(Location {
                    kind,
                    pack: PackId(pack),
                    offset: l.offset,
                    length: l.length,
                    plain_length: l.plain_length,
                    session: l.session,
                }),
                _ => bad = true,
            }
            true
        })?;
        if bad {
            return Err(self.err("undecodable entry; delete the cache directory"));
        }
        Ok(out)
    }

    /// The files cache entry of an absolute path.
    pub fn file_get(&self, path: &[u8]) -> Result<Option<FileEntry>> {
        let mut k = vec![FILE];
        k.extend_from_slice(path);
        Ok(self.get(&k)?.and_then(|v| postcard::from_bytes(&v).ok()))
    }

    /// Stores files cache entries.
    pub fn file_put_many(&self, entries: Vec<(Vec<u8>, FileEntry)>) -> Result<()> {
        let items = entries
            .into_iter()
            .map(|(p, e)| {
                let mut k = vec![FILE];
                k.extend_from_slice(&p);
                (k, postcard::to_allocvec(&e).expect("encodes"))
            })
            .collect();
        self.put_batch(items)
    }
}

/// Takes cairn's exclusive lock on the cache directory `dir` (the file `lock`, 0600, not followed
/// if it is a symlink) without waiting: `None` when another process holds it.
fn lock_dir(dir: &Path) -> Result<Option<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("lock");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(f)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(Error::io(&path, e.into())),
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        if self.temporary {
            // Close the database before removing its files.
            self.store = Store::Mem(Default::default());
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The default cache root: `$XDG_CACHE_HOME/cairn`, else `$HOME/.cache/cairn`, else
/// `.cache/cairn` in the home directory the user database gives the effective user, when that
/// directory exists. `None` when there is none: cairn then runs without a cache rather than in a
/// directory shared with other users.
pub fn default_root() -> Option<PathBuf> {
    root_from(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"), || {
        // SAFETY: a plain getter.
        let home = crate::repository::identity::home_dir(unsafe { libc::geteuid() })?;
        Some(PathBuf::from(home)).filter(|h| h.is_dir())
    })
}

/// [`default_root`] from the two variables and the user database's home directory.
fn root_from(
    xdg: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
    user_home: impl FnOnce() -> Option<PathBuf>,
) -> Option<PathBuf> {
    if let Some(x) = xdg.filter(|x| !x.is_empty()) {
        return Some(PathBuf::from(x).join("cairn"));
    }
    let home = home.filter(|h| !h.is_empty()).map(PathBuf::from).or_else(user_home)?;
    Some(home.join(".cache").join("cairn"))
}

/// Creates `dir` (with any missing parents) mode 0700 when it is missing, then checks that only
/// this user can change it: a directory, owned by the effective user, not writable by group or
/// others; else the open is refused, naming the path and `--cache-dir`. A directory an older
/// cairn made readable by others is narrowed to 0700. `follow` allows a symlink (the root the
/// user named; the directory it points to is checked); the components cairn creates below the
/// root must be real directories.
pub(crate) fn private_dir(dir: &Path, follow: bool) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| Error::io(dir, e))?;
    let m = if follow { std::fs::metadata(dir) } else { std::fs::symlink_metadata(dir) };
    let m = m.map_err(|e| Error::io(dir, e))?;
    // SAFETY: a plain getter.
    let euid = unsafe { libc::geteuid() };
    let problem = if !m.is_dir() {
        Some("is not a directory".to_string())
    } else if m.uid() != euid {
        Some(format!("is owned by uid {}, not by this user (uid {euid})", m.uid()))
    } else if m.mode() & 0o022 != 0 {
        Some(format!("is writable by group or others (mode {:04o})", m.mode() & 0o7777))
    } else {
        None
    };
    if let Some(p) = problem {
        return Err(Error::refused(format!(
            "cache directory {} {p}: another user could read or replace the cache; fix it or choose another \
             with --cache-dir",
            dir.display()
        )));
    }
    if m.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

/// Writes `data` to `path` as a file only this user can read (0600, also when it existed),
/// never through a symlink.
pub fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn the_default_root_never_falls_back_to_a_shared_directory() {
        let some = |s: &str| Some(OsString::from(s));
        let none = || None;
        assert_eq!(root_from(some("/x"), some("/h"), none), Some(PathBuf::from("/x/cairn")));
        assert_eq!(root_from(some(""), some("/h"), none), Some(PathBuf::from("/h/.cache/cairn")));
        assert_eq!(root_from(None, None, || Some("/pw".into())), Some(PathBuf::from("/pw/.cache/cairn")));
        assert_eq!(root_from(None, some(""), none), None);
        assert_eq!(root_from(None, None, none), None);
    }

    #[test]
    fn cache_directories_are_private_and_foreign_ones_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
        let root = tmp.path().join("a/b");
        private_dir(&root, true).unwrap();
        assert_eq!((mode(&tmp.path().join("a")), mode(&root)), (0o700, 0o700));
        // Made readable by an older cairn: narrowed.
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&root, true).unwrap();
        assert_eq!(mode(&root), 0o700);
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = private_dir(&root, true).unwrap_err().to_string();
        assert!(e.contains(&root.display().to_string()) && e.contains("--cache-dir"), "{e}");
        // A symlink where cairn creates a component is refused.
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink(&root, tmp.path().join("link")).unwrap();
        assert!(private_dir(&tmp.path().join("link"), false).is_err());
        assert!(private_dir(&tmp.path().join("link"), true).is_ok());
        let f = tmp.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        write_private(&f, b"y").unwrap();
        assert_eq!((mode(&f), std::fs::read(&f).unwrap()), (0o600, b"y".to_vec()));
    }

    /// A second process (here a second open in this one: `flock` locks are per open file) finds
    /// the cache locked and runs on a private one without touching the database directory, where
    /// RocksDB would rotate its info log before finding its own lock taken (two processes doing
    /// that at once failed on each other's `LOG.old` files).
    #[cfg(feature = "cache")]
    #[test]
    fn a_locked_cache_is_left_alone_and_a_private_one_used() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = RepoId([7; 32]);
        let listing = |d: &Path| {
            let mut v: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name()).collect();
            v.sort();
            v
        };
        let first = Cache::open(tmp.path(), &repo).unwrap();
        assert!(first.note().is_none());
        let db = tmp.path().join(repo.to_hex()).join("db");
        let before = listing(&db);
        let second = Cache::open(tmp.path(), &repo).unwrap();
        assert!(second.note().is_some_and(|n| n.contains("in use by another cairn process")));
        assert_eq!(listing(&db), before, "the second open touched the database directory");
        drop((first, second));
        assert!(Cache::open(tmp.path(), &repo).unwrap().note().is_none(), "the lock is released on drop");
        // A `lock` planted as a symlink is not followed: the open fails and the target is untouched.
        let other = tmp.path().join("other");
        let dir = other.join(repo.to_hex());
        std::fs::create_dir_all(&dir).unwrap();
        let target = tmp.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        std::os::unix::fs::symlink(&target, dir.join("lock")).unwrap();
        assert!(Cache::open(&other, &repo).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    }
}
