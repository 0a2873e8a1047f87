//! The compliance report on a scripted month (docs/compliance.md): 30 daily backups, each followed by a forget under a
//! policy file and a check reading one day of a 30-day rotation, a weekly prune and one drill, with the ledger dated
//! day by day (`Repository::set_ledger_clock`). The month's ledger verifies; deleting one snapshot object, one ledger
//! object, or rolling `ledger/` back to an older copy is named by verify and fails the report's integrity section;
//! the report on the month passes; and breaking each of the five (a weak key, a missing day, no drill, a check error,
//! a ledger gap) fails exactly that section.

use super::fixtures::{copy_dir, local, opts, write};
use cairn::backup::{backup, BackupOptions, BackupSource, NoProgress};
use cairn::check::{check, CheckOptions, ReadData};
use cairn::crypto::KdfParams;
use cairn::forget::{self, GroupBy, Rules};
use cairn::id::{Digest, SnapshotId};
use cairn::keyfile::{KeyFile, KeyFileV1, KeyKind, KEY_MAGIC};
use cairn::layout::StoredId;
use cairn::ledger::{entry_path, EntryKind, Event, ReadShare};
use cairn::ops::ledger;
use cairn::prune::{self, PruneOptions};
use cairn::report::{self, GatherOptions, Report, Verdict};
use cairn::repository::{InitOptions, ReadRepository, Repository};
use cairn::retention::PolicyFile;
use cairn::time::Time;
use jiff::tz::TimeZone;
use std::path::{Path, PathBuf};

const ADMIN: &[u8] = b"admin";
const DAY: i64 = 86_400;
const POLICY: &str =
    "[[class]]\nname = \"database\"\ntags = [\"db\"]\nkeep-daily = 7\nkeep-weekly = 4\nkeep-monthly = 12\n";
const SECTIONS: [&str; 5] = ["encryption", "retention", "completion", "accessibility", "integrity"];

/// How the scripted month is broken (or not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Break {
    None,
    /// A key file with argon2id parameters below the minimum.
    WeakKey,
    /// No backup on day 15.
    MissingDay,
    /// No drill.
    NoDrill,
    /// A damaged data pack, found by the last check.
    CheckError,
    /// One ledger object (a prune's entry) deleted from storage.
    LedgerGap,
}

struct Month {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    dir: PathBuf,
    /// The end of the month (the report's now).
    now: Time,
    /// `ledger/` as it was after day 15.
    ledger_mid: PathBuf,
    /// The snapshots held at the end.
    held: Vec<SnapshotId>,
}

impl Month {
    fn open(&self, dir: &Path, cache: &str) -> ReadRepository {
        Repository::open(local(dir), ADMIN, &opts(&self.base.join(cache))).and_then(|r| r.readable()).unwrap()
    }

    /// The report on the repository at `dir` (its cache `cache`) for the 30 days before the month's end.
    fn report(&self, dir: &Path, cache: &str) -> Report {
        let repo = self.open(dir, cache);
        let opts = GatherOptions {
            now: self.now,
            since: Time { secs: self.now.secs - 30 * DAY, nanos: 0 },
            policy: Some(PolicyFile::parse(POLICY).unwrap()),
            rpo_secs: DAY,
            rto_ms: None,
            group_by: GroupBy { host: true, paths: true, tags: false, writer: false },
            job: None,
            tz: TimeZone::UTC,
        };
        report::build(&report::gather(&repo, opts, &|_| true).unwrap())
    }
}

fn t(secs: i64) -> Time {
    Time { secs, nanos: 0 }
}

