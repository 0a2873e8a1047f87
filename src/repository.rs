//! The repository: opens keys and config, keeps the local cache in step with the index files,
//! reads blobs, trees and snapshots, and manages key files (format-spec §1, §4, §9).

use crate::backend::DynBackend;
use crate::blob;
use crate::cache::{Cache, Location};
use crate::chunker::{Chunker, ChunkerParams};
use crate::compress::Compression;
use crate::config::{self, Config, ConfigV1, FORMAT_VERSION, WRITER_VERSION};
use crate::crypto::{self, KdfParams, MasterKeys, Session};
use crate::error::{Error, Result};
use crate::id::{pack_path, BlobId, BlobKind, IndexId, KeyId, PackId, SnapshotId};
use crate::index;
use crate::keyfile::{self, KeyKind};
use crate::lease;
use crate::snapshot::{self, Snapshot};
use crate::tree::{Content, Node, Time, TreeBlob};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;

/// How to open a repository's local state.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Cache root; default [`crate::cache::default_root`].
    pub cache_root: Option<PathBuf>,
    /// Use a private temporary cache.
    pub no_cache: bool,
}

/// Settings for a new repository.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// Key derivation parameters of the first key file.
    pub kdf: KdfParams,
    /// Chunker parameters.
    pub chunker: ChunkerParams,
    /// Target pack size.
    pub pack_size: u32,
    /// Default compression level (0 = off).
    pub compression_level: i32,
    /// Reuse another repository's `id_key` and `chunk_key` (so ids and cut points agree).
    pub chunker_keys_from: Option<MasterKeys>,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            kdf: KdfParams::MINIMUM,
            chunker: ChunkerParams::default(),
            pack_size: config::DEFAULT_PACK_SIZE,
            compression_level: 3,
            chunker_keys_from: None,
        }
    }
}

/// A key file as `key list` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KeyInfo {
    /// Its id.
    pub id: KeyId,
    /// Full or write-only.
    pub kind: KeyKind,
    /// When it was made.
    pub created: Time,
    /// Where.
    pub host: String,
    /// By whom.
    pub user: String,
    /// The key this process opened the repository with.
    pub current: bool,
}

/// An open repository.
pub struct Repository {
    backend: DynBackend,
    keys: MasterKeys,
    key_id: KeyId,
    config: Config,
    config_n: u64,
    cache: std::sync::Arc<Cache>,
    chunker: Chunker,
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    /// Set once the cache has been brought up to date with the index files in this process.
    index_synced: std::sync::atomic::AtomicBool,
    /// Serializes the first sync, so no lookup runs before it has finished.
    sync_lock: Mutex<()>,
}

/// Where the client pin of the repository at `location` lives under the cache root.
fn pin_path(root: &std::path::Path, location: &str) -> PathBuf {
    let name = blake3::hash(location.as_bytes()).to_hex().to_string();
    root.join("pins").join(&name[..32])
}

/// The host name of this machine.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for 256 bytes; gethostname NUL-terminates or truncates.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
    if r != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The user name of this process.
pub fn username() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| crate::fsmeta::user_name(unsafe { libc::geteuid() }).unwrap_or_default())
}

fn id_from_name<T>(path: &str, prefix: &str, make: fn([u8; 32]) -> T) -> Option<T> {
    crate::id::parse_hex32(path.strip_prefix(prefix)?).map(make)
}

