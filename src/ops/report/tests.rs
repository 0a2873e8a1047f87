//! Unit tests of the pure report core ([`super::build`]) and its renderers: each section's
//! verdict from hand-built inputs (drills failed or over the RTO, the `--rto` override, snapshots
//! kept past their class, points removed early, gaps, weak keys, check shares), and HTML escaping.

use super::*;
use crate::cert::Attribution;
use crate::id::{BlobId, Digest, EntryId, SnapshotId};
use crate::ledger::{EntryKind, ReadShare};
use crate::snapshot::{Snapshot, SnapshotV1, Source, Summary};

const NOW: i64 = 1_750_000_000;
const DAY: i64 = 86_400;

fn t(secs: i64) -> Time {
    Time { secs, nanos: 0 }
}

fn snap(n: u8, age: i64, tags: &[&str], errors: u64) -> Listed {
    let snapshot = Snapshot::V1(SnapshotV1 {
        time: t(NOW - age),
        host: "db-1".into(),
        user: "u".into(),
        uid: 0,
        gid: 0,
        paths: vec![b"/srv".to_vec()],
        tags: tags.iter().map(|s| s.to_string()).collect(),
        root: BlobId([0; 32]),
        parent: None,
        source: Source::Files,
        summary: Summary { errors, ..Default::default() },
        program: "test".into(),
    });
    Listed { id: SnapshotId([n; 32]), snapshot, attribution: Attribution::Unattributed, flags: vec![] }
}

fn entry(n: u8, age: i64, event: Event) -> LogEntry {
    LogEntry {
        id: EntryId([n; 32]),
        time: t(NOW - age),
        kind: event.kind(),
        key_id: KeyId([1; 32]),
        parents: vec![],
        host: Some("db-1".into()),
        user: Some("root".into()),
        event: Some(event),
    }
}

fn drill(n: u8, age: i64, passed: bool, duration_ms: u64, rto_ms: Option<u64>) -> LogEntry {
    let snapshot = SnapshotId([1; 32]);
    entry(n, age, Event::Drill { snapshot, passed, report_hash: Digest([0; 32]), duration_ms, rto_ms, job: None })
}

fn check_entry(n: u8, age: i64, errors: u64, share: Option<ReadShare>) -> LogEntry {
    let report_hash = Digest([0; 32]);
    let event = match share {
        None => Event::Check { errors, warnings: 0, report_hash },
        Some(share) => Event::CheckData { errors, warnings: 0, report_hash, data_packs: 2, data_packs_read: 1, share },
    };
    entry(n, age, event)
}

/// Daily snapshots of the last `days` days (tag `db`), a daily policy keeping them, a passing drill
/// and a clean check: every section passes.
fn input(days: u8) -> ReportInput {
    let snapshots: Vec<Listed> = (0..days).map(|i| snap(i + 1, i64::from(i) * DAY + 3600, &["db"], 0)).collect();
    let policy =
        crate::retention::PolicyFile::parse("[[class]]\nname = \"db\"\ntags = [\"db\"]\nkeep-daily = 30\n").unwrap();
    ReportInput {
        now: t(NOW),
        since: t(NOW - 30 * DAY),
        repository: "r".into(),
        snapshots,
        ledger: vec![drill(200, 5 * DAY, true, 1000, Some(60_000)), check_entry(201, DAY, 0, Some(ReadShare::All))],
        verify: Ok(VerifyReport::default()),
        keys: vec![KeyFacts {
            id: KeyId([1; 32]),
            kind: KeyKind::Full,
            created: t(NOW - 40 * DAY),
            host: "h".into(),
            user: "u".into(),
            credential: Some(Credential::Password),
            kdf: Some(KdfParams::MINIMUM),
        }],
        full_keys: [KeyId([1; 32])].into_iter().collect(),
        policy: Some(policy),
        rpo_secs: DAY,
        rto_ms: None,
        data_packs: vec![PackId([0; 32]), PackId([0xff; 32])],
        group_by: GroupBy { host: true, paths: true, tags: false, writer: false },
        job: None,
        tz: TimeZone::UTC,
    }
}

