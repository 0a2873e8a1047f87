//! `cairn copy`: snapshots from another repository into this one, storing only what it lacks.

use super::WithDryRun;
use crate::cli::args::CopyArgs;
use crate::cli::output::Text;
use crate::cli::{open, Ctx, Outcome};
use cairn::copy::CopyReport;
use cairn::units::human_bytes;

pub fn run(ctx: &Ctx, a: CopyArgs) -> anyhow::Result<Outcome> {
    let src = open::open_source(&ctx.g, &ctx.out, &a.from_repo, &a.from)?;
    let mut tg = ctx.g.clone();
    if let Some(t) = &a.to_repo {
        tg.repo = Some(t.clone());
    }
    let dst = open::open_reader_writing(&tg, &ctx.out, !a.dry_run)?;
    let candidates = a.filter.filter().list(&src)?;
    let mut ids = Vec::new();
    for spec in &a.snapshots {
        ids.push(cairn::select::resolve(&src, spec, &candidates)?);
    }
    if ids.is_empty() {
        ids = candidates.iter().map(|(id, _)| *id).collect();
    }
    if ids.is_empty() {
        let r = CopyReport::default();
        ctx.out.result(&WithDryRun { dry_run: a.dry_run, report: &r }, Text::Normal, |w| {
            writeln!(w, "no snapshot matches; nothing to copy")
        })?;
        return Ok(Outcome::Done);
    }
    let r = cairn::copy::copy(&src, &dst, &ids, a.dry_run)?;
    ctx.metrics.copy(&dst, r.snapshots.iter().filter(|c| c.target.is_some()).count());
    ctx.out.result(&WithDryRun { dry_run: a.dry_run, report: &r }, Text::Normal, |w| {
        if r.rechunked {
            writeln!(
                w,
                "the repositories do not share chunker keys: every file is read and cut again (create the destination \
                 with `cairn init --copy-chunker-from` to avoid this)"
            )?;
        }
        for c in &r.snapshots {
            match (&c.target, &c.already) {
                (Some(t), _) => writeln!(w, "copied {} -> {}", c.source.short(), t.short())?,
                (None, Some(e)) => writeln!(w, "skipped {} (already there as {})", c.source.short(), e.short())?,
                (None, None) => writeln!(w, "would copy {}", c.source.short())?,
            }
        }
        writeln!(
            w,
            "{} {} blob(s), {}; read {} data blob(s), {}{}",
            if a.dry_run { "would store" } else { "stored" },
            r.blobs_added,
            human_bytes(r.bytes_added),
            r.data_blobs_read,
            human_bytes(r.data_bytes_read),
            if a.dry_run { " (dry run: nothing was stored)" } else { "" }
        )
    })?;
    Ok(Outcome::Done)
}
