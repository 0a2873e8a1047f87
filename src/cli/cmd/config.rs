//! `cairn config check`: reads the job profile (docs/jobs.md), checks it (retention files
//! included) and prints what each job would do. Also the loading and the per-job plan that
//! `cairn run` shares.

use crate::cli::output::Text;
use crate::cli::profile::{self, Job, PasswordSource, Profile, Retention};
use crate::cli::{CliError, Ctx, Outcome};
use cairn::retention::PolicyFile;
use std::path::{Path, PathBuf};

/// Finds, reads and parses the profile; any failure is a usage error naming the file (and the
/// line of the key at fault).
pub fn load(ctx: &Ctx) -> anyhow::Result<(PathBuf, Profile)> {
    let path = profile::locate(ctx.g.config.as_deref()).map_err(CliError::Usage)?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CliError::Usage(format!("cannot read job profile {}: {e}", path.display())))?;
    let p = profile::parse(&text).map_err(|e| CliError::Usage(format!("job profile {}: {e}", path.display())))?;
    Ok((path, p))
}

/// The job's retention as a policy file: the inline one, or the file it names, read and parsed
/// now (an unreadable or invalid file is a usage error naming it).
pub fn retention(job: &Job) -> anyhow::Result<Option<PolicyFile>> {
    match &job.retention {
        None => Ok(None),
        Some(Retention::Inline(p)) => Ok(Some(p.clone())),
        Some(Retention::File(f)) => {
            let text = std::fs::read_to_string(f).map_err(|e| {
                CliError::Usage(format!("job {}: cannot read retention_file {}: {e}", job.name, f.display()))
            })?;
            let p = PolicyFile::parse(&text)
                .map_err(|e| CliError::Usage(format!("job {}: retention_file {}: {e}", job.name, f.display())))?;
            Ok(Some(p))
        }
    }
}

/// One retention class as printed: `{name, tags, rules}` (`default` has no tags).
#[derive(serde::Serialize)]
pub struct ClassPlan {
    name: String,
    tags: Vec<String>,
    rules: String,
}

/// One hook list as printed.
#[derive(serde::Serialize)]
pub struct HookPlan {
    before: Vec<String>,
    after: Vec<String>,
    on_failure: Vec<String>,
}

/// What a job would do (`config check --json` items, `run --dry-run --json` `plan`).
#[derive(serde::Serialize)]
pub struct JobPlan {
    job: String,
    repository: String,
    url: String,
    password: String,
    paths: Vec<PathBuf>,
    commands: Vec<String>,
    excludes: Vec<String>,
    tags: Vec<String>,
    host: Option<String>,
    retention_file: Option<PathBuf>,
    retention: Vec<ClassPlan>,
    prune_every: Option<String>,
    hooks: HookPlan,
    rpo: Option<String>,
    warn: Option<String>,
    size_change: Option<String>,
    metrics_file: Option<PathBuf>,
    /// `[job.NAME.drill]`, what `run --drill` does.
    drill: Option<crate::cli::profile::JobDrill>,
}

/// The plan of `job` (its retention file read now).
pub fn plan(p: &Profile, job: &Job) -> anyhow::Result<JobPlan> {
    let repo = p
        .repositories
        .get(&job.repository)
        .ok_or_else(|| CliError::Usage(format!("job {}: no repository {}", job.name, job.repository)))?;
    let password = match &repo.password {
        Some(PasswordSource::File(f)) => format!("file {}", f.display()),
        Some(PasswordSource::Command(_)) => "command".into(),
        Some(PasswordSource::Env(v)) => format!("variable {v}"),
        None => "--password-file, --password-command, CAIRN_PASSWORD or a prompt".into(),
    };
    let mut classes = Vec::new();
    if let Some(pf) = retention(job)? {
        for c in &pf.classes {
            classes.push(ClassPlan { name: c.name.clone(), tags: c.tags.clone(), rules: c.policy.describe() });
        }
        let rules = pf.default.as_ref().map_or("keep all (no [default])".into(), |d| d.describe());
        classes.push(ClassPlan { name: "default".into(), tags: vec![], rules });
    }
    let e = &job.excludes;
    let mut excludes: Vec<String> = e.excludes.iter().map(|x| format!("exclude {x}")).collect();
    excludes.extend(e.iexcludes.iter().map(|x| format!("iexclude {x}")));
    excludes.extend(e.exclude_files.iter().map(|x| format!("exclude-file {}", x.display())));
    excludes.extend(e.iexclude_files.iter().map(|x| format!("iexclude-file {}", x.display())));
    excludes.extend(e.exclude_if_present.iter().map(|x| format!("exclude-if-present {x}")));
    if e.exclude_caches {
        excludes.push("exclude-caches".into());
    }
    if let Some(s) = &e.exclude_larger_than {
        excludes.push(format!("exclude-larger-than {s}"));
    }
    if e.one_file_system {
        excludes.push("one-file-system".into());
    }
    let h = &job.hooks;
    Ok(JobPlan {
        job: job.name.clone(),
        repository: job.repository.clone(),
        url: repo.url.clone(),
        password,
        paths: job.paths.clone(),
        commands: job.commands.iter().map(|c| format!("{} = {}", c.path, c.command)).collect(),
        excludes,
        tags: job.tags.clone(),
        host: job.host.clone(),
        retention_file: match &job.retention {
            Some(Retention::File(f)) => Some(f.clone()),
            _ => None,
        },
        retention: classes,
        prune_every: job.prune_every.map(|d| d.spec.to_string()),
        hooks: HookPlan { before: h.before.clone(), after: h.after.clone(), on_failure: h.on_failure.clone() },
        rpo: job.thresholds.rpo.map(|d| d.spec.to_string()),
        warn: job.thresholds.warn.map(|d| d.spec.to_string()),
        size_change: job.thresholds.size_change.as_ref().map(|(_, spec)| spec.clone()),
        metrics_file: job.metrics_file.clone(),
        drill: job.drill.clone(),
    })
}

