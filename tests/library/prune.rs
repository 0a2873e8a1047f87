//! Prune (format-spec §10.4–§10.6) end to end through the library: what it deletes and keeps, the grace period
//! and the waited sessions, rescue of packs a late snapshot uses, the lock, the safety stops, a crash at every
//! write and delete of both phases, short listings, and backups running while prune loops with no grace.

use super::fixtures::{
    bytes, copy_dir, files, open_faulty, open_local, opts, rand_name, restore_matches, snapshot_of, write,
};
use cairn::backend::fault::{FaultBackend, FaultPlan};
use cairn::backend::DynBackend;
use cairn::backup::{backup, BackupOptions, BackupSource, NoProgress};
use cairn::check::{check, CheckOptions, ReadData};
use cairn::crypto::MasterKeys;
use cairn::id::{KeyId, SnapshotId};
use cairn::layout::StoredId;
use cairn::prune::{run, PruneLock, PruneOptions};
use cairn::repository::{ReadRepository, Repository};
use cairn::writer::{Writer, WriterOptions};
use cairn::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const PASSWORD: &[u8] = b"prune";

use super::fixtures::eager_prune as eager;

struct Fx {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    keys: MasterKeys,
    key_id: KeyId,
    /// Forgotten snapshot of `src_a` (its unique data is garbage).
    forgotten: SnapshotId,
    /// Kept snapshot of `src_b`.
    kept: SnapshotId,
    src_b: PathBuf,
}

/// A repository with a forgotten snapshot of A (one file unique to it, one shared with B) and a kept one of B.
fn fixture() -> Fx {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let (src_a, src_b) = (base.join("src-a"), base.join("src-b"));
    write(&src_a.join("shared.bin"), &bytes(1, 600 * 1024));
    write(&src_a.join("only-a.bin"), &bytes(3, 900 * 1024));
    write(&src_a.join("d/a.txt"), b"only in A\n");
    write(&src_b.join("shared.bin"), &bytes(1, 600 * 1024));
    write(&src_b.join("new.bin"), &bytes(2, 500 * 1024));
    write(&src_b.join("e/f/g.txt"), b"deep\n");
    // Small files, one chunk each, shared and unique: spread at random over the two open data packs, they make
    // every data pack of A's backup hold both kinds, so prune repacks (blobs move to new packs). Format version 2:
    // in bundles (format-spec §5.5, version 3) they would be a few segments, and whether a repack writes one pack
    // or two would depend on the random pack choice, so the crash test could not count the writes of a run
    // (tests/library/bundles.rs repacks bundles).
    // B's copies get an mtime of their own: written within one tick of the file system's clock, the two `s/`
    // directories would have identical nodes (a tree holds no inode), so B would use A's `s/` tree blob and A's
    // tree pack would not be wholly unused (seen once in CI).
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    for i in 0..16u64 {
        write(&src_a.join(format!("s/{i}")), &bytes(100 + i, 4096));
        write(&src_b.join(format!("s/{i}")), &bytes(100 + i, 4096));
        std::fs::File::options().write(true).open(src_b.join(format!("s/{i}"))).unwrap().set_modified(old).unwrap();
        write(&src_a.join(format!("u/{i}")), &bytes(200 + i, 4096));
    }
    let io = cairn::repository::InitOptions { format_version: 2, ..Default::default() };
    let repo = Repository::init(super::fixtures::local(&base.join("repo")), PASSWORD, &io, &opts(&base.join("cache0")))
        .and_then(|r| r.readable())
        .unwrap();
    let forgotten = snapshot_of(&repo, &src_a);
    let kept = snapshot_of(&repo, &src_b);
    repo.remove_snapshot(&forgotten).unwrap();
    let (keys, key_id) = (repo.keys().clone(), repo.key_id());
    Fx { _tmp: tmp, base, keys, key_id, forgotten, kept, src_b }
}

impl Fx {
    /// Opens the repository at `dir` through plain storage with the cache `cache`.
    fn repo(&self, dir: &Path, cache: &str) -> ReadRepository {
        open_local(dir, &self.keys, self.key_id, &self.base.join(cache))
    }

    fn faulty(&self, dir: &Path, plan: FaultPlan, cache: &str) -> (ReadRepository, Arc<FaultBackend>) {
        let (repo, fb) = open_faulty(dir, plan, &self.keys, self.key_id, &self.base.join(cache));
        (repo.unwrap(), fb)
    }
}

