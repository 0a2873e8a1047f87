//! `cairn status`: the freshness and size verdicts on snapshot groups (docs/cli-contract.md,
//! `cairn status`). A pure function of the listed snapshots, the rules of each group and the time
//! now: no I/O, no clock, no repository. Per group it looks at the newest snapshot that counts
//! (flagged snapshots never do, format-spec §4.3): its age against the warning age and the RPO,
//! its size (`bytes_processed` of the manifest summary) against the previous snapshot of the
//! group, and whether its run was partial (files that could not be read). The caller chooses the
//! groups: by the `--group-by` keys ([`evaluate`]) or its own selection with its own rules per
//! group ([`assess`], for job profiles).

use crate::forget::{self, GroupBy};
use crate::id::SnapshotId;
use crate::select::{Flag, Listed};
use crate::time::Time;
use crate::units::human_secs;
use std::collections::BTreeMap;

/// The monitoring-plugin states, worst last; the order is the order of severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    /// Fresh, no anomaly.
    Ok,
    /// Older than the warning age, or the last run was partial.
    Warning,
    /// Older than the RPO, no snapshot at all, or a size change past the threshold.
    Critical,
    /// The state cannot be known (the repository cannot be read).
    Unknown,
}

impl Verdict {
    /// The monitoring-plugin exit code: 0, 1, 2, 3.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Ok => 0,
            Verdict::Warning => 1,
            Verdict::Critical => 2,
            Verdict::Unknown => 3,
        }
    }
    /// `OK`, `WARNING`, `CRITICAL`, `UNKNOWN`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::Warning => "WARNING",
            Verdict::Critical => "CRITICAL",
            Verdict::Unknown => "UNKNOWN",
        }
    }
}

/// The thresholds one group is judged by.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rules {
    /// The newest snapshot older than this (seconds) is [`Verdict::Critical`].
    pub rpo_secs: i64,
    /// The newest snapshot older than this (seconds) is [`Verdict::Warning`]; `None`: no warning age.
    pub warn_secs: Option<i64>,
    /// A size change against the previous snapshot of at least this fraction (up or down; 0.5 is
    /// 50 %) is [`Verdict::Critical`]; `None`: sizes are not compared.
    pub size_change: Option<f64>,
}

impl Default for Rules {
    /// An RPO of 24 hours, no warning age, no size rule.
    fn default() -> Self {
        Rules { rpo_secs: 24 * 3600, warn_secs: None, size_change: None }
    }
}

/// A snapshot as the verdict saw it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SnapshotFacts {
    /// Its id.
    pub id: SnapshotId,
    /// The first 8 hex digits.
    pub short_id: String,
    /// When it was taken.
    pub time: Time,
    /// Seconds between its time and now (0 when it is dated after now).
    pub age_secs: i64,
    /// Bytes of file content it covers (the manifest summary's `bytes_processed`).
    pub bytes_processed: u64,
    /// Files its run could not read (the manifest summary's `errors`).
    pub errors: u64,
}

impl SnapshotFacts {
    fn of(l: &Listed, now: Time) -> Self {
        let s = &l.snapshot;
        SnapshotFacts {
            id: l.id,
            short_id: l.id.short(),
            time: s.time(),
            age_secs: now.secs.saturating_sub(s.time().secs).max(0),
            bytes_processed: s.summary().bytes_processed,
            errors: s.summary().errors,
        }
    }
}

/// What identifies a group: the `--group-by` keys it was formed by (retention's
/// [`forget::GroupKey`], absent keys `None`), or the caller's name for it (a job).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupKey {
    /// The caller's name for the group (a job name); `None` for `--group-by` groups.
    pub name: Option<String>,
    /// The keys the group was formed by.
    pub group: forget::GroupKey,
}

/// `{"name", "host", "paths", "tags", "writer"}`, each null when absent (docs/cli-contract.md).
impl serde::Serialize for GroupKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let g = &self.group;
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("name", &self.name)?;
        m.serialize_entry("host", &g.host)?;
        m.serialize_entry("paths", &g.paths)?;
        m.serialize_entry("tags", &g.tags)?;
        m.serialize_entry("writer", &g.writer)?;
        m.end()
    }
}

impl GroupKey {
    /// `host web-1, paths /etc /srv` (or the name first) — for the text output.
    pub fn describe(&self) -> String {
        let keyless = self.group == forget::GroupKey::default();
        match (&self.name, keyless) {
            (Some(n), true) => n.clone(),
            (Some(n), false) => format!("{n}, {}", self.group.describe()),
            (None, true) => "all snapshots".into(),
            (None, false) => self.group.describe(),
        }
    }
}

/// The verdict on one group. Serializes as the `groups` items of `status --json`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct GroupStatus {
    /// Which group.
    #[serde(flatten)]
    pub key: GroupKey,
    /// The worst state any rule gave.
    pub status: Verdict,
    /// Why it is not OK, one sentence per rule that fired (empty when OK).
    pub reasons: Vec<String>,
    /// The snapshots that count (not flagged).
    pub snapshots: usize,
    /// The flagged snapshots of the group, which never count.
    pub flagged: usize,
    /// The newest snapshot that counts.
    pub newest: Option<SnapshotFacts>,
    /// The one before it.
    pub previous: Option<SnapshotFacts>,
    /// `(newest - previous) / previous` of their sizes; `None` without a previous snapshot or
    /// when the previous one is empty.
    pub size_change: Option<f64>,
    /// `ok` or `partial` (the newest snapshot's run could not read some files); `None` without one.
    pub last_run: Option<&'static str>,
}

