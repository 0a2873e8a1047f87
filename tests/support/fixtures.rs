//! The shared helpers of the library tests (`tests/library/*`): test data, files on disk, repositories on a local
//! directory (plain or behind the fault-injecting layer of `src/backend/fault.rs`), and the restore-and-compare
//! check. Each test file builds its own fixture from these; none defines them again.
#![allow(dead_code)]

use cairn::backend::fault::{FaultBackend, FaultPlan};
use cairn::backend::local::LocalBackend;
use cairn::backend::DynBackend;
use cairn::backup::{backup, BackupOptions, BackupSource, NoProgress};
use cairn::codec::{object, packer::PackBuilder};
use cairn::crypto::MasterKeys;
use cairn::crypto::Session;
use cairn::id::{BlobId, BlobKind, IndexId, KeyId, PackId, SnapshotId};
use cairn::index::{IndexFile, IndexPack};
use cairn::layout::{pack_path, StoredId};
use cairn::prune::PruneOptions;
use cairn::repository::{InitOptions, OpenOptions, ReadRepository, Repository};
use cairn::restore::{restore, NoRestoreProgress, RestoreOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Prune without waiting: no grace, crashed sessions' leases not waited for, orphans collected at
/// once, no share stop, every partly unused pack repacked (as docs/erasure.md advises for erasure).
pub fn eager_prune() -> PruneOptions {
    PruneOptions {
        grace_secs: 0,
        lease_timeout_secs: 0,
        orphan_min_age_secs: 0,
        max_delete_share: 1.0,
        max_unused: 0.0,
        ..PruneOptions::default()
    }
}

/// `len` pseudo-random (incompressible, unique per seed) bytes.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut h = blake3::Hasher::new();
    h.update(&seed.to_le_bytes());
    h.finalize_xof().fill(&mut out);
    out
}

