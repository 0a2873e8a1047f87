//! The arguments of `cairn backup` (kept apart from [`super::args`], which registers it as a
//! [`super::args::Command`] variant): what to read (paths, streams, commands), what to leave out,
//! and how. Every value is typed, so a malformed one is refused before anything is opened.

use super::values::{size, time};
use cairn::compress::Compression;
use cairn::select::SnapshotSpec;
use cairn::tree::Time;
use cairn::writer::Verification;
use clap::Args;
use std::path::PathBuf;

/// `cairn backup`.
#[derive(Args)]
pub struct BackupArgs {
    /// Files and directories to back up
    pub paths: Vec<PathBuf>,
    /// Read the paths to back up from this file (one per line; # starts a comment)
    #[arg(long, value_name = "FILE")]
    pub files_from: Vec<PathBuf>,
    /// Tag the snapshot (repeatable)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Host name to record [default: this machine's]
    #[arg(long)]
    pub host: Option<String>,
    /// Record the snapshot at this time (RFC 3339 or YYYY-MM-DD[ HH:MM[:SS]] UTC)
    #[arg(long, value_name = "TIME", value_parser = time)]
    pub time: Option<Time>,
    /// Exclude paths matching GLOB (repeatable; a name pattern like *.tmp matches at any depth)
    #[arg(long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,
    /// Like --exclude, ignoring case
    #[arg(long = "iexclude", value_name = "GLOB")]
    pub iexcludes: Vec<String>,
    /// Read exclude patterns from this file (one per line)
    #[arg(long, value_name = "FILE")]
    pub exclude_file: Vec<PathBuf>,
    /// Read case-insensitive exclude patterns from this file
    #[arg(long, value_name = "FILE")]
    pub iexclude_file: Vec<PathBuf>,
    /// Skip directories holding a valid CACHEDIR.TAG
    #[arg(long)]
    pub exclude_caches: bool,
    /// Skip directories that contain a file of this name (repeatable)
    #[arg(long, value_name = "NAME")]
    pub exclude_if_present: Vec<String>,
    /// Skip files larger than SIZE (e.g. 10M, 1G)
    #[arg(long, value_name = "SIZE", value_parser = size)]
    pub exclude_larger_than: Option<u64>,
    /// Stay on the file system of each given path
    #[arg(short = 'x', long)]
    pub one_file_system: bool,
    /// auto, off, fast, max or a zstd level 1..22 [default: the repository's]
    #[arg(long, value_name = "MODE")]
    pub compression: Option<Compression>,
    /// Read and count everything, store nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Compare against this snapshot instead of the newest of the same host and paths
    #[arg(long, value_name = "SNAPSHOT")]
    pub parent: Option<SnapshotSpec>,
    /// Read every file again, even when the files cache says it is unchanged
    #[arg(long)]
    pub force: bool,
    /// Back up standard input as one file at the path --stdin-filename gives
    #[arg(long)]
    pub stdin: bool,
    /// Run CMD with sh -c and back up its standard output as the file PATH (repeatable; a single
    /// CMD without PATH= takes its path from --stdin-filename); no snapshot if one fails
    #[arg(long, value_name = "PATH=CMD")]
    pub command: Vec<String>,
    /// Commands (and --stdin) read at once [default: 4]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub command_concurrency: Option<u16>,
    /// Path in the snapshot of the --stdin stream (or of the one --command CMD), e.g. db/dump.sql
    #[arg(long, value_name = "PATH")]
    pub stdin_filename: Option<String>,
    /// What is checked of each blob before upload: full (open every sealed blob again and
    /// recompute its id), compression (decompress every compressed payload and compare it with
    /// the plaintext; open trees and one blob in 64 again in full) or off [default: full]
    #[arg(long, value_name = "MODE")]
    pub verify: Option<Verification>,
    /// Check nothing before upload (faster; not recommended): --verify off
    #[arg(long, conflicts_with = "verify")]
    pub no_verify: bool,
    /// Read back the stored copy of each blob this backup dedups against (once per run) and
    /// store it anew if none verifies; needs a full key
    #[arg(long)]
    pub verify_dedup: bool,
}

impl BackupArgs {
    /// What `--verify` or `--no-verify` asks for (default: full).
    pub fn verification(&self) -> Verification {
        match (self.verify, self.no_verify) {
            (Some(v), _) => v,
            (None, true) => Verification::Off,
            (None, false) => Verification::default(),
        }
    }
}
