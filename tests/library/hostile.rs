//! Hostile trees written by a write-only key through the library's own encoders (format-spec §7,
//! §7.5; issue findings on trees): a name repeated across a directory's parts, hardlink groups of
//! non-files and of different contents, a chunk-list bomb, a doubling DAG. Each asserts what the
//! reader, `check` and restore's plan do, and that their cost stays bounded.

use super::alloc::measure;
use super::fixtures::{local, opts, write_only_snapshot};
use cairn::check::{check, CheckOptions};
use cairn::error::{Damaged, Error};
use cairn::id::{BlobId, BlobKind};
use cairn::repository::{ReadRepository, Repository};
use cairn::restore::{plan, plan_with, RestoreOptions};
use cairn::tree::{Content, Expansion, Limits, Node, NodeKind, TreeBlob, CHUNK_LIST_LEN};
use cairn::trees::write_dir;
use cairn::writer::Writer;
use std::path::Path;

fn node(name: &str, kind: NodeKind) -> Node {
    Node::bare(name.as_bytes(), kind)
}

fn dir(name: &str, tree: BlobId) -> Node {
    Node { mode: 0o755, ..node(name, NodeKind::Dir { tree }) }
}

/// A regular file holding `data` (stored as one data blob).
fn file(w: &Writer, name: &str, data: &[u8]) -> Node {
    let (id, _) = w.store(BlobKind::Data, data).unwrap();
    Node { size: data.len() as u64, ..node(name, NodeKind::File { content: Content::Chunks(vec![id]) }) }
}

fn tree(w: &Writer, t: TreeBlob) -> BlobId {
    w.store(BlobKind::Tree, &t.encode()).unwrap().0
}

fn restore_opts() -> RestoreOptions {
    RestoreOptions { target: "/nonexistent/target".into(), ..Default::default() }
}

/// Runs the `cairn` program on the repository at `dir` as the admin (cache under `cache`).
fn cairn(dir: &Path, cache: &Path, args: &[&str]) -> std::process::Output {
    super::fixtures::run_cairn(dir, b"admin", &cache.join("cli"), args)
}

fn root(repo: &ReadRepository, sid: &cairn::id::SnapshotId) -> BlobId {
    repo.load_snapshot(sid).unwrap().root()
}

/// A doubling DAG of `levels` + 1 tree blobs: each directory holds `a` and `b`, both the
/// directory below; 2^(levels+1) - 2 paths.
fn doubling_dag(w: &Writer, levels: usize) -> cairn::Result<BlobId> {
    let mut t = write_dir(w, vec![])?;
    for _ in 0..levels {
        t = write_dir(w, vec![dir("a", t), dir("b", t)])?;
    }
    Ok(t)
}

/// A chunk-list bomb: the file `/bomb` names one list of [`CHUNK_LIST_LEN`] references to one
/// data blob `chunk`, `lists` times. Returns the root and the file's size.
fn chunk_list_bomb(w: &Writer, lists: usize, chunk: &[u8]) -> cairn::Result<(BlobId, u64)> {
    let (data, _) = w.store(BlobKind::Data, chunk)?;
    let list = tree(w, TreeBlob::ChunkListV1 { ids: vec![data; CHUNK_LIST_LEN] });
    let count = (lists * CHUNK_LIST_LEN) as u64;
    let content = Content::Indirect { lists: vec![list; lists], count };
    let size = count * chunk.len() as u64;
    let bomb = Node { size, ..node("bomb", NodeKind::File { content }) };
    Ok((write_dir(w, vec![bomb])?, size))
}

