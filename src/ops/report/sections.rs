//! The five sections of the report (docs/compliance.md), each a pure function of the input:
//! what it requires, the evidence it read, and the reasons it fails.

use super::timeline::{drill_of, gaps, pass_word, Group};
use super::{in_period, trusted, ReportInput, Section};
use crate::id::SnapshotId;
use crate::keyfile::{Credential, KdfParams, KeyKind};
use crate::ledger::{self, Event};
use crate::retention::{CalendarDuration, Count, Item, Period, Policy};
use crate::time::Time;
use crate::units::human_secs;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// The algorithms every repository uses (format-spec §3, §4): fixed, not configurable.
pub const ALGORITHMS: &str = "content and metadata: XChaCha20-Poly1305 (256-bit keys); ids and MACs: keyed BLAKE3; \
key agreement: X25519; signatures: XEdDSA; passwords: argon2id; generated 256-bit key secrets: BLAKE3 key derivation";

/// The sections, in report order.
pub const NAMES: [&str; 5] = ["encryption", "retention", "completion", "accessibility", "integrity"];

/// Most calendar buckets one retention rule is checked over (about 27 years of days).
const MAX_POINTS: usize = 10_000;
/// Most ledger findings listed as reasons; the rest are counted.
const MAX_FINDINGS: usize = 20;

fn kdf_text(k: &KdfParams) -> String {
    format!("argon2id m={} KiB t={} p={}", k.m_kib, k.t, k.p)
}

fn day(t: Time) -> String {
    t.to_rfc3339().chars().take(10).collect()
}

/// [`human_secs`] with the seconds when they are not whole minutes (`24h 0min 3s`), so a gap just
/// past the RPO does not read as equal to it.
fn secs_text(s: i64) -> String {
    if s >= 60 && s % 60 != 0 {
        format!("{} {}s", human_secs(s), s % 60)
    } else {
        human_secs(s)
    }
}

fn ms_text(ms: u64) -> String {
    if ms < 600_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        human_secs((ms / 1000) as i64)
    }
}

/// Encryption: the algorithms, every key's KDF parameters (FAIL below the minimum of format-spec
/// §4.1, or a key file that does not decode; a key file opened with a generated 256-bit secret has
/// no KDF to judge and passes), the write-only keys, and key changes in the period.
pub(super) fn encryption(input: &ReportInput) -> Section {
    let min = KdfParams::MINIMUM;
    let mut reasons = Vec::new();
    let mut evidence = vec![format!("algorithms: {ALGORITHMS}")];
    let mut keys = Vec::new();
    for k in &input.keys {
        let kind = match k.kind {
            KeyKind::Full => "full",
            KeyKind::WriteOnly => "write-only",
        };
        let weak = k.kdf.is_some_and(|p| p.m_kib < min.m_kib || p.t < min.t || p.p < min.p);
        let kdf = match (k.credential, &k.kdf) {
            (_, Some(p)) => kdf_text(p),
            (Some(Credential::Secret), None) => "generated 256-bit secret (BLAKE3 key derivation)".to_string(),
            _ => "does not decode".to_string(),
        };
        evidence.push(format!(
            "key {} {kind}, made {} by {}@{}: {kdf}{}",
            k.id.short(),
            day(k.created),
            k.user,
            k.host,
            if weak { " (WEAK)" } else { "" }
        ));
        if weak {
            reasons.push(format!(
                "key {}: {kdf} is below the minimum m={} KiB t={} p={} (format-spec §4.1); replace it: `cairn key add`, then `cairn key remove {}`",
                k.id, min.m_kib, min.t, min.p, k.id.short()
            ));
        } else if k.credential.is_none() {
            reasons.push(format!("key {}: its key file does not decode; its parameters cannot be judged", k.id));
        }
        keys.push(json!({"id": k.id, "kind": k.kind, "credential": k.credential, "created": k.created,
            "host": k.host, "user": k.user, "kdf": k.kdf, "weak": weak}));
    }
    let write_only = input.keys.iter().filter(|k| k.kind == KeyKind::WriteOnly).count();
    evidence.push(format!("{} key(s), {write_only} write-only", input.keys.len()));
    let mut changes = Vec::new();
    for (e, ev) in in_period(input) {
        let what = match ev {
            Event::KeyAdd { key, write_only, hosts } => format!(
                "key-add {}{}{}",
                key.short(),
                if *write_only { " (write-only)" } else { "" },
                if hosts.is_empty() { String::new() } else { format!(", hosts {}", hosts.join(",")) }
            ),
            Event::KeyRemove { key } => format!("key-remove {}", key.short()),
            Event::KeyPasswd { old, new } => format!("key-passwd {} -> {}", old.short(), new.short()),
            _ => continue,
        };
        let who = format!("{}@{}", e.user.as_deref().unwrap_or("?"), e.host.as_deref().unwrap_or("?"));
        evidence.push(format!("{} {what} by {who} ({})", e.time.to_rfc3339(), ledger::entry_path(&e.id)));
        changes.push(json!({"time": e.time, "entry": e.id, "change": what}));
    }
    if changes.is_empty() {
        evidence.push("no key change in the period".into());
    }
    let data = json!({"algorithms": ALGORITHMS, "minimum_kdf": min, "keys": keys, "write_only_keys": write_only,
        "key_changes": changes});
    Section::new("encryption", reasons, evidence, data)
}

