//! `--metrics-file`: after `backup`, `forget`, `prune`, `check` and `copy` (and a job's `run`, through
//! [`write`]), the run's series in the Prometheus text format that node_exporter's textfile
//! collector reads (docs/monitoring.md). Each command makes one call on the [`Recorder`] with what
//! it measured; [`finish`] adds the run's own series (time, duration, outcome) and rewrites the
//! file atomically (a temporary file in the same directory, fsync, rename), keeping every series
//! of other commands and label sets that is in it. Encoding is `prometheus-client`'s.

use super::args::Global;
use super::{Ctx, Outcome};
use cairn::backup::BackupResult;
use cairn::id::IndexId;
use cairn::layout::{ObjectType, StoredId};
use cairn::repository::Repository;
use cairn::tree::Time;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Every series family cairn writes, with its help text. All are gauges.
pub const FAMILIES: &[(&str, &str)] = &[
    ("cairn_last_run_timestamp_seconds", "When the last run of the command ended, in Unix time"),
    ("cairn_last_run_duration_seconds", "How long the last run of the command took"),
    ("cairn_last_run_outcome", "How the last run ended: 0 success, 1 partial (backup: some files not read), 2 failed"),
    ("cairn_last_success_timestamp_seconds", "When the last run that did not fail ended, in Unix time"),
    ("cairn_backup_read_bytes", "Bytes the last backup read from its sources"),
    ("cairn_backup_processed_bytes", "Bytes of file content the last backup's snapshot covers"),
    ("cairn_backup_added_bytes", "Plain bytes of the blobs the last backup added"),
    ("cairn_backup_stored_bytes", "Stored (compressed, sealed) bytes of the blobs the last backup added"),
    ("cairn_backup_files", "Files of the last backup by state: new, changed, unchanged"),
    ("cairn_backup_size_change_ratio", "Processed bytes of the last backup against its parent snapshot's, minus 1"),
    ("cairn_snapshots", "Snapshots in the repository after the run"),
    ("cairn_repository_size_bytes", "Stored bytes of the packs the repository's index lists"),
    ("cairn_check_errors", "Errors the last check found"),
    ("cairn_check_warnings", "Warnings the last check found"),
    ("cairn_forget_removed_snapshots", "Snapshots the last forget removed"),
    ("cairn_prune_deleted_bytes", "Bytes of packs the last prune deleted"),
    ("cairn_copy_copied_snapshots", "Snapshots the last copy stored in the destination"),
    ("cairn_drill_passed", "Whether every check of the last drill passed (1) or not (0), whatever its time"),
    ("cairn_drill_duration_seconds", "How long the last drill took"),
    ("cairn_drill_rto_seconds", "The recovery-time objective the last drill was held to"),
    ("cairn_drill_over_rto", "Whether the last drill passed but took longer than its RTO (1) or not (0)"),
    ("cairn_drill_restored_bytes", "Bytes the last drill restored (or streamed) and compared"),
];

/// The families a failed run replaces (the others keep describing the last run that did not fail).
const RUN_FAMILIES: [&str; 3] =
    ["cairn_last_run_timestamp_seconds", "cairn_last_run_duration_seconds", "cairn_last_run_outcome"];

/// The label names every series carries, in order. `cairn_job`, not `job`: Prometheus sets `job` on
/// every scraped series itself and would rename this one to `exported_job`.
pub const LABELS: [&str; 4] = ["command", "cairn_job", "host", "repository"];

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// Done.
    Success,
    /// A backup made its snapshot without some files.
    Partial,
    /// It failed (or was interrupted).
    Failed,
}

impl RunOutcome {
    /// The value of `cairn_last_run_outcome`.
    pub fn value(self) -> f64 {
        match self {
            RunOutcome::Success => 0.0,
            RunOutcome::Partial => 1.0,
            RunOutcome::Failed => 2.0,
        }
    }
}

