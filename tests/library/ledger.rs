//! The audit ledger (format-spec §13): a scripted sequence of operations, a write-only key's backup among them,
//! records one entry each and verifies clean; deleting a snapshot object, a ledger object, or rolling `ledger/` back
//! to an older copy is named by `verify` (the rollback through the client's seen heads and through an anchor); a
//! write-only key cannot make verify accept an entry claiming another key, nor a removal of its own; concurrent
//! appenders make a DAG that verifies; and a crash between an action and its entry leaves exactly that action
//! unrecorded, which verify names.

use super::fixtures::{copy_dir, local, opts, write};
use cairn::backend::fault::{FaultBackend, FaultPlan};
use cairn::backup::{backup, BackupOptions, BackupSource, NoProgress};
use cairn::check::{check, CheckOptions, ReadData};
use cairn::codec::ledger::{encode_entry, NewEntry};
use cairn::forget::{self, GroupBy, Rules};
use cairn::id::{EntryId, SnapshotId};
use cairn::layout::StoredId;
use cairn::ledger::{entry_path, EntryBody, EntryKind, Event, Removed};
use cairn::ops::ledger::{self, Finding};
use cairn::prune::{self, PruneOptions};
use cairn::repository::ledger::heads_of;
use cairn::repository::{InitOptions, ReadRepository, Repository};
use cairn::retention::{Count, Policy};
use cairn::time::Time;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const ADMIN: &[u8] = b"admin";
const WO: &[u8] = b"web-1 write-only";

struct Fx {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    dir: PathBuf,
    src: PathBuf,
}

impl Fx {
    /// A new repository (password [`ADMIN`], its cache `c-admin`) and a small source tree.
    fn new() -> Fx {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_path_buf();
        let (dir, src) = (base.join("repo"), base.join("src"));
        write(&src.join("a.txt"), b"alpha\n");
        write(&src.join("d/b.txt"), b"beta\n");
        Repository::init(local(&dir), ADMIN, &InitOptions::default(), &opts(&base.join("c-admin"))).unwrap();
        Fx { _tmp: tmp, base, dir, src }
    }

    /// Opens `dir` with `password` and the cache `cache`.
    fn open_at(&self, dir: &Path, password: &[u8], cache: &str) -> Repository {
        Repository::open(local(dir), password, &opts(&self.base.join(cache))).unwrap()
    }

    /// Opens `dir` with [`ADMIN`] (so entries are signed) behind a fault layer with `plan`.
    fn faulty(&self, dir: &Path, plan: FaultPlan, cache: &str) -> (cairn::Result<ReadRepository>, Arc<FaultBackend>) {
        let fb = Arc::new(FaultBackend::new(local(dir), plan));
        (Repository::open(fb.clone(), ADMIN, &opts(&self.base.join(cache))).and_then(|r| r.readable()), fb)
    }

    fn admin(&self) -> ReadRepository {
        self.open_at(&self.dir, ADMIN, "c-admin").readable().unwrap()
    }

    fn backup(&self, repo: &Repository, host: Option<&str>) -> SnapshotId {
        write(&self.src.join("n.txt"), cairn::crypto::random_32().as_slice());
        let opts = BackupOptions { host: host.map(str::to_string), ..Default::default() };
        let r = backup(repo, vec![BackupSource::Paths(vec![self.src.clone()])], &opts, &NoProgress).unwrap();
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        r.snapshot_id.unwrap()
    }
}

