//! Backup + restore must give back every kind of entry with all its metadata: the restored tree under
//! `target/<absolute source path>` has the same manifest as the source.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use proptest::prelude::*;

use crate::common::*;
use crate::manifest::{assert_manifest_eq, Kind, Manifest};

const SPARSE_SIZE: u64 = 64 * MIB as u64;

/// What the file system of the temp dir let us create.
struct Built {
    xattrs: bool,
    devices: bool,
    sparse: bool,
}

fn mknod(path: &Path, mode: u32, dev: libc::dev_t) -> Result<(), std::io::Error> {
    let c = cstring(path);
    // SAFETY: valid NUL-terminated path.
    if unsafe { libc::mknod(c.as_ptr(), mode as libc::mode_t, dev) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn mkfifo(path: &Path, mode: u32) {
    let c = cstring(path);
    // SAFETY: valid NUL-terminated path.
    let r = unsafe { libc::mkfifo(c.as_ptr(), mode as libc::mode_t) };
    assert_eq!(r, 0, "mkfifo {path:?}: {}", std::io::Error::last_os_error());
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap_or_else(|e| panic!("lchown {path:?}: {e}"));
}

fn symlink(target: impl AsRef<OsStr>, link: &Path) {
    std::os::unix::fs::symlink(target.as_ref(), link).unwrap_or_else(|e| panic!("symlink {link:?}: {e}"));
}

/// Sets an extended attribute; returns false if the file system does not support `user.*` attributes.
fn try_xattr(path: &Path, name: &str, value: &[u8]) -> bool {
    match xattr::set(path, name, value) {
        Ok(()) => true,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::EPERM)) => false,
        Err(e) => panic!("setxattr {path:?} {name}: {e}"),
    }
}

/// Gives every entry under and including `root` a distinct mtime (in the past) and atime (in the future, so that
/// reads under `relatime` do not move it), both with nanoseconds; deepest entries first so that a directory's
/// times are set after its content stopped changing.
fn stamp_times(root: &Path, seed: u64) {
    let mut rels = walk(root);
    rels.push(Vec::new());
    rels.sort_by_key(|r| {
        std::cmp::Reverse(if r.is_empty() { 0 } else { r.iter().filter(|&&b| b == b'/').count() + 1 })
    });
    let future = now_secs() + 30 * 86_400;
    for (i, rel) in rels.iter().enumerate() {
        let i = i as i64 + seed as i64 % 1000;
        let mtime = (1_300_000_000 + i * 86_413, (i * 123_456_789 + 7) % 1_000_000_000);
        let atime = (future + i * 3_607, (i * 987_654_321 + 11) % 1_000_000_000);
        set_times(&join_rel(root, rel), Some(atime), Some(mtime));
    }
}