/// The labels of one command's series: they own every series carrying exactly these values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Labels {
    /// `backup`, `forget`, `prune`, `check`, `copy`, `run`.
    pub command: String,
    /// The job profile's name; empty outside `run`.
    pub job: String,
    /// The snapshot host (backup) or this machine's host name.
    pub host: String,
    /// The repository as [`repository_label`] writes it.
    pub repository: String,
}

impl Labels {
    fn pairs(&self) -> Vec<(String, String)> {
        [&self.command, &self.job, &self.host, &self.repository]
            .iter()
            .zip(LABELS)
            .map(|(v, k)| (k.to_string(), v.to_string()))
            .collect()
    }
    /// True when `labels` carries these values.
    fn owns(&self, labels: &[(String, String)]) -> bool {
        self.pairs().iter().all(|p| labels.contains(p))
    }
}

/// The repository label: the URL without user information, query or fragment, a local path made
/// absolute. A password never reaches it (cairn refuses one in the URL).
pub fn repository_label(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let rest = rest.split(['?', '#']).next().unwrap_or("");
        let (auth, path) = rest.split_once('/').map(|(a, p)| (a, format!("/{p}"))).unwrap_or((rest, String::new()));
        let host = auth.rsplit_once('@').map(|(_, h)| h).unwrap_or(auth);
        return format!("{scheme}://{host}{path}");
    }
    std::path::absolute(url).map(|p| p.display().to_string()).unwrap_or_else(|_| url.to_string())
}

/// One series: family name, its labels, its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The family.
    pub name: String,
    /// Label names and values.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

/// What one command measured, gathered by its one call; `None` values are skipped.
#[derive(Debug, Default)]
struct Facts {
    /// The host label, when not this machine's (a backup's `--host`).
    host: Option<String>,
    /// Each with only its own extra labels.
    values: Vec<Sample>,
}

/// Gathers what a command measured for `--metrics-file`; does nothing without it.
#[derive(Debug, Default)]
pub struct Recorder {
    enabled: bool,
    facts: Mutex<Facts>,
}

impl Recorder {
    /// The recorder for `g`'s options.
    pub fn new(g: &Global) -> Self {
        Recorder { enabled: g.metrics_file.is_some(), facts: Mutex::default() }
    }

    /// A recorder that records whatever the options, for a caller that writes its own file with
    /// [`Recorder::take`] and [`write`] (a job's `run`: one set of series labelled with the job).
    pub fn recording() -> Self {
        Recorder { enabled: true, facts: Mutex::default() }
    }

    /// What was recorded so far, which is cleared: the host label a backup set (else `None`) and the
    /// samples, each with only its own extra labels (for [`write`]'s `extra`).
    pub fn take(&self) -> (Option<String>, Vec<Sample>) {
        let facts = std::mem::take(&mut *self.facts.lock().unwrap_or_else(|e| e.into_inner()));
        (facts.host, facts.values)
    }

    fn with(&self, f: impl FnOnce(&mut Facts)) {
        if self.enabled {
            if let Ok(mut facts) = self.facts.lock() {
                f(&mut facts);
            }
        }
    }

    fn set(&self, name: &str, value: f64) {
        self.set_labelled(name, Vec::new(), value);
    }

    fn set_labelled(&self, name: &str, labels: Vec<(String, String)>, value: f64) {
        self.with(|f| f.values.push(Sample { name: name.to_string(), labels, value }));
    }

    /// The repository's snapshot count and pack bytes (from the index: nothing under `data/` or
    /// `tree/` is read). A failure leaves the two series out.
    fn repository(&self, repo: &Repository) {
        if !self.enabled {
            return;
        }
        if let Ok((snapshots, bytes)) = repository_totals(repo) {
            self.set("cairn_snapshots", snapshots as f64);
            self.set("cairn_repository_size_bytes", bytes as f64);
        }
    }