/// The verdicts on every group, and the worst of them.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Report {
    /// The worst group's state (OK when there is none... which [`evaluate`] never returns).
    pub status: Verdict,
    /// When the ages were taken.
    pub now: Time,
    /// One per group.
    pub groups: Vec<GroupStatus>,
}

impl Report {
    /// Builds the report of `groups` at `now`.
    pub fn new(groups: Vec<GroupStatus>, now: Time) -> Self {
        let status = groups.iter().map(|g| g.status).max().unwrap_or(Verdict::Ok);
        Report { status, now, groups }
    }
}

/// The verdict on the snapshots `members` (one group, any order, flagged ones included) by
/// `rules` at `now`, labelled `key`.
pub fn assess(key: GroupKey, members: &[&Listed], rules: &Rules, now: Time) -> GroupStatus {
    let mut counted: Vec<&Listed> = members.iter().copied().filter(|l| l.eligible()).collect();
    counted.sort_by(|a, b| a.snapshot.time().cmp(&b.snapshot.time()).then(a.id.cmp(&b.id)));
    let flagged: Vec<&Listed> = members.iter().copied().filter(|l| !l.eligible()).collect();
    let mut g = GroupStatus {
        key,
        status: Verdict::Ok,
        reasons: Vec::new(),
        snapshots: counted.len(),
        flagged: flagged.len(),
        newest: counted.last().map(|l| SnapshotFacts::of(l, now)),
        previous: counted.len().checked_sub(2).map(|i| SnapshotFacts::of(counted[i], now)),
        size_change: None,
        last_run: None,
    };
    let raise = |g: &mut GroupStatus, v: Verdict, why: String| {
        g.status = g.status.max(v);
        g.reasons.push(why);
    };
    let Some(newest) = g.newest.clone() else {
        let why = if flagged.is_empty() {
            "no snapshot".to_string()
        } else {
            let mut kinds: Vec<Flag> = flagged.iter().flat_map(|l| l.flags.iter().copied()).collect();
            kinds.sort();
            kinds.dedup();
            let kinds: Vec<&str> = kinds.iter().map(|f| f.as_str()).collect();
            format!("no snapshot that counts ({} flagged: {})", flagged.len(), kinds.join(", "))
        };
        raise(&mut g, Verdict::Critical, why);
        return g;
    };
    if newest.age_secs > rules.rpo_secs {
        let why = format!(
            "newest snapshot {} is {} old, past the RPO of {}",
            newest.short_id,
            human_secs(newest.age_secs),
            human_secs(rules.rpo_secs)
        );
        raise(&mut g, Verdict::Critical, why);
    } else if let Some(w) = rules.warn_secs.filter(|w| newest.age_secs > *w) {
        let why = format!(
            "newest snapshot {} is {} old, past {}",
            newest.short_id,
            human_secs(newest.age_secs),
            human_secs(w)
        );
        raise(&mut g, Verdict::Warning, why);
    }
    g.last_run = Some(if newest.errors > 0 { "partial" } else { "ok" });
    if newest.errors > 0 {
        let why = format!("the run of snapshot {} was partial: {} file(s) not read", newest.short_id, newest.errors);
        raise(&mut g, Verdict::Warning, why);
    }
    if let Some(prev) = g.previous.clone() {
        let (old, new) = (prev.bytes_processed, newest.bytes_processed);
        // Past the threshold: any growth from an empty snapshot counts as infinite.
        let change = if old == 0 {
            if new == 0 {
                0.0
            } else {
                f64::INFINITY
            }
        } else {
            (new as f64 - old as f64) / old as f64
        };
        g.size_change = change.is_finite().then_some(change);
        if let Some(limit) = rules.size_change.filter(|l| change.abs() >= *l) {
            let why = format!(
                "size of {} changed by {} against {} ({} -> {} bytes), at least the limit of {:.0}%",
                newest.short_id,
                if change.is_finite() { format!("{:+.1}%", change * 100.0) } else { "+inf%".to_string() },
                prev.short_id,
                old,
                new,
                limit * 100.0
            );
            raise(&mut g, Verdict::Critical, why);
        }
    }
    g
}

/// The key of `l` under `group_by` (the key retention groups it by).
pub fn key_of(l: &Listed, group_by: GroupBy) -> GroupKey {
    GroupKey { name: None, group: forget::GroupKey::of(l, group_by) }
}

/// Groups `snapshots` (flagged ones included) by `group_by` and judges each group by the rules
/// `rules_for` gives its key, at `now`. No snapshot at all is one group without keys,
/// [`Verdict::Critical`].
pub fn evaluate(snapshots: &[Listed], group_by: GroupBy, rules_for: &dyn Fn(&GroupKey) -> Rules, now: Time) -> Report {
    if snapshots.is_empty() {
        let key = GroupKey::default();
        let rules = rules_for(&key);
        return Report::new(vec![assess(key, &[], &rules, now)], now);
    }
    let mut groups: BTreeMap<GroupKey, Vec<&Listed>> = BTreeMap::new();
    for l in snapshots {
        groups.entry(key_of(l, group_by)).or_default().push(l);
    }
    let groups = groups
        .into_iter()
        .map(|(key, members)| {
            let rules = rules_for(&key);
            assess(key, &members, &rules, now)
        })
        .collect();
    Report::new(groups, now)
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