#[test]
fn a_complete_period_passes_every_section() {
    let r = build(&input(10));
    assert_eq!(r.failed(), Vec::<&str>::new(), "{}", render::text(&r));
    assert_eq!(r.verdict, Verdict::Pass);
    assert_eq!(r.sections.iter().map(|s| s.name).collect::<Vec<_>>(), super::sections::NAMES.to_vec());
    assert_eq!(r.timeline.len(), 1);
    assert_eq!(r.timeline[0].snapshots.len(), 10);
    assert_eq!(r.timeline[0].drills.len(), 1);
    assert_eq!(r.timeline[0].checks.len(), 1);
}

#[test]
fn the_last_drill_decides_accessibility_and_rto_overrides_its_own() {
    let mut i = input(3);
    i.ledger.push(drill(202, 2 * DAY, false, 1000, None));
    let r = build(&i);
    assert_eq!(r.failed(), vec!["accessibility"]);
    assert!(r.section("accessibility").unwrap().reasons[0].contains("failed"), "{:?}", r.sections);
    // A later passing drill over its own RTO fails; within the --rto given, it passes.
    i.ledger.push(drill(203, DAY, true, 120_000, Some(60_000)));
    let r = build(&i);
    let why = &r.section("accessibility").unwrap().reasons;
    assert_eq!(why.len(), 1);
    assert!(why[0].contains("took 120.0s, past the RTO of 60.0s"), "{why:?}");
    i.rto_ms = Some(300_000);
    assert_eq!(build(&i).failed(), Vec::<&str>::new());
    // A drill before the period does not count.
    i.ledger.retain(|e| e.kind != EntryKind::Drill);
    i.ledger.push(drill(204, 31 * DAY, true, 1, None));
    assert_eq!(build(&i).failed(), vec!["accessibility"]);
}

#[test]
fn retention_fails_on_snapshots_kept_past_their_class_and_points_removed_early() {
    let mut i = input(3);
    // A second snapshot on the newest day: keep-daily keeps one of them.
    i.snapshots.push(snap(50, 2 * 3600, &["db"], 0));
    let r = build(&i);
    assert_eq!(r.failed(), vec!["retention"]);
    assert!(r.section("retention").unwrap().reasons[0].contains("kept past its class"));
    // A point the ledger shows was backed up, now gone from storage.
    let mut i = input(3);
    let gone = i.snapshots.remove(1).id;
    let event = Event::Backup { snapshot: gone, sources: vec!["/srv".into()], files: 1, bytes: 1, bytes_added: 1 };
    i.ledger.push(entry(60, DAY + 3600, event));
    let r = build(&i);
    assert_eq!(r.failed(), vec!["retention"], "{}", render::text(&r));
    let why = &r.section("retention").unwrap().reasons[0];
    assert!(why.contains("daily point") && why.contains(&gone.short()), "{why}");
    // Completion counted that backup from its entry: no gap.
    assert!(r.section("completion").unwrap().reasons.is_empty());
    // No policy: nothing to judge by.
    let mut i = input(3);
    i.policy = None;
    assert_eq!(build(&i).failed(), vec!["retention"]);
}

#[test]
fn completion_fails_on_gaps_past_the_rpo_but_not_before_a_group_began() {
    let mut i = input(5);
    let r = build(&i);
    // The group began 4 days ago, inside the period: no gap before it.
    assert!(r.section("completion").unwrap().reasons.is_empty());
    i.snapshots.remove(2);
    let r = build(&i);
    assert_eq!(r.failed(), vec!["completion"]);
    assert!(r.section("completion").unwrap().reasons[0].contains("no backup for 48h 0min"));
    assert_eq!(r.timeline[0].gaps.len(), 1);
    // The newest backup older than the RPO is an open gap up to now.
    let mut i = input(5);
    i.snapshots.remove(0);
    i.snapshots.remove(0);
    let r = build(&i);
    assert!(r.section("completion").unwrap().reasons[0].contains(", now)"), "{:?}", r.sections[2].reasons);
    // Partial runs are listed, not failed.
    let mut i = input(2);
    i.snapshots.push(snap(70, 1800, &["db"], 3));
    i.snapshots.remove(0);
    let r = build(&i);
    assert!(r.section("completion").unwrap().evidence.iter().any(|l| l.contains("partial runs: 46464646 (3 file(s)")));
}

