//! Small files inline in their tree node (format-spec §7.3, §9.1 format version 2): a round trip
//! of many tiny files byte for byte, with the threshold's edges (empty, exactly T, T + 1 bytes);
//! an unchanged backup that reads no file; a version 1 repository read and backed up into
//! without inline content, and copied into from a version 2 one; a config of version 4 refused;
//! directory parts bounded by their inline bytes; hostile inline content (longer than the limit,
//! or other than the size) refused by restore and check, naming the tree blob and the path.

use super::fixtures::{bytes, files, indexed_blobs, local, opts, restore_matches, write, write_only_snapshot};
use cairn::backup::{backup, BackupOptions, BackupSource, NoProgress};
use cairn::check::{check, CheckOptions, ReadData};
use cairn::codec::object;
use cairn::config::Config;
use cairn::id::{BlobId, BlobKind, SnapshotId};
use cairn::layout::Object;
use cairn::repository::{InitOptions, ReadRepository, Repository};
use cairn::restore::{dump, restore, NoRestoreProgress, RestoreOptions};
use cairn::tree::{Content, Node, NodeKind, TreeBlob, INLINE_THRESHOLD, MAX_INLINE};
use cairn::trees::{read_dir, Control, Walker};
use cairn::Error;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const T: usize = INLINE_THRESHOLD;

fn init(dir: &Path, cache: &Path, format_version: u32) -> ReadRepository {
    let io = InitOptions { format_version, ..Default::default() };
    Repository::init(local(dir), b"pw", &io, &opts(cache)).and_then(|r| r.readable()).unwrap()
}

fn backup_of(repo: &Repository, src: &Path) -> cairn::backup::BackupResult {
    let r = backup(repo, vec![BackupSource::Paths(vec![src.to_path_buf()])], &BackupOptions::default(), &NoProgress);
    r.unwrap()
}

/// Path → content of every file of snapshot `id`.
fn contents(repo: &ReadRepository, id: &SnapshotId) -> BTreeMap<PathBuf, Content> {
    let root = repo.load_snapshot(id).unwrap().root();
    let mut out = BTreeMap::new();
    Walker::new(repo)
        .walk(&root, Path::new("/"), &mut |p: &Path, n: &Node| {
            if let NodeKind::File { content } = &n.kind {
                out.insert(p.to_path_buf(), content.clone());
            }
            Ok(Control::Descend)
        })
        .unwrap();
    out
}

/// A source of 300 tiny files of 1 … 200 bytes, an empty file, and files of T − 1, T and T + 1
/// bytes (`edge/`).
fn tiny_source(src: &Path) {
    for i in 0..300u64 {
        write(&src.join(format!("d{}/f{i:03}", i % 7)), &bytes(i, 1 + (i as usize * 37) % 200));
    }
    write(&src.join("edge/empty"), b"");
    write(&src.join("edge/t-1"), &bytes(1001, T - 1));
    write(&src.join("edge/t"), &bytes(1002, T));
    write(&src.join("edge/t+1"), &bytes(1003, T + 1));
}

