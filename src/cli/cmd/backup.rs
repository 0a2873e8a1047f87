//! `cairn backup`: paths, standard input and commands' output into one new snapshot.

use crate::cli::args::BackupArgs;
use crate::cli::output::{BackupProgress, Text};
use crate::cli::{open, CliError, Ctx, Outcome};
use anyhow::Context;
use cairn::backup::{self, BackupOptions, BackupResult, BackupSource, PathMessage};
use cairn::error::exit;
use cairn::filter::Patterns;
use cairn::id::SnapshotId;
use cairn::select::{self, Filter};
use cairn::snapshot::Summary;
use cairn::units::human_bytes;
use serde::ser::SerializeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// `backup --json`: the run's ids, its counters and what went wrong, per path.
#[derive(serde::Serialize)]
struct Report<'a> {
    snapshot_id: Option<SnapshotId>,
    parent: Option<SnapshotId>,
    dry_run: bool,
    files_new: u64,
    files_changed: u64,
    files_unchanged: u64,
    dirs: u64,
    other: u64,
    bytes_read: u64,
    bytes_processed: u64,
    blobs_added: u64,
    bytes_added: u64,
    bytes_added_stored: u64,
    dedup_verified: u64,
    dedup_rejected: u64,
    started: cairn::tree::Time,
    finished: cairn::tree::Time,
    errors: PathMessages<'a>,
    warnings: PathMessages<'a>,
    /// Why the snapshot has no writer block (format-spec §4.3); null when it is signed.
    unattributed: Option<&'a str>,
}

/// `[{"path": P, KEY: MESSAGE}]`.
struct PathMessages<'a>(&'a [PathMessage], &'static str);

impl serde::Serialize for PathMessages<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct One<'a>(&'a PathMessage, &'static str);
        impl serde::Serialize for One<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("path", &self.0.path)?;
                m.serialize_entry(self.1, &self.0.message)?;
                m.end()
            }
        }
        s.collect_seq(self.0.iter().map(|p| One(p, self.1)))
    }
}