fn pack_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        files(dir).into_keys().filter(|p| p.starts_with("data") || p.starts_with("tree")).collect();
    v.sort();
    v
}

fn prune_state(dir: &Path) -> Vec<PathBuf> {
    files(dir).into_keys().filter(|p| p.starts_with("prune")).collect()
}

/// Asserts `check --read-data` finds no error and the kept snapshot restores byte for byte.
fn assert_intact(fx: &Fx, dir: &Path, what: &str) {
    let cache = format!("cache-{}", rand_name());
    let repo = fx.repo(dir, &cache);
    let report = check(&repo, &CheckOptions { read_data: ReadData::All }).unwrap();
    assert_eq!(report.errors(), 0, "{what}: check found errors: {:#?}", report.findings);
    restore_matches(&repo, &fx.kept, &fx.src_b, &fx.base.join(format!("restore-{cache}")));
}

/// Runs eager prunes until nothing is left to do; returns how many runs it took.
fn settle(repo: &ReadRepository) -> usize {
    let mut o = eager();
    o.break_lock = true;
    for i in 1..=4 {
        let (plan, _) = run(repo, &o, false).unwrap();
        if plan.sweep.is_none() && plan.mark.is_none() && plan.waiting.is_empty() {
            return i;
        }
    }
    panic!("prune did not settle in 4 runs");
}

#[test]
fn prune_deletes_only_what_no_snapshot_needs_and_only_in_a_later_run() {
    let fx = fixture();
    let dir = fx.base.join("repo");
    let repo = fx.repo(&dir, "c1");
    let before = pack_files(&dir);
    let bytes_before: u64 = before.iter().map(|p| std::fs::metadata(dir.join(p)).unwrap().len()).sum();
    // Another host's cache, warm before the prune: it will name packs the sweep deletes.
    fx.repo(&dir, "other-host").sync_index().unwrap();

    // Phase 1 marks and repacks, deletes nothing.
    let (plan, report) = run(&repo, &eager(), false).unwrap();
    let m = plan.mark.as_ref().expect("a mark");
    assert!(!m.unused.is_empty(), "the forgotten snapshot's tree pack is unused: {plan:#?}");
    assert!(!m.repack.is_empty(), "blobs must move to new packs, for the stale-cache case below: {plan:#?}");
    assert!(report.unwrap().marked.is_some());
    let after_mark = pack_files(&dir);
    assert!(before.iter().all(|p| after_mark.contains(p)), "phase 1 deleted a pack");
    assert_intact(&fx, &dir, "after the mark");

    // With a 24 h grace the sweep waits.
    let (plan, report) = run(&repo, &PruneOptions { grace_secs: 24 * 3600, ..eager() }, false).unwrap();
    assert!(plan.sweep.is_none() && plan.waiting.len() == 1, "{plan:#?}");
    assert!(plan.waiting[0].reason.contains("grace"), "{:?}", plan.waiting[0].reason);
    assert_eq!(report.unwrap().deleted_packs, 0);
    assert_eq!(pack_files(&dir), after_mark);

    // A dry run plans the sweep and changes nothing.
    let state = files(&dir).into_keys().collect::<Vec<_>>();
    let (plan, report) = run(&repo, &eager(), true).unwrap();
    assert!(report.is_none());
    assert!(!plan.sweep.as_ref().unwrap().delete.is_empty());
    assert_eq!(files(&dir).into_keys().collect::<Vec<_>>(), state, "a dry run changed the repository");

    // Phase 2 deletes.
    let (plan, report) = run(&repo, &eager(), false).unwrap();
    let report = report.unwrap();
    assert!(report.deleted_packs > 0 && report.replaced_index > 0, "{report:#?}");
    assert_eq!(report.deleted_packs, plan.sweep.unwrap().delete.len());
    let after = pack_files(&dir);
    let bytes_after: u64 = after.iter().map(|p| std::fs::metadata(dir.join(p)).unwrap().len()).sum();
    assert!(bytes_after < bytes_before, "{bytes_after} >= {bytes_before}");
    assert!(prune_state(&dir).iter().all(|p| p.to_string_lossy().contains("lock-")), "{:?}", prune_state(&dir));
    assert_intact(&fx, &dir, "after the sweep");
    let fresh = fx.repo(&dir, "c2");
    assert!(fresh.load_snapshot(&fx.forgotten).is_err());
    // The other host's next command (a new process) restores through its stale cache.
    restore_matches(&fx.repo(&dir, "other-host"), &fx.kept, &fx.src_b, &fx.base.join("restore-other-host"));
    // Nothing left to do.
    assert_eq!(settle(&fresh), 1);
}