impl Repository {
    /// Creates a repository on an empty backend and opens it.
    pub fn init(backend: DynBackend, password: &[u8], init: &InitOptions, opts: &OpenOptions) -> Result<Repository> {
        let loc = backend.location();
        if !backend.list("config/")?.is_empty() || !backend.list("keys/")?.is_empty() {
            return Err(Error::Invalid(format!("{loc}: a repository already exists here")));
        }
        init.chunker.validate().map_err(Error::Invalid)?;
        backend.create_root()?;
        let mut keys = MasterKeys::generate();
        if let Some(src) = &init.chunker_keys_from {
            keys.id_key = src.id_key.clone();
            keys.chunk_key = src.chunk_key.clone();
        }
        let cfg = Config::V1(ConfigV1 {
            format_version: FORMAT_VERSION,
            min_writer_version: WRITER_VERSION,
            repo_id: keys.repo_id,
            chunker: init.chunker,
            pack_size: init.pack_size,
            compression_level: init.compression_level,
            repo_public: keys.repo_public,
            previous: None,
            created: Time::now(),
        });
        // Key file first, config last: a repository without a config is not one yet.
        let key_id = KeyId::random();
        let kf = keyfile::create(&keys, &key_id, password, init.kdf, &hostname(), &username())?;
        backend.write_new(&format!("keys/{key_id}"), &kf)?;
        backend.write_new(&config::path(1), &config::encode(&keys, 1, &cfg))?;
        // A new repository replaces whatever this client pinned at the location before (one that
        // was deleted on purpose): pin the new one instead of refusing it.
        if !opts.no_cache {
            let root = opts.cache_root.clone().unwrap_or_else(crate::cache::default_root);
            let _ = std::fs::remove_file(pin_path(&root, &backend.location()));
        }
        Self::finish_open(backend, keys, key_id, opts)
    }

    /// Opens a repository with a password.
    pub fn open(backend: DynBackend, password: &[u8], opts: &OpenOptions) -> Result<Repository> {
        let loc = backend.location();
        let configs = backend.list("config/")?;
        let key_objs = backend.list("keys/")?;
        if configs.is_empty() {
            if key_objs.is_empty() {
                return Err(Error::RepoNotFound(loc));
            }
            return Err(Error::RepoInvalid { location: loc, reason: "no config object".into() });
        }
        if key_objs.is_empty() {
            return Err(Error::RepoInvalid { location: loc, reason: "no key files".into() });
        }
        for o in &key_objs {
            let Some(id) = id_from_name(&o.path, "keys/", KeyId) else { continue };
            let bytes = backend.read(&o.path)?;
            let kf = match keyfile::decode(&bytes) {
                Ok(k) => k,
                Err(e) => {
                    tracing::warn!("key {id}: {e}");
                    continue;
                }
            };
            // A key file that cannot even be tried (hostile KDF parameters, bad material) must not
            // stop the others from opening: anyone who can write `keys/` could plant one.
            match keyfile::open(&kf, &id, password) {
                Ok(Some(keys)) => return Self::finish_open(backend, keys, id, opts),
                Ok(None) => {}
                Err(e) => tracing::warn!("key {id}: {e}; skipped"),
            }
        }
        Err(Error::WrongPassword)
    }

    /// Opens a repository with key material already at hand (tests; write-only keys).
    pub fn open_with_keys(
        backend: DynBackend,
        keys: MasterKeys,
        key_id: KeyId,
        opts: &OpenOptions,
    ) -> Result<Repository> {
        Self::finish_open(backend, keys, key_id, opts)
    }

    fn finish_open(backend: DynBackend, keys: MasterKeys, key_id: KeyId, opts: &OpenOptions) -> Result<Repository> {
        let loc = backend.location();
        let mut numbered: Vec<(u64, String)> = backend
            .list("config/")?
            .into_iter()
            .filter_map(|o| config::parse_path(&o.path).map(|n| (n, o.path)))
            .collect();
        numbered.sort();
        let mut chosen = None;
        let mut hashes: HashMap<u64, [u8; 32]> = HashMap::new();
        let mut decoded = Vec::new();
        // Why each config object was passed over, for the error when none rules.
        let mut problems: Vec<String> = Vec::new();
        for (n, p) in &numbered {
            let bytes = backend.read(p)?;
            hashes.insert(*n, *blake3::hash(&bytes).as_bytes());
            match config::decode(&keys, *n, &bytes) {
                Ok(c) => decoded.push((*n, c)),
                Err(e) => {
                    tracing::warn!("config {n}: {e}");
                    problems.push(format!("{p}: {e}"));
                }
            }
        }
        for (n, c) in decoded.into_iter().rev() {
            let chained = match c.v1().previous {
                None => n == 1,
                // `config/0000000000` has no predecessor: never chained (and no underflow).
                Some(h) => n.checked_sub(1).and_then(|p| hashes.get(&p)) == Some(&h),
            };
            if chained {
                chosen = Some((n, c));
                break;
            }
            tracing::warn!("config {n}: does not chain to config {}", n.saturating_sub(1));
            problems.push(format!("{}: does not chain to config {}", config::path(n), n.saturating_sub(1)));
        }
        let Some((config_n, config)) = chosen else {
            let why = if problems.is_empty() { String::new() } else { format!(" ({})", problems.join("; ")) };
            return Err(Error::RepoInvalid {
                location: loc,
                reason: format!("no config object verifies with this key{why}"),
            });
        };
        if config.v1().format_version != FORMAT_VERSION {
            return Err(Error::RepoInvalid {
                location: loc,
                reason: format!("format version {} is not supported by this cairn", config.v1().format_version),
            });
        }
        let chunker = Chunker::new(config.v1().chunker, &keys.chunk_key)
            .map_err(|e| Error::RepoInvalid { location: loc.clone(), reason: e })?;
        let root = opts.cache_root.clone().unwrap_or_else(crate::cache::default_root);
        let cache = if opts.no_cache { Cache::temporary(None)? } else { Cache::open(&root, &keys.repo_id)? };
        let repo = Repository {
            backend,
            keys,
            key_id,
            config,
            config_n,
            cache: std::sync::Arc::new(cache),
            chunker,
            sessions: Mutex::new(HashMap::new()),
            index_synced: std::sync::atomic::AtomicBool::new(false),
            sync_lock: Mutex::new(()),
        };
        if !opts.no_cache {
            repo.check_pin(&root)?;
        }
        Ok(repo)
    }

