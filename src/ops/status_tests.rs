//! Unit tests of the status verdicts ([`super`]): ages against the warning age and the RPO, the
//! size rule, partial runs, flagged snapshots and empty selections.

use super::*;
use crate::cert::Attribution;
use crate::id::BlobId;
use crate::snapshot::{Snapshot, SnapshotV1, Source, Summary};

const NOW: i64 = 1_750_000_000;
const H: i64 = 3600;

fn snap(n: u8, host: &str, age: i64, bytes: u64, errors: u64) -> Listed {
    let snapshot = Snapshot::V1(SnapshotV1 {
        time: Time { secs: NOW - age, nanos: 0 },
        host: host.into(),
        user: "u".into(),
        uid: 0,
        gid: 0,
        paths: vec![b"/etc".to_vec()],
        tags: vec![],
        root: BlobId([0; 32]),
        parent: None,
        source: Source::Files,
        summary: Summary { bytes_processed: bytes, errors, ..Default::default() },
        program: "test".into(),
    });
    Listed { id: SnapshotId([n; 32]), snapshot, attribution: Attribution::Unattributed, flags: vec![] }
}

fn now() -> Time {
    Time { secs: NOW, nanos: 0 }
}

fn rules(warn: Option<i64>, size: Option<f64>) -> Rules {
    Rules { rpo_secs: 24 * H, warn_secs: warn, size_change: size }
}

fn one(snaps: &[Listed], r: Rules) -> GroupStatus {
    let rep = evaluate(snaps, GroupBy::default(), &|_| r, now());
    assert_eq!(rep.groups.len(), 1, "{rep:#?}");
    assert_eq!(rep.status, rep.groups[0].status);
    rep.groups.into_iter().next().unwrap()
}

#[test]
fn fresh_is_ok() {
    let g = one(&[snap(1, "a", 30 * H, 100, 0), snap(2, "a", 2 * H, 110, 0)], rules(Some(20 * H), Some(0.5)));
    assert_eq!(g.status, Verdict::Ok, "{g:#?}");
    assert!(g.reasons.is_empty());
    assert_eq!(g.newest.as_ref().unwrap().id, SnapshotId([2; 32]));
    assert_eq!(g.newest.as_ref().unwrap().age_secs, 2 * H);
    assert_eq!(g.previous.as_ref().unwrap().id, SnapshotId([1; 32]));
    assert_eq!(g.size_change, Some(0.1));
    assert_eq!(g.last_run, Some("ok"));
    assert_eq!((g.snapshots, g.flagged), (2, 0));
    assert_eq!(g.key.group.host.as_deref(), Some("a"));
    assert_eq!(g.key.group.paths, Some(vec!["/etc".to_string()]));
}

#[test]
fn age_between_warn_and_rpo_warns_and_past_rpo_is_critical() {
    let g = one(&[snap(1, "a", 21 * H, 100, 0)], rules(Some(20 * H), None));
    assert_eq!(g.status, Verdict::Warning);
    assert_eq!(g.reasons, vec!["newest snapshot 01010101 is 21h 0min old, past 20h 0min".to_string()]);
    // Exactly at the limit is still fresh.
    assert_eq!(one(&[snap(1, "a", 20 * H, 100, 0)], rules(Some(20 * H), None)).status, Verdict::Ok);
    let g = one(&[snap(1, "a", 25 * H, 100, 0)], rules(Some(20 * H), None));
    assert_eq!(g.status, Verdict::Critical);
    assert_eq!(g.reasons, vec!["newest snapshot 01010101 is 25h 0min old, past the RPO of 24h 0min".to_string()]);
    // Without a warning age, only the RPO counts.
    assert_eq!(one(&[snap(1, "a", 23 * H, 100, 0)], rules(None, None)).status, Verdict::Ok);
}

