//! `cairn forget`: applies a retention policy (flags or a policy file) to each group of
//! snapshots, removes what it does not keep, and with `--prune` runs prune right after; or
//! removes the snapshots named by id (the only way to remove a flagged one, format-spec §4.3).

use crate::cli::args::ForgetArgs;
use crate::cli::output::{short_time, Text};
use crate::cli::{open, CliError, Ctx, Outcome};
use anyhow::{anyhow, Context};
use cairn::forget::{self, Excluded, Group, Rules};
use cairn::id::SnapshotId;
use cairn::retention::{Period, Policy, PolicyFile};

/// `forget --json` (and the `forget` half of `forget --prune --json`).
#[derive(serde::Serialize)]
pub struct ForgetDoc<'a> {
    dry_run: bool,
    groups: &'a [Group],
    excluded: &'a [Excluded],
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

/// `forget ID...`: removes exactly the named snapshots (no policy).
fn by_id(ctx: &Ctx, a: &ForgetArgs) -> anyhow::Result<Outcome> {
    let repo = open::open_reader_writing(&ctx.g, &ctx.out, !a.dry_run)?;
    let mut ids = Vec::new();
    for spec in &a.snapshots {
        if *spec == cairn::select::SnapshotSpec::Latest {
            return Err(CliError::Usage("forget takes snapshot ids, not `latest`".into()).into());
        }
        ids.push(cairn::select::resolve(&repo, spec, &[])?);
    }
    let mut removed = Vec::new();
    if !a.dry_run {
        for id in &ids {
            repo.remove_snapshot(id)?;
            removed.push(*id);
        }
        let explicit = |id: &cairn::id::SnapshotId| cairn::ledger::Removed { snapshot: *id, rule: "explicit".into() };
        repo.ledger_record(cairn::ledger::Event::Forget { removed: removed.iter().map(explicit).collect() })?;
    }
    let doc = ForgetDoc { dry_run: a.dry_run, groups: &[], excluded: &[], removed: &removed };
    ctx.out.result(&doc, Text::Normal, |w| {
        for id in &ids {
            writeln!(w, "{}  {}", if a.dry_run { "would remove" } else { "remove " }, id.short())?;
        }
        writeln!(w, "{} {} snapshot(s)", if a.dry_run { "dry run: would remove" } else { "removed" }, ids.len())
    })?;
    Ok(Outcome::Done)
}

pub fn run(ctx: &Ctx, a: ForgetArgs) -> anyhow::Result<Outcome> {
    run_with(ctx, a, None, None)
}

/// `forget` with `given` rules instead of the flags' when `Some`, and, when `group_of` is `Some`,
/// only the group holding that snapshot (`cairn run`: a job forgets in its own group).
pub fn run_with(
    ctx: &Ctx,
    a: ForgetArgs,
    given: Option<Rules>,
    group_of: Option<SnapshotId>,
) -> anyhow::Result<Outcome> {
    if !a.snapshots.is_empty() {
        if a.policy.is_some() || rules(&a).is_ok() || a.prune {
            return Err(
                CliError::Usage("give snapshot ids or a policy, not both (and no --prune with ids)".into()).into()
            );
        }
        return by_id(ctx, &a);
    }
    let rules = match given {
        Some(r) => r,
        None => rules(&a)?,
    };
    let tz = a.tz.clone().unwrap_or_else(jiff::tz::TimeZone::system);
    let repo = open::open_reader_writing(&ctx.g, &ctx.out, !a.dry_run)?;
    let snaps = a.filter.filter().entries(&repo)?;
    let mut groups = forget::plan(&snaps, a.group_by, &rules, &tz);
    if let Some(id) = group_of {
        groups.retain(|g| g.decisions.iter().any(|d| d.id == id));
    }
    let excluded = forget::excluded(&snaps);
    let removed = if a.dry_run { Vec::new() } else { forget::execute(&repo, &groups, a.allow_empty)? };
    ctx.metrics.forget(&repo, removed.len());
    let refused = a.dry_run && !a.allow_empty && groups.iter().any(|g| g.removes_all());
    let doc = ForgetDoc { dry_run: a.dry_run, groups: &groups, excluded: &excluded, removed: &removed };
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
        if !excluded.is_empty() {
            writeln!(w, "excluded from the policy (remove only by naming the id):")?;
            for x in &excluded {
                let why: Vec<&str> = x.reasons.iter().map(|f| f.as_str()).collect();
                writeln!(w, "  exclude {}  {}  host {}  {}", x.short_id, short_time(&x.time), x.host, why.join(", "))?;
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
