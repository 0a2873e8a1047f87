//! The `cairn` command line (binary only; the library never sees it): [`args`] is the clap
//! definition, [`values`] its typed value parsers, [`open`] finds the password and opens the repository, [`output`]
//! is the one printer, [`profile`] reads job profiles (docs/jobs.md), and `cmd/` holds one file per command, each turning its arguments into
//! library options, calling the library and printing the typed result. The contract it keeps is
//! `docs/cli-contract.md`.

pub mod alloc;
pub mod args;
pub mod args_backup;
pub mod args_drill;
pub mod args_inspect;
pub mod args_jobs;
pub mod args_ledger;
pub mod args_report;
pub mod args_rewrite;
pub mod args_serve;
pub mod args_status;
pub mod args_tagmount;
mod cmd;
pub mod filter_args;
pub mod metrics;
pub mod open;
pub mod output;
pub mod profile;
pub mod secret_file;
pub mod secrets;
pub mod serve;
pub mod values;

use args::{Cli, Global};
use output::Printer;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// A failure the CLI itself finds (the library's are [`cairn::Error`]). `main`'s one exit-code map
/// reads it.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad flags or arguments that clap cannot see alone (a combination, a glob, a policy file).
    #[error("{0}")]
    Usage(String),
    /// No password could be had, or the key in use cannot do what the command needs.
    #[error("{0}")]
    Key(String),
    /// The repository's storage cannot be reached.
    #[error("{0}")]
    Unreachable(String),
}

/// How a command that did not fail ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything was done.
    Done,
    /// A backup made its snapshot, but some files could not be read.
    Partial,
    /// `status`: the monitoring-plugin exit code it chose (0 to 3).
    Status(i32),
    /// A drill passed every check but took longer than its RTO (exit 4).
    OverRto,
}

/// What every command gets: the global options, the printer and the cancel flag the signal
/// handlers set.
pub struct Ctx {
    /// The global options.
    pub g: Global,
    /// The one printer.
    pub out: Printer,
    /// Set by SIGINT/SIGTERM.
    pub cancel: Arc<AtomicBool>,
    /// What the command measured, for `--metrics-file`.
    pub metrics: metrics::Recorder,
}

/// Runs the parsed command line.
pub fn run(cli: Cli, cancel: Arc<AtomicBool>) -> anyhow::Result<Outcome> {
    let ctx =
        Ctx { out: Printer::new(&cli.global), metrics: metrics::Recorder::new(&cli.global), g: cli.global, cancel };
    cmd::run(&ctx, cli.command)
}

/// Keeps key material out of core files and away from other processes of the same user: the
/// process is made non-dumpable (`PR_SET_DUMPABLE` 0: no core file, no ptrace attach, `/proc`
/// entries owned by root) and its core file size limit set to 0. Called first thing in `main`,
/// before any password or key is read (README "Security model").
pub fn disable_core_dumps() -> std::io::Result<()> {
    let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: setrlimit reads a valid rlimit; prctl with PR_SET_DUMPABLE takes plain integers.
    unsafe {
        if libc::setrlimit(libc::RLIMIT_CORE, &zero) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
