//! `cairn find`: the entries of every snapshot that match, newest snapshot first.

use crate::cli::args::FindArgs;
use crate::cli::output::{short_time, Text};
use crate::cli::{open, CliError, Ctx, Outcome};
use cairn::filter::Patterns;
use cairn::find::{find, pack_blobs, FindOptions};
use cairn::select;
use std::os::unix::ffi::OsStrExt;

pub fn run(ctx: &Ctx, a: FindArgs) -> anyhow::Result<Outcome> {
    let patterns = Patterns::new(a.patterns.iter().map(|p| (p.as_str(), a.ignore_case))).map_err(CliError::Usage)?;
    let repo = open::open_reader(&ctx.g, &ctx.out)?;
    let filter = a.filter.filter();
    let snapshots = select::select_many(&repo, &a.snapshots, &filter)?;
    let mut blobs: std::collections::HashSet<_> = a.blobs.iter().copied().collect();
    for p in &a.packs {
        blobs.extend(pack_blobs(&repo, p)?.into_iter().map(|(_, id)| id));
    }
    let opts = FindOptions { patterns, oldest: a.oldest, newest: a.newest, blobs };
    let report = find(&repo, &snapshots, &opts)?;
    ctx.out.result(&report, Text::Data, |w| {
        let mut last = None;
        let mut found_in = 0;
        for m in &report.matches {
            if last != Some(m.snapshot) {
                writeln!(w, "snapshot {}  {}  {}", m.short_id, short_time(&m.time), m.host)?;
                last = Some(m.snapshot);
                found_in += 1;
            }
            let mtime = m.mtime.map(|t| short_time(&t)).unwrap_or_else(|| "-".repeat(19));
            write!(w, "  {:<7} {:>12}  {mtime}  ", m.kind, m.size)?;
            w.write_all(m.path.raw.as_os_str().as_bytes())?;
            if !m.blobs.is_empty() {
                let ids: Vec<String> = m.blobs.iter().map(|b| b.short()).collect();
                write!(w, "  (uses {})", ids.join(" "))?;
            }
            writeln!(w)?;
        }
        writeln!(w, "{} match(es) in {found_in} of {} snapshot(s)", report.matches.len(), report.snapshots)
    })?;
    Ok(Outcome::Done)
}
