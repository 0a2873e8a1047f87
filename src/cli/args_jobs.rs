//! The arguments of the job commands (`run`, `config check`; docs/jobs.md), beside `args.rs` to
//! keep that file short.

use clap::{Args, Subcommand};

/// `cairn run`.
#[derive(Args)]
#[command(after_help = "Each job: the `before` hook, one backup of all its sources, forget with its retention \
(the group of the new snapshot only), prune when `prune_every` has passed, then `after` (or `on_failure`) and its \
metrics. With --drill, each job's restore drill instead. Exit: 0 every job ok, 3 a backup was partial and none failed, \
4 a drill passed over its RTO and none failed, 1 a job failed. See docs/jobs.md.")]
pub struct RunArgs {
    /// Jobs to run, in this order
    #[arg(value_name = "JOB", required_unless_present = "all", conflicts_with = "all")]
    pub jobs: Vec<String>,
    /// Run every job of the profile (in name order)
    #[arg(long)]
    pub all: bool,
    /// Print what each job would do; run no hook and change nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Run each job's restore drill ([job.NAME.drill]) on the newest snapshot of its group instead of its backup;
    /// exit 4 when a drill passed but took longer than its RTO
    #[arg(long, conflicts_with = "dry_run")]
    pub drill: bool,
}

/// `cairn config ...`.
#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Check the job profile and print what each job would do (exit 2 when it is invalid)
    Check,
}
