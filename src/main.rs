//! The `cairn` command: parses arguments, finds the password, drives the library's operations and
//! owns every byte of output (progress bars on a terminal, `--json` for scripts, quiet under cron).
//! The contract it keeps is `docs/cli-contract.md`; the exit codes are [`cairn::error::exit`].

use anyhow::{anyhow, bail, Context};
use cairn::backend::{self, DynBackend};
use cairn::backup::{self, BackupOptions, BackupResult, BackupSource};
use cairn::compress::Compression;
use cairn::error::{exit, Error};
use cairn::filter::{self, Patterns};
use cairn::id::{BlobId, BlobKind, IndexId, SnapshotId};
use cairn::keyfile::{self, KeyKind};
use cairn::repository::{InitOptions, OpenOptions, ReadRepository, Repository};
use cairn::restore::{self, RestoreOptions};
use cairn::snapshot::{Snapshot, Summary};
use cairn::tree::{Node, NodeKind, Time};
use cairn::units::human_bytes;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};
use std::io::{IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

// ---------------------------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------------------------

/// cairn: deduplicating, encrypted backups to local disk and object storage.
#[derive(Parser)]
#[command(name = "cairn", version, about, long_about = None, max_term_width = 110)]
#[command(after_help = "Exit codes: 0 success, 1 error, 2 usage, 3 partial backup, 10 no repository, \
11 locked, 12 wrong password, 130 interrupted.\nDocumentation: README.md and docs/cli-contract.md.")]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Global {
    /// Repository: a path, file:///path, s3://BUCKET/PREFIX, sftp://[USER@]HOST[:PORT]/PATH,
    /// webdav(s)://HOST[:PORT]/PATH, gcs://BUCKET/PREFIX, azblob://CONTAINER/PREFIX or memory://NAME
    #[arg(short = 'r', long = "repo", env = "CAIRN_REPOSITORY", global = true, value_name = "URL")]
    repo: Option<String>,
    /// Backend option (repeatable), e.g. -o s3.endpoint=http://127.0.0.1:9000; overrides
    /// CAIRN_OPTION_<KEY> variables, which override the options file
    #[arg(short = 'o', long = "option", global = true, value_name = "KEY=VALUE")]
    options: Vec<String>,
    /// TOML file of backend options (key = "value")
    #[arg(long, env = "CAIRN_OPTIONS_FILE", global = true, value_name = "FILE")]
    options_file: Option<PathBuf>,
    /// Read the password from the first line of this file
    #[arg(long, env = "CAIRN_PASSWORD_FILE", global = true, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Run this shell command and use the first line of its output as the password
    #[arg(long, env = "CAIRN_PASSWORD_COMMAND", global = true, value_name = "CMD")]
    password_command: Option<String>,
    /// Local cache directory [default: $XDG_CACHE_HOME/cairn or ~/.cache/cairn]
    #[arg(long, env = "CAIRN_CACHE_DIR", global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Use no persistent local cache (slower; nothing is written under the cache directory)
    #[arg(long, global = true)]
    no_cache: bool,
    /// Print one JSON document on stdout and nothing else there
    #[arg(long, global = true)]
    json: bool,
    /// Print only errors
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Print more: a summary even when not on a terminal, and each file as it is processed (-vv)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new repository
    Init(InitArgs),
    /// Manage the passwords (key files) of a repository
    #[command(subcommand)]
    Key(KeyCommand),
    /// Back up files and directories, standard input or a command's output
    Backup(BackupArgs),
    /// List snapshots
    Snapshots(SnapshotFilter),
    /// List the contents of a snapshot
    Ls(LsArgs),
    /// Restore a snapshot (or part of it) into a directory
    Restore(RestoreArgs),
    /// Write one file of a snapshot to standard output
    Dump(DumpArgs),
    /// Remove snapshots by a retention policy (the data goes with a later prune)
    Forget(ForgetArgs),
    /// Delete the data no snapshot needs, in two phases: mark now, sweep in a later run after a grace period
    Prune(PruneCmdArgs),
    /// Verify the repository: structure always, data on request
    Check(CheckArgs),
    /// Repair what check reports (adds objects; deletes only snapshots replaced, with `repair snapshots --forget`)
    #[command(subcommand)]
    Repair(RepairCommand),
    /// Copy snapshots from another repository into this one, storing only what it lacks
    Copy(CopyArgs),
    /// Print a repository object (for debugging)
    Cat(CatArgs),
}

#[derive(Subcommand)]
enum RepairCommand {
    /// Write index files, rebuilt from pack headers, for stored packs no readable index describes
    Index {
        /// Report what would be indexed; write nothing
        #[arg(short = 'n', long)]
        dry_run: bool,
        /// Also index packs younger than an hour (they may belong to a backup still running)
        #[arg(long)]
        include_recent: bool,
    },
    /// Write a new snapshot for each snapshot whose trees reference lost data, keeping every intact item
    #[command(after_help = "Without --read-data nothing under data/ is read: a data blob is lost when no index file \
names it or none of its packs is in storage. The new snapshot is tagged `repaired`, `repaired-from:ID` and \
`lost:PATH` per damaged item (format-spec §8.2); the original stays unless --forget.")]
    Snapshots {
        /// Report the damage and the plan; write and remove nothing
        #[arg(short = 'n', long)]
        dry_run: bool,
        /// Also read every referenced data blob and count the ones that do not verify as lost
        #[arg(long)]
        read_data: bool,
        /// Remove each damaged original once its repaired snapshot is written
        #[arg(long)]
        forget: bool,
    },
}

#[derive(Args)]
#[command(after_help = "Without --read-data* nothing under data/ is read (it may sit in an archive tier): data packs \
are checked by listing and size against the index. Tree packs are always read and compared with the index.")]
struct CheckArgs {
    /// Read every data pack, open every blob and recompute its id
    #[arg(long, conflicts_with_all = ["read_data_subset", "read_data_rotation"])]
    read_data: bool,
    /// Read a share of the data packs: N/M (part N of M) or P% (e.g. 1/30, 10%)
    #[arg(long, value_name = "SHARE", conflicts_with = "read_data_rotation")]
    read_data_subset: Option<String>,
    /// Read today's share of DAYS, so that every data pack is read within DAYS days of daily runs
    #[arg(long, value_name = "DAYS")]
    read_data_rotation: Option<u64>,
}

#[derive(Args)]
#[command(after_help = "A count is a number or `unlimited`; a duration is like 7y, 90d, 36h or 1y6m \
(y years, m months, w weeks, d days, h hours), counted back from the newest snapshot of the group. \
Calendar buckets (days, weeks, ...) are taken in --tz (default: the system's time zone). \
See docs/retention.md for the policy file.")]
struct ForgetArgs {
    /// Keep the newest N snapshots
    #[arg(long, value_name = "N")]
    keep_last: Option<String>,
    /// Keep the newest snapshot of each of the last N hours that have one
    #[arg(long, value_name = "N")]
    keep_hourly: Option<String>,
    /// ... of each of the last N days
    #[arg(long, value_name = "N")]
    keep_daily: Option<String>,
    /// ... of each of the last N ISO weeks
    #[arg(long, value_name = "N")]
    keep_weekly: Option<String>,
    /// ... of each of the last N months
    #[arg(long, value_name = "N")]
    keep_monthly: Option<String>,
    /// ... of each of the last N years
    #[arg(long, value_name = "N")]
    keep_yearly: Option<String>,
    /// Keep every snapshot within DURATION of the newest one
    #[arg(long, value_name = "DURATION")]
    keep_within: Option<String>,
    /// Keep the newest snapshot of every hour within DURATION
    #[arg(long, value_name = "DURATION")]
    keep_within_hourly: Option<String>,
    /// ... of every day within DURATION
    #[arg(long, value_name = "DURATION")]
    keep_within_daily: Option<String>,
    /// ... of every week within DURATION
    #[arg(long, value_name = "DURATION")]
    keep_within_weekly: Option<String>,
    /// ... of every month within DURATION
    #[arg(long, value_name = "DURATION")]
    keep_within_monthly: Option<String>,
    /// ... of every year within DURATION
    #[arg(long, value_name = "DURATION")]
    keep_within_yearly: Option<String>,
    /// Keep every snapshot with this tag (repeatable)
    #[arg(long = "keep-tag", value_name = "TAG")]
    keep_tags: Vec<String>,
    /// Apply the classes of a policy file (TOML) instead of --keep-* flags
    #[arg(long, value_name = "FILE", conflicts_with_all = ["keep_last", "keep_hourly", "keep_daily", "keep_weekly",
        "keep_monthly", "keep_yearly", "keep_within", "keep_within_hourly", "keep_within_daily",
        "keep_within_weekly", "keep_within_monthly", "keep_within_yearly", "keep_tags"])]
    policy: Option<PathBuf>,
    /// Group snapshots by these (comma-separated: host, paths, tags) before applying the policy
    #[arg(long, default_value = "host,paths", value_name = "LIST")]
    group_by: String,
    /// Time zone for calendar buckets (e.g. Europe/Berlin, UTC) [default: the system's]
    #[arg(long, value_name = "ZONE")]
    tz: Option<String>,
    /// Print what would be kept and removed; remove nothing
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Allow removing every snapshot of a group
    #[arg(long)]
    allow_empty: bool,
    /// Run prune right after (with the prune options below)
    #[arg(long)]
    prune: bool,
    #[command(flatten)]
    prune_opts: PruneArgs,
    #[command(flatten)]
    filter: SnapshotFilter,
}

