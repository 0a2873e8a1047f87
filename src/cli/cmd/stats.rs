//! `cairn stats`: restore sizes, unique and stored bytes, compression and dedup ratios, and for the
//! whole repository what a prune would return.

use crate::cli::args::StatsArgs;
use crate::cli::output::{short_time, Text};
use crate::cli::{open, Ctx, Outcome};
use cairn::select;
use cairn::stats::stats;
use cairn::units::human_bytes;

/// `1536 B (1.50 KiB)`, or `12 B` below a KiB.
fn bytes(n: u64) -> String {
    if n < 1024 {
        human_bytes(n)
    } else {
        format!("{n} B ({})", human_bytes(n))
    }
}

fn ratio(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.2}")).unwrap_or_else(|| "-".into())
}

pub fn run(ctx: &Ctx, a: StatsArgs) -> anyhow::Result<Outcome> {
    let repo = open::open_reader(&ctx.g, &ctx.out)?;
    let filter = a.filter.filter();
    let whole = a.snapshots.is_empty() && filter == cairn::select::Filter::default();
    let snapshots = select::select_many(&repo, &a.snapshots, &filter)?;
    let r = stats(&repo, &snapshots, a.mode, whole)?;
    ctx.out.result(&r, Text::Data, |w| {
        writeln!(w, "Snapshots:            {}", r.snapshots)?;
        if let Some(s) = &r.restore {
            writeln!(w, "Files:                {}", s.files)?;
            writeln!(w, "Directories:          {}", s.dirs)?;
            writeln!(w, "Other entries:        {}", s.other)?;
            writeln!(w, "Restore size:         {}", bytes(s.bytes))?;
        }
        if let Some(x) = &r.raw {
            writeln!(w, "Unique blobs:         {} ({} data, {} tree)", x.blobs, x.data_blobs, x.tree_blobs)?;
            writeln!(w, "Plain size:           {}", bytes(x.plain_bytes))?;
            writeln!(w, "Stored size:          {}", bytes(x.stored_bytes))?;
            writeln!(w, "Compression ratio:    {}", ratio(x.compression_ratio))?;
            if x.missing_blobs > 0 {
                writeln!(w, "Blobs in no index:    {}", x.missing_blobs)?;
            }
        }
        if r.mode == cairn::stats::Mode::Dedup {
            writeln!(w, "Dedup ratio:          {}", ratio(r.dedup_ratio))?;
        }
        if !r.per_snapshot.is_empty() {
            writeln!(w)?;
            writeln!(w, "{:<8}  {:<19}  {:<16}  {:>8}  {:>14}", "ID", "TIME", "HOST", "FILES", "BYTES")?;
            for s in &r.per_snapshot {
                let t = short_time(&s.time);
                writeln!(w, "{:<8}  {t:<19}  {:<16}  {:>8}  {:>14}", s.short_id, s.host, s.size.files, s.size.bytes)?;
            }
        }
        if let Some(x) = &r.repository {
            writeln!(w)?;
            writeln!(w, "Repository (from the index):")?;
            writeln!(w, "  Index files:        {}", x.index_files)?;
            writeln!(w, "  Packs:              {} ({})", x.packs, bytes(x.pack_bytes))?;
            writeln!(
                w,
                "  Blobs:              {} ({} plain, {} stored)",
                x.blobs,
                bytes(x.plain_bytes),
                bytes(x.stored_bytes)
            )?;
            writeln!(w, "  Unused blobs:       {} ({} stored)", x.unused_blobs, bytes(x.unused_bytes))?;
            writeln!(w, "  Unused packs:       {}", x.unused_packs)?;
            writeln!(w, "  Prune would return: {}", bytes(x.prune_would_return))?;
        }
        Ok(())
    })?;
    Ok(Outcome::Done)
}
