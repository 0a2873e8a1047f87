//! `cairn snapshots`: the snapshots that pass the filter, oldest first, with who wrote each and
//! its flags (format-spec §4.3).

use crate::cli::args::SnapshotFilter;
use crate::cli::output::{short_time, SourceView, Text};
use crate::cli::{open, Ctx, Outcome};
use cairn::cert::Attribution;
use cairn::id::{BlobId, SnapshotId};
use cairn::select::Flag;
use cairn::snapshot::{Snapshot, Summary};
use cairn::tree::Time;
use cairn::units::human_bytes;

/// One snapshot in `snapshots --json`.
#[derive(serde::Serialize)]
struct Listed<'a> {
    id: SnapshotId,
    short_id: String,
    time: Time,
    host: &'a str,
    user: &'a str,
    uid: u32,
    gid: u32,
    paths: Vec<String>,
    tags: &'a [String],
    parent: Option<SnapshotId>,
    root: BlobId,
    source: String,
    /// One entry per source (path, kind, exit status, bytes; never a command's text).
    sources: Vec<SourceView>,
    program: &'a str,
    summary: &'a Summary,
    /// The attributed key id (64 hex); `None` when unattributed or forged.
    writer: Option<String>,
    /// `attributed`, `unattributed` or `forged`.
    attribution: &'static str,
    /// `forged`, `host-not-allowed`, `future`.
    flags: &'a [Flag],
}

impl<'a> Listed<'a> {
    fn new(id: SnapshotId, snap: &'a Snapshot, att: &Attribution, flags: &'a [Flag]) -> Self {
        Listed {
            id,
            short_id: id.short(),
            time: snap.time(),
            host: snap.host(),
            user: snap.user(),
            uid: snap.uid(),
            gid: snap.gid(),
            paths: snap.display_paths(),
            tags: snap.tags(),
            parent: snap.parent(),
            root: snap.root(),
            source: snap.describe_sources(),
            sources: SourceView::of(snap),
            program: snap.program(),
            summary: snap.summary(),
            writer: att.key_id().map(|k| k.to_hex()),
            attribution: att.state(),
            flags,
        }
    }
}

pub fn run(ctx: &Ctx, f: SnapshotFilter) -> anyhow::Result<Outcome> {
    let repo = open::open_reader(&ctx.g, &ctx.out)?;
    let snaps = f.filter().entries(&repo)?;
    let doc: Vec<Listed> = snaps.iter().map(|l| Listed::new(l.id, &l.snapshot, &l.attribution, &l.flags)).collect();
    ctx.out.result(&doc, Text::Normal, |w| {
        writeln!(
            w,
            "{:<8}  {:<20}  {:<16}  {:<8}  {:<16}  {:>10}  PATHS",
            "ID", "TIME", "HOST", "WRITER", "TAGS", "SIZE"
        )?;
        for l in &doc {
            let writer = match (&l.writer, l.attribution) {
                (Some(k), _) => k[..8].to_string(),
                (None, "forged") => "?".to_string(),
                (None, _) => "-".to_string(),
            };
            let flags: Vec<&str> = l.flags.iter().map(|f| f.as_str()).collect();
            let flags = if flags.is_empty() { String::new() } else { format!("  [{}]", flags.join(",")) };
            writeln!(
                w,
                "{:<8}  {:<20}  {:<16}  {:<8}  {:<16}  {:>10}  {}{}",
                l.short_id,
                short_time(&l.time),
                l.host,
                writer,
                l.tags.join(","),
                human_bytes(l.summary.bytes_processed),
                l.paths.join(" "),
                flags
            )?;
        }
        writeln!(w, "{} snapshot(s)", doc.len())
    })?;
    Ok(Outcome::Done)
}
