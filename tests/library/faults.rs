//! Crash safety of backup under injected storage faults (src/backend/fault.rs).
//!
//! For every write a backup makes (packs, index, snapshot, lease objects), a copy of a repository that already holds
//! an acknowledged snapshot runs the backup with the process "crashing" at that write (that write and everything
//! after it fail). Afterwards, through plain storage and a fresh cache: `check` finds no error (unindexed leftovers
//! are notes), the acknowledged snapshot restores byte for byte, and the same backup run again succeeds and
//! restores byte for byte too. Lost acknowledged writes and failing listings are checked as well.

use super::fixtures::{
    bytes, copy_dir, init_local, local, open_faulty, open_local, opts, restore_matches, snapshot_of, write,
};
use cairn::backend::fault::{FaultBackend, FaultPlan};
use cairn::backup::{backup, BackupOptions, BackupSource, NoProgress};
use cairn::check::{check, CheckOptions, ReadData, Severity};
use cairn::crypto::MasterKeys;
use cairn::id::{KeyId, SnapshotId};
use cairn::repair::{repair_index, RepairOptions};
use cairn::repository::{ReadRepository, Repository};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const PASSWORD: &[u8] = b"fault injection";

struct Fixture {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    keys: MasterKeys,
    key_id: KeyId,
    first: SnapshotId,
    src_a: PathBuf,
    src_b: PathBuf,
    /// The options of the backups of `src_b`.
    opts: BackupOptions,
}

/// A repository with one acknowledged snapshot of `src_a`, and a second tree `src_b` to back up.
fn fixture() -> Fixture {
    fixture_with(0, BackupOptions::default())
}

/// [`fixture`] with `small` more files of a few hundred bytes in `src_b`, backed up with `opts`.
fn fixture_with(small: u64, opts: BackupOptions) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let (src_a, src_b) = (base.join("src-a"), base.join("src-b"));
    write(&src_a.join("a.bin"), &bytes(1, 700 * 1024));
    write(&src_a.join("d/b.txt"), b"acknowledged\n");
    write(&src_b.join("shared.bin"), &bytes(1, 700 * 1024));
    write(&src_b.join("new.bin"), &bytes(2, 900 * 1024));
    write(&src_b.join("e/f/g.txt"), b"deep\n");
    write(&src_b.join("empty"), b"");
    for i in 0..small {
        write(&src_b.join(format!("small/{i:02}")), &bytes(100 + i, 300 + i as usize));
    }
    let repo = init_local(&base.join("repo"), PASSWORD, &base.join("cache0"));
    let first = snapshot_of(&repo, &src_a);
    let (keys, key_id) = (repo.keys().clone(), repo.key_id());
    Fixture { _tmp: tmp, base, keys, key_id, first, src_a, src_b, opts }
}

impl Fixture {
    /// A copy of the repository at `dir` behind the fault layer with `plan`, with the cache `base/cache`.
    fn faulty(&self, dir: &Path, plan: FaultPlan, cache: &str) -> (cairn::Result<ReadRepository>, Arc<FaultBackend>) {
        open_faulty(dir, plan, &self.keys, self.key_id, &self.base.join(cache))
    }

    /// A backup of `src_b` into `repo`.
    fn backup_b(&self, repo: &ReadRepository) -> cairn::Result<cairn::backup::BackupResult> {
        backup(repo, vec![BackupSource::Paths(vec![self.src_b.clone()])], &self.opts, &NoProgress)
    }
}

/// Opens `dir` through plain storage with a fresh cache and asserts it is healthy.
fn assert_healthy(fx: &Fixture, dir: &Path, cache: &Path, what: &str) -> ReadRepository {
    let repo = open_local(dir, &fx.keys, fx.key_id, cache);
    let report = check(&repo, &CheckOptions { read_data: ReadData::All }).unwrap();
    assert_eq!(report.errors(), 0, "{what}: check found errors: {:#?}", report.findings);
    repo
}

#[test]
fn a_crash_at_any_write_of_a_backup_loses_nothing_acknowledged() {
    let fx = fixture();
    let (writes, _) = crash_at_every_write(&fx);
    assert!(writes >= 4, "a backup writes packs, an index, a snapshot and a lease: {writes}");
}

/// A backup that writes its index in parts (format-spec §11 step 4: an index file once the stored
/// packs name enough blobs): a crash between two index files, or between a pack and the index
/// file naming it, leaves a repository that check accepts and the next backup completes.
#[test]
fn a_crash_between_the_index_files_of_a_backup_loses_nothing_acknowledged() {
    // Inline content off (format-spec §7.3): the fixture's small files must be data blobs here.
    let opts = BackupOptions { test_blob_limits: Some((2, 3)), inline_max: Some(0), ..Default::default() };
    let fx = fixture_with(10, opts);
    let (_, index_files) = crash_at_every_write(&fx);
    // 14 data blobs at 2 per pack, an index file once the packs name 3 blobs or more.
    assert!(index_files >= 4, "the backup wrote its index in {index_files} files");
}

