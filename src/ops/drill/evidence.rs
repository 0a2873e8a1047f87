//! The drill's evidence report (format-spec §13.8): its JSON layout (versioned), its plain-text
//! form, its BLAKE3 (of the JSON bytes exactly as written, the `report_hash` of the `drill` ledger
//! entry), writing both files privately (0600, created new, never through a symlink), and finding
//! the ledger entry that seals a given report ([`check_evidence`]).

use super::DrillOptions;
use crate::error::{Error, Result};
use crate::id::{Digest, EntryId, RepoId, SnapshotId};
use crate::ledger::Event;
use crate::ops::ledger::Finding;
use crate::repository::ReadRepository;
use crate::snapshot::Snapshot;
use crate::time::Time;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The `format` field of every evidence report.
pub const EVIDENCE_FORMAT: &str = "cairn-drill-evidence";
/// The layout version this code writes.
pub const EVIDENCE_VERSION: u32 = 1;
/// Bytes of the verify command's output the report keeps (the last ones).
pub const OUTPUT_TAIL: usize = 4096;
/// Failures the report lists (`failures_total` counts them all).
pub const MAX_FAILURES: usize = 100;

/// How a drill ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every check passed within the RTO (or none was given).
    Passed,
    /// Every check passed, but the drill took longer than the RTO.
    OverRto,
    /// A check failed.
    #[default]
    Failed,
}

impl Verdict {
    /// `passed`, `over-rto`, `failed`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::OverRto => "over-rto",
            Verdict::Failed => "failed",
        }
    }
}

/// One timed phase: `restore`, `compare`, `verify` (or `stream`, `verify`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    /// Its name.
    pub name: String,
    /// Wall time, milliseconds.
    pub ms: u64,
    /// Whether it passed.
    pub passed: bool,
}

/// One thing that failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The phase.
    pub phase: String,
    /// The path (restored path, or the streamed file), when it is about one.
    pub path: Option<String>,
    /// What went wrong.
    pub message: String,
}

/// The verify command's run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRun {
    /// The command as given (`sh -c`).
    pub command: String,
    /// Its exit code (`None`: killed by a signal, or it did not start).
    pub exit_code: Option<i32>,
    /// How it ended, in words.
    pub status: String,
    /// Whether it passed (exit 0).
    pub passed: bool,
    /// The last bytes of its standard output and standard error (one stream, as written).
    pub output_tail: String,
    /// Bytes of output in all.
    pub output_bytes: u64,
    /// What streaming did (kept out of the report: the `stream` phase says it).
    #[serde(skip)]
    pub(super) streamed: Option<Streamed>,
}

/// What streaming a file into the verify command did (kept out of the report's JSON).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Streamed {
    /// Bytes read and checked.
    pub bytes: u64,
    /// Milliseconds from the start to the last byte.
    pub ms: u64,
    /// Why the file could not be read whole, when it could not.
    pub error: Option<String>,
}

/// The evidence report of one drill (format-spec §13.8), version [`EVIDENCE_VERSION`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Evidence {
    /// Always [`EVIDENCE_FORMAT`].
    pub format: String,
    /// The layout version.
    pub version: u32,
    /// The repository.
    pub repository: Option<RepoId>,
    /// The snapshot drilled.
    pub snapshot: SnapshotId,
    /// Its time.
    pub snapshot_time: Time,
    /// Its host.
    pub snapshot_host: String,
    /// Its source paths.
    pub sources: Vec<String>,
    /// Its tags.
    pub tags: Vec<String>,
    /// The job, when the drill ran for one.
    pub job: Option<String>,
    /// The host that ran the drill.
    pub drill_host: String,
    /// When the drill started.
    pub started: Time,
    /// When it ended (before the report was written).
    pub finished: Time,
    /// Where it restored (`None`: it streamed).
    pub target: Option<String>,
    /// Whether the target was a temporary directory, removed afterwards.
    pub target_temporary: bool,
    /// Whether the temporary directory was removed (`None`: not a temporary one).
    pub target_removed: Option<bool>,
    /// The include globs.
    pub includes: Vec<String>,
    /// The streamed file, when it streamed one.
    pub stream: Option<String>,
    /// Files restored.
    pub files: u64,
    /// Bytes restored.
    pub bytes: u64,
    /// Files re-read and found equal to the snapshot's content ids.
    pub compared_files: u64,
    /// Their bytes.
    pub compared_bytes: u64,
    /// The phases in order, timed.
    pub phases: Vec<Phase>,
    /// The verify command's run, when there was one.
    pub verify_command: Option<CommandRun>,
    /// The first [`MAX_FAILURES`] failures.
    pub failures: Vec<Failure>,
    /// All failures.
    pub failures_total: u64,
    /// Every check passed (whatever the time).
    pub passed: bool,
    /// Wall time of the drill, milliseconds.
    pub duration_ms: u64,
    /// The RTO, milliseconds.
    pub rto_ms: Option<u64>,
    /// `rto_ms - duration_ms` (negative: over).
    pub margin_ms: Option<i64>,
    /// The verdict.
    pub verdict: Verdict,
}