#[derive(Args)]
#[command(after_help = "Prune works in two phases (format-spec §10.6). Each run first sweeps the marks that are \
due: their grace period has passed and every backup that was running when they were made has ended; packs a \
snapshot still needs are rescued, the rest are deleted. Then, when no mark is pending, it marks: packs no \
snapshot uses are condemned, and packs with more than --max-unused unused bytes are repacked first. Backups may \
run at the same time; a backup that needs a condemned blob stores it again. Two prunes never run at once.")]
struct PruneCmdArgs {
    /// Print what would be repacked, marked and deleted, and how much space returns; change nothing
    #[arg(short = 'n', long)]
    dry_run: bool,
    #[command(flatten)]
    opts: PruneArgs,
}

#[derive(Args)]
struct PruneArgs {
    /// Repack a pack when more than this share of it is unused (e.g. 5%, 0%, 100% = never)
    #[arg(long, default_value = "5%", value_name = "PERCENT")]
    max_unused: String,
    /// Repack at most this many bytes of packs per run (e.g. 500M, 2G, unlimited)
    #[arg(long, default_value = "unlimited", value_name = "SIZE")]
    max_repack_size: String,
    /// Never read a pack: condemn only packs nothing uses (for data/ in an archive tier)
    #[arg(long)]
    no_repack: bool,
    /// How long a mark waits before its sweep (e.g. 24h, 7d, 0); below 24h is warned about
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    grace: String,
    /// Go on past the safety stops: listing and index disagree, or more than half the data would go
    #[arg(long)]
    force: bool,
    /// Take the maintenance lock although another prune seems to hold it (after a crash on another host; only
    /// when you are sure no other prune runs)
    #[arg(long)]
    break_lock: bool,
}

#[derive(Args)]
struct InitArgs {
    /// Default zstd level of the repository (0 = no compression)
    #[arg(long, default_value_t = 3, value_name = "LEVEL")]
    compression_level: i32,
    /// Share this repository's content-id and chunker keys and chunker parameters (nothing else), so that `copy`
    /// from it moves blobs without cutting files again
    #[arg(long, value_name = "URL")]
    copy_chunker_from: Option<String>,
    #[command(flatten)]
    from: FromRepoArgs,
}

/// How to open the other repository of `copy` and `init --copy-chunker-from`.
#[derive(Args, Clone)]
struct FromRepoArgs {
    /// Password file of the source repository (else CAIRN_FROM_PASSWORD, else a prompt)
    #[arg(long, env = "CAIRN_FROM_PASSWORD_FILE", value_name = "FILE")]
    from_password_file: Option<PathBuf>,
    /// Command printing the password of the source repository
    #[arg(long, env = "CAIRN_FROM_PASSWORD_COMMAND", value_name = "CMD")]
    from_password_command: Option<String>,
}

#[derive(Args)]
#[command(after_help = "The destination is --to-repo (default: -r / CAIRN_REPOSITORY) with the usual password \
sources; the source's password comes from --from-password-file, --from-password-command, CAIRN_FROM_PASSWORD or a \
prompt. A snapshot whose time, host and paths the destination already has is skipped, so running copy twice copies \
nothing the second time.")]
struct CopyArgs {
    /// The repository to copy from
    #[arg(long, value_name = "URL")]
    from_repo: String,
    /// The repository to copy into [default: -r / CAIRN_REPOSITORY]
    #[arg(long, value_name = "URL")]
    to_repo: Option<String>,
    #[command(flatten)]
    from: FromRepoArgs,
    /// Say what would be copied and how much would be stored; store nothing
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Snapshots to copy (ids, unique prefixes or `latest`) [default: all, after the filters]
    snapshots: Vec<String>,
    #[command(flatten)]
    filter: SnapshotFilter,
}

#[derive(Subcommand)]
enum KeyCommand {
    /// List the key files
    List,
    /// Add a password (a new key file)
    Add {
        /// Read the new password from this file (else CAIRN_NEW_PASSWORD, else a prompt)
        #[arg(long, value_name = "FILE")]
        new_password_file: Option<PathBuf>,
        /// The new key can add backups but cannot read what other runs wrote
        #[arg(long)]
        write_only: bool,
    },
    /// Remove a key file (never the last full key)
    Remove {
        /// Key id or unique prefix
        id: String,
    },
    /// Change the password of the key in use (adds a new key file, removes the old one)
    Passwd {
        /// Read the new password from this file (else CAIRN_NEW_PASSWORD, else a prompt)
        #[arg(long, value_name = "FILE")]
        new_password_file: Option<PathBuf>,
    },
}

#[derive(Args, Clone, Default)]
struct SnapshotFilter {
    /// Only snapshots of this host
    #[arg(long)]
    host: Option<String>,
    /// Only snapshots with this tag (repeat: all must match)
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Only snapshots that include this path
    #[arg(long = "path", value_name = "PATH")]
    paths: Vec<PathBuf>,
}

#[derive(Args)]
struct BackupArgs {
    /// Files and directories to back up
    paths: Vec<PathBuf>,
    /// Read the paths to back up from this file (one per line; # starts a comment)
    #[arg(long, value_name = "FILE")]
    files_from: Vec<PathBuf>,
    /// Tag the snapshot (repeatable)
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Host name to record [default: this machine's]
    #[arg(long)]
    host: Option<String>,
    /// Record the snapshot at this time (RFC 3339 or YYYY-MM-DD[ HH:MM[:SS]] UTC)
    #[arg(long, value_name = "TIME")]
    time: Option<String>,
    /// Exclude paths matching GLOB (repeatable; a name pattern like *.tmp matches at any depth)
    #[arg(long = "exclude", value_name = "GLOB")]
    excludes: Vec<String>,
    /// Like --exclude, ignoring case
    #[arg(long = "iexclude", value_name = "GLOB")]
    iexcludes: Vec<String>,
    /// Read exclude patterns from this file (one per line)
    #[arg(long, value_name = "FILE")]
    exclude_file: Vec<PathBuf>,
    /// Read case-insensitive exclude patterns from this file
    #[arg(long, value_name = "FILE")]
    iexclude_file: Vec<PathBuf>,
    /// Skip directories holding a valid CACHEDIR.TAG
    #[arg(long)]
    exclude_caches: bool,
    /// Skip directories that contain a file of this name (repeatable)
    #[arg(long, value_name = "NAME")]
    exclude_if_present: Vec<String>,
    /// Skip files larger than SIZE (e.g. 10M, 1G)
    #[arg(long, value_name = "SIZE")]
    exclude_larger_than: Option<String>,
    /// Stay on the file system of each given path
    #[arg(short = 'x', long)]
    one_file_system: bool,
    /// auto, off, fast, max or a zstd level 1..22 [default: the repository's]
    #[arg(long, value_name = "MODE")]
    compression: Option<String>,
    /// Read and count everything, store nothing
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Compare against this snapshot instead of the newest of the same host and paths
    #[arg(long, value_name = "SNAPSHOT")]
    parent: Option<String>,
    /// Read every file again, even when the files cache says it is unchanged
    #[arg(long)]
    force: bool,
    /// Back up standard input as one file (name it with --stdin-filename)
    #[arg(long, conflicts_with = "command")]
    stdin: bool,
    /// Run CMD with sh -c and back up its standard output; no snapshot if it fails
    #[arg(long, value_name = "CMD")]
    command: Option<String>,
    /// File name of a --stdin or --command stream in the snapshot
    #[arg(long, value_name = "NAME")]
    stdin_filename: Option<String>,
    /// Do not verify blobs before upload (faster; not recommended)
    #[arg(long)]
    no_verify: bool,
}

#[derive(Args)]
struct LsArgs {
    /// SNAPSHOT or SNAPSHOT:PATH
    snapshot: String,
    /// Long listing: type, mode, owner, size, mtime
    #[arg(short, long)]
    long: bool,
    #[command(flatten)]
    filter: SnapshotFilter,
}

#[derive(Args)]
struct RestoreArgs {
    /// Snapshot id, prefix or `latest` (may be omitted with --as-of); SNAPSHOT:PATH restores a subtree
    snapshot: Option<String>,
    /// Directory to restore into (snapshot paths land below it)
    #[arg(short, long, value_name = "DIR")]
    target: PathBuf,
    /// Restore only paths matching GLOB (and what lies below them)
    #[arg(long = "include", value_name = "GLOB")]
    includes: Vec<String>,
    /// Skip paths matching GLOB
    #[arg(long = "exclude", value_name = "GLOB")]
    excludes: Vec<String>,
    /// Restore the newest snapshot taken at or before TIME (per host and paths)
    #[arg(long, value_name = "TIME")]
    as_of: Option<String>,
    /// Replace existing files
    #[arg(long)]
    overwrite: bool,
    /// Read back every restored file and compare it with the snapshot
    #[arg(long)]
    verify: bool,
    /// Print the plan (what would be written, which packs read) and write nothing
    #[arg(short = 'n', long)]
    dry_run: bool,
    #[command(flatten)]
    filter: SnapshotFilter,
}

#[derive(Args)]
struct DumpArgs {
    /// Snapshot id, prefix or `latest`
    snapshot: String,
    /// Path of the file in the snapshot (a stream's name, or an absolute path)
    path: PathBuf,
    #[command(flatten)]
    filter: SnapshotFilter,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CatKind {
    Config,
    Snapshot,
    Tree,
    Index,
    Key,
    Blob,
}

#[derive(Args)]
struct CatArgs {
    /// What to print
    #[arg(value_enum)]
    kind: CatKind,
    /// Its id (not needed for config)
    id: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Errors and exit codes
// ---------------------------------------------------------------------------------------------

/// A CLI-level failure with its exit code.
#[derive(Debug)]
struct Exit {
    code: i32,
    message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for Exit {}

fn fail(code: i32, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Exit { code, message: message.into() })
}

fn exit_code(e: &anyhow::Error) -> i32 {
    for cause in e.chain() {
        if let Some(x) = cause.downcast_ref::<Exit>() {
            return x.code;
        }
        if let Some(x) = cause.downcast_ref::<Error>() {
            return x.exit_code();
        }
    }
    exit::ERROR
}

/// The flag that lifts a library refusal, said after its message.
fn override_hint(e: &anyhow::Error) -> Option<&'static str> {
    use cairn::error::Override;
    e.chain().find_map(|c| match c.downcast_ref::<Error>()?.lifted_by()? {
        Override::Overwrite => Some("use --overwrite to replace it"),
        Override::Force => Some("--force overrides"),
        Override::AllowEmpty => Some("use --allow-empty if that is intended"),
        _ => None,
    })
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

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
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    init_logging(&cli.global);
    let cancel = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while the first is being handled ends the process at once.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, exit::INTERRUPTED, cancel.clone());
        let _ = signal_hook::flag::register(sig, cancel.clone());
    }
    let code = match run(cli, cancel.clone()) {
        Ok(code) => code,
        Err(e) => {
            let code = if cancel.load(Ordering::Relaxed) || INTERRUPTED.load(Ordering::Relaxed) {
                exit::INTERRUPTED
            } else {
                exit_code(&e)
            };
            let mut msg = format!("{e}");
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg.push_str(": ");
                    msg.push_str(&c);
                }
            }
            if let Some(hint) = override_hint(&e) {
                msg.push_str(&format!(" ({hint})"));
            }
            eprintln!("cairn: {msg}");
            code
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

fn init_logging(g: &Global) {
    let default = if g.quiet { "error" } else { "warn" };
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

fn run(cli: Cli, cancel: Arc<AtomicBool>) -> anyhow::Result<i32> {
    let g = cli.global;
    match cli.command {
        Command::Init(a) => cmd_init(&g, a),
        Command::Key(k) => cmd_key(&g, k),
        Command::Backup(a) => cmd_backup(&g, a, cancel),
        Command::Snapshots(f) => cmd_snapshots(&g, f),
        Command::Ls(a) => cmd_ls(&g, a),
        Command::Restore(a) => cmd_restore(&g, a, cancel),
        Command::Dump(a) => cmd_dump(&g, a),
        Command::Forget(a) => cmd_forget(&g, a, cancel),
        Command::Prune(a) => cmd_prune(&g, &a.opts, a.dry_run, None, cancel),
        Command::Check(a) => cmd_check(&g, a),
        Command::Repair(RepairCommand::Index { dry_run, include_recent }) => {
            cmd_repair_index(&g, dry_run, include_recent)
        }
        Command::Repair(RepairCommand::Snapshots { dry_run, read_data, forget }) => {
            cmd_repair_snapshots(&g, cairn::repair::RepairSnapshotsOptions { dry_run, read_data, forget })
        }
        Command::Copy(a) => cmd_copy(&g, a),
        Command::Cat(a) => cmd_cat(&g, a),
    }
}

// ---------------------------------------------------------------------------------------------
// Passwords and opening
// ---------------------------------------------------------------------------------------------

fn first_line(bytes: &[u8]) -> Zeroizing<Vec<u8>> {
    let end = bytes.iter().position(|&b| b == b'\n').unwrap_or(bytes.len());
    let mut line = &bytes[..end];
    if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    Zeroizing::new(line.to_vec())
}

fn run_password_command(cmd: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("password command `{cmd}` could not start"))?;
    let out_bytes = Zeroizing::new(out.stdout);
    if !out.status.success() {
        return Err(fail(exit::KEY, format!("password command `{cmd}` failed: {}", out.status)));
    }
    Ok(first_line(&out_bytes))
}

fn prompt(label: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    match rpassword::prompt_password(label) {
        Ok(p) => Ok(Zeroizing::new(p.into_bytes())),
        Err(_) => Err(fail(
            exit::KEY,
            "no password given and no terminal to ask on: set CAIRN_PASSWORD, CAIRN_PASSWORD_FILE or \
             CAIRN_PASSWORD_COMMAND (or --password-file / --password-command)",
        )),
    }
}

/// The repository password: --password-file, --password-command, CAIRN_PASSWORD, then a prompt.
fn password(g: &Global, confirm: bool) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    password_from(g, "CAIRN_PASSWORD", "Repository password: ", confirm)
}

