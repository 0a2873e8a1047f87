//! `cairn diff`: what changed between two snapshots, one line per entry and a summary line.

use crate::cli::args::DiffArgs;
use crate::cli::output::Text;
use crate::cli::{open, Ctx, Outcome};
use cairn::diff::{DiffItem, DiffOptions, DiffReport, Kind};
use cairn::id::SnapshotId;
use cairn::select;
use cairn::units::human_bytes;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `diff --json`.
#[derive(serde::Serialize)]
pub(crate) struct Doc<'a> {
    pub(crate) old: SnapshotId,
    pub(crate) new: SnapshotId,
    #[serde(flatten)]
    pub(crate) report: &'a DiffReport,
}

/// The details after an entry's path, e.g. ` (5 B → 8 B)`.
fn details(e: &DiffItem) -> String {
    let size = |s: Option<u64>| human_bytes(s.unwrap_or(0));
    let what = match e.change {
        _ if e.is_dir() && e.change != Kind::Type && e.change != Kind::Metadata => String::new(),
        Kind::Added | Kind::Removed if e.new_type.or(e.old_type) == Some("file") => size(e.new_size.or(e.old_size)),
        Kind::Added | Kind::Removed => e.new_type.or(e.old_type).unwrap_or_default().to_string(),
        Kind::Modified if e.new_type == Some("file") => format!("{} → {}", size(e.old_size), size(e.new_size)),
        Kind::Modified => e.new_type.unwrap_or_default().to_string(),
        Kind::Type => format!("{} → {}", e.old_type.unwrap_or_default(), e.new_type.unwrap_or_default()),
        Kind::Metadata => String::new(),
    };
    let meta = e.metadata.join(", ");
    match (what.is_empty(), meta.is_empty()) {
        (true, true) => String::new(),
        (false, true) => format!("  ({what})"),
        (true, false) => format!("  ({meta})"),
        (false, false) => format!("  ({what}; {meta})"),
    }
}

pub fn run(ctx: &Ctx, a: DiffArgs) -> anyhow::Result<Outcome> {
    let repo = open::open_reader(&ctx.g, &ctx.out)?;
    let filter = a.filter.filter();
    let (old_id, old) = select::select(&repo, &a.old, &filter)?;
    let (new_id, new) = select::select(&repo, &a.new, &filter)?;
    let path = a.path.map(|p| if p.is_absolute() { p } else { Path::new("/").join(p) });
    let opts = DiffOptions { path, metadata: a.metadata };
    let report = cairn::diff::diff(&repo, &old.root(), &new.root(), &opts)?;
    let doc = Doc { old: old_id, new: new_id, report: &report };
    ctx.out.result(&doc, Text::Data, |w| {
        for e in &report.entries {
            write!(w, "{}  ", e.change.code())?;
            w.write_all(e.path.raw.as_os_str().as_bytes())?;
            if e.is_dir() && e.path.raw.parent().is_some() {
                w.write_all(b"/")?;
            }
            writeln!(w, "{}", details(e))?;
        }
        let s = &report.summary;
        let meta = if a.metadata { format!(", {} metadata changed", s.metadata_changed) } else { String::new() };
        writeln!(
            w,
            "{} added, {} removed, {} modified, {} type changed{meta}; {} added, {} removed",
            s.added,
            s.removed,
            s.modified,
            s.type_changed,
            human_bytes(s.bytes_added),
            human_bytes(s.bytes_removed)
        )
    })?;
    Ok(Outcome::Done)
}