#[test]
fn tiny_files_round_trip_inline_byte_for_byte_and_an_unchanged_backup_reads_none() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    tiny_source(&src);
    let repo = init(&tmp.path().join("repo"), &tmp.path().join("cache"), 2);
    assert_eq!(repo.config().format_version(), 2, "init makes format version 2");
    std::thread::sleep(Duration::from_millis(150));
    let first = backup_of(&repo, &src);
    let snap = first.snapshot_id.unwrap();
    // Only the file of T + 1 bytes is a data blob: every other content is in the tree.
    assert_eq!(first.summary.files_new, 304);
    assert_eq!(indexed_blobs(&repo, BlobKind::Data).0.len(), 1, "one data blob, the T + 1 file's");
    let c = contents(&repo, &snap);
    let at = |rel: &str| &c[&src.join(rel)];
    assert_eq!(at("edge/empty"), &Content::Chunks(vec![]), "an empty file is Chunks with no ids");
    assert_eq!(at("edge/t-1"), &Content::Inline(bytes(1001, T - 1)));
    assert_eq!(at("edge/t"), &Content::Inline(bytes(1002, T)));
    assert!(matches!(at("edge/t+1"), Content::Chunks(ids) if ids.len() == 1));
    assert_eq!(at("d3/f003"), &Content::Inline(bytes(3, 1 + 3 * 37)));
    assert_eq!(c.values().filter(|c| matches!(c, Content::Inline(_))).count(), 302);
    // Restore (verified) and dump give the bytes back.
    let target = tmp.path().join("restored");
    restore_matches(&repo, &snap, &src, &target);
    let o = RestoreOptions { target: tmp.path().join("verified"), verify: true, ..Default::default() };
    let r = restore(&repo, &repo.load_snapshot(&snap).unwrap().root(), None, &o, &NoRestoreProgress).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.bytes, files(&src).values().map(|v| v.len() as u64).sum::<u64>(), "inline bytes are counted");
    let mut out = Vec::new();
    let root = repo.load_snapshot(&snap).unwrap().root();
    assert_eq!(dump(&repo, &root, &src.join("edge/t"), &mut out).unwrap(), T as u64);
    assert_eq!(out, bytes(1002, T));
    assert_eq!(check(&repo, &CheckOptions { read_data: ReadData::All }).unwrap().errors(), 0);
    // An unchanged backup reads no file: inline contents come from the files cache.
    let second = backup_of(&repo, &src);
    assert_eq!(second.summary.files_unchanged, 304);
    assert_eq!(second.summary.bytes_read, 0, "an unchanged backup read file content");
    assert_eq!(contents(&repo, &second.snapshot_id.unwrap()), contents(&repo, &snap));
    // A changed tiny file is read again and stored inline anew.
    write(&src.join("d0/f000"), b"changed");
    std::thread::sleep(Duration::from_millis(150));
    let third = backup_of(&repo, &src);
    assert_eq!((third.summary.files_changed, third.summary.bytes_read), (1, 7));
    let c = contents(&repo, &third.snapshot_id.unwrap());
    assert_eq!(c[&src.join("d0/f000")], Content::Inline(b"changed".to_vec()));
}

#[test]
fn a_version_1_repository_is_read_and_backed_up_into_without_inline_content() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    tiny_source(&src);
    let dir = tmp.path().join("v1");
    let repo = init(&dir, &tmp.path().join("cache"), 1);
    let snap = backup_of(&repo, &src).snapshot_id.unwrap();
    drop(repo);
    // Opened again, it is still version 1 (nothing upgrades it), and a backup into it stores
    // every non-empty file as data blobs.
    let repo = Repository::open(local(&dir), b"pw", &opts(&tmp.path().join("cache2"))).unwrap().readable().unwrap();
    assert_eq!(repo.config().format_version(), 1);
    write(&src.join("new"), b"after reopening");
    let snap2 = backup_of(&repo, &src).snapshot_id.unwrap();
    assert_eq!(repo.config_number(), 1, "no config was appended");
    for s in [snap, snap2] {
        let c = contents(&repo, &s);
        assert!(c.values().all(|c| matches!(c, Content::Chunks(_))), "inline content in a version 1 repository");
    }
    restore_matches(&repo, &snap2, &src, &tmp.path().join("r"));
    assert_eq!(indexed_blobs(&repo, BlobKind::Data).0.len(), 303 + 1);

    // A copy from a version 2 repository into it stores the inline contents as data blobs.
    let v2 = init(&tmp.path().join("v2"), &tmp.path().join("cache3"), 2);
    let from = backup_of(&v2, &src).snapshot_id.unwrap();
    let report = cairn::copy::copy(&v2, &repo, &[from], false).unwrap();
    assert!(report.rechunked, "trees are rebuilt for a version 1 destination");
    let copied = report.snapshots[0].target.unwrap();
    let c = contents(&repo, &copied);
    assert!(
        c.values().all(|c| matches!(c, Content::Chunks(_))),
        "the copy put inline content in a version 1 repository"
    );
    restore_matches(&repo, &copied, &src, &tmp.path().join("r-copied"));
}