/// The password sources in their documented order: `g`'s file, `g`'s command, the variable `env`,
/// then a prompt with `label`.
fn password_from(g: &Global, env: &str, label: &str, confirm: bool) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    if let Some(f) = &g.password_file {
        let bytes =
            Zeroizing::new(std::fs::read(f).with_context(|| format!("cannot read password file {}", f.display()))?);
        return Ok(first_line(&bytes));
    }
    if let Some(cmd) = &g.password_command {
        return run_password_command(cmd);
    }
    if let Some(p) = std::env::var_os(env) {
        return Ok(Zeroizing::new(p.as_bytes().to_vec()));
    }
    let p = prompt(label)?;
    if confirm {
        let again = prompt("Repeat the password: ")?;
        if *again != *p {
            bail!("the passwords do not match");
        }
    }
    Ok(p)
}

/// A new password for `key add` / `key passwd`: the file, CAIRN_NEW_PASSWORD, or a prompt (twice).
fn new_password(file: Option<&Path>) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let p = if let Some(f) = file {
        let bytes =
            Zeroizing::new(std::fs::read(f).with_context(|| format!("cannot read password file {}", f.display()))?);
        first_line(&bytes)
    } else if let Some(p) = std::env::var_os("CAIRN_NEW_PASSWORD") {
        Zeroizing::new(p.as_bytes().to_vec())
    } else {
        let p = prompt("New password: ")?;
        let again = prompt("Repeat the new password: ")?;
        if *again != *p {
            bail!("the passwords do not match");
        }
        p
    };
    if p.is_empty() {
        bail!("an empty password is not accepted");
    }
    Ok(p)
}

fn open_backend(g: &Global) -> anyhow::Result<DynBackend> {
    let url = g.repo.clone().unwrap_or_default();
    // Only CAIRN_OPTION_* variables are looked at; a non-UTF-8 one is an error, not skipped.
    let mut env = Vec::new();
    for (k, v) in std::env::vars_os() {
        let Some(k) = k.to_str().filter(|k| k.starts_with(backend::options::ENV_PREFIX)) else { continue };
        let v = v.into_string().map_err(|_| fail(exit::USAGE, format!("{k} is not valid UTF-8")))?;
        env.push((k.to_string(), v));
    }
    let usage = |e: Error| match e {
        Error::Usage(m) => fail(exit::USAGE, m),
        other => anyhow::Error::new(other),
    };
    let options = backend::Options::from_sources(&g.options, env, g.options_file.as_deref()).map_err(usage)?;
    backend::open_url_with(&url, &options).map_err(usage)
}

/// The first look at a repository: a storage failure here (an unreachable server, refused
/// credentials) means the repository cannot be reached, which is exit code 10.
fn probe_list(backend: &DynBackend, prefix: &str) -> anyhow::Result<bool> {
    match backend.list(prefix) {
        Ok(v) => Ok(!v.is_empty()),
        Err(e @ Error::Backend { .. }) => Err(fail(exit::REPO, format!("cannot access the repository: {e}"))),
        Err(e) => Err(e.into()),
    }
}

fn open_options(g: &Global) -> OpenOptions {
    OpenOptions { cache_root: g.cache_dir.clone(), no_cache: g.no_cache }
}

fn open_repo(g: &Global) -> anyhow::Result<Repository> {
    open_repo_with(g, "CAIRN_PASSWORD", "Repository password: ")
}

/// [`open_repo`] with the password from `env` or a prompt with `label` after `g`'s password
/// file and command.
fn open_repo_with(g: &Global, env: &str, label: &str) -> anyhow::Result<Repository> {
    let backend = open_backend(g)?;
    // Look before asking for a password: a missing repository is exit 10, not a prompt.
    let location = backend.location();
    if !probe_list(&backend, "config/")? && !probe_list(&backend, "keys/")? {
        return Err(Error::RepoNotFound(location).into());
    }
    let pw = password_from(g, env, label, false)?;
    let repo = Repository::open(backend, &pw, &open_options(g))?;
    if let Some(note) = repo.cache().note() {
        if !g.quiet {
            eprintln!("cairn: {note}");
        }
    }
    Ok(repo)
}

/// Opens the repository for a command that reads snapshots, trees or data: a write-only key is
/// refused here with a clear message instead of failing later on a sealed object.
fn open_reader(g: &Global) -> anyhow::Result<ReadRepository> {
    readable(open_repo(g)?)
}

fn readable(repo: Repository) -> anyhow::Result<ReadRepository> {
    if !repo.keys().can_read() {
        return Err(fail(
            exit::KEY,
            format!(
                "key {} is write-only: it can add backups but cannot read snapshots or data; use a full key",
                repo.key_id().short()
            ),
        ));
    }
    Ok(repo.readable()?)
}

// ---------------------------------------------------------------------------------------------
// Output helpers
// ---------------------------------------------------------------------------------------------

fn print_json(v: &Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

fn chatty(g: &Global) -> bool {
    !g.quiet && !g.json && (g.verbose > 0 || std::io::stdout().is_terminal())
}

fn bars(g: &Global) -> bool {
    !g.quiet && std::io::stderr().is_terminal()
}

fn parse_time(s: &str) -> anyhow::Result<Time> {
    let s = s.trim();
    let bad = || fail(exit::USAGE, format!("{s:?} is not a time (RFC 3339, or YYYY-MM-DD[ HH:MM[:SS]] in UTC)"));
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(Time { secs: t.as_second(), nanos: t.subsec_nanosecond().max(0) as u32 });
    }
    let civil = s
        .parse::<jiff::civil::DateTime>()
        .ok()
        .or_else(|| s.parse::<jiff::civil::Date>().ok().map(|d| d.to_datetime(jiff::civil::Time::midnight())))
        .ok_or_else(bad)?;
    let t = jiff::tz::TimeZone::UTC.to_timestamp(civil).map_err(|_| bad())?;
    Ok(Time { secs: t.as_second(), nanos: t.subsec_nanosecond().max(0) as u32 })
}