    /// A backup's counters; `host` is the snapshot's.
    pub fn backup(&self, repo: &Repository, r: &BackupResult, host: &str) {
        if !self.enabled {
            return;
        }
        let s = &r.summary;
        self.with(|f| f.host = Some(host.to_string()));
        self.set("cairn_backup_read_bytes", s.bytes_read as f64);
        self.set("cairn_backup_processed_bytes", s.bytes_processed as f64);
        self.set("cairn_backup_added_bytes", s.bytes_added as f64);
        self.set("cairn_backup_stored_bytes", s.bytes_added_stored as f64);
        for (state, n) in [("new", s.files_new), ("changed", s.files_changed), ("unchanged", s.files_unchanged)] {
            self.set_labelled("cairn_backup_files", vec![("state".into(), state.into())], n as f64);
        }
        let parent = r.parent.and_then(|p| repo.readable().ok()?.load_snapshot(&p).ok());
        if let Some(old) = parent.map(|p| p.summary().bytes_processed).filter(|b| *b > 0) {
            self.set("cairn_backup_size_change_ratio", s.bytes_processed as f64 / old as f64 - 1.0);
        }
        self.repository(repo);
    }

    /// A check's error and warning counts.
    pub fn check(&self, repo: &Repository, errors: usize, warnings: usize) {
        self.set("cairn_check_errors", errors as f64);
        self.set("cairn_check_warnings", warnings as f64);
        self.repository(repo);
    }

    /// A forget's removed snapshots.
    pub fn forget(&self, repo: &Repository, removed: usize) {
        self.set("cairn_forget_removed_snapshots", removed as f64);
        self.repository(repo);
    }

    /// A prune's deleted bytes.
    pub fn prune(&self, repo: &Repository, deleted_bytes: u64) {
        self.set("cairn_prune_deleted_bytes", deleted_bytes as f64);
        self.repository(repo);
    }

    /// A drill's verdict, times and bytes.
    pub fn drill(&self, ev: &cairn::ops::drill::Evidence) {
        use cairn::ops::drill::Verdict;
        self.set("cairn_drill_passed", if ev.passed { 1.0 } else { 0.0 });
        self.set("cairn_drill_duration_seconds", ev.duration_ms as f64 / 1000.0);
        if let Some(r) = ev.rto_ms {
            self.set("cairn_drill_rto_seconds", r as f64 / 1000.0);
        }
        self.set("cairn_drill_over_rto", if ev.verdict == Verdict::OverRto { 1.0 } else { 0.0 });
        self.set("cairn_drill_restored_bytes", ev.compared_bytes as f64);
    }

    /// A copy's stored snapshots (`repo` is the destination).
    pub fn copy(&self, repo: &Repository, copied: usize) {
        self.set("cairn_copy_copied_snapshots", copied as f64);
        self.repository(repo);
    }
}

/// Snapshots (a listing of `snapshots/`) and the stored bytes of every pack the index files list.
pub fn repository_totals(repo: &Repository) -> cairn::Result<(usize, u64)> {
    let snapshots = repo.snapshot_ids()?.len();
    let mut seen = HashSet::new();
    let mut bytes = 0u64;
    for o in repo.backend().list(ObjectType::Index.dir())? {
        let Some(id) = IndexId::from_path(&o.path) else { continue };
        for p in repo.read_index(&id)?.packs() {
            if seen.insert(p.id) {
                bytes = bytes.saturating_add(p.size);
            }
        }
    }
    Ok((snapshots, bytes))
}

/// The name a command records metrics as and the URL of the repository it changes or checks
/// (`copy`: the destination), for the commands that record (dry runs record nothing).
pub fn command_labels(c: &super::args::Command, g: &Global) -> Option<(&'static str, String)> {
    use super::args::Command as C;
    let repo = g.repo.clone().unwrap_or_default();
    match c {
        C::Backup(a) if !a.dry_run => Some(("backup", repo)),
        C::Forget(a) if !a.dry_run => Some(("forget", repo)),
        C::Prune(a) if !a.dry_run => Some(("prune", repo)),
        C::Check(_) => Some(("check", repo)),
        C::Copy(a) if !a.dry_run => Some(("copy", a.to_repo.clone().unwrap_or(repo))),
        C::Drill(_) => Some(("drill", repo)),
        _ => None,
    }
}