impl Evidence {
    pub(super) fn new(
        repo: &ReadRepository,
        id: SnapshotId,
        snap: &Snapshot,
        opts: &DrillOptions,
        started: Time,
    ) -> Evidence {
        Evidence {
            format: EVIDENCE_FORMAT.into(),
            version: EVIDENCE_VERSION,
            repository: Some(repo.config().repo_id()),
            snapshot: id,
            snapshot_time: snap.time(),
            snapshot_host: snap.host().to_string(),
            sources: snap.display_paths(),
            tags: snap.tags().to_vec(),
            job: opts.job.clone(),
            drill_host: crate::repository::hostname(),
            started,
            target_temporary: opts.target.is_none() && opts.stream.is_none(),
            includes: opts.includes.clone(),
            stream: opts.stream.as_ref().map(|p| p.display().to_string()),
            finished: started,
            target: None,
            target_removed: None,
            files: 0,
            bytes: 0,
            compared_files: 0,
            compared_bytes: 0,
            phases: Vec::new(),
            verify_command: None,
            failures: Vec::new(),
            failures_total: 0,
            passed: false,
            duration_ms: 0,
            rto_ms: None,
            margin_ms: None,
            verdict: Verdict::Failed,
        }
    }

    pub(super) fn phase(&mut self, name: &str, ms: u64, passed: bool) {
        self.phases.push(Phase { name: name.into(), ms, passed });
    }

    pub(super) fn fail(&mut self, phase: &str, path: Option<String>, message: String) {
        self.failures_total += 1;
        if self.failures.len() < MAX_FAILURES {
            self.failures.push(Failure { phase: phase.into(), path, message });
        }
    }

    pub(super) fn set_command(&mut self, run: CommandRun) {
        self.verify_command = Some(run);
    }

    pub(super) fn finish(&mut self, duration_ms: u64, rto_ms: Option<u64>, removed: Option<bool>) {
        self.finished = Time::now();
        self.duration_ms = duration_ms;
        self.rto_ms = rto_ms;
        self.target_removed = removed;
        self.passed = self.failures_total == 0 && self.phases.iter().all(|p| p.passed);
        self.margin_ms =
            rto_ms.map(|r| (r as i128 - duration_ms as i128).clamp(i64::MIN as i128, i64::MAX as i128) as i64);
        self.verdict = match (self.passed, self.margin_ms) {
            (false, _) => Verdict::Failed,
            (true, Some(m)) if m < 0 => Verdict::OverRto,
            (true, _) => Verdict::Passed,
        };
    }

    /// The JSON as written and hashed: pretty-printed, one newline at the end.
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// The plain-text form, ending with the JSON's hash.
    pub fn to_text(&self, hash: &Digest) -> String {
        let mut s = String::new();
        let mut line = |l: String| {
            s.push_str(&l);
            s.push('\n');
        };
        line(format!("cairn drill evidence (version {})", self.version));
        if let Some(r) = &self.repository {
            line(format!("repository     {r}"));
        }
        line(format!("snapshot       {} ({}, {})", self.snapshot, self.snapshot_time.to_rfc3339(), self.snapshot_host));
        line(format!("sources        {}", self.sources.join(", ")));
        if let Some(j) = &self.job {
            line(format!("job            {j}"));
        }
        line(format!("drill host     {}", self.drill_host));
        line(format!("started        {}", self.started.to_rfc3339()));
        line(format!("finished       {}", self.finished.to_rfc3339()));
        match (&self.stream, &self.target) {
            (Some(p), _) => line(format!("streamed       {p} into the verify command")),
            (None, Some(t)) => line(format!(
                "target         {t}{}",
                match self.target_removed {
                    Some(true) => " (temporary, removed)",
                    Some(false) => " (temporary, NOT removed)",
                    None => "",
                }
            )),
            (None, None) => {}
        }
        if !self.includes.is_empty() {
            line(format!("include        {}", self.includes.join(", ")));
        }
        line(format!("files          {} ({} bytes)", self.files, self.bytes));
        line(format!(
            "compared       {} files ({} bytes) equal to the snapshot's content ids",
            self.compared_files, self.compared_bytes
        ));
        for p in &self.phases {
            line(format!("phase {:<8} {} ms, {}", p.name, p.ms, if p.passed { "passed" } else { "FAILED" }));
        }
        if let Some(c) = &self.verify_command {
            line(format!("command        {}", c.command));
            line(format!("  status       {}", c.status));
            if !c.output_tail.is_empty() {
                line(format!("  output tail ({} of {} bytes):", c.output_tail.len(), c.output_bytes));
                for l in c.output_tail.lines() {
                    line(format!("    {l}"));
                }
            }
        }
        for f in &self.failures {
            line(format!(
                "failure {:<8} {}{}",
                f.phase,
                f.path.as_ref().map(|p| format!("{p}: ")).unwrap_or_default(),
                f.message
            ));
        }
        if self.failures_total > self.failures.len() as u64 {
            line(format!("failures       {} in all, the first {} listed", self.failures_total, self.failures.len()));
        }
        line(format!("duration       {} ms", self.duration_ms));
        match (self.rto_ms, self.margin_ms) {
            (Some(r), Some(m)) => line(format!("rto            {r} ms, margin {m} ms")),
            _ => line("rto            none given".into()),
        }
        line(format!("verdict        {}", self.verdict.name()));
        line(format!("blake3 (json)  {hash}"));
        s
    }
}

