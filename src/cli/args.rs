//! The command line, as clap reads it: global options and one enum variant per command, every
//! value typed (the parsers are in [`super::values`] or the library's `FromStr`), so a malformed
//! argument is a usage error before anything is opened and no command parses a string again.
//! Completions and man pages are generated from this definition.

pub use super::args_backup::BackupArgs;
pub use super::args_inspect::{DiffArgs, FindArgs, StatsArgs};
pub use super::args_jobs::{ConfigCommand, RunArgs};
pub use super::args_tagmount::{MountArgs, SnapshotsArgs, TagArgs};
use super::values::{blob_id, index_id, percent, size_limit, time, time_zone};
use super::values::{FixedDuration, KeyPrefix, SnapshotPath};
use cairn::check::ReadData;
use cairn::forget::GroupBy;
use cairn::id::{BlobId, IndexId};
use cairn::retention::{CalendarDuration, Count};
use cairn::select::SnapshotSpec;
use cairn::tree::Time;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// cairn: deduplicating, encrypted backups to local disk and object storage.
#[derive(Parser)]
#[command(name = "cairn", version, about, long_about = None, max_term_width = 110)]
#[command(after_help = "Exit codes: 0 success, 1 error, 2 usage, 3 partial backup, 4 drill over its RTO, \
10 no repository, 11 locked, 12 wrong password, 130 interrupted (status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).\nSizes: 512K, 10M, 1.5G (binary units). Durations: 30s, 90min, \
36h, 7d, 2w, 6mo, 1y (`m` alone is refused: write min or mo).\nDocumentation: README.md and docs/cli-contract.md.")]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Args, Clone)]
pub struct Global {
    /// Repository: a path, file:///path, s3://BUCKET/PREFIX, sftp://[USER@]HOST[:PORT]/PATH,
    /// webdav(s)://HOST[:PORT]/PATH, gcs://BUCKET/PREFIX, azblob://CONTAINER/PREFIX or memory://NAME
    #[arg(short = 'r', long = "repo", env = "CAIRN_REPOSITORY", global = true, value_name = "URL")]
    pub repo: Option<String>,
    /// Backend option (repeatable), e.g. -o s3.endpoint=http://127.0.0.1:9000; overrides
    /// CAIRN_OPTION_<KEY> variables, which override the options file
    #[arg(short = 'o', long = "option", global = true, value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// TOML file of backend options (key = "value")
    #[arg(long, env = "CAIRN_OPTIONS_FILE", global = true, value_name = "FILE")]
    pub options_file: Option<PathBuf>,
    /// Read the password from the first line of this file
    #[arg(long, env = "CAIRN_PASSWORD_FILE", global = true, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Run this shell command and use the first line of its output as the password
    #[arg(long, env = "CAIRN_PASSWORD_COMMAND", global = true, value_name = "CMD")]
    pub password_command: Option<String>,
    /// Local cache directory [default: $XDG_CACHE_HOME/cairn or ~/.cache/cairn]
    #[arg(long, env = "CAIRN_CACHE_DIR", global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Use no persistent local cache (slower; nothing is written under the cache directory)
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Print one JSON document on stdout and nothing else there
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print more: a summary even when not on a terminal, and each file as it is processed (-vv)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// After backup, forget, prune, check and copy, write metrics in the node_exporter textfile format to this
    /// file (atomically; the series of other commands in it are kept)
    #[arg(long, env = "CAIRN_METRICS_FILE", global = true, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// Job profile for `run` and `config check` [default: ~/.config/cairn/cairn.toml, then /etc/cairn/cairn.toml]
    #[arg(long, env = "CAIRN_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The variable holding the password, set by a job profile's `password_env` (never a flag).
    #[arg(skip)]
    pub password_env: Option<String>,
}

