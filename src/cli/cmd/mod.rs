//! One file per command. Each has a `run` that turns its arguments into library options, calls
//! the library, and prints the typed result through the printer. A new command is a file here, a
//! variant of [`Command`] and its arm below.

mod backup;
mod cat;
mod check;
mod completion;
mod config;
mod copy;
pub(crate) mod diff;
mod drill;
mod dump;
mod find;
mod forget;
mod init;
mod key;
mod ledger;
pub(crate) mod ls;
mod mount;
mod prune;
mod repair;
mod report;
mod restore;
mod rewrite;
mod run;
mod serve;
pub(crate) mod snapshots;
mod stats;
pub(crate) mod status;
mod tag;

use super::args::Command;
use super::{Ctx, Outcome};

/// Runs `command`, then writes its metrics (`--metrics-file`) when it records any.
pub fn run(ctx: &Ctx, command: Command) -> anyhow::Result<Outcome> {
    let (recorded, started) = (crate::cli::metrics::command_labels(&command, &ctx.g), cairn::tree::Time::now());
    let result = dispatch(ctx, command);
    if let Some(r) = recorded {
        crate::cli::metrics::finish(ctx, r, started, &result);
    }
    result
}

fn dispatch(ctx: &Ctx, command: Command) -> anyhow::Result<Outcome> {
    use crate::cli::alloc::{self, Policy};
    alloc::set(match command {
        Command::Backup(_) | Command::Dump(_) | Command::Check(_) | Command::Copy(_) | Command::Run(_) => {
            Policy::Streaming
        }
        _ => Policy::Default,
    });
    match command {
        Command::Init(a) => init::run(ctx, a),
        Command::Key(a) => key::run(ctx, a),
        Command::Backup(a) => backup::run(ctx, a),
        Command::Snapshots(a) => snapshots::run(ctx, a),
        Command::Ls(a) => ls::run(ctx, a),
        Command::Restore(a) => restore::run(ctx, a),
        Command::Dump(a) => dump::run(ctx, a),
        Command::Diff(a) => diff::run(ctx, a),
        Command::Find(a) => find::run(ctx, a),
        Command::Stats(a) => stats::run(ctx, a),
        Command::Forget(a) => forget::run(ctx, a),
        Command::Prune(a) => prune::run(ctx, &a.opts, a.dry_run, None),
        Command::Check(a) => check::run(ctx, a),
        Command::Repair(a) => repair::run(ctx, a),
        Command::Copy(a) => copy::run(ctx, a),
        Command::Ledger(c) => ledger::run(ctx, c),
        Command::Cat(a) => cat::run(ctx, a),
        Command::Completion(a) => completion::completion(a),
        Command::Man(a) => completion::man(a),
        Command::Status(a) => status::run(ctx, a),
        Command::Run(a) => run::run(ctx, a),
        Command::Config(super::args::ConfigCommand::Check) => config::check(ctx),
        Command::Tag(a) => tag::run(ctx, a),
        Command::Mount(a) => mount::run(ctx, a),
        Command::Drill(a) => drill::run(ctx, a),
        Command::Report(a) => report::run(ctx, a),
        Command::Rewrite(a) => rewrite::run(ctx, a),
        Command::Serve(a) => serve::run(ctx, a),
    }
}

/// A report with the run's `dry_run` flag beside its fields (`repair index`, `copy`).
#[derive(serde::Serialize)]
pub struct WithDryRun<'a, T> {
    /// True when nothing was changed.
    pub dry_run: bool,
    /// The report.
    #[serde(flatten)]
    pub report: &'a T,
}
