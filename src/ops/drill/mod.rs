//! Timed restore drills (docs/cli-contract.md `cairn drill`, format-spec §13.3, §13.8): restore a snapshot into a scratch
//! directory (or stream one file into a command), re-read what was restored and compare it with the
//! snapshot's content ids, run a verify command, time each phase, and seal the outcome in an
//! evidence report whose BLAKE3 goes into a `drill` ledger entry. [`drill`] is the operation;
//! `evidence` owns the report's layout and its lookup in the ledger, `compare` the re-read and
//! the scratch directory, `command` the verify command.

mod command;
mod compare;
mod evidence;

pub use compare::{compare_restored, Mismatch};
pub use evidence::{
    check_evidence, evidence_hash, write_evidence, CommandRun, Evidence, EvidenceCheck, EvidenceEntry, Failure, Phase,
    Verdict, EVIDENCE_FORMAT, EVIDENCE_VERSION, MAX_FAILURES, OUTPUT_TAIL,
};

use crate::error::{Error, Result};
use crate::filter::Patterns;
use crate::id::{Digest, EntryId, SnapshotId};
use crate::ledger::Event;
use crate::ops::restore::{self, RestoreOptions, RestoreProgress};
use crate::repository::ReadRepository;
use crate::snapshot::Snapshot;
use crate::time::Time;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// What a drill does and holds itself to.
#[derive(Clone, Debug, Default)]
pub struct DrillOptions {
    /// Restore into this directory (created if missing, left in place afterwards; it must be missing
    /// or empty, so nothing an earlier drill left can pass for restored data). `None`: a fresh
    /// private directory (0700) under the system temporary directory, removed afterwards, also
    /// when the drill fails or is interrupted.
    pub target: Option<PathBuf>,
    /// Restore only what matches these globs (and what lies below a match), as written.
    pub includes: Vec<String>,
    /// A shell command (`sh -c`) that judges the restored data: exit 0 passes. Its environment has
    /// `CAIRN_DRILL_TARGET` (the restore directory) and `CAIRN_DRILL_SNAPSHOT` (the snapshot id).
    pub verify_command: Option<String>,
    /// Stream this file of the snapshot into the verify command's standard input instead of
    /// restoring anything to disk (the command is then required).
    pub stream: Option<PathBuf>,
    /// The recovery-time objective, milliseconds: a drill that passes but takes longer ends
    /// [`Verdict::OverRto`].
    pub rto_ms: Option<u64>,
    /// Write the evidence report (`.json` and `.txt`) into this directory.
    pub evidence_dir: Option<PathBuf>,
    /// The job this drill runs for (recorded in the evidence and the ledger entry).
    pub job: Option<String>,
    /// Set from a signal handler to stop early (the scratch directory is still removed).
    pub cancel: Option<Arc<AtomicBool>>,
}

/// What a drill found, sealed.
#[derive(Clone, Debug)]
pub struct DrillReport {
    /// The evidence report.
    pub evidence: Evidence,
    /// Its JSON, exactly as written to the evidence directory and hashed.
    pub json: Vec<u8>,
    /// Its plain-text form.
    pub text: String,
    /// BLAKE3 of `json`, as recorded in the ledger.
    pub hash: Digest,
    /// The evidence files written (`.json`, `.txt`), when an evidence directory was given.
    pub files: Option<(PathBuf, PathBuf)>,
    /// The ledger entry that records the drill, when it could be written.
    pub entry: Option<EntryId>,
    /// Why the ledger entry could not be written (the drill itself is complete).
    pub ledger_warning: Option<String>,
    /// Whether the temporary restore directory was removed (`None`: `target` was given, or
    /// `stream`).
    pub target_removed: Option<bool>,
}

impl DrillReport {
    /// The verdict.
    pub fn verdict(&self) -> Verdict {
        self.evidence.verdict
    }
}

fn cancelled(opts: &DrillOptions) -> bool {
    opts.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
}

fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis().min(u64::MAX as u128) as u64
}

/// Runs a drill of snapshot `id` (`snap`): restore (or stream), compare, verify command, each
/// timed; then the evidence report is written (to `evidence_dir`) and its hash recorded in a
/// `drill` ledger entry. A check that fails is a [`Verdict::Failed`] report, not an error; errors
/// are bad options, an interrupted drill ([`Error::Interrupted`]: nothing recorded) and an
/// evidence file that cannot be written. `progress` sees the restored bytes.
pub fn drill(
    repo: &ReadRepository,
    id: SnapshotId,
    snap: &Snapshot,
    opts: &DrillOptions,
    progress: &dyn RestoreProgress,
) -> Result<DrillReport> {
    if opts.stream.is_some() && opts.verify_command.is_none() {
        return Err(Error::Usage("a drill that streams a file needs a verify command to stream it into".into()));
    }
    if opts.stream.is_some() && (opts.target.is_some() || !opts.includes.is_empty()) {
        return Err(Error::Usage("a drill that streams a file restores nothing: no target or include".into()));
    }
    let includes = Patterns::new(opts.includes.iter().map(|p| (p.as_str(), false))).map_err(Error::Usage)?;
    if let Some(t) = &opts.target {
        // Files left from an earlier drill could make a verify command pass on data this restore
        // did not write.
        let empty = match std::fs::read_dir(t) {
            Ok(mut rd) => rd.next().is_none(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(Error::io(t, e)),
        };
        if !empty {
            return Err(Error::refused(format!(
                "drill target {} is not empty: a drill restores into a new or empty directory",
                t.display()
            )));
        }
    }
    let started = Time::now();
    let clock = Instant::now();
    let mut ev = Evidence::new(repo, id, snap, opts, started);
    let mut scratch: Option<compare::Scratch> = None;
    let outcome = match &opts.stream {
        Some(path) => stream_phases(repo, snap, path, opts, &mut ev),
        None => {
            let target = match &opts.target {
                Some(t) => t.clone(),
                None => {
                    let s = compare::Scratch::create()?;
                    let p = s.path().to_path_buf();
                    scratch = Some(s);
                    p
                }
            };
            ev.target = Some(target.display().to_string());
            restore_phases(repo, id, snap, &target, includes, opts, progress, &mut ev)
        }
    };
    let duration_ms = ms(clock);
    // The scratch directory goes first, also on an interrupt (its drop removes it otherwise).
    let target_removed = scratch.map(compare::Scratch::remove);
    outcome?;
    if cancelled(opts) {
        return Err(Error::Interrupted);
    }
    ev.finish(duration_ms, opts.rto_ms, target_removed);
    let json = ev.to_json();
    let hash = evidence_hash(&json);
    let text = ev.to_text(&hash);
    let files = match &opts.evidence_dir {
        Some(dir) => Some(write_evidence(dir, &ev, &json, &text)?),
        None => None,
    };
    let event = Event::Drill {
        snapshot: id,
        passed: ev.passed,
        report_hash: hash,
        duration_ms,
        rto_ms: opts.rto_ms,
        job: opts.job.clone(),
    };
    let (entry, ledger_warning) = match crate::ops::ledger::record(repo, event) {
        Ok(e) => (Some(e), None),
        Err(e) => (None, Some(format!("the drill ledger entry was not written: {e}"))),
    };
    Ok(DrillReport { evidence: ev, json, text, hash, files, entry, ledger_warning, target_removed })
}

/// Restore into `target`, compare, run the verify command. Check failures go into `ev`; only an
/// interrupt is an error.
#[allow(clippy::too_many_arguments)]
fn restore_phases(
    repo: &ReadRepository,
    id: SnapshotId,
    snap: &Snapshot,
    target: &std::path::Path,
    includes: Patterns,
    opts: &DrillOptions,
    progress: &dyn RestoreProgress,
    ev: &mut Evidence,
) -> Result<()> {
    let ropts = RestoreOptions {
        target: target.to_path_buf(),
        includes,
        verify: false,
        cancel: opts.cancel.clone(),
        // A drill proves the data comes back; owners and special files need privileges a drill
        // host may not have.
        no_owner: true,
        no_special_files: true,
        strip_setuid: true,
        ..Default::default()
    };
    let t = Instant::now();
    if let Err(e) = std::fs::create_dir_all(target) {
        ev.phase("restore", ms(t), false);
        ev.fail("restore", Some(target.display().to_string()), format!("cannot create the target: {e}"));
        return Ok(());
    }
    let plan = match restore::plan(repo, &snap.root(), None, &ropts) {
        Ok(p) => p,
        Err(Error::Interrupted) => return Err(Error::Interrupted),
        Err(e) => {
            ev.phase("restore", ms(t), false);
            ev.fail("restore", None, e.to_string());
            return Ok(());
        }
    };
    let restored = restore::execute(repo, &plan, &ropts, progress);
    let ok = match restored {
        Ok(r) => {
            ev.files = r.files;
            ev.bytes = r.bytes;
            for e in &r.errors {
                ev.fail("restore", Some(e.path.clone()), e.message.clone());
            }
            r.errors.is_empty()
        }
        Err(Error::Interrupted) => return Err(Error::Interrupted),
        Err(e) => {
            ev.fail("restore", None, e.to_string());
            false
        }
    };
    ev.phase("restore", ms(t), ok);
    if cancelled(opts) {
        return Err(Error::Interrupted);
    }
    let t = Instant::now();
    let (files, bytes, bad) = compare::compare_restored(repo, &plan, target, opts.cancel.as_deref())?;
    ev.compared_files = files;
    ev.compared_bytes = bytes;
    let compare_ok = bad.is_empty();
    for (path, message) in bad {
        ev.fail("compare", path, message);
    }
    ev.phase("compare", ms(t), compare_ok);
    if let Some(cmd) = &opts.verify_command {
        let t = Instant::now();
        let env = [("CAIRN_DRILL_TARGET", target.display().to_string()), ("CAIRN_DRILL_SNAPSHOT", id.to_hex())];
        let run = command::run(cmd, &env, None, opts.cancel.as_deref())?;
        let passed = run.passed;
        if !passed {
            ev.fail("verify", None, format!("the verify command {}", run.status));
        }
        ev.set_command(run);
        ev.phase("verify", ms(t), passed);
    }
    Ok(())
}

/// Stream `path` into the verify command, checking each chunk's id as it is read; then wait for
/// the command.
fn stream_phases(
    repo: &ReadRepository,
    snap: &Snapshot,
    path: &std::path::Path,
    opts: &DrillOptions,
    ev: &mut Evidence,
) -> Result<()> {
    let cmd = opts.verify_command.as_deref().unwrap_or_default();
    let id = ev.snapshot;
    let env = [("CAIRN_DRILL_TARGET", String::new()), ("CAIRN_DRILL_SNAPSHOT", id.to_hex())];
    let t = Instant::now();
    let source = command::StreamSource { repo, root: snap.root(), path };
    let run = command::run(cmd, &env, Some(&source), opts.cancel.as_deref())?;
    let streamed = run.streamed.clone().unwrap_or_default();
    ev.phase("stream", streamed.ms, streamed.error.is_none());
    match &streamed.error {
        None => {
            ev.files = 1;
            ev.bytes = streamed.bytes;
            ev.compared_files = 1;
            ev.compared_bytes = streamed.bytes;
        }
        Some(e) => {
            ev.bytes = streamed.bytes;
            ev.fail("stream", Some(path.display().to_string()), e.clone());
        }
    }
    let passed = run.passed;
    if !passed {
        ev.fail("verify", None, format!("the verify command {}", run.status));
    }
    ev.set_command(run);
    ev.phase("verify", ms(t).saturating_sub(streamed.ms), passed);
    Ok(())
}