/// A tree with every kind of entry and metadata cairn must keep.
fn build_full_tree(src: &Path) -> Built {
    let mut built = Built { xattrs: true, devices: true, sparse: true };

    // Regular files.
    write_file(&src.join("empty"), b"");
    write_file(&src.join("small.txt"), b"hello cairn\n");
    write_file(&src.join("random.bin"), &random_bytes(1, 3 * MIB + 12_345));
    write_file(&src.join("text.log"), &compressible_bytes(2, 3 * MIB + 777));
    write_file(&src.join(OsStr::from_bytes(b"caf\xe9")), b"latin-1 name\n");
    write_file(&src.join(OsStr::from_bytes(b"dir\xff\xfe")).join("inner"), &random_bytes(3, 1000));
    write_file(&src.join("nested/a/b/c/deep.txt"), b"deep\n");
    fs::create_dir_all(src.join("nested/empty-dir")).unwrap();
    chmod(&src.join("nested/empty-dir"), 0o700);

    // Symlinks: relative, absolute, dangling, to a directory, and one owned by an odd user.
    fs::create_dir(src.join("links")).unwrap();
    symlink("../small.txt", &src.join("links/rel"));
    symlink(src.join("small.txt"), &src.join("links/abs"));
    symlink("does/not/exist", &src.join("links/dangling"));
    symlink("../nested", &src.join("links/dir-link"));
    symlink(OsStr::from_bytes(b"target-\xe9\x01"), &src.join("links/odd-target"));
    chown(&src.join("links/dangling"), 777, 888);

    // A group of three hard links across two directories.
    write_file(&src.join("hard/h1"), &random_bytes(4, 100 * KIB));
    fs::hard_link(src.join("hard/h1"), src.join("hard/h2")).unwrap();
    fs::create_dir(src.join("other")).unwrap();
    fs::hard_link(src.join("hard/h1"), src.join("other/h3")).unwrap();
    chown(&src.join("hard/h1"), 2000, 3000);
    chmod(&src.join("hard/h1"), 0o640);

    // A sparse file: 64 MiB with three small data regions.
    {
        let f = fs::File::create(src.join("sparse.img")).unwrap();
        f.set_len(SPARSE_SIZE).unwrap();
        f.write_all_at(&random_bytes(5, 4096), 0).unwrap();
        f.write_all_at(&random_bytes(6, 64 * KIB), 20 * MIB as u64).unwrap();
        f.write_all_at(&random_bytes(7, 4096), SPARSE_SIZE - 4096).unwrap();
        f.sync_all().unwrap();
        let md = f.metadata().unwrap();
        if md.blocks() * 512 > 8 * MIB as u64 {
            println!("NOTE: the temp dir's file system does not keep holes; sparse restore is not checked");
            built.sparse = false;
        }
    }

    // A FIFO and device nodes.
    mkfifo(&src.join("fifo"), 0o640);
    chmod(&src.join("fifo"), 0o640);
    chown(&src.join("fifo"), 1001, 1002);
    fs::create_dir(src.join("devices")).unwrap();
    let (null_dev, loop_dev) = (libc::makedev(1, 3), libc::makedev(7, 200));
    match mknod(&src.join("devices/null-like"), libc::S_IFCHR | 0o620, null_dev) {
        Ok(()) => {
            mknod(&src.join("devices/loop-like"), libc::S_IFBLK | 0o660, loop_dev)
                .unwrap_or_else(|e| panic!("mknod block device: {e}"));
            chown(&src.join("devices/null-like"), 0, 5);
            chmod(&src.join("devices/null-like"), 0o620);
            chmod(&src.join("devices/loop-like"), 0o660);
        }
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            println!("NOTE: mknod is not permitted here (EPERM); device nodes are not checked");
            built.devices = false;
        }
        Err(e) => panic!("mknod: {e}"),
    }

    // Permissions and owners (chown before chmod: chown clears setuid/setgid).
    let perms = src.join("perms");
    fs::create_dir(&perms).unwrap();
    write_file(&perms.join("setuid"), b"#!/bin/sh\n");
    chown(&perms.join("setuid"), 12345, 54321);
    chmod(&perms.join("setuid"), 0o4755);
    write_file(&perms.join("setgid"), b"#!/bin/sh\n");
    chmod(&perms.join("setgid"), 0o2711);
    write_file(&perms.join("private"), b"secret\n");
    chmod(&perms.join("private"), 0o600);
    write_file(&perms.join("exec"), b"#!/bin/sh\necho hi\n");
    chmod(&perms.join("exec"), 0o755);
    write_file(&perms.join("nothing"), b"no permission bits\n");
    chmod(&perms.join("nothing"), 0o000);
    fs::create_dir(perms.join("sticky")).unwrap();
    chmod(&perms.join("sticky"), 0o1777);
    fs::create_dir(perms.join("setgid-dir")).unwrap();
    chmod(&perms.join("setgid-dir"), 0o2750);
    fs::create_dir(perms.join("odd-owner")).unwrap();
    write_file(&perms.join("odd-owner/file"), b"owned by nobody we know\n");
    chown(&perms.join("odd-owner/file"), 65000, 65001);
    chown(&perms.join("odd-owner"), 4242, 4343);
    chmod(&perms.join("odd-owner"), 0o751);
    chown(&src.join(OsStr::from_bytes(b"caf\xe9")), 31337, 31338);

    // Extended attributes (on files, a directory, a hard-linked inode and a non-UTF-8 name).
    let xattrs: [(&Path, &str, &[u8]); 6] = [
        (&src.join("random.bin"), "user.comment", b"random data"),
        (&src.join("small.txt"), "user.empty", b""),
        (&src.join("small.txt"), "user.binary", b"\x00\xff\x01\x02 bytes"),
        (&src.join("nested"), "user.dir", b"a directory attribute"),
        (&src.join("hard/h1"), "user.linked", b"one inode, three names"),
        (&src.join(OsStr::from_bytes(b"caf\xe9")), "user.caf\u{e9}", b"utf-8 attribute name"),
    ];
    for (path, name, value) in xattrs {
        if !try_xattr(path, name, value) {
            println!("NOTE: the temp dir's file system does not support user.* xattrs; xattrs are not checked");
            built.xattrs = false;
            break;
        }
    }

    chmod(src, 0o750);
    stamp_times(src, 0);
    built
}