fn summary_json(s: &Summary) -> Value {
    json!({
        "files_new": s.files_new,
        "files_changed": s.files_changed,
        "files_unchanged": s.files_unchanged,
        "dirs": s.dirs,
        "other": s.other,
        "bytes_read": s.bytes_read,
        "bytes_processed": s.bytes_processed,
        "blobs_added": s.blobs_added,
        "bytes_added": s.bytes_added,
        "bytes_added_stored": s.bytes_added_stored,
        "errors": s.errors,
        "started": s.started.to_rfc3339(),
        "finished": s.finished.to_rfc3339(),
    })
}

fn snapshot_json(id: &SnapshotId, snap: &Snapshot) -> Value {
    let s = snap.v1();
    json!({
        "id": id.to_hex(),
        "short_id": id.short(),
        "time": s.time.to_rfc3339(),
        "host": s.host,
        "user": s.user,
        "uid": s.uid,
        "gid": s.gid,
        "paths": snap.display_paths(),
        "tags": s.tags,
        "parent": s.parent.map(|p| p.to_hex()),
        "root": s.root.to_hex(),
        "source": s.source.describe(),
        "program": s.program,
        "summary": summary_json(&s.summary),
    })
}

/// Replaces arrays of 32 small integers (ids and keys serialised by serde) with hex strings.
fn hexify(v: Value) -> Value {
    match v {
        Value::Array(a) => {
            if a.len() == 32 && a.iter().all(|x| x.as_u64().is_some_and(|n| n < 256)) {
                let bytes: Vec<u8> = a.iter().map(|x| x.as_u64().unwrap_or(0) as u8).collect();
                Value::String(hex::encode(bytes))
            } else {
                Value::Array(a.into_iter().map(hexify).collect())
            }
        }
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, hexify(v))).collect()),
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// Snapshot selection
// ---------------------------------------------------------------------------------------------

fn abs_path(p: &Path) -> PathBuf {
    backup::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn matches_filter(snap: &Snapshot, f: &SnapshotFilter) -> bool {
    let s = snap.v1();
    if f.host.as_ref().is_some_and(|h| *h != s.host) {
        return false;
    }
    if !f.tags.iter().all(|t| s.tags.contains(t)) {
        return false;
    }
    f.paths.iter().all(|p| {
        let want = abs_path(p);
        s.paths.iter().any(|sp| sp.as_slice() == want.as_os_str().as_bytes())
    })
}

fn filtered(repo: &ReadRepository, f: &SnapshotFilter) -> anyhow::Result<Vec<(SnapshotId, Snapshot)>> {
    Ok(repo.list_snapshots()?.into_iter().filter(|(_, s)| matches_filter(s, f)).collect())
}

/// Resolves a SNAPSHOT argument (`latest` honours the filter).
fn select(repo: &ReadRepository, spec: &str, f: &SnapshotFilter) -> anyhow::Result<(SnapshotId, Snapshot)> {
    let candidates = if spec == "latest" { filtered(repo, f)? } else { Vec::new() };
    let id = repo.resolve_snapshot(spec, &candidates)?;
    if let Some((_, s)) = candidates.iter().find(|(i, _)| *i == id) {
        return Ok((id, s.clone()));
    }
    let snap = repo.load_snapshot(&id)?;
    Ok((id, snap))
}

/// Splits `SNAPSHOT:PATH`; a relative PATH is taken from the root (`/`).
fn split_spec(spec: &str) -> (&str, Option<PathBuf>) {
    let (s, p) = cairn::browse::split_spec(spec);
    (s, p.map(|p| if p.is_absolute() { p } else { Path::new("/").join(p) }))
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

fn cmd_init(g: &Global, a: InitArgs) -> anyhow::Result<i32> {
    let backend = open_backend(g)?;
    if !(0..=22).contains(&a.compression_level) {
        return Err(fail(exit::USAGE, "--compression-level must be 0..22"));
    }
    if probe_list(&backend, "config/")? || probe_list(&backend, "keys/")? {
        bail!("{}: a repository already exists here", backend.location());
    }
    let pw = password(g, true)?;
    if pw.is_empty() {
        bail!("an empty password is not accepted");
    }
    let mut init = InitOptions { compression_level: a.compression_level, ..InitOptions::default() };
    if let Some(url) = &a.copy_chunker_from {
        let src = open_from(g, url, &a.from)?;
        init.chunker = src.config().v1().chunker;
        init.chunker_keys_from = Some(src.keys().clone());
    }
    let repo = Repository::init(backend, &pw, &init, &open_options(g))?;
    let id = repo.keys().repo_id;
    if g.json {
        print_json(&json!({"repository_id": id.to_hex(), "key_id": repo.key_id().to_hex()}))?;
    } else if !g.quiet {
        println!("created cairn repository {} at {}", id.short(), repo.backend().location());
        println!("Keep the password safe: without it the data cannot be read by anyone.");
    }
    Ok(exit::OK)
}

/// Opens the source repository of `copy` / `init --copy-chunker-from` for reading.
fn open_from(g: &Global, url: &str, from: &FromRepoArgs) -> anyhow::Result<ReadRepository> {
    let mut fg = g.clone();
    fg.repo = Some(url.to_string());
    fg.password_file = from.from_password_file.clone();
    fg.password_command = from.from_password_command.clone();
    readable(open_repo_with(&fg, "CAIRN_FROM_PASSWORD", "Password of the source repository: ")?)
}

fn cmd_copy(g: &Global, a: CopyArgs) -> anyhow::Result<i32> {
    let src = open_from(g, &a.from_repo, &a.from)?;
    let mut tg = g.clone();
    if let Some(t) = &a.to_repo {
        tg.repo = Some(t.clone());
    }
    let dst = open_reader(&tg)?;
    let candidates = filtered(&src, &a.filter)?;
    let mut ids = Vec::new();
    for spec in &a.snapshots {
        ids.push(src.resolve_snapshot(spec, &candidates)?);
    }
    if ids.is_empty() {
        ids = candidates.iter().map(|(id, _)| *id).collect();
        if ids.is_empty() {
            if !g.quiet && !g.json {
                println!("no snapshot matches; nothing to copy");
            }
            if g.json {
                print_json(&json!({"dry_run": a.dry_run, "rechunked": false, "snapshots": []}))?;
            }
            return Ok(exit::OK);
        }
    }
    let r = cairn::copy::copy(&src, &dst, &ids, a.dry_run)?;
    if g.json {
        let mut v = serde_json::to_value(&r)?;
        v["dry_run"] = json!(a.dry_run);
        print_json(&hexify(v))?;
        return Ok(exit::OK);
    }
    if !g.quiet {
        if r.rechunked {
            println!(
                "the repositories do not share chunker keys: every file is read and cut again (create the destination with \
                 `cairn init --copy-chunker-from` to avoid this)"
            );
        }
        for c in &r.snapshots {
            match (&c.target, &c.already) {
                (Some(t), _) => println!("copied {} -> {}", c.source.short(), t.short()),
                (None, Some(e)) => println!("skipped {} (already there as {})", c.source.short(), e.short()),
                (None, None) => println!("would copy {}", c.source.short()),
            }
        }
        println!(
            "{} {} blob(s), {}; read {} data blob(s), {}{}",
            if a.dry_run { "would store" } else { "stored" },
            r.blobs_added,
            human_bytes(r.bytes_added),
            r.data_blobs_read,
            human_bytes(r.data_bytes_read),
            if a.dry_run { " (dry run: nothing was stored)" } else { "" }
        );
    }
    Ok(exit::OK)
}

fn cmd_key(g: &Global, k: KeyCommand) -> anyhow::Result<i32> {
    let repo = open_repo(g)?;
    match k {
        KeyCommand::List => {
            let keys = repo.list_keys()?;
            if g.json {
                let v: Vec<Value> = keys
                    .iter()
                    .map(|k| {
                        json!({
                            "id": k.id.to_hex(),
                            "kind": match k.kind { KeyKind::Full => "full", KeyKind::WriteOnly => "write-only" },
                            "created": k.created.to_rfc3339(),
                            "host": k.host,
                            "user": k.user,
                            "current": k.current,
                        })
                    })
                    .collect();
                print_json(&Value::Array(v))?;
            } else {
                println!(" {:<8}  {:<10}  {:<20}  {:<12}  HOST", "ID", "KIND", "CREATED", "USER");
                for k in keys {
                    println!(
                        "{}{:<8}  {:<10}  {:<20}  {:<12}  {}",
                        if k.current { "*" } else { " " },
                        k.id.short(),
                        match k.kind {
                            KeyKind::Full => "full",
                            KeyKind::WriteOnly => "write-only",
                        },
                        k.created.to_rfc3339().chars().take(19).collect::<String>(),
                        k.user,
                        k.host
                    );
                }
            }
        }
        KeyCommand::Add { new_password_file, write_only } => {
            let pw = new_password(new_password_file.as_deref())?;
            let id = repo.add_key(&pw, write_only, cairn::crypto::KdfParams::MINIMUM)?;
            if g.json {
                print_json(&json!({"key_id": id.to_hex(), "write_only": write_only}))?;
            } else if !g.quiet {
                println!("added key {}", id.short());
            }
        }
        KeyCommand::Remove { id } => {
            let id = repo.resolve_key(&id)?;
            repo.remove_key(&id, false)?;
            if g.json {
                print_json(&json!({"removed": id.to_hex()}))?;
            } else if !g.quiet {
                println!("removed key {}", id.short());
            }
        }
        KeyCommand::Passwd { new_password_file } => {
            let pw = new_password(new_password_file.as_deref())?;
            let old = repo.key_id();
            let write_only = !repo.keys().can_read();
            let new = repo.add_key(&pw, write_only, cairn::crypto::KdfParams::MINIMUM)?;
            repo.remove_key(&old, true)?;
            if g.json {
                print_json(&json!({"key_id": new.to_hex(), "removed": old.to_hex()}))?;
            } else if !g.quiet {
                println!("password changed: key {} replaces {}", new.short(), old.short());
            }
        }
    }
    Ok(exit::OK)
}

fn read_lines(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(str::to_string)
        .collect())
}

struct BackupProgress {
    bar: Option<ProgressBar>,
    quiet: bool,
    verbose: u8,
}

impl BackupProgress {
    fn say(&self, line: String) {
        match &self.bar {
            Some(b) => b.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }
}

impl backup::Progress for BackupProgress {
    fn file(&self, path: &Path, _size: u64) {
        if let Some(b) = &self.bar {
            b.set_message(path.display().to_string());
        }
        if self.verbose > 1 {
            self.say(format!("{}", path.display()));
        }
    }
    fn bytes(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }
    fn error(&self, path: &Path, message: &str) {
        self.say(format!("cairn: error: {}: {message}", path.display()));
    }
    fn warning(&self, path: &Path, message: &str) {
        if !self.quiet {
            self.say(format!("cairn: warning: {}: {message}", path.display()));
        }
    }
}

/// Sums the sizes under `paths` in the background, so the progress bar can show an ETA.
fn scan_sizes(paths: Vec<PathBuf>, bar: ProgressBar, cancel: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut total = 0u64;
        let mut stack = paths;
        let mut n = 0u64;
        while let Some(p) = stack.pop() {
            if cancel.load(Ordering::Relaxed) || bar.is_finished() {
                return;
            }
            let Ok(md) = std::fs::symlink_metadata(&p) else { continue };
            if md.is_dir() {
                if let Ok(rd) = std::fs::read_dir(&p) {
                    stack.extend(rd.filter_map(|e| e.ok().map(|e| e.path())));
                }
            } else if md.is_file() {
                total += md.len();
            }
            n += 1;
            if n.is_multiple_of(1000) {
                bar.set_length(total.max(bar.position()));
            }
        }
        bar.set_length(total.max(bar.position()));
    });
}