/// The commands; each has its file in `cli/cmd/`.
#[derive(Subcommand)]
pub enum Command {
    /// Create a new repository
    Init(InitArgs),
    /// Manage the passwords (key files) of a repository
    #[command(subcommand)]
    Key(KeyCommand),
    /// Back up files and directories, standard input or a command's output
    Backup(BackupArgs),
    /// List snapshots
    Snapshots(SnapshotsArgs),
    /// List the contents of a snapshot
    Ls(LsArgs),
    /// Restore a snapshot (or part of it) into a directory
    Restore(RestoreArgs),
    /// Write one file of a snapshot to standard output
    Dump(DumpArgs),
    /// Show what changed between two snapshots (reads trees only)
    Diff(DiffArgs),
    /// Find files by name, path or the objects they use, in every snapshot
    Find(FindArgs),
    /// Count restore sizes, unique and stored bytes, compression and dedup ratios
    Stats(StatsArgs),
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
    /// The audit ledger: log, head (a line to anchor outside), verify
    #[command(subcommand)]
    Ledger(super::args_ledger::LedgerCommand),
    /// Print a repository object (for debugging)
    #[command(subcommand)]
    Cat(CatCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell) to standard output
    Completion(CompletionArgs),
    /// Write the man pages (cairn.1 and one per command) into a directory
    #[command(hide = true)]
    Man(ManArgs),
    /// Judge how fresh the newest snapshots are (monitoring-plugin exit codes 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)
    Status(super::args_status::StatusArgs),
    /// Run jobs of the job profile: backup, forget, prune when due, hooks and metrics
    Run(RunArgs),
    /// Check the job profile
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Add, remove or set tags of snapshots (rewrites their manifests; needs a full key)
    Tag(TagArgs),
    /// Browse snapshots as a read-only filesystem (FUSE)
    Mount(MountArgs),
    /// Timed restore drill: restore, compare with the snapshot, run a verify command, seal the evidence in the ledger
    Drill(super::args_drill::DrillArgs),
    /// The compliance report: encryption, retention, completion, accessibility, integrity (exit 5 when one fails)
    Report(super::args_report::ReportArgs),
    /// Erase paths from snapshots: write each again without them (audited; needs a full key)
    Rewrite(super::args_rewrite::RewriteArgs),
    /// Serve the repository over a REST API with tokens (and a web page): docs/api.md
    Serve(super::args_serve::ServeArgs),
}

// ---------------------------------------------------------------------------------------------
// Per-command arguments
// ---------------------------------------------------------------------------------------------

pub use super::filter_args::SnapshotFilter;

/// `cairn init`.
#[derive(Args)]
pub struct InitArgs {
    /// Default zstd level of the repository (0 = no compression)
    #[arg(long, default_value_t = 3, value_name = "LEVEL", value_parser = clap::value_parser!(i32).range(0..=22))]
    pub compression_level: i32,
    /// Share this repository's content-id and chunker keys and chunker parameters (nothing else), so that `copy`
    /// from it moves blobs without cutting files again
    #[arg(long, value_name = "URL")]
    pub copy_chunker_from: Option<String>,
    /// Make the first key a generated 256-bit secret written to this new file (mode 0600; never overwritten) instead
    /// of asking for a password: for unattended hosts, and no argon2id on every open
    #[arg(long, value_name = "FILE")]
    pub new_secret_file: Option<PathBuf>,
    /// The source's password.
    #[command(flatten)]
    pub from: FromRepoArgs,
}

/// How to open the other repository of `copy` and `init --copy-chunker-from`.
#[derive(Args, Clone)]
pub struct FromRepoArgs {
    /// Password file of the source repository (else CAIRN_FROM_PASSWORD, else a prompt)
    #[arg(long, env = "CAIRN_FROM_PASSWORD_FILE", value_name = "FILE")]
    pub from_password_file: Option<PathBuf>,
    /// Command printing the password of the source repository
    #[arg(long, env = "CAIRN_FROM_PASSWORD_COMMAND", value_name = "CMD")]
    pub from_password_command: Option<String>,
}

