//! The files cache's directory records (`cairn::filescache`): an unchanged backup takes every file from them and
//! stores the same trees, a file whose ctime, inode or extended attributes moved is read again even with the same
//! size and mtime, and the shortcut that skips per-blob lookups (a session whose blobs the blob map holds) is not
//! taken once prune has removed blobs from the index or while a mark condemns packs (format-spec §10.3).

use super::fixtures::{bytes, eager_prune, init_local, restore_matches, write};
use cairn::backup::{backup, BackupOptions, BackupResult, BackupSource, NoProgress};
use cairn::check::{check, CheckOptions, ReadData};
use cairn::id::BlobId;
use cairn::prune::{run, PruneOptions};
use cairn::repository::ReadRepository;
use cairn::tree::{NodeKind, TreeBlob};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

fn backup_of(repo: &ReadRepository, src: &Path) -> BackupResult {
    backup(repo, vec![BackupSource::Paths(vec![src.to_path_buf()])], &BackupOptions::default(), &NoProgress).unwrap()
}

/// A tree of small files in nested directories, old enough not to be racily clean.
fn tree(src: &Path) -> u64 {
    let mut n = 0;
    for (dir, count) in [("", 3u64), ("a", 5), ("a/b", 4), ("c", 2)] {
        for i in 0..count {
            // Larger than the inline threshold (format-spec §7.3): each file is a data blob.
            write(&src.join(dir).join(format!("f{i}")), &bytes(n, 2000 + i as usize));
            n += 1;
        }
    }
    std::thread::sleep(Duration::from_millis(150));
    n
}

/// The tree id of the directory `src` in the snapshot `r` made (its ancestors' metadata may differ between runs).
fn tree_of(repo: &ReadRepository, r: &BackupResult, src: &Path) -> BlobId {
    let mut id = repo.load_snapshot(&r.snapshot_id.unwrap()).unwrap().root();
    for c in src.strip_prefix("/").unwrap().components() {
        let TreeBlob::DirV1 { nodes, next: None } = repo.read_tree_blob(&id).unwrap() else { panic!("one part") };
        let node = nodes.into_iter().find(|n| n.name == c.as_os_str().as_bytes()).unwrap();
        let NodeKind::Dir { tree } = node.kind else { panic!("a directory") };
        id = tree;
    }
    id
}

#[test]
fn an_unchanged_backup_takes_every_file_from_the_directory_records_and_stores_the_same_trees() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let n = tree(&src);
    let repo = init_local(&tmp.path().join("repo"), b"pw", &tmp.path().join("cache"));
    let first = backup_of(&repo, &src);
    assert_eq!(first.summary.files_new, n, "{:?}", first.summary);
    // One record per directory, naming its files in order.
    let rec = repo.cache().dir_files_get(src.join("a").as_os_str().as_bytes()).unwrap().expect("a record of src/a");
    let names: Vec<&[u8]> = rec.files.iter().map(|f| f.name.as_slice()).collect();
    assert_eq!(names, [&b"f0"[..], b"f1", b"f2", b"f3", b"f4"]);
    assert!(repo.cache().indexed_sessions().unwrap().contains(&rec.files[0].session), "the session was recorded");
    // (Nothing reads the source files before the last backup: a read would move their atime.)
    let mut again = Vec::new();
    for round in 0..2 {
        let r = backup_of(&repo, &src);
        let s = &r.summary;
        assert_eq!((s.files_unchanged, s.files_new, s.files_changed), (n, 0, 0), "round {round}: {s:?}");
        assert_eq!(tree_of(&repo, &r, &src), tree_of(&repo, &first, &src), "round {round}: the same trees");
        again.push(r.snapshot_id.unwrap());
    }
    for (round, snap) in again.iter().enumerate() {
        restore_matches(&repo, snap, &src, &tmp.path().join(format!("r{round}")));
    }
    // The records are not rewritten when nothing changed: the sessions stay the first backup's.
    let rec2 = repo.cache().dir_files_get(src.join("a").as_os_str().as_bytes()).unwrap().unwrap();
    assert_eq!(rec2, rec);
}

/// The nodes an unchanged backup makes from the records (the builder decodes each entry the walker only compared)
/// are the nodes a first backup made: inline content, data blobs, extended attributes, a hardlink group and owner
/// names included, so every tree is the same; and the snapshot restores byte for byte.
#[test]
fn files_taken_from_the_records_make_the_nodes_a_first_backup_made() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("big.bin"), &bytes(1, 3000));
    write(&src.join("small.txt"), b"inline bytes");
    write(&src.join("sub/tiny"), b"x");
    write(&src.join("xattr.txt"), &bytes(2, 300));
    let xattrs = xattr::set(src.join("xattr.txt"), "user.cairn", b"kept").is_ok();
    write(&src.join("h1"), &bytes(3, 2500));
    std::fs::hard_link(src.join("h1"), src.join("h2")).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let repo = init_local(&tmp.path().join("repo"), b"pw", &tmp.path().join("cache"));
    let first = backup_of(&repo, &src);
    // h2 is the second name of h1's group: not counted as a file of its own.
    assert_eq!(first.summary.files_new, 5, "{:?}", first.summary);
    let second = backup_of(&repo, &src);
    assert_eq!((second.summary.files_unchanged, second.summary.files_new), (5, 0), "{:?}", second.summary);
    assert_eq!(tree_of(&repo, &second, &src), tree_of(&repo, &first, &src), "the same nodes, so the same trees");
    let root = repo.read_tree_blob(&tree_of(&repo, &second, &src)).unwrap();
    let TreeBlob::DirV1 { nodes, .. } = root else { panic!("one part") };
    let node = |name: &str| nodes.iter().find(|n| n.name == name.as_bytes()).unwrap().clone();
    assert!(
        matches!(node("small.txt").kind, NodeKind::File { content: cairn::tree::Content::Inline(ref b) } if b == b"inline bytes")
    );
    assert!(node("h1").hardlink != 0 && node("h1").hardlink == node("h2").hardlink);
    if xattrs {
        assert_eq!(node("xattr.txt").xattrs, [(b"user.cairn".to_vec(), b"kept".to_vec())]);
    }
    restore_matches(&repo, &second.snapshot_id.unwrap(), &src, &tmp.path().join("r"));
}