/// The text form of a plan.
pub fn write_plan(w: &mut dyn std::io::Write, p: &JobPlan) -> std::io::Result<()> {
    writeln!(w, "job {}:", p.job)?;
    writeln!(w, "  repository  {} ({}; password: {})", p.repository, p.url, p.password)?;
    for x in &p.paths {
        writeln!(w, "  path        {}", x.display())?;
    }
    for c in &p.commands {
        writeln!(w, "  command     {c}")?;
    }
    for x in &p.excludes {
        writeln!(w, "  exclude     {x}")?;
    }
    if !p.tags.is_empty() {
        writeln!(w, "  tags        {}", p.tags.join(", "))?;
    }
    writeln!(w, "  host        {}", p.host.as_deref().unwrap_or("(this machine's)"))?;
    if let Some(f) = &p.retention_file {
        writeln!(w, "  retention   from {}", f.display())?;
    }
    if p.retention.is_empty() {
        writeln!(w, "  retention   none: forget is not run")?;
    }
    for c in &p.retention {
        let tags = if c.tags.is_empty() { String::new() } else { format!(" (tags {})", c.tags.join(", ")) };
        writeln!(w, "  retention   {}{tags}: {}", c.name, c.rules)?;
    }
    match &p.prune_every {
        Some(d) => writeln!(w, "  prune       every {d}")?,
        None => writeln!(w, "  prune       never")?,
    }
    for (name, list) in [("before", &p.hooks.before), ("after", &p.hooks.after), ("on_failure", &p.hooks.on_failure)] {
        for c in list {
            writeln!(w, "  hook        {name}: {c}")?;
        }
    }
    let t = [("rpo", &p.rpo), ("warn", &p.warn), ("size_change", &p.size_change)];
    let t: Vec<String> = t.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}"))).collect();
    if !t.is_empty() {
        writeln!(w, "  thresholds  {}", t.join(", "))?;
    }
    if let Some(m) = &p.metrics_file {
        writeln!(w, "  metrics     {}", m.display())?;
    }
    if let Some(d) = &p.drill {
        let mut parts = vec![match (&d.stream, &d.verify_command) {
            (Some(s), Some(c)) => format!("stream {} into: {c}", s.display()),
            (_, Some(c)) => format!("restore, compare, verify: {c}"),
            (_, None) => "restore, compare".to_string(),
        }];
        if let Some(r) = d.rto_ms {
            parts.push(format!("rto {r} ms"));
        }
        if let Some(e) = &d.evidence_dir {
            parts.push(format!("evidence in {}", e.display()));
        }
        writeln!(w, "  drill       {}", parts.join("; "))?;
    }
    Ok(())
}

/// `config check --json`.
#[derive(serde::Serialize)]
struct CheckDoc<'a> {
    file: &'a Path,
    jobs: &'a [JobPlan],
}

/// `cairn config check`.
pub fn check(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let (path, p) = load(ctx)?;
    let plans = p.jobs.values().map(|j| plan(&p, j)).collect::<anyhow::Result<Vec<_>>>()?;
    ctx.out.result(&CheckDoc { file: &path, jobs: &plans }, Text::Normal, |w| {
        writeln!(w, "{}: {} repositor(y/ies), {} job(s); valid", path.display(), p.repositories.len(), plans.len())?;
        for pl in &plans {
            write_plan(w, pl)?;
        }
        Ok(())
    })?;
    Ok(Outcome::Done)
}
