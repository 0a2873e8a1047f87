//! The arguments of the read-only inspection commands, `diff`, `find` and `stats` (kept apart from
//! [`super::args`], which registers them as [`super::args::Command`] variants). Every value is typed
//! as there, so a malformed argument is a usage error before anything is opened.

use super::args::SnapshotFilter;
use super::values::{blob_id, time};
use cairn::id::{BlobId, PackId};
use cairn::select::SnapshotSpec;
use cairn::stats::Mode;
use cairn::tree::Time;
use clap::Args;
use std::path::PathBuf;

/// A pack id (64 hex digits).
fn pack_id(s: &str) -> Result<PackId, String> {
    cairn::id::parse_hex32(&s.to_ascii_lowercase()).map(PackId).ok_or_else(|| format!("{s:?} is not a 64-digit hex id"))
}

/// `cairn diff`.
#[derive(Args)]
#[command(after_help = "Lines: + added, - removed, M modified content (chunks, size, symlink target), T another \
type, U metadata only (mode, owner, group, mtime, xattrs; listed with --metadata). Directories end in /. Reads \
trees only: nothing under data/ (which may sit in an archive tier), and subtrees with equal ids are not read.")]
pub struct DiffArgs {
    /// The older snapshot (id, prefix or `latest`)
    pub old: SnapshotSpec,
    /// The newer snapshot
    pub new: SnapshotSpec,
    /// Compare only this path (absolute, or taken from the root) and what lies below it
    pub path: Option<PathBuf>,
    /// Also list entries whose metadata alone changed (U)
    #[arg(long)]
    pub metadata: bool,
    /// Which snapshots `latest` chooses from.
    #[command(flatten)]
    pub filter: SnapshotFilter,
}

/// `cairn find`.
#[derive(Args)]
#[command(after_help = "A PATTERN without / matches names at any depth (*.conf); with / the whole absolute path \
(/etc/**/*.conf; a relative one matches anywhere). * does not cross /, ** does. Newest snapshots first. --blob and \
--pack list the entries that use those objects (files through their chunks or chunk lists, directories through \
their tree blobs); with PATTERNs too, entries must match both. Reads trees and the index only, nothing under data/.")]
pub struct FindArgs {
    /// Globs on names or paths (any may match)
    #[arg(value_name = "PATTERN", required_unless_present_any = ["blobs", "packs"])]
    pub patterns: Vec<String>,
    /// Search only this snapshot (repeatable; id, prefix or `latest`) [default: all that pass the filter]
    #[arg(long = "snapshot", short = 's', value_name = "SNAPSHOT")]
    pub snapshots: Vec<SnapshotSpec>,
    /// Patterns ignore case
    #[arg(short = 'i', long)]
    pub ignore_case: bool,
    /// Only entries modified at or after TIME
    #[arg(long, value_name = "TIME", value_parser = time)]
    pub oldest: Option<Time>,
    /// Only entries modified at or before TIME
    #[arg(long, value_name = "TIME", value_parser = time)]
    pub newest: Option<Time>,
    /// Entries that use this blob (data or tree; 64 hex digits; repeatable)
    #[arg(long = "blob", value_name = "ID", value_parser = blob_id)]
    pub blobs: Vec<BlobId>,
    /// Entries that use any blob of this pack, as the index lists them (64 hex digits; repeatable)
    #[arg(long = "pack", value_name = "ID", value_parser = pack_id)]
    pub packs: Vec<PackId>,
    /// Which snapshots are searched.
    #[command(flatten)]
    pub filter: SnapshotFilter,
}

/// `cairn stats`.
#[derive(Args)]
#[command(after_help = "Modes: restore-size (files and bytes as a restore writes them, per snapshot; a hardlink \
group's bytes once), raw (the unique blobs the snapshots reference: plain and stored bytes, compression ratio), \
dedup (restore size / plain bytes of the unique data blobs). Without SNAPSHOT or filter: the whole repository too, \
with what a prune would return. Reads trees and the index only, nothing under data/.")]
pub struct StatsArgs {
    /// Snapshots to count (ids, prefixes or `latest`) [default: all that pass the filter]
    #[arg(value_name = "SNAPSHOT")]
    pub snapshots: Vec<SnapshotSpec>,
    /// restore-size, raw or dedup
    #[arg(long, default_value = "restore-size", value_name = "MODE")]
    pub mode: Mode,
    /// Which snapshots are counted.
    #[command(flatten)]
    pub filter: SnapshotFilter,
}