#[test]
fn a_name_repeated_across_parts_is_refused_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let mut part2 = BlobId([0; 32]);
    let (repo, sid) = write_only_snapshot(&tmp.path().join("r"), &tmp.path().join("c"), |w| {
        // Part 1: `x` a symlink out of the target; part 2: `x` a directory with a file in it.
        let inner = write_dir(w, vec![file(w, "f", b"planted")])?;
        part2 = tree(w, TreeBlob::DirV1 { nodes: vec![dir("x", inner)], next: None });
        let link = node("x", NodeKind::Symlink { target: b"/etc".to_vec() });
        let part1 = tree(w, TreeBlob::DirV1 { nodes: vec![link], next: Some(part2) });
        write_dir(w, vec![dir("d", part1)])
    });
    let report = check(&repo, &CheckOptions::default()).unwrap();
    let f = report.findings.iter().find(|f| f.code == "tree-order").expect("a tree-order finding");
    assert_eq!(f.object, format!("tree {part2}"));
    assert_eq!(f.paths, ["/d"]);
    assert_eq!(f.snapshots, [sid.to_hex()]);
    assert!(f.message.contains("strictly increase"), "{}", f.message);
    let err = plan(&repo, &root(&repo, &sid), None, &restore_opts()).unwrap_err();
    match &err {
        Error::Corrupt { object: Damaged::Blob { kind: BlobKind::Tree, id, .. }, reason } => {
            assert_eq!(*id, part2);
            assert!(reason.contains("(directory /d)"), "{reason}");
        }
        e => panic!("restore's plan must refuse the directory: {e:?}"),
    }
    // The program: the dry run refuses, naming the part and the directory; check exits 1.
    let (dir, cache) = (tmp.path().join("r"), tmp.path().join("c"));
    let target = tmp.path().join("t");
    let out = cairn(&dir, &cache, &["restore", &sid.to_hex(), "--target", target.to_str().unwrap(), "--dry-run"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&part2.to_string()) && err.contains("(directory /d)"), "{err}");
    assert!(!target.exists(), "nothing written");
    let out = cairn(&dir, &cache, &["check", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes: Vec<&str> = json["findings"].as_array().unwrap().iter().filter_map(|f| f["code"].as_str()).collect();
    assert_eq!(codes, ["tree-order"]);
}

#[test]
fn hardlink_groups_of_non_files_or_other_contents_are_refused_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, sid) = write_only_snapshot(&tmp.path().join("r"), &tmp.path().join("c"), |w| {
        // The symlink comes first in the group; then a file that restore would chmod through it.
        let link = Node { hardlink: 1, ..node("a", NodeKind::Symlink { target: b"/etc/shadow".to_vec() }) };
        let b = Node { hardlink: 1, mode: 0o4777, ..file(w, "b", b"one") };
        let c = Node { hardlink: 2, ..file(w, "c", b"two") };
        let e = Node { hardlink: 2, ..file(w, "e", b"three") };
        write_dir(w, vec![link, b, c, e])
    });
    let r = root(&repo, &sid);
    let report = check(&repo, &CheckOptions::default()).unwrap();
    let bad: Vec<_> = report.findings.iter().filter(|f| f.code == "hardlink-invalid").collect();
    assert_eq!(bad.len(), 2, "{:?}", report.findings);
    assert_eq!(
        (bad[0].object.as_str(), bad[0].paths.as_slice()),
        (format!("tree {r}").as_str(), &["/a".to_string()][..])
    );
    assert!(bad[0].message.contains("a symlink in hardlink group 1"), "{}", bad[0].message);
    assert_eq!(bad[1].paths, ["/e"]);
    assert!(bad[1].message.contains("differ in content"), "{}", bad[1].message);
    let p = plan(&repo, &r, None, &restore_opts()).unwrap();
    let refused: Vec<&str> = p.unrestorable.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(refused, ["/a", "/e"]);
    let planned: Vec<(String, Option<usize>)> =
        p.entries.iter().map(|e| (e.path.display().to_string(), e.link_to)).collect();
    assert_eq!(planned, [("/b".to_string(), None), ("/c".to_string(), None)], "no link to the symlink");
}

#[test]
fn a_chunk_list_bomb_costs_check_and_restore_one_list() {
    // 64 references to one list of 65536 references to one 4 KiB zero chunk: a 1 TiB-sized
    // sparse file of 4 Mi chunk ids from one 2 MiB tree blob.
    const LISTS: usize = 64;
    let tmp = tempfile::tempdir().unwrap();
    let (repo, sid) = write_only_snapshot(&tmp.path().join("r"), &tmp.path().join("c"), |w| {
        Ok(chunk_list_bomb(w, LISTS, &[0u8; 4096])?.0)
    });
    let r = root(&repo, &sid);
    let size = (LISTS * CHUNK_LIST_LEN * 4096) as u64;
    // Collected, the ids alone are 128 MiB; one list is 2 MiB.
    const BOUND: i64 = 24 << 20;
    let (p, used) = measure(|| plan(&repo, &r, None, &restore_opts()).unwrap());
    assert!(p.unrestorable.is_empty(), "{:?}", p.unrestorable);
    assert_eq!((p.total_bytes, p.hole_bytes, p.packs.len()), (size, size, 0), "all holes, nothing to read");
    assert!(used.peak < BOUND && (used.largest as i64) < BOUND, "restore's plan allocated {used:?}");
    let (report, used) = measure(|| check(&repo, &CheckOptions::default()).unwrap());
    assert_eq!(report.errors(), 0, "{:?}", report.findings);
    assert!(used.peak < BOUND && (used.largest as i64) < BOUND, "check allocated {used:?}");
}