#[test]
fn roundtrip_keeps_every_kind_of_entry_and_its_metadata() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    let built = build_full_tree(&src);

    let before = Manifest::capture(&src);
    // The tree is what we meant it to be (so that a pass below means something).
    assert_eq!(before.get(b"fifo").kind, Kind::Fifo);
    assert_eq!(before.get(b"perms/setuid").mode & 0o7777, 0o4755);
    assert_eq!(before.get(b"perms/sticky").mode & 0o7777, 0o1777);
    assert_eq!(before.get(b"perms/odd-owner").uid, 4242);
    assert_eq!(before.get(b"links/dangling").kind, Kind::Symlink);
    assert_eq!(before.get(b"links/dangling").uid, 777);
    assert_ne!(before.get(b"random.bin").mtime_ns % 1_000_000_000, 0);
    let group: BTreeSet<Vec<u8>> = [&b"hard/h1"[..], b"hard/h2", b"other/h3"].iter().map(|r| r.to_vec()).collect();
    assert!(before.hardlinks.contains(&group), "hard link group not built: {:?}", before.hardlinks);
    if built.devices {
        assert_eq!(before.get(b"devices/null-like").kind, Kind::CharDev);
        assert_eq!(before.get(b"devices/loop-like").kind, Kind::BlockDev);
    }
    if built.xattrs {
        assert_eq!(before.get(b"nested").xattrs.len(), 1);
    }

    let summary = repo.backup(&[&src], &[]);
    assert_eq!(summary["errors"].as_array().map(Vec::len), Some(0), "backup reported errors: {summary}");
    let id = string(&summary, "snapshot_id");

    let target = repo.mkdir("restore");
    repo.restore(&id, &target);
    let restored = restored_path(&target, &src);
    let after = Manifest::capture(&restored);
    assert_manifest_eq(&before, &after, "restored tree vs. source");

    // Hard links: the three restored names are one inode.
    let inos: BTreeSet<(u64, u64)> = ["hard/h1", "hard/h2", "other/h3"]
        .iter()
        .map(|r| {
            let md = fs::symlink_metadata(restored.join(r)).unwrap();
            (md.dev(), md.ino())
        })
        .collect();
    assert_eq!(inos.len(), 1, "restored hard links are not one inode: {inos:?}");
    assert_eq!(fs::symlink_metadata(restored.join("hard/h1")).unwrap().nlink(), 3);

    // The sparse file is restored sparse: far fewer bytes allocated than its size.
    if built.sparse {
        let md = fs::symlink_metadata(restored.join("sparse.img")).unwrap();
        assert_eq!(md.size(), SPARSE_SIZE);
        assert!(
            md.blocks() * 512 < 24 * MIB as u64,
            "restored sparse file allocates {} bytes of its {} (holes not kept)",
            md.blocks() * 512,
            SPARSE_SIZE
        );
    }

    // The source was not changed by the backup (apart from ctime).
    let source_after = Manifest::capture(&src);
    assert_manifest_eq(&before, &source_after, "source tree after backup vs. before");
}