fn cmd_backup(g: &Global, a: BackupArgs, cancel: Arc<AtomicBool>) -> anyhow::Result<i32> {
    // Validate everything before touching the repository.
    let mut paths = a.paths.clone();
    for f in &a.files_from {
        paths.extend(read_lines(f)?.into_iter().map(PathBuf::from));
    }
    let source_count = usize::from(a.stdin) + usize::from(a.command.is_some());
    if source_count > 0 && !paths.is_empty() {
        return Err(fail(exit::USAGE, "--stdin/--command cannot be combined with paths"));
    }
    if source_count > 0 && a.stdin_filename.is_none() {
        return Err(fail(exit::USAGE, "--stdin and --command need --stdin-filename NAME"));
    }
    if source_count == 0 && paths.is_empty() {
        return Err(fail(exit::USAGE, "nothing to back up: give paths, --files-from, --stdin or --command"));
    }
    let mut pats: Vec<(String, bool)> = Vec::new();
    pats.extend(a.excludes.iter().map(|p| (p.clone(), false)));
    pats.extend(a.iexcludes.iter().map(|p| (p.clone(), true)));
    for f in &a.exclude_file {
        pats.extend(read_lines(f)?.into_iter().map(|p| (p, false)));
    }
    for f in &a.iexclude_file {
        pats.extend(read_lines(f)?.into_iter().map(|p| (p, true)));
    }
    let excludes = Patterns::new(pats.iter().map(|(p, ci)| (p.as_str(), *ci))).map_err(|e| fail(exit::USAGE, e))?;
    let exclude_larger_than = match &a.exclude_larger_than {
        Some(s) => Some(filter::parse_size(s).map_err(|e| fail(exit::USAGE, e))?),
        None => None,
    };
    let compression = match &a.compression {
        Some(c) => Some(c.parse::<Compression>().map_err(|e| fail(exit::USAGE, e))?),
        None => None,
    };
    let time = a.time.as_deref().map(parse_time).transpose()?;

    let repo = open_repo(g)?;
    let parent = match &a.parent {
        Some(p) => Some(select(&repo.readable()?, p, &SnapshotFilter::default())?.0),
        None => None,
    };
    let opts = BackupOptions {
        host: a.host.clone(),
        tags: a.tags.clone(),
        time,
        excludes,
        exclude_if_present: a.exclude_if_present.clone(),
        exclude_caches: a.exclude_caches,
        exclude_larger_than,
        one_file_system: a.one_file_system,
        compression,
        dry_run: a.dry_run,
        force: a.force,
        parent,
        no_verify: a.no_verify,
        threads: 0,
        cancel: Some(cancel.clone()),
    };
    let bar = bars(g).then(|| {
        let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} {elapsed_precise} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {wide_msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b.enable_steady_tick(Duration::from_millis(200));
        b
    });
    let source = if a.stdin {
        BackupSource::Stream { name: a.stdin_filename.clone().unwrap_or_default(), reader: Box::new(std::io::stdin()) }
    } else if let Some(cmd) = &a.command {
        BackupSource::Command { name: a.stdin_filename.clone().unwrap_or_default(), command: cmd.clone() }
    } else {
        if let Some(b) = &bar {
            scan_sizes(paths.iter().map(|p| abs_path(p)).collect(), b.clone(), cancel.clone());
        }
        BackupSource::Paths(paths)
    };
    let progress = BackupProgress { bar: bar.clone(), quiet: g.quiet, verbose: g.verbose };
    let result = backup::backup(&repo, source, &opts, &progress);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let r: BackupResult = result?;
    let s = &r.summary;
    if g.json {
        let errors: Vec<Value> = r.errors.iter().map(|e| json!({"path": e.path, "error": e.message})).collect();
        let warnings: Vec<Value> = r.warnings.iter().map(|e| json!({"path": e.path, "warning": e.message})).collect();
        let mut v = summary_json(s);
        let m = v.as_object_mut().expect("object");
        m.insert("snapshot_id".into(), json!(r.snapshot_id.map(|i| i.to_hex())));
        m.insert("parent".into(), json!(r.parent.map(|i| i.to_hex())));
        m.insert("dry_run".into(), json!(a.dry_run));
        m.insert("errors".into(), Value::Array(errors));
        m.insert("warnings".into(), Value::Array(warnings));
        print_json(&v)?;
    } else if chatty(g) {
        let secs = (s.finished.as_nanos() - s.started.as_nanos()).max(0) as f64 / 1e9;
        println!(
            "files: {} new, {} changed, {} unchanged; {} dirs, {} other",
            s.files_new, s.files_changed, s.files_unchanged, s.dirs, s.other
        );
        println!(
            "read {} of {}; added {} ({} stored) in {} blobs; {:.1} s",
            human_bytes(s.bytes_read),
            human_bytes(s.bytes_processed),
            human_bytes(s.bytes_added),
            human_bytes(s.bytes_added_stored),
            s.blobs_added,
            secs
        );
        match r.snapshot_id {
            Some(id) => println!("snapshot {} saved", id.short()),
            None => println!("dry run: nothing was stored"),
        }
    }
    if !r.errors.is_empty() {
        if !g.quiet {
            eprintln!(
                "cairn: {} path(s) could not be read; the snapshot lacks them (exit {})",
                r.errors.len(),
                exit::PARTIAL
            );
        }
        return Ok(exit::PARTIAL);
    }
    Ok(exit::OK)
}

fn cmd_snapshots(g: &Global, f: SnapshotFilter) -> anyhow::Result<i32> {
    let repo = open_reader(g)?;
    let snaps = filtered(&repo, &f)?;
    if g.json {
        print_json(&Value::Array(snaps.iter().map(|(id, s)| snapshot_json(id, s)).collect()))?;
        return Ok(exit::OK);
    }
    if g.quiet {
        return Ok(exit::OK);
    }
    println!("{:<8}  {:<20}  {:<16}  {:<16}  {:>10}  PATHS", "ID", "TIME", "HOST", "TAGS", "SIZE");
    for (id, s) in &snaps {
        let v = s.v1();
        println!(
            "{:<8}  {:<20}  {:<16}  {:<16}  {:>10}  {}",
            id.short(),
            v.time.to_rfc3339().chars().take(19).collect::<String>().replace('T', " "),
            v.host,
            v.tags.join(","),
            human_bytes(v.summary.bytes_processed),
            s.display_paths().join(" ")
        );
    }
    println!("{} snapshot(s)", snaps.len());
    Ok(exit::OK)
}