#[test]
fn a_snapshot_written_by_a_session_that_began_before_the_mark_rescues_its_packs() {
    let fx = fixture();
    let dir = fx.base.join("repo");
    let repo = fx.repo(&dir, "c1");
    // Forget B as well, so the mark condemns every pack; a writer that took its lease before the mark then
    // commits a snapshot of B's tree (as a backup that found everything already stored would).
    let keep_b = repo.load_snapshot(&fx.kept).unwrap();
    repo.remove_snapshot(&fx.kept).unwrap();
    let w = Writer::new(&repo, WriterOptions::default(), "backup").unwrap();
    assert!(w.is_known(cairn::id::BlobKind::Tree, &keep_b.root()).unwrap());
    let (plan, _) = run(&repo, &PruneOptions { lease_timeout_secs: 3600, ..eager() }, false).unwrap();
    assert!(plan.mark.is_some());
    let late = w.commit(&keep_b).unwrap();
    // The sweep now finds a snapshot outside the marked set and rescues what it needs.
    let (plan, report) = run(&repo, &PruneOptions { lease_timeout_secs: 3600, ..eager() }, false).unwrap();
    let s = plan.sweep.expect("the writer ended: the mark is due");
    assert!(!s.rescued.is_empty(), "{s:#?}");
    assert!(report.unwrap().rescued_packs > 0);
    let fresh = fx.repo(&dir, "c2");
    assert_eq!(check(&fresh, &CheckOptions { read_data: ReadData::All }).unwrap().errors(), 0);
    restore_matches(&fresh, &late, &fx.src_b, &fx.base.join("restore-late"));
}

#[test]
fn the_sweep_waits_for_sessions_alive_at_mark_time() {
    let fx = fixture();
    let dir = fx.base.join("repo");
    let repo = fx.repo(&dir, "c1");
    let w = Writer::new(&repo, WriterOptions::default(), "backup").unwrap();
    let o = PruneOptions { lease_timeout_secs: 3600, ..eager() };
    run(&repo, &o, false).unwrap();
    let packs = pack_files(&dir);
    let (plan, report) = run(&repo, &o, false).unwrap();
    assert!(plan.sweep.is_none(), "{plan:#?}");
    assert!(plan.waiting[0].reason.contains("session"), "{:?}", plan.waiting[0].reason);
    assert_eq!(report.unwrap().deleted_packs, 0);
    assert_eq!(pack_files(&dir), packs);
    w.abandon();
    let (plan, _) = run(&repo, &o, false).unwrap();
    assert!(plan.sweep.is_some(), "{plan:#?}");
    assert_intact(&fx, &dir, "after the sweep");
}

#[test]
fn a_backup_after_the_mark_stores_condemned_blobs_again() {
    let fx = fixture();
    let dir = fx.base.join("repo");
    let repo = fx.repo(&dir, "c1");
    // Forget B too: every pack is condemned.
    repo.remove_snapshot(&fx.kept).unwrap();
    let o = PruneOptions { lease_timeout_secs: 3600, ..eager() };
    run(&repo, &o, false).unwrap();
    let s = backup(&repo, vec![BackupSource::Paths(vec![fx.src_b.clone()])], &BackupOptions::default(), &NoProgress)
        .unwrap();
    assert!(s.summary.bytes_added > 1_000_000, "the condemned data was not stored again: {:?}", s.summary);
    let (plan, _) = run(&repo, &o, false).unwrap();
    let sw = plan.sweep.unwrap();
    assert!(sw.rescued.is_empty(), "{sw:#?}");
    let fresh = fx.repo(&dir, "c2");
    assert_eq!(check(&fresh, &CheckOptions { read_data: ReadData::All }).unwrap().errors(), 0);
    restore_matches(&fresh, &s.snapshot_id.unwrap(), &fx.src_b, &fx.base.join("restore"));
}