#[test]
fn a_config_of_format_version_4_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let repo = init(&dir, &tmp.path().join("cache"), 2);
    let Config::V1(mut c) = repo.config().clone();
    c.format_version = 4;
    c.previous = Some(*blake3::hash(&std::fs::read(dir.join("config/0000000001")).unwrap()).as_bytes());
    let bytes = object::encode_config(repo.keys(), 2, &Config::V1(c)).unwrap();
    repo.backend().write_new(&Object::Config(2).path(), &bytes).unwrap();
    drop(repo);
    let e = Repository::open(local(&dir), b"pw", &opts(&tmp.path().join("cache2"))).err().expect("refused");
    assert!(
        matches!(&e, Error::RepoInvalid { reason, .. } if reason.contains("format version 4 is not supported")),
        "{e}"
    );
    assert_eq!(e.exit_code(), 10, "docs/cli-contract.md: a repository this version cannot read");
}

#[test]
fn directory_parts_are_bounded_by_their_inline_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    // 2,500 files of 1 KiB: 2.5 MiB of inline content in one directory of fewer than 4096 entries.
    for i in 0..2500u64 {
        write(&src.join(format!("f{i:04}")), &bytes(i, 1024));
    }
    let repo = init(&tmp.path().join("repo"), &tmp.path().join("cache"), 2);
    let snap = backup_of(&repo, &src).snapshot_id.unwrap();
    let node = cairn::browse::find(&repo, &repo.load_snapshot(&snap).unwrap().root(), &src).unwrap().unwrap();
    let NodeKind::Dir { tree } = node.kind else { panic!("not a directory") };
    // Parts of 1 MiB of inline bytes: 1024, 1024 and 452 files.
    let mut sizes = Vec::new();
    let mut next = Some(tree);
    while let Some(part) = next {
        let plain = repo.read_blob(BlobKind::Tree, &part).unwrap();
        let TreeBlob::DirV1 { nodes, next: n } = TreeBlob::decode(&plain).unwrap() else { panic!("a chunk list") };
        sizes.push(nodes.len());
        next = n;
    }
    assert_eq!(sizes, [1024, 1024, 452]);
    assert_eq!(read_dir(&repo, &tree).unwrap().len(), 2500);
    restore_matches(&repo, &snap, &src, &tmp.path().join("r"));
}

/// A snapshot written by a write-only key whose directory `/d` holds `evil`, and a good file.
fn hostile(tmp: &Path, evil: Node) -> (ReadRepository, SnapshotId, BlobId) {
    let mut dir_id = BlobId([0; 32]);
    let (repo, snap) = write_only_snapshot(&tmp.join("repo"), &tmp.join("cache"), |w| {
        let good = Node { size: 2, ..Node::bare(b"good", NodeKind::File { content: Content::Inline(b"ok".to_vec()) }) };
        let d = w.store(BlobKind::Tree, &TreeBlob::DirV1 { nodes: vec![evil, good], next: None }.encode())?.0;
        dir_id = d;
        let dnode = Node { mode: 0o755, ..Node::bare(b"d", NodeKind::Dir { tree: d }) };
        Ok(w.store(BlobKind::Tree, &TreeBlob::DirV1 { nodes: vec![dnode], next: None }.encode())?.0)
    });
    (repo, snap, dir_id)
}