fn mode_string(n: &Node) -> String {
    let t = match n.kind {
        NodeKind::File { .. } => '-',
        NodeKind::Dir { .. } => 'd',
        NodeKind::Symlink { .. } => 'l',
        NodeKind::Fifo => 'p',
        NodeKind::CharDevice { .. } => 'c',
        NodeKind::BlockDevice { .. } => 'b',
        NodeKind::Socket => 's',
    };
    let m = n.mode;
    let bit = |mask: u32, c: char| if m & mask != 0 { c } else { '-' };
    let x = |exec: u32, special: u32, set: char, unset: char| match (m & exec != 0, m & special != 0) {
        (true, true) => set,
        (false, true) => unset,
        (true, false) => 'x',
        (false, false) => '-',
    };
    format!(
        "{t}{}{}{}{}{}{}{}{}{}",
        bit(0o400, 'r'),
        bit(0o200, 'w'),
        x(0o100, 0o4000, 's', 'S'),
        bit(0o040, 'r'),
        bit(0o020, 'w'),
        x(0o010, 0o2000, 's', 'S'),
        bit(0o004, 'r'),
        bit(0o002, 'w'),
        x(0o001, 0o1000, 't', 'T'),
    )
}

fn cmd_ls(g: &Global, a: LsArgs) -> anyhow::Result<i32> {
    let repo = open_reader(g)?;
    let (spec, sub) = split_spec(&a.snapshot);
    let (_, snap) = select(&repo, spec, &a.filter)?;
    let root = snap.v1().root;
    let mut entries: Vec<(PathBuf, Node)> = Vec::new();
    let start = match &sub {
        None => root,
        Some(p) => match cairn::browse::find(&repo, &root, p)? {
            None => root,
            Some(n) => match n.kind {
                NodeKind::Dir { tree } => {
                    entries.push((p.clone(), n));
                    tree
                }
                _ => {
                    entries.push((p.clone(), n));
                    BlobId([0; 32])
                }
            },
        },
    };
    let base = sub.clone().unwrap_or_else(|| PathBuf::from("/"));
    if start != BlobId([0; 32]) {
        cairn::browse::walk(&repo, &start, &base, &mut |p, n| {
            entries.push((p.to_path_buf(), n.clone()));
            Ok(true)
        })?;
    }
    if g.json {
        let v: Vec<Value> = entries
            .iter()
            .map(|(p, n)| {
                let mut e = json!({
                    "path": p.to_string_lossy(),
                    "type": n.type_name(),
                    "size": n.size,
                    "mode": n.mode,
                    "uid": n.uid,
                    "gid": n.gid,
                    "user": n.user,
                    "group": n.group,
                    "mtime": n.mtime.to_rfc3339(),
                });
                if p.as_os_str().to_str().is_none() {
                    e["path_bytes"] = json!(hex::encode(p.as_os_str().as_bytes()));
                }
                if let NodeKind::Symlink { target } = &n.kind {
                    e["target"] = json!(String::from_utf8_lossy(target));
                }
                e
            })
            .collect();
        print_json(&Value::Array(v))?;
        return Ok(exit::OK);
    }
    let mut out = std::io::stdout().lock();
    for (p, n) in &entries {
        if a.long {
            let owner = if n.user.is_empty() { n.uid.to_string() } else { n.user.clone() };
            let group = if n.group.is_empty() { n.gid.to_string() } else { n.group.clone() };
            let mut line = format!(
                "{} {:>8} {:>8} {:>12} {} ",
                mode_string(n),
                owner,
                group,
                n.size,
                n.mtime.to_rfc3339().chars().take(19).collect::<String>().replace('T', " ")
            );
            let mut bytes = std::mem::take(&mut line).into_bytes();
            bytes.extend_from_slice(p.as_os_str().as_bytes());
            if let NodeKind::Symlink { target } = &n.kind {
                bytes.extend_from_slice(b" -> ");
                bytes.extend_from_slice(target);
            }
            bytes.push(b'\n');
            out.write_all(&bytes)?;
        } else {
            out.write_all(p.as_os_str().as_bytes())?;
            out.write_all(b"\n")?;
        }
    }
    Ok(exit::OK)
}

/// The newest snapshot at or before `t` for each (host, paths) group that passes the filter.
fn as_of(repo: &ReadRepository, t: Time, f: &SnapshotFilter) -> anyhow::Result<Vec<(SnapshotId, Snapshot)>> {
    type Group = (String, Vec<Vec<u8>>);
    let mut best: std::collections::BTreeMap<Group, (SnapshotId, Snapshot)> = Default::default();
    for (id, s) in filtered(repo, f)? {
        if s.v1().time > t {
            continue;
        }
        let key = (s.v1().host.clone(), s.v1().paths.clone());
        // list_snapshots is oldest first: a later one replaces an earlier one.
        best.insert(key, (id, s));
    }
    Ok(best.into_values().collect())
}

struct RestoreBar(Option<ProgressBar>);
impl restore::RestoreProgress for RestoreBar {
    fn bytes(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }
}

fn cmd_restore(g: &Global, a: RestoreArgs, cancel: Arc<AtomicBool>) -> anyhow::Result<i32> {
    let includes = Patterns::new(a.includes.iter().map(|p| (p.as_str(), false))).map_err(|e| fail(exit::USAGE, e))?;
    let excludes = Patterns::new(a.excludes.iter().map(|p| (p.as_str(), false))).map_err(|e| fail(exit::USAGE, e))?;
    let as_of_time = a.as_of.as_deref().map(parse_time).transpose()?;
    if a.snapshot.is_none() && as_of_time.is_none() {
        return Err(fail(exit::USAGE, "give a SNAPSHOT (an id, a prefix or `latest`) or --as-of TIME"));
    }
    let repo = open_reader(g)?;
    let (spec, sub) = match &a.snapshot {
        Some(s) => {
            let (x, p) = split_spec(s);
            (Some(x.to_string()), p)
        }
        None => (None, None),
    };
    let (id, snap) = match (spec.as_deref(), as_of_time) {
        (Some(spec), None) => select(&repo, spec, &a.filter)?,
        (spec, Some(t)) => {
            if spec.is_some_and(|s| s != "latest") {
                return Err(fail(exit::USAGE, "--as-of picks the snapshot itself: give no SNAPSHOT or `latest`"));
            }
            let mut found = as_of(&repo, t, &a.filter)?;
            match found.len() {
                0 => {
                    return Err(Error::NotFound(format!(
                        "snapshot taken at or before {} (matching the filters)",
                        t.to_rfc3339()
                    ))
                    .into())
                }
                1 => found.remove(0),
                n => {
                    let groups: Vec<String> =
                        found.iter().map(|(_, s)| format!("{} {}", s.v1().host, s.display_paths().join(","))).collect();
                    return Err(fail(
                        exit::USAGE,
                        format!(
                            "--as-of matches {n} groups of snapshots ({}); choose one with --host/--path",
                            groups.join("; ")
                        ),
                    ));
                }
            }
        }
        (None, None) => unreachable!("checked above"),
    };
    let opts = RestoreOptions {
        target: a.target.clone(),
        includes,
        excludes,
        overwrite: a.overwrite,
        verify: a.verify,
        threads: 0,
        cancel: Some(cancel),
    };
    let plan = restore::plan(&repo, &snap.v1().root, sub.as_deref(), &opts)?;
    if a.dry_run {
        let files = plan.entries.iter().filter(|e| matches!(e.node.kind, NodeKind::File { .. })).count();
        if g.json {
            print_json(&json!({
                "snapshot_id": id.to_hex(),
                "dry_run": true,
                "entries": plan.entries.len(),
                "files": files,
                "packs": plan.packs.len(),
                "bytes": plan.total_bytes,
                "hole_bytes": plan.hole_bytes,
                "unrestorable": plan.unrestorable.iter().map(|e| json!({"path": e.path, "error": e.message})).collect::<Vec<_>>(),
            }))?;
        } else if !g.quiet {
            println!(
                "would restore snapshot {} into {}: {} entries ({} files, {}), reading {} packs",
                id.short(),
                a.target.display(),
                plan.entries.len(),
                files,
                human_bytes(plan.total_bytes),
                plan.packs.len()
            );
            for e in &plan.unrestorable {
                println!("cannot restore {}: {}", e.path, e.message);
            }
        }
        return Ok(if plan.unrestorable.is_empty() { exit::OK } else { exit::ERROR });
    }
    let bar = bars(g).then(|| {
        let b = ProgressBar::with_draw_target(Some(plan.total_bytes), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} {elapsed_precise} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b.enable_steady_tick(Duration::from_millis(200));
        b
    });
    let res = restore::execute(&repo, &plan, &opts, &RestoreBar(bar.clone()));
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let res = res?;
    if g.json {
        print_json(&json!({
            "snapshot_id": id.to_hex(),
            "target": a.target.display().to_string(),
            "files": res.files,
            "dirs": res.dirs,
            "other": res.other,
            "bytes": res.bytes,
            "verified": res.verified,
            "errors": res.errors.iter().map(|e| json!({"path": e.path, "error": e.message})).collect::<Vec<_>>(),
        }))?;
    } else if chatty(g) {
        println!(
            "restored snapshot {} into {}: {} files, {} dirs, {} other, {}{}",
            id.short(),
            a.target.display(),
            res.files,
            res.dirs,
            res.other,
            human_bytes(res.bytes),
            if a.verify { format!("; {} files verified", res.verified) } else { String::new() }
        );
    }
    if !res.errors.is_empty() {
        for e in &res.errors {
            eprintln!("cairn: error: {}: {}", e.path, e.message);
        }
        return Err(anyhow!("{} path(s) were not restored correctly (see above)", res.errors.len()));
    }
    Ok(exit::OK)
}

fn cmd_dump(g: &Global, a: DumpArgs) -> anyhow::Result<i32> {
    let repo = open_reader(g)?;
    let (_, snap) = select(&repo, &a.snapshot, &a.filter)?;
    let path = if a.path.is_absolute() { a.path.clone() } else { Path::new("/").join(&a.path) };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    restore::dump(&repo, &snap.v1().root, &path, &mut out)?;
    out.flush().context("writing to standard output")?;
    Ok(exit::OK)
}