#[test]
fn a_doubling_dag_is_refused_by_the_entry_limit_and_checked_once_per_tree() {
    // 21 tree blobs: each directory holds `a` and `b`, both the directory below: 2^21 - 2 paths.
    const LEVELS: usize = 20;
    let tmp = tempfile::tempdir().unwrap();
    let (repo, sid) = write_only_snapshot(&tmp.path().join("r"), &tmp.path().join("c"), |w| doubling_dag(w, LEVELS));
    let r = root(&repo, &sid);
    let limits = Limits { max_entries: 10_000, ..Limits::default() };
    match plan_with(&repo, &r, None, &restore_opts(), &limits) {
        Err(Error::Refused { reason, .. }) => {
            assert!(reason.contains(&r.to_string()) && reason.contains("limit of 10000 entries"), "{reason}")
        }
        other => panic!("the plan must stop at the limit: {:?}", other.map(|p| p.entries.len())),
    }
    let report = check(&repo, &CheckOptions::default()).unwrap();
    assert_eq!(report.errors(), 0, "{:?}", report.findings);
    assert_eq!(report.trees, LEVELS as u64 + 1, "each distinct directory walked once");
}

/// The entries `ls` keeps, collected through the walk `ls` makes.
fn ls(repo: &ReadRepository, root: &BlobId, limits: &Limits) -> cairn::Result<Vec<(std::path::PathBuf, Node)>> {
    let mut v = Vec::new();
    cairn::browse::walk(repo, root, Path::new("/"), limits, &mut |p, n| {
        v.push((p.to_path_buf(), n.clone()));
        Ok(true)
    })?;
    Ok(v)
}

fn assert_expansion_refused<T: std::fmt::Debug>(r: cairn::Result<T>, root: &BlobId, limit: u64) {
    match r {
        Err(e @ Error::Refused { .. }) => {
            let m = e.to_string();
            assert!(m.contains(&root.to_string()) && m.contains(&format!("limit of {limit} bytes")), "{m}");
            assert_eq!(e.lifted_by(), Some(cairn::error::Override::TreeMemory));
        }
        other => panic!("the walk must stop at the expansion limit: {other:?}"),
    }
}

