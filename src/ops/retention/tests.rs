//! Tests of the retention policy.

use super::*;

fn t(s: &str) -> Time {
    let ts: Timestamp = s.parse().unwrap();
    Time { secs: ts.as_second(), nanos: 0 }
}

fn item(n: u8, time: &str, tags: &[&str]) -> Item {
    Item { id: SnapshotId([n; 32]), time: t(time), tags: tags.iter().map(|s| s.to_string()).collect() }
}

fn kept(d: &[Decision]) -> Vec<u8> {
    let mut v: Vec<u8> = d.iter().filter(|d| d.keep).map(|d| d.id.0[0]).collect();
    v.sort();
    v
}

#[test]
fn durations_parse_and_print() {
    let d: CalendarDuration = "1y6mo2w3d4h".parse().unwrap();
    assert_eq!(d, CalendarDuration { years: 1, months: 6, weeks: 2, days: 3, hours: 4 });
    assert_eq!(d.to_string(), "1y6mo2w3d4h");
    // `m` alone is ambiguous (minutes or months), and retention counts in hours or longer.
    for bad in ["", "7", "7x", "y", "-1d", "1.5d", "99999999999y", "6m", "1y6m", "30min", "10s"] {
        assert!(bad.parse::<CalendarDuration>().is_err(), "{bad:?}");
    }
}

#[test]
fn daily_keeps_the_newest_of_each_day() {
    let items = [
        item(1, "2024-03-01T08:00:00Z", &[]),
        item(2, "2024-03-01T20:00:00Z", &[]),
        item(3, "2024-03-02T08:00:00Z", &[]),
        item(4, "2024-03-04T08:00:00Z", &[]),
    ];
    let p = Policy { periods: vec![(Period::Daily, Count::Last(2))], ..Default::default() };
    let d = apply(&items, &p, &TimeZone::UTC);
    assert_eq!(kept(&d), vec![3, 4]);
    let p = Policy { periods: vec![(Period::Daily, Count::Unlimited)], ..Default::default() };
    assert_eq!(kept(&apply(&items, &p, &TimeZone::UTC)), vec![2, 3, 4]);
}

#[test]
fn within_counts_back_from_the_newest_snapshot_not_the_clock() {
    let items = [item(1, "2017-01-01T00:00:00Z", &[]), item(2, "2020-06-01T00:00:00Z", &[])];
    let p = Policy { within: Some("7y".parse().unwrap()), ..Default::default() };
    assert_eq!(kept(&apply(&items, &p, &TimeZone::UTC)), vec![1, 2]);
    let p = Policy { within: Some("3y".parse().unwrap()), ..Default::default() };
    assert_eq!(kept(&apply(&items, &p, &TimeZone::UTC)), vec![2]);
}

#[test]
fn days_follow_the_time_zone() {
    // 23:30 UTC on 1 March is already 2 March in Berlin.
    let items = [item(1, "2024-03-01T22:30:00Z", &[]), item(2, "2024-03-01T23:30:00Z", &[])];
    let p = Policy { periods: vec![(Period::Daily, Count::Unlimited)], ..Default::default() };
    assert_eq!(kept(&apply(&items, &p, &TimeZone::UTC)), vec![2]);
    let berlin = TimeZone::get("Europe/Berlin").unwrap();
    assert_eq!(kept(&apply(&items, &p, &berlin)), vec![1, 2]);
}

const RUNBOOK: &str = r#"
[[class]]
name = "critical"
tags = ["critical"]
keep-within = "7y"

[[class]]
name = "transient"
tags = ["transient"]
keep-within = "30d"

[default]
keep-daily = 30
keep-weekly = 12
keep-monthly = 12
keep-yearly = "unlimited"
"#;

