//! Restore in batches (format-spec §7.5, issue 11): a restore cut into many small batches gives the
//! same tree as one cut into none — contents, modes and times of files and of nested directories,
//! symlinks, hardlink groups whose members fall in different batches — and a batch of the plan
//! never holds more than its budget plus the one entry that passed it.

use super::alloc::measure;
use super::fixtures::{init_local, snapshot_of, write};
use cairn::id::BlobId;
use cairn::repository::ReadRepository;
use cairn::restore::{plan, plan_batches, plan_summary, restore, NoRestoreProgress, RestoreOptions, RestorePlan};
use cairn::tree::{entry_bytes, Limits};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Sets the modification time of `p` (a file or directory) to `secs` seconds after the epoch.
fn set_mtime(p: &Path, secs: u64) {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    std::fs::File::open(p).unwrap().set_modified(t).unwrap();
}

/// A tree of nested directories with their own modes and times, files of a few sizes (empty, a
/// hole-ended one, a large one), symlinks, and two hardlink groups whose members lie in
/// directories far apart in walk order.
fn build(src: &Path) {
    for d in 0..6 {
        for e in 0..3 {
            for f in 0..12 {
                let data = super::fixtures::bytes(d * 100 + e * 10 + f, 10 + (f as usize) * 37);
                let p = src.join(format!("d{d}/e{e}/f{f:02}"));
                write(&p, &data);
                set_mtime(&p, 1_000_000 + d * 1000 + e * 100 + f);
            }
        }
    }
    write(&src.join("d0/empty"), b"");
    let mut tail = super::fixtures::bytes(7, 5000);
    tail.extend_from_slice(&[0u8; 12288]);
    write(&src.join("d1/tail-zeros"), &tail);
    write(&src.join("d2/big"), &super::fixtures::bytes(9, 3 << 20));
    std::os::unix::fs::symlink("../d0/e0/f00", src.join("d3/link")).unwrap();
    write(&src.join("a-first/h1"), b"hardlinked twice\n");
    std::fs::hard_link(src.join("a-first/h1"), src.join("d5/e2/h1-again")).unwrap();
    write(&src.join("d0/e1/g1"), b"three names\n");
    std::fs::hard_link(src.join("d0/e1/g1"), src.join("d4/g1-b")).unwrap();
    std::fs::create_dir_all(src.join("z-last")).unwrap();
    std::fs::hard_link(src.join("d0/e1/g1"), src.join("z-last/g1-c")).unwrap();
    for (d, mode) in [("d1", 0o750), ("d1/e2", 0o711), ("d4/e0", 0o555), ("z-last", 0o700)] {
        std::fs::set_permissions(src.join(d), std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    }
    std::fs::set_permissions(src.join("d0/e0/f03"), std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    // Directory times last: anything created in a directory moves its time.
    for (i, d) in ["d0", "d0/e1", "d1", "d1/e2", "d4", "d4/e0", "d5/e2", "a-first", "z-last"].iter().enumerate() {
        set_mtime(&src.join(d), 2_000_000 + i as u64);
    }
}

/// Per path below `root`: type, mode, mtime, size, content or link target, and the first path
/// (in sorted order) with the same inode, so hardlink groups compare by their members.
type State = BTreeMap<PathBuf, (String, u32, i64, u64, Vec<u8>, PathBuf)>;

fn state(root: &Path) -> State {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, std::fs::Metadata)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                walk(&p, out);
            }
            out.push((p, m));
        }
    }
    let mut all = Vec::new();
    walk(root, &mut all);
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let mut first: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let mut out = State::new();
    for (p, m) in all {
        let rel = p.strip_prefix(root).unwrap().to_path_buf();
        let (kind, body) = if m.is_dir() {
            ("dir", Vec::new())
        } else if m.file_type().is_symlink() {
            ("symlink", std::fs::read_link(&p).unwrap().into_os_string().into_encoded_bytes())
        } else {
            ("file", std::fs::read(&p).unwrap())
        };
        let group = first.entry(m.ino()).or_insert_with(|| rel.clone()).clone();
        out.insert(rel, (kind.to_string(), m.mode() & 0o7777, m.mtime(), m.size(), body, group));
    }
    out
}

fn restore_with_budget(
    repo: &ReadRepository,
    root: &BlobId,
    target: &Path,
    budget: u64,
) -> cairn::restore::RestoreResult {
    let o = RestoreOptions { target: target.to_path_buf(), batch_budget: budget, ..Default::default() };
    let r = restore(repo, root, None, &o, &NoRestoreProgress).unwrap();
    assert!(r.errors.is_empty(), "budget {budget}: {:?}", r.errors);
    r
}

/// The bytes format-spec §7.5 counts for what a batch holds: its entries and completed
/// directories, 16 per chunk placement, 160 per blob to read.
fn counted(b: &RestorePlan) -> u64 {
    let entries: u64 = b.entries.iter().map(|e| entry_bytes(e.path.as_os_str().len(), &e.node)).sum();
    let dirs: u64 = b.dirs_done.iter().map(|d| entry_bytes(d.path.as_os_str().len(), &d.node)).sum();
    let blobs: u64 = b.packs.values().map(|v| v.len() as u64).sum();
    let placements: u64 = b.packs.values().flatten().map(|p| p.targets.len() as u64).sum();
    entries + dirs + 16 * placements + 160 * blobs
}