impl<'a> Report<'a> {
    fn new(r: &'a BackupResult, dry_run: bool) -> Self {
        let s: &Summary = &r.summary;
        Report {
            snapshot_id: r.snapshot_id,
            parent: r.parent,
            dry_run,
            files_new: s.files_new,
            files_changed: s.files_changed,
            files_unchanged: s.files_unchanged,
            dirs: s.dirs,
            other: s.other,
            bytes_read: s.bytes_read,
            bytes_processed: s.bytes_processed,
            blobs_added: s.blobs_added,
            bytes_added: s.bytes_added,
            bytes_added_stored: s.bytes_added_stored,
            dedup_verified: r.dedup_verified,
            dedup_rejected: r.dedup_rejected,
            started: s.started,
            finished: s.finished,
            errors: PathMessages(&r.errors, "error"),
            warnings: PathMessages(&r.warnings, "warning"),
            unattributed: r.unattributed.as_deref(),
        }
    }
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

/// A stream source as the command line gives it.
enum Stream {
    /// `--stdin --stdin-filename PATH`.
    Stdin(String),
    /// `--command PATH=CMD`, or the one `--command CMD --stdin-filename PATH`.
    Command(String, String),
}

/// The streams `--stdin`, `--command` and `--stdin-filename` name (docs/cli-contract.md).
fn stream_sources(a: &BackupArgs) -> anyhow::Result<Vec<Stream>> {
    let mut out = Vec::new();
    // The old form: one command, its path from --stdin-filename, its text taken whole.
    if !a.stdin && a.command.len() == 1 {
        if let Some(name) = &a.stdin_filename {
            return Ok(vec![Stream::Command(name.clone(), a.command[0].clone())]);
        }
    }
    if a.stdin {
        let Some(name) = &a.stdin_filename else {
            return Err(CliError::Usage("--stdin needs --stdin-filename PATH".into()).into());
        };
        out.push(Stream::Stdin(name.clone()));
    } else if a.stdin_filename.is_some() {
        return Err(CliError::Usage(
            "--stdin-filename names the --stdin stream or a single --command CMD; with several commands give each as --command PATH=CMD".into(),
        )
        .into());
    }
    for c in &a.command {
        match c.split_once('=') {
            Some((path, cmd)) if !path.is_empty() && !path.contains(char::is_whitespace) && !cmd.trim().is_empty() => {
                out.push(Stream::Command(path.to_string(), cmd.to_string()))
            }
            // The text itself is not shown: it may hold credentials.
            _ => {
                return Err(CliError::Usage(format!(
                    "--command number {} is not PATH=CMD (a single command may instead take its path from --stdin-filename)",
                    out.iter().filter(|s| matches!(s, Stream::Command(..))).count() + 1
                ))
                .into())
            }
        }
    }
    Ok(out)
}

pub fn run(ctx: &Ctx, a: BackupArgs) -> anyhow::Result<Outcome> {
    // Check everything before touching the repository.
    let mut paths = a.paths.clone();
    for f in &a.files_from {
        paths.extend(read_lines(f)?.into_iter().map(PathBuf::from));
    }
    let streams = stream_sources(&a)?;
    if streams.is_empty() && paths.is_empty() {
        return Err(CliError::Usage("nothing to back up: give paths, --files-from, --stdin or --command".into()).into());
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
    let excludes = Patterns::new(pats.iter().map(|(p, ci)| (p.as_str(), *ci))).map_err(CliError::Usage)?;

    let repo = open::open(&ctx.g, &ctx.out, true)?;
    let parent = match &a.parent {
        Some(p) => Some(select::select(&repo.clone().readable()?, p, &Filter::default())?.0),
        None => None,
    };
    let opts = BackupOptions {
        host: a.host.clone(),
        tags: a.tags.clone(),
        time: a.time,
        excludes,
        exclude_if_present: a.exclude_if_present.clone(),
        exclude_caches: a.exclude_caches,
        exclude_larger_than: a.exclude_larger_than,
        one_file_system: a.one_file_system,
        compression: a.compression,
        dry_run: a.dry_run,
        force: a.force,
        parent,
        verify: a.verification(),
        verify_dedup: a.verify_dedup,
        threads: 0,
        command_concurrency: a.command_concurrency.map_or(0, usize::from),
        cancel: Some(ctx.cancel.clone()),
        test_before_open: None,
        // A benchmark knob (benches/README.md), not an interface: the inline threshold.
        inline_max: std::env::var("CAIRN_BENCH_INLINE_MAX").ok().and_then(|v| v.parse().ok()),
        test_blob_limits: None,
    };
    let bar = ctx.out.byte_bar(None, true);
    if let (Some(b), false) = (&bar, paths.is_empty()) {
        // The bar's total: what the walk will read, by the walk's own selection rules (streams
        // add what they read to it).
        let (b, cancel, paths, opts) = (b.clone(), ctx.cancel.clone(), paths.clone(), opts.clone());
        std::thread::spawn(move || {
            let stop = || cancel.load(Ordering::Relaxed) || b.is_finished();
            let total = cairn::scan::source_bytes(&paths, &opts, &stop, &mut |n| b.set_length(n.max(b.position())));
            if !stop() {
                b.set_length(total.max(b.position()));
            }
        });
    }
    let mut sources = Vec::new();
    if !paths.is_empty() {
        sources.push(BackupSource::Paths(paths));
    }
    sources.extend(streams.into_iter().map(|s| match s {
        Stream::Stdin(path) => BackupSource::Stream { path, reader: Box::new(std::io::stdin()) },
        Stream::Command(path, command) => BackupSource::Command { path, command },
    }));
    let progress = BackupProgress::new(bar.clone(), ctx.out.clone());
    let result = backup::backup(&repo, sources, &opts, &progress);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let r = result?;
    ctx.metrics.backup(&repo, &r, &opts.host.clone().unwrap_or_else(cairn::repository::hostname));
    let s = &r.summary;
    ctx.out.result(&Report::new(&r, a.dry_run), Text::Chatty, |w| {
        let secs = (s.finished.as_nanos() - s.started.as_nanos()).max(0) as f64 / 1e9;
        writeln!(
            w,
            "files: {} new, {} changed, {} unchanged; {} dirs, {} other",
            s.files_new, s.files_changed, s.files_unchanged, s.dirs, s.other
        )?;
        writeln!(
            w,
            "read {} of {}; added {} ({} stored) in {} blobs; {:.1} s",
            human_bytes(s.bytes_read),
            human_bytes(s.bytes_processed),
            human_bytes(s.bytes_added),
            human_bytes(s.bytes_added_stored),
            s.blobs_added,
            secs
        )?;
        match r.snapshot_id {
            Some(id) => writeln!(w, "snapshot {} saved", id.short()),
            None => writeln!(w, "dry run: nothing was stored"),
        }
    })?;
    if let Some(why) = &r.unattributed {
        ctx.out.note(format!(
            "warning: the snapshot is unattributed (no writer signature): {why}; retention groups it as `unattributed`"
        ));
    }
    if r.dedup_rejected > 0 {
        ctx.out.note(format!(
            "warning: {} blob(s) stored again: no indexed copy of them read back and verified (a forged or damaged index entry: run `cairn check --read-data`)",
            r.dedup_rejected
        ));
    }
    if !r.errors.is_empty() {
        ctx.out.note(format!(
            "cairn: {} path(s) could not be read; the snapshot lacks them (exit {})",
            r.errors.len(),
            exit::PARTIAL
        ));
        return Ok(Outcome::Partial);
    }
    Ok(Outcome::Done)
}
