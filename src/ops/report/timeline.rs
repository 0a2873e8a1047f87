//! The groups a report judges (by `--group-by`, or one job) and what happened to each in the
//! period: its snapshots, the gaps between them longer than the RPO, and the drills and checks of
//! the ledger, as the HTML timeline draws them.

use super::{in_period, trusted, ReportInput};
use crate::forget::GroupKey;
use crate::id::SnapshotId;
use crate::ledger::Event;
use crate::select::Listed;
use crate::time::Time;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

/// One group of snapshots: those that count (flagged ones never do), oldest first, and the times
/// of every backup of it the evidence knows of.
pub(super) struct Group<'a> {
    /// How the report names it: `job NAME`, or its keys (`host db-1, paths /srv`).
    pub name: String,
    /// Its members that count, oldest first.
    pub members: Vec<&'a Listed>,
    /// Its host (that of its newest member), when grouped by host or a job.
    pub host: Option<String>,
    /// Its paths (those of its newest member), sorted.
    pub paths: Vec<String>,
    /// When each of its backups was made, oldest first: its members' times, and for a backup
    /// whose snapshot is gone from storage, the time of its ledger entry.
    pub times: Vec<Time>,
}

impl Group<'_> {
    /// True when `id` is one of its snapshots.
    pub fn holds(&self, id: &SnapshotId) -> bool {
        self.members.iter().any(|l| l.id == *id)
    }
}

/// `host h, paths /a /b, tags t, writer w` for the parts the key has; `all snapshots` for none.
fn describe(k: &GroupKey) -> String {
    let mut parts = Vec::new();
    if let Some(h) = &k.host {
        parts.push(format!("host {h}"));
    }
    if let Some(p) = &k.paths {
        parts.push(format!("paths {}", p.join(" ")));
    }
    if let Some(t) = &k.tags {
        parts.push(format!("tags {}", if t.is_empty() { "-".to_string() } else { t.join(",") }));
    }
    if let Some(w) = &k.writer {
        parts.push(format!("writer {}", &w[..w.len().min(8)]));
    }
    if parts.is_empty() {
        "all snapshots".into()
    } else {
        parts.join(", ")
    }
}

/// The groups of the input's snapshots that count: one named `job NAME` for a job, else one per
/// `--group-by` key, in key order.
pub(super) fn groups(input: &ReportInput) -> Vec<Group<'_>> {
    let mut counted: Vec<&Listed> = input.snapshots.iter().filter(|l| l.eligible()).collect();
    counted.sort_by(|a, b| a.snapshot.time().cmp(&b.snapshot.time()).then(a.id.cmp(&b.id)));
    let named: Vec<(String, bool, Vec<&Listed>)> = match &input.job {
        Some(job) => vec![(format!("job {job}"), true, counted)],
        None => {
            let mut by: BTreeMap<GroupKey, Vec<&Listed>> = BTreeMap::new();
            for l in counted {
                by.entry(GroupKey::of(l, input.group_by)).or_default().push(l);
            }
            by.into_iter().map(|(k, members)| (describe(&k), k.host.is_some(), members)).collect()
        }
    };
    let held: HashSet<SnapshotId> = input.snapshots.iter().map(|l| l.id).collect();
    named
        .into_iter()
        .map(|(name, by_host, members)| {
            let newest = members.last().map(|l| &l.snapshot);
            let host = newest.filter(|_| by_host).map(|s| s.host().to_string());
            let mut paths = newest.map(|s| s.display_paths()).unwrap_or_default();
            paths.sort();
            let mut times: Vec<Time> = members.iter().map(|l| l.snapshot.time()).collect();
            for e in &input.ledger {
                let Some(Event::Backup { snapshot, sources, .. }) = &e.event else { continue };
                let mut sources = sources.clone();
                sources.sort();
                if !held.contains(snapshot)
                    && !members.is_empty()
                    && sources == paths
                    && host.as_ref().is_none_or(|h| e.host.as_ref() == Some(h))
                {
                    times.push(e.time);
                }
            }
            times.sort();
            Group { name, members, host, paths, times }
        })
        .collect()
}

