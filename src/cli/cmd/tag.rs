//! `cairn tag`: changes the tags of snapshots by rewriting their manifests (format-spec §8.3,
//! [`cairn::tag`]). Needs a full key: it deletes the replaced manifests.

use crate::cli::args::TagArgs;
use crate::cli::output::Text;
use crate::cli::{open, CliError, Ctx, Outcome};
use cairn::select::{self, Listed};
use cairn::tag::{self, Change};

/// `tag --json`.
#[derive(serde::Serialize)]
struct TagDoc<'a> {
    dry_run: bool,
    snapshots: &'a [tag::Tagged],
}

pub fn run(ctx: &Ctx, a: TagArgs) -> anyhow::Result<Outcome> {
    let change = if a.set.is_empty() {
        Change::Edit { add: a.add.clone(), remove: a.remove.clone() }
    } else {
        Change::Set(a.set.clone())
    };
    change.check().map_err(|e| CliError::Usage(e.to_string()))?;
    let repo = open::open_reader_writing(&ctx.g, &ctx.out, !a.dry_run)?;
    let filter = a.filter.filter();
    let all = select::list_all(&repo)?;
    let mut targets: Vec<Listed> = Vec::new();
    for spec in &a.snapshots {
        let candidates: Vec<_> = if *spec == select::SnapshotSpec::Latest { filter.list(&repo)? } else { Vec::new() };
        let id = select::resolve(&repo, spec, &candidates)?;
        let l = all.iter().find(|l| l.id == id).ok_or_else(|| cairn::Error::NotFound(format!("snapshot {id}")))?;
        if !targets.iter().any(|t| t.id == id) {
            targets.push(l.clone());
        }
    }
    let done = tag::tag(&repo, &targets, &change, a.force, a.dry_run)?;
    let doc = TagDoc { dry_run: a.dry_run, snapshots: &done };
    ctx.out.result(&doc, Text::Normal, |w| {
        for t in &done {
            let tags = if t.after.is_empty() { "(none)".to_string() } else { t.after.join(",") };
            match (&t.new, t.unchanged) {
                (_, true) => writeln!(w, "unchanged  {}  tags {tags}", t.old.short())?,
                (Some(n), _) => writeln!(w, "tagged     {} -> {}  tags {tags}", t.old.short(), n.short())?,
                (None, _) => writeln!(w, "would tag  {}  tags {tags}", t.old.short())?,
            }
        }
        Ok(())
    })?;
    Ok(Outcome::Done)
}