/// After a command named `command` on the repository at `repo_url` that began at `started` and
/// ended with `result`: writes its series when `--metrics-file` was given (and it was no dry
/// run). A file that cannot be written is a warning on stderr; the command's exit code stays.
pub fn finish(ctx: &Ctx, (command, repo_url): (&str, String), started: Time, result: &anyhow::Result<Outcome>) {
    let Some(path) = &ctx.g.metrics_file else { return };
    let (host, samples) = ctx.metrics.take();
    let outcome = match result {
        Ok(Outcome::Partial) => RunOutcome::Partial,
        Ok(_) => RunOutcome::Success,
        Err(_) => RunOutcome::Failed,
    };
    let labels = Labels {
        command: command.to_string(),
        job: String::new(),
        host: host.unwrap_or_else(cairn::repository::hostname),
        repository: repository_label(&repo_url),
    };
    match write(path, &labels, outcome, started, Time::now(), &samples) {
        Ok(Some(w)) => ctx.out.note(format!("cairn: warning: {w}")),
        Ok(None) => {}
        Err(e) => ctx.out.error(format!("cairn: warning: metrics file {} not written: {e}", path.display())),
    }
}

/// Writes the series of a run labelled `labels` that ended with `outcome` into the file at `path`,
/// keeping the series of other label sets there. `extra` holds what the run measured (family,
/// extra labels such as `state`, value). A run that did not fail replaces every series of its
/// label set; a failed one only its time, duration and outcome and the families in `extra` (a
/// check that found errors), so the others (last success, a backup's counters) keep describing
/// the last run that did not fail. Returns a warning when the existing file could not be read and
/// was replaced. Two cairn processes writing one file take turns (an exclusive `flock` on
/// `.NAME.lock` beside it), so neither loses the other's series.
pub fn write(
    path: &Path,
    labels: &Labels,
    outcome: RunOutcome,
    started: Time,
    finished: Time,
    extra: &[Sample],
) -> std::io::Result<Option<String>> {
    let (dir, name) = split(path)?;
    // Never through a symlink: the directory may be writable by others (node_exporter's).
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join(format!(".{name}.lock")))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)?;
    let (mut samples, warning) = match std::fs::read_to_string(path) {
        Ok(text) => match parse(&text) {
            Ok(s) => (s, None),
            Err(e) => (Vec::new(), Some(format!("metrics file {} is not valid ({e}); it is replaced", path.display()))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), None),
        Err(e) => {
            (Vec::new(), Some(format!("metrics file {} could not be read ({e}); it is replaced", path.display())))
        }
    };
    let known: HashSet<&str> = FAMILIES.iter().map(|(n, _)| *n).collect();
    samples.retain(|s| known.contains(s.name.as_str()));
    let failed = outcome == RunOutcome::Failed;
    let measured: HashSet<&str> = extra.iter().map(|s| s.name.as_str()).collect();
    samples.retain(|s| {
        let name = s.name.as_str();
        !labels.owns(&s.labels) || (failed && !RUN_FAMILIES.contains(&name) && !measured.contains(name))
    });
    let base = labels.pairs();
    let secs = |t: Time| t.as_nanos() as f64 / 1e9;
    let mut add = |name: &str, extra_labels: &[(String, String)], value: f64| {
        if value.is_finite() {
            let mut l = base.clone();
            l.extend(extra_labels.iter().cloned());
            samples.push(Sample { name: name.to_string(), labels: l, value });
        }
    };
    add("cairn_last_run_timestamp_seconds", &[], secs(finished));
    add("cairn_last_run_duration_seconds", &[], (secs(finished) - secs(started)).max(0.0));
    add("cairn_last_run_outcome", &[], outcome.value());
    if !failed {
        add("cairn_last_success_timestamp_seconds", &[], secs(finished));
    }
    for s in extra.iter().filter(|s| known.contains(s.name.as_str())) {
        add(&s.name, &s.labels, s.value);
    }
    let text = encode(&samples).map_err(|_| std::io::Error::other("the metrics could not be encoded"))?;
    atomic_write(path, text.as_bytes())?;
    Ok(warning)
}

