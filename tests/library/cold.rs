//! Cold storage (issue #4): file data lives under `data/`, which a bucket lifecycle rule may move to an archive tier
//! (docs/cold-storage.md). Every operation that needs only metadata — listing snapshots, listing a snapshot's files,
//! planning and running forget, the structural check, repair snapshots without data reading, and an incremental
//! backup (which dedups through the index and reads only the parent's trees) — must read nothing
//! under `data/` (and so do diff, find and stats; status reads nothing under `tree/` either), with a warm cache and with a fresh one (the index sync reads `index/` only). Proven through the
//! counting layer of `src/backend/fault.rs`, which records every path read (whole or ranged).

use super::fixtures::{bytes, copy_dir, files, init_local, open_faulty, open_local, snapshot_of, walk_entries, write};
use cairn::backend::fault::FaultPlan;
use cairn::backup::{backup, BackupOptions, BackupSource, NoProgress};
use cairn::check::{check, CheckOptions, ReadData};
use cairn::crypto::MasterKeys;
use cairn::forget::{self, GroupBy, Rules};
use cairn::id::KeyId;
use cairn::repair::{repair_snapshots, RepairSnapshotsOptions};
use cairn::repository::ReadRepository;
use cairn::retention::{Count, Policy};
use std::path::{Path, PathBuf};

struct Fixture {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    keys: MasterKeys,
    key_id: KeyId,
}

/// A repository with two snapshots of a small tree (the second after a change).
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let src = base.join("src");
    write(&src.join("a.bin"), &bytes(1, 900 * 1024));
    write(&src.join("d/b.bin"), &bytes(2, 300 * 1024));
    write(&src.join("d/e/c.txt"), b"small\n");
    let repo = init_local(&base.join("repo"), b"cold", &base.join("cache0"));
    snapshot_of(&repo, &src);
    write(&src.join("d/e/c.txt"), b"changed\n");
    snapshot_of(&repo, &src);
    Fixture { keys: repo.keys().clone(), key_id: repo.key_id(), _tmp: tmp, base }
}

/// An operation on the repository; its argument is the fixture's base directory (the source is `base/src`).
type Op = fn(&ReadRepository, &Path);