/// Runs the month ending at the start of today (UTC): day `i` (0..30) at noon, `30 - i` days before today.
fn month(brk: Break) -> Month {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let (dir, src) = (base.join("repo"), base.join("src"));
    // Larger than the inline threshold (format-spec §7.3): the files are data blobs, so there are data packs.
    write(&src.join("app.db"), &b"the database\n".repeat(200));
    let repo = Repository::init(local(&dir), ADMIN, &InitOptions::default(), &opts(&base.join("c-admin")))
        .and_then(|r| r.readable())
        .unwrap();
    let policy = Rules::File(PolicyFile::parse(POLICY).unwrap());
    let now = Time::now();
    let today = now.secs - now.secs.rem_euclid(DAY);
    let ledger_mid = base.join("ledger-mid");
    let mut latest = None;
    for i in 0..30i64 {
        let day = t(today - (30 - i) * DAY + 12 * 3600);
        repo.set_ledger_clock(Some(day));
        if !(brk == Break::MissingDay && i == 15) {
            write(&src.join("n.txt"), &cairn::crypto::random_32().repeat(64));
            let o = BackupOptions { time: Some(day), tags: vec!["db".into()], ..Default::default() };
            let r = backup(&repo, vec![BackupSource::Paths(vec![src.clone()])], &o, &NoProgress).unwrap();
            latest = r.snapshot_id;
        }
        let listed = cairn::select::list_all(&repo).unwrap();
        let groups = forget::plan(&listed, GroupBy::default(), &policy, &TimeZone::UTC);
        forget::execute(&repo, &groups, false).unwrap();
        if i % 7 == 6 {
            repo.set_ledger_clock(Some(t(day.secs + 60)));
            prune::run(&repo, &PruneOptions::default(), false).unwrap();
        }
        if i == 20 && brk != Break::NoDrill {
            repo.set_ledger_clock(Some(t(day.secs + 120)));
            let drill = Event::Drill {
                snapshot: latest.unwrap(),
                passed: true,
                report_hash: Digest([7; 32]),
                duration_ms: 90_000,
                rto_ms: Some(4 * 3600 * 1000),
                job: None,
            };
            ledger::record(&repo, drill).unwrap();
        }
        repo.set_ledger_clock(Some(t(day.secs + 180)));
        let rotation = ReadData::Rotation { days: 30, day: i as u64 };
        assert_eq!(check(&repo, &CheckOptions { read_data: rotation }).unwrap().errors(), 0, "day {i}");
        if i == 15 {
            copy_dir(&dir.join("ledger"), &ledger_mid);
        }
    }
    match brk {
        Break::CheckError => {
            let pack = first_file(&dir.join("data")).expect("a data pack");
            let mut bytes = std::fs::read(&pack).unwrap();
            let n = bytes.len();
            bytes[n - 1] ^= 1;
            std::fs::write(&pack, bytes).unwrap();
            repo.set_ledger_clock(Some(t(today - 1800)));
            assert!(check(&repo, &CheckOptions { read_data: ReadData::All }).unwrap().errors() > 0);
        }
        Break::WeakKey => {
            let weak = KeyFile::V1(KeyFileV1 {
                kind: KeyKind::Full,
                repo_id: repo.keys().repo_id,
                created: t(today - 2 * DAY),
                host: "old-host".into(),
                user: "ops".into(),
                kdf: KdfParams { m_kib: 8 * 1024, t: 1, p: 1 },
                salt: [3; 32],
                sealed: vec![0; 64],
            });
            let mut bytes = KEY_MAGIC.to_vec();
            bytes.extend_from_slice(&postcard::to_allocvec(&weak).unwrap());
            write(&dir.join("keys").join("ab".repeat(32)), &bytes);
        }
        Break::LedgerGap => {
            let prunes = ledger::log(&repo, None, Some(EntryKind::Prune)).unwrap();
            std::fs::remove_file(dir.join(entry_path(&prunes[1].id))).unwrap();
        }
        _ => {}
    }
    repo.set_ledger_clock(None);
    let held = cairn::select::list_all(&repo).unwrap().iter().map(|l| l.id).collect();
    Month { _tmp: tmp, base, dir, now: t(today), ledger_mid, held }
}

/// The first file under `dir`, depth first in name order.
fn first_file(dir: &Path) -> Option<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    entries.into_iter().find_map(|p| if p.is_dir() { first_file(&p) } else { Some(p) })
}

fn verdicts(r: &Report) -> Vec<(&'static str, Verdict)> {
    r.sections.iter().map(|s| (s.name, s.verdict)).collect()
}