/// Holes shorter than a chunk (64 KiB holes between 64 KiB data regions, and one 12 KiB hole) come back as holes:
/// the restored file allocates no more blocks than the original (README, "Sparse files").
#[test]
fn holes_shorter_than_a_chunk_are_restored_as_holes() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    let path = src.join("small-holes.img");
    let size = 8 * MIB as u64;
    {
        let f = fs::File::create(&path).unwrap();
        f.set_len(size).unwrap();
        let mut off = 0;
        let mut seed = 40;
        while off < size {
            f.write_all_at(&random_bytes(seed, 64 * KIB), off).unwrap();
            off += 128 * KIB as u64;
            seed += 1;
        }
        // A 12 KiB hole between two 4 KiB pieces inside one data region's neighbourhood.
        f.write_all_at(&random_bytes(99, 4 * KIB), 68 * KIB as u64).unwrap();
        f.write_all_at(&random_bytes(98, 4 * KIB), 84 * KIB as u64).unwrap();
        f.sync_all().unwrap();
    }
    let original = fs::metadata(&path).unwrap().blocks() * 512;
    if original > 5 * MIB as u64 {
        println!("NOTE: the temp dir's file system does not keep holes; sparse restore is not checked");
        return;
    }
    repo.backup(&[&src], &[]);
    let target = repo.mkdir("t");
    repo.restore("latest", &target);
    let restored_file = restored_path(&target, &src).join("small-holes.img");
    assert_eq!(file_digest(&restored_file), file_digest(&path), "content differs");
    let restored = fs::metadata(&restored_file).unwrap().blocks() * 512;
    assert!(
        restored <= original,
        "the restored file allocates {restored} bytes, the original {original} (of {size}): holes were filled"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Random trees

#[derive(Debug, Clone)]
enum Node {
    File { len: usize, seed: u64, mode: u32 },
    Symlink(Vec<u8>),
    Dir { mode: u32, children: Vec<(Vec<u8>, Node)> },
}

fn name_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Printable ASCII.
        prop::collection::vec(prop::sample::select(b"abcdefghijklmnopqrstuvwxyz0123456789._- ".to_vec()), 1..12),
        // Any bytes but NUL and '/': mostly not UTF-8.
        prop::collection::vec(1u8..=255, 1..12),
    ]
    .prop_map(|v| v.into_iter().map(|b| if b == b'/' { b'%' } else { b }).collect::<Vec<u8>>())
    .prop_filter("not . or ..", |n| n != b"." && n != b"..")
}

fn len_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![Just(0usize), 1usize..4096, 4096usize..300 * KIB]
}

fn node_strategy() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        4 => (len_strategy(), any::<u64>(), 0u32..0o10000).prop_map(|(len, seed, mode)| Node::File { len, seed, mode }),
        1 => prop::collection::vec(1u8..=255, 1..40).prop_map(Node::Symlink),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        (0u32..0o10000, prop::collection::vec((name_strategy(), inner), 0..6))
            .prop_map(|(mode, children)| Node::Dir { mode, children })
    })
}

fn materialize(path: &Path, node: &Node) {
    match node {
        Node::File { len, seed, mode } => {
            write_file(path, &random_bytes(*seed, *len));
            chmod(path, *mode);
        }
        Node::Symlink(target) => symlink(OsStr::from_bytes(target), path),
        Node::Dir { mode, children } => {
            fs::create_dir(path).unwrap();
            let mut seen = BTreeSet::new();
            for (name, child) in children {
                if seen.insert(name.clone()) {
                    materialize(&path.join(OsStr::from_bytes(name)), child);
                }
            }
            chmod(path, *mode);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 6,
        max_shrink_iters: 40,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn roundtrip_random_trees(
        children in prop::collection::vec((name_strategy(), node_strategy()), 1..8),
        time_seed in 0u64..1000,
    ) {
        let repo = Repo::new();
        let src = repo.mkdir("src");
        let mut seen = BTreeSet::new();
        for (name, node) in &children {
            if seen.insert(name.clone()) {
                materialize(&src.join(OsStr::from_bytes(name)), node);
            }
        }
        stamp_times(&src, time_seed);
        let before = Manifest::capture(&src);

        let summary = repo.backup(&[&src], &[]);
        let id = string(&summary, "snapshot_id");
        let target = repo.mkdir("restore");
        repo.restore(&id, &target);
        let after = Manifest::capture(&restored_path(&target, &src));
        let diff = Manifest::diff(&before, &after);
        prop_assert!(diff.is_empty(), "restored tree differs from the source:\n{}\nsource:\n{}", diff.join("\n"), before);
    }
}
