//! The arguments of `snapshots` (grouping), `tag` and `mount` (kept apart from [`super::args`],
//! which registers them as [`super::args::Command`] variants).

use super::args::SnapshotFilter;
use cairn::forget::GroupBy;
use cairn::select::SnapshotSpec;
use clap::Args;
use std::path::PathBuf;

/// `cairn snapshots`.
#[derive(Args)]
#[command(after_help = "With --group-by, one header per group (host, paths, tags and/or writer, as forget groups), \
then its snapshots oldest first; --last keeps only the newest snapshot of each group that `latest` may choose \
(flagged snapshots never are). Reads snapshot manifests only, nothing under data/.")]
pub struct SnapshotsArgs {
    /// Group by any of host, paths, tags, writer (comma-separated)
    #[arg(long, value_name = "KEYS")]
    pub group_by: Option<GroupBy>,
    /// Only the newest snapshot of each group (of all snapshots without --group-by)
    #[arg(long)]
    pub last: bool,
    /// Which snapshots are listed.
    #[command(flatten)]
    pub filter: SnapshotFilter,
}

/// `cairn tag`.
#[derive(Args)]
#[command(after_help = "Rewrites each snapshot's manifest with the tags changed (format-spec §8.3): the new \
manifest is written first, signed by this key when the old one was attributed and unflagged, and names the \
manifests it replaces and, in its `origin` field, the original writer retention keeps counting it under; then the \
old one is deleted. Needs a full key. A flagged snapshot (forged, host-not-allowed, revoked, future) is refused \
unless --force, and stays flagged.")]
#[command(group(clap::ArgGroup::new("change").required(true).multiple(true).args(["add", "remove", "set"])))]
pub struct TagArgs {
    /// Snapshots to tag (ids or prefixes; `latest` honours the filter)
    #[arg(value_name = "SNAPSHOT", required = true)]
    pub snapshots: Vec<SnapshotSpec>,
    /// Add this tag (repeatable)
    #[arg(long, value_name = "TAG")]
    pub add: Vec<String>,
    /// Remove this tag (repeatable)
    #[arg(long, value_name = "TAG")]
    pub remove: Vec<String>,
    /// Replace all tags by these (repeatable; `--set ''` clears them)
    #[arg(long, value_name = "TAG", conflicts_with_all = ["add", "remove"])]
    pub set: Vec<String>,
    /// Also rewrite flagged snapshots (they stay flagged)
    #[arg(long)]
    pub force: bool,
    /// Show what would change; write nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Which snapshots `latest` chooses from.
    #[command(flatten)]
    pub filter: SnapshotFilter,
}

/// `cairn mount`.
#[derive(Args)]
#[command(after_help = "Read-only FUSE view: snapshots/<time>/, hosts/<host>/<time>/, tags/<tag>/<time>/, \
ids/<short id>/ and the symlink latest. Files are read on demand through a blob cache of --cache-size (least \
recently used blobs leave first). Runs until interrupted (Ctrl-C, SIGTERM) or unmounted (umount, fusermount3 -u).")]
pub struct MountArgs {
    /// An existing empty directory to mount on
    pub mountpoint: PathBuf,
    /// Let other users see the mount (they still need the stored permissions; needs user_allow_other in
    /// /etc/fuse.conf for non-root)
    #[arg(long)]
    pub allow_other: bool,
    /// Bytes of decrypted blobs kept in memory
    #[arg(long, default_value = "64M", value_name = "SIZE", value_parser = super::values::size)]
    pub cache_size: u64,
    /// Which snapshots are shown.
    #[command(flatten)]
    pub filter: SnapshotFilter,
}