#[test]
fn size_change_at_the_limit_is_critical_either_way() {
    let up = one(&[snap(1, "a", 3 * H, 1000, 0), snap(2, "a", H, 1500, 0)], rules(None, Some(0.5)));
    assert_eq!(up.status, Verdict::Critical, "{up:#?}");
    assert_eq!(up.size_change, Some(0.5));
    assert!(up.reasons[0].contains("+50.0%"), "{:?}", up.reasons);
    let down = one(&[snap(1, "a", 3 * H, 1000, 0), snap(2, "a", H, 400, 0)], rules(None, Some(0.5)));
    assert_eq!(down.status, Verdict::Critical);
    let small = one(&[snap(1, "a", 3 * H, 1000, 0), snap(2, "a", H, 1499, 0)], rules(None, Some(0.5)));
    assert_eq!(small.status, Verdict::Ok);
    // Without the rule, sizes are reported but not judged.
    let off = one(&[snap(1, "a", 3 * H, 1000, 0), snap(2, "a", H, 5000, 0)], rules(None, None));
    assert_eq!((off.status, off.size_change), (Verdict::Ok, Some(4.0)));
    // Growth from nothing is past any limit; nothing to nothing is no change.
    let from0 = one(&[snap(1, "a", 3 * H, 0, 0), snap(2, "a", H, 10, 0)], rules(None, Some(1.0)));
    assert_eq!((from0.status, from0.size_change), (Verdict::Critical, None));
    let both0 = one(&[snap(1, "a", 3 * H, 0, 0), snap(2, "a", H, 0, 0)], rules(None, Some(0.1)));
    assert_eq!((both0.status, both0.size_change), (Verdict::Ok, Some(0.0)));
}

#[test]
fn partial_run_warns() {
    let g = one(&[snap(1, "a", H, 100, 2)], rules(None, None));
    assert_eq!((g.status, g.last_run), (Verdict::Warning, Some("partial")));
    assert_eq!(g.reasons, vec!["the run of snapshot 01010101 was partial: 2 file(s) not read".to_string()]);
}

#[test]
fn flagged_snapshots_do_not_count() {
    let mut forged = snap(2, "a", H, 100, 0);
    forged.flags = vec![Flag::Forged];
    // A fresh forged snapshot does not hide an old real one.
    let g = one(&[snap(1, "a", 30 * H, 100, 0), forged.clone()], rules(None, None));
    assert_eq!(g.status, Verdict::Critical);
    assert_eq!(g.newest.as_ref().unwrap().id, SnapshotId([1; 32]));
    assert_eq!((g.snapshots, g.flagged), (1, 1));
    // Only flagged snapshots: nothing counts.
    let mut revoked = snap(3, "a", 2 * H, 100, 0);
    revoked.flags = vec![Flag::Revoked, Flag::Future];
    let g = one(&[forged, revoked], rules(None, None));
    assert_eq!(g.status, Verdict::Critical);
    assert_eq!(g.reasons, vec!["no snapshot that counts (2 flagged: forged, revoked, future)".to_string()]);
    assert_eq!(g.newest, None);
}

#[test]
fn no_snapshot_is_critical_and_groups_are_judged_apart() {
    let rep = evaluate(&[], GroupBy::default(), &|_| Rules::default(), now());
    assert_eq!(rep.status, Verdict::Critical);
    assert_eq!(rep.groups[0].reasons, vec!["no snapshot".to_string()]);
    assert_eq!(rep.groups[0].key, GroupKey::default());
    // Two hosts, one stale; per-group rules from the caller: host b gets a longer RPO.
    let snaps = [snap(1, "a", 30 * H, 1, 0), snap(2, "b", 30 * H, 1, 0), snap(3, "c", H, 1, 0)];
    let rep = evaluate(
        &snaps,
        GroupBy::default(),
        &|k| {
            if k.group.host.as_deref() == Some("b") {
                Rules { rpo_secs: 48 * H, ..Rules::default() }
            } else {
                Rules::default()
            }
        },
        now(),
    );
    let states: Vec<(Option<&str>, Verdict)> =
        rep.groups.iter().map(|g| (g.key.group.host.as_deref(), g.status)).collect();
    assert_eq!(states, vec![(Some("a"), Verdict::Critical), (Some("b"), Verdict::Ok), (Some("c"), Verdict::Ok)]);
    assert_eq!(rep.status, Verdict::Critical);
    assert_eq!(
        [Verdict::Ok, Verdict::Warning, Verdict::Critical, Verdict::Unknown].map(Verdict::exit_code),
        [0, 1, 2, 3]
    );
}

#[test]
fn a_named_group_is_assessed_as_given() {
    let s = [snap(1, "a", H, 1, 0)];
    let members: Vec<&Listed> = s.iter().collect();
    let key = GroupKey { name: Some("nightly".into()), ..Default::default() };
    let g = assess(key, &members, &Rules::default(), now());
    assert_eq!(g.status, Verdict::Ok);
    assert_eq!(g.key.describe(), "nightly");
}
