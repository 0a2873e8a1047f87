//! `cairn run`: runs jobs of the job profile (docs/jobs.md). Per job: the `before` hook, one
//! backup of all its sources, forget with its retention in the new snapshot's group, prune when
//! its cadence says so, the `after` or `on_failure` hook, then its metrics. Each step is the very
//! command a user would run (`backup`, `forget`, `prune`: their argument structs, their code and
//! their output), with the repository of the job's profile.

use super::config;
use crate::cli::args::{Cli, Command, Global, RunArgs};
use crate::cli::output::{Records, Text};
use crate::cli::profile::{Job, PasswordSource, Profile, RepoProfile};
use crate::cli::{metrics, open, CliError, Ctx, Outcome};
use anyhow::anyhow;
use cairn::error::exit;
use cairn::forget::Rules;
use cairn::id::SnapshotId;
use cairn::tree::Time;
use clap::Parser;
use serde_json::Value;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

/// How a job ended, from best to worst; the run exits with the worst (docs/cli-contract.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum JobOutcome {
    /// Every step was done.
    Ok,
    /// The backup made its snapshot but could not read some files (exit 3).
    Partial,
    /// The drill passed every check but took longer than its RTO (exit 4).
    #[serde(rename = "over-rto")]
    OverRto,
    /// A step failed (exit 1).
    Failure,
}

impl JobOutcome {
    fn as_str(self) -> &'static str {
        match self {
            JobOutcome::Ok => "ok",
            JobOutcome::Partial => "partial",
            JobOutcome::OverRto => "over-rto",
            JobOutcome::Failure => "failure",
        }
    }
}

/// One hook command that ran.
#[derive(serde::Serialize)]
struct HookRun {
    hook: &'static str,
    exit_code: Option<i32>,
}

/// `run --json`: one report per job.
#[derive(serde::Serialize)]
struct JobReport {
    job: String,
    repository: String,
    dry_run: bool,
    outcome: JobOutcome,
    exit_code: i32,
    /// The step that failed: `before`, `backup`, `forget`, `prune`, `after` or `drill`.
    failed_step: Option<&'static str>,
    error: Option<String>,
    snapshot_id: Option<String>,
    backup: Option<Value>,
    forget: Option<Value>,
    prune: Option<Value>,
    /// The drill's evidence report (`run --drill`).
    drill: Option<Value>,
    /// Whether the prune was due (null when the job does not prune or did not get that far).
    prune_due: Option<bool>,
    /// The last prune of the repository by a job before this run.
    last_prune: Option<Time>,
    hooks: Vec<HookRun>,
    /// The plan, under `--dry-run`.
    plan: Option<config::JobPlan>,
    started: Time,
    finished: Time,
    /// What the steps measured, for the job's metrics file (not in `--json`).
    #[serde(skip)]
    samples: (Option<String>, Vec<metrics::Sample>),
}

impl JobReport {
    fn new(job: &Job, dry_run: bool) -> JobReport {
        JobReport {
            job: job.name.clone(),
            repository: job.repository.clone(),
            dry_run,
            outcome: JobOutcome::Ok,
            exit_code: 0,
            failed_step: None,
            error: None,
            snapshot_id: None,
            backup: None,
            forget: None,
            prune: None,
            drill: None,
            prune_due: None,
            last_prune: None,
            hooks: Vec::new(),
            samples: Default::default(),
            plan: None,
            started: Time::now(),
            finished: Time::now(),
        }
    }

    fn fail(&mut self, step: &'static str, e: &anyhow::Error) {
        self.outcome = JobOutcome::Failure;
        self.failed_step = Some(step);
        self.exit_code = crate::exit_code(e);
        self.error = Some(crate::message(e));
    }
}