/// (code, object) of each finding, sorted.
fn named(findings: &[Finding]) -> Vec<(&'static str, String)> {
    let mut v: Vec<(&'static str, String)> = findings.iter().map(|f| (f.code, f.object.clone())).collect();
    v.sort();
    v
}

fn kinds(repo: &Repository) -> Vec<EntryKind> {
    ledger::log(repo, None, None).unwrap().iter().map(|e| e.kind).collect()
}

/// The id of the entry that records `event`'s kind and names snapshot `s` among what it created.
fn entry_of(repo: &Repository, s: &SnapshotId) -> EntryId {
    let log = ledger::log(repo, None, None).unwrap();
    log.iter().find(|e| e.event.as_ref().is_some_and(|ev| ev.created().contains(s))).unwrap().id
}

#[test]
fn a_scripted_sequence_records_one_entry_per_operation_and_verifies_clean() {
    use EntryKind::*;
    let fx = Fx::new();
    let admin = fx.admin();
    let s1 = fx.backup(&admin, Some("db-1"));
    let s2 = fx.backup(&admin, Some("db-1"));
    let wo_id = admin.add_password_for_hosts(WO, true, &["web-1".into()]).unwrap();
    let wo = fx.open_at(&fx.dir, WO, "c-wo");
    let s3 = fx.backup(&wo, Some("web-1"));
    // forget: keep the last snapshot of each host.
    let listed = cairn::select::list_all(&admin).unwrap();
    let rules = Rules::Policy(Policy { last: Some(Count::Last(1)), ..Default::default() });
    let groups = forget::plan(&listed, GroupBy::default(), &rules, &jiff::tz::TimeZone::UTC);
    assert_eq!(forget::execute(&admin, &groups, false).unwrap(), vec![s1]);
    prune::run(&admin, &PruneOptions::default(), false).unwrap();
    assert_eq!(check(&admin, &CheckOptions { read_data: ReadData::All }).unwrap().errors(), 0);
    let other = admin.add_password_for_hosts(b"spare", true, &[]).unwrap();
    admin.remove_key(&other, false).unwrap();

    assert_eq!(kinds(&admin), vec![Init, Backup, Backup, KeyAdd, Backup, Forget, Prune, CheckData, KeyAdd, KeyRemove]);
    let log = ledger::log(&admin, None, None).unwrap();
    // Each entry's parent is the one before (one writer at a time: a chain).
    for w in log.windows(2) {
        assert_eq!(w[1].parents, vec![w[0].id]);
    }
    // The write-only key's backup is its own, with its snapshot, host and sources.
    let e = &log[4];
    assert_eq!(e.key_id, wo_id);
    match e.event.as_ref().unwrap() {
        Event::Backup { snapshot, sources, files, .. } => {
            assert_eq!((*snapshot, sources.clone(), *files), (s3, vec![fx.src.display().to_string()], 3));
        }
        other => panic!("{other:?}"),
    }
    match log[5].event.as_ref().unwrap() {
        Event::Forget { removed } => {
            assert_eq!(removed.len(), 1);
            assert_eq!(removed[0].snapshot, s1);
            let want = format!("policy: kept by no rule (host db-1, paths {}", fx.src.display());
            assert!(removed[0].rule.starts_with(&want), "{}", removed[0].rule);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(log[9].event, Some(Event::KeyRemove { key: other }));
    // The write-only key reads headers, not bodies.
    let headers = ledger::log(&wo, None, None).unwrap();
    assert_eq!(headers.len(), 10);
    assert!(headers.iter().all(|e| e.event.is_none() && e.host.is_none()));
    // --since and --kind.
    let since = ledger::log(&admin, Some(log[6].time), None).unwrap();
    assert_eq!(since.iter().map(|e| e.kind).collect::<Vec<_>>(), vec![Prune, CheckData, KeyAdd, KeyRemove]);
    let backups = ledger::log(&admin, None, Some(Backup)).unwrap();
    assert_eq!(backups.iter().map(|e| e.id).collect::<Vec<_>>(), vec![log[1].id, log[2].id, log[4].id]);

    let report = ledger::verify(&admin, None).unwrap();
    assert_eq!(report.findings, vec![], "{:#?}", report.findings);
    assert_eq!((report.entries, report.heads.clone(), report.snapshots), (10, vec![log[9].id], 2));
    // The anchor of now verifies too; one of another repository is a usage error.
    let head = ledger::head(&admin).unwrap();
    assert_eq!(head.heads, vec![log[9].id]);
    assert!(ledger::verify(&admin, Some(&head.line)).unwrap().findings.is_empty());
    let other_repo = Fx::new();
    let foreign = ledger::head(&other_repo.admin()).unwrap().line;
    assert!(matches!(ledger::verify(&admin, Some(&foreign)), Err(cairn::Error::Usage(_))));
    let _ = s2;
}

#[test]
fn deleting_a_snapshot_or_a_ledger_entry_is_named() {
    let fx = Fx::new();
    let admin = fx.admin();
    let s1 = fx.backup(&admin, None);
    let s2 = fx.backup(&admin, None);
    let (e1, e2) = (entry_of(&admin, &s1), entry_of(&admin, &s2));
    drop(admin);

    // A snapshot deleted in storage (no key needed).
    let d = fx.base.join("r-snap");
    copy_dir(&fx.dir, &d);
    std::fs::remove_file(d.join(s1.path())).unwrap();
    let r = ledger::verify(&fx.open_at(&d, ADMIN, "c-snap").readable().unwrap(), None).unwrap();
    assert_eq!(named(&r.findings), vec![("snapshot-missing", s1.path())]);
    assert!(r.findings[0].message.contains(&entry_path(&e1)), "{}", r.findings[0].message);

    // A ledger entry in the middle: its child names it, and its snapshot is unrecorded.
    let d = fx.base.join("r-mid");
    copy_dir(&fx.dir, &d);
    std::fs::remove_file(d.join(entry_path(&e1))).unwrap();
    let r = ledger::verify(&fx.open_at(&d, ADMIN, "c-mid").readable().unwrap(), None).unwrap();
    assert_eq!(named(&r.findings), vec![("entry-missing", entry_path(&e1)), ("snapshot-unrecorded", s1.path())]);

    // The newest entry: only a client that saw it knows (the admin's cache did).
    let d = fx.base.join("r-head");
    copy_dir(&fx.dir, &d);
    std::fs::remove_file(d.join(entry_path(&e2))).unwrap();
    let fresh = ledger::verify(&fx.open_at(&d, ADMIN, "c-head").readable().unwrap(), None).unwrap();
    assert_eq!(named(&fresh.findings), vec![("snapshot-unrecorded", s2.path())]);
    let seen = ledger::verify(&fx.open_at(&d, ADMIN, "c-admin").readable().unwrap(), None).unwrap();
    assert_eq!(named(&seen.findings), vec![("entry-missing", entry_path(&e2)), ("snapshot-unrecorded", s2.path())]);
    assert!(seen.findings.iter().any(|f| f.message.contains("seen by this client")));
}

#[test]
fn rolling_the_ledger_back_is_detected_through_the_seen_heads_and_the_anchor() {
    let fx = Fx::new();
    let admin = fx.admin();
    fx.backup(&admin, None);
    let old = fx.base.join("ledger-old");
    copy_dir(&fx.dir.join("ledger"), &old);
    let s2 = fx.backup(&admin, None);
    let e2 = entry_of(&admin, &s2);
    let anchor = ledger::head(&admin).unwrap().line;
    drop(admin);
    // Someone with storage access removes the newest backup and puts the old ledger back.
    std::fs::remove_dir_all(fx.dir.join("ledger")).unwrap();
    copy_dir(&old, &fx.dir.join("ledger"));
    std::fs::remove_file(fx.dir.join(s2.path())).unwrap();

    // Consistent in itself: a client with no memory and no anchor sees nothing.
    let stranger = fx.open_at(&fx.dir, ADMIN, "c-stranger").readable().unwrap();
    assert_eq!(ledger::verify(&stranger, None).unwrap().findings, vec![]);
    // The anchor names what is gone.
    let r = ledger::verify(&stranger, Some(&anchor)).unwrap();
    assert_eq!(named(&r.findings), vec![("entry-missing", entry_path(&e2))]);
    assert!(r.findings[0].message.contains("anchor"));
    // So do the heads the admin's client saw, and they stay remembered after an append.
    let admin = fx.admin();
    let r = ledger::verify(&admin, None).unwrap();
    assert_eq!(named(&r.findings), vec![("entry-missing", entry_path(&e2))]);
    fx.backup(&admin, None);
    let r = ledger::verify(&admin, None).unwrap();
    assert_eq!(named(&r.findings), vec![("entry-missing", entry_path(&e2))]);
}

/// Writes an entry for `event` as `repo`'s key holder could: its own key material and signing secret, claiming
/// key `claim`, on the current heads.
fn plant_entry(repo: &Repository, claim: cairn::id::KeyId, event: Event) -> EntryId {
    let (entries, _) = repo.ledger_entries().unwrap();
    let new =
        NewEntry { key_id: claim, sign_secret: repo.key_sign_secret(), time: Time::now(), parents: heads_of(&entries) };
    let body = EntryBody::V1 { host: "web-1".into(), user: "root".into(), event };
    let (id, bytes) = encode_entry(repo.keys(), new, &body);
    repo.backend().write_new(&entry_path(&id), &bytes).unwrap();
    id
}

#[test]
fn a_write_only_key_cannot_forge_another_keys_entry_nor_record_a_removal() {
    let fx = Fx::new();
    let admin = fx.admin();
    let s1 = fx.backup(&admin, None);
    let s2 = fx.backup(&admin, None);
    admin.add_password_for_hosts(WO, true, &["web-1".into()]).unwrap();
    let wo = fx.open_at(&fx.dir, WO, "c-wo");
    assert!(wo.readable().is_err());
    // Delete s1 at storage level and record its "forget" as the admin key, signed with the write-only key's
    // own secret (it has no other).
    std::fs::remove_file(fx.dir.join(s1.path())).unwrap();
    let rule = "explicit".to_string();
    let forged =
        plant_entry(&wo, admin.key_id(), Event::Forget { removed: vec![Removed { snapshot: s1, rule: rule.clone() }] });
    let r = ledger::verify(&admin, None).unwrap();
    assert_eq!(
        named(&r.findings),
        vec![
            ("entry-forged", entry_path(&forged)),
            ("entry-not-permitted", entry_path(&forged)),
            ("snapshot-missing", s1.path())
        ]
    );
    // As itself: attributed to the write-only key, but a removal it may not record.
    std::fs::remove_file(fx.dir.join(s2.path())).unwrap();
    let own = plant_entry(&wo, wo.key_id(), Event::Forget { removed: vec![Removed { snapshot: s2, rule }] });
    let r = ledger::verify(&admin, None).unwrap();
    assert_eq!(named(&r.findings), {
        let mut want = vec![
            ("entry-forged", entry_path(&forged)),
            ("entry-not-permitted", entry_path(&forged)),
            ("entry-not-permitted", entry_path(&own)),
            ("snapshot-missing", s1.path()),
            ("snapshot-missing", s2.path()),
        ];
        want.sort();
        want
    });
    // Bytes written without any key of the repository, under a made-up name, and a foreign name.
    let junk = EntryId([0x42; 32]);
    std::fs::write(
        fx.dir.join(entry_path(&junk)),
        b"CAIRNLG1 not an entry at all, padded to more than sixty-four bytes.....",
    )
    .unwrap();
    std::fs::write(fx.dir.join("ledger/notes.txt"), b"x").unwrap();
    let r = ledger::verify(&admin, None).unwrap();
    assert!(named(&r.findings).contains(&("entry-invalid", entry_path(&junk))));
    assert!(named(&r.findings).contains(&("object-foreign", "ledger/notes.txt".to_string())));
    // The write-only key's own backups verify as its own.
    let fresh = Fx::new();
    let admin = fresh.admin();
    admin.add_password_for_hosts(WO, true, &["web-1".into()]).unwrap();
    fresh.backup(&fresh.open_at(&fresh.dir, WO, "c-wo"), Some("web-1"));
    assert_eq!(ledger::verify(&admin, None).unwrap().findings, vec![]);
}

#[test]
fn concurrent_appenders_make_a_dag_that_verifies() {
    let fx = Fx::new();
    let handles: Vec<Repository> = (0..2).map(|i| fx.open_at(&fx.dir, ADMIN, &format!("c-{i}"))).collect();
    let barrier = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        for r in &handles {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                for i in 0..8u8 {
                    let event = Event::Check { errors: 0, warnings: i as u64, report_hash: cairn::id::Digest([i; 32]) };
                    ledger::record(r, event).unwrap();
                }
            });
        }
    });
    let admin = fx.admin();
    let log = ledger::log(&admin, None, None).unwrap();
    assert_eq!(log.len(), 17);
    // Parents come before children in the reading order.
    let pos: std::collections::HashMap<EntryId, usize> = log.iter().enumerate().map(|(i, e)| (e.id, i)).collect();
    for (i, e) in log.iter().enumerate() {
        assert!(e.parents.iter().all(|p| pos[p] < i));
    }
    let r = ledger::verify(&admin, None).unwrap();
    assert_eq!(r.findings, vec![]);
    assert_eq!(r.entries, 17);
    // One more append joins whatever heads there were.
    ledger::record(&admin, Event::Check { errors: 0, warnings: 0, report_hash: cairn::id::Digest([9; 32]) }).unwrap();
    assert_eq!(ledger::verify(&admin, None).unwrap().heads.len(), 1);
}

