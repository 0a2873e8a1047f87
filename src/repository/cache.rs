//! The local cache: blob id → locations, the set of index files ingested, and the
//! files cache. Derived state only: deleting it is always safe. One RocksDB per repository id; a
//! second process that finds it locked runs on a private temporary database instead of failing.

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
}

enum Store {
    #[cfg(feature = "cache")]
    Rocks(rocksdb::DB),
    Mem(std::sync::RwLock<std::collections::BTreeMap<Vec<u8>, Vec<u8>>>),
}

/// The cache of one repository.
pub struct Cache {
    store: Store,
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
        let dir = root.join(repo.to_hex());
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let _ = std::fs::write(
            root.join("CACHEDIR.TAG"),
            "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by cairn.\n",
        );
        match Self::open_at(&dir.join("db")) {
            Ok(store) => Ok(Cache { store, dir, temporary: false, note: None }),
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

    /// A cache that lives only as long as this value (for `--no-cache` and lock contention).
    pub fn temporary(parent: Option<&Path>) -> Result<Self> {
        let parent = parent.map(Path::to_path_buf).unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        let dir =
            parent.join(format!("cairn-tmp-{}-{}", std::process::id(), hex::encode(&crate::crypto::random_32()[..6])));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let store = Self::open_at(&dir.join("db")).map_err(|m| Error::Cache { path: dir.clone(), message: m })?;
        Ok(Cache { store, dir, temporary: true, note: None })
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

    fn get(&self, k: &[u8]) -> Result<Option<Vec<u8>>> {
        match &self.store {
            #[cfg(feature = "cache")]
            Store::Rocks(db) => db.get(k).map_err(|e| self.err(e)),
            Store::Mem(m) => Ok(m.read().unwrap_or_else(|p| p.into_inner()).get(k).cloned()),
        }
    }

    fn put_batch(&self, items: Vec<(Vec<u8>, Vec<u8>)>) -> Result<()> {
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

    fn scan(&self, prefix: &[u8], mut f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
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

    fn delete_prefix(&self, prefix: &[u8]) -> Result<()> {
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

    /// Forgets every blob location and ingested index (before a rebuild).
    pub fn clear_index(&self) -> Result<()> {
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

impl Drop for Cache {
    fn drop(&mut self) {
        if self.temporary {
            // Close the database before removing its files.
            self.store = Store::Mem(Default::default());
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The default cache root: `$XDG_CACHE_HOME/cairn` or `~/.cache/cairn`.
pub fn default_root() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("cairn");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(h).join(".cache").join("cairn");
    }
    std::env::temp_dir().join("cairn-cache")
}