    /// Client-side pinning (DESIGN §2): the repository at this location must keep its id and
    /// keys, and its config chain must not go backwards.
    fn check_pin(&self, root: &std::path::Path) -> Result<()> {
        let path = pin_path(root, &self.backend.location());
        let dir = path.parent().map(|p| p.to_path_buf()).unwrap_or_else(|| root.join("pins"));
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let fp = hex::encode(self.keys.fingerprint());
        if let Ok(s) = std::fs::read_to_string(&path) {
            let v: serde_json::Value = serde_json::from_str(&s).unwrap_or_default();
            let pinned_id = v["repository_id"].as_str().unwrap_or_default();
            let pinned_fp = v["fingerprint"].as_str().unwrap_or_default();
            let pinned_n = v["config"].as_u64().unwrap_or(0);
            if !pinned_id.is_empty() && (pinned_id != self.keys.repo_id.to_hex() || pinned_fp != fp) {
                return Err(Error::RepoInvalid {
                    location: self.backend.location(),
                    reason: format!(
                        "this location held repository {pinned_id} before and now holds another ({}); if that is intended, remove {}",
                        self.keys.repo_id,
                        path.display()
                    ),
                });
            }
            if self.config_n < pinned_n {
                return Err(Error::RepoInvalid {
                    location: self.backend.location(),
                    reason: format!("its config went back from number {pinned_n} to {} (rolled back?)", self.config_n),
                });
            }
        }
        let _ = std::fs::create_dir_all(&dir);
        let v = serde_json::json!({
            "location": self.backend.location(),
            "repository_id": self.keys.repo_id.to_hex(),
            "fingerprint": fp,
            "config": self.config_n,
        });
        let tmp = dir.join(format!("{name}.tmp{}", std::process::id()));
        if std::fs::write(&tmp, v.to_string()).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
        Ok(())
    }

    /// The storage backend.
    pub fn backend(&self) -> &DynBackend {
        &self.backend
    }
    /// The key material.
    pub fn keys(&self) -> &MasterKeys {
        &self.keys
    }
    /// The key file this repository was opened with.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }
    /// The ruling config.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// Its number in the chain.
    pub fn config_number(&self) -> u64 {
        self.config_n
    }
    /// The local cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }
    /// The local cache, shared.
    pub fn cache_arc(&self) -> std::sync::Arc<Cache> {
        self.cache.clone()
    }
    /// The keyed chunker.
    pub fn chunker(&self) -> &Chunker {
        &self.chunker
    }
    /// The default compression of the repository.
    pub fn default_compression(&self) -> Compression {
        match self.config.v1().compression_level {
            0 => Compression::Off,
            l => Compression::Zstd(l),
        }
    }

