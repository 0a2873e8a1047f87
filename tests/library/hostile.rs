//! Hostile trees written by a write-only key through the library's own encoders (format-spec §7,
//! §7.5; issue findings on trees): a name repeated across a directory's parts, hardlink groups of
//! non-files and of different contents, a chunk-list bomb, a doubling DAG. Each asserts what the
//! reader, `check` and restore's plan do, and that their cost stays bounded.

use super::alloc::measure;
use super::fixtures::{cairn_cli, write_only_snapshot};
use cairn::check::{check, CheckOptions};
use cairn::error::{Damaged, Error};
use cairn::id::{BlobId, BlobKind};
use cairn::repository::ReadRepository;
use cairn::restore::{plan, plan_with, RestoreOptions};
use cairn::tree::{Content, Limits, Node, NodeKind, TreeBlob, CHUNK_LIST_LEN};
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
    cairn_cli(dir, cache, "admin", args)
}

fn root(repo: &ReadRepository, sid: &cairn::id::SnapshotId) -> BlobId {
    repo.load_snapshot(sid).unwrap().root()
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
        let (zero, _) = w.store(BlobKind::Data, &[0u8; 4096])?;
        let list = tree(w, TreeBlob::ChunkListV1 { ids: vec![zero; CHUNK_LIST_LEN] });
        let count = (LISTS * CHUNK_LIST_LEN) as u64;
        let content = Content::Indirect { lists: vec![list; LISTS], count };
        let bomb = Node { size: count * 4096, ..node("bomb", NodeKind::File { content }) };
        write_dir(w, vec![bomb])
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
    let (repo, sid) = write_only_snapshot(&tmp.path().join("r"), &tmp.path().join("c"), |w| {
        let mut t = write_dir(w, vec![])?;
        for _ in 0..LEVELS {
            t = write_dir(w, vec![dir("a", t), dir("b", t)])?;
        }
        Ok(t)
    });
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