#[test]
fn one_prune_at_a_time_and_a_crashed_holder_can_be_broken() {
    let fx = fixture();
    let dir = fx.base.join("repo");
    let repo = fx.repo(&dir, "c1");
    let lock = PruneLock::acquire(&repo, 3600, false).unwrap();
    let e = run(&repo, &eager(), false).unwrap_err();
    assert!(matches!(e, Error::Locked(_)), "{e}");
    assert!(e.to_string().contains("another prune"), "{e}");
    assert_eq!(e.exit_code(), cairn::error::exit::LOCKED);
    // A dry run needs no lock.
    run(&repo, &eager(), true).unwrap();
    std::mem::forget(lock); // the holder "crashes": its link stays
    run(&repo, &PruneOptions { break_lock: true, ..eager() }, false).unwrap();
    // Released: the next run takes the lock normally.
    run(&repo, &eager(), false).unwrap();
}

#[test]
fn a_short_or_failing_listing_during_prune_deletes_nothing() {
    let fx = fixture();
    let dir = fx.base.join("repo");
    // Make a due mark first.
    run(&fx.repo(&dir, "c1"), &eager(), false).unwrap();
    // The repository apart from prune's own lock and marks and the ledger, which a prune that ran
    // (even one that found nothing to do) appends its record to.
    let objects = |dir: &Path| -> Vec<PathBuf> {
        files(dir).into_keys().filter(|p| !p.starts_with("prune") && !p.starts_with("ledger")).collect()
    };
    let ledger = |dir: &Path| files(dir).into_keys().filter(|p| p.starts_with("ledger")).count();
    let state = objects(&dir);
    for plan in [
        FaultPlan { short_list: Some(1), ..Default::default() },
        FaultPlan { short_list: Some(3), only_prefix: Some("data/".into()), ..Default::default() },
    ] {
        let records = ledger(&dir);
        let (repo, _) = fx.faulty(&dir, plan.clone(), &format!("c-{}", rand_name()));
        let r = run(&repo, &PruneOptions { max_delete_share: 0.5, ..eager() }, false);
        assert_eq!(objects(&dir), state, "prune under {plan:?} changed the repository ({r:?})");
        // Either prune stops and says so (and records nothing), or the short listing hid the mark
        // itself and there was nothing to do (and the ledger says it ran); deleting is never among
        // the outcomes (asserted above). Which one happens depends on the order of the listing.
        match r {
            Err(e) => {
                assert!(e.to_string().to_lowercase().contains("nothing was"), "{e}");
                assert_eq!(ledger(&dir), records, "a prune that stopped wrote a ledger record");
            }
            Ok((p, rep)) => {
                assert!(p.sweep.is_none(), "a sweep planned from a short listing: {p:#?}");
                assert_eq!(rep.map(|r| r.deleted_packs), Some(0));
                assert_eq!(ledger(&dir), records + 1, "a prune that ran records one ledger entry");
            }
        }
    }
    // A failing listing anywhere in prune stops it (opening needs listings too: count from after the open).
    let mut failed = 0;
    for i in 0..12 {
        let cache = fx.base.join(format!("c-{}", rand_name()));
        let plan = FaultPlan { fail_list: Some(i), ..Default::default() };
        let Ok(repo) = open_faulty(&dir, plan, &fx.keys, fx.key_id, &cache).0 else {
            continue;
        };
        if run(&repo, &eager(), false).is_err() {
            failed += 1;
        }
    }
    assert!(failed > 0, "no listing failure reached prune");
    assert_intact(&fx, &dir, "after failing listings");
}

#[test]
fn an_unusual_share_stops_the_sweep_unless_forced() {
    let fx = fixture();
    let dir = fx.base.join("repo");
    let repo = fx.repo(&dir, "c1");
    repo.remove_snapshot(&fx.kept).unwrap();
    let o = PruneOptions { max_delete_share: 0.5, ..eager() };
    run(&repo, &o, false).unwrap();
    let packs = pack_files(&dir);
    let e = run(&repo, &o, false).unwrap_err();
    assert!(e.to_string().contains("more than the 50 %"), "{e}");
    assert_eq!(e.lifted_by(), Some(cairn::error::Override::Force), "{e}");
    assert_eq!(e.kind(), cairn::error::ErrorKind::Refused);
    assert_eq!(pack_files(&dir), packs);
    run(&repo, &PruneOptions { force: true, ..o }, false).unwrap();
    assert!(pack_files(&dir).is_empty(), "{:?}", pack_files(&dir));
}