/// A stretch without a backup longer than the RPO.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// The snapshot before it (or the start of the period).
    pub from: Time,
    /// The next snapshot, or the end of the period when `open`.
    pub to: Time,
    /// True when no backup has ended it yet.
    pub open: bool,
}

impl Gap {
    /// Its length in seconds.
    pub fn secs(&self) -> i64 {
        self.to.secs.saturating_sub(self.from.secs)
    }
}

/// The gaps longer than the RPO between consecutive snapshots of `g` that touch the period,
/// and from its newest snapshot to the end of the period. A group whose first snapshot falls in
/// the period has no gap before it (it began then).
pub(super) fn gaps(input: &ReportInput, g: &Group<'_>) -> Vec<Gap> {
    let times: Vec<Time> = g.times.iter().copied().filter(|t| *t <= input.now).collect();
    let mut out = Vec::new();
    for w in times.windows(2) {
        let gap = Gap { from: w[0], to: w[1], open: false };
        if w[1] >= input.since && gap.secs() > input.rpo_secs {
            out.push(gap);
        }
    }
    match times.last() {
        Some(last) => {
            if input.now.secs.saturating_sub(last.secs) > input.rpo_secs {
                out.push(Gap { from: *last, to: input.now, open: true });
            }
        }
        None => out.push(Gap { from: input.since, to: input.now, open: true }),
    }
    out
}

/// A drill or check on the timeline.
#[derive(Clone, Debug, Serialize)]
pub struct Mark {
    /// When its ledger entry was written.
    pub time: Time,
    /// Passed (drill) or found no error (check).
    pub ok: bool,
    /// A short description.
    pub label: String,
}

/// A group's period as the HTML timeline draws it.
#[derive(Clone, Debug, Serialize)]
pub struct GroupTimeline {
    /// The group.
    pub name: String,
    /// Its backups in the period (snapshots held, and those of its ledger entries gone since).
    pub snapshots: Vec<Time>,
    /// Its gaps longer than the RPO.
    pub gaps: Vec<Gap>,
    /// Drills of its snapshots (or of its job) in the period.
    pub drills: Vec<Mark>,
    /// Checks of the repository in the period.
    pub checks: Vec<Mark>,
}

/// True when a drill of `snapshot` (recorded with `job`) belongs to group `g`.
pub(super) fn drill_of(input: &ReportInput, g: &Group<'_>, snapshot: &SnapshotId, job: &Option<String>) -> bool {
    match &input.job {
        Some(name) => job.as_ref() == Some(name) || g.holds(snapshot),
        None => g.holds(snapshot),
    }
}

/// The timeline of group `g`.
pub(super) fn draw(input: &ReportInput, g: &Group<'_>) -> GroupTimeline {
    let snapshots = g.times.iter().copied().filter(|t| *t >= input.since && *t <= input.now).collect();
    let mut drills = Vec::new();
    let mut checks = Vec::new();
    for (e, ev) in in_period(input).filter(|(e, _)| trusted(input, e)) {
        match ev {
            Event::Drill { snapshot, passed, duration_ms, job, .. } if drill_of(input, g, snapshot, job) => {
                drills.push(Mark {
                    time: e.time,
                    ok: *passed,
                    label: format!("drill of {}: {}, {} ms", snapshot.short(), pass_word(*passed), duration_ms),
                });
            }
            Event::Check { errors, warnings, .. } | Event::CheckData { errors, warnings, .. } => checks.push(Mark {
                time: e.time,
                ok: *errors == 0,
                label: format!("check: {errors} error(s), {warnings} warning(s)"),
            }),
            _ => {}
        }
    }
    GroupTimeline { name: g.name.clone(), snapshots, gaps: gaps(input, g), drills, checks }
}

/// `passed` or `failed`.
pub(super) fn pass_word(ok: bool) -> &'static str {
    if ok {
        "passed"
    } else {
        "failed"
    }
}
