//! `cairn forget`: applies a retention policy (flags or a policy file) to each group of
//! snapshots, removes what it does not keep, and with `--prune` runs prune right after.

use crate::cli::args::ForgetArgs;
use crate::cli::output::{short_time, Text};
use crate::cli::{open, CliError, Ctx, Outcome};
use anyhow::{anyhow, Context};
use cairn::forget::{self, Group, Rules};
use cairn::id::SnapshotId;
use cairn::retention::{Period, Policy, PolicyFile};

/// `forget --json` (and the `forget` half of `forget --prune --json`).
#[derive(serde::Serialize)]
pub struct ForgetDoc<'a> {
    dry_run: bool,
    groups: &'a [Group],
    removed: &'a [SnapshotId],
}

/// The rules the flags or the policy file give; none at all is a usage error.
fn rules(a: &ForgetArgs) -> anyhow::Result<Rules> {
    if let Some(f) = &a.policy {
        let text = std::fs::read_to_string(f).with_context(|| format!("cannot read policy file {}", f.display()))?;
        let pf = PolicyFile::parse(&text).map_err(|e| CliError::Usage(format!("policy file {}: {e}", f.display())))?;
        return Ok(Rules::File(pf));
    }
    let periods = [
        (Period::Hourly, a.keep_hourly),
        (Period::Daily, a.keep_daily),
        (Period::Weekly, a.keep_weekly),
        (Period::Monthly, a.keep_monthly),
        (Period::Yearly, a.keep_yearly),
    ];
    let within_periods = [
        (Period::Hourly, a.keep_within_hourly),
        (Period::Daily, a.keep_within_daily),
        (Period::Weekly, a.keep_within_weekly),
        (Period::Monthly, a.keep_within_monthly),
        (Period::Yearly, a.keep_within_yearly),
    ];
    let p = Policy {
        last: a.keep_last,
        periods: periods.into_iter().filter_map(|(p, c)| c.map(|c| (p, c))).collect(),
        within: a.keep_within,
        within_periods: within_periods.into_iter().filter_map(|(p, d)| d.map(|d| (p, d))).collect(),
        tags: a.keep_tags.clone(),
    };
    if p.is_empty() {
        return Err(CliError::Usage(
            "no policy given: use --keep-* options or --policy FILE (nothing was removed)".into(),
        )
        .into());
    }
    Ok(Rules::Policy(p))
}

pub fn run(ctx: &Ctx, a: ForgetArgs) -> anyhow::Result<Outcome> {
    let rules = rules(&a)?;
    let tz = a.tz.clone().unwrap_or_else(jiff::tz::TimeZone::system);
    let repo = open::open_reader_writing(&ctx.g, &ctx.out, !a.dry_run)?;
    let snaps = a.filter.filter().list(&repo)?;
    let groups = forget::plan(&snaps, a.group_by, &rules, &tz);
    let removed = if a.dry_run { Vec::new() } else { forget::execute(&repo, &groups, a.allow_empty)? };
    let refused = a.dry_run && !a.allow_empty && groups.iter().any(|g| g.removes_all());
    let doc = ForgetDoc { dry_run: a.dry_run, groups: &groups, removed: &removed };
    let text = |w: &mut dyn std::io::Write| -> std::io::Result<()> {
        for gr in &groups {
            writeln!(w, "group {}:", forget::describe(gr))?;
            for d in &gr.decisions {
                let when = short_time(&d.time);
                if d.keep {
                    writeln!(w, "  keep    {}  {}  {}", d.id.short(), when, d.reasons.join(", "))?;
                } else {
                    let verb = if a.dry_run { "would remove" } else { "remove " };
                    writeln!(w, "  {verb}  {}  {}", d.id.short(), when)?;
                }
            }
        }
        let n = groups.iter().flat_map(|g| &g.decisions).filter(|d| !d.keep).count();
        if a.dry_run {
            writeln!(w, "dry run: {n} snapshot(s) would be removed; nothing was changed")
        } else {
            writeln!(w, "removed {} snapshot(s); the data only they used stays stored until a prune", removed.len())
        }
    };
    if a.prune && !refused {
        // One document for both under --json: prune prints it.
        if !ctx.out.json() {
            ctx.out.result(&doc, Text::Normal, text)?;
        }
        drop(repo);
        return super::prune::run(ctx, &a.prune_opts, a.dry_run, Some(&doc));
    }
    ctx.out.result(&doc, Text::Normal, text)?;
    if refused {
        return Err(anyhow!("the policy would remove every snapshot of a group (see above); use --allow-empty"));
    }
    Ok(Outcome::Done)
}