/// The sweep holds no blob list of the packs it keeps (memory at 10 M blobs, benches/README.md "Scale"): it reads
/// the old index files again to write the new ones, and refuses an entry that differs from what the plan read,
/// before deleting any old index file or pack.
#[test]
fn a_sweep_refuses_an_index_entry_changed_since_its_plan_and_deletes_nothing() {
    use cairn::codec::object;
    let fx = fixture();
    let dir = fx.base.join("repo");
    let repo = fx.repo(&dir, "c1");
    run(&repo, &eager(), false).unwrap();
    let lock = PruneLock::acquire(&repo, 600, false).unwrap();
    let plan = cairn::prune::plan(&repo, &eager(), lock.taken_at()).unwrap();
    let sweep = plan.sweep.as_ref().expect("the mark is due");
    assert!(!sweep.delete.is_empty(), "{plan:#?}");
    // One kept pack's entry changes under the sweep (same index file name, re-sealed).
    let deleted: Vec<_> = sweep.delete.iter().map(|r| r.id).collect();
    let (id, mut f) = sweep
        .old_index
        .iter()
        .map(|id| (*id, repo.read_index(id).unwrap()))
        .find(|(_, f)| f.packs().iter().any(|p| !deleted.contains(&p.id) && !p.blobs.is_empty()))
        .expect("an index file with a kept pack");
    let (cairn::index::IndexFile::V1 { packs, .. } | cairn::index::IndexFile::V2 { packs, .. }) = &mut f;
    let p = packs.iter_mut().find(|p| !deleted.contains(&p.id) && !p.blobs.is_empty()).unwrap();
    p.blobs[0].plain_length += 1;
    std::fs::write(dir.join(id.path()), object::encode_index(&fx.keys, &id, &f)).unwrap();
    let (packs_before, index_before) = (pack_files(&dir), sweep.old_index.clone());
    let e = cairn::prune::execute(&repo, &eager(), &plan, &lock).unwrap_err();
    assert!(e.to_string().contains(&format!("index file {id} changed since the prune plan read it")), "{e}");
    assert_eq!(pack_files(&dir), packs_before, "a pack was deleted");
    assert!(index_before.iter().all(|i| dir.join(i.path()).exists()), "an old index file was deleted");
}

/// Counts the writes and deletes of one prune run on a copy of `dir`.
fn count_ops(fx: &Fx, dir: &Path) -> (u64, u64) {
    let probe = fx.base.join(format!("probe-{}", rand_name()));
    copy_dir(dir, &probe);
    let (repo, fb) = fx.faulty(&probe, FaultPlan::default(), &format!("c-{}", rand_name()));
    run(&repo, &eager(), false).unwrap();
    let c = fb.counts();
    (c.writes.load(std::sync::atomic::Ordering::Relaxed), c.deletes.load(std::sync::atomic::Ordering::Relaxed))
}

/// Crashes prune at every write and every delete of the run that starts from `dir`.
fn crash_everywhere(fx: &Fx, dir: &Path, phase: &str) -> usize {
    let (writes, deletes) = count_ops(fx, dir);
    assert!(writes > 2 && deletes > 0, "{phase}: {writes} writes, {deletes} deletes");
    let mut points = 0;
    let plans = (0..writes)
        .map(|i| FaultPlan { fail_write: Some(i), crash: true, ..Default::default() })
        .chain((0..deletes).map(|i| FaultPlan { fail_delete: Some(i), crash: true, ..Default::default() }));
    for plan in plans {
        let copy = fx.base.join(format!("crash-{}", rand_name()));
        copy_dir(dir, &copy);
        let (repo, fb) = fx.faulty(&copy, plan.clone(), &format!("c-{}", rand_name()));
        let r = run(&repo, &eager(), false);
        assert!(fb.has_crashed(), "{phase}: {plan:?} never fired");
        assert!(r.is_err(), "{phase}: prune reported success through a crash at {plan:?}");
        drop(repo);
        points += 1;
        assert_intact(fx, &copy, &format!("{phase}, crash at {plan:?}"));
        // The next prune finishes the work.
        let repo = fx.repo(&copy, &format!("c-{}", rand_name()));
        settle(&repo);
        assert_intact(fx, &copy, &format!("{phase}, crash at {plan:?}, then settled"));
        let _ = std::fs::remove_dir_all(&copy);
    }
    points
}