    /// Refuses to write when the config demands a newer writer protocol.
    pub fn check_writer_version(&self) -> Result<()> {
        let required = self.config.v1().min_writer_version;
        if required > WRITER_VERSION {
            return Err(Error::WriterTooOld { required, have: WRITER_VERSION });
        }
        Ok(())
    }

    /// Brings the cache's blob map up to date with the index files in storage. An index file
    /// that vanishes between the listing and its read was superseded by prune, which writes the
    /// replacing files first (format-spec §10.6, P3): the sync lists again.
    pub fn sync_index(&self) -> Result<()> {
        for _ in 0..10 {
            if self.sync_index_once()? {
                self.index_synced.store(true, std::sync::atomic::Ordering::Release);
                return Ok(());
            }
        }
        Err(Error::Invalid(format!(
            "{}: index files kept vanishing while they were read (a prune running?); try again",
            self.backend.location()
        )))
    }

    /// One pass of [`Repository::sync_index`]; false when an index file vanished meanwhile.
    fn sync_index_once(&self) -> Result<bool> {
        let listed: Vec<IndexId> =
            self.backend.list("index/")?.into_iter().filter_map(|o| id_from_name(&o.path, "index/", IndexId)).collect();
        let listed_set: HashSet<IndexId> = listed.iter().copied().collect();
        let ingested: HashSet<IndexId> = self.cache.ingested()?.into_iter().collect();
        if ingested.iter().any(|i| !listed_set.contains(i)) {
            // An index file we relied on is gone (superseded by maintenance): rebuild.
            self.cache.clear_index()?;
            return self.ingest(&listed);
        }
        let new: Vec<IndexId> = listed.into_iter().filter(|i| !ingested.contains(i)).collect();
        self.ingest(&new)
    }

    /// Ingests index files into the cache; false when one of them vanished. A damaged index file
    /// is skipped with a warning (and tried again next time): the blobs it alone describes are
    /// then reported missing by name, and everything else stays readable. Storage and cache
    /// failures stop the sync.
    fn ingest(&self, ids: &[IndexId]) -> Result<bool> {
        let vanished = std::sync::atomic::AtomicBool::new(false);
        ids.par_iter().try_for_each(|id| match self.read_index(id) {
            Ok(f) => self.cache.ingest_index(id, f.packs()),
            Err(e @ Error::Corrupt { .. }) => {
                tracing::warn!("{e}; skipped (run `cairn check`)");
                Ok(())
            }
            Err(e) if e.is_not_found() => {
                vanished.store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }
            Err(e) => Err(e),
        })?;
        Ok(!vanished.into_inner())
    }

    /// Reads and decodes one index file.
    pub fn read_index(&self, id: &IndexId) -> Result<index::IndexFile> {
        let bytes = self.backend.read(&format!("index/{id}"))?;
        index::decode(&self.keys, id, &bytes).map_err(|e| Error::corrupt("index", id, e))
    }