#[test]
fn policy_file_classes_by_tag() {
    let f = PolicyFile::parse(RUNBOOK).unwrap();
    assert_eq!(f.classes.len(), 2);
    let items = [
        item(1, "2018-01-01T00:00:00Z", &["critical"]),
        item(2, "2024-01-01T00:00:00Z", &["critical"]),
        item(3, "2023-01-01T00:00:00Z", &["transient"]),
        item(4, "2024-01-01T00:00:00Z", &["transient"]),
        item(5, "2010-05-01T00:00:00Z", &[]),
        item(6, "2024-01-01T00:00:00Z", &[]),
    ];
    let d = f.apply(&items, &TimeZone::UTC);
    assert_eq!(kept(&d), vec![1, 2, 4, 5, 6]);
    let r = d.iter().find(|d| d.id.0[0] == 1).unwrap();
    assert_eq!(r.reasons, vec!["critical: within 7y"]);
    for bad in ["", "[default]", "[[class]]\nname='a'\ntags=[]\nkeep-last=1", "[default]\nkeep-dayly=3"] {
        assert!(PolicyFile::parse(&bad.replace("\\n", "\n")).is_err(), "{bad}");
    }
}

#[test]
fn tags_and_reasons() {
    let items = [item(1, "2024-01-01T00:00:00Z", &["audit"]), item(2, "2024-02-01T00:00:00Z", &[])];
    let p = Policy { last: Some(Count::Last(1)), tags: vec!["audit".into()], ..Default::default() };
    let d = apply(&items, &p, &TimeZone::UTC);
    assert_eq!(d[0].reasons, vec!["last 1"]);
    assert_eq!(d[1].reasons, vec!["tag audit"]);
    assert!(Policy::default().is_empty());
    assert!(apply(&[], &p, &TimeZone::UTC).is_empty());
}

/// Property tests against an oracle written separately: per rule, the kept set computed by
/// grouping into buckets (through civil date-times rather than zoned ones) and taking the
/// newest of each; the policy keeps the union.
mod oracle {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    const ZONES: [&str; 6] =
        ["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Apia"];

    fn civil_bucket(p: Period, t: Time, tz: &TimeZone) -> (i64, i64, i64, i64) {
        let dt = tz.to_datetime(Timestamp::new(t.secs, 0).unwrap());
        let (y, m, d, h) = (dt.year() as i64, dt.month() as i64, dt.day() as i64, dt.hour() as i64);
        match p {
            Period::Hourly => (y, m, d, h),
            Period::Daily => (y, m, d, -1),
            Period::Weekly => {
                let w = dt.date().iso_week_date();
                (w.year() as i64, w.week() as i64, -1, -1)
            }
            Period::Monthly => (y, m, -1, -1),
            Period::Yearly => (y, -1, -1, -1),
        }
    }