/// The global options for `job`'s repository: the profile's URL, password source, cache and
/// backend options take the place of the command line's (the command line's `-o` options come
/// after the profile's).
pub(super) fn job_global(g: &Global, r: &RepoProfile) -> Global {
    let mut g = g.clone();
    g.repo = Some(r.url.clone());
    if let Some(p) = &r.password {
        g.password_file = None;
        g.password_command = None;
        g.password_env = None;
        match p {
            PasswordSource::File(f) => g.password_file = Some(f.clone()),
            PasswordSource::Command(c) => g.password_command = Some(c.clone()),
            PasswordSource::Env(v) => g.password_env = Some(v.clone()),
        }
    }
    if r.cache_dir.is_some() {
        g.cache_dir = r.cache_dir.clone();
    }
    g.no_cache |= r.no_cache;
    let mut options = r.options.clone();
    options.extend(g.options.iter().cloned());
    g.options = options;
    if r.options_file.is_some() {
        g.options_file = r.options_file.clone();
    }
    g
}

/// The `backup` command line of a job (without `cairn`): its paths and its commands (as
/// `--command PATH=CMD`) in one snapshot. The one adapter between a job's sources and what
/// `backup` takes.
fn backup_argv(job: &Job, repo: &RepoProfile) -> anyhow::Result<Vec<OsString>> {
    let mut v: Vec<OsString> = vec!["backup".into()];
    let mut flag = |f: &str, val: &str| {
        v.push(f.into());
        v.push(val.into());
    };
    if let Some(h) = &job.host {
        flag("--host", h);
    }
    for t in &job.tags {
        flag("--tag", t);
    }
    let e = &job.excludes;
    for x in &e.excludes {
        flag("--exclude", x);
    }
    for x in &e.iexcludes {
        flag("--iexclude", x);
    }
    for x in &e.exclude_if_present {
        flag("--exclude-if-present", x);
    }
    if let Some(s) = &e.exclude_larger_than {
        flag("--exclude-larger-than", s);
    }
    if let Some(c) = &repo.compression {
        flag("--compression", c);
    }
    if let Some(c) = &repo.verify {
        flag("--verify", c);
    }
    for f in &e.exclude_files {
        v.extend(["--exclude-file".into(), f.into()]);
    }
    for f in &e.iexclude_files {
        v.extend(["--iexclude-file".into(), f.into()]);
    }
    if e.exclude_caches {
        v.push("--exclude-caches".into());
    }
    if e.one_file_system {
        v.push("--one-file-system".into());
    }
    for c in &job.commands {
        v.extend(["--command".into(), format!("{}={}", c.path, c.command).into()]);
    }
    v.push("--".into());
    v.extend(job.paths.iter().map(OsString::from));
    Ok(v)
}

/// Parses a command line of another command, as `cairn` would.
fn parse(argv: Vec<OsString>) -> anyhow::Result<Command> {
    let cli = Cli::try_parse_from(std::iter::once(OsString::from("cairn")).chain(argv))?;
    Ok(cli.command)
}

/// The state file of the prune cadence: `<cache root>/jobs/<repository id>.json`, holding
/// `{"last_prune": TIME}`. `None` when there is no cache root.
fn state_path(g: &Global, repo_id: &str) -> Option<PathBuf> {
    let root = g.cache_dir.clone().or_else(cairn::cache::default_root)?;
    Some(root.join("jobs").join(format!("{repo_id}.json")))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct PruneState {
    last_prune: Time,
}

fn read_state(p: &std::path::Path) -> Option<Time> {
    let text = std::fs::read_to_string(p).ok()?;
    serde_json::from_str::<PruneState>(&text).ok().map(|s| s.last_prune)
}

fn write_state(p: &std::path::Path, t: Time) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = p.parent().ok_or_else(|| anyhow!("{}: no parent directory", p.display()))?;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let tmp = p.with_extension("json.tmp");
    cairn::cache::write_private(&tmp, &serde_json::to_vec(&PruneState { last_prune: t })?)?;
    std::fs::rename(&tmp, p)?;
    Ok(())
}