#[test]
fn a_crash_between_an_action_and_its_entry_is_named_by_verify() {
    let fx = Fx::new();
    let admin = fx.admin();
    let s1 = fx.backup(&admin, None);
    drop(admin);
    // Every write of a backup (packs, index, snapshot, lease, ledger entry): crash there.
    let probe = fx.base.join("probe");
    copy_dir(&fx.dir, &probe);
    let (repo, counting) = fx.faulty(&probe, FaultPlan::default(), "c-probe");
    fx.backup(&repo.unwrap(), None);
    let writes = counting.counts().writes.load(std::sync::atomic::Ordering::SeqCst);
    let mut unrecorded = 0;
    for n in 0..writes + 2 {
        let dir = fx.base.join(format!("crash-{n}"));
        copy_dir(&fx.dir, &dir);
        let plan = FaultPlan { fail_write: Some(n), crash: true, ..Default::default() };
        let (repo, faulty) = fx.faulty(&dir, plan, &format!("c-crash-{n}"));
        let src = vec![BackupSource::Paths(vec![fx.src.clone()])];
        let r = repo.and_then(|repo| backup(&repo, src, &BackupOptions::default(), &NoProgress));
        let admin = fx.open_at(&dir, ADMIN, &format!("c-after-{n}")).readable().unwrap();
        let mut snaps = admin.snapshot_ids().unwrap();
        snaps.retain(|s| *s != s1);
        let findings = named(&ledger::verify(&admin, None).unwrap().findings);
        match snaps.as_slice() {
            // The crash came before the commit: nothing to record.
            [] => assert_eq!(findings, vec![], "crash at write {n}"),
            // After it: exactly that snapshot is unrecorded, and the backup said so.
            [s] => {
                if findings.is_empty() {
                    continue; // no crash, or it hit a later write (the lease's release)
                }
                assert!(faulty.has_crashed());
                assert_eq!(findings, vec![("snapshot-unrecorded", s.path())], "crash at write {n}");
                let res = r.unwrap();
                assert_eq!(res.snapshot_id, Some(*s));
                assert!(
                    res.warnings.iter().any(|w| w.message.contains("backup ledger entry was not written")),
                    "{:?}",
                    res.warnings
                );
                unrecorded += 1;
            }
            other => panic!("crash at write {n}: {other:?}"),
        }
    }
    assert_eq!(unrecorded, 1, "exactly one write (the ledger entry's) leaves a committed, unrecorded snapshot");

    // forget: the snapshot is removed, the entry's write fails: verify names the snapshot.
    let dir = fx.base.join("crash-forget");
    copy_dir(&fx.dir, &dir);
    let plan =
        FaultPlan { fail_write: Some(0), crash: true, only_prefix: Some("ledger/".into()), ..Default::default() };
    let (repo, _) = fx.faulty(&dir, plan, "c-crash-forget");
    let repo = repo.unwrap();
    let listed = cairn::select::list_all(&repo).unwrap();
    let rules = Rules::Policy(Policy { last: Some(Count::Last(0)), ..Default::default() });
    let groups = forget::plan(&listed, GroupBy::default(), &rules, &jiff::tz::TimeZone::UTC);
    assert!(forget::execute(&repo, &groups, true).is_err());
    let admin = fx.open_at(&dir, ADMIN, "c-after-forget").readable().unwrap();
    assert!(admin.snapshot_ids().unwrap().is_empty());
    assert_eq!(named(&ledger::verify(&admin, None).unwrap().findings), vec![("snapshot-missing", s1.path())]);
}