#[test]
fn a_doubling_dag_cannot_make_restore_or_ls_hold_more_than_the_expansion_budget() {
    // 23 tree blobs of 2 KiB in all; 2^23 - 2 paths.
    let tmp = tempfile::tempdir().unwrap();
    let (repo, sid) = write_only_snapshot(&tmp.path().join("r"), &tmp.path().join("c"), |w| doubling_dag(w, 22));
    let r = root(&repo, &sid);
    // The reference's limits (format-spec §7.5): refused before 1 GiB is held.
    let floor = Limits::expanding().expansion.unwrap().floor;
    let (res, used) = measure(|| plan(&repo, &r, None, &restore_opts()).map(|p| p.entries.len()));
    assert_expansion_refused(res, &r, floor);
    assert!(used.peak < 1 << 30, "restore's plan allocated {used:?}");
    let (res, used) = measure(|| ls(&repo, &r, &Limits::expanding()).map(|v| v.len()));
    assert_expansion_refused(res, &r, floor);
    assert!(used.peak < 1 << 30, "ls allocated {used:?}");
    // A plan that fits holds at most 3 times its budget (the walk's entries and the plan's).
    let limits = |floor| Limits { expansion: Some(Expansion { floor, factor: 16 }), ..Limits::default() };
    let (_, small) = write_only_snapshot(&tmp.path().join("r2"), &tmp.path().join("c2"), |w| doubling_dag(w, 17));
    let repo2 = Repository::open(local(&tmp.path().join("r2")), b"admin", &opts(&tmp.path().join("c2").join("admin")))
        .and_then(|r| r.readable())
        .unwrap();
    let r2 = root(&repo2, &small);
    let (p, used) = measure(|| plan_with(&repo2, &r2, None, &restore_opts(), &limits(96 << 20)).unwrap());
    assert_eq!(p.entries.len(), (1 << 18) - 2);
    assert!(used.peak < 3 * (96 << 20), "a plan within 96 MiB allocated {used:?}");
    assert_expansion_refused(plan_with(&repo2, &r2, None, &restore_opts(), &limits(32 << 20)), &r2, 32 << 20);
    // The program names the flag that raises the limit, and the flag does.
    let (dir, cache) = (tmp.path().join("r2"), tmp.path().join("c2"));
    let target = tmp.path().join("t");
    let dry = ["restore", "latest", "--target", target.to_str().unwrap(), "--dry-run"];
    for (args, extra) in [(&["ls", "latest"][..], "ls"), (&dry[..], "restore")] {
        let out = cairn(&dir, &cache, &[args, &["--max-tree-memory", "1MiB"]].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra}: {err}");
        assert!(err.contains(&r2.to_string()) && err.contains("limit of 1048576 bytes"), "{extra}: {err}");
        assert!(err.contains("--max-tree-memory SIZE raises the limit"), "{extra}: {err}");
        let out = cairn(&dir, &cache, &[args, &["--max-tree-memory", "200MiB"]].concat());
        assert_eq!(out.status.code(), Some(0), "{extra}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(!target.exists(), "nothing written");
}

#[test]
fn fifty_copies_of_a_directory_restore_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let mut want = Vec::new();
    let (repo, sid) = write_only_snapshot(&tmp.path().join("r"), &tmp.path().join("c"), |w| {
        let mut files = Vec::new();
        for i in 0..100 {
            let data = super::fixtures::bytes(i, 1000 + i as usize);
            files.push(file(w, &format!("f{i:03}"), &data));
            want.push((format!("f{i:03}"), data));
        }
        let inner = write_dir(w, files)?;
        let sub = write_dir(w, vec![dir("inner", inner)])?;
        write_dir(w, (0..50).map(|i| dir(&format!("copy{i:02}"), sub)).collect())
    });
    let target = tmp.path().join("t");
    let opts = RestoreOptions { target: target.clone(), ..Default::default() };
    // Expanded, the copies take 50 times the bytes of the one stored copy: more than the factor
    // of format-spec §7.5 allows, within its floor.
    let r = root(&repo, &sid);
    let no_floor = Limits { expansion: Some(Expansion { floor: 0, factor: 16 }), ..Limits::default() };
    assert!(matches!(plan_with(&repo, &r, None, &opts, &no_floor), Err(Error::Refused { .. })));
    let res = cairn::restore::restore(&repo, &r, None, &opts, &cairn::restore::NoRestoreProgress).unwrap();
    assert!(res.errors.is_empty(), "{:?}", res.errors);
    assert_eq!(res.files, 50 * 100);
    for i in 0..50 {
        for (name, data) in &want {
            let got = std::fs::read(target.join(format!("copy{i:02}/inner/{name}"))).unwrap();
            assert_eq!(&got, data, "copy{i:02}/inner/{name}");
        }
    }
}

/// A writer that takes `left` bytes, then fails.
struct Limited {
    left: usize,
}

impl std::io::Write for Limited {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other("enough"));
        }
        let n = b.len().min(self.left);
        self.left -= n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn ls_dump_copy_and_repair_cost_one_chunk_list_of_a_bomb_and_one_walk_of_each_tree() {
    // 16 references to one list of 65536 references to one 16-byte chunk: 1 Mi chunk ids (32
    // MiB collected) for 16 MiB of content; next to it a doubling DAG of 2^17 paths.
    const LISTS: usize = 16;
    const BOUND: i64 = 24 << 20;
    let tmp = tempfile::tempdir().unwrap();
    let (repo, sid) = write_only_snapshot(&tmp.path().join("r"), &tmp.path().join("c"), |w| {
        let (bomb, _) = chunk_list_bomb(w, LISTS, &[7u8; 16])?;
        let dag = doubling_dag(w, 16)?;
        write_dir(w, vec![dir("bomb", bomb), dir("dag", dag)])
    });
    let r = root(&repo, &sid);
    // ls: the DAG within the budget; the bomb's lists are not read.
    let (v, used) = measure(|| ls(&repo, &r, &Limits::expanding()).unwrap());
    assert_eq!(v.len(), 3 + (1 << 17) - 2);
    assert!(used.peak < 96 << 20, "ls allocated {used:?}");
    // dump: one list at a time.
    let (res, used) =
        measure(|| cairn::restore::dump(&repo, &r, Path::new("/bomb/bomb"), &mut Limited { left: 64 << 10 }));
    assert!(res.unwrap_err().to_string().contains("enough"));
    assert!(used.peak < BOUND && (used.largest as i64) < BOUND, "dump allocated {used:?}");
    // repair snapshots: nothing lost, one list at a time, each directory once.
    let ro = cairn::repair::RepairSnapshotsOptions { dry_run: true, ..Default::default() };
    let (report, used) = measure(|| cairn::repair::repair_snapshots(&repo, &ro).unwrap());
    assert_eq!((report.intact, report.damaged.len()), (1, 0));
    assert!(used.peak < BOUND && (used.largest as i64) < BOUND, "repair allocated {used:?}");
    // copy into a repository of shared chunker keys (blobs moved as they are): each distinct
    // blob once.
    let io = cairn::repository::InitOptions {
        chunker: repo.config().chunker(),
        chunker_keys_from: Some(repo.keys().clone()),
        ..Default::default()
    };
    let dst = Repository::init(local(&tmp.path().join("d")), b"pw", &io, &opts(&tmp.path().join("cd")))
        .and_then(|r| r.readable())
        .unwrap();
    let report = cairn::copy::copy(&repo, &dst, &[], false).unwrap();
    assert!(!report.rechunked);
    // 17 DAG directories, the list, the chunk, the bomb's directory and the root.
    assert_eq!(report.blobs_added, 17 + 1 + 1 + 1 + 1, "{report:?}");
    assert_eq!(report.data_blobs_read, 1);
}

