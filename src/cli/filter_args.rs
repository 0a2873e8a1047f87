//! The snapshot filter options every command that chooses snapshots shares (`--host`, `--tag`,
//! `--path`, `--writer`), and their translation into the library's [`cairn::select::Filter`].

use clap::Args;
use std::path::PathBuf;

/// `--host`, `--tag`, `--path`, `--writer`: which snapshots a command looks at.
#[derive(Args, Clone, Default)]
pub struct SnapshotFilter {
    /// Only snapshots of this host
    #[arg(long)]
    pub host: Option<String>,
    /// Only snapshots with this tag (repeat: all must match)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Only snapshots that include this path
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Only snapshots attributed to the key whose id starts with KEY (or `unattributed`)
    #[arg(long, value_name = "KEY", value_parser = crate::cli::values::writer_spec)]
    pub writer: Option<String>,
}

impl SnapshotFilter {
    /// The library's filter.
    pub fn filter(&self) -> cairn::select::Filter {
        let (host, tags, paths, writer) =
            (self.host.clone(), self.tags.clone(), self.paths.clone(), self.writer.clone());
        cairn::select::Filter { host, tags, paths, writer }
    }
}