/// `2026-11-14`, `2026-W46`, `2026-11`, … for bucket `b` of `period`.
fn bucket_label(period: Period, b: (i32, i32, i32, i32)) -> String {
    match period {
        Period::Hourly => format!("{:04}-{:02}-{:02} {:02}h", b.0, b.1, b.2, b.3),
        Period::Daily => format!("{:04}-{:02}-{:02}", b.0, b.1, b.2),
        Period::Weekly => format!("{:04}-W{:02}", b.0, b.1),
        Period::Monthly => format!("{:04}-{:02}", b.0, b.1),
        Period::Yearly => format!("{:04}", b.0),
    }
}

fn step(period: Period, k: u32) -> CalendarDuration {
    let mut d = CalendarDuration::default();
    match period {
        Period::Hourly => d.hours = k,
        Period::Daily => d.days = k,
        Period::Weekly => d.weeks = k,
        Period::Monthly => d.months = k,
        Period::Yearly => d.years = k,
    }
    d
}

/// The calendar buckets a bucket rule asks a point of: the last `count` buckets up to the class's
/// newest snapshot `newest` (counting back from it, as forget does: docs/retention.md), none
/// before the bucket of its first snapshot `first`. Newest first.
fn required(
    period: Period,
    count: Count,
    newest: Time,
    first: Time,
    tz: &jiff::tz::TimeZone,
) -> Vec<(i32, i32, i32, i32)> {
    let n = match count {
        Count::Last(n) => n as usize,
        Count::Unlimited => MAX_POINTS,
    }
    .min(MAX_POINTS);
    let floor = period.bucket(first, tz);
    let mut out = Vec::new();
    for k in 0..n {
        let b = period.bucket(step(period, k as u32).before(newest, tz), tz);
        if b < floor {
            break;
        }
        if out.last() != Some(&b) {
            out.push(b);
        }
    }
    out
}