#[test]
fn the_scripted_month_verifies_passes_the_report_and_tampering_is_named() {
    let m = month(Break::None);
    let repo = m.open(&m.dir, "c-admin");
    // One entry per operation, dated day by day: 30 backups, forgets, 4 prunes, 30 checks with their rotation day,
    // one drill.
    let log = ledger::log(&repo, None, None).unwrap();
    let count = |k: EntryKind| log.iter().filter(|e| e.kind == k).count();
    assert_eq!((count(EntryKind::Backup), count(EntryKind::Prune), count(EntryKind::CheckData)), (30, 4, 30));
    assert_eq!(count(EntryKind::Drill), 1);
    assert!(count(EntryKind::Forget) >= 20, "{}", count(EntryKind::Forget));
    let first = log.iter().find(|e| e.kind == EntryKind::Backup).unwrap();
    assert_eq!(first.time, t(m.now.secs - 30 * DAY + 12 * 3600));
    let shares: Vec<ReadShare> = log
        .iter()
        .filter_map(|e| match &e.event {
            Some(Event::CheckData { share, .. }) => Some(*share),
            _ => None,
        })
        .collect();
    assert_eq!(shares[3], ReadShare::Rotation { days: 30, day: 3 });
    let v = ledger::verify(&repo, None).unwrap();
    assert_eq!(v.findings, vec![], "{:#?}", v.findings);
    assert!(m.held.len() < 30 && m.held.len() >= 7, "{}", m.held.len());

    let r = m.report(&m.dir, "c-admin");
    assert_eq!(r.verdict, Verdict::Pass, "{}", report::render::text(&r));
    assert_eq!(r.failed(), Vec::<&str>::new());
    // The evidence: every day had its backup (forgotten ones counted from their ledger entries), every pack was
    // read by the rotation, the drill is there.
    let text = report::render::text(&r);
    assert!(text.contains("30 backup(s) over 30 day(s), 1 to 1 a day"), "{text}");
    assert!(text.contains("data packs read in the period: "), "{text}");
    let integ = &r.section("integrity").unwrap().data;
    assert_eq!(integ["data_packs_read"], integ["data_packs"], "{integ}");
    assert!(integ["data_packs"].as_u64().unwrap() > 0);
    assert!(text.contains("passed in 90.0s, RTO 4h 0min: margin 3h 58min"), "{text}");
    assert!(text.contains("  daily points: 7 required, 7 held"), "{text}");
    drop(repo);

    // Tampering, each on a copy: named by verify, and integrity fails.
    let snap = m.held[m.held.len() / 2];
    let prune_entry = log.iter().filter(|e| e.kind == EntryKind::Prune).nth(2).unwrap().id;
    let late = log.iter().rev().find(|e| e.kind == EntryKind::CheckData).unwrap().id;
    type Tamper<'a> = (&'a str, Box<dyn Fn(&Path) + 'a>, &'a str, (&'a str, String));
    let cases: Vec<Tamper> = vec![
        (
            "snapshot",
            Box::new(move |d: &Path| std::fs::remove_file(d.join(snap.path())).unwrap()),
            "c-snap",
            ("snapshot-missing", snap.path()),
        ),
        (
            "ledger object",
            Box::new(move |d: &Path| std::fs::remove_file(d.join(entry_path(&prune_entry))).unwrap()),
            "c-entry",
            ("entry-missing", entry_path(&prune_entry)),
        ),
        (
            "rollback",
            Box::new(|d: &Path| {
                std::fs::remove_dir_all(d.join("ledger")).unwrap();
                copy_dir(&m.ledger_mid, &d.join("ledger"));
            }),
            // The admin's client saw the heads the rollback removed.
            "c-admin",
            ("entry-missing", entry_path(&late)),
        ),
    ];
    for (what, tamper, cache, named) in cases {
        let d = m.base.join(format!("r-{}", what.replace(' ', "-")));
        copy_dir(&m.dir, &d);
        tamper(&d);
        let v = ledger::verify(&m.open(&d, cache), None).unwrap();
        let found: Vec<(&str, String)> = v.findings.iter().map(|f| (f.code, f.object.clone())).collect();
        assert!(found.contains(&(named.0, named.1.clone())), "{what}: {found:?}");
        let r = m.report(&d, cache);
        let integ = r.section("integrity").unwrap();
        assert!(integ.reasons.iter().any(|x| x.contains(&named.1)), "{what}: {:?}", integ.reasons);
        // A deleted snapshot is also a daily point removed early (retention); a deleted ledger object touches only
        // integrity.
        let want: &[&str] = match what {
            "snapshot" => &["retention", "integrity"],
            "ledger object" => &["integrity"],
            _ => &r.failed().clone(),
        };
        assert_eq!(r.failed(), want, "{what}: {}", report::render::text(&r));
        assert!(r.failed().contains(&"integrity"));
    }
}

#[test]
fn breaking_each_of_the_five_fails_exactly_that_section() {
    let table = [
        (Break::WeakKey, "encryption", "argon2id m=8192 KiB t=1 p=1 is below the minimum"),
        (Break::MissingDay, "completion", "no backup for 48h 0min"),
        (Break::NoDrill, "accessibility", "no restore drill in the period"),
        (Break::CheckError, "integrity", "error(s)"),
        (Break::LedgerGap, "integrity", "ledger verify: entry-missing ledger/"),
    ];
    for (brk, section, reason) in table {
        let m = month(brk);
        let r = m.report(&m.dir, "c-admin");
        assert_eq!(r.failed(), vec![section], "{brk:?}: {}", report::render::text(&r));
        assert_eq!(r.verdict, Verdict::Fail);
        let s = r.section(section).unwrap();
        assert!(s.reasons.iter().any(|x| x.contains(reason)), "{brk:?}: {:?}", s.reasons);
        for name in SECTIONS.iter().filter(|n| **n != section) {
            assert_eq!(r.section(name).unwrap().verdict, Verdict::Pass, "{brk:?}: {name}");
        }
        assert_eq!(verdicts(&r).len(), 5);
    }
}

/// What the local S3 server (scripts/servers/start-s3.sh: s3s-fs) supports of format-spec §13.7: ledger entries are
/// written create-once (a second write under an entry's name is refused and the entry keeps its bytes), and Object
/// Lock is not offered at all (bucket lock configuration and per-object retention answer 501 NotImplemented), so
/// the retention of ledger objects is tested against moto instead (tests/library/object_lock.rs).
#[test]
fn on_the_local_s3_server_ledger_entries_are_create_once_and_object_lock_is_not_offered() {
    use super::servers::S3;
    use cairn::backend::{self, Options};
    let Some(s) = S3::from_env() else { return };
    let url = s.url("report-lock");
    let o = Options::from_sources(&[s.options(), s.credentials(&s.secret_key)].concat(), vec![], None).unwrap();
    let b = backend::open_url_with(&url, &o).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repository::init(b.clone(), ADMIN, &InitOptions::default(), &opts(tmp.path())).unwrap();
    let id = ledger::record(&repo, Event::Check { errors: 0, warnings: 0, report_hash: Digest([1; 32]) }).unwrap();
    let path = entry_path(&id);
    let stored = b.read(&path).unwrap();
    assert!(b.write_new(&path, b"another entry").is_err(), "an entry was overwritten on S3");
    assert_eq!(b.read(&path).unwrap(), stored);
    // Object Lock: what the server answers to the bucket's lock configuration.
    let body = "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention>\
<Mode>COMPLIANCE</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>";
    let sha = sha256_hex(body.as_bytes());
    let out = std::process::Command::new("curl")
        .args(["-s", "-X", "PUT", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
        .arg(format!("{}:{}", s.access_key, s.secret_key))
        .args(["-H", &format!("x-amz-content-sha256: {sha}"), "--data-binary", body])
        .arg(format!("{}/{}?object-lock=", s.endpoint, s.bucket))
        .output()
        .expect("curl (start-s3.sh needs it too)");
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(answer.contains("NotImplemented"), "the local S3 server now answers object lock: {answer}");
}

/// SHA-256 of `data` in hex, through `sha256sum` (SigV4's payload hash; the crate has no SHA-256 of its own).
fn sha256_hex(data: &[u8]) -> String {
    use std::io::Write;
    let mut c = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(data).unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_string()
}
