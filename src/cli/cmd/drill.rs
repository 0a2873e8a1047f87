//! `cairn drill` (docs/cli-contract.md): a timed restore drill of one snapshot, by hand or for a
//! job of the profile (`--job`, and `cairn run JOB --drill`, which calls [`run_job`]). Prints the
//! evidence report (text, or its JSON exactly as sealed) and exits 0 passed, 1 failed, 4
//! (`exit::OVER_RTO`) passed over the RTO.

use crate::cli::args::Global;
use crate::cli::args_drill::DrillArgs;
use crate::cli::output::{RestoreProgress, Text};
use crate::cli::profile::{Job, Profile};
use crate::cli::{open, CliError, Ctx, Outcome};
use anyhow::anyhow;
use cairn::ops::drill::{self, DrillOptions, DrillReport, Verdict};
use cairn::select::{self, Filter, SnapshotSpec};
use std::path::PathBuf;

/// The job's group as a snapshot filter: its host (else this machine's) and every path its
/// snapshots record (its directories and `/<path>` of each command).
fn job_filter(job: &Job) -> Filter {
    let mut paths: Vec<PathBuf> = job.paths.clone();
    paths.extend(job.commands.iter().map(|c| PathBuf::from(format!("/{}", c.path))));
    Filter {
        host: Some(job.host.clone().unwrap_or_else(cairn::repository::hostname)),
        tags: Vec::new(),
        paths,
        writer: None,
    }
}

/// The drill options of `job` (its `[job.NAME.drill]`), each replaced by the flag of `a` when given.
fn job_options(job: &Job, a: &DrillArgs) -> DrillOptions {
    let d = job.drill.clone().unwrap_or_default();
    let streams = a.stream.is_some();
    DrillOptions {
        target: a.target.clone().or(if streams { None } else { d.target }),
        includes: if !a.includes.is_empty() || streams { a.includes.clone() } else { d.includes },
        verify_command: a.verify_command.clone().or(d.verify_command),
        stream: a.stream.clone().or(if a.target.is_some() || !a.includes.is_empty() { None } else { d.stream }),
        rto_ms: a.rto.or(d.rto_ms),
        evidence_dir: a.evidence_dir.clone().or(d.evidence_dir),
        job: Some(job.name.clone()),
        cancel: None,
    }
}

/// The options of a drill by hand.
fn options(a: &DrillArgs) -> DrillOptions {
    DrillOptions {
        target: a.target.clone(),
        includes: a.includes.clone(),
        verify_command: a.verify_command.clone(),
        stream: a.stream.clone(),
        rto_ms: a.rto,
        evidence_dir: a.evidence_dir.clone(),
        job: None,
        cancel: None,
    }
}

/// `cairn drill`.
pub fn run(ctx: &Ctx, a: DrillArgs) -> anyhow::Result<Outcome> {
    let spec = a.snapshot.clone().unwrap_or(SnapshotSpec::Latest);
    match a.job.clone() {
        None => execute(ctx, &ctx.g, &spec, &a.filter.filter(), options(&a)),
        Some(name) => {
            let (_, p) = super::config::load(ctx)?;
            let job = find_job(&p, &name)?;
            let g = super::run::job_global(&ctx.g, &p.repositories[&job.repository]);
            let mut filter = job_filter(job);
            let own = a.filter.filter();
            filter.tags = own.tags;
            filter.writer = own.writer;
            filter.host = own.host.or(filter.host);
            if !own.paths.is_empty() {
                filter.paths = own.paths;
            }
            execute(ctx, &g, &spec, &filter, job_options(job, &a))
        }
    }
}

fn find_job<'a>(p: &'a Profile, name: &str) -> anyhow::Result<&'a Job> {
    p.jobs.get(name).ok_or_else(|| {
        let known: Vec<&str> = p.jobs.keys().map(String::as_str).collect();
        CliError::Usage(format!("no job {name:?} in the profile (jobs: {})", known.join(", "))).into()
    })
}

/// `cairn run JOB --drill`: the job's drill on the newest snapshot of its group, with the job's
/// context `sub` (its repository, its recording printer and metrics).
pub(super) fn run_job(sub: &Ctx, job: &Job) -> anyhow::Result<Outcome> {
    let a = DrillArgs {
        snapshot: None,
        filter: Default::default(),
        job: Some(job.name.clone()),
        target: None,
        includes: Vec::new(),
        verify_command: None,
        stream: None,
        rto: None,
        evidence_dir: None,
    };
    execute(sub, &sub.g, &SnapshotSpec::Latest, &job_filter(job), job_options(job, &a))
}