#[test]
fn a_crash_at_any_write_or_delete_of_either_phase_loses_nothing() {
    let fx = fixture();
    let dir = fx.base.join("repo");
    let marked = crash_everywhere(&fx, &dir, "mark");
    run(&fx.repo(&dir, "c1"), &eager(), false).unwrap();
    let swept = crash_everywhere(&fx, &dir, "sweep");
    eprintln!("prune crash points exercised: {marked} in the mark phase, {swept} in the sweep phase");
}

#[test]
fn backups_running_while_prune_loops_with_no_grace_lose_nothing() {
    let fx = fixture();
    let dir = fx.base.join("repo");
    let rounds = 10;
    let sources: Vec<PathBuf> = (0..3)
        .map(|t| {
            let s = fx.base.join(format!("conc-{t}"));
            write(&s.join("shared.bin"), &bytes(1, 600 * 1024));
            s
        })
        .collect();
    let done = std::sync::atomic::AtomicBool::new(false);
    let acknowledged = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        let mut backups = Vec::new();
        for (t, src) in sources.iter().enumerate() {
            let (fx, dir, acknowledged) = (&fx, &dir, &acknowledged);
            backups.push(sc.spawn(move || {
                let repo = fx.repo(dir, &format!("cw{t}"));
                for r in 0..rounds {
                    // Each round changes the tree: a new file, and the previous round's goes away.
                    let _ = std::fs::remove_file(src.join(format!("r{}.bin", r.max(1) - 1)));
                    write(&src.join(format!("r{r}.bin")), &bytes(1000 + t as u64 * 100 + r, 300 * 1024));
                    let content = files(src);
                    let s = backup(
                        &repo,
                        vec![BackupSource::Paths(vec![src.clone()])],
                        &BackupOptions::default(),
                        &NoProgress,
                    )
                    .unwrap();
                    let id = s.snapshot_id.unwrap();
                    acknowledged.lock().unwrap().push((id, src.clone(), content));
                    // Forget this source's older snapshots now and then, so prune has work.
                    if r % 2 == 1 {
                        for (sid, snap) in repo.list_snapshots().unwrap() {
                            let mine = snap.paths().iter().any(|p| p == src.as_os_str().as_encoded_bytes());
                            if mine && sid != id {
                                repo.remove_snapshot(&sid).unwrap();
                                acknowledged.lock().unwrap().retain(|(a, _, _)| *a != sid);
                            }
                        }
                    }
                }
            }));
        }
        let (fx, dir, done) = (&fx, &dir, &done);
        let pruner = sc.spawn(move || {
            let repo = fx.repo(dir, "cp");
            let o = PruneOptions { lease_timeout_secs: 3600, ..eager() };
            let (mut runs, mut sweeps) = (0, 0);
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                match run(&repo, &o, false) {
                    Ok((p, _)) => sweeps += p.sweep.is_some() as usize,
                    Err(e) => panic!("prune failed during concurrent backups: {e}"),
                }
                runs += 1;
                if finished {
                    return (runs, sweeps);
                }
            }
        });
        let results: Vec<_> = backups.into_iter().map(|b| b.join()).collect();
        // Stop the prune loop whatever happened, then report.
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        for r in results {
            if let Err(e) = r {
                std::panic::resume_unwind(e);
            }
        }
        let (runs, sweeps) = pruner.join().unwrap();
        eprintln!("concurrent: {} backups, {runs} prune runs ({sweeps} sweeps) in parallel", 3 * rounds);
        assert!(sweeps > 0, "prune never swept while backups ran");
    });
    let repo = fx.repo(&dir, "final");
    settle(&repo);
    let report = check(&repo, &CheckOptions { read_data: ReadData::All }).unwrap();
    assert_eq!(report.errors(), 0, "{:#?}", report.findings);
    let acked = acknowledged.into_inner().unwrap();
    assert!(acked.len() >= 3);
    for (i, (id, src, content)) in acked.iter().enumerate() {
        let target = fx.base.join(format!("restore-conc-{i}"));
        let s = repo.load_snapshot(id).unwrap();
        let o = cairn::restore::RestoreOptions { target: target.clone(), ..Default::default() };
        let r = cairn::restore::restore(&repo, &s.root(), None, &o, &cairn::restore::NoRestoreProgress).unwrap();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(&files(&target.join(src.strip_prefix("/").unwrap())), content, "snapshot {id:?} of {src:?}");
    }
}

