//! The filesystem model of `cairn mount` without FUSE ([`cairn::mount::MountFs`]): the virtual directories, lookups
//! down a snapshot's tree, hardlinks as one inode, reads at any offset through a blob cache that stays within its
//! budget, inodes dropped when the kernel forgets them; and hostile trees written by a write-only key (a doubling
//! DAG, a chunk-list bomb) cost what is looked up and one chunk list, never the expansion (format-spec §7.5).

use super::alloc::measure;
use super::fixtures::{bytes, init_local, snapshot_of, write, write_only_snapshot};
use cairn::id::BlobKind;
use cairn::mount::{Kind, MountFs, ROOT};
use cairn::repository::ReadRepository;
use cairn::select::{list_all, Filter};
use cairn::tree::{Content, Node, NodeKind, TreeBlob, CHUNK_LIST_LEN};
use cairn::trees::write_dir;

/// The inode at `path` (relative, `/`-separated) below `from`.
fn walk(fs: &MountFs, from: u64, path: &str) -> cairn::Result<u64> {
    let mut ino = from;
    for c in path.split('/').filter(|c| !c.is_empty()) {
        ino = fs.lookup(ino, c.as_bytes())?.ino;
    }
    Ok(ino)
}

fn names(fs: &MountFs, ino: u64) -> Vec<String> {
    fs.readdir(ino).unwrap().into_iter().map(|(n, _, _)| String::from_utf8(n).unwrap()).collect()
}

fn mounted(repo: &ReadRepository, cache: u64) -> MountFs {
    MountFs::new(repo.clone(), Filter::default().entries(repo).unwrap(), cache, (0, 0))
}

#[test]
fn the_model_reads_every_byte_at_any_offset_within_its_cache_budget_and_forgets_inodes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let big = bytes(3, 5 << 20);
    write(&src.join("big.bin"), &big);
    write(&src.join("d/a.txt"), b"alpha\n");
    std::fs::hard_link(src.join("d/a.txt"), src.join("d/b.txt")).unwrap();
    let repo = init_local(&tmp.path().join("repo"), b"pw", &tmp.path().join("cache"));
    let sid = snapshot_of(&repo, &src);
    let fs = mounted(&repo, 1 << 20);
    assert_eq!(names(&fs, ROOT), ["hosts", "ids", "latest", "snapshots", "tags"]);
    let latest = fs.lookup(ROOT, b"latest").unwrap();
    assert_eq!(latest.kind, Kind::Symlink);
    let target = String::from_utf8(fs.readlink(latest.ino).unwrap()).unwrap();
    let base = src.strip_prefix("/").unwrap().to_str().unwrap();
    let by_id = walk(&fs, ROOT, &format!("ids/{}", sid.short())).unwrap();
    let by_time = walk(&fs, ROOT, &target).unwrap();
    for snap_dir in [by_id, by_time] {
        let file = walk(&fs, snap_dir, &format!("{base}/big.bin")).unwrap();
        assert_eq!(fs.getattr(file).unwrap().size, big.len() as u64);
        let fh = fs.open(file).unwrap();
        // Reads across chunk boundaries and past the end.
        for (off, len) in [(0u64, 4096u64), (1_000_003, 2_000_000), ((5 << 20) - 10, 4096), (5 << 20, 10)] {
            let got = fs.read(fh, off, len).unwrap();
            let end = (off + len).min(big.len() as u64) as usize;
            assert_eq!(got, &big[off as usize..end], "at {off}+{len}");
            assert!(fs.cached_bytes() <= 1 << 20, "the blob cache stays within its budget");
        }
        fs.release(fh);
        assert!(fs.read(fh, 0, 1).is_err(), "a released handle reads nothing");
        let a = walk(&fs, snap_dir, &format!("{base}/d/a.txt")).unwrap();
        let b = walk(&fs, snap_dir, &format!("{base}/d/b.txt")).unwrap();
        assert_eq!(a, b, "a hardlink pair is one inode");
        let fh = fs.open(a).unwrap();
        assert_eq!(fs.read(fh, 0, 100).unwrap(), b"alpha\n");
    }
    let d = walk(&fs, by_id, &format!("{base}/d")).unwrap();
    assert!(matches!(fs.lookup(d, b"missing"), Err(cairn::Error::NotFound(_))));
    assert!(fs.lookup(walk(&fs, d, "a.txt").unwrap(), b"x").is_err(), "a file has no entries");
    // The kernel forgets what it looked up: content inodes go, the mount's own stay.
    let before = fs.inodes();
    let a = walk(&fs, d, "a.txt").unwrap();
    fs.forget(a, u64::MAX);
    assert!(fs.getattr(a).is_err(), "forgotten");
    assert_eq!(fs.inodes(), before - 1);
    fs.forget(ROOT, u64::MAX);
    assert!(fs.getattr(ROOT).is_ok(), "the mount's own inodes stay");
}

