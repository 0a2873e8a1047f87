//! `cairn status`: the freshness and size verdicts per snapshot group ([`cairn::status`]), printed
//! in the monitoring-plugin style, with its exit codes (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN:
//! docs/cli-contract.md, this command's exception to the exit-code table). Every error is UNKNOWN.

use crate::cli::args_status::StatusArgs;
use crate::cli::output::Text;
use crate::cli::{open, Ctx, Outcome};
use anyhow::anyhow;
use cairn::select::Listed;
use cairn::status::{self, GroupKey, GroupStatus, Report, Rules, Verdict};
use cairn::tree::Time;
use cairn::units::{human_bytes, human_secs};
use std::io::Write;

/// `status --json` when the state cannot be known.
#[derive(serde::Serialize)]
struct Unknown {
    status: Verdict,
    exit_code: i32,
    error: String,
}

/// `status --json`: the report and its exit code.
#[derive(serde::Serialize)]
pub(crate) struct Doc<'a> {
    #[serde(flatten)]
    pub(crate) report: &'a Report,
    pub(crate) exit_code: i32,
}

pub fn run(ctx: &Ctx, a: StatusArgs) -> anyhow::Result<Outcome> {
    match judge(ctx, &a) {
        Ok(report) => {
            let code = report.status.exit_code();
            ctx.out.result(&Doc { report: &report, exit_code: code }, Text::Data, |w| text(w, &report, &a))?;
            Ok(Outcome::Status(code))
        }
        Err(e) => Ok(unknown(ctx, &format!("{e:#}"))),
    }
}

/// Prints the UNKNOWN state for `error` (stdout, as monitoring plugins do, and on stderr) and
/// returns its outcome.
pub fn unknown(ctx: &Ctx, error: &str) -> Outcome {
    let code = Verdict::Unknown.exit_code();
    let doc = Unknown { status: Verdict::Unknown, exit_code: code, error: error.to_string() };
    let _ = ctx.out.result(&doc, Text::Data, |w| writeln!(w, "CAIRN UNKNOWN - {error}"));
    ctx.out.error(format!("cairn: {error}"));
    Outcome::Status(code)
}

fn judge(ctx: &Ctx, a: &StatusArgs) -> anyhow::Result<Report> {
    let rules = Rules { rpo_secs: a.rpo.secs, warn_secs: a.warn.map(|w| w.secs), size_change: a.size_change };
    if !a.jobs.is_empty() {
        return judge_jobs(ctx, a, &rules);
    }
    let repo = open::open_reader(&ctx.g, &ctx.out)?;
    let snaps = a.filter.filter().entries(&repo)?;
    Ok(status::evaluate(&snaps, a.group_by, &|_| rules, Time::now()))
}

/// `status JOB...`: each job's group (its host and the paths its snapshots record: its
/// directories and `/<path>` of each command) in its repository, judged by the job's thresholds,
/// each falling back to the command line's. An unknown job or an invalid profile is UNKNOWN.
fn judge_jobs(ctx: &Ctx, a: &StatusArgs, cli_rules: &Rules) -> anyhow::Result<Report> {
    let (_, profile) = super::config::load(ctx)?;
    let now = Time::now();
    let mut groups = Vec::new();
    for name in &a.jobs {
        let job = profile.jobs.get(name).ok_or_else(|| anyhow!("no job {name:?} in the profile"))?;
        let g = super::run::job_global(&ctx.g, &profile.repositories[&job.repository]);
        let repo = open::open_reader(&g, &ctx.out)?;
        let (host, paths) = job.group();
        let snaps = a.filter.filter().entries(&repo)?;
        let members: Vec<&Listed> =
            snaps.iter().filter(|l| l.snapshot.host() == host && l.snapshot.paths() == paths.as_slice()).collect();
        let t = &job.thresholds;
        let rules = Rules {
            rpo_secs: t.rpo.map_or(cli_rules.rpo_secs, |d| d.secs),
            warn_secs: t.warn.map(|d| d.secs).or(cli_rules.warn_secs),
            size_change: t.size_change.as_ref().map(|(f, _)| *f).or(cli_rules.size_change),
        };
        let group = cairn::forget::GroupKey { host: Some(host), ..Default::default() };
        let key = GroupKey { name: Some(format!("job {name}")), group };
        groups.push(status::assess(key, &members, &rules, now));
    }
    Ok(Report::new(groups, now))
}

/// The first line sums up (`CAIRN OK - 3 group(s), newest snapshots at most 2h 0min old | perfdata`),
/// then one line per group.
fn text(w: &mut dyn Write, r: &Report, a: &StatusArgs) -> std::io::Result<()> {
    let count = |v: Verdict| r.groups.iter().filter(|g| g.status == v).count();
    let oldest = r.groups.iter().filter_map(|g| g.newest.as_ref().map(|n| n.age_secs)).max();
    let mut head = format!("CAIRN {} - {} group(s)", r.status.as_str(), r.groups.len());
    let (c, wn) = (count(Verdict::Critical), count(Verdict::Warning));
    if c + wn > 0 {
        head.push_str(&format!(" ({c} critical, {wn} warning)"));
    }
    if let Some(age) = oldest {
        head.push_str(&format!(", newest snapshots at most {} old", human_secs(age)));
    }
    let warn = a.warn.map(|d| d.secs.to_string()).unwrap_or_default();
    writeln!(
        w,
        "{head} | groups={} critical={c} warning={wn} age_max={};{warn};{};0",
        r.groups.len(),
        oldest.map(|s| format!("{s}s")).unwrap_or_else(|| "U".into()),
        a.rpo.secs
    )?;
    for g in &r.groups {
        writeln!(w, "{}", line(g))?;
    }
    Ok(())
}

/// `WARNING host a, paths /etc: newest 1a2b3c4d 21h 0min old, 1.20 MiB (+3.0%), last run ok; REASON; ...`
fn line(g: &GroupStatus) -> String {
    let mut s = format!("{} {}", g.status.as_str(), g.key.describe());
    if let Some(n) = &g.newest {
        s.push_str(&format!(
            ": newest {} {} old, {}",
            n.short_id,
            human_secs(n.age_secs),
            human_bytes(n.bytes_processed)
        ));
        if let Some(c) = g.size_change {
            s.push_str(&format!(" ({:+.1}%)", c * 100.0));
        }
        s.push_str(&format!(", last run {}", g.last_run.unwrap_or("ok")));
        for r in &g.reasons {
            s.push_str("; ");
            s.push_str(r);
        }
    } else {
        s.push_str(": ");
        s.push_str(&g.reasons.join("; "));
    }
    s
}