#[test]
fn repair_of_a_bombed_file_with_lost_chunks_streams_its_ids_and_lists_a_bounded_report() {
    // 16 references to one list of 65536 ids, every other one a data blob no index names: 512 Ki
    // lost ranges and 512 Ki kept ids from one 2 MiB tree blob.
    const LISTS: usize = 16;
    let tmp = tempfile::tempdir().unwrap();
    let (repo, _) = write_only_snapshot(&tmp.path().join("r"), &tmp.path().join("c"), |w| {
        let (real, _) = w.store(BlobKind::Data, &[7u8; 16])?;
        let fake = BlobId([0xee; 32]);
        let ids = (0..CHUNK_LIST_LEN).map(|i| if i % 2 == 0 { real } else { fake }).collect();
        let list = tree(w, TreeBlob::ChunkListV1 { ids });
        let count = (LISTS * CHUNK_LIST_LEN) as u64;
        let content = Content::Indirect { lists: vec![list; LISTS], count };
        write_dir(w, vec![Node { size: count * 16, ..node("bomb", NodeKind::File { content }) }])
    });
    let ro = cairn::repair::RepairSnapshotsOptions { dry_run: true, ..Default::default() };
    let (report, used) = measure(|| cairn::repair::repair_snapshots(&repo, &ro).unwrap());
    assert_eq!(report.damaged.len(), 1, "{report:?}");
    let item = &report.damaged[0].lost[0];
    let half = (LISTS * CHUNK_LIST_LEN / 2) as u64;
    assert_eq!((item.path.as_str(), item.ranges.len()), ("/bomb", cairn::repair::MAX_LOST_RANGES));
    assert_eq!(item.size_after, half * 16);
    let want = format!("{half} lost ranges, the first {} listed", cairn::repair::MAX_LOST_RANGES);
    assert!(item.what.contains(&want), "{}", item.what);
    assert!(used.peak < 24 << 20 && (used.largest as i64) < 24 << 20, "repair allocated {used:?}");
}

#[test]
fn dump_of_a_file_naming_a_chunk_never_stored_writes_what_comes_before_and_stops_there() {
    // A write-only key may name any id in a file's chunk list. dump reads ahead on the pool: the
    // chunks before the missing one come out whole and in order, then the dump stops with an
    // error naming the blob; the reads in flight after it are not written.
    let tmp = tempfile::tempdir().unwrap();
    let missing = BlobId([0x5a; 32]);
    let chunks: Vec<Vec<u8>> = (0..200u32).map(|i| format!("chunk {i:03} ").repeat(60).into_bytes()).collect();
    let (repo, sid) = write_only_snapshot(&tmp.path().join("r"), &tmp.path().join("c"), |w| {
        let mut ids = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            if i == 150 {
                ids.push(missing);
            }
            ids.push(w.store(BlobKind::Data, c)?.0);
        }
        let size = chunks.iter().map(|c| c.len() as u64).sum();
        let f = Node { size, ..node("f", NodeKind::File { content: Content::Chunks(ids) }) };
        write_dir(w, vec![f])
    });
    let mut out = Vec::new();
    let e = cairn::restore::dump(&repo, &root(&repo, &sid), Path::new("/f"), &mut out).unwrap_err();
    assert!(e.to_string().contains(&missing.to_string()[..8]), "{e}");
    assert!(out == chunks[..150].concat(), "dump wrote {} bytes, not the 150 chunks before the missing one", out.len());
}
