//! The local cache: blob id → locations, the set of index files ingested, and the
//! files cache. Derived state only: deleting it is always safe. One RocksDB per repository id; a
//! second process that finds it locked runs on a private temporary database instead of failing.
//! The cache names every backed-up path: its directories are created 0700 and its own files
//! 0600, and a directory not owned by this user or writable by others is refused (README
//! "Security model").

use crate::error::{Error, Result};
use crate::id::{BlobId, BlobKind, PackId, RepoId};
use crate::index::IndexPack;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub(crate) use super::cachedir::private_dir;
pub use super::cachedir::{default_root, write_private};

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
    /// Where its plaintext starts in the body of the bundle stored at `offset` (format-spec §5.5);
    /// `None` when the blob is stored alone.
    pub inner: Option<u32>,
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
            inner: b.inner,
        })
    }
}

/// A location as the blob map stores it (postcard), under the key of its blob and pack; a bundle
/// member's `inner` follows as one more postcard `u32` (absent for a blob stored alone, so the
/// entries of caches written before bundles still decode).
#[derive(Serialize, Deserialize)]
pub(super) struct LocVal {
    pub(super) offset: u64,
    pub(super) length: u32,
    pub(super) plain_length: u32,
    pub(super) session: [u8; 32],
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
    #[serde(with = "crate::tree::xattr_pairs")]
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// The file's bytes when its content is inline in its tree node (format-spec §7.3); its
    /// `content` is then empty.
    #[serde(with = "serde_bytes")]
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
    /// Set while [`Cache::bulk`] runs: batches skip the write-ahead log.
    bulk: std::sync::atomic::AtomicBool,
}

/// Index files from which a writer of the blob map uses [`Cache::bulk`] (a sync, a prune's
/// sweep): about half a million blobs and more.
pub const BULK_FILES: usize = 16;

