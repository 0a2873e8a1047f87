//! The one printer: every byte the commands write goes through [`Printer`]. Under `--json` a
//! command's result is one JSON document on stdout (`serde_json` of a typed value) and nothing else
//! goes there; otherwise text, which `-q` silences except for data and errors. Progress bars are
//! drawn on stderr only when it is a terminal, and the library's progress traits are implemented
//! here.

use super::args::Global;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

/// When a command's text output is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Text {
    /// Always (the data the command was asked for: a listing, a file's bytes), even with `-q`.
    Data,
    /// Unless `-q`.
    Normal,
    /// Unless `-q`, and only with `-v` or when stdout is a terminal (summaries of long runs, which
    /// scripts and cron mails do not want).
    Chatty,
}

/// How a command prints; made once from the global options.
#[derive(Clone, Debug)]
pub struct Printer {
    json: bool,
    quiet: bool,
    verbose: u8,
    /// When set, every result document is also kept here (and under `--json` only kept, not
    /// printed): `cairn run` gathers the documents of the commands it runs into its own report.
    record: Option<Records>,
}

/// The result documents a recording [`Printer`] kept, in order.
pub type Records = std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>;

impl Printer {
    /// The printer for these options.
    pub fn new(g: &Global) -> Printer {
        Printer { json: g.json, quiet: g.quiet, verbose: g.verbose, record: None }
    }

    /// This printer, also keeping each result document in the returned list; under `--json` the
    /// documents are kept instead of printed.
    pub fn recording(&self) -> (Printer, Records) {
        let records = Records::default();
        (Printer { record: Some(records.clone()), ..self.clone() }, records)
    }

    /// `--json` was given.
    pub fn json(&self) -> bool {
        self.json
    }

    /// `-q` was given.
    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// How many `-v`.
    pub fn verbose(&self) -> u8 {
        self.verbose
    }

    /// True when text of kind `when` is printed.
    pub fn shows(&self, when: Text) -> bool {
        if self.json {
            return false;
        }
        match when {
            Text::Data => true,
            Text::Normal => !self.quiet,
            Text::Chatty => !self.quiet && (self.verbose > 0 || std::io::stdout().is_terminal()),
        }
    }

    /// Prints a command's result: `doc` as one JSON document under `--json`, else `text` (to
    /// stdout) when [`Printer::shows`] `when`.
    pub fn result<T: Serialize + ?Sized>(
        &self,
        doc: &T,
        when: Text,
        text: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> anyhow::Result<()> {
        if let Some(r) = &self.record {
            let v = serde_json::to_value(doc)?;
            r.lock().map_err(|_| anyhow::anyhow!("a thread failed while printing"))?.push(v);
            if self.json {
                return Ok(());
            }
        }
        let mut out = std::io::stdout().lock();
        if self.json {
            serde_json::to_writer_pretty(&mut out, doc)?;
            writeln!(out)?;
        } else if self.shows(when) {
            text(&mut out)?;
        }
        out.flush()?;
        Ok(())
    }

    /// Raw bytes on stdout (`dump`, `cat blob`): data, printed even with `-q`.
    pub fn bytes(&self, data: &[u8]) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(data)?;
        out.flush()?;
        Ok(())
    }

    /// A note or warning on stderr, unless `-q`.
    pub fn note(&self, line: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    /// An error line on stderr, always.
    pub fn error(&self, line: impl std::fmt::Display) {
        eprintln!("{line}");
    }

    /// A byte-counting progress bar on stderr when it is a terminal and not `-q`; `total` may be
    /// set later. `with_path` shows the file being processed instead of a bar.
    pub fn byte_bar(&self, total: Option<u64>, with_path: bool) -> Option<ProgressBar> {
        if self.quiet || !std::io::stderr().is_terminal() {
            return None;
        }
        let template = if with_path {
            "{spinner} {elapsed_precise} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {wide_msg}"
        } else {
            "{spinner} {elapsed_precise} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}"
        };
        let b = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        b.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
        b.enable_steady_tick(Duration::from_millis(200));
        Some(b)
    }
}

/// The bar shows the path of a file at most this often: formatting and setting it for every file
/// cost the walker's thread a string and a lock per file, for a line redrawn a few times a second.
const PATH_EVERY: Duration = Duration::from_millis(100);

/// The backup's progress: the bar, per-file lines with `-vv`, errors and warnings on stderr.
pub struct BackupProgress {
    /// The bar, when one is drawn.
    bar: Option<ProgressBar>,
    /// The printer's settings.
    out: Printer,
    start: std::time::Instant,
    /// When the bar's path was last set, in milliseconds after `start` (`u64::MAX`: never).
    path_shown: std::sync::atomic::AtomicU64,
}

impl BackupProgress {
    /// The progress of a backup drawn on `bar` (if any) and printed as `out` says.
    pub fn new(bar: Option<ProgressBar>, out: Printer) -> BackupProgress {
        let never = std::sync::atomic::AtomicU64::new(u64::MAX);
        BackupProgress { bar, out, start: std::time::Instant::now(), path_shown: never }
    }