/// The samples as one registry's Prometheus text (families in [`FAMILIES`] order, series sorted).
fn encode(samples: &[Sample]) -> Result<String, std::fmt::Error> {
    #[derive(Debug)]
    struct All(BTreeMap<usize, BTreeMap<Vec<(String, String)>, f64>>);
    impl Collector for All {
        fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            for (i, series) in &self.0 {
                let (name, help) = FAMILIES[*i];
                let mut m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
                for (labels, value) in series {
                    m.encode_family(labels)?.encode_gauge(value)?;
                }
            }
            Ok(())
        }
    }
    let mut all = BTreeMap::<usize, BTreeMap<Vec<(String, String)>, f64>>::new();
    for s in samples {
        if let Some(i) = FAMILIES.iter().position(|(n, _)| *n == s.name) {
            all.entry(i).or_default().insert(s.labels.clone(), s.value);
        }
    }
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(All(all)));
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?;
    Ok(out)
}

/// The directory and the file name of `path`.
fn split(path: &Path) -> std::io::Result<(PathBuf, String)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| std::io::Error::other("the metrics file path names no file"))?;
    Ok((dir, name.to_string_lossy().into_owned()))
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, renames it over `path` and syncs
/// the directory: a reader sees the old file or the new one, never a part. Neither the temporary
/// file nor the lock file ends in `.prom`, so the textfile collector never reads them.
fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let (dir, name) = split(path)?;
    let (tmp, mut f) = create_temp(&dir, &name)?;
    let result = (|| {
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Creates a new file `.NAME.PID.NANOS.tmp` in `dir`, readable by all (node_exporter reads the
/// result). `create_new` never follows a symlink and never opens a file someone planted under the
/// name: on a name already taken it tries another.
fn create_temp(dir: &Path, name: &str) -> std::io::Result<(PathBuf, std::fs::File)> {
    let mut last = None;
    for _ in 0..8 {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let tmp = dir.join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no temporary file name was free")))
}

/// The samples of a text-format file: comments and blank lines skipped, a timestamp after the
/// value ignored. A line that does not parse is an error naming its number.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(parse_line(line).ok_or_else(|| format!("line {} does not parse", n + 1))?);
    }
    Ok(out)
}

fn parse_line(line: &str) -> Option<Sample> {
    let end = line.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).unwrap_or(line.len());
    let (name, mut rest) = line.split_at(end);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = r.trim_start();
        loop {
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let eq = rest.find('=')?;
            let key = rest[..eq].trim();
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return None;
            }
            let mut chars = rest[eq + 1..].trim_start().strip_prefix('"')?.char_indices();
            let mut value = String::new();
            let close = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (_, c) => value.push(c),
                }
            };
            labels.push((key.to_string(), value));
            rest = rest[eq + 1..].trim_start()[1 + close + 1..].trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        }
    }
    let mut fields = rest.split_whitespace();
    let value: f64 = fields.next()?.parse().ok()?;
    if fields.nth(1).is_some() {
        return None;
    }
    Some(Sample { name: name.to_string(), labels, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(command: &str, host: &str) -> Labels {
        Labels { command: command.into(), job: String::new(), host: host.into(), repository: "/r".into() }
    }

    #[test]
    fn parses_what_it_writes_and_is_lenient_about_the_rest() {
        let s =
            parse("# HELP x y\n\ncairn_snapshots{command=\"a\\\"b\",host=\"h\\\\\"} 3 1700000000000\nup 1\n").unwrap();
        assert_eq!(s[0].labels, vec![("command".into(), "a\"b".into()), ("host".into(), "h\\".into())]);
        assert_eq!((s[0].value, s[1].name.as_str(), s[1].value), (3.0, "up", 1.0));
        assert!(parse("cairn_snapshots{command=\"a} 3").is_err());
        assert!(parse("garbage here now\n").is_err());
        assert_eq!(parse("cairn_x{a=\"1\",} NaN").unwrap()[0].labels.len(), 1);
    }

    #[test]
    fn a_command_keeps_the_others_series_and_a_failure_keeps_the_last_success() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairn.prom");
        let t = |s: i64| Time { secs: s, nanos: 0 };
        let extra = [
            Sample { name: "cairn_check_errors".into(), labels: vec![], value: 0.0 },
            Sample { name: "cairn_check_warnings".into(), labels: vec![], value: 1.0 },
        ];
        write(&path, &labels("check", "h"), RunOutcome::Success, t(100), t(110), &extra).unwrap();
        write(&path, &labels("backup", "h"), RunOutcome::Success, t(200), t(230), &[]).unwrap();
        // A failed check: its run series and what it measured change, its last success stays.
        let errors = [Sample { name: "cairn_check_errors".into(), labels: vec![], value: 3.0 }];
        write(&path, &labels("check", "h"), RunOutcome::Failed, t(300), t(301), &errors).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let got = parse(&text).unwrap();
        let find = |name: &str, cmd: &str| {
            got.iter().find(|s| s.name == name && s.labels.contains(&("command".into(), cmd.into()))).map(|s| s.value)
        };
        assert_eq!(find("cairn_last_run_timestamp_seconds", "check"), Some(301.0), "{text}");
        assert_eq!(find("cairn_last_run_outcome", "check"), Some(2.0));
        assert_eq!(find("cairn_last_success_timestamp_seconds", "check"), Some(110.0));
        assert_eq!(find("cairn_check_errors", "check"), Some(3.0));
        assert_eq!(find("cairn_check_warnings", "check"), Some(1.0), "kept from the last check that did not fail");
        assert_eq!(find("cairn_last_run_duration_seconds", "backup"), Some(30.0));
        assert_eq!(find("cairn_last_success_timestamp_seconds", "backup"), Some(230.0));
        assert!(text.contains("# TYPE cairn_last_run_outcome gauge\n"), "{text}");
        assert!(
            text.contains(
                "cairn_last_run_outcome{command=\"backup\",cairn_job=\"\",host=\"h\",repository=\"/r\"} 0.0\n"
            ) || text
                .contains("cairn_last_run_outcome{command=\"backup\",cairn_job=\"\",host=\"h\",repository=\"/r\"} 0\n"),
            "{text}"
        );
        // A corrupt file is replaced, with a warning.
        std::fs::write(&path, "not { metrics\n").unwrap();
        let w = write(&path, &labels("check", "h"), RunOutcome::Success, t(400), t(401), &[]).unwrap();
        assert!(w.unwrap().contains("is not valid (line 1"), "warning names the line");
        assert_eq!(parse(&std::fs::read_to_string(&path).unwrap()).unwrap().len(), 4);
        // No temporary file is left behind: the file and its lock file.
        let mut names: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, [".cairn.prom.lock", "cairn.prom"]);
    }

    #[test]
    fn repository_labels_carry_no_credentials() {
        assert_eq!(repository_label("s3://bucket/prefix?region=x"), "s3://bucket/prefix");
        assert_eq!(repository_label("sftp://user@host:22/srv/repo"), "sftp://host:22/srv/repo");
        assert_eq!(repository_label("webdavs://u:secret@dav.example/r#frag"), "webdavs://dav.example/r");
        assert_eq!(repository_label("/srv/repo"), "/srv/repo");
        assert!(repository_label("rel/repo").starts_with('/'));
    }
}
