//! `cairn prune` (and the prune of `forget --prune`): plans the sweep of due marks and a new mark,
//! runs it unless `--dry-run`, and prints the plan and the report.

use super::forget::ForgetDoc;
use crate::cli::args::PruneArgs;
use crate::cli::output::Text;
use crate::cli::{open, Ctx, Outcome};
use cairn::layout::pack_path;
use cairn::prune::{PruneOptions, PrunePlan, PruneReport};
use cairn::units::{human_bytes, human_secs};
use std::io::Write;

/// `prune --json`.
#[derive(serde::Serialize)]
struct PruneDoc<'a> {
    dry_run: bool,
    plan: &'a PrunePlan,
    report: &'a Option<PruneReport>,
}

/// `forget --prune --json`: one document for both.
#[derive(serde::Serialize)]
struct Both<'a> {
    forget: &'a ForgetDoc<'a>,
    prune: PruneDoc<'a>,
}

pub fn run(ctx: &Ctx, a: &PruneArgs, dry_run: bool, forget: Option<&ForgetDoc>) -> anyhow::Result<Outcome> {
    let out = &ctx.out;
    let opts = PruneOptions {
        max_unused: a.max_unused,
        max_repack_size: a.max_repack_size,
        grace_secs: a.grace.secs,
        force: a.force,
        repack: !a.no_repack,
        break_lock: a.break_lock,
        cancel: Some(ctx.cancel.clone()),
        ..PruneOptions::default()
    };
    if opts.grace_secs < 24 * 3600 {
        out.note(format!(
            "warning: --grace {} is below 24h: a backup slower than the grace period that started before the mark \
             is still protected by its lease, but a client whose clock or storage timestamps are off is not",
            a.grace.spec
        ));
    }
    if a.force {
        out.note("warning: --force: prune goes on past its safety stops (listing and index disagree, or more than half of the data would go)");
    }
    let repo = open::open_reader_writing(&ctx.g, out, !dry_run)?;
    let (plan, report) = cairn::prune::run(&repo, &opts, dry_run)?;
    ctx.metrics.prune(&repo, report.as_ref().map_or(0, |r| r.deleted_bytes));
    let doc = PruneDoc { dry_run, plan: &plan, report: &report };
    if out.json() {
        match forget {
            Some(f) => out.result(&Both { forget: f, prune: doc }, Text::Normal, |_| Ok(()))?,
            None => out.result(&doc, Text::Normal, |_| Ok(()))?,
        }
        return Ok(Outcome::Done);
    }
    for w in &plan.warnings {
        out.error(format!("warning: {w}"));
    }
    if let Some(r) = &report {
        for s in &r.repack_skipped {
            out.note(format!("warning: not repacked (left in place): {s}"));
        }
    }
    out.result(&doc, Text::Normal, |w| text(w, &plan, &report, &opts, dry_run, out.verbose()))?;
    Ok(Outcome::Done)
}

fn text(
    w: &mut dyn Write,
    plan: &PrunePlan,
    report: &Option<PruneReport>,
    opts: &PruneOptions,
    dry_run: bool,
    verbose: u8,
) -> std::io::Result<()> {
    let would = |s: &str| if dry_run { format!("would {s}") } else { s.to_string() };
    writeln!(
        w,
        "repository: {} snapshots, {} packs, {}; {} in blobs no snapshot uses",
        plan.snapshots,
        plan.packs,
        human_bytes(plan.pack_bytes),
        human_bytes(plan.unused_bytes)
    )?;
    if let Some(s) = &plan.sweep {
        writeln!(w, "sweep of {} mark(s):", s.marks.len())?;
        if verbose > 0 {
            for r in &s.delete {
                writeln!(w, "  {} {}", would("delete"), pack_path(r.kind, &r.id))?;
            }
        }
        for r in &s.rescued {
            writeln!(w, "  {} {} (a snapshot still needs it)", would("rescue"), pack_path(r.kind, &r.id))?;
        }
        writeln!(
            w,
            "  {} {} pack(s), {}; {} {} index file(s)",
            would("delete"),
            s.delete.len(),
            human_bytes(s.delete_bytes),
            would("replace"),
            s.old_index.len()
        )?;
    }
    for x in &plan.waiting {
        writeln!(w, "mark {}: {} pack(s) condemned, waiting: {}", &x.mark[..8.min(x.mark.len())], x.packs, x.reason)?;
    }
    if let Some(m) = &plan.mark {
        writeln!(
            w,
            "mark: {} {} unused pack(s), {} unindexed pack(s) and {} repacked pack(s); about {} return after the grace period ({})",
            would("condemn"),
            m.unused.len(),
            m.orphans.len(),
            m.repack.len(),
            human_bytes(m.reclaim_bytes),
            human_secs(opts.grace_secs)
        )?;
        if verbose > 0 {
            for r in &m.repack {
                writeln!(
                    w,
                    "  {} {} ({} used, {} unused)",
                    would("repack"),
                    pack_path(r.pack.kind, &r.pack.id),
                    human_bytes(r.used_bytes),
                    human_bytes(r.unused_bytes)
                )?;
            }
        }
    } else if let Some(r) = &plan.no_mark_reason {
        writeln!(w, "no new mark: {r}")?;
    }
    match report {
        Some(r) => writeln!(
            w,
            "done: {} pack(s) deleted ({}), {} rescued, {} repacked ({} blobs), {} index file(s) replaced{}",
            r.deleted_packs,
            human_bytes(r.deleted_bytes),
            r.rescued_packs,
            r.repacked_packs,
            r.repacked_blobs,
            r.replaced_index,
            match &r.marked {
                Some(m) => format!(", mark {} condemns {} pack(s)", &m[..8.min(m.len())], r.condemned),
                None => String::new(),
            }
        ),
        None => writeln!(w, "dry run: nothing was changed"),
    }
}
