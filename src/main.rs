//! The `cairn` command: parses the command line, sets up logging and signals, runs the command
//! (`cli/`) and turns its outcome into the documented exit code (docs/cli-contract.md, "Exit
//! codes"). Everything else lives in `cli/`.

mod cli;

use cairn::error::exit;
use clap::Parser;
use cli::{args::Cli, CliError, Outcome};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The one map from an error to an exit code: usage errors (clap's and the CLI's own) are 2, the
/// library's errors map as [`cairn::Error::exit_code`] says, anything else is 1.
fn exit_code(e: &anyhow::Error) -> i32 {
    for cause in e.chain() {
        if cause.downcast_ref::<clap::Error>().is_some() {
            return exit::USAGE;
        }
        if let Some(c) = cause.downcast_ref::<CliError>() {
            return match c {
                CliError::Usage(_) => exit::USAGE,
                CliError::Key(_) => exit::KEY,
                CliError::Unreachable(_) => exit::REPO,
            };
        }
        if let Some(l) = cause.downcast_ref::<cairn::Error>() {
            return l.exit_code();
        }
    }
    exit::ERROR
}

/// `cairn: message: cause: ...`, each cause once.
fn message(e: &anyhow::Error) -> String {
    let mut msg = format!("{e}");
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    if let Some(hint) = override_hint(e) {
        msg.push_str("; ");
        msg.push_str(hint);
    }
    msg
}

/// The flag that lifts a refusal of the library, named by its typed override.
fn override_hint(e: &anyhow::Error) -> Option<&'static str> {
    use cairn::error::Override;
    e.chain().find_map(|c| match c.downcast_ref::<cairn::Error>()?.lifted_by()? {
        Override::Overwrite => Some("use --overwrite to replace it"),
        Override::Force => Some("--force overrides"),
        Override::AllowEmpty => Some("use --allow-empty if that is intended"),
        Override::TreeMemory => Some("--max-tree-memory SIZE raises the limit"),
        _ => None,
    })
}

/// True when the command line that failed to parse names the `status` command.
fn is_status() -> bool {
    use clap::CommandFactory;
    Cli::command()
        .ignore_errors(true)
        .try_get_matches_from(std::env::args_os())
        .is_ok_and(|m| m.subcommand_name() == Some("status"))
}

fn init_logging(quiet: bool) {
    let default = if quiet { "error" } else { "warn" };
    let mut filter = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // The request-signing crates log credentials (a provider's Debug form, keys in the clear) at
    // debug and warn level: never let them through, whatever CAIRN_LOG says.
    for target in ["reqsign_core", "reqsign_aws_core", "reqsign_aws_v4", "reqsign_google", "reqsign_azure_storage"] {
        if let Ok(d) = format!("{target}=off").parse() {
            filter = filter.add_directive(d);
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}

fn main() {
    // Buffers of 1 MiB and more (chunks, pack reads, pack buffers) always come from mmap and go
    // back to the system when freed, and at most two malloc arenas hold the rest. Otherwise glibc
    // raises its mmap threshold after the first such free and keeps later ones in per-thread
    // arenas: a restore of the 1.9 GB benchmark corpus peaked at 190 MB instead of 140 MB (backup
    // 159 MB instead of 137 MB). It costs wall time (about 10 % on restore, more on streams):
    // benches/README.md has both runs.
    // SAFETY: mallopt only tunes the allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    // SAFETY: still one thread; nothing has read the environment yet.
    unsafe { cli::secrets::take_from_environment() };
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not errors; `status` keeps the monitoring-plugin codes (3: UNKNOWN).
            let code = if !e.use_stderr() {
                exit::OK
            } else if is_status() {
                cairn::status::Verdict::Unknown.exit_code()
            } else {
                exit_code(&anyhow::Error::new(e))
            };
            std::process::exit(code);
        }
    };
    init_logging(cli.global.quiet);
    if let Err(e) = cli::disable_core_dumps() {
        eprintln!("cairn: warning: core dumps could not be disabled ({e}): a crash could write keys to disk");
    }
    let cancel = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while the first is being handled ends the process at once.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, exit::INTERRUPTED, cancel.clone());
        let _ = signal_hook::flag::register(sig, cancel.clone());
    }
    let code = match cli::run(cli, cancel.clone()) {
        Ok(Outcome::Done) => exit::OK,
        Ok(Outcome::Partial) => exit::PARTIAL,
        Ok(Outcome::Status(code)) => code,
        Ok(Outcome::OverRto) => exit::OVER_RTO,
        Err(e) => {
            eprintln!("cairn: {}", message(&e));
            if cancel.load(Ordering::Relaxed) {
                exit::INTERRUPTED
            } else {
                exit_code(&e)
            }
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}