#[test]
fn an_append_reads_only_the_entries_this_client_has_not_read_before() {
    let fx = Fx::new();
    let other = fx.admin();
    let (repo, counting) = fx.faulty(&fx.dir, FaultPlan::default(), "c-counted");
    let repo = repo.unwrap();
    let check_event = |i: u8| Event::Check { errors: 0, warnings: 0, report_hash: cairn::id::Digest([i; 32]) };
    let ledger_reads =
        || counting.counts().read_paths.lock().unwrap().iter().filter(|p| p.starts_with("ledger/")).count();
    // The first append reads the init entry; its own entry it knows.
    ledger::record(&repo, check_event(1)).unwrap();
    assert_eq!(ledger_reads(), 1);
    ledger::record(&repo, check_event(2)).unwrap();
    assert_eq!(ledger_reads(), 1);
    // Another client's entry is read once.
    ledger::record(&other, check_event(3)).unwrap();
    ledger::record(&repo, check_event(4)).unwrap();
    ledger::record(&repo, check_event(5)).unwrap();
    assert_eq!(ledger_reads(), 2);
    let log = ledger::log(&other, None, None).unwrap();
    assert_eq!(log.len(), 6);
    for w in log.windows(2) {
        assert_eq!(w[1].parents, vec![w[0].id], "still one chain");
    }
    assert_eq!(ledger::verify(&other, None).unwrap().findings, vec![]);
}