fn ops() -> Vec<(&'static str, Op)> {
    fn keep_last_one() -> Rules {
        Rules::Policy(Policy { last: Some(Count::Last(1)), ..Default::default() })
    }
    vec![
        ("snapshots", |r, _| assert_eq!(r.list_snapshots().unwrap().len(), 2)),
        ("status", |r, _| {
            let snaps = cairn::select::list_all(r).unwrap();
            let rules = cairn::status::Rules::default();
            let rep = cairn::status::evaluate(&snaps, GroupBy::default(), &|_| rules, cairn::time::Time::now());
            assert_eq!(rep.status, cairn::status::Verdict::Ok, "{rep:#?}");
            assert_eq!(rep.groups[0].snapshots, 2);
        }),
        ("ls", |r, _| {
            for (_, s) in r.list_snapshots().unwrap() {
                let mut n = 0;
                cairn::browse::walk(r, &s.root(), Path::new("/"), &cairn::tree::Limits::expanding(), &mut |_, _| {
                    n += 1;
                    Ok(true)
                })
                .unwrap();
                assert!(n >= 3);
            }
        }),
        ("diff", |r, _| {
            let snaps = r.list_snapshots().unwrap();
            let o = cairn::diff::DiffOptions::default();
            let d = cairn::diff::diff(r, &snaps[0].1.root(), &snaps[1].1.root(), &o).unwrap();
            assert_eq!(d.summary.modified, 1, "{d:?}");
        }),
        ("find (glob and blob)", |r, _| {
            let snaps = r.list_snapshots().unwrap();
            let mut o = cairn::find::FindOptions {
                patterns: cairn::filter::Patterns::new([("*.bin", false)]).unwrap(),
                ..Default::default()
            };
            assert_eq!(cairn::find::find(r, &snaps, &o).unwrap().matches.len(), 4);
            o.blobs.insert(snaps[0].1.root());
            assert_eq!(cairn::find::find(r, &snaps, &o).unwrap().matches.len(), 0, "no .bin is a root");
        }),
        ("stats (every mode, whole repository)", |r, _| {
            let snaps = r.list_snapshots().unwrap();
            for mode in [cairn::stats::Mode::RestoreSize, cairn::stats::Mode::Raw, cairn::stats::Mode::Dedup] {
                let s = cairn::stats::stats(r, &snaps, mode, true).unwrap();
                assert_eq!(s.repository.unwrap().unused_blobs, 0, "{s:?}");
            }
        }),
        ("forget --dry-run", |r, _| {
            let plan = forget::plan(
                &cairn::select::list_all(r).unwrap(),
                GroupBy::default(),
                &keep_last_one(),
                &jiff::tz::TimeZone::UTC,
            );
            assert_eq!(plan.iter().flat_map(|g| &g.decisions).filter(|d| !d.keep).count(), 1);
        }),
        ("forget", |r, _| {
            let plan = forget::plan(
                &cairn::select::list_all(r).unwrap(),
                GroupBy::default(),
                &keep_last_one(),
                &jiff::tz::TimeZone::UTC,
            );
            assert_eq!(forget::execute(r, &plan, false).unwrap().len(), 1);
        }),
        ("check", |r, _| {
            let report = check(r, &CheckOptions { read_data: ReadData::None }).unwrap();
            assert_eq!(report.errors(), 0, "{:#?}", report.findings);
            assert_eq!(report.data_packs_read, 0);
        }),
        ("prune --no-repack (mark, then sweep)", |r, _| {
            let plan = forget::plan(
                &cairn::select::list_all(r).unwrap(),
                GroupBy::default(),
                &keep_last_one(),
                &jiff::tz::TimeZone::UTC,
            );
            forget::execute(r, &plan, false).unwrap();
            let o = cairn::prune::PruneOptions {
                repack: false,
                grace_secs: 0,
                max_delete_share: 1.0,
                ..Default::default()
            };
            let (p, _) = cairn::prune::run(r, &o, false).unwrap();
            assert!(p.mark.is_some(), "{p:#?}");
            let (p, rep) = cairn::prune::run(r, &o, false).unwrap();
            assert!(rep.unwrap().deleted_packs > 0, "{p:#?}");
        }),
        ("repair snapshots --dry-run", |r, _| {
            let report = repair_snapshots(r, &RepairSnapshotsOptions { dry_run: true, ..Default::default() }).unwrap();
            assert_eq!(report.intact, 2);
        }),
        ("backup (incremental)", |r, base| {
            write(&base.join("src/d/new.txt"), b"new after the archive rule\n");
            let o = BackupOptions::default();
            backup(r, vec![BackupSource::Paths(vec![base.join("src")])], &o, &NoProgress).unwrap();
        }),
        ("repair snapshots (a data pack lost)", |r, _| {
            let report = repair_snapshots(r, &RepairSnapshotsOptions::default()).unwrap();
            assert!(!report.damaged.is_empty(), "{report:?}");
            assert!(report.damaged.iter().all(|d| d.repaired.is_some()), "{report:?}");
        }),
    ]
}