/// Runs the hook commands of `which` with the run's state in the environment; the first that
/// fails (or cannot start) ends the list with an error. Their output goes to stderr.
fn hooks(ctx: &Ctx, job: &Job, which: &'static str, cmds: &[String], r: &mut JobReport) -> anyhow::Result<()> {
    for (i, c) in cmds.iter().enumerate() {
        // Messages name the hook by its place, never by its text (it may hold credentials).
        let name = if cmds.len() == 1 { which.to_string() } else { format!("{which} #{}", i + 1) };
        let outcome = if which == "before" { "pending" } else { r.outcome.as_str() };
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(c)
            .stdin(std::process::Stdio::null())
            .stdout(std::io::stderr())
            .env("CAIRN_JOB", &job.name)
            .env("CAIRN_HOOK", which)
            .env("CAIRN_OUTCOME", outcome)
            .env("CAIRN_EXIT_CODE", r.exit_code.to_string())
            .env("CAIRN_SNAPSHOT_ID", r.snapshot_id.as_deref().unwrap_or(""))
            .env("CAIRN_ERROR", r.error.as_deref().unwrap_or(""))
            .env("CAIRN_FAILED_STEP", r.failed_step.unwrap_or(""))
            .status();
        let status = match status {
            Ok(s) => s,
            Err(e) => {
                r.hooks.push(HookRun { hook: which, exit_code: None });
                return Err(anyhow!("job {}: {name} hook could not start: {e}", job.name));
            }
        };
        r.hooks.push(HookRun { hook: which, exit_code: status.code() });
        if !status.success() {
            return Err(anyhow!("job {}: {name} hook failed: {status}", job.name));
        }
        ctx.out.note(format!("cairn: job {}: {name} hook done", job.name));
    }
    Ok(())
}

/// The steps between the hooks: backup, forget, prune. Stops at the first failure, recorded in `r`.
fn steps(ctx: &Ctx, p: &Profile, job: &Job, r: &mut JobReport) {
    let repo = &p.repositories[&job.repository];
    let (out, records) = ctx.out.recording();
    let sub =
        Ctx { g: job_global(&ctx.g, repo), out, cancel: ctx.cancel.clone(), metrics: metrics::Recorder::recording() };
    steps_in(&sub, repo, job, r, &records);
    r.samples = sub.metrics.take();
}

/// [`steps`] with the job's context `sub`, whose printer records each step's document in `records`.
fn steps_in(sub: &Ctx, repo: &RepoProfile, job: &Job, r: &mut JobReport, records: &Records) {
    let last = || records.lock().ok().and_then(|mut v| v.pop());
    // Backup.
    let backup = backup_argv(job, repo).and_then(parse).and_then(|c| match c {
        Command::Backup(a) => super::backup::run(sub, a),
        _ => Err(anyhow!("internal: not a backup command line")),
    });
    r.backup = last();
    match backup {
        // A backup never answers with a monitoring status.
        Ok(Outcome::Done | Outcome::Status(_) | Outcome::OverRto) => {}
        Ok(Outcome::Partial) => {
            r.outcome = JobOutcome::Partial;
            r.exit_code = exit::PARTIAL;
        }
        Err(e) => return r.fail("backup", &e),
    }
    let id: Option<SnapshotId> =
        r.backup.as_ref().and_then(|b| b.get("snapshot_id")).and_then(|v| serde_json::from_value(v.clone()).ok());
    r.snapshot_id = id.map(|i| i.to_hex());
    let Some(id) = id else {
        return r.fail("backup", &anyhow!("job {}: the backup reported no snapshot id", job.name));
    };
    // Forget, in the new snapshot's group only.
    let forget = config::retention(job).and_then(|pf| match pf {
        None => Ok(None),
        Some(pf) => {
            // The filter only narrows the listing; the group of the new snapshot is the scope.
            let mut argv: Vec<OsString> = vec!["forget".into()];
            if let Some(h) = &job.host {
                argv.extend(["--host".into(), h.into()]);
            }
            for x in &job.paths {
                argv.extend(["--path".into(), x.into()]);
            }
            match parse(argv)? {
                Command::Forget(a) => super::forget::run_with(sub, a, Some(Rules::File(pf)), Some(id)).map(Some),
                _ => Err(anyhow!("internal: not a forget command line")),
            }
        }
    });
    match forget {
        Ok(Some(_)) => r.forget = last(),
        Ok(None) => {}
        Err(e) => {
            r.forget = last();
            return r.fail("forget", &e);
        }
    }
    // Prune, when due.
    let Some(every) = job.prune_every else { return };
    let repo_id = match open::open(&sub.g, &sub.out, false) {
        Ok(repo) => repo.config().repo_id().to_hex(),
        Err(e) => return r.fail("prune", &e),
    };
    let state = state_path(&sub.g, &repo_id);
    let now = Time::now();
    r.last_prune = state.as_deref().and_then(read_state);
    let due = r.last_prune.is_none_or(|t| now.secs - t.secs >= every.secs);
    r.prune_due = Some(due);
    if !due {
        return;
    }
    let pruned = parse(vec!["prune".into()]).and_then(|c| match c {
        Command::Prune(a) => super::prune::run(sub, &a.opts, false, None),
        _ => Err(anyhow!("internal: not a prune command line")),
    });
    r.prune = last();
    if let Err(e) = pruned {
        return r.fail("prune", &e);
    }
    match &state {
        Some(s) => {
            if let Err(e) = write_state(s, now) {
                sub.out.note(format!("cairn: warning: cannot record the prune in {}: {e}", s.display()));
            }
        }
        None => {
            sub.out.note("cairn: warning: no cache directory: the prune cadence is not recorded, so every run prunes")
        }
    }
}

