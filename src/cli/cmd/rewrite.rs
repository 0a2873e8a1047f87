//! `cairn rewrite`: audited erasure (format-spec §8.4, [`cairn::rewrite`]). Needs a full key: it
//! reads trees and deletes the originals it replaces.

use crate::cli::args_rewrite::RewriteArgs;
use crate::cli::output::Text;
use crate::cli::{open, CliError, Ctx, Outcome};
use cairn::rewrite::{self, RewriteOptions};
use cairn::select::{self, Listed};
use cairn::units::human_bytes;

pub fn run(ctx: &Ctx, a: RewriteArgs) -> anyhow::Result<Outcome> {
    rewrite::patterns(&a.excludes).map_err(|e| CliError::Usage(e.to_string()))?;
    let repo = open::open_reader_writing(&ctx.g, &ctx.out, !a.dry_run)?;
    let filter = a.filter.filter();
    let all = select::list_all(&repo)?;
    let targets: Vec<Listed> = if a.snapshots.is_empty() {
        filter.entries(&repo)?
    } else {
        let mut v: Vec<Listed> = Vec::new();
        for spec in &a.snapshots {
            let candidates = if *spec == select::SnapshotSpec::Latest { filter.list(&repo)? } else { Vec::new() };
            let id = select::resolve(&repo, spec, &candidates)?;
            let l = all.iter().find(|l| l.id == id).ok_or_else(|| cairn::Error::NotFound(format!("snapshot {id}")))?;
            if !v.iter().any(|t| t.id == id) {
                v.push(l.clone());
            }
        }
        v
    };
    let opts = RewriteOptions { excludes: a.excludes, reason: a.reason, forget: a.forget, dry_run: a.dry_run };
    let r = rewrite::rewrite(&repo, &targets, &all, &opts)?;
    ctx.out.result(&r, Text::Normal, |w| {
        for s in &r.snapshots {
            let what = match (&s.new, r.dry_run, s.emptied) {
                (_, true, true) => "would empty".to_string(),
                (_, true, false) => "would rewrite".to_string(),
                (Some(n), _, _) if s.already_replaced => format!("replaced by {} (earlier run)", n.short()),
                (Some(n), _, _) => format!("rewritten -> {}", n.short()),
                (None, _, _) if s.forgotten => "deleted (every source erased)".to_string(),
                (None, _, _) => {
                    "every source matches: nothing written, original kept (--forget deletes it)".to_string()
                }
            };
            let forgot = if s.forgotten && s.new.is_some() { ", original deleted" } else { "" };
            writeln!(
                w,
                "{} {}  {} {}  {what}{forgot}: {} entr{}, {} files, {}",
                s.snapshot.short(),
                s.time,
                s.host,
                s.paths.join(","),
                s.entries,
                if s.entries == 1 { "y" } else { "ies" },
                s.files,
                human_bytes(s.bytes)
            )?;
            for p in &s.removed {
                writeln!(w, "  - {} ({}, {} files, {})", p.path, p.kind, p.files, human_bytes(p.bytes))?;
            }
            if s.entries > s.removed.len() as u64 {
                writeln!(w, "  … and {} more", s.entries - s.removed.len() as u64)?;
            }
        }
        writeln!(
            w,
            "{} of {} snapshot(s) hold a matching path; {} files, {} {}",
            r.snapshots.len(),
            r.examined,
            r.files,
            human_bytes(r.bytes),
            if r.dry_run { "would go (nothing written)" } else { "removed" }
        )?;
        if let Some(e) = &r.ledger_entry {
            writeln!(w, "ledger entry {e}")?;
        }
        Ok(())
    })?;
    Ok(Outcome::Done)
}