#[test]
fn a_doubling_dag_and_a_chunk_list_bomb_cost_what_is_looked_up() {
    let tmp = tempfile::tempdir().unwrap();
    // 23 tree blobs naming 2^23 - 2 paths, and a file of 64 references to one list of 65536 references to one
    // 4 KiB chunk (1 TiB).
    let (repo, _) = write_only_snapshot(&tmp.path().join("r"), &tmp.path().join("c"), |w| {
        let mut t = write_dir(w, vec![])?;
        for _ in 0..22 {
            let d = |n: &str| Node { mode: 0o755, ..Node::bare(n.as_bytes(), NodeKind::Dir { tree: t }) };
            t = write_dir(w, vec![d("a"), d("b")])?;
        }
        let (chunk, _) = w.store(BlobKind::Data, &[7u8; 4096])?;
        let list = w.store(BlobKind::Tree, &TreeBlob::ChunkListV1 { ids: vec![chunk; CHUNK_LIST_LEN] }.encode())?.0;
        let count = (64 * CHUNK_LIST_LEN) as u64;
        let content = Content::Indirect { lists: vec![list; 64], count };
        let bomb = Node { size: count * 4096, ..Node::bare(b"bomb", NodeKind::File { content }) };
        let dag = Node { mode: 0o755, ..Node::bare(b"dag", NodeKind::Dir { tree: t }) };
        write_dir(w, vec![bomb, dag])
    });
    assert_eq!(list_all(&repo).unwrap().len(), 1);
    let fs = mounted(&repo, 1 << 20);
    let snap = walk(&fs, ROOT, "latest").map(|l| String::from_utf8(fs.readlink(l).unwrap()).unwrap()).unwrap();
    let root = walk(&fs, ROOT, &snap).unwrap();
    let (deep, used) = measure(|| {
        let path: Vec<&str> = (0..22).map(|i| if i % 2 == 0 { "a" } else { "b" }).collect();
        let deep = walk(&fs, root, &format!("dag/{}", path.join("/"))).unwrap();
        assert!(names(&fs, deep).is_empty());
        deep
    });
    assert!(deep > root);
    assert!(used.peak < 4 << 20, "22 lookups down a DAG of 8 Mi paths allocated {used:?}");
    let before = fs.inodes();
    assert!(before < 64, "only what was looked up has an inode: {before}");
    let (got, used) = measure(|| {
        let bomb = walk(&fs, root, "bomb").unwrap();
        let fh = fs.open(bomb).unwrap();
        fs.read(fh, (64 * CHUNK_LIST_LEN as u64 - 1) * 4096 + 100, 8192).unwrap()
    });
    assert_eq!(got, vec![7u8; 4096 - 100], "the last bytes of the 1 TiB file");
    // One list's table (65536 × 40 bytes) and its ids, not 4 Mi entries.
    assert!(used.peak < 16 << 20, "opening and reading the bomb allocated {used:?}");
}