#[test]
fn a_restore_in_tiny_batches_is_the_same_tree_as_in_one() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build(&src);
    let repo = init_local(&tmp.path().join("repo"), b"batches", &tmp.path().join("cache"));
    let snap = snapshot_of(&repo, &src);
    let root = repo.load_snapshot(&snap).unwrap().root();
    let rel = src.strip_prefix("/").unwrap();
    let want = state(&src);
    assert_eq!(want[Path::new("z-last/g1-c")].5, PathBuf::from("d0/e1/g1"), "the fixture's hardlinks");

    let whole = plan(&repo, &root, None, &RestoreOptions::default()).unwrap();
    assert!(whole.entries.len() > 250, "{}", whole.entries.len());
    // Budget 1: every entry is a batch of its own; 4096: a few entries per batch; 0: the default.
    let mut results = Vec::new();
    for budget in [1, 4096, 0] {
        let target = tmp.path().join(format!("t{budget}"));
        let r = restore_with_budget(&repo, &root, &target, budget);
        assert_eq!(state(&target.join(rel)), want, "budget {budget}");
        results.push((r.files, r.dirs, r.other, r.bytes));
        let mut batches = 0;
        let o = RestoreOptions { target: target.clone(), batch_budget: budget, ..Default::default() };
        let b = if budget == 0 { cairn::restore::BATCH_BUDGET } else { budget };
        plan_batches(&repo, &root, None, &o, &Limits::expanding(), b, &mut |p| {
            batches += 1;
            assert!(!p.entries.is_empty() || !p.dirs_done.is_empty());
            Ok(())
        })
        .unwrap();
        match budget {
            1 => assert!(batches >= whole.entries.len(), "{batches} batches"),
            4096 => assert!(batches > 20, "{batches} batches"),
            _ => assert_eq!(batches, 1),
        }
        // The dry run's sums do not depend on the batches.
        let s = plan_summary(&repo, &root, None, &o, &Limits::expanding()).unwrap();
        assert_eq!(
            (s.entries, s.packs, s.bytes, s.hole_bytes),
            (whole.entries.len() as u64, whole.packs.len() as u64, whole.total_bytes, whole.hole_bytes)
        );
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]), "{results:?}");
    let (files, dirs, other, bytes) = results[0];
    assert_eq!(files, want.values().filter(|v| v.0 == "file").count() as u64);
    assert_eq!(other, 1, "one symlink");
    // Every directory of the source and its ancestors up to the root.
    assert_eq!(dirs, want.values().filter(|v| v.0 == "dir").count() as u64 + src.components().count() as u64 - 1);
    assert_eq!(bytes, whole.total_bytes);
}

#[test]
fn a_batch_never_holds_more_than_its_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for d in 0..20 {
        for f in 0..100 {
            // Above the inline threshold (format-spec §7.3): each file is a data blob the plan places.
            write(&src.join(format!("d{d:02}/f{f:03}")), format!("file {d} {f}\n").repeat(120).as_bytes());
        }
    }
    let repo = init_local(&tmp.path().join("repo"), b"batches", &tmp.path().join("cache"));
    let root = repo.load_snapshot(&snapshot_of(&repo, &src)).unwrap().root();
    let o = RestoreOptions::default();
    let (whole, one) = measure(|| plan(&repo, &root, None, &o).unwrap());
    assert_eq!(whole.entries.len(), 20 * 100 + 20 + src.components().count() - 1);
    // The largest single entry: a batch passes its budget by at most that.
    let largest = whole.entries.iter().map(|e| entry_bytes(e.path.as_os_str().len(), &e.node) + 16 + 160).max();
    let largest = largest.unwrap();
    const BUDGET: u64 = 32 << 10;
    let (mut batches, mut entries, mut most) = (0, 0, 0);
    let ((), batched) = measure(|| {
        plan_batches(&repo, &root, None, &o, &Limits::expanding(), BUDGET, &mut |b| {
            let c = counted(&b);
            assert!(c < BUDGET + largest, "a batch holds {c} bytes, the budget is {BUDGET}");
            most = most.max(c);
            batches += 1;
            entries += b.entries.len();
            Ok(())
        })
        .unwrap()
    });
    assert_eq!(entries, whole.entries.len());
    assert!(batches >= counted(&whole) / (BUDGET + largest), "{batches} batches");
    assert!(most >= BUDGET, "batches are cut at the budget, not before: {most}");
    // What the batched plan allocates stays well below what the whole plan does.
    assert!(batched.peak * 3 < one.peak, "batched {batched:?}, whole {one:?}");
}

#[test]
fn dump_writes_a_file_of_thousands_of_chunks_in_order() {
    // Tiny chunks: thousands of blobs read on the pool and finishing in any order; the output is
    // the file byte for byte, and a failing writer stops the dump with its error.
    let tmp = tempfile::tempdir().unwrap();
    let params = cairn::chunker::ChunkerParams { min_size: 64, avg_size: 256, max_size: 1024, ..Default::default() };
    let io = cairn::repository::InitOptions { chunker: params, ..Default::default() };
    let repo = cairn::repository::Repository::init(
        super::fixtures::local(&tmp.path().join("r")),
        b"pw",
        &io,
        &super::fixtures::opts(&tmp.path().join("c")),
    )
    .and_then(|r| r.readable())
    .unwrap();
    let src = tmp.path().join("src");
    let data = super::fixtures::bytes(42, 1 << 20);
    write(&src.join("big"), &data);
    let snap = snapshot_of(&repo, &src);
    let root = repo.load_snapshot(&snap).unwrap().root();
    let path = cairn::backup::absolute(&src.join("big")).unwrap();
    let mut out = Vec::new();
    assert_eq!(cairn::restore::dump(&repo, &root, &path, &mut out).unwrap(), data.len() as u64);
    assert!(out == data, "the dumped file differs from the original");
    struct Fails(usize);
    impl std::io::Write for Fails {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.0 < b.len() {
                return Err(std::io::Error::other("disk full"));
            }
            self.0 -= b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let e = cairn::restore::dump(&repo, &root, &path, &mut Fails(100_000)).unwrap_err();
    assert!(e.to_string().contains("disk full"), "{e}");
}