fn forget_rules(a: &ForgetArgs) -> anyhow::Result<cairn::forget::Rules> {
    use cairn::retention::{CountSpec, KeepRules, PolicyFile};
    if let Some(f) = &a.policy {
        let text = std::fs::read_to_string(f).with_context(|| format!("cannot read policy file {}", f.display()))?;
        let pf =
            PolicyFile::parse(&text).map_err(|e| fail(exit::USAGE, format!("policy file {}: {e}", f.display())))?;
        return Ok(cairn::forget::Rules::File(pf));
    }
    let count = |v: &Option<String>| v.clone().map(CountSpec::Word);
    let rules = KeepRules {
        keep_last: count(&a.keep_last),
        keep_hourly: count(&a.keep_hourly),
        keep_daily: count(&a.keep_daily),
        keep_weekly: count(&a.keep_weekly),
        keep_monthly: count(&a.keep_monthly),
        keep_yearly: count(&a.keep_yearly),
        keep_within: a.keep_within.clone(),
        keep_within_hourly: a.keep_within_hourly.clone(),
        keep_within_daily: a.keep_within_daily.clone(),
        keep_within_weekly: a.keep_within_weekly.clone(),
        keep_within_monthly: a.keep_within_monthly.clone(),
        keep_within_yearly: a.keep_within_yearly.clone(),
        keep_tag: a.keep_tags.clone(),
    };
    let p = rules.into_policy("options").map_err(|e| fail(exit::USAGE, e))?;
    if p.is_empty() {
        return Err(fail(exit::USAGE, "no policy given: use --keep-* options or --policy FILE (nothing was removed)"));
    }
    Ok(cairn::forget::Rules::Policy(p))
}