/// Writes `data` to `path`, creating its parent directories.
pub fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// Relative path → content of every regular file below `root`.
pub fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.insert(p.strip_prefix(base).unwrap().to_path_buf(), std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Copies the regular files of a repository directory (empty directories, such as the local backend's pack fan-out,
/// need not be copied).
pub fn copy_dir(src: &Path, dst: &Path) {
    for (rel, data) in files(src) {
        write(&dst.join(rel), &data);
    }
}

/// Open options with the cache at `cache`.
pub fn opts(cache: &Path) -> OpenOptions {
    OpenOptions { cache_root: Some(cache.to_path_buf()), no_cache: false, upgrade_config: false }
}

/// The local backend at `dir`.
pub fn local(dir: &Path) -> DynBackend {
    Arc::new(LocalBackend::new(dir).unwrap())
}

/// A new repository at `dir` with default settings.
pub fn init_local(dir: &Path, password: &[u8], cache: &Path) -> ReadRepository {
    Repository::init(local(dir), password, &InitOptions::default(), &opts(cache)).and_then(|r| r.readable()).unwrap()
}

/// The repository at `dir` through plain storage, opened with known keys.
pub fn open_local(dir: &Path, keys: &MasterKeys, key_id: KeyId, cache: &Path) -> ReadRepository {
    Repository::open_with_keys(local(dir), keys.clone(), key_id, &opts(cache)).and_then(|r| r.readable()).unwrap()
}

/// The repository at `dir` behind a fault-injecting layer with `plan`, and that layer (for its counts).
pub fn open_faulty(
    dir: &Path,
    plan: FaultPlan,
    keys: &MasterKeys,
    key_id: KeyId,
    cache: &Path,
) -> (cairn::Result<ReadRepository>, Arc<FaultBackend>) {
    let fb = Arc::new(FaultBackend::new(local(dir), plan));
    (Repository::open_with_keys(fb.clone(), keys.clone(), key_id, &opts(cache)).and_then(|r| r.readable()), fb)
}

/// Backs up `src` with default options and returns the snapshot id.
pub fn snapshot_of(repo: &Repository, src: &Path) -> SnapshotId {
    backup(repo, vec![BackupSource::Paths(vec![src.to_path_buf()])], &BackupOptions::default(), &NoProgress)
        .unwrap()
        .snapshot_id
        .unwrap()
}

/// A short random name (for cache and restore directories).
pub fn rand_name() -> String {
    hex::encode(cairn::crypto::random_32())[..12].to_string()
}

/// Restores `snap` into `target` and asserts its files equal those of `src` byte for byte.
pub fn restore_matches(repo: &ReadRepository, snap: &SnapshotId, src: &Path, target: &Path) {
    let s = repo.load_snapshot(snap).unwrap();
    let o = RestoreOptions { target: target.to_path_buf(), ..Default::default() };
    let r = restore(repo, &s.root(), None, &o, &NoRestoreProgress).unwrap();
    assert!(r.errors.is_empty(), "restore of {snap:?}: {:?}", r.errors);
    let restored = target.join(src.strip_prefix("/").unwrap());
    assert_eq!(files(&restored), files(src), "restore of {snap:?} differs from {src:?}");
}

/// What a write-only key can do to the index (format-spec §12): stores, through the library's own encoders and
/// with the write-only key material `wo`, a pack of `kind` whose header (valid: it opens under the index seal key)
/// claims the blobs `claims` (content id, plain length) but whose blob bytes are garbage, and an index file that
/// describes it. With `below`, garbage is drawn again until the pack id sorts before that id (so it is the first
/// location of every blob it claims). Returns the pack id.
pub fn forge_pack(
    backend: &DynBackend,
    wo: &MasterKeys,
    kind: BlobKind,
    claims: &[(BlobId, u32)],
    below: Option<PackId>,
) -> PackId {
    assert!(!wo.can_read(), "forge with the write-only key material");
    let session = Session::new_writer(wo);
    let fp = loop {
        let mut b = PackBuilder::new(kind, 0);
        for (id, plain) in claims {
            b.add(&session.public, kind, *id, &cairn::crypto::random_32().repeat(*plain as usize / 32 + 2), *plain);
        }
        let fp = b.finish(wo);
        if below.is_none_or(|x| fp.id < x) {
            break fp;
        }
    };
    backend.write_new(&pack_path(kind, &fp.id), &fp.bytes).unwrap();
    forge_index(backend, wo, vec![fp.index]);
    fp.id
}

/// Stores an index file describing `packs`, sealed with the write-only key material `wo` (format-spec §6.1).
pub fn forge_index(backend: &DynBackend, wo: &MasterKeys, packs: Vec<IndexPack>) -> IndexId {
    let iid = IndexId(cairn::crypto::random_32());
    let f = IndexFile::new(vec![], packs);
    backend.write_new(&iid.path(), &object::encode_index(wo, &iid, &f)).unwrap();
    iid
}

/// Every pack entry of kind `kind` in the index files of `repo`.
pub fn indexed_packs(repo: &Repository, kind: BlobKind) -> Vec<IndexPack> {
    let mut out = Vec::new();
    for o in repo.backend().list("index/").unwrap() {
        let Some(id) = IndexId::from_path(&o.path) else { continue };
        out.extend(repo.read_index(&id).unwrap().packs().iter().filter(|p| p.kind == kind).cloned());
    }
    out
}

/// Every blob of `kind` the index files of `repo` name, with its plain length, and the lowest pack id of that
/// kind (read as a write-only key could: the index is not secret to writers, format-spec §12).
pub fn indexed_blobs(repo: &Repository, kind: BlobKind) -> (Vec<(BlobId, u32)>, PackId) {
    let mut out = BTreeMap::new();
    let mut low = PackId([0xff; 32]);
    for o in repo.backend().list("index/").unwrap() {
        let Some(id) = IndexId::from_path(&o.path) else { continue };
        for p in repo.read_index(&id).unwrap().packs().iter().filter(|p| p.kind == kind) {
            low = low.min(p.id);
            for b in &p.blobs {
                out.insert(b.id, b.plain_length);
            }
        }
    }
    (out.into_iter().collect(), low)
}

/// A repository at `dir` (password `admin`) in which a session of a write-only key (password
/// `wo`, cache under `cache`) committed one snapshot whose root tree `build` stores through the
/// library's own writer, as an attacker holding only that key can. Returns the admin's handle
/// (opened afterwards, its cache under `cache`) and the snapshot.
pub fn write_only_snapshot(
    dir: &Path,
    cache: &Path,
    build: impl FnOnce(&cairn::writer::Writer) -> cairn::Result<cairn::id::BlobId>,
) -> (ReadRepository, SnapshotId) {
    let admin = init_local(dir, b"admin", &cache.join("admin"));
    admin.add_password(b"wo", true).unwrap();
    drop(admin);
    let wo = Repository::open(local(dir), b"wo", &opts(&cache.join("wo"))).unwrap();
    assert!(wo.readable().is_err(), "the key is write-only");
    let w = cairn::writer::Writer::new(&wo, Default::default(), "backup").unwrap();
    let root = build(&w).unwrap();
    let sid = commit_root(w, root, cairn::time::Time::now(), "cairn");
    let admin = Repository::open(local(dir), b"admin", &opts(&cache.join("admin"))).and_then(|r| r.readable()).unwrap();
    (admin, sid)
}

/// Commits, ending the session `w`, a snapshot of host `web-1` and user `root` taken at `time` of the
/// paths `/` whose root tree is `root`, written by `program`.
pub fn commit_root(
    w: cairn::writer::Writer,
    root: cairn::id::BlobId,
    time: cairn::time::Time,
    program: &str,
) -> SnapshotId {
    w.commit(&snapshot_of_root(root, "web-1", time, program)).unwrap()
}

/// The snapshot [`commit_root`] commits, of host `host` (the writer signs it when its key can).
pub fn snapshot_of_root(
    root: cairn::id::BlobId,
    host: &str,
    time: cairn::time::Time,
    program: &str,
) -> cairn::snapshot::Snapshot {
    use cairn::snapshot::{Snapshot, SnapshotV1, Source, Summary};
    Snapshot::V1(SnapshotV1 {
        time,
        host: host.into(),
        user: "root".into(),
        uid: 0,
        gid: 0,
        paths: vec![b"/".to_vec()],
        tags: vec![],
        root,
        parent: None,
        source: Source::Files,
        summary: Summary::default(),
        program: program.into(),
    })
}

/// As the key `repo` was opened with (it signs when opened with its password and certified;
/// opened with [`Repository::open_with_keys`] it writes unattributed): one session that stores a
/// root tree holding one file `f` with `content` and permission bits `mode`, and commits a
/// snapshot of `host` taken at `time`, through the library's own writer. Returns the snapshot id.
pub fn plant(repo: &Repository, host: &str, time: cairn::time::Time, content: &[u8], mode: u32) -> SnapshotId {
    use cairn::tree::{Content, Node, NodeKind};
    let w = cairn::writer::Writer::new(repo, Default::default(), "backup").unwrap();
    let (blob, _) = w.store(BlobKind::Data, content).unwrap();
    let file = Node {
        size: content.len() as u64,
        mode,
        ..Node::bare(b"f", NodeKind::File { content: Content::Chunks(vec![blob]) })
    };
    let root = cairn::trees::write_dir(&w, vec![file]).unwrap();
    w.commit(&snapshot_of_root(root, host, time, "cairn")).unwrap()
}

/// Runs the `cairn` program on the repository at `dir` with `password` and the cache at `cache`,
/// with no other `CAIRN_*` variable of this process.
pub fn run_cairn(dir: &Path, password: &[u8], cache: &Path, args: &[&str]) -> std::process::Output {
    use std::os::unix::ffi::OsStrExt;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CAIRN_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args)
        .env("CAIRN_REPOSITORY", dir)
        .env("CAIRN_PASSWORD", std::ffi::OsStr::from_bytes(password))
        .env("CAIRN_CACHE_DIR", cache)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// `secs` seconds before now.
pub fn ago(secs: i64) -> cairn::time::Time {
    cairn::time::Time { secs: cairn::time::Time::now().secs - secs, nanos: 0 }
}

/// The snapshot filter of one host.
pub fn host_filter(h: &str) -> cairn::select::Filter {
    cairn::select::Filter { host: Some(h.into()), ..Default::default() }
}

/// `snap` as a version 1 snapshot of files (as a writer before attribution and several sources
/// stored it): the common fields, `source` `Files`, no writer block.
pub fn as_v1(snap: &cairn::snapshot::Snapshot) -> cairn::snapshot::Snapshot {
    use cairn::snapshot::{Snapshot, SnapshotV1, Source};
    Snapshot::V1(SnapshotV1 {
        time: snap.time(),
        host: snap.host().into(),
        user: snap.user().into(),
        uid: snap.uid(),
        gid: snap.gid(),
        paths: snap.paths().to_vec(),
        tags: snap.tags().to_vec(),
        root: snap.root(),
        parent: snap.parent(),
        source: Source::Files,
        summary: snap.summary().clone(),
        program: snap.program().into(),
    })
}

/// How many entries a walk of the latest snapshot through `r` sees.
pub fn walk_entries(r: &ReadRepository) -> cairn::Result<usize> {
    let (_, snap) = r.list_snapshots()?.pop().expect("a snapshot");
    let mut n = 0;
    cairn::browse::walk(r, &snap.root(), Path::new("/"), &cairn::tree::Limits::expanding(), &mut |_, _| {
        n += 1;
        Ok(true)
    })?;
    Ok(n)
}