    /// True when the bar's path is due to be set again (at most once per [`PATH_EVERY`]).
    fn path_due(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let now = self.start.elapsed().as_millis() as u64;
        let last = self.path_shown.load(Relaxed);
        if last != u64::MAX && now.saturating_sub(last) < PATH_EVERY.as_millis() as u64 {
            return false;
        }
        self.path_shown.compare_exchange(last, now, Relaxed, Relaxed).is_ok()
    }

    fn say(&self, line: String, always: bool) {
        if !always && self.out.quiet() {
            return;
        }
        match &self.bar {
            Some(b) => b.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }
}

impl cairn::backup::Progress for BackupProgress {
    fn file(&self, path: &Path, _size: u64) {
        if let Some(b) = self.bar.as_ref().filter(|_| self.path_due()) {
            b.set_message(path.display().to_string());
        }
        if self.out.verbose() > 1 {
            self.say(format!("{}", path.display()), true);
        }
    }
    fn bytes(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }
    fn error(&self, path: &Path, message: &str) {
        self.say(format!("cairn: error: {}: {message}", path.display()), true);
    }
    fn warning(&self, path: &Path, message: &str) {
        self.say(format!("cairn: warning: {}: {message}", path.display()), false);
    }
}

/// The restore's progress bar.
pub struct RestoreProgress(pub Option<ProgressBar>);

impl cairn::restore::RestoreProgress for RestoreProgress {
    fn bytes(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }
}

/// `2024-03-01 12:00:00` for tables.
pub fn short_time(t: &cairn::tree::Time) -> String {
    t.to_rfc3339().chars().take(19).collect::<String>().replace('T', " ")
}

/// One source of a snapshot in `snapshots --json` and `cat snapshot` (format-spec §8.1): never
/// a command's text.
#[derive(serde::Serialize)]
pub struct SourceView {
    /// The absolute path the source covers in the snapshot.
    pub path: String,
    /// `paths`, `stdin` or `command`.
    pub kind: &'static str,
    /// A command's exit status; `null` for other kinds.
    pub exit_status: Option<i32>,
    /// A stream's or command's byte count; `null` for paths.
    pub bytes: Option<u64>,
}

impl SourceView {
    /// The sources of `snap`, in its order.
    pub fn of(snap: &cairn::snapshot::Snapshot) -> Vec<SourceView> {
        snap.sources()
            .iter()
            .map(|r| SourceView {
                path: String::from_utf8_lossy(&r.absolute_path()).into_owned(),
                kind: r.kind(),
                exit_status: r.exit_status(),
                bytes: r.bytes(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn::backup::Progress;

    #[test]
    fn the_bar_shows_a_path_at_most_once_a_tenth_of_a_second() {
        let out = Printer { json: false, quiet: false, verbose: 0, record: None };
        let p = BackupProgress::new(Some(ProgressBar::hidden()), out);
        let bar = p.bar.clone().unwrap();
        p.file(Path::new("/first"), 1);
        assert_eq!(bar.message(), "/first", "the first file is shown at once");
        for i in 0..1000 {
            p.file(Path::new(&format!("/next-{i}")), 1);
        }
        assert_eq!(bar.message(), "/first", "files within the tenth of a second are not");
        std::thread::sleep(PATH_EVERY + Duration::from_millis(20));
        p.file(Path::new("/later"), 1);
        assert_eq!(bar.message(), "/later");
    }
}
