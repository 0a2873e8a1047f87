//! `cairn repair index|snapshots`: rebuilds lost index files from pack headers, and writes
//! snapshots that keep every intact item of damaged ones.

use super::WithDryRun;
use crate::cli::args::RepairCommand;
use crate::cli::output::Text;
use crate::cli::{open, Ctx, Outcome};
use anyhow::anyhow;
use cairn::repair::{self, RepairOptions, RepairSnapshotsOptions};

pub fn run(ctx: &Ctx, c: RepairCommand) -> anyhow::Result<Outcome> {
    match c {
        RepairCommand::Index { dry_run, include_recent } => index(ctx, dry_run, include_recent),
        RepairCommand::Snapshots { dry_run, read_data, forget } => {
            snapshots(ctx, RepairSnapshotsOptions { dry_run, read_data, forget })
        }
    }
}

fn index(ctx: &Ctx, dry_run: bool, include_recent: bool) -> anyhow::Result<Outcome> {
    let repo = open::open_reader_writing(&ctx.g, &ctx.out, !dry_run)?;
    let opts = RepairOptions { dry_run, min_age_secs: if include_recent { 0 } else { 3600 } };
    let r = repair::repair_index(&repo, &opts)?;
    if !ctx.out.json() {
        for (p, e) in &r.unreadable {
            ctx.out.note(format!("cannot rebuild {p}: {e}"));
        }
    }
    ctx.out.result(&WithDryRun { dry_run, report: &r }, Text::Normal, |w| {
        let verb = if dry_run { "would index" } else { "indexed" };
        for p in &r.indexed {
            writeln!(w, "{verb} {p}")?;
        }
        for p in &r.skipped_recent {
            writeln!(w, "left alone (younger than an hour; --include-recent to index it): {p}")?;
        }
        for i in &r.superseded {
            writeln!(w, "{} damaged {i}", if dry_run { "would supersede" } else { "superseded" })?;
        }
        writeln!(
            w,
            "{} pack(s) {verb}, {} index file(s) written{}",
            r.indexed.len(),
            r.index_files.len(),
            if dry_run { " (dry run: nothing was written)" } else { "" }
        )
    })?;
    Ok(Outcome::Done)
}

fn snapshots(ctx: &Ctx, opts: RepairSnapshotsOptions) -> anyhow::Result<Outcome> {
    let repo = open::open_reader_writing(&ctx.g, &ctx.out, !opts.dry_run)?;
    let r = repair::repair_snapshots(&repo, &opts)?;
    ctx.out.result(&r, Text::Normal, |w| {
        for d in &r.damaged {
            let short = &d.snapshot[..8.min(d.snapshot.len())];
            writeln!(
                w,
                "snapshot {short} ({}, {}, {}): {} damaged item(s)",
                d.time,
                d.host,
                d.paths.join(" "),
                d.lost.len()
            )?;
            for l in &d.lost {
                writeln!(w, "  lost {} {}: {}", l.kind, l.path, l.what)?;
                for x in &l.ranges {
                    let at = x.offset.map_or("?".to_string(), |o| o.to_string());
                    let len = x.length.map_or("?".to_string(), |n| n.to_string());
                    writeln!(
                        w,
                        "    bytes at {at}, length {len}: blob {}: {}",
                        &x.blob[..16.min(x.blob.len())],
                        x.reason
                    )?;
                }
            }
            match (&d.repaired, &d.already_repaired_by) {
                (Some(n), _) => writeln!(w, "  wrote snapshot {} (tagged repaired)", &n[..8.min(n.len())])?,
                (None, Some(n)) => writeln!(w, "  already repaired by snapshot {}", &n[..8.min(n.len())])?,
                (None, None) => writeln!(w, "  would write a repaired snapshot (dry run)")?,
            }
            if d.forgotten {
                writeln!(w, "  removed the original snapshot {short}")?;
            } else if !opts.dry_run {
                writeln!(w, "  kept the original snapshot {short} (--forget removes it)")?;
            }
        }
        writeln!(
            w,
            "{} snapshot(s) checked: {} intact, {} damaged{}",
            r.snapshots,
            r.intact,
            r.damaged.len(),
            if opts.dry_run { " (dry run: nothing was written)" } else { "" }
        )
    })?;
    for (p, e) in &r.unreadable {
        ctx.out.error(format!("cairn: error: cannot repair {p}: {e}"));
    }
    if !r.unreadable.is_empty() {
        return Err(anyhow!("{} snapshot(s) cannot be read", r.unreadable.len()));
    }
    Ok(Outcome::Done)
}