#[test]
fn a_weak_or_unreadable_key_fails_encryption() {
    let mut i = input(3);
    i.keys[0].kdf = Some(KdfParams { m_kib: 65_536, t: 2, p: 4 });
    let r = build(&i);
    assert_eq!(r.failed(), vec!["encryption"]);
    assert!(r.section("encryption").unwrap().reasons[0].contains("t=2"));
    i.keys[0].kdf = None;
    i.keys[0].credential = None;
    assert!(build(&i).section("encryption").unwrap().reasons[0].contains("does not decode"));
    // A key file opened with a generated secret has no KDF to judge: it passes, and says what it is.
    i.keys[0].credential = Some(Credential::Secret);
    let r = build(&i);
    assert_eq!(r.failed(), Vec::<&str>::new(), "{}", render::text(&r));
    assert!(r.section("encryption").unwrap().evidence.iter().any(|l| l.contains("generated 256-bit secret")));
    // Key changes of the period are evidence.
    let mut i = input(3);
    let add = Event::KeyAdd { key: KeyId([9; 32]), write_only: true, hosts: vec!["web-1".into()] };
    i.ledger.push(entry(80, DAY, add));
    let r = build(&i);
    assert!(r
        .section("encryption")
        .unwrap()
        .evidence
        .iter()
        .any(|l| l.contains("key-add 09090909 (write-only), hosts web-1")));
}

#[test]
fn integrity_needs_a_clean_last_check_and_a_clean_ledger_and_counts_the_share_read() {
    let mut i = input(3);
    i.ledger.push(check_entry(90, 3600, 2, None));
    let r = build(&i);
    assert_eq!(r.failed(), vec!["integrity"]);
    // The share: one check read part 1 of 2, which selects pack 00.. and not ff.. (x mod 2 = 0 and 1).
    let mut i = input(3);
    i.ledger.retain(|e| e.kind != EntryKind::CheckData);
    i.ledger.push(check_entry(91, 3600, 0, Some(ReadShare::Subset { n: 1, m: 2 })));
    let r = build(&i);
    assert_eq!(r.failed(), Vec::<&str>::new());
    assert_eq!(r.section("integrity").unwrap().data["data_packs_read"], 1);
    // No check in the period, or a ledger that does not verify, fails.
    let mut i = input(3);
    i.ledger.retain(|e| e.kind != EntryKind::CheckData);
    assert!(build(&i).section("integrity").unwrap().reasons[0].contains("no check in the period"));
    let mut i = input(3);
    i.verify = Err("a write-only key cannot verify".into());
    assert_eq!(build(&i).failed(), vec!["integrity"]);
}

#[test]
fn html_escapes_what_it_shows_and_holds_no_script() {
    let mut i = input(2);
    for l in &mut i.snapshots {
        if let Snapshot::V1(s) = &mut l.snapshot {
            s.paths = vec![b"/srv/<script>alert(1)</script>".to_vec()];
        }
    }
    let html = render::html(&build(&i));
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("&lt;script&gt;"));
    for name in super::sections::NAMES {
        assert!(html.contains(&format!("id=\"verdict-{name}\">PASS</span>")), "{name}");
    }
}

#[test]
fn drills_and_checks_count_only_from_full_keys() {
    // A write-only key (or any key without a full-key certificate) can append a drill or a check
    // of its own; neither counts.
    let mut i = input(3);
    for e in &mut i.ledger {
        e.key_id = KeyId([2; 32]);
    }
    let r = build(&i);
    assert_eq!(r.failed(), vec!["accessibility", "integrity"]);
    assert!(r.section("accessibility").unwrap().evidence.iter().any(|l| l.contains("not written by a full key")));
    assert!(r.timeline[0].drills.is_empty() && r.timeline[0].checks.is_empty());
}