#[test]
fn metadata_operations_read_nothing_under_data() {
    let fx = fixture();
    for (name, op) in ops() {
        for fresh_cache in [false, true] {
            let what = format!("{name} ({} cache)", if fresh_cache { "fresh" } else { "warm" });
            let work = tempfile::tempdir().unwrap();
            let dir = work.path().join("repo");
            copy_dir(&fx.base.join("repo"), &dir);
            let cache = work.path().join("cache");
            if name.contains("lost") {
                let pack = files(&dir.join("data")).into_keys().next().unwrap();
                std::fs::remove_file(dir.join("data").join(pack)).unwrap();
            }
            if !fresh_cache {
                // Warm the cache first, through plain storage.
                open_local(&dir, &fx.keys, fx.key_id, &cache).sync_index().unwrap();
            }
            let (repo, counting) = open_faulty(&dir, FaultPlan::default(), &fx.keys, fx.key_id, &cache);
            op(&repo.unwrap(), &fx.base);
            let read = counting.counts().read_paths.lock().unwrap().clone();
            let data: Vec<&String> = read.iter().filter(|p| p.starts_with("data/")).collect();
            assert!(data.is_empty(), "{what} read under data/: {data:?}");
            if name == "status" {
                let tree: Vec<&String> = read.iter().filter(|p| p.starts_with("tree/")).collect();
                assert!(tree.is_empty(), "{what} read under tree/: {tree:?}");
            }
            assert!(read.iter().any(|p| p.starts_with("config/")), "{what}: the counting layer saw no reads: {read:?}");
            if fresh_cache
                && !name.starts_with("snapshots")
                && !name.starts_with("status")
                && !name.starts_with("forget")
                && !name.starts_with("prune")
            {
                assert!(
                    read.iter().any(|p| p.starts_with("index/")),
                    "{what}: a fresh cache syncs the index: {read:?}"
                );
            }
        }
    }
}

/// A repository with one snapshot of `dirs` directories (`d<i>/<sub>f.txt`, a small file each), the handle that
/// wrote it, and a second handle through the fault layer with `plan` and a fresh cache.
struct ManyDirs {
    _tmp: tempfile::TempDir,
    repo: ReadRepository,
    faulty: ReadRepository,
    counting: std::sync::Arc<cairn::backend::fault::FaultBackend>,
}

fn many_dirs(dirs: usize, sub: &str, plan: FaultPlan) -> ManyDirs {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for i in 0..dirs {
        write(&src.join(format!("d{i:03}/{sub}f.txt")), format!("file {i}\n").as_bytes());
    }
    let dir = tmp.path().join("repo");
    let repo = init_local(&dir, b"windows", &tmp.path().join("cache0"));
    snapshot_of(&repo, &src);
    let (faulty, counting) = open_faulty(&dir, plan, repo.keys(), repo.key_id(), &tmp.path().join("cache1"));
    ManyDirs { repo, faulty: faulty.unwrap(), counting, _tmp: tmp }
}

/// A walk of a snapshot with hundreds of directories reads their trees in a few windows of the tree pack, not with a
/// ranged read per tree: on a remote backend every read is a round trip (benches/README.md, "S3 after sessions
/// 10–17": a restore from S3 spent 25 ms on each of 1,656 trees).
#[test]
fn a_walk_reads_the_tree_pack_in_windows_not_once_per_tree() {
    let m = many_dirs(300, "e/", FaultPlan::default());
    let files = walk_entries(&m.faulty).unwrap();
    assert!(files >= 900, "the walk saw {files} entries");
    let read = m.counting.counts().read_paths.lock().unwrap().clone();
    let trees = read.iter().filter(|p| p.starts_with("tree/")).count();
    assert!((1..=3).contains(&trees), "{trees} reads under tree/ for more than 600 trees");
}

/// A window of a tree pack that comes back damaged (every byte flipped in transit) is dropped: the tree that failed
/// to open from it is read again by its own range and the walk completes. Without this every tree of that window
/// would fail for as long as the repository handle lives.
#[test]
fn a_window_that_arrives_damaged_is_dropped_and_the_walk_completes() {
    let plan = FaultPlan { garble_read: Some(0), only_prefix: Some("tree/".into()), ..Default::default() };
    let m = many_dirs(50, "", plan);
    let seen = walk_entries(&m.faulty).unwrap();
    assert!(seen >= 100, "{seen} entries");
    assert_eq!(seen, walk_entries(&m.repo).unwrap(), "every entry is seen, as through an undamaged handle");
    let trees = m.counting.counts().matched_reads.load(std::sync::atomic::Ordering::SeqCst);
    assert!((3..=6).contains(&trees), "the damaged window, the tree alone, the window again: {trees} reads");
}