#[test]
fn a_crash_at_any_delete_of_forget_loses_nothing_kept() {
    let fx = fixture();
    let dir = fx.base.join("repo");
    // Three more snapshots to forget, so forget deletes several objects.
    let repo = fx.repo(&dir, "c1");
    let src_c = fx.base.join("src-c");
    for i in 0..3 {
        write(&src_c.join("f.bin"), &bytes(50 + i, 200 * 1024));
        snapshot_of(&repo, &src_c);
    }
    drop(repo);
    let policy = cairn::forget::Rules::Policy(cairn::retention::Policy {
        last: Some(cairn::retention::Count::Last(1)),
        ..Default::default()
    });
    let mut points = 0;
    let removals = {
        let repo = fx.repo(&dir, "c-count");
        let plan = cairn::forget::plan(
            &cairn::select::list_all(&repo).unwrap(),
            cairn::forget::GroupBy::default(),
            &policy,
            &jiff::tz::TimeZone::UTC,
        );
        plan.iter().flat_map(|g| &g.decisions).filter(|d| !d.keep).count() as u64
    };
    assert_eq!(removals, 2);
    for i in 0..removals {
        let copy = fx.base.join(format!("forget-crash-{i}"));
        copy_dir(&dir, &copy);
        let (repo, fb) =
            fx.faulty(&copy, FaultPlan { fail_delete: Some(i), crash: true, ..Default::default() }, &format!("cf{i}"));
        let snaps = cairn::select::list_all(&repo).unwrap();
        let plan = cairn::forget::plan(&snaps, cairn::forget::GroupBy::default(), &policy, &jiff::tz::TimeZone::UTC);
        assert!(cairn::forget::execute(&repo, &plan, false).is_err(), "forget went through a crash at delete {i}");
        assert!(fb.has_crashed());
        points += 1;
        drop(repo);
        assert_intact(&fx, &copy, &format!("forget crash at delete {i}"));
        let repo = fx.repo(&copy, &format!("cf{i}-after"));
        let snaps = cairn::select::list_all(&repo).unwrap();
        let plan = cairn::forget::plan(&snaps, cairn::forget::GroupBy::default(), &policy, &jiff::tz::TimeZone::UTC);
        cairn::forget::execute(&repo, &plan, false).unwrap();
        assert_eq!(repo.list_snapshots().unwrap().len(), 2, "one per group after the retried forget");
        settle(&repo);
        assert_intact(&fx, &copy, &format!("forget crash at delete {i}, then forget and prune"));
    }
    eprintln!("forget crash points exercised: {points}");
}

#[test]
fn a_snapshot_prune_cannot_read_stops_it_before_anything_is_deleted() {
    let fx = fixture();
    let dir = fx.base.join("repo");
    run(&fx.repo(&dir, "c1"), &eager(), false).unwrap();
    // Damage the kept snapshot's manifest: it may reference anything, so the sweep must not guess.
    let snap = dir.join(fx.kept.path());
    let mut b = std::fs::read(&snap).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x40;
    std::fs::write(&snap, &b).unwrap();
    let packs = pack_files(&dir);
    let e = run(&fx.repo(&dir, "c2"), &eager(), false).unwrap_err();
    assert!(e.to_string().contains("cannot read every snapshot"), "{e}");
    assert_eq!(pack_files(&dir), packs, "prune deleted packs past an unreadable snapshot");
}

#[test]
fn prune_refuses_storage_without_conditional_create_unless_forced() {
    let fx = fixture();
    let dir = fx.base.join("repo");
    // OpenDAL's fs service cannot create an object only if its name is free.
    let backend: DynBackend = Arc::new(cairn::backend::opendal::OpendalBackend::fs(&dir).unwrap());
    assert!(!backend.guarantees().conditional_create);
    let repo = Repository::open_with_keys(backend, fx.keys.clone(), fx.key_id, &opts(&fx.base.join("c-fs")))
        .and_then(|r| r.readable())
        .unwrap();
    let packs = pack_files(&dir);
    let e = run(&repo, &eager(), false).unwrap_err();
    assert!(e.to_string().contains("cannot keep two prunes apart"), "{e}");
    assert_eq!(e.lifted_by(), Some(cairn::error::Override::Force), "{e}");
    assert_eq!(pack_files(&dir), packs);
    // A dry run is fine; so is --force.
    run(&repo, &eager(), true).unwrap();
    run(&repo, &PruneOptions { force: true, ..eager() }, false).unwrap();
}