/// Retention: per group and policy class, the points each bucket rule requires against those
/// held; FAIL for a snapshot held past its class (forget is overdue) and for a required point
/// that is missing although the ledger shows a backup of the group was made then (removed early).
/// A point never backed up is listed, but is completion's failure, not retention's.
pub(super) fn retention(input: &ReportInput, groups: &[Group<'_>]) -> Section {
    let mut reasons = Vec::new();
    let mut evidence = Vec::new();
    let mut data = Vec::new();
    let Some(policy) = &input.policy else {
        let why = "no retention policy to judge by: give --policy FILE or --job JOB (docs/retention.md)".to_string();
        return Section::new("retention", vec![why], vec![], json!({"classes": []}));
    };
    let held: HashSet<SnapshotId> = input.snapshots.iter().map(|l| l.id).collect();
    // Backups the ledger recorded whose snapshot is gone: (time of the entry, sources, entry
    // path, snapshot, writer's host).
    type Gone = (Time, Vec<String>, String, SnapshotId, Option<String>);
    let gone: Vec<Gone> = input
        .ledger
        .iter()
        .filter_map(|e| match e.event.as_ref()? {
            Event::Backup { snapshot, sources, .. } if !held.contains(snapshot) => {
                let mut s = sources.clone();
                s.sort();
                Some((e.time, s, ledger::entry_path(&e.id), *snapshot, e.host.clone()))
            }
            _ => None,
        })
        .collect();
    let mut classes: Vec<(String, Vec<String>, &Policy)> =
        policy.classes.iter().map(|c| (c.name.clone(), c.tags.clone(), &c.policy)).collect();
    if let Some(d) = &policy.default {
        classes.push(("default".into(), Vec::new(), d));
    }
    for g in groups {
        let items: Vec<Item> = g
            .members
            .iter()
            .map(|l| Item { id: l.id, time: l.snapshot.time(), tags: l.snapshot.tags().to_vec() })
            .collect();
        for d in policy.apply(&items, &input.tz).into_iter().filter(|d| !d.keep) {
            reasons.push(format!(
                "{}: snapshot {} of {} is held although no rule of its class keeps it (kept past its class; run forget)",
                g.name,
                d.id.short(),
                d.time.to_rfc3339()
            ));
        }
        let in_class = |it: &Item, tags: &[String]| {
            if tags.is_empty() {
                !policy.classes.iter().any(|c| c.tags.iter().any(|t| it.tags.contains(t)))
            } else {
                tags.iter().any(|t| it.tags.contains(t))
            }
        };
        for (name, tags, p) in &classes {
            let members: Vec<&Item> = items.iter().filter(|it| in_class(it, tags)).collect();
            let Some(first) = members.iter().map(|it| it.time).min() else { continue };
            let newest = members.iter().map(|it| it.time).max().unwrap_or(first);
            evidence.push(format!("{}, class {name} ({}): {} snapshot(s) held", g.name, p.describe(), members.len()));
            let mut points = Vec::new();
            for (period, count) in &p.periods {
                let want = required(*period, *count, newest, first, &input.tz);
                let have: BTreeSet<_> = members.iter().map(|it| period.bucket(it.time, &input.tz)).collect();
                let missing: Vec<_> = want.iter().filter(|b| !have.contains(b)).copied().collect();
                let labels: Vec<String> = missing.iter().map(|b| bucket_label(*period, *b)).collect();
                evidence.push(format!(
                    "  {} points: {} required, {} held{}",
                    period.name(),
                    want.len(),
                    want.len() - missing.len(),
                    if labels.is_empty() { String::new() } else { format!("; missing {}", labels.join(" ")) }
                ));
                for b in &missing {
                    for (t, sources, path, snap, host) in &gone {
                        let same_host = g.host.as_ref().is_none_or(|h| host.as_ref() == Some(h));
                        if period.bucket(*t, &input.tz) == *b && *sources == g.paths && same_host {
                            reasons.push(format!(
                                "{}, class {name}: the {} point {} is missing although snapshot {} was backed up then ({path}) and is gone",
                                g.name, period.name(), bucket_label(*period, *b), snap.short()
                            ));
                        }
                    }
                }
                points.push(json!({"period": period.name(), "required": want.len(),
                    "held": want.len() - missing.len(), "missing": labels}));
            }
            data.push(json!({"group": g.name, "class": name, "rules": p.describe(), "snapshots": members.len(),
                "points": points}));
        }
    }
    let mut rewrites = Vec::new();
    for (e, ev) in in_period(input) {
        if let Event::Rewrite { reason, patterns, replaced, removed } = ev {
            evidence.push(format!(
                "rewrite {reason:?} ({}): {} snapshot(s) rewritten, {} removed, {}",
                patterns.join(" "),
                replaced.len(),
                removed.len(),
                ledger::entry_path(&e.id)
            ));
            rewrites.push(json!({"time": e.time, "entry": e.id, "reason": reason, "patterns": patterns,
                "replaced": replaced.len(), "removed": removed.len()}));
        }
    }
    if rewrites.is_empty() {
        evidence.push("no rewrite (erasure) in the period".into());
    }
    reasons.dedup();
    Section::new("retention", reasons, evidence, json!({"classes": data, "rewrites": rewrites}))
}

/// Completion: per group, backups per day in the period, gaps longer than the RPO (FAIL), and
/// partial runs (listed). A run that fails commits no snapshot and writes no ledger entry, so
/// the repository's evidence of it is the gap it leaves.
pub(super) fn completion(input: &ReportInput, groups: &[Group<'_>]) -> Section {
    let mut reasons = Vec::new();
    let mut evidence = vec![format!(
        "RPO {}; a failed run commits nothing and shows as a gap (each run's outcome is in the job's metrics, docs/monitoring.md)",
        human_secs(input.rpo_secs)
    )];
    let mut data = Vec::new();
    if groups.is_empty() {
        reasons.push("no snapshot in the repository".into());
    }
    for g in groups {
        let mut per_day: BTreeMap<String, u64> = BTreeMap::new();
        // Every calendar day of the period, from the group's first backup when it began later.
        let start = g.times.first().map_or(input.since, |t| (*t).max(input.since)).min(input.now);
        // The period's last day is that of its last second (a period ending at midnight ends the day before).
        let end = Time { secs: input.now.secs.saturating_sub(1).max(start.secs), nanos: 0 };
        let mut k = 0u32;
        loop {
            let t = step(Period::Daily, k).before(end, &input.tz);
            let b = Period::Daily.bucket(t, &input.tz);
            if b < Period::Daily.bucket(start, &input.tz) || k as usize > MAX_POINTS {
                break;
            }
            per_day.insert(bucket_label(Period::Daily, b), 0);
            k += 1;
        }
        for t in g.times.iter().filter(|t| **t >= input.since && **t <= input.now) {
            *per_day.entry(bucket_label(Period::Daily, Period::Daily.bucket(*t, &input.tz))).or_default() += 1;
        }
        let mut partial = Vec::new();
        for l in g.members.iter().filter(|l| l.snapshot.time() >= input.since && l.snapshot.time() <= input.now) {
            if l.snapshot.summary().errors > 0 {
                partial.push(format!("{} ({} file(s) not read)", l.id.short(), l.snapshot.summary().errors));
            }
        }
        let empty: Vec<&String> = per_day.iter().filter(|(_, n)| **n == 0).map(|(d, _)| d).collect();
        let total: u64 = per_day.values().sum();
        let (lo, hi) = (per_day.values().min().copied().unwrap_or(0), per_day.values().max().copied().unwrap_or(0));
        evidence.push(format!(
            "{}: {total} backup(s) over {} day(s), {lo} to {hi} a day{}",
            g.name,
            per_day.len(),
            if empty.is_empty() {
                String::new()
            } else {
                format!("; none on {}", empty.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "))
            }
        ));
        if !partial.is_empty() {
            evidence.push(format!("  partial runs: {}", partial.join(", ")));
        }
        let gs = gaps(input, g);
        for gap in &gs {
            reasons.push(format!(
                "{}: no backup for {} ({} to {}{}), past the RPO of {}",
                g.name,
                secs_text(gap.secs()),
                gap.from.to_rfc3339(),
                gap.to.to_rfc3339(),
                if gap.open { ", now" } else { "" },
                secs_text(input.rpo_secs)
            ));
        }
        data.push(json!({"group": g.name, "backups": total, "per_day": per_day, "days_without_backup": empty,
            "gaps": gs, "partial_runs": partial}));
    }
    Section::new("completion", reasons, evidence, json!({"rpo_secs": input.rpo_secs, "groups": data}))
}

/// Accessibility: the restore drills of the period (ledger `drill` entries); FAIL when there is
/// none, when the last one failed, or when it took longer than the RTO (`--rto`, else its own).
pub(super) fn accessibility(input: &ReportInput, groups: &[Group<'_>]) -> Section {
    let mut reasons = Vec::new();
    let mut evidence = Vec::new();
    let mut drills = Vec::new();
    let mut last = None;
    let mut ignored = 0;
    for (e, ev) in in_period(input) {
        let Event::Drill { snapshot, passed, report_hash, duration_ms, rto_ms, job } = ev else { continue };
        if !trusted(input, e) {
            ignored += 1;
            continue;
        }
        if input.job.is_some() && !groups.iter().any(|g| drill_of(input, g, snapshot, job)) {
            continue;
        }
        let rto = input.rto_ms.or(*rto_ms);
        let timing = match rto {
            Some(r) if *duration_ms <= r => format!(", RTO {}: margin {}", ms_text(r), ms_text(r - duration_ms)),
            Some(r) => format!(", RTO {}: OVER by {}", ms_text(r), ms_text(duration_ms - r)),
            None => ", no RTO".to_string(),
        };
        evidence.push(format!(
            "{} drill of snapshot {}{}: {} in {}{timing}; evidence BLAKE3 {} ({})",
            e.time.to_rfc3339(),
            snapshot.short(),
            job.as_ref().map(|j| format!(" (job {j})")).unwrap_or_default(),
            pass_word(*passed),
            ms_text(*duration_ms),
            hex::encode(report_hash.0),
            ledger::entry_path(&e.id)
        ));
        drills.push(json!({"time": e.time, "entry": e.id, "snapshot": snapshot, "passed": passed,
            "duration_ms": duration_ms, "rto_ms": rto, "job": job, "report_hash": hex::encode(report_hash.0)}));
        last = Some((e, *snapshot, *passed, *duration_ms, rto));
    }
    if ignored > 0 {
        evidence.push(format!("{ignored} drill entr(ies) not written by a full key: not counted"));
    }
    match last {
        None => reasons
            .push(format!("no restore drill in the period (since {}): run `cairn drill`", input.since.to_rfc3339())),
        Some((e, snap, passed, duration, rto)) => {
            if !passed {
                reasons.push(format!(
                    "the last drill ({}, snapshot {}) failed",
                    ledger::entry_path(&e.id),
                    snap.short()
                ));
            }
            if let Some(r) = rto.filter(|r| duration > *r) {
                reasons.push(format!(
                    "the last drill ({}) took {}, past the RTO of {}",
                    ledger::entry_path(&e.id),
                    ms_text(duration),
                    ms_text(r)
                ));
            }
        }
    }
    Section::new("accessibility", reasons, evidence, json!({"rto_ms": input.rto_ms, "drills": drills}))
}

/// Integrity: the last check of the period (FAIL when none, or when it found errors), the share
/// of the data packs in storage that the checks of the period read (`check-data` entries), and
/// `ledger verify` (FAIL on any finding).
pub(super) fn integrity(input: &ReportInput) -> Section {
    let mut reasons = Vec::new();
    let mut evidence = Vec::new();
    let mut checks = Vec::new();
    let mut shares = Vec::new();
    let mut last = None;
    let mut ignored = 0;
    for (e, ev) in in_period(input) {
        if !trusted(input, e) && matches!(ev, Event::Check { .. } | Event::CheckData { .. }) {
            ignored += 1;
            continue;
        }
        let (errors, warnings) = match ev {
            Event::Check { errors, warnings, .. } => (*errors, *warnings),
            Event::CheckData { errors, warnings, share, .. } => {
                shares.push(*share);
                (*errors, *warnings)
            }
            _ => continue,
        };
        checks.push(json!({"time": e.time, "entry": e.id, "errors": errors, "warnings": warnings,
            "read_data": matches!(ev, Event::CheckData { .. })}));
        last = Some((e, errors, warnings));
    }
    match last {
        None => reasons.push(format!("no check in the period (since {})", input.since.to_rfc3339())),
        Some((e, errors, warnings)) => {
            evidence.push(format!(
                "last check {}: {errors} error(s), {warnings} warning(s) ({}); {} check(s) in the period",
                e.time.to_rfc3339(),
                ledger::entry_path(&e.id),
                checks.len()
            ));
            if errors > 0 {
                reasons.push(format!(
                    "the last check ({}, {}) found {errors} error(s)",
                    ledger::entry_path(&e.id),
                    e.time.to_rfc3339()
                ));
            }
        }
    }
    if ignored > 0 {
        evidence.push(format!("{ignored} check entr(ies) not written by a full key: not counted"));
    }
    let total = input.data_packs.len();
    let read = input.data_packs.iter().filter(|p| shares.iter().any(|s| s.selects(p))).count();
    let percent = if total == 0 { 100.0 } else { read as f64 * 100.0 / total as f64 };
    evidence.push(format!(
        "data packs read in the period: {read} of {total} ({percent:.1}%) selected by the read-data rules of {} check(s)",
        shares.len()
    ));
    let verify = match &input.verify {
        Err(m) => {
            reasons.push(format!("ledger verify could not run: {m}"));
            json!({"error": m})
        }
        Ok(v) => {
            evidence.push(format!(
                "ledger verify: {} entries, {} snapshot(s), {} finding(s)",
                v.entries,
                v.snapshots,
                v.findings.len()
            ));
            for f in v.findings.iter().take(MAX_FINDINGS) {
                reasons.push(format!("ledger verify: {} {}: {}", f.code, f.object, f.message));
            }
            if v.findings.len() > MAX_FINDINGS {
                reasons.push(format!("ledger verify: and {} more finding(s)", v.findings.len() - MAX_FINDINGS));
            }
            json!({"entries": v.entries, "snapshots": v.snapshots, "heads": v.heads, "findings": v.findings})
        }
    };
    let data = json!({"checks": checks, "data_packs": total, "data_packs_read": read, "ledger_verify": verify});
    Section::new("integrity", reasons, evidence, data)
}
