//! `cairn snapshots`: the snapshots that pass the filter, oldest first.

use crate::cli::args::SnapshotFilter;
use crate::cli::output::{short_time, Text};
use crate::cli::{open, Ctx, Outcome};
use cairn::id::{BlobId, SnapshotId};
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
    program: &'a str,
    summary: &'a Summary,
}

impl<'a> Listed<'a> {
    fn new(id: SnapshotId, snap: &'a Snapshot) -> Self {
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
            source: snap.source().describe(),
            program: snap.program(),
            summary: snap.summary(),
        }
    }
}

pub fn run(ctx: &Ctx, f: SnapshotFilter) -> anyhow::Result<Outcome> {
    let repo = open::open_reader(&ctx.g, &ctx.out)?;
    let snaps = f.filter().list(&repo)?;
    let doc: Vec<Listed> = snaps.iter().map(|(id, s)| Listed::new(*id, s)).collect();
    ctx.out.result(&doc, Text::Normal, |w| {
        writeln!(w, "{:<8}  {:<20}  {:<16}  {:<16}  {:>10}  PATHS", "ID", "TIME", "HOST", "TAGS", "SIZE")?;
        for l in &doc {
            writeln!(
                w,
                "{:<8}  {:<20}  {:<16}  {:<16}  {:>10}  {}",
                l.short_id,
                short_time(&l.time),
                l.host,
                l.tags.join(","),
                human_bytes(l.summary.bytes_processed),
                l.paths.join(" ")
            )?;
        }
        writeln!(w, "{} snapshot(s)", doc.len())
    })?;
    Ok(Outcome::Done)
}
