//! `repair snapshots` keeps every valid item when single metadata blobs are lost (the lesson of Borg #3444, whose
//! repair discarded valid items): one damaged directory tree blob costs exactly that directory's listing, and one
//! damaged part of a split directory (format-spec §7.2) costs only the entries of that part; everything else of the
//! snapshot restores byte for byte from the repaired snapshot.

use super::fixtures::{init_local, open_local, snapshot_of, write};
use cairn::check::{check, CheckOptions};
use cairn::id::{BlobId, BlobKind, SnapshotId};
use cairn::layout::pack_path;
use cairn::repair::{repair_snapshots, RepairSnapshotsOptions};
use cairn::repository::ReadRepository;
use cairn::restore::{restore, NoRestoreProgress, RestoreOptions};
use cairn::tree::{NodeKind, TreeBlob};
use std::path::Path;

fn dir_tree(repo: &ReadRepository, root: &BlobId, path: &Path) -> BlobId {
    match cairn::browse::find(repo, root, path).unwrap().unwrap().kind {
        NodeKind::Dir { tree } => tree,
        other => panic!("{path:?} is a {other:?}"),
    }
}

/// Flips a byte in the middle of a tree blob inside its pack, so that it no longer opens.
fn damage_tree_blob(repo: &ReadRepository, dir: &Path, id: &BlobId) {
    let loc = repo.locate(BlobKind::Tree, id).unwrap().remove(0);
    let pack = dir.join(pack_path(BlobKind::Tree, &loc.pack));
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[(loc.offset + loc.length as u64 / 2) as usize] ^= 0x10;
    std::fs::write(&pack, bytes).unwrap();
}

#[test]
fn one_lost_tree_blob_costs_only_what_it_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let src = base.join("src");
    write(&src.join("keep/a.txt"), b"keep me\n");
    write(&src.join("keep/b.bin"), &vec![7u8; 300 * 1024]);
    write(&src.join("lost/c.txt"), b"listed in the damaged tree\n");
    write(&src.join("lost/sub/d.txt"), b"below it\n");
    for i in 0..4100 {
        write(&src.join(format!("big/f{i:05}")), format!("file {i}\n").as_bytes());
    }
    let dir = base.join("repo");
    let repo = init_local(&dir, b"repair", &base.join("cache"));
    let original: SnapshotId = snapshot_of(&repo, &src);
    let root = repo.load_snapshot(&original).unwrap().root();

    // Damage the listing of `lost/` and the second part of `big/`.
    damage_tree_blob(&repo, &dir, &dir_tree(&repo, &root, &src.join("lost")));
    let big_first = dir_tree(&repo, &root, &src.join("big"));
    let Ok(TreeBlob::DirV1 { next: Some(big_second), .. }) = repo.read_tree_blob(&big_first) else {
        panic!("big/ must be split into parts")
    };
    damage_tree_blob(&repo, &dir, &big_second);

    // Repair runs as its own command: a new handle, which reads the damaged packs (the handle above keeps windows
    // of the tree packs it read before the damage).
    let repo = open_local(&dir, repo.keys(), repo.key_id(), &base.join("cache"));
    let report = repair_snapshots(&repo, &RepairSnapshotsOptions::default()).unwrap();
    assert_eq!(report.damaged.len(), 1, "{report:#?}");
    let d = &report.damaged[0];
    let lost: Vec<(&str, &str)> = d.lost.iter().map(|l| (l.path.as_str(), l.kind)).collect();
    let (big, lost_dir) = (src.join("big"), src.join("lost"));
    assert_eq!(lost, vec![(big.to_str().unwrap(), "dir"), (lost_dir.to_str().unwrap(), "dir")], "{report:#?}");
    assert!(d.lost[0].what.contains("4096 entries"), "{:?}", d.lost[0].what);

    let repaired = SnapshotId::from_hex(d.repaired.as_deref().unwrap()).unwrap();
    let snap = repo.load_snapshot(&repaired).unwrap();
    assert!(snap.tags().iter().any(|t| t == &format!("lost:{}/", lost_dir.display())), "{:?}", snap.tags());
    let target = base.join("restored");
    let o = RestoreOptions { target: target.clone(), ..Default::default() };
    let res = restore(&repo, &snap.root(), None, &o, &NoRestoreProgress).unwrap();
    assert!(res.errors.is_empty(), "{:?}", res.errors);
    let at = |p: &str| target.join(src.strip_prefix("/").unwrap()).join(p);
    assert_eq!(std::fs::read(at("keep/a.txt")).unwrap(), b"keep me\n");
    assert_eq!(std::fs::read(at("keep/b.bin")).unwrap(), vec![7u8; 300 * 1024]);
    assert_eq!(std::fs::read_dir(at("lost")).unwrap().count(), 0, "the lost directory is kept, empty");
    let kept: Vec<_> = std::fs::read_dir(at("big")).unwrap().collect();
    assert_eq!(kept.len(), 4096, "the readable part of big/ is kept whole");
    for i in 0..4096 {
        assert_eq!(std::fs::read(at(&format!("big/f{i:05}"))).unwrap(), format!("file {i}\n").as_bytes());
    }

    // check still reports the damaged tree pack and the original, never the repaired snapshot.
    let report = check(&repo, &CheckOptions::default()).unwrap();
    assert!(report.errors() > 0);
    for f in &report.findings {
        assert!(!f.snapshots.contains(&repaired.to_hex()), "{f:?}");
    }
}