/// Writes the job's series (labelled `command="run"` and the job's name) into its `metrics_file`,
/// else the global `--metrics-file`: the run's outcome and what its steps measured.
fn write_metrics(ctx: &Ctx, p: &Profile, job: &Job, r: &mut JobReport) {
    let Some(path) = job.metrics_file.as_ref().or(ctx.g.metrics_file.as_ref()) else { return };
    let (host, samples) = std::mem::take(&mut r.samples);
    let outcome = match r.outcome {
        JobOutcome::Ok | JobOutcome::OverRto => metrics::RunOutcome::Success,
        JobOutcome::Partial => metrics::RunOutcome::Partial,
        JobOutcome::Failure => metrics::RunOutcome::Failed,
    };
    let labels = metrics::Labels {
        command: "run".into(),
        job: job.name.clone(),
        host: host.or_else(|| job.host.clone()).unwrap_or_else(cairn::repository::hostname),
        repository: metrics::repository_label(&p.repositories[&job.repository].url),
    };
    match metrics::write(path, &labels, outcome, r.started, r.finished, &samples) {
        Ok(Some(w)) => ctx.out.note(format!("cairn: warning: {w}")),
        Ok(None) => {}
        Err(e) => ctx.out.error(format!("cairn: warning: metrics file {} not written: {e}", path.display())),
    }
}

/// `run JOB --drill`: the job's drill alone (no hooks, no backup), with its metrics.
fn drill_job(ctx: &Ctx, p: &Profile, job: &Job) -> JobReport {
    let mut r = JobReport::new(job, false);
    let repo = &p.repositories[&job.repository];
    let (out, records) = ctx.out.recording();
    let sub =
        Ctx { g: job_global(&ctx.g, repo), out, cancel: ctx.cancel.clone(), metrics: metrics::Recorder::recording() };
    let res = super::drill::run_job(&sub, job);
    r.drill = records.lock().ok().and_then(|mut v| v.pop());
    r.snapshot_id = r.drill.as_ref().and_then(|d| d.get("snapshot")).and_then(|v| v.as_str()).map(String::from);
    match res {
        Ok(Outcome::OverRto) => {
            r.outcome = JobOutcome::OverRto;
            r.exit_code = exit::OVER_RTO;
        }
        Ok(_) => {}
        Err(e) => r.fail("drill", &e),
    }
    r.samples = sub.metrics.take();
    r.finished = Time::now();
    write_metrics(ctx, p, job, &mut r);
    r
}