#[test]
fn same_size_and_mtime_but_a_new_ctime_inode_or_xattr_is_read_again() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for name in ["content", "inode", "xattr", "same"] {
        write(&src.join(name), &bytes(name.len() as u64, 100));
        std::fs::File::options().write(true).open(src.join(name)).unwrap().set_modified(old).unwrap();
    }
    let xattrs = xattr::set(src.join("xattr"), "user.cairn", b"one").is_ok();
    std::thread::sleep(Duration::from_millis(150));
    let repo = init_local(&tmp.path().join("repo"), b"pw", &tmp.path().join("cache"));
    backup_of(&repo, &src);
    // Same size and mtime, new bytes (ctime moves).
    std::fs::write(src.join("content"), bytes(100, 100)).unwrap();
    std::fs::File::options().write(true).open(src.join("content")).unwrap().set_modified(old).unwrap();
    // Same size and mtime, another file renamed over it (a new inode).
    write(&tmp.path().join("new"), &bytes(101, 100));
    std::fs::File::options().write(true).open(tmp.path().join("new")).unwrap().set_modified(old).unwrap();
    std::fs::rename(tmp.path().join("new"), src.join("inode")).unwrap();
    // Same bytes, size and mtime; a new extended attribute value (ctime moves).
    if xattrs {
        xattr::set(src.join("xattr"), "user.cairn", b"two").unwrap();
    } else {
        eprintln!("no user xattrs here: the xattr case is a chmod instead");
        std::fs::set_permissions(src.join("xattr"), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(150));
    let first_rec = repo.cache().dir_files_get(src.as_os_str().as_bytes()).unwrap().unwrap();
    let second = backup_of(&repo, &src);
    let s = &second.summary;
    assert_eq!((s.files_changed, s.files_unchanged), (3, 1), "{s:?}");
    // The record is written again with every file: the unchanged one as it was (its first session), the three
    // read again as now; so a third backup reads nothing.
    let rec = repo.cache().dir_files_get(src.as_os_str().as_bytes()).unwrap().unwrap();
    let names: Vec<&[u8]> = rec.files.iter().map(|f| f.name.as_slice()).collect();
    assert_eq!(names, [&b"content"[..], b"inode", b"same", b"xattr"]);
    assert_eq!(rec.find(b"same"), first_rec.find(b"same"), "kept as recorded");
    for name in [&b"content"[..], b"inode", b"xattr"] {
        let (now, then) = (rec.find(name).unwrap(), first_rec.find(name).unwrap());
        assert_ne!(now.session, then.session, "{name:?} recorded by the second backup");
    }
    let third = backup_of(&repo, &src);
    assert_eq!((third.summary.files_unchanged, third.summary.files_changed), (4, 0), "{:?}", third.summary);
    let target = tmp.path().join("restore");
    restore_matches(&repo, &second.snapshot_id.unwrap(), &src, &target);
    if xattrs {
        let restored = target.join(src.strip_prefix("/").unwrap()).join("xattr");
        assert_eq!(xattr::get(restored, "user.cairn").unwrap().as_deref(), Some(&b"two"[..]));
    }
}

#[test]
fn a_record_whose_blobs_prune_removed_is_read_again() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let n = tree(&src);
    let repo = init_local(&tmp.path().join("repo"), b"pw", &tmp.path().join("cache"));
    let first = backup_of(&repo, &src);
    // Forget it and prune to the end: its blobs leave the index and storage; the records stay in the cache.
    repo.remove_snapshot(&first.snapshot_id.unwrap()).unwrap();
    let mut o = eager_prune();
    o.break_lock = true;
    for _ in 0..4 {
        run(&repo, &o, false).unwrap();
    }
    assert!(repo.cache().dir_files_get(src.as_os_str().as_bytes()).unwrap().is_some());
    let again = backup_of(&repo, &src);
    let s = &again.summary;
    assert_eq!((s.files_changed, s.files_unchanged), (n, 0), "every file read again: {s:?}");
    assert!(s.blobs_added >= n, "{s:?}");
    assert_eq!(check(&repo, &CheckOptions { read_data: ReadData::All }).unwrap().errors(), 0);
    restore_matches(&repo, &again.snapshot_id.unwrap(), &src, &tmp.path().join("restore"));
}

#[test]
fn a_record_is_not_trusted_while_a_mark_condemns_its_packs() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let n = tree(&src);
    let repo = init_local(&tmp.path().join("repo"), b"pw", &tmp.path().join("cache"));
    let first = backup_of(&repo, &src);
    repo.remove_snapshot(&first.snapshot_id.unwrap()).unwrap();
    // A mark condemns every pack; the sweep waits (a long lease timeout keeps it from running).
    let o = PruneOptions { lease_timeout_secs: 3600, ..eager_prune() };
    run(&repo, &o, false).unwrap();
    let again = backup_of(&repo, &src);
    let s = &again.summary;
    assert_eq!((s.files_changed, s.files_unchanged), (n, 0), "condemned blobs are stored again: {s:?}");
    assert!(s.blobs_added >= n, "{s:?}");
}