/// `cairn key ...`.
#[derive(Subcommand)]
pub enum KeyCommand {
    /// List the key files
    List,
    /// Add a password or a generated secret (a new key file)
    Add {
        /// Read the new password from this file (else CAIRN_NEW_PASSWORD, else a prompt)
        #[arg(long, value_name = "FILE")]
        new_password_file: Option<PathBuf>,
        /// Generate a 256-bit secret instead of a password and write it to this new file (mode 0600; never
        /// overwritten): it opens the repository without argon2id
        #[arg(long, value_name = "FILE", conflicts_with = "new_password_file")]
        new_secret_file: Option<PathBuf>,
        /// The new key can add backups but cannot read what other runs wrote
        #[arg(long)]
        write_only: bool,
        /// Bind the new write-only key to this host (repeatable): backups for others are refused
        #[arg(long = "host", value_name = "HOST", requires = "write_only")]
        hosts: Vec<String>,
    },
    /// Remove a key file (never the last full key)
    Remove {
        /// Key id or unique prefix
        id: KeyPrefix,
    },
    /// Change the password of the key in use (adds a new key file, removes the old one)
    Passwd {
        /// Read the new password from this file (else CAIRN_NEW_PASSWORD, else a prompt)
        #[arg(long, value_name = "FILE")]
        new_password_file: Option<PathBuf>,
        /// Replace the key in use by a generated 256-bit secret written to this new file (mode 0600; never
        /// overwritten) instead of a new password
        #[arg(long, value_name = "FILE", conflicts_with = "new_password_file")]
        new_secret_file: Option<PathBuf>,
    },
}

/// `cairn ls`.
#[derive(Args)]
pub struct LsArgs {
    /// SNAPSHOT or SNAPSHOT:PATH
    pub snapshot: SnapshotPath,
    /// Long listing: type, mode, owner, size, mtime
    #[arg(short, long)]
    pub long: bool,
    /// Memory the listed entries may take whatever the snapshot (format-spec §7.5; default 256MiB)
    #[arg(long, value_name = "SIZE", value_parser = size_limit)]
    pub max_tree_memory: Option<u64>,
    /// Which snapshots `latest` chooses from.
    #[command(flatten)]
    pub filter: SnapshotFilter,
}

/// `cairn restore`.
#[derive(Args)]
pub struct RestoreArgs {
    /// Snapshot id, prefix or `latest` (may be omitted with --as-of); SNAPSHOT:PATH restores a subtree
    pub snapshot: Option<SnapshotPath>,
    /// Directory to restore into (snapshot paths land below it)
    #[arg(short, long, value_name = "DIR")]
    pub target: PathBuf,
    /// Memory the restore plan's entries may take whatever the snapshot (format-spec §7.5; default 256MiB)
    #[arg(long, value_name = "SIZE", value_parser = size_limit)]
    pub max_tree_memory: Option<u64>,
    /// Restore only paths matching GLOB (and what lies below them)
    #[arg(long = "include", value_name = "GLOB")]
    pub includes: Vec<String>,
    /// Skip paths matching GLOB
    #[arg(long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,
    /// Restore the newest snapshot taken at or before TIME (per host and paths)
    #[arg(long, value_name = "TIME", value_parser = time)]
    pub as_of: Option<Time>,
    /// Replace existing files
    #[arg(long)]
    pub overwrite: bool,
    /// Read back every restored file and compare it with the snapshot
    #[arg(long)]
    pub verify: bool,
    /// Print the plan (what would be written, which packs read) and write nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Never set owners, even as root: everything restored belongs to you
    #[arg(long)]
    pub no_owner: bool,
    /// Do not create FIFOs and device nodes (they are counted as skipped)
    #[arg(long)]
    pub no_special_files: bool,
    /// Do not restore security.* and trusted.* extended attributes (capabilities, SELinux labels)
    #[arg(long)]
    pub no_security_xattrs: bool,
    /// Keep setuid and setgid bits even where restore would strip them
    #[arg(long)]
    pub keep_setuid: bool,
    /// Before replacing anything, back up the files that would be replaced as a snapshot tagged `safety`
    #[arg(long, requires = "overwrite")]
    pub safety_snapshot: bool,
    /// Which snapshots `latest` and `--as-of` choose from.
    #[command(flatten)]
    pub filter: SnapshotFilter,
}

/// `cairn dump`.
#[derive(Args)]
pub struct DumpArgs {
    /// Snapshot id, prefix or `latest`
    pub snapshot: SnapshotSpec,
    /// Path of the file in the snapshot (a stream's name, or an absolute path)
    pub path: PathBuf,
    /// Which snapshots `latest` chooses from.
    #[command(flatten)]
    pub filter: SnapshotFilter,
}