    /// The newest item of each bucket, buckets ordered newest first.
    fn newest_per_bucket<'a>(
        items: impl Iterator<Item = &'a Item>,
        key: impl Fn(&Item) -> (i64, i64, i64, i64),
    ) -> Vec<SnapshotId> {
        let mut best: BTreeMap<(i64, i64, i64, i64), &Item> = BTreeMap::new();
        for it in items {
            let k = key(it);
            let e = best.entry(k).or_insert(it);
            if (it.time, it.id) > (e.time, e.id) {
                *e = it;
            }
        }
        let mut v: Vec<&Item> = best.into_values().collect();
        v.sort_by_key(|i| std::cmp::Reverse((i.time, i.id)));
        v.into_iter().map(|i| i.id).collect()
    }

    fn take(v: Vec<SnapshotId>, c: Count) -> Vec<SnapshotId> {
        match c {
            Count::Unlimited => v,
            Count::Last(n) => v.into_iter().take(n as usize).collect(),
        }
    }

    fn oracle(items: &[Item], p: &Policy, tz: &TimeZone) -> BTreeSet<SnapshotId> {
        let mut keep = BTreeSet::new();
        let Some(newest) = items.iter().map(|i| i.time).max() else { return keep };
        if let Some(c) = p.last {
            let mut v: Vec<&Item> = items.iter().collect();
            v.sort_by_key(|i| std::cmp::Reverse((i.time, i.id)));
            keep.extend(take(v.into_iter().map(|i| i.id).collect(), c));
        }
        for (period, c) in &p.periods {
            keep.extend(take(newest_per_bucket(items.iter(), |i| civil_bucket(*period, i.time, tz)), *c));
        }
        if let Some(d) = p.within {
            let from = d.before(newest, tz);
            keep.extend(items.iter().filter(|i| i.time >= from).map(|i| i.id));
        }
        for (period, d) in &p.within_periods {
            let from = d.before(newest, tz);
            let inside = items.iter().filter(|i| i.time >= from);
            keep.extend(newest_per_bucket(inside, |i| civil_bucket(*period, i.time, tz)));
        }
        for t in &p.tags {
            keep.extend(items.iter().filter(|i| i.tags.contains(t)).map(|i| i.id));
        }
        keep
    }

    fn count() -> impl Strategy<Value = Count> {
        prop_oneof![4 => (0u32..12).prop_map(Count::Last), 1 => Just(Count::Unlimited)]
    }

    fn duration() -> impl Strategy<Value = CalendarDuration> {
        (0u32..3, 0u32..14, 0u32..3, 0u32..40, 0u32..50)
            .prop_map(|(years, months, weeks, days, hours)| CalendarDuration { years, months, weeks, days, hours })
    }

    fn period() -> impl Strategy<Value = Period> {
        prop::sample::select(Period::ALL.to_vec())
    }

    fn policy() -> impl Strategy<Value = Policy> {
        (
            prop::option::of(count()),
            prop::collection::vec((period(), count()), 0..4),
            prop::option::of(duration()),
            prop::collection::vec((period(), duration()), 0..3),
            prop::collection::vec(prop::sample::select(vec!["audit", "db", "x"]), 0..2),
        )
            .prop_map(|(last, periods, within, within_periods, tags)| Policy {
                last,
                periods,
                within,
                within_periods,
                tags: tags.into_iter().map(String::from).collect(),
            })
    }

    /// Years of snapshots at irregular times: bursts minutes apart, gaps of months, around
    /// DST changes and 29 February.
    fn calendar() -> impl Strategy<Value = Vec<Item>> {
        let start = 1_009_843_200i64; // 2002-01-01
        prop::collection::vec(
            (
                prop_oneof![
                    3 => 0i64..(30 * 366 * 86_400),
                    1 => (0i64..30).prop_map(|y| y * 31_556_952 + 5_097_600),  // around 1 March
                    1 => (0i64..30).prop_map(|y| y * 31_556_952 + 7_500_000),  // late March (DST)
                    1 => (0i64..30).prop_map(|y| y * 31_556_952 + 26_500_000), // late October/November
                ],
                -7_200i64..7_200,
                prop::collection::vec(prop::sample::select(vec!["audit", "db", "x", "other"]), 0..2),
            ),
            0..60,
        )
        .prop_map(move |v| {
            v.into_iter()
                .enumerate()
                .map(|(n, (base, jitter, tags))| Item {
                    id: SnapshotId(*blake3::hash(&(n as u64).to_le_bytes()).as_bytes()),
                    time: Time { secs: start + base + jitter, nanos: 0 },
                    tags: tags.into_iter().map(String::from).collect(),
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn policy_matches_the_oracle(items in calendar(), p in policy(), zone in prop::sample::select(ZONES.to_vec())) {
            let tz = TimeZone::get(zone).unwrap();
            let got = apply(&items, &p, &tz);
            prop_assert_eq!(got.len(), items.len());
            let kept: BTreeSet<SnapshotId> = got.iter().filter(|d| d.keep).map(|d| d.id).collect();
            prop_assert_eq!(&kept, &oracle(&items, &p, &tz));
            for d in &got {
                prop_assert_eq!(d.keep, !d.reasons.is_empty());
            }
            // Input order never matters.
            let mut rev = items.clone();
            rev.reverse();
            prop_assert_eq!(apply(&rev, &p, &tz), got);
        }

        #[test]
        fn any_count_rule_keeps_the_newest(items in calendar(), per in period(), n in 1u32..5) {
            prop_assume!(!items.is_empty());
            let p = Policy { periods: vec![(per, Count::Last(n))], ..Default::default() };
            let got = apply(&items, &p, &TimeZone::UTC);
            prop_assert!(got[0].keep);
        }
    }
}
