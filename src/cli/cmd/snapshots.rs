//! `cairn snapshots`: the snapshots that pass the filter, oldest first, with who wrote each and
//! its flags (format-spec §4.3); with `--group-by`, grouped as retention groups them
//! ([`cairn::forget::group`]), and with `--last` only the newest of each group.

use crate::cli::args::SnapshotsArgs;
use crate::cli::output::{short_time, SourceView, Text};
use crate::cli::{open, Ctx, Outcome};
use cairn::cert::Attribution;
use cairn::forget::{self, GroupKey};
use cairn::id::{BlobId, KeyId, SnapshotId};
use cairn::select::Flag;
use cairn::snapshot::{Snapshot, Summary};
use cairn::tree::Time;
use cairn::units::human_bytes;

/// One snapshot in `snapshots --json`.
#[derive(serde::Serialize)]
pub(crate) struct Listed<'a> {
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
    /// The original writer (64 hex) a manifest re-signed by `tag` names in its `origin` field, when
    /// honoured (format-spec §8.3): retention and `--writer` count the snapshot under it.
    origin: Option<String>,
    /// `forged`, `host-not-allowed`, `future`.
    flags: &'a [Flag],
}

impl<'a> Listed<'a> {
    fn new(id: SnapshotId, snap: &'a Snapshot, att: &Attribution, flags: &'a [Flag], origin: Option<KeyId>) -> Self {
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
            origin: origin.map(|k| k.to_hex()),
            flags,
        }
    }
}

/// One group in `snapshots --group-by --json`.
#[derive(serde::Serialize)]
struct GroupDoc<'a> {
    group: &'a GroupKey,
    snapshots: Vec<Listed<'a>>,
}

/// The table header.
fn header(w: &mut dyn std::io::Write) -> std::io::Result<()> {
    writeln!(w, "{:<8}  {:<20}  {:<16}  {:<8}  {:<16}  {:>10}  PATHS", "ID", "TIME", "HOST", "WRITER", "TAGS", "SIZE")
}

/// One table row.
fn row(w: &mut dyn std::io::Write, l: &Listed) -> std::io::Result<()> {
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
    )
}

/// With `last`, only the newest of `members` that `latest` may choose (none when all are flagged).
fn keep_last(members: Vec<&cairn::select::Listed>, last: bool) -> Vec<&cairn::select::Listed> {
    if !last {
        return members;
    }
    // The listing is oldest first, ties by id: the last eligible one is the newest.
    members.into_iter().rfind(|l| l.eligible()).into_iter().collect()
}

/// The `--json` form of `l`.
pub(crate) fn listed(l: &cairn::select::Listed) -> Listed<'_> {
    Listed::new(l.id, &l.snapshot, &l.attribution, &l.flags, l.origin())
}

pub fn run(ctx: &Ctx, a: SnapshotsArgs) -> anyhow::Result<Outcome> {
    let repo = open::open_reader(&ctx.g, &ctx.out)?;
    let snaps = a.filter.filter().entries(&repo)?;
    let Some(group_by) = a.group_by else {
        let doc: Vec<Listed> = keep_last(snaps.iter().collect(), a.last).iter().map(|l| listed(l)).collect();
        ctx.out.result(&doc, Text::Normal, |w| {
            header(w)?;
            for l in &doc {
                row(w, l)?;
            }
            writeln!(w, "{} snapshot(s)", doc.len())
        })?;
        return Ok(Outcome::Done);
    };
    let groups: Vec<(GroupKey, Vec<&cairn::select::Listed>)> = forget::group(&snaps, group_by)
        .into_iter()
        .map(|(k, members)| (k, keep_last(members, a.last)))
        .filter(|(_, members)| !members.is_empty())
        .collect();
    let doc: Vec<GroupDoc> = groups
        .iter()
        .map(|(k, members)| GroupDoc { group: k, snapshots: members.iter().map(|l| listed(l)).collect() })
        .collect();
    ctx.out.result(&doc, Text::Normal, |w| {
        for (i, g) in doc.iter().enumerate() {
            if i > 0 {
                writeln!(w)?;
            }
            writeln!(w, "group: {}", g.group.describe())?;
            header(w)?;
            for l in &g.snapshots {
                row(w, l)?;
            }
        }
        let n: usize = doc.iter().map(|g| g.snapshots.len()).sum();
        writeln!(w, "{} snapshot(s) in {} group(s)", n, doc.len())
    })?;
    Ok(Outcome::Done)
}
