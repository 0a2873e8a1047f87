//! The arguments of `cairn status` (kept apart from [`super::args`], which registers it as a
//! [`super::args::Command`] variant). Every value is typed, so a malformed one is refused before
//! anything is opened (for `status`, with the monitoring-plugin code 3).

use super::args::SnapshotFilter;
use super::values::{percent, FixedDuration};
use cairn::forget::GroupBy;
use clap::Args;

/// `cairn status`.
#[derive(Args)]
#[command(after_help = "Exit codes (monitoring-plugin convention, this command's exception to the table): \
0 OK, 1 WARNING (newest snapshot older than --warn, or its run was partial), 2 CRITICAL (older than --rpo, no \
snapshot, or a size change of at least --size-change), 3 UNKNOWN (the repository cannot be reached or opened, or \
a bad argument). Flagged snapshots (forged, revoked, ...) never count. Reads snapshot manifests only: nothing under \
data/ or tree/.")]
pub struct StatusArgs {
    /// The newest snapshot of a group older than this is CRITICAL (e.g. 24h, 2d, 90min)
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    pub rpo: FixedDuration,
    /// The newest snapshot of a group older than this is WARNING [default: no warning age]
    #[arg(long, value_name = "DURATION")]
    pub warn: Option<FixedDuration>,
    /// A size change (up or down) of at least this against the previous snapshot is CRITICAL (e.g. 50%)
    /// [default: sizes are not judged]
    #[arg(long, value_name = "PERCENT", value_parser = percent)]
    pub size_change: Option<f64>,
    /// Judge each group apart; groups by these (comma-separated: host, paths, tags, writer)
    #[arg(long, default_value = "host,paths", value_name = "LIST")]
    pub group_by: GroupBy,
    /// Which snapshots to look at.
    #[command(flatten)]
    pub filter: SnapshotFilter,
    /// Judge these jobs of the job profile (docs/jobs.md) instead of --group-by groups: each job's
    /// snapshots (its host and paths, in its repository) with its own rpo/warn/size_change, falling
    /// back to the options above
    #[arg(value_name = "JOB")]
    pub jobs: Vec<String>,
}