fn cmd_forget(g: &Global, a: ForgetArgs, cancel: Arc<AtomicBool>) -> anyhow::Result<i32> {
    let rules = forget_rules(&a)?;
    let group_by: cairn::forget::GroupBy = a.group_by.parse().map_err(|e: String| fail(exit::USAGE, e))?;
    let tz = match &a.tz {
        Some(z) => jiff::tz::TimeZone::get(z).map_err(|e| fail(exit::USAGE, format!("--tz {z}: {e}")))?,
        None => jiff::tz::TimeZone::system(),
    };
    let repo = open_reader(g)?;
    let snaps = filtered(&repo, &a.filter)?;
    let groups = cairn::forget::plan(&snaps, group_by, &rules, &tz);
    let removed = if a.dry_run { Vec::new() } else { cairn::forget::execute(&repo, &groups, a.allow_empty)? };
    let refused = a.dry_run && !a.allow_empty && groups.iter().any(|g| g.removes_all());
    let mut forget_json = None;
    if g.json {
        let gs: Vec<Value> = groups
            .iter()
            .map(|gr| {
                json!({
                    "host": gr.host,
                    "paths": gr.paths,
                    "tags": gr.tags,
                    "snapshots": gr.decisions.iter().map(|d| json!({
                        "id": d.id.to_hex(),
                        "short_id": d.id.short(),
                        "time": d.time.to_rfc3339(),
                        "keep": d.keep,
                        "reasons": d.reasons,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let doc = json!({
            "dry_run": a.dry_run,
            "groups": gs,
            "removed": removed.iter().map(|i| i.to_hex()).collect::<Vec<_>>(),
        });
        if a.prune && !refused {
            forget_json = Some(doc);
        } else {
            print_json(&doc)?;
        }
    } else if !g.quiet {
        for gr in &groups {
            println!("group {}:", cairn::forget::describe(gr));
            for d in &gr.decisions {
                let when = d.time.to_rfc3339().chars().take(19).collect::<String>().replace('T', " ");
                if d.keep {
                    println!("  keep    {}  {}  {}", d.id.short(), when, d.reasons.join(", "));
                } else {
                    println!("  {}  {}  {}", if a.dry_run { "would remove" } else { "remove " }, d.id.short(), when);
                }
            }
        }
        let n = groups.iter().flat_map(|g| &g.decisions).filter(|d| !d.keep).count();
        if a.dry_run {
            println!("dry run: {n} snapshot(s) would be removed; nothing was changed");
        } else {
            println!("removed {} snapshot(s); the data only they used stays stored until a prune", removed.len());
        }
    }
    if refused {
        return Err(fail(
            exit::ERROR,
            "the policy would remove every snapshot of a group (see above); use --allow-empty",
        ));
    }
    if a.prune {
        drop(repo);
        return cmd_prune(g, &a.prune_opts, a.dry_run, forget_json, cancel);
    }
    Ok(exit::OK)
}

fn parse_percent(flag: &str, s: &str) -> anyhow::Result<f64> {
    let bad = || fail(exit::USAGE, format!("{flag} {s:?}: use a percentage such as 5% (0% to 100%)"));
    let v: f64 = s.trim().trim_end_matches('%').trim().parse().map_err(|_| bad())?;
    if !(0.0..=100.0).contains(&v) {
        return Err(bad());
    }
    Ok(v / 100.0)
}

fn parse_size(flag: &str, s: &str) -> anyhow::Result<u64> {
    if s == "unlimited" {
        return Ok(u64::MAX);
    }
    let bad = || fail(exit::USAGE, format!("{flag} {s:?}: use a size such as 500M, 2G or unlimited"));
    let t = s.trim();
    let (num, mult) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 1 << 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 1 << 30),
        Some('T' | 't') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    n.checked_mul(mult).ok_or_else(bad)
}

fn parse_duration_secs(flag: &str, s: &str) -> anyhow::Result<i64> {
    let bad = || fail(exit::USAGE, format!("{flag} {s:?}: use a duration such as 24h, 7d, 90m, 30s or 0"));
    let t = s.trim();
    if t == "0" {
        return Ok(0);
    }
    let (num, mult) = match t.chars().last() {
        Some('s') => (&t[..t.len() - 1], 1i64),
        Some('m') => (&t[..t.len() - 1], 60),
        Some('h') => (&t[..t.len() - 1], 3600),
        Some('d') => (&t[..t.len() - 1], 86_400),
        Some('w') => (&t[..t.len() - 1], 7 * 86_400),
        _ => return Err(bad()),
    };
    let n: i64 = num.parse().map_err(|_| bad())?;
    if n < 0 {
        return Err(bad());
    }
    n.checked_mul(mult).ok_or_else(bad)
}

fn cmd_prune(
    g: &Global,
    a: &PruneArgs,
    dry_run: bool,
    forget: Option<Value>,
    cancel: Arc<AtomicBool>,
) -> anyhow::Result<i32> {
    use cairn::prune::PruneOptions;
    use cairn::units::human_secs;
    let opts = PruneOptions {
        max_unused: parse_percent("--max-unused", &a.max_unused)?,
        max_repack_size: parse_size("--max-repack-size", &a.max_repack_size)?,
        grace_secs: parse_duration_secs("--grace", &a.grace)?,
        force: a.force,
        repack: !a.no_repack,
        break_lock: a.break_lock,
        cancel: Some(cancel),
        ..PruneOptions::default()
    };
    if opts.grace_secs < 24 * 3600 && !g.quiet {
        eprintln!(
            "warning: --grace {} is below 24h: a backup slower than the grace period that started before the mark \
             is still protected by its lease, but a client whose clock or storage timestamps are off is not",
            a.grace
        );
    }
    if a.force && !g.quiet {
        eprintln!("warning: --force: prune goes on past its safety stops (listing and index disagree, or more than half of the data would go)");
    }
    let repo = open_reader(g)?;
    let (plan, report) = cairn::prune::run(&repo, &opts, dry_run)?;
    if g.json {
        let mut doc =
            json!({"dry_run": dry_run, "plan": serde_json::to_value(&plan)?, "report": serde_json::to_value(&report)?});
        if let Some(f) = forget {
            doc = json!({"forget": f, "prune": doc});
        }
        print_json(&hexify(doc))?;
        return Ok(exit::OK);
    }
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    if g.quiet {
        return Ok(exit::OK);
    }
    let would = |s: &str| if dry_run { format!("would {s}") } else { s.to_string() };
    println!(
        "repository: {} snapshots, {} packs, {}; {} in blobs no snapshot uses",
        plan.snapshots,
        plan.packs,
        human_bytes(plan.pack_bytes),
        human_bytes(plan.unused_bytes)
    );
    if let Some(s) = &plan.sweep {
        println!("sweep of {} mark(s):", s.marks.len());
        for r in &s.delete {
            if g.verbose > 0 {
                println!("  {} {}", would("delete"), cairn::layout::pack_path(r.kind, &r.id));
            }
        }
        for r in &s.rescued {
            println!("  {} {} (a snapshot still needs it)", would("rescue"), cairn::layout::pack_path(r.kind, &r.id));
        }
        println!(
            "  {} {} pack(s), {}; {} {} index file(s)",
            would("delete"),
            s.delete.len(),
            human_bytes(s.delete_bytes),
            would("replace"),
            s.old_index.len()
        );
    }
    for w in &plan.waiting {
        println!("mark {}: {} pack(s) condemned, waiting: {}", &w.mark[..8.min(w.mark.len())], w.packs, w.reason);
    }
    if let Some(m) = &plan.mark {
        println!(
            "mark: {} {} unused pack(s), {} unindexed pack(s) and {} repacked pack(s); about {} return after the grace period ({})",
            would("condemn"),
            m.unused.len(),
            m.orphans.len(),
            m.repack.len(),
            human_bytes(m.reclaim_bytes),
            human_secs(opts.grace_secs)
        );
        if g.verbose > 0 {
            for r in &m.repack {
                println!(
                    "  {} {} ({} used, {} unused)",
                    would("repack"),
                    cairn::layout::pack_path(r.pack.kind, &r.pack.id),
                    human_bytes(r.used_bytes),
                    human_bytes(r.unused_bytes)
                );
            }
        }
    } else if let Some(r) = &plan.no_mark_reason {
        println!("no new mark: {r}");
    }
    if let Some(r) = &report {
        for s in &r.repack_skipped {
            eprintln!("warning: not repacked (left in place): {s}");
        }
        println!(
            "done: {} pack(s) deleted ({}), {} rescued, {} repacked ({} blobs), {} index file(s) replaced{}",
            r.deleted_packs,
            human_bytes(r.deleted_bytes),
            r.rescued_packs,
            r.repacked_packs,
            r.repacked_blobs,
            r.replaced_index,
            match &r.marked {
                Some(m) => format!(", mark {} condemns {} pack(s)", &m[..8], r.condemned),
                None => String::new(),
            }
        );
    } else {
        println!("dry run: nothing was changed");
    }
    Ok(exit::OK)
}

fn parse_share(s: &str) -> anyhow::Result<cairn::check::ReadData> {
    use cairn::check::ReadData;
    let bad = || fail(exit::USAGE, format!("--read-data-subset {s:?}: use N/M (e.g. 1/30) or P% (e.g. 10%)"));
    if let Some(p) = s.strip_suffix('%') {
        let p: f64 = p.trim().parse().map_err(|_| bad())?;
        if !(p > 0.0 && p <= 100.0) {
            return Err(bad());
        }
        return Ok(ReadData::Percent(p));
    }
    let (n, m) = s.split_once('/').ok_or_else(bad)?;
    let (n, m): (u64, u64) = (n.trim().parse().map_err(|_| bad())?, m.trim().parse().map_err(|_| bad())?);
    if m == 0 || n == 0 || n > m {
        return Err(bad());
    }
    Ok(ReadData::Subset { n, m })
}

fn cmd_check(g: &Global, a: CheckArgs) -> anyhow::Result<i32> {
    use cairn::check::{CheckOptions, ReadData, Severity};
    let read_data = if a.read_data {
        ReadData::All
    } else if let Some(s) = &a.read_data_subset {
        parse_share(s)?
    } else if let Some(days) = a.read_data_rotation {
        if days == 0 {
            return Err(fail(exit::USAGE, "--read-data-rotation needs at least 1 day"));
        }
        ReadData::Rotation { days, day: (Time::now().secs.max(0) as u64) / 86_400 }
    } else {
        ReadData::None
    };
    let repo = open_reader(g)?;
    let report = cairn::check::check(&repo, &CheckOptions { read_data })?;
    let errors = report.errors();
    if g.json {
        print_json(&serde_json::to_value(&report)?)?;
    } else {
        for f in &report.findings {
            if f.severity == Severity::Info && g.quiet {
                continue;
            }
            let mut line = format!(
                "{} {}: {}: {}",
                if f.severity == Severity::Error { "error" } else { "note" },
                f.code,
                f.object,
                f.message
            );
            if !f.snapshots.is_empty() {
                let short: Vec<&str> = f.snapshots.iter().map(|s| &s[..8.min(s.len())]).collect();
                line.push_str(&format!(" [snapshots {}]", short.join(" ")));
            }
            if !f.paths.is_empty() {
                line.push_str(&format!(" [paths {}]", f.paths.join(" ")));
            }
            if f.severity == Severity::Error {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
        if !g.quiet {
            println!(
                "checked {} snapshots, {} index files, {} tree packs and {} data packs ({} read, {} blobs verified, {}): {}",
                report.snapshots,
                report.index_files,
                report.tree_packs,
                report.data_packs,
                report.data_packs_read,
                report.blobs_verified,
                human_bytes(report.bytes_read),
                if errors == 0 { "no errors".to_string() } else { format!("{errors} error(s)") }
            );
        }
    }
    if errors > 0 {
        return Err(fail(exit::ERROR, format!("check found {errors} error(s)")));
    }
    Ok(exit::OK)
}

fn cmd_repair_index(g: &Global, dry_run: bool, include_recent: bool) -> anyhow::Result<i32> {
    let repo = open_reader(g)?;
    let opts = cairn::repair::RepairOptions { dry_run, min_age_secs: if include_recent { 0 } else { 3600 } };
    let r = cairn::repair::repair_index(&repo, &opts)?;
    if g.json {
        let mut v = serde_json::to_value(&r)?;
        v["dry_run"] = json!(dry_run);
        print_json(&v)?;
    } else if !g.quiet {
        let verb = if dry_run { "would index" } else { "indexed" };
        for p in &r.indexed {
            println!("{verb} {p}");
        }
        for p in &r.skipped_recent {
            println!("left alone (younger than an hour; --include-recent to index it): {p}");
        }
        for i in &r.superseded {
            println!("{} damaged {i}", if dry_run { "would supersede" } else { "superseded" });
        }
        for (p, e) in &r.unreadable {
            eprintln!("cannot rebuild {p}: {e}");
        }
        println!(
            "{} pack(s) {verb}, {} index file(s) written{}",
            r.indexed.len(),
            r.index_files.len(),
            if dry_run { " (dry run: nothing was written)" } else { "" }
        );
    }
    Ok(exit::OK)
}

fn cmd_repair_snapshots(g: &Global, opts: cairn::repair::RepairSnapshotsOptions) -> anyhow::Result<i32> {
    let repo = open_reader(g)?;
    let r = cairn::repair::repair_snapshots(&repo, &opts)?;
    if g.json {
        print_json(&serde_json::to_value(&r)?)?;
    } else if !g.quiet {
        for d in &r.damaged {
            let short = &d.snapshot[..8];
            println!(
                "snapshot {short} ({}, {}, {}): {} damaged item(s)",
                d.time,
                d.host,
                d.paths.join(" "),
                d.lost.len()
            );
            for l in &d.lost {
                println!("  lost {} {}: {}", l.kind, l.path, l.what);
                for x in &l.ranges {
                    let at = x.offset.map_or("?".to_string(), |o| o.to_string());
                    let len = x.length.map_or("?".to_string(), |n| n.to_string());
                    println!("    bytes at {at}, length {len}: blob {}: {}", &x.blob[..16], x.reason);
                }
            }
            match (&d.repaired, &d.already_repaired_by) {
                (Some(n), _) => println!("  wrote snapshot {} (tagged repaired)", &n[..8]),
                (None, Some(n)) => println!("  already repaired by snapshot {}", &n[..8]),
                (None, None) => println!("  would write a repaired snapshot (dry run)"),
            }
            if d.forgotten {
                println!("  removed the original snapshot {short}");
            } else if !opts.dry_run {
                println!("  kept the original snapshot {short} (--forget removes it)");
            }
        }
        println!(
            "{} snapshot(s) checked: {} intact, {} damaged{}",
            r.snapshots,
            r.intact,
            r.damaged.len(),
            if opts.dry_run { " (dry run: nothing was written)" } else { "" }
        );
    }
    for (p, e) in &r.unreadable {
        eprintln!("cairn: error: cannot repair {p}: {e}");
    }
    if !r.unreadable.is_empty() {
        return Err(fail(exit::ERROR, format!("{} snapshot(s) cannot be read", r.unreadable.len())));
    }
    Ok(exit::OK)
}

fn cmd_cat(g: &Global, a: CatArgs) -> anyhow::Result<i32> {
    let any = if matches!(a.kind, CatKind::Config | CatKind::Key) { open_repo(g)? } else { (*open_reader(g)?).clone() };
    let repo = &any;
    let need_id = || a.id.clone().ok_or_else(|| fail(exit::USAGE, "this kind needs an ID"));
    let parse32 = |s: &str| -> anyhow::Result<[u8; 32]> {
        cairn::id::parse_hex32(s).ok_or_else(|| fail(exit::USAGE, format!("{s:?} is not a 64-digit hex id")))
    };
    let v: Value = match a.kind {
        CatKind::Config => json!({"number": repo.config_number(), "config": serde_json::to_value(repo.config())?}),
        CatKind::Snapshot => {
            let (id, snap) = select(&repo.readable()?, &need_id()?, &SnapshotFilter::default())?;
            json!({"id": id.to_hex(), "snapshot": serde_json::to_value(&snap)?})
        }
        CatKind::Tree => {
            let id = BlobId(parse32(&need_id()?)?);
            serde_json::to_value(repo.readable()?.read_tree_blob(&id)?)?
        }
        CatKind::Index => {
            let id = IndexId(parse32(&need_id()?)?);
            serde_json::to_value(repo.read_index(&id)?)?
        }
        CatKind::Key => {
            let id = repo.resolve_key(&need_id()?)?;
            let kf = keyfile::decode(&repo.backend().read(&format!("keys/{id}"))?)
                .map_err(|e| Error::corrupt(cairn::layout::Object::Key(id), e))?;
            let k = kf.v1();
            json!({"id": id.to_hex(), "kind": format!("{:?}", k.kind), "repo_id": k.repo_id.to_hex(),
                   "created": k.created.to_rfc3339(), "host": k.host, "user": k.user,
                   "kdf": serde_json::to_value(k.kdf)?, "salt": hex::encode(k.salt), "sealed_len": k.sealed.len()})
        }
        CatKind::Blob => {
            let id = BlobId(parse32(&need_id()?)?);
            let data = repo.readable()?.read_blob(BlobKind::Data, &id)?;
            if g.json {
                json!({"id": id.to_hex(), "length": data.len(), "hex": hex::encode(&data)})
            } else {
                std::io::stdout().lock().write_all(&data)?;
                return Ok(exit::OK);
            }
        }
    };
    print_json(&hexify(v))?;
    Ok(exit::OK)
}