/// `cairn forget`.
#[derive(Args)]
#[command(after_help = "A count is a number or `unlimited`; a duration is like 7y, 90d, 36h or 1y6mo \
(y years, mo months, w weeks, d days, h hours; `m` alone is refused), counted back from the newest snapshot of \
the group. Calendar buckets (days, weeks, ...) are taken in --tz (default: the system's time zone). \
See docs/retention.md for the policy file.")]
pub struct ForgetArgs {
    /// Remove exactly these snapshots (ids or prefixes; flagged ones included) instead of applying a policy
    #[arg(value_name = "SNAPSHOT")]
    pub snapshots: Vec<SnapshotSpec>,
    /// Keep the newest N snapshots
    #[arg(long, value_name = "N")]
    pub keep_last: Option<Count>,
    /// Keep the newest snapshot of each of the last N hours that have one
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<Count>,
    /// ... of each of the last N days
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<Count>,
    /// ... of each of the last N ISO weeks
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<Count>,
    /// ... of each of the last N months
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<Count>,
    /// ... of each of the last N years
    #[arg(long, value_name = "N")]
    pub keep_yearly: Option<Count>,
    /// Keep every snapshot within DURATION of the newest one
    #[arg(long, value_name = "DURATION")]
    pub keep_within: Option<CalendarDuration>,
    /// Keep the newest snapshot of every hour within DURATION
    #[arg(long, value_name = "DURATION")]
    pub keep_within_hourly: Option<CalendarDuration>,
    /// ... of every day within DURATION
    #[arg(long, value_name = "DURATION")]
    pub keep_within_daily: Option<CalendarDuration>,
    /// ... of every week within DURATION
    #[arg(long, value_name = "DURATION")]
    pub keep_within_weekly: Option<CalendarDuration>,
    /// ... of every month within DURATION
    #[arg(long, value_name = "DURATION")]
    pub keep_within_monthly: Option<CalendarDuration>,
    /// ... of every year within DURATION
    #[arg(long, value_name = "DURATION")]
    pub keep_within_yearly: Option<CalendarDuration>,
    /// Keep every snapshot with this tag (repeatable)
    #[arg(long = "keep-tag", value_name = "TAG")]
    pub keep_tags: Vec<String>,
    /// Apply the classes of a policy file (TOML) instead of --keep-* flags
    #[arg(long, value_name = "FILE", conflicts_with_all = ["keep_last", "keep_hourly", "keep_daily", "keep_weekly",
        "keep_monthly", "keep_yearly", "keep_within", "keep_within_hourly", "keep_within_daily",
        "keep_within_weekly", "keep_within_monthly", "keep_within_yearly", "keep_tags"])]
    pub policy: Option<PathBuf>,
    /// Group snapshots by these (comma-separated: host, paths, tags, writer) before applying the policy
    #[arg(long, default_value = "host,paths,writer", value_name = "LIST")]
    pub group_by: GroupBy,
    /// Time zone for calendar buckets (e.g. Europe/Berlin, UTC) [default: the system's]
    #[arg(long, value_name = "ZONE", value_parser = time_zone)]
    pub tz: Option<jiff::tz::TimeZone>,
    /// Print what would be kept and removed; remove nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Allow removing every snapshot of a group
    #[arg(long)]
    pub allow_empty: bool,
    /// Run prune right after (with the prune options below)
    #[arg(long)]
    pub prune: bool,
    /// The options of the prune that `--prune` runs.
    #[command(flatten)]
    pub prune_opts: PruneArgs,
    /// Which snapshots the policy applies to.
    #[command(flatten)]
    pub filter: SnapshotFilter,
}

/// `cairn prune`.
#[derive(Args)]
#[command(after_help = "Prune works in two phases (format-spec §10.6). Each run first sweeps the marks that are \
due: their grace period has passed and every backup that was running when they were made has ended; packs a \
snapshot still needs are rescued, the rest are deleted. Then, when no mark is pending, it marks: packs no \
snapshot uses are condemned, and packs with more than --max-unused unused bytes are repacked first. Backups may \
run at the same time; a backup that needs a condemned blob stores it again. Two prunes never run at once.")]
pub struct PruneCmdArgs {
    /// Print what would be repacked, marked and deleted, and how much space returns; change nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// The prune options.
    #[command(flatten)]
    pub opts: PruneArgs,
}