/// Key prefix of the blob map (`blobmap`).
pub(super) const BLOB: u8 = b'b';
const FILE: u8 = b'f';
/// Length of the key prefix shared by every location of one blob: `b`, kind, id.
pub(super) const BLOB_PREFIX: usize = 34;

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
            Ok(store) => Ok(Cache { store, _lock: lock, dir, temporary: false, note: None, bulk: Default::default() }),
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
        Ok(Cache { store, _lock: None, dir, temporary: true, note: None, bulk: Default::default() })
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
        // A blob lookup (`b`, kind, id: the first BLOB_PREFIX bytes of its keys) seeks only the
        // files whose filter admits that prefix, not every file of every level: at millions of
        // blobs a lookup otherwise reads a block from each (benches/README.md "Scale"). The
        // filter is ~10 bits a key, held in memory. Files written before this option have no
        // filter and are read as before.
        o.set_prefix_extractor(rocksdb::SliceTransform::create_fixed_prefix(BLOB_PREFIX));
        let mut t = rocksdb::BlockBasedOptions::default();
        t.set_bloom_filter(10.0, false);
        t.set_whole_key_filtering(false);
        // A small block cache too: RocksDB's default (32 MiB) filled up with the data blocks that
        // a backup's lookups of new blob ids read, a third of a first backup's peak heap at a
        // million small files (benches/README.md, "First backup: memory and CPU"). The ids are
        // random, so a larger cache rarely serves a lookup anyway.
        t.set_block_cache(&rocksdb::Cache::new_lru_cache(8 << 20));
        o.set_block_based_table_factory(&t);
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

    pub(super) fn err(&self, e: impl ToString) -> Error {
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

    /// Writes what `fill` puts, as one atomic batch, without collecting it first: the blob map
    /// of an index file (~100 k entries) is built straight into the database's batch, with one
    /// key and one value buffer reused, not two allocations an entry held until the write.
    /// `bytes` is about what it will put (keys and values), so the batch is allocated once
    /// rather than grown by doubling.
    pub(super) fn put_with(&self, bytes: usize, fill: impl FnOnce(&mut dyn FnMut(&[u8], &[u8]))) -> Result<()> {
        match &self.store {
            #[cfg(feature = "cache")]
            Store::Rocks(db) => {
                // Each record: a type byte and two length varints beside the key and value.
                let mut b = rocksdb::WriteBatch::with_capacity_bytes(bytes + bytes / 16 + 64);
                fill(&mut |k, v| b.put(k, v));
                let mut o = rocksdb::WriteOptions::default();
                o.disable_wal(self.bulk.load(std::sync::atomic::Ordering::SeqCst));
                db.write_opt(b, &o).map_err(|e| self.err(e))
            }
            Store::Mem(m) => {
                let mut m = m.write().unwrap_or_else(|p| p.into_inner());
                fill(&mut |k, v| {
                    m.insert(k.to_vec(), v.to_vec());
                });
                Ok(())
            }
        }
    }

    pub(super) fn scan(&self, prefix: &[u8], mut f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
        match &self.store {
            #[cfg(feature = "cache")]
            Store::Rocks(db) => {
                let mut ro = rocksdb::ReadOptions::default();
                if prefix.len() == BLOB_PREFIX && prefix[0] == BLOB {
                    // One blob's locations: only files whose filter admits the prefix are read.
                    ro.set_prefix_same_as_start(true);
                } else {
                    // Any other range crosses prefixes: the filters must not be consulted.
                    ro.set_total_order_seek(true);
                }
                let mut it = db.raw_iterator_opt(ro);
                it.seek(prefix);
                while let (Some(k), Some(v)) = (it.key(), it.value()) {
                    if !k.starts_with(prefix) || !f(k, v) {
                        break;
                    }
                    it.next();
                }
                it.status().map_err(|e| self.err(e))
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

    /// Runs `f`, a bulk write of the blob map (a sync of many index files: a new cache, or every
    /// client's first sync after a prune replaced the index files; a sweep writing the files that
    /// replace them), with RocksDB's automatic compactions off, then compacts the blob map once.
    /// Millions of random keys written through small memtables otherwise set off compaction after
    /// compaction, each merging the new files into everything written before: at 10 million blobs
    /// two thirds of a rebuild's CPU (benches/README.md, "Session 16"). Interrupted, the files are
    /// compacted by the next open.
    ///
    /// Its batches skip the write-ahead log, a third of what a rebuild wrote: each batch (an index
    /// file's entries and its mark) lies whole in one memtable, and memtables reach disk whole, in
    /// order, so a crash keeps the files ingested up to some point and forgets the rest, marks
    /// with their entries (the next sync ingests those again). The memtable is written out before
    /// this returns, so no later logged write can outlive them.
    ///
    /// `files` is how many index files `f` writes the entries of: below [`BULK_FILES`], `f` just runs.
    pub fn bulk<T>(&self, files: usize, f: impl FnOnce() -> Result<T>) -> Result<T> {
        #[cfg(feature = "cache")]
        if let (Store::Rocks(db), true) = (&self.store, files >= BULK_FILES) {
            use std::sync::atomic::Ordering::SeqCst;
            let auto = |on: &str| db.set_options(&[("disable_auto_compactions", on)]).map_err(|e| self.err(e));
            auto("true")?;
            self.bulk.store(true, SeqCst);
            let out = f();
            self.bulk.store(false, SeqCst);
            db.flush().map_err(|e| self.err(e))?;
            auto("false")?;
            let out = out?;
            db.compact_range(Some(&[BLOB][..]), Some(&[BLOB + 1][..]));
            return Ok(out);
        }
        f()
    }

    /// Deletes every key that starts with `prefix`. In RocksDB one range deletion: the keys are
    /// not read, so forgetting a blob map of 10 million entries (every client's first sync after a
    /// prune replaced the index files) holds nothing (it collected the keys and wrote one delete
    /// of each in one batch: 2.4 GB at 10 million, benches/README.md "Session 16").
    pub(super) fn delete_prefix(&self, prefix: &[u8]) -> Result<()> {
        #[cfg(feature = "cache")]
        if let (Store::Rocks(db), Some(end)) = (&self.store, prefix_end(prefix)) {
            let mut b = rocksdb::WriteBatch::default();
            b.delete_range(prefix, &end[..]);
            return db.write(b).map_err(|e| self.err(e));
        }
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

    /// Writes the memtable out to a file (tests: lookups across files and filters).
    #[cfg(all(test, feature = "cache"))]
    pub(super) fn flush(&self) {
        if let Store::Rocks(db) = &self.store {
            db.flush().unwrap();
        }
    }

    /// A raw iterator over the blob map that stays within one blob's prefix (for
    /// [`Cache::lookups`]); `None` without RocksDB.
    #[cfg(feature = "cache")]
    pub(super) fn blob_iterator(&self) -> Option<rocksdb::DBRawIterator<'_>> {
        match &self.store {
            Store::Rocks(db) => {
                let mut ro = rocksdb::ReadOptions::default();
                ro.set_prefix_same_as_start(true);
                Some(db.raw_iterator_opt(ro))
            }
            Store::Mem(_) => None,
        }
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

/// The first key after every key that starts with `prefix`; `None` when there is none (the prefix
/// is empty or all `0xff`).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn prefix_end_is_the_first_key_after_the_prefix() {
        assert_eq!(prefix_end(b"b"), Some(b"c".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff]), None);
        assert_eq!(prefix_end(&[]), None);
    }

    /// A prefix deleted (in RocksDB by one range deletion, flushed or not) takes every key under
    /// it, and nothing either side; the database stays writable under it.
    #[test]
    fn delete_prefix_takes_exactly_the_keys_under_it() {
        let tmp = tempfile::tempdir().unwrap();
        for flushed in [false, true] {
            let c = Cache::open(&tmp.path().join(format!("{flushed}")), &RepoId([3; 32])).unwrap();
            let keys: [&[u8]; 6] = [b"a\xff\xff", b"b", b"b\x00", b"b\xff\xff\xff", b"c", b"ba"];
            c.put_batch(keys.iter().map(|k| (k.to_vec(), b"v".to_vec())).collect()).unwrap();
            #[cfg(feature = "cache")]
            if flushed {
                c.flush();
            }
            c.delete_prefix(b"b").unwrap();
            let left: Vec<&[u8]> = keys.iter().copied().filter(|k| c.get(k).unwrap().is_some()).collect();
            assert_eq!(left, [&b"a\xff\xff"[..], b"c"], "flushed: {flushed}");
            c.put_batch(vec![(b"bb".to_vec(), b"w".to_vec())]).unwrap();
            assert_eq!(c.get(b"bb").unwrap(), Some(b"w".to_vec()), "a key written after the deletion is kept");
        }
    }
}