/// BLAKE3 of the evidence JSON's bytes, as the `drill` ledger entry records it.
pub fn evidence_hash(json: &[u8]) -> Digest {
    Digest(*blake3::hash(json).as_bytes())
}

/// Creates `path` new with mode 0600, never through a symlink, and writes `data`.
fn create_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// Writes `json` and `text` as `drill-<time>-<snapshot>.json` and `.txt` in `dir` (created 0700 if
/// missing), each created new (another name, `-2`, `-3`, …, when one is taken) with mode 0600
/// and never through a symlink. Returns both paths.
pub fn write_evidence(dir: &Path, ev: &Evidence, json: &[u8], text: &str) -> Result<(PathBuf, PathBuf)> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| Error::io(dir, e))?;
    let stamp: String = ev.started.to_rfc3339().chars().take(19).filter(|c| c.is_ascii_digit()).collect();
    let base = format!("drill-{stamp}-{}", ev.snapshot.short());
    for n in 1..1000u32 {
        let stem = if n == 1 { base.clone() } else { format!("{base}-{n}") };
        let (j, t) = (dir.join(format!("{stem}.json")), dir.join(format!("{stem}.txt")));
        match create_private(&j, json) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(j, e)),
        }
        match create_private(&t, text.as_bytes()) {
            Ok(()) => return Ok((j, t)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let _ = std::fs::remove_file(&j);
                continue;
            }
            Err(e) => return Err(Error::io(t, e)),
        }
    }
    Err(Error::io(dir, std::io::Error::other("no free name for the evidence files")))
}

/// A `drill` ledger entry whose `report_hash` is the evidence's hash.
#[derive(Clone, Debug, Serialize)]
pub struct EvidenceEntry {
    /// The entry.
    pub entry: EntryId,
    /// When it was written.
    pub time: Time,
    /// The snapshot it drilled.
    pub snapshot: SnapshotId,
    /// Its verdict: every check passed.
    pub passed: bool,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
    /// The RTO, milliseconds.
    pub rto_ms: Option<u64>,
    /// The job.
    pub job: Option<String>,
    /// True when `ledger verify` found nothing wrong with the entry itself (it authenticates, is
    /// signed by a certified key that was not revoked).
    pub verified: bool,
}

/// What `ledger verify --evidence` found for one report.
#[derive(Clone, Debug, Serialize)]
pub struct EvidenceCheck {
    /// BLAKE3 of the file's bytes.
    pub hash: Digest,
    /// The `drill` entries that record it.
    pub entries: Vec<EvidenceEntry>,
}

impl EvidenceCheck {
    /// True when a verified entry records the report.
    pub fn sealed(&self) -> bool {
        self.entries.iter().any(|e| e.verified)
    }
}

/// Finds the `drill` entries whose `report_hash` is BLAKE3 of `bytes` (an evidence report's JSON,
/// as written); `findings` are `ledger verify`'s, which decide whether each entry is verified.
pub fn check_evidence(repo: &ReadRepository, bytes: &[u8], findings: &[Finding]) -> Result<EvidenceCheck> {
    let hash = evidence_hash(bytes);
    let (stored, _) = repo.ledger_entries()?;
    let mut entries = Vec::new();
    for e in &stored {
        let Ok(h) = &e.header else { continue };
        let Ok(body) = e.body(repo) else { continue };
        let Event::Drill { snapshot, passed, report_hash, duration_ms, rto_ms, job } = body.event() else { continue };
        if *report_hash != hash {
            continue;
        }
        let object = crate::ledger::entry_path(&e.id);
        entries.push(EvidenceEntry {
            entry: e.id,
            time: h.time(),
            snapshot: *snapshot,
            passed: *passed,
            duration_ms: *duration_ms,
            rto_ms: *rto_ms,
            job: job.clone(),
            verified: !findings.iter().any(|f| f.object == object),
        });
    }
    entries.sort_by_key(|e| (e.time, e.entry));
    Ok(EvidenceCheck { hash, entries })
}