/// The options of a prune (`prune`, `forget --prune`).
#[derive(Args)]
pub struct PruneArgs {
    /// Repack a pack when more than this share of it is unused (e.g. 5%, 0%, 100% = never)
    #[arg(long, default_value = "5%", value_name = "PERCENT", value_parser = percent)]
    pub max_unused: f64,
    /// Repack at most this many bytes of packs per run (e.g. 500M, 2G, unlimited)
    #[arg(long, default_value = "unlimited", value_name = "SIZE", value_parser = size_limit)]
    pub max_repack_size: u64,
    /// Never read a pack: condemn only packs nothing uses (for data/ in an archive tier)
    #[arg(long)]
    pub no_repack: bool,
    /// How long a mark waits before its sweep (e.g. 24h, 7d, 90min, 0); below 24h is warned about
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    pub grace: FixedDuration,
    /// Go on past the safety stops: listing and index disagree, or more than half the data would go
    #[arg(long)]
    pub force: bool,
    /// Take the maintenance lock although another prune seems to hold it (after a crash on another host; only
    /// when you are sure no other prune runs)
    #[arg(long)]
    pub break_lock: bool,
}

/// `cairn check`.
#[derive(Args)]
#[command(after_help = "Without --read-data* nothing under data/ is read (it may sit in an archive tier): data packs \
are checked by listing and size against the index. Tree packs are always read and compared with the index.")]
pub struct CheckArgs {
    /// Read every data pack, open every blob and recompute its id
    #[arg(long, conflicts_with_all = ["read_data_subset", "read_data_rotation"])]
    pub read_data: bool,
    /// Read a share of the data packs: N/M (part N of M) or P% (e.g. 1/30, 10%)
    #[arg(long, value_name = "SHARE", conflicts_with = "read_data_rotation")]
    pub read_data_subset: Option<ReadData>,
    /// Read today's share of DAYS, so that every data pack is read within DAYS days of daily runs
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u64).range(1..))]
    pub read_data_rotation: Option<u64>,
}

/// `cairn repair ...`.
#[derive(Subcommand)]
pub enum RepairCommand {
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

/// `cairn copy`.
#[derive(Args)]
#[command(after_help = "The destination is --to-repo (default: -r / CAIRN_REPOSITORY) with the usual password \
sources; the source's password comes from --from-password-file, --from-password-command, CAIRN_FROM_PASSWORD or a \
prompt. A snapshot whose time, host and paths the destination already has is skipped, so running copy twice copies \
nothing the second time.")]
pub struct CopyArgs {
    /// The repository to copy from
    #[arg(long, value_name = "URL")]
    pub from_repo: String,
    /// The repository to copy into [default: -r / CAIRN_REPOSITORY]
    #[arg(long, value_name = "URL")]
    pub to_repo: Option<String>,
    /// The source's password.
    #[command(flatten)]
    pub from: FromRepoArgs,
    /// Say what would be copied and how much would be stored; store nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Snapshots to copy (ids, unique prefixes or `latest`) [default: all, after the filters]
    pub snapshots: Vec<SnapshotSpec>,
    /// Which source snapshots to copy.
    #[command(flatten)]
    pub filter: SnapshotFilter,
}

/// `cairn cat KIND ID`.
#[derive(Subcommand)]
pub enum CatCommand {
    /// The repository config
    Config,
    /// A snapshot manifest (id, prefix or `latest`)
    Snapshot {
        /// Snapshot id, prefix or `latest`
        id: SnapshotSpec,
    },
    /// A tree blob
    Tree {
        /// Its id (64 hex digits)
        #[arg(value_parser = blob_id)]
        id: BlobId,
    },
    /// An index file
    Index {
        /// Its id (64 hex digits)
        #[arg(value_parser = index_id)]
        id: IndexId,
    },
    /// A key file's public part
    Key {
        /// Key id or unique prefix
        id: KeyPrefix,
    },
    /// A data blob's plaintext (raw bytes on stdout; hex with --json)
    Blob {
        /// Its id (64 hex digits)
        #[arg(value_parser = blob_id)]
        id: BlobId,
    },
}

/// `cairn completion SHELL`.
#[derive(Args)]
pub struct CompletionArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `cairn man --dir DIR`.
#[derive(Args)]
pub struct ManArgs {
    /// Directory to write the pages into (created if missing)
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
