//! The forget operation: groups snapshots (by default by host, paths and writer), applies a
//! retention policy to each group (a plan), then removes the snapshots the plan condemns. Flagged
//! snapshots (forged, host-not-allowed, future: format-spec §4.3) are in no group: a policy
//! neither keeps nor removes them; they are listed as excluded and removed only when named by id. Removing a snapshot deletes only its manifest;
//! the data it referenced stays until prune (format-spec §11).

use crate::error::{Error, Override, Result};
use crate::id::SnapshotId;
use crate::repository::ReadRepository;
use crate::retention::{self, Decision, Item, Policy, PolicyFile};
use crate::select::{Flag, Listed};
use jiff::tz::TimeZone;

/// What snapshots are grouped by before the policy applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupBy {
    /// Host name.
    pub host: bool,
    /// The set of backed-up paths.
    pub paths: bool,
    /// The set of tags.
    pub tags: bool,
    /// The writing key (its id, or `unattributed`; format-spec §4.3).
    pub writer: bool,
}

impl Default for GroupBy {
    fn default() -> Self {
        GroupBy { host: true, paths: true, tags: false, writer: true }
    }
}

impl std::str::FromStr for GroupBy {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let mut g = GroupBy { host: false, paths: false, tags: false, writer: false };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "host" => g.host = true,
                "paths" | "path" => g.paths = true,
                "tags" | "tag" => g.tags = true,
                "writer" => g.writer = true,
                other => return Err(format!("cannot group by {other:?} (use host, paths, tags, writer)")),
            }
        }
        Ok(g)
    }
}

/// The rules to apply: flags or a policy file.
#[derive(Clone, Debug)]
pub enum Rules {
    /// One policy for every group.
    Policy(Policy),
    /// Classes by tag.
    File(PolicyFile),
}

/// One group and the verdicts on its snapshots (newest first). Serializes as the `groups` items
/// of `forget --json` (docs/cli-contract.md).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Group {
    /// The host, when grouping by host.
    pub host: Option<String>,
    /// The paths, when grouping by paths.
    pub paths: Option<Vec<String>>,
    /// The tags, when grouping by tags.
    pub tags: Option<Vec<String>>,
    /// The writing key id (64 hex) or `unattributed`, when grouping by writer.
    pub writer: Option<String>,
    /// The verdicts.
    #[serde(rename = "snapshots", serialize_with = "serialize_decisions")]
    pub decisions: Vec<Decision>,
}

/// Each verdict as `{id, short_id, time, keep, reasons}`.
fn serialize_decisions<S: serde::Serializer>(ds: &[Decision], s: S) -> std::result::Result<S::Ok, S::Error> {
    #[derive(serde::Serialize)]
    struct Verdict<'a> {
        id: SnapshotId,
        short_id: String,
        time: crate::tree::Time,
        keep: bool,
        reasons: &'a [String],
    }
    s.collect_seq(ds.iter().map(|d| Verdict {
        id: d.id,
        short_id: d.id.short(),
        time: d.time,
        keep: d.keep,
        reasons: &d.reasons,
    }))
}

impl Group {
    /// True when the plan removes every snapshot of the group.
    pub fn removes_all(&self) -> bool {
        !self.decisions.is_empty() && self.decisions.iter().all(|d| !d.keep)
    }
}

/// A flagged snapshot that no policy rule keeps or removes. Serializes as the `excluded` items
/// of `forget --json` (docs/cli-contract.md).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Excluded {
    /// Its id.
    pub id: SnapshotId,
    /// The first 8 hex digits.
    pub short_id: String,
    /// When it claims to have been taken.
    pub time: crate::tree::Time,
    /// The host it claims.
    pub host: String,
    /// Why it is excluded.
    pub reasons: Vec<Flag>,
}

/// The flagged snapshots of `snapshots`, which [`plan`] leaves out.
pub fn excluded(snapshots: &[Listed]) -> Vec<Excluded> {
    snapshots
        .iter()
        .filter(|l| !l.eligible())
        .map(|l| Excluded {
            id: l.id,
            short_id: l.id.short(),
            time: l.snapshot.time(),
            host: l.snapshot.host().to_string(),
            reasons: l.flags.clone(),
        })
        .collect()
}

/// The key of one group: the parts [`GroupBy`] asks for, the others `None`. Keys order groups by
/// host, then paths, tags and writer.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct GroupKey {
    /// The host, when grouping by host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The paths (sorted), when grouping by paths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// The tags (sorted), when grouping by tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// The writing key id (64 hex) or `unattributed`, when grouping by writer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writer: Option<String>,
}