/// Counts the writes and index files of `fx`'s second backup on a throwaway copy, then crashes
/// that backup at each write in turn and checks what is left (see the module's documentation).
fn crash_at_every_write(fx: &Fixture) -> (u64, usize) {
    let repo_dir = fx.base.join("repo");
    let probe_dir = fx.base.join("probe");
    copy_dir(&repo_dir, &probe_dir);
    let index_before = local(&probe_dir).list("index/").unwrap().len();
    let (repo, counting) = fx.faulty(&probe_dir, FaultPlan::default(), "c-probe");
    fx.backup_b(&repo.unwrap()).unwrap();
    let writes = counting.counts().writes.load(std::sync::atomic::Ordering::SeqCst);
    let index_files = local(&probe_dir).list("index/").unwrap().len() - index_before;

    // Blobs go to one of two open data packs at random, so the number of writes varies by one or
    // two between runs: go past the count, and treat a run that never reached write n as a plain
    // successful backup.
    let mut exercised = 0;
    for n in 0..writes + 2 {
        let dir = fx.base.join(format!("crash-{n}"));
        copy_dir(&repo_dir, &dir);
        let cache = fx.base.join(format!("c-crash-{n}"));
        let plan = FaultPlan { fail_write: Some(n), crash: true, ..Default::default() };
        let (repo, faulty) = fx.faulty(&dir, plan, &format!("c-crash-{n}"));
        let r = repo.and_then(|repo| fx.backup_b(&repo));
        if !faulty.has_crashed() {
            assert!(r.is_ok(), "no fault was injected, yet the backup failed: {:?}", r.err());
            std::fs::remove_dir_all(&dir).unwrap();
            continue;
        }
        exercised += 1;
        // A backup may only report success if its snapshot was stored before the crash (the last
        // writes, such as the lease's release, come after the commit point).
        let acknowledged = r.ok().map(|res| res.snapshot_id.unwrap());

        // After the "restart": plain storage, the same cache (as after a real crash) and a fresh one.
        for (label, c) in [("same cache", cache.clone()), ("fresh cache", fx.base.join(format!("c-fresh-{n}")))] {
            let repo = assert_healthy(fx, &dir, &c, &format!("crash at write {n}, {label}"));
            let mut snaps = repo.snapshot_ids().unwrap();
            snaps.sort();
            let mut expected: Vec<SnapshotId> = std::iter::once(fx.first).chain(acknowledged).collect();
            expected.sort();
            assert_eq!(snaps, expected, "crash at write {n}: a snapshot appeared or vanished");
            restore_matches(&repo, &fx.first, &fx.src_a, &fx.base.join(format!("r-{n}-{}", label.len())));
            if let Some(id) = acknowledged {
                restore_matches(&repo, &id, &fx.src_b, &fx.base.join(format!("ra-{n}-{}", label.len())));
            }
        }
        // The next backup succeeds and restores.
        let repo = assert_healthy(fx, &dir, &cache, &format!("crash at write {n}, before the retry"));
        let again = fx.backup_b(&repo).unwrap_or_else(|e| panic!("crash at write {n}: the next backup failed: {e}"));
        let id = again.snapshot_id.unwrap();
        restore_matches(&repo, &id, &fx.src_b, &fx.base.join(format!("r2-{n}")));
        assert_healthy(
            fx,
            &dir,
            &fx.base.join(format!("c-after-{n}")),
            &format!("crash at write {n}, after the retry"),
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
    // The probe's count may be up to two above a later run's (see above).
    assert!(exercised + 2 >= writes, "only {exercised} of about {writes} crash points were reached");
    eprintln!("backup crash points exercised: {exercised}");
    (writes, index_files)
}

#[test]
fn a_failing_listing_stops_a_backup_without_damage() {
    let fx = fixture();
    let repo_dir = fx.base.join("repo");
    for n in 0..3 {
        let dir = fx.base.join(format!("list-{n}"));
        copy_dir(&repo_dir, &dir);
        let (repo, _) = fx.faulty(&dir, FaultPlan { fail_list: Some(n), ..Default::default() }, &format!("cl-{n}"));
        let r = repo.and_then(|repo| fx.backup_b(&repo));
        if r.is_ok() {
            continue; // this listing was not on the backup's path
        }
        let repo = assert_healthy(&fx, &dir, &fx.base.join(format!("cl-fresh-{n}")), &format!("list {n} failed"));
        restore_matches(&repo, &fx.first, &fx.src_a, &fx.base.join(format!("rl-{n}")));
    }
}

#[test]
fn a_lost_acknowledged_write_is_found_by_check() {
    let fx = fixture();
    let repo_dir = fx.base.join("repo");
    // Lose each pack and index write of the second backup in turn: check must notice every time.
    for (prefix, n) in [("data/", 0u64), ("tree/", 0), ("index/", 0)] {
        let dir = fx.base.join(format!("lost-{}", prefix.trim_end_matches('/')));
        copy_dir(&repo_dir, &dir);
        let plan = FaultPlan { lose_write: Some(n), only_prefix: Some(prefix.into()), ..Default::default() };
        let (repo, _) = fx.faulty(&dir, plan, &format!("cx-{prefix}"));
        fx.backup_b(&repo.unwrap()).unwrap();
        let plain = open_local(&dir, &fx.keys, fx.key_id, &fx.base.join(format!("cy-{prefix}")));
        let report = check(&plain, &CheckOptions::default()).unwrap();
        assert!(report.errors() > 0, "a lost {prefix} write went unnoticed: {:#?}", report.findings);
        // The acknowledged first snapshot is untouched.
        restore_matches(&plain, &fx.first, &fx.src_a, &fx.base.join(format!("rx-{}", prefix.trim_end_matches('/'))));
    }
}

#[test]
fn check_without_read_data_reads_nothing_under_data() {
    let fx = fixture();
    let (repo, counting) = fx.faulty(&fx.base.join("repo"), FaultPlan::default(), "cr");
    let report = check(&repo.unwrap(), &CheckOptions::default()).unwrap();
    assert_eq!(report.errors(), 0);
    let reads = counting.counts().read_paths.lock().unwrap().clone();
    assert!(reads.iter().any(|p| p.starts_with("tree/")), "tree packs are read: {reads:?}");
    assert!(!reads.iter().any(|p| p.starts_with("data/")), "check read under data/: {reads:?}");
}

#[test]
fn repair_index_adopts_the_packs_of_a_backup_that_crashed_before_its_index() {
    let fx = fixture();
    let dir = fx.base.join("repo");
    // Crash at the first index write: the packs are stored, nothing names them.
    let plan = FaultPlan { fail_write: Some(0), crash: true, only_prefix: Some("index/".into()), ..Default::default() };
    let (repo, _) = fx.faulty(&dir, plan, "c1");
    assert!(repo.and_then(|repo| fx.backup_b(&repo)).is_err());
    let repo = open_local(&dir, &fx.keys, fx.key_id, &fx.base.join("c2"));
    let before = check(&repo, &CheckOptions::default()).unwrap();
    let leftovers = before.findings.iter().filter(|f| f.code == "pack-unindexed").count();
    assert!(leftovers >= 2, "the crashed backup left data and tree packs: {:#?}", before.findings);

    let report = repair_index(&repo, &RepairOptions { dry_run: false, min_age_secs: 0 }).unwrap();
    assert_eq!(report.indexed.len(), leftovers, "{report:?}");
    let after = check(&repo, &CheckOptions { read_data: ReadData::All }).unwrap();
    assert_eq!(after.errors(), 0, "{:#?}", after.findings);
    assert!(after.findings.iter().all(|f| f.severity != Severity::Info || f.code != "pack-unindexed"));
    // The adopted blobs count as stored: the retried backup adds no data blob.
    let again = fx.backup_b(&repo).unwrap();
    assert!(again.summary.bytes_added < 64 * 1024, "the retry stored the data again: {:?}", again.summary);
    restore_matches(&repo, &again.snapshot_id.unwrap(), &fx.src_b, &fx.base.join("r"));
}

#[test]
fn a_planted_key_file_cannot_stop_the_real_key_from_opening() {
    use cairn::crypto::KdfParams;
    use cairn::keyfile::{KeyFile, KeyFileV1, KeyKind, KEY_MAGIC};
    let fx = fixture();
    let dir = fx.base.join("repo");
    // A key file named to be tried first, asking for far more than any reader allows.
    let planted = KeyFile::V1(KeyFileV1 {
        kind: KeyKind::Full,
        repo_id: fx.keys.repo_id,
        created: cairn::tree::Time::now(),
        host: "attacker".into(),
        user: "attacker".into(),
        kdf: KdfParams { m_kib: 64 * 1024 * 1024, t: 1000, p: 64 },
        salt: [0; 32],
        sealed: vec![0; 64],
    });
    let mut bytes = KEY_MAGIC.to_vec();
    bytes.extend_from_slice(&postcard::to_allocvec(&planted).unwrap());
    write(&dir.join("keys").join("0".repeat(64)), &bytes);
    let repo = Repository::open(local(&dir), PASSWORD, &opts(&fx.base.join("c-planted")))
        .and_then(|r| r.readable())
        .unwrap_or_else(|e| panic!("the planted key file stopped the open: {e}"));
    restore_matches(&repo, &fx.first, &fx.src_a, &fx.base.join("r-planted"));
}