/// The race behind format-spec §10.3 step 4, made deterministic: a backup starts after a mark was stored, syncs the
/// index, and then — before it reads the marks — a sweep runs to the end (new index, packs deleted, mark deleted).
/// Without the second look at the marks the backup would find no mark, trust its freshly synced (now stale) index
/// and reference deleted packs.
#[test]
fn a_sweep_between_a_writers_index_sync_and_its_mark_read_cannot_make_it_reference_deleted_packs() {
    let fx = fixture();
    let dir = fx.base.join("repo");
    // Forget everything: the mark condemns every pack; B's content then exists only in condemned packs.
    let repo = fx.repo(&dir, "c1");
    repo.remove_snapshot(&fx.kept).unwrap();
    run(&repo, &eager(), false).unwrap();
    drop(repo);

    let (base, keys, key_id, d) = (fx.base.clone(), fx.keys.clone(), fx.key_id, dir.clone());
    let seen_index = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let fired = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (si, fi) = (seen_index.clone(), fired.clone());
    let hook = cairn::backend::fault::ListHook(Arc::new(move |prefix: &str| {
        use std::sync::atomic::Ordering::SeqCst;
        if prefix.starts_with("index") {
            si.store(true, SeqCst);
        } else if prefix.starts_with("prune") && si.load(SeqCst) && !fi.swap(true, SeqCst) {
            // The sweep, from another process, right after the writer's index sync.
            let other = open_local(&d, &keys, key_id, &base.join("c-sweeper"));
            let (p, r) = run(&other, &PruneOptions { force: true, ..eager() }, false).unwrap();
            assert!(p.sweep.is_some() && r.unwrap().deleted_packs > 0, "the interleaved sweep did nothing: {p:#?}");
        }
    }));
    let (repo, _) = fx.faulty(&dir, FaultPlan { before_list: Some(hook), ..Default::default() }, "c-writer");
    // Warm the writer's cache with the old index first, as a host that backed up before would have it.
    repo.sync_index().unwrap();
    seen_index.store(false, std::sync::atomic::Ordering::SeqCst);
    let id = snapshot_of(&repo, &fx.src_b);
    assert!(fired.load(std::sync::atomic::Ordering::SeqCst), "the sweep never ran inside the writer's start");
    let fresh = fx.repo(&dir, "c-check");
    let report = check(&fresh, &CheckOptions { read_data: ReadData::All }).unwrap();
    assert_eq!(report.errors(), 0, "the backup references deleted packs: {:#?}", report.findings);
    restore_matches(&fresh, &id, &fx.src_b, &fx.base.join("restore-race"));
}

/// A pack whose stored size is not what its index entry says (damaged, or misdescribed by a forged index file) is
/// left alone by the repack and reported, never read as far as the entry says and condemned: here a pack with bytes
/// appended, pruned with `force` past the listing's disagreement.
#[test]
fn a_pack_longer_than_its_index_entry_is_skipped_by_the_repack_not_condemned() {
    let fx = fixture();
    let dir = fx.base.join("repo");
    let repo = fx.repo(&dir, "c1");
    let (plan, _) = run(&repo, &eager(), true).unwrap();
    let r = &plan.mark.as_ref().expect("a mark").repack.first().expect("a pack to repack").pack;
    let path = cairn::layout::pack_path(r.kind, &r.id);
    let mut f = std::fs::File::options().append(true).open(dir.join(&path)).unwrap();
    std::io::Write::write_all(&mut f, b"appended").unwrap();
    drop(f);
    let (_, report) = run(&repo, &PruneOptions { force: true, ..eager() }, false).unwrap();
    let skipped = report.unwrap().repack_skipped;
    let line = skipped.iter().find(|l| l.starts_with(&path)).unwrap_or_else(|| panic!("{path} repacked: {skipped:?}"));
    assert!(line.contains(&format!("{} bytes, the index says {}", r.size + 8, r.size)), "{line}");
    assert!(dir.join(&path).exists());
}
