//! The arguments of `cairn report` (kept apart from [`super::args`], which registers it as a
//! [`super::args::Command`] variant). Every value is typed, so a malformed one is exit 2 before
//! anything is opened.

use super::args::SnapshotFilter;
use super::values::{time, time_zone, FixedDuration};
use cairn::forget::GroupBy;
use cairn::tree::Time;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// A time (RFC 3339 or YYYY-MM-DD[ HH:MM[:SS]] UTC) or a duration before now (`30d`).
fn since(s: &str) -> Result<Since, String> {
    match time(s) {
        Ok(t) => Ok(Since::At(t)),
        Err(e) => match s.parse::<FixedDuration>() {
            Ok(d) => Ok(Since::Ago(d.secs)),
            Err(_) => Err(format!("{e}, nor a duration such as 30d")),
        },
    }
}

/// The start of the period as given.
#[derive(Clone, Copy, Debug)]
pub enum Since {
    /// A point in time.
    At(Time),
    /// This many seconds before the end of the period.
    Ago(i64),
}

impl Since {
    /// The start of a period that ends at `until`.
    pub fn before(self, until: Time) -> Time {
        match self {
            Since::At(t) => t,
            Since::Ago(secs) => Time { secs: until.secs.saturating_sub(secs), nanos: 0 },
        }
    }
}

/// The report's form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Plain text.
    Text,
    /// One JSON document (as `--json`).
    Json,
    /// One self-contained HTML file (inline CSS, SVG timelines, no script, no network).
    Html,
}

/// `cairn report`.
#[derive(Args)]
#[command(after_help = "Five sections, each PASS or FAIL with its evidence: encryption, retention, completion, \
accessibility, integrity (docs/compliance.md). Exit 0 when every section passes, 5 when any fails (the report is \
still printed or written), another code when the report cannot be made. Reads snapshot manifests, the ledger, key \
files and the listing of data/; writes nothing to the repository.")]
pub struct ReportArgs {
    /// The start of the period: a time (RFC 3339, or YYYY-MM-DD[ HH:MM[:SS]] in UTC) or how long before its end (30d)
    #[arg(long, default_value = "30d", value_name = "TIME", value_parser = since)]
    pub since: Since,
    /// The end of the period [default: now]
    #[arg(long, value_name = "TIME", value_parser = time)]
    pub until: Option<Time>,
    /// The retention policy file to judge retention by (docs/retention.md)
    #[arg(long, value_name = "FILE", conflicts_with = "job")]
    pub policy: Option<PathBuf>,
    /// Report on this job of the job profile (docs/jobs.md): its snapshots, its retention, its rpo, its drills
    #[arg(long, value_name = "JOB")]
    pub job: Option<String>,
    /// A gap between two backups of a group longer than this fails completion [default: the job's rpo, else 24h]
    #[arg(long, value_name = "DURATION")]
    pub rpo: Option<FixedDuration>,
    /// A drill that took longer than this fails accessibility [default: the RTO each drill recorded]
    #[arg(long, value_name = "DURATION")]
    pub rto: Option<FixedDuration>,
    /// text, json or html [default: text; json under --json]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<ReportFormat>,
    /// Write the report to this file (created mode 0600, replaced whole, never through a symlink) instead of stdout
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Judge each group apart; groups by these (comma-separated: host, paths, tags, writer)
    #[arg(long, default_value = "host,paths", value_name = "LIST")]
    pub group_by: GroupBy,
    /// Time zone for calendar days and retention buckets (e.g. Europe/Berlin, UTC) [default: the system's]
    #[arg(long, value_name = "ZONE", value_parser = time_zone)]
    pub tz: Option<jiff::tz::TimeZone>,
    /// Which snapshots to judge.
    #[command(flatten)]
    pub filter: SnapshotFilter,
}
