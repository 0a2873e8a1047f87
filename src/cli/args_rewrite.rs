//! The arguments of `cairn rewrite` (kept apart from [`super::args`], which registers them as a
//! [`super::args::Command`] variant).

use super::args::SnapshotFilter;
use cairn::select::SnapshotSpec;
use clap::Args;

/// `cairn rewrite`.
#[derive(Args)]
#[command(after_help = "For every snapshot given (all that pass the filter when none is given, flagged ones \
included) that holds a path matching an --exclude pattern (backup's syntax: `*.pdf` matches a name at any depth, \
`/home/alice/secret` a whole path; a directory goes with everything below it), writes a new snapshot without those \
paths: same time, host and remaining sources, tags plus `rewritten`, `replaces` naming the old id \
(format-spec §8.4). Everything is planned before anything is written; each new snapshot is committed before its \
original is deleted (--forget). The ledger records the reason, the patterns and the ids, never the data. Storage is \
freed by prune, and only for chunks no other file uses (docs/erasure.md). Needs a full key.")]
pub struct RewriteArgs {
    /// Snapshots to rewrite (ids or prefixes; `latest` honours the filter); none: every snapshot that passes the filter
    #[arg(value_name = "SNAPSHOT")]
    pub snapshots: Vec<SnapshotSpec>,
    /// Remove paths matching GLOB (repeatable; at least one)
    #[arg(long = "exclude", value_name = "GLOB", required = true)]
    pub excludes: Vec<String>,
    /// The request reference recorded in the ledger (a ticket number; never personal data)
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub reason: String,
    /// Delete each original snapshot once its rewritten copy is committed
    #[arg(long)]
    pub forget: bool,
    /// Print the plan (snapshots, paths that would go, bytes); write nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Which snapshots are rewritten (and which `latest` chooses from).
    #[command(flatten)]
    pub filter: SnapshotFilter,
}