/// Chooses the snapshot, drills it, prints the evidence and turns the verdict into the outcome.
fn execute(
    ctx: &Ctx,
    g: &Global,
    spec: &SnapshotSpec,
    filter: &Filter,
    mut opts: DrillOptions,
) -> anyhow::Result<Outcome> {
    if opts.stream.is_some() && opts.verify_command.is_none() {
        return Err(CliError::Usage("--stream needs a --verify-command to stream into".into()).into());
    }
    let repo = open::open_reader_writing(g, &ctx.out, true)?;
    let (id, snap) = select::select(&repo, spec, filter)?;
    opts.cancel = Some(ctx.cancel.clone());
    let bar = ctx.out.byte_bar(None, false);
    let report = drill::drill(&repo, id, &snap, &opts, &RestoreProgress(bar.clone()));
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let report = report?;
    ctx.metrics.drill(&report.evidence);
    print(ctx, &report)?;
    match report.verdict() {
        Verdict::Passed => Ok(Outcome::Done),
        Verdict::OverRto => Ok(Outcome::OverRto),
        Verdict::Failed => Err(anyhow!(
            "drill of snapshot {} failed: {}",
            id.short(),
            report.evidence.failures.first().map(|f| f.message.as_str()).unwrap_or("a check failed")
        )),
    }
}

fn print(ctx: &Ctx, r: &DrillReport) -> anyhow::Result<()> {
    let out = &ctx.out;
    // `--json` prints the very bytes that were hashed: the same serializer, pretty, one newline.
    out.result(&r.evidence, Text::Normal, |w| w.write_all(r.text.as_bytes()))?;
    if let Some((j, t)) = &r.files {
        out.note(format!("cairn: evidence written to {} and {}", j.display(), t.display()));
    }
    match (&r.entry, &r.ledger_warning) {
        (Some(e), _) => out.note(format!("cairn: drill recorded in ledger entry {} (evidence blake3 {})", e, r.hash)),
        (None, Some(w)) => out.error(format!("cairn: warning: {w}")),
        (None, None) => {}
    }
    if r.target_removed == Some(false) {
        out.error("cairn: warning: the temporary drill directory could not be removed completely");
    }
    Ok(())
}

/// `ledger verify --evidence FILE --json`: the ledger's verification and the evidence's entries.
#[derive(serde::Serialize)]
struct EvidenceVerified<'a> {
    #[serde(flatten)]
    ledger: &'a cairn::ops::ledger::VerifyReport,
    evidence: EvidenceDoc<'a>,
}

#[derive(serde::Serialize)]
struct EvidenceDoc<'a> {
    file: String,
    sealed: bool,
    #[serde(flatten)]
    check: &'a drill::EvidenceCheck,
}

/// `cairn ledger verify --evidence FILE`: verifies the ledger, then finds the drill entries that
/// record the file's BLAKE3. Exit 1 when the ledger has findings or no verified entry records it.
pub(super) fn verify_evidence(ctx: &Ctx, anchor: Option<&str>, file: &std::path::Path) -> anyhow::Result<Outcome> {
    let out = &ctx.out;
    let bytes = std::fs::read(file).map_err(|e| anyhow!("cannot read evidence {}: {e}", file.display()))?;
    let repo = open::open_reader(&ctx.g, out)?;
    let report = cairn::ops::ledger::verify(&repo, anchor)?;
    let check = drill::check_evidence(&repo, &bytes, &report.findings)?;
    if !out.json() {
        for f in &report.findings {
            out.error(format!("error {}: {}: {}", f.code, f.object, f.message));
        }
    }
    let doc = EvidenceVerified {
        ledger: &report,
        evidence: EvidenceDoc { file: file.display().to_string(), sealed: check.sealed(), check: &check },
    };
    out.result(&doc, Text::Normal, |w| {
        writeln!(
            w,
            "verified {} ledger entries ({} head(s)) against {} snapshots: {}",
            report.entries,
            report.heads.len(),
            report.snapshots,
            if report.findings.is_empty() {
                "no findings".to_string()
            } else {
                format!("{} finding(s)", report.findings.len())
            }
        )?;
        for e in &check.entries {
            writeln!(
                w,
                "evidence {} (blake3 {}) is recorded by drill entry {} of {}: snapshot {}, {}, {} ms{}{}",
                file.display(),
                check.hash,
                e.entry,
                e.time.to_rfc3339(),
                e.snapshot,
                if e.passed { "passed" } else { "failed" },
                e.duration_ms,
                e.rto_ms.map(|r| format!(" (RTO {r} ms)")).unwrap_or_default(),
                if e.verified { "" } else { "; the entry itself does NOT verify (see the findings)" }
            )?;
        }
        Ok(())
    })?;
    if !check.sealed() {
        return Err(anyhow!(
            "evidence {}: no verified drill entry of the ledger records its blake3 {} (edited, or of another repository)",
            file.display(),
            check.hash
        ));
    }
    if !report.findings.is_empty() {
        return Err(anyhow!("ledger verify found {} finding(s)", report.findings.len()));
    }
    Ok(Outcome::Done)
}
