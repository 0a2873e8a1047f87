//! The compliance report (docs/compliance.md): five sections — encryption, retention, completion,
//! accessibility, integrity — each PASS or FAIL with the evidence behind it. The core is pure: a
//! [`ReportInput`] (the snapshots, the ledger, its verification, the key files, the retention
//! policy, the data packs in storage, the period and its objectives) becomes a [`Report`] by
//! [`build`], with no I/O and no clock; [`gather`] reads that input from a repository, and the
//! renderers ([`render::text`], [`render::html`]; JSON is the report's serde form) turn it into
//! what `cairn report` prints. Nothing here writes to the repository.

use crate::forget::GroupBy;
use crate::id::{KeyId, PackId};
use crate::keyfile::{Credential, KdfParams, KeyKind};
use crate::ledger::Event;
use crate::ops::ledger::{LogEntry, VerifyReport};
use crate::retention::PolicyFile;
use crate::select::Listed;
use crate::time::Time;
use jiff::tz::TimeZone;
use serde::Serialize;

mod gather;
pub mod render;
mod sections;
mod timeline;

pub use gather::{gather, GatherOptions};
pub use sections::{ALGORITHMS, NAMES};
pub use timeline::{GroupTimeline, Mark};

/// A section's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    /// Every requirement of the section holds.
    Pass,
    /// At least one does not; the section's `reasons` say which.
    Fail,
}

impl Verdict {
    /// `PASS` or `FAIL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
        }
    }
}

/// A key file as the encryption section sees it (its public part: nothing secret).
#[derive(Clone, Debug, Serialize)]
pub struct KeyFacts {
    /// Its id.
    pub id: KeyId,
    /// Full or write-only.
    pub kind: KeyKind,
    /// When it was made.
    pub created: Time,
    /// Where.
    pub host: String,
    /// By whom.
    pub user: String,
    /// What opens it (format-spec §4.1); `None` when the key file does not decode.
    pub credential: Option<Credential>,
    /// Its argon2id parameters; `None` when the key file does not decode or is opened with a
    /// generated secret.
    pub kdf: Option<KdfParams>,
}

/// Everything a report is made of. Built by [`gather`] from a repository, or by hand in tests.
#[derive(Clone, Debug)]
pub struct ReportInput {
    /// The time the report is made at; the period ends here.
    pub now: Time,
    /// The start of the period.
    pub since: Time,
    /// The repository id (hex), for the heading.
    pub repository: String,
    /// The snapshots in storage (flagged ones included; they never count).
    pub snapshots: Vec<Listed>,
    /// The ledger in reading order, bodies included (a full key).
    pub ledger: Vec<LogEntry>,
    /// What `ledger verify` found; `None` when it could not run (the message says why).
    pub verify: Result<VerifyReport, String>,
    /// The key files in storage.
    pub keys: Vec<KeyFacts>,
    /// The keys whose verified certificate makes them full keys (format-spec §4.3): only their
    /// drill and check entries count, since a write-only key can append any entry of its own
    /// but can run neither a drill nor a check.
    pub full_keys: std::collections::HashSet<KeyId>,
    /// The retention policy to judge by; `None`: none given.
    pub policy: Option<PolicyFile>,
    /// The recovery-point objective, seconds: a gap between backups of a group longer than this fails.
    pub rpo_secs: i64,
    /// The recovery-time objective, milliseconds; `None`: each drill's own.
    pub rto_ms: Option<u64>,
    /// The data packs in storage.
    pub data_packs: Vec<PackId>,
    /// How snapshots are grouped.
    pub group_by: GroupBy,
    /// When set, every snapshot is one group of this name (a job: `job NAME`), and only drills of
    /// this job or of its snapshots count.
    pub job: Option<String>,
    /// The time zone of calendar days and retention buckets.
    pub tz: TimeZone,
}

/// One of the five sections.
#[derive(Clone, Debug, Serialize)]
pub struct Section {
    /// `encryption`, `retention`, `completion`, `accessibility` or `integrity`.
    pub name: &'static str,
    /// PASS or FAIL.
    pub verdict: Verdict,
    /// Why it fails (empty when it passes), each naming the key, snapshot, group or ledger object.
    pub reasons: Vec<String>,
    /// The evidence, one line each, as the text report prints it.
    pub evidence: Vec<String>,
    /// The same evidence as data.
    pub data: serde_json::Value,
}

impl Section {
    fn new(name: &'static str, reasons: Vec<String>, evidence: Vec<String>, data: serde_json::Value) -> Section {
        let verdict = if reasons.is_empty() { Verdict::Pass } else { Verdict::Fail };
        Section { name, verdict, reasons, evidence, data }
    }
}

/// The report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The repository id.
    pub repository: String,
    /// When it was made (the end of the period).
    pub generated: Time,
    /// The start of the period.
    pub since: Time,
    /// The RPO it judged by, seconds.
    pub rpo_secs: i64,
    /// The RTO it judged by, milliseconds (`None`: each drill's own).
    pub rto_ms: Option<u64>,
    /// PASS when every section passes.
    pub verdict: Verdict,
    /// The five sections, in the order encryption, retention, completion, accessibility, integrity.
    pub sections: Vec<Section>,
    /// Per group: what happened when in the period, for the timeline.
    pub timeline: Vec<GroupTimeline>,
}

impl Report {
    /// The section of this name.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }
    /// The names of the sections that fail.
    pub fn failed(&self) -> Vec<&'static str> {
        self.sections.iter().filter(|s| s.verdict == Verdict::Fail).map(|s| s.name).collect()
    }
}

/// The ledger entries written in the period, with their events.
fn in_period(input: &ReportInput) -> impl Iterator<Item = (&LogEntry, &Event)> {
    input
        .ledger
        .iter()
        .filter(move |e| e.time >= input.since && e.time <= input.now)
        .filter_map(|e| e.event.as_ref().map(|ev| (e, ev)))
}

/// True when entry `e` was written by a full key, so its drill or check result counts.
fn trusted(input: &ReportInput, e: &LogEntry) -> bool {
    input.full_keys.contains(&e.key_id)
}

/// Builds the report from its input. Pure.
pub fn build(input: &ReportInput) -> Report {
    let groups = timeline::groups(input);
    let sections = vec![
        sections::encryption(input),
        sections::retention(input, &groups),
        sections::completion(input, &groups),
        sections::accessibility(input, &groups),
        sections::integrity(input),
    ];
    let verdict = if sections.iter().all(|s| s.verdict == Verdict::Pass) { Verdict::Pass } else { Verdict::Fail };
    let timeline = groups.iter().map(|g| timeline::draw(input, g)).collect();
    Report {
        repository: input.repository.clone(),
        generated: input.now,
        since: input.since,
        rpo_secs: input.rpo_secs,
        rto_ms: input.rto_ms,
        verdict,
        sections,
        timeline,
    }
}

#[cfg(test)]
mod tests;