    /// The names of the prune marks in storage, the packs they condemn, and whether a listed mark
    /// vanished before it could be read (a sweep finished meanwhile).
    fn read_marks(&self) -> Result<(HashSet<String>, HashSet<PackId>, bool)> {
        let mut names = HashSet::new();
        let mut out = HashSet::new();
        let mut vanished = false;
        for o in self.backend.list("prune/")? {
            if !o.path.starts_with("prune/mark-") {
                continue;
            }
            let bytes = match self.backend.read(&o.path) {
                Ok(b) => b,
                Err(e) if e.is_not_found() => {
                    vanished = true;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match lease::decode_prune_mark(&self.keys, &o.path, &bytes) {
                Ok(m) => out.extend(m.condemned().iter().map(|(_, p)| *p)),
                Err(e) => tracing::warn!("{}: {e}; ignored", o.path),
            }
            names.insert(o.path);
        }
        Ok((names, out, vanished))
    }

    /// The start of a writing session after its lease is taken (format-spec §10.3): brings the
    /// cache up to date with the index and returns the condemned set. Marks are listed before and
    /// after the index sync; if one vanished in between, a sweep finished meanwhile and may have
    /// replaced index files the sync read and deleted packs they name, so the sync runs again.
    pub fn sync_for_writing(&self) -> Result<HashSet<PackId>> {
        let (mut before, _, _) = self.read_marks()?;
        for _ in 0..10 {
            self.sync_index()?;
            let (after, condemned, vanished) = self.read_marks()?;
            if !vanished && before.is_subset(&after) {
                return Ok(condemned);
            }
            before = after;
        }
        Err(Error::Invalid(format!(
            "{}: prune marks kept vanishing while a session started (a prune looping?); try again",
            self.backend.location()
        )))
    }

    fn session(&self, public: &[u8; 32]) -> Result<Session> {
        let mut m = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = m.get(public) {
            return Ok(s.clone());
        }
        let s = Session::for_reading(&self.keys, public)?;
        m.insert(*public, s.clone());
        Ok(s)
    }

    /// Where a blob is stored. The first lookup in a process brings the cache up to date with the
    /// index files (a fresh or deleted cache, another host's new snapshot, or a prune elsewhere
    /// that replaced index files and deleted packs the cache still names): one listing of
    /// `index/`, and only new files are read.
    pub fn locate(&self, kind: BlobKind, id: &BlobId) -> Result<Vec<Location>> {
        if !self.index_synced.load(std::sync::atomic::Ordering::Acquire) {
            let _g = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
            if !self.index_synced.load(std::sync::atomic::Ordering::Acquire) {
                self.sync_index()?;
            }
        }
        self.cache.lookup(kind, id)
    }

    /// Opens a sealed blob read from `loc` and verifies its id.
    pub fn open_blob_at(&self, loc: &Location, id: &BlobId, sealed: &[u8]) -> Result<Vec<u8>> {
        let session = self.session(&loc.session)?;
        let plain = blob::open_blob(session.key(), &self.keys.repo_id, loc.kind, id, sealed, loc.plain_length as usize)
            .map_err(|e| Error::corrupt("blob", format!("{id} in pack {}", loc.pack), e))?;
        if self.keys.content_id(&plain) != *id {
            return Err(Error::corrupt("blob", format!("{id} in pack {}", loc.pack), "content does not match its id"));
        }
        Ok(plain)
    }

    /// Reads, opens and verifies one blob, trying every known location. When every location
    /// names a pack that is gone, the cache is brought up to date once (a prune elsewhere may
    /// have moved the blob) and the lookup is tried again.
    pub fn read_blob(&self, kind: BlobKind, id: &BlobId) -> Result<Vec<u8>> {
        match self.read_blob_once(kind, id) {
            Err(e) if e.is_not_found() => {
                self.sync_index()?;
                self.read_blob_once(kind, id)
            }
            r => r,
        }
    }

    fn read_blob_once(&self, kind: BlobKind, id: &BlobId) -> Result<Vec<u8>> {
        let locs = self.locate(kind, id)?;
        if locs.is_empty() {
            return Err(Error::corrupt("blob", id, format!("{kind} blob is not in any index")));
        }
        let mut last = None;
        for loc in &locs {
            let r = self
                .backend
                .read_range(&pack_path(loc.kind, &loc.pack), loc.offset, loc.length as u64)
                .and_then(|sealed| self.open_blob_at(loc, id, &sealed));
            match r {
                Ok(p) => return Ok(p),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one location"))
    }

    /// Reads a tree blob.
    pub fn read_tree_blob(&self, id: &BlobId) -> Result<TreeBlob> {
        let b = self.read_blob(BlobKind::Tree, id)?;
        TreeBlob::decode(&b).map_err(|e| Error::corrupt("tree", id, e))
    }

    /// All nodes of a directory, following continuation blobs.
    pub fn load_dir(&self, id: &BlobId) -> Result<Vec<Node>> {
        let mut out = Vec::new();
        let mut next = Some(*id);
        let mut seen = HashSet::new();
        while let Some(t) = next {
            if !seen.insert(t) {
                return Err(Error::corrupt("tree", id, "continuation loop"));
            }
            match self.read_tree_blob(&t)? {
                TreeBlob::DirV1 { nodes, next: n } => {
                    out.extend(nodes);
                    next = n;
                }
                TreeBlob::ChunkListV1 { .. } => {
                    return Err(Error::corrupt("tree", t, "a chunk list where a directory was expected"))
                }
            }
        }
        Ok(out)
    }

    /// The data blob ids of a file's content.
    pub fn content_ids(&self, content: &Content) -> Result<Vec<BlobId>> {
        match content {
            Content::Chunks(v) => Ok(v.clone()),
            Content::Indirect { lists, count } => {
                let mut out = Vec::new();
                for l in lists {
                    match self.read_tree_blob(l)? {
                        TreeBlob::ChunkListV1 { ids } => out.extend(ids),
                        _ => return Err(Error::corrupt("tree", l, "expected a chunk list")),
                    }
                }
                if out.len() as u64 != *count {
                    return Err(Error::corrupt(
                        "tree",
                        lists.first().map(|l| l.to_hex()).unwrap_or_default(),
                        "chunk list count mismatch",
                    ));
                }
                Ok(out)
            }
        }
    }

    /// Snapshot ids in storage.
    pub fn snapshot_ids(&self) -> Result<Vec<SnapshotId>> {
        Ok(self
            .backend
            .list("snapshots/")?
            .into_iter()
            .filter_map(|o| id_from_name(&o.path, "snapshots/", SnapshotId))
            .collect())
    }

    /// Reads one snapshot.
    pub fn load_snapshot(&self, id: &SnapshotId) -> Result<Snapshot> {
        let bytes = self.backend.read(&format!("snapshots/{id}")).map_err(|e| {
            if e.is_not_found() {
                Error::NotFound(format!("snapshot {id}"))
            } else {
                e
            }
        })?;
        let (public, body) = snapshot::split(&bytes).map_err(|e| Error::corrupt("snapshot", id, e))?;
        let session = self.session(&public)?;
        snapshot::decode_body(&self.keys, &session, id, body).map_err(|e| Error::corrupt("snapshot", id, e))
    }

    /// Removes a snapshot manifest (forget). The data it referenced stays until prune.
    pub fn remove_snapshot(&self, id: &SnapshotId) -> Result<()> {
        self.check_writer_version()?;
        self.backend.delete(&format!("snapshots/{id}"))
    }

    /// Every snapshot, oldest first, failing on any that does not open or decode. Prune uses this:
    /// a snapshot it cannot read may reference anything, so it must stop rather than skip it.
    pub fn list_snapshots_strict(&self) -> Result<Vec<(SnapshotId, Snapshot)>> {
        let ids = self.snapshot_ids()?;
        let loaded: Vec<Option<(SnapshotId, Snapshot)>> = ids
            .par_iter()
            .map(|id| match self.load_snapshot(id) {
                Ok(s) => Ok(Some((*id, s))),
                // Deleted between the listing and the read (a concurrent forget).
                Err(Error::NotFound(_)) => Ok(None),
                Err(e) => Err(e),
            })
            .collect::<Result<_>>()?;
        let mut v: Vec<(SnapshotId, Snapshot)> = loaded.into_iter().flatten().collect();
        v.sort_by(|a, b| a.1.v1().time.cmp(&b.1.v1().time).then(a.0.cmp(&b.0)));
        Ok(v)
    }

    /// Every readable snapshot, oldest first. A snapshot object that does not open or decode is
    /// skipped with a warning naming it (`check` reports it as `snapshot-unreadable`): one damaged
    /// manifest must not stop listings, `latest`, retention or the parent lookup of every later
    /// backup. Storage failures stop the listing.
    pub fn list_snapshots(&self) -> Result<Vec<(SnapshotId, Snapshot)>> {
        let ids = self.snapshot_ids()?;
        let loaded: Vec<Result<Option<(SnapshotId, Snapshot)>>> = ids
            .par_iter()
            .map(|id| match self.load_snapshot(id) {
                Ok(s) => Ok(Some((*id, s))),
                Err(e @ Error::Corrupt { .. }) => {
                    tracing::warn!("{e}; skipped (run `cairn check`)");
                    Ok(None)
                }
                // Deleted between the listing and the read (a concurrent forget).
                Err(Error::NotFound(_)) => Ok(None),
                Err(e) => Err(e),
            })
            .collect();
        let mut v: Vec<(SnapshotId, Snapshot)> = Vec::new();
        for r in loaded {
            v.extend(r?);
        }
        v.sort_by(|a, b| a.1.v1().time.cmp(&b.1.v1().time).then(a.0.cmp(&b.0)));
        Ok(v)
    }

    /// Resolves `latest`, a full id or a unique prefix among `candidates`.
    pub fn resolve_snapshot(&self, spec: &str, candidates: &[(SnapshotId, Snapshot)]) -> Result<SnapshotId> {
        if spec == "latest" {
            return candidates
                .iter()
                .max_by(|a, b| a.1.v1().time.cmp(&b.1.v1().time))
                .map(|(id, _)| *id)
                .ok_or_else(|| Error::NotFound("snapshot `latest` (no snapshot matches)".into()));
        }
        let spec_l = spec.to_ascii_lowercase();
        if spec_l.len() < 4 || !spec_l.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Invalid(format!(
                "{spec:?} is not a snapshot id, a prefix of at least 4 hex digits, or `latest`"
            )));
        }
        let ids = self.snapshot_ids()?;
        let m: Vec<&SnapshotId> = ids.iter().filter(|id| id.to_hex().starts_with(&spec_l)).collect();
        match m.len() {
            0 => Err(Error::NotFound(format!("snapshot {spec}"))),
            1 => Ok(*m[0]),
            n => Err(Error::Invalid(format!("snapshot prefix {spec} is ambiguous ({n} snapshots match)"))),
        }
    }

    /// The key files of the repository.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let mut out = Vec::new();
        for o in self.backend.list("keys/")? {
            let Some(id) = id_from_name(&o.path, "keys/", KeyId) else { continue };
            let kf = keyfile::decode(&self.backend.read(&o.path)?).map_err(|e| Error::corrupt("key", id, e))?;
            let k = kf.v1();
            out.push(KeyInfo {
                id,
                kind: k.kind,
                created: k.created,
                host: k.host.clone(),
                user: k.user.clone(),
                current: id == self.key_id,
            });
        }
        out.sort_by_key(|k| k.created);
        Ok(out)
    }

    /// Adds a key file for `password`; `write_only` grants only adding backups.
    pub fn add_key(&self, password: &[u8], write_only: bool, kdf: KdfParams) -> Result<KeyId> {
        let keys = if write_only { self.keys.write_only() } else { self.keys.clone() };
        if !write_only && !self.keys.can_read() {
            return Err(Error::Invalid("a write-only key cannot create a full key".into()));
        }
        let id = KeyId::random();
        let kf = keyfile::create(&keys, &id, password, kdf, &hostname(), &username())?;
        self.backend.write_new(&format!("keys/{id}"), &kf)?;
        Ok(id)
    }

    /// Removes a key file; the last full key cannot go, nor (unless `allow_current`) the key in use.
    pub fn remove_key(&self, id: &KeyId, allow_current: bool) -> Result<()> {
        let keys = self.list_keys()?;
        let Some(target) = keys.iter().find(|k| k.id == *id) else {
            return Err(Error::NotFound(format!("key {id}")));
        };
        if target.current && !allow_current {
            return Err(Error::Invalid(format!(
                "key {id} is the one in use; open the repository with another key to remove it"
            )));
        }
        let fulls = keys.iter().filter(|k| k.kind == KeyKind::Full).count();
        if target.kind == KeyKind::Full && fulls <= 1 {
            return Err(Error::Invalid(format!("key {id} is the last full key; removing it would lock everyone out")));
        }
        self.backend.delete(&format!("keys/{id}"))
    }

    /// Resolves a key id prefix.
    pub fn resolve_key(&self, spec: &str) -> Result<KeyId> {
        let s = spec.to_ascii_lowercase();
        let m: Vec<KeyId> =
            self.list_keys()?.into_iter().map(|k| k.id).filter(|id| id.to_hex().starts_with(&s)).collect();
        match m.len() {
            1 => Ok(m[0]),
            0 => Err(Error::NotFound(format!("key {spec}"))),
            _ => Err(Error::Invalid(format!("key prefix {spec} is ambiguous"))),
        }
    }

    /// Decrypts a sealed item for `cat`: tries the index seal key.
    pub fn index_seal_key(&self) -> crypto::Secret {
        self.keys.index_seal_key()
    }
}