impl GroupKey {
    /// The key of `l` under `group_by`.
    pub fn of(l: &Listed, group_by: GroupBy) -> GroupKey {
        let s = &l.snapshot;
        let mut tags = s.tags().to_vec();
        tags.sort();
        let mut paths = s.display_paths();
        paths.sort();
        GroupKey {
            host: group_by.host.then(|| s.host().to_string()),
            paths: group_by.paths.then_some(paths),
            tags: group_by.tags.then_some(tags),
            writer: group_by.writer.then(|| l.writer_group()),
        }
    }
}

/// The one grouping of snapshots, which retention (`forget`) and `snapshots --group-by` share:
/// `snapshots` by [`GroupKey`], groups in key order, each group's snapshots in the order given.
pub fn group<'a>(
    snapshots: impl IntoIterator<Item = &'a Listed>,
    group_by: GroupBy,
) -> Vec<(GroupKey, Vec<&'a Listed>)> {
    let mut groups: std::collections::BTreeMap<GroupKey, Vec<&'a Listed>> = Default::default();
    for l in snapshots {
        groups.entry(GroupKey::of(l, group_by)).or_default().push(l);
    }
    groups.into_iter().collect()
}

/// Groups the unflagged `snapshots` ([`group`]) and applies `rules` in time zone `tz`.
pub fn plan(snapshots: &[Listed], group_by: GroupBy, rules: &Rules, tz: &TimeZone) -> Vec<Group> {
    group(snapshots.iter().filter(|l| l.eligible()), group_by)
        .into_iter()
        .map(|(key, members)| {
            let items: Vec<Item> = members
                .iter()
                .map(|l| Item { id: l.id, time: l.snapshot.time(), tags: l.snapshot.tags().to_vec() })
                .collect();
            let decisions = match rules {
                Rules::Policy(p) => retention::apply(&items, p, tz),
                Rules::File(f) => f.apply(&items, tz),
            };
            let GroupKey { host, paths, tags, writer } = key;
            Group { host, paths, tags, writer, decisions }
        })
        .collect()
}

/// Removes the snapshots the plan does not keep; returns their ids. Refuses (removing nothing)
/// when a group would lose every snapshot, unless `allow_empty`.
pub fn execute(repo: &ReadRepository, groups: &[Group], allow_empty: bool) -> Result<Vec<SnapshotId>> {
    if !allow_empty {
        if let Some(g) = groups.iter().find(|g| g.removes_all()) {
            return Err(Error::refused_unless(
                format!("the policy would remove every snapshot of group {}; nothing was removed", describe(g)),
                Override::AllowEmpty,
            ));
        }
    }
    let mut removed = Vec::new();
    for d in groups.iter().flat_map(|g| g.decisions.iter()).filter(|d| !d.keep) {
        repo.remove_snapshot(&d.id)?;
        removed.push(d.id);
    }
    // The ledger entry (format-spec §13.3): each removed snapshot with its group's policy.
    let rule = |id: &SnapshotId| groups.iter().find(|g| g.decisions.iter().any(|d| d.id == *id)).map(describe);
    repo.ledger_record(crate::ledger::Event::Forget {
        removed: removed
            .iter()
            .map(|id| crate::ledger::Removed {
                snapshot: *id,
                rule: format!("policy: kept by no rule ({})", rule(id).unwrap_or_default()),
            })
            .collect(),
    })?;
    Ok(removed)
}

/// `host web-1, paths /etc /srv` — for messages.
pub fn describe(g: &Group) -> String {
    GroupKey { host: g.host.clone(), paths: g.paths.clone(), tags: g.tags.clone(), writer: g.writer.clone() }.describe()
}

impl GroupKey {
    /// `host web-1, paths /etc /srv, tags (none), writer 1a2b3c4d`; `(all snapshots)` when empty.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(h) = &self.host {
            parts.push(format!("host {h}"));
        }
        if let Some(p) = &self.paths {
            parts.push(format!("paths {}", p.join(" ")));
        }
        if let Some(t) = &self.tags {
            parts.push(format!("tags {}", if t.is_empty() { "(none)".to_string() } else { t.join(",") }));
        }
        if let Some(w) = &self.writer {
            parts.push(format!("writer {}", if w.len() == 64 { &w[..8] } else { w }));
        }
        if parts.is_empty() {
            "(all snapshots)".into()
        } else {
            parts.join(", ")
        }
    }
}