#[test]
fn hostile_inline_content_is_refused_naming_the_tree_blob_and_the_path() {
    let too_long = Node {
        size: MAX_INLINE as u64 + 1,
        ..Node::bare(b"evil", NodeKind::File { content: Content::Inline(vec![7; MAX_INLINE + 1]) })
    };
    let wrong_size =
        Node { size: 1 << 30, ..Node::bare(b"evil", NodeKind::File { content: Content::Inline(vec![7; 10]) }) };
    for (evil, why) in
        [(too_long, "more than the limit of 4096"), (wrong_size, "inline content of 10 bytes for a size of")]
    {
        let tmp = tempfile::tempdir().unwrap();
        let (repo, snap, dir) = hostile(tmp.path(), evil);
        let root = repo.load_snapshot(&snap).unwrap().root();
        let o = RestoreOptions { target: tmp.path().join("t"), ..Default::default() };
        let e = restore(&repo, &root, None, &o, &NoRestoreProgress).unwrap_err().to_string();
        assert!(e.contains(&dir.to_string()) && e.contains("/d") && e.contains(why), "{e}");
        assert!(!tmp.path().join("t/d/evil").exists());
        let report = check(&repo, &CheckOptions::default()).unwrap();
        let f = report.findings.iter().find(|f| f.message.contains(why)).expect("check reports it");
        assert!(f.object.contains(&dir.to_string()), "{f:?}");
    }
}

/// A small file that grows past the threshold between the walk's `lstat` and its read is chunked with everything
/// read (the bytes read to tell it apart included), an empty one that grows is stored inline, one that shrinks keeps
/// what it holds; each is reported as changed while read and restores byte for byte as it was when read.
#[test]
fn files_that_change_size_between_the_stat_and_the_read_are_stored_as_read() {
    use cairn::backup::WalkHook;
    use std::sync::Arc;
    let tmp = tempfile::tempdir().unwrap();
    let (src, t) = (tmp.path().join("src"), tmp.path());
    write(&src.join("grows"), &bytes(1, 10));
    write(&src.join("empty-grows"), b"");
    write(&src.join("shrinks"), &bytes(3, T));
    write(&src.join("kept"), &bytes(4, 20));
    let (grown, filled, shrunk) = (bytes(5, 3 * T + 7), bytes(6, 99), bytes(7, 5));
    let expect: BTreeMap<&str, Vec<u8>> =
        [("grows", grown.clone()), ("empty-grows", filled.clone()), ("shrinks", shrunk.clone())].into();
    let s = src.clone();
    let hook = move |p: &Path| {
        if let Some(new) = p.strip_prefix(&s).ok().and_then(|r| r.to_str()).and_then(|r| expect.get(r)) {
            std::fs::write(p, new).unwrap();
        }
    };
    let repo = init(&t.join("repo"), &t.join("cache"), 3);
    let o = BackupOptions { test_before_open: Some(WalkHook(Arc::new(hook))), ..BackupOptions::default() };
    let r = backup(&repo, vec![BackupSource::Paths(vec![src.clone()])], &o, &NoProgress).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let mut warned: Vec<PathBuf> = r.warnings.iter().map(|w| PathBuf::from(&w.path)).collect();
    warned.sort();
    assert_eq!(warned, [src.join("empty-grows"), src.join("grows"), src.join("shrinks")], "{:?}", r.warnings);
    assert!(r.warnings.iter().all(|w| w.message.contains("changed while it was read")), "{:?}", r.warnings);

    let id = r.snapshot_id.unwrap();
    let c = contents(&repo, &id);
    assert!(matches!(&c[&src.join("grows")], Content::Chunks(ids) if !ids.is_empty()), "{:?}", c);
    assert_eq!(c[&src.join("empty-grows")], Content::Inline(filled.clone()));
    assert_eq!(c[&src.join("shrinks")], Content::Inline(shrunk.clone()));
    assert_eq!(c[&src.join("kept")], Content::Inline(bytes(4, 20)));

    let target = t.join("restored");
    let root = repo.load_snapshot(&id).unwrap().root();
    let ro = RestoreOptions { target: target.clone(), ..Default::default() };
    let rr = restore(&repo, &root, None, &ro, &NoRestoreProgress).unwrap();
    assert!(rr.errors.is_empty(), "{:?}", rr.errors);
    let got = files(&target.join(src.strip_prefix("/").unwrap()));
    assert_eq!(got[Path::new("grows")], grown);
    assert_eq!(got[Path::new("empty-grows")], filled);
    assert_eq!(got[Path::new("shrinks")], shrunk);
    assert_eq!(got[Path::new("kept")], bytes(4, 20));
}