/// One job, start to end.
fn run_job(ctx: &Ctx, p: &Profile, job: &Job) -> JobReport {
    let mut r = JobReport::new(job, false);
    let before = hooks(ctx, job, "before", &job.hooks.before, &mut r);
    match before {
        Err(e) => r.fail("before", &e),
        Ok(()) => {
            steps(ctx, p, job, &mut r);
            if r.outcome != JobOutcome::Failure {
                if let Err(e) = hooks(ctx, job, "after", &job.hooks.after, &mut r) {
                    r.fail("after", &e);
                }
            }
        }
    }
    if r.outcome == JobOutcome::Failure {
        if let Err(e) = hooks(ctx, job, "on_failure", &job.hooks.on_failure, &mut r) {
            ctx.out.error(format!("cairn: {e}"));
        }
    }
    r.finished = Time::now();
    write_metrics(ctx, p, job, &mut r);
    r
}

/// `cairn run`.
pub fn run(ctx: &Ctx, a: RunArgs) -> anyhow::Result<Outcome> {
    let (_, p) = config::load(ctx)?;
    let names: Vec<String> = if a.all { p.jobs.keys().cloned().collect() } else { a.jobs.clone() };
    let mut jobs = Vec::new();
    for n in &names {
        let job = p.jobs.get(n).ok_or_else(|| {
            let known: Vec<&str> = p.jobs.keys().map(String::as_str).collect();
            CliError::Usage(format!("no job {n:?} in the profile (jobs: {})", known.join(", ")))
        })?;
        jobs.push(job);
    }
    if jobs.is_empty() {
        return Err(CliError::Usage("the profile defines no job".into()).into());
    }
    let mut reports = Vec::new();
    for job in jobs {
        if a.dry_run {
            let mut r = JobReport::new(job, true);
            r.plan = Some(config::plan(&p, job)?);
            reports.push(r);
            continue;
        }
        if ctx.cancel.load(Ordering::Relaxed) {
            break;
        }
        let r = if a.drill { drill_job(ctx, &p, job) } else { run_job(ctx, &p, job) };
        if r.outcome == JobOutcome::Failure {
            ctx.out.error(format!("cairn: job {} failed: {}", job.name, r.error.as_deref().unwrap_or("")));
        }
        reports.push(r);
    }
    ctx.out.result(&reports, Text::Normal, |w| {
        for r in &reports {
            if let Some(plan) = &r.plan {
                writeln!(w, "dry run: would run")?;
                config::write_plan(w, plan)?;
                let argv = backup_argv(&p.jobs[&r.job], &p.repositories[&r.repository]);
                if let Ok(argv) = argv {
                    let words: Vec<String> = argv.iter().map(|s| s.to_string_lossy().into_owned()).collect();
                    writeln!(w, "  runs        cairn {}", words.join(" "))?;
                }
                continue;
            }
            let mut line = format!("job {}: {}", r.job, r.outcome.as_str());
            if let Some(id) = &r.snapshot_id {
                line.push_str(&format!(", snapshot {}", &id[..8.min(id.len())]));
            }
            if let Some(v) = r.drill.as_ref().and_then(|d| d.get("verdict")).and_then(|v| v.as_str()) {
                line.push_str(&format!(", drill {v}"));
            }
            match r.prune_due {
                Some(true) if r.prune.is_some() => line.push_str(", pruned"),
                Some(false) => line.push_str(", prune not due"),
                _ => {}
            }
            if let Some(step) = r.failed_step {
                line.push_str(&format!(" (at {step})"));
            }
            writeln!(w, "{line}")?;
        }
        Ok(())
    })?;
    if ctx.cancel.load(Ordering::Relaxed) {
        return Err(cairn::Error::Interrupted.into());
    }
    let failed: Vec<&str> =
        reports.iter().filter(|r| r.outcome == JobOutcome::Failure).map(|r| r.job.as_str()).collect();
    if !failed.is_empty() {
        return Err(anyhow!("{} job(s) failed: {}", failed.len(), failed.join(", ")));
    }
    Ok(match reports.iter().map(|r| r.outcome).max() {
        Some(JobOutcome::OverRto) => Outcome::OverRto,
        Some(JobOutcome::Partial) => Outcome::Partial,
        _ => Outcome::Done,
    })
}
