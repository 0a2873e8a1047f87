//! Job profiles (docs/jobs.md): the TOML file that names repositories and jobs, parsed without I/O
//! from its text into a checked, typed [`Profile`] ([`parse`]), and found on disk by the documented
//! order (`--config`, `CAIRN_CONFIG`, `~/.config/cairn/cairn.toml`, `/etc/cairn/cairn.toml`:
//! [`locate`]). It is configuration of the binary, so it lives in the CLI layer; `cairn run` and
//! `cairn config check` read it.

mod drill;
mod raw;
#[cfg(test)]
mod tests;

use super::values::{self, FixedDuration};
use cairn::retention::PolicyFile;
pub use drill::JobDrill;
use raw::{FileToml, HookToml, JobToml, RepositoryToml};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use toml::Spanned;

/// A profile that cannot be used: what is wrong, and the line (1-based) where, when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileError {
    /// The line of the offending key or value.
    pub line: Option<usize>,
    /// What is wrong, naming the key.
    pub message: String,
}

impl std::fmt::Display for ProfileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

/// A whole profile: repositories and jobs by name.
#[derive(Debug, Clone)]
pub struct Profile {
    /// `[repository.NAME]`.
    pub repositories: BTreeMap<String, RepoProfile>,
    /// `[job.NAME]`.
    pub jobs: BTreeMap<String, Job>,
}

/// Where a repository's password comes from (at most one per repository; none: the global
/// options, `CAIRN_PASSWORD`, then a prompt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// `password_file`: its first line.
    File(PathBuf),
    /// `password_command`: the first line of its output.
    Command(String),
    /// `password_env`: the value of this variable.
    Env(String),
}

/// `[repository.NAME]`.
#[derive(Debug, Clone)]
pub struct RepoProfile {
    /// `url`, as `-r` takes it.
    pub url: String,
    /// The password source, if the profile names one.
    pub password: Option<PasswordSource>,
    /// `cache_dir`.
    pub cache_dir: Option<PathBuf>,
    /// `no_cache`.
    pub no_cache: bool,
    /// `compression` for the jobs' backups, as `backup --compression` takes it (checked).
    pub compression: Option<String>,
    /// `verify` for the jobs' backups, as `backup --verify` takes it (checked).
    pub verify: Option<String>,
    /// `options` as `-o KEY=VALUE` words, in key order.
    pub options: Vec<String>,
    /// `options_file`.
    pub options_file: Option<PathBuf>,
}

/// A command whose standard output becomes the file `path` of the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCommand {
    /// Its path in the snapshot, relative to `/` (a plain relative path: no `.`, `..` or empty
    /// component).
    pub path: String,
    /// The shell command (`sh -c`).
    pub command: String,
}

/// The exclude options of a job, each as the `backup` flag of the same name reads it.
#[derive(Debug, Clone, Default)]
pub struct Excludes {
    /// `excludes` (`--exclude`).
    pub excludes: Vec<String>,
    /// `iexcludes` (`--iexclude`).
    pub iexcludes: Vec<String>,
    /// `exclude_files` (`--exclude-file`).
    pub exclude_files: Vec<PathBuf>,
    /// `iexclude_files` (`--iexclude-file`).
    pub iexclude_files: Vec<PathBuf>,
    /// `exclude_caches`.
    pub exclude_caches: bool,
    /// `exclude_if_present`.
    pub exclude_if_present: Vec<String>,
    /// `exclude_larger_than`, as written (checked).
    pub exclude_larger_than: Option<String>,
    /// `one_file_system` (`-x`).
    pub one_file_system: bool,
}

/// A job's retention: classes of docs/retention.md, inline or in a file read when the job runs.
#[derive(Debug, Clone)]
pub enum Retention {
    /// `[job.NAME.retention]`, already checked.
    Inline(PolicyFile),
    /// `retention_file`.
    File(PathBuf),
}

/// The shell commands run around a job (each list in order; the first failure stops it).
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    /// Before the backup; a failure aborts the run.
    pub before: Vec<String>,
    /// After a run that did not fail.
    pub after: Vec<String>,
    /// After a run that failed (in any step, hooks included).
    pub on_failure: Vec<String>,
}

/// The freshness and size thresholds `cairn status` reads for a job.
#[derive(Debug, Clone, Default)]
pub struct Thresholds {
    /// `rpo`: the newest snapshot older than this is critical.
    pub rpo: Option<FixedDuration>,
    /// `warn`: older than this is a warning.
    pub warn: Option<FixedDuration>,
    /// `size_change`: a size change against the previous snapshot beyond this fraction (0.5 for
    /// `50%`) is an anomaly; with the text as written.
    pub size_change: Option<(f64, String)>,
}

/// `[job.NAME]`.
#[derive(Debug, Clone)]
pub struct Job {
    /// The job's name.
    pub name: String,
    /// The name of its repository (defined in the profile).
    pub repository: String,
    /// Absolute paths to back up.
    pub paths: Vec<PathBuf>,
    /// Commands whose output is backed up, in the same snapshot.
    pub commands: Vec<JobCommand>,
    /// Exclude options for the paths.
    pub excludes: Excludes,
    /// Tags of its snapshots.
    pub tags: Vec<String>,
    /// Host name to record (default: this machine's).
    pub host: Option<String>,
    /// Retention; `None`: the job forgets nothing.
    pub retention: Option<Retention>,
    /// How often the job prunes its repository; `None`: never.
    pub prune_every: Option<FixedDuration>,
    /// Hooks.
    pub hooks: Hooks,
    /// Thresholds for `cairn status`.
    pub thresholds: Thresholds,
    /// Where to write the job's metrics.
    pub metrics_file: Option<PathBuf>,
    /// `[job.NAME.drill]`: what `run --drill` does.
    pub drill: Option<JobDrill>,
}

impl Job {
    /// The snapshot group the job's backups form (format-spec §8.1): its host (this machine's
    /// unless the profile names one) and its source paths as recorded, sorted and distinct.
    pub fn group(&self) -> (String, Vec<Vec<u8>>) {
        use std::os::unix::ffi::OsStrExt;
        let host = self.host.clone().unwrap_or_else(cairn::repository::hostname);
        let mut paths: Vec<Vec<u8>> = self.paths.iter().map(|p| p.as_os_str().as_bytes().to_vec()).collect();
        paths.extend(self.commands.iter().map(|c| format!("/{}", c.path).into_bytes()));
        paths.sort();
        paths.dedup();
        (host, paths)
    }
}

/// The 1-based line of byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The key of a `key = value` line when byte `offset` lies in its value (serde's type errors name
/// the value, not the key).
fn key_before(text: &str, offset: usize) -> Option<&str> {
    let offset = offset.min(text.len());
    let start = text.as_bytes()[..offset].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let before = text.get(start..offset)?;
    let (key, _) = before.split_once('=')?;
    let key = key.trim();
    (!key.is_empty()).then_some(key)
}

/// Builds errors that point into one text.
struct At<'a>(&'a str);

impl At<'_> {
    fn err<T>(&self, span: std::ops::Range<usize>, message: impl Into<String>) -> Result<T, ProfileError> {
        Err(ProfileError { line: Some(line_of(self.0, span.start)), message: message.into() })
    }

    /// An absolute path, else an error naming `key`.
    fn abs(&self, v: Spanned<String>, key: &str) -> Result<PathBuf, ProfileError> {
        let p = PathBuf::from(v.get_ref());
        if !p.is_absolute() {
            return self.err(v.span(), format!("{key} = {:?}: the path must be absolute", v.get_ref()));
        }
        Ok(p)
    }

    /// A fixed-length duration (`7d`, `36h`), else an error naming `key`.
    fn duration(&self, v: Option<Spanned<String>>, key: &str) -> Result<Option<FixedDuration>, ProfileError> {
        let Some(v) = v else { return Ok(None) };
        match v.get_ref().parse::<FixedDuration>() {
            Ok(d) if d.secs > 0 => Ok(Some(d)),
            Ok(_) => self.err(v.span(), format!("{key} = {:?}: the duration must be above zero", v.get_ref())),
            Err(e) => self.err(v.span(), format!("{key} = {:?}: {e}", v.get_ref())),
        }
    }
}

/// A name of a job or repository: letters, digits, `.`, `_` and `-`.
fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A plain relative path inside a snapshot: not empty, not absolute, no `.`, `..` or empty
/// component, no NUL.
fn plain_relative(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && !p.contains('\0')
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
        && Path::new(p).components().all(|c| matches!(c, Component::Normal(_)))
}

/// Parses and checks the text of a profile: unknown keys, values of the wrong type or form,
/// relative paths, jobs naming an undefined repository are errors naming the key and its line.
pub fn parse(text: &str) -> Result<Profile, ProfileError> {
    let f: FileToml = toml::from_str(text).map_err(|e| {
        let message = e.message().trim_end();
        ProfileError {
            line: e.span().map(|s| line_of(text, s.start)),
            message: match e.span().and_then(|s| key_before(text, s.start)) {
                Some(k) if !message.contains(k) => format!("`{k}`: {message}"),
                _ => message.to_string(),
            },
        }
    })?;
    let at = At(text);
    let mut repositories = BTreeMap::new();
    for (name, r) in f.repository {
        let span = r.span();
        if !valid_name(&name) {
            return at.err(span, format!("repository name {name:?}: use letters, digits, `.`, `_` and `-`"));
        }
        repositories.insert(name.clone(), repository(&at, &name, span, r.into_inner())?);
    }
    let mut jobs = BTreeMap::new();
    for (name, j) in f.job {
        let span = j.span();
        if !valid_name(&name) {
            return at.err(span, format!("job name {name:?}: use letters, digits, `.`, `_` and `-`"));
        }
        let job = job(&at, &name, span, j.into_inner(), &repositories)?;
        jobs.insert(name, job);
    }
    Ok(Profile { repositories, jobs })
}

fn repository(
    at: &At,
    name: &str,
    span: std::ops::Range<usize>,
    r: RepositoryToml,
) -> Result<RepoProfile, ProfileError> {
    let key = |k: &str| format!("repository.{name}.{k}");
    if r.url.get_ref().trim().is_empty() {
        return at.err(r.url.span(), format!("{} is empty", key("url")));
    }
    let given = [r.password_file.is_some(), r.password_command.is_some(), r.password_env.is_some()];
    if given.iter().filter(|&&g| g).count() > 1 {
        return at
            .err(span, format!("repository.{name}: give one of password_file, password_command and password_env"));
    }
    let password = if let Some(f) = r.password_file {
        Some(PasswordSource::File(at.abs(f, &key("password_file"))?))
    } else if let Some(c) = r.password_command {
        Some(PasswordSource::Command(c))
    } else if let Some(v) = r.password_env {
        let ok = valid_name(v.get_ref()) && !v.get_ref().contains(['.', '-']);
        if !ok {
            return at.err(v.span(), format!("{} = {:?} is not a variable name", key("password_env"), v.get_ref()));
        }
        Some(PasswordSource::Env(v.into_inner()))
    } else {
        None
    };
    let compression = match r.compression {
        Some(c) => match c.get_ref().parse::<cairn::compress::Compression>() {
            Ok(_) => Some(c.into_inner()),
            Err(e) => return at.err(c.span(), format!("{} = {:?}: {e}", key("compression"), c.get_ref())),
        },
        None => None,
    };
    let verify = match r.verify {
        Some(v) => match v.get_ref().parse::<cairn::writer::Verification>() {
            Ok(_) => Some(v.into_inner()),
            Err(e) => return at.err(v.span(), format!("{} = {:?}: {e}", key("verify"), v.get_ref())),
        },
        None => None,
    };
    Ok(RepoProfile {
        url: r.url.into_inner(),
        password,
        cache_dir: r.cache_dir.map(|p| at.abs(p, &key("cache_dir"))).transpose()?,
        no_cache: r.no_cache,
        compression,
        verify,
        options: r.options.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
        options_file: r.options_file.map(|p| at.abs(p, &key("options_file"))).transpose()?,
    })
}

fn job(
    at: &At,
    name: &str,
    span: std::ops::Range<usize>,
    j: JobToml,
    repositories: &BTreeMap<String, RepoProfile>,
) -> Result<Job, ProfileError> {
    let key = |k: &str| format!("job.{name}.{k}");
    if !repositories.contains_key(j.repository.get_ref()) {
        return at.err(
            j.repository.span(),
            format!(
                "{} = {:?}: no [repository.{}] in this file",
                key("repository"),
                j.repository.get_ref(),
                j.repository.get_ref()
            ),
        );
    }
    if j.paths.is_empty() && j.commands.is_empty() {
        return at.err(span, format!("job.{name}: nothing to back up: give `paths` or `commands`"));
    }
    let paths = j.paths.into_iter().map(|p| at.abs(p, &key("paths"))).collect::<Result<Vec<_>, _>>()?;
    let mut commands: Vec<JobCommand> = Vec::new();
    for c in j.commands {
        let span = c.span();
        let c = c.into_inner();
        let p = c.path.get_ref();
        if !plain_relative(p) {
            return at.err(
                c.path.span(),
                format!("{} path {p:?}: write a plain relative path such as \"redis/dump.rdb\"", key("commands")),
            );
        }
        if commands.iter().any(|o| o.path == *p) {
            return at.err(c.path.span(), format!("{} path {p:?} is given twice", key("commands")));
        }
        if c.command.trim().is_empty() {
            return at.err(span, format!("{} path {p:?}: the command is empty", key("commands")));
        }
        commands.push(JobCommand { path: c.path.into_inner(), command: c.command });
    }
    if let Some(s) = &j.exclude_larger_than {
        if let Err(e) = values::size(s.get_ref()) {
            return at.err(s.span(), format!("{} = {:?}: {e}", key("exclude_larger_than"), s.get_ref()));
        }
    }
    let excludes = Excludes {
        excludes: j.excludes,
        iexcludes: j.iexcludes,
        exclude_files: j
            .exclude_files
            .into_iter()
            .map(|p| at.abs(p, &key("exclude_files")))
            .collect::<Result<_, _>>()?,
        iexclude_files: j
            .iexclude_files
            .into_iter()
            .map(|p| at.abs(p, &key("iexclude_files")))
            .collect::<Result<_, _>>()?,
        exclude_caches: j.exclude_caches,
        exclude_if_present: j.exclude_if_present,
        exclude_larger_than: j.exclude_larger_than.map(Spanned::into_inner),
        one_file_system: j.one_file_system,
    };
    if j.tags.iter().any(|t| t.is_empty()) {
        return at.err(span, format!("{}: a tag is empty", key("tags")));
    }
    if j.host.as_deref().is_some_and(|h| h.trim().is_empty()) {
        return at.err(span, format!("{} is empty", key("host")));
    }
    let retention = match (j.retention, j.retention_file) {
        (Some(_), Some(f)) => {
            return at.err(f.span(), format!("job.{name}: give `retention` or `retention_file`, not both"))
        }
        (Some(r), None) => {
            let span = r.span();
            match PolicyFile::from_toml(r.into_inner()) {
                Ok(p) => Some(Retention::Inline(p)),
                Err(e) => return at.err(span, format!("{}: {e}", key("retention"))),
            }
        }
        (None, Some(f)) => Some(Retention::File(at.abs(f, &key("retention_file"))?)),
        (None, None) => None,
    };
    let size_change = match j.size_change {
        Some(s) => match size_change(s.get_ref()) {
            Ok(v) => Some((v, s.get_ref().trim().to_string())),
            Err(e) => return at.err(s.span(), format!("{} = {:?}: {e}", key("size_change"), s.get_ref())),
        },
        None => None,
    };
    let hooks = |h: Option<HookToml>| h.map(HookToml::into_vec).unwrap_or_default();
    Ok(Job {
        name: name.to_string(),
        repository: j.repository.into_inner(),
        paths,
        commands,
        excludes,
        tags: j.tags,
        host: j.host,
        retention,
        prune_every: at.duration(j.prune_every, &key("prune_every"))?,
        hooks: Hooks { before: hooks(j.before), after: hooks(j.after), on_failure: hooks(j.on_failure) },
        thresholds: Thresholds {
            rpo: at.duration(j.rpo, &key("rpo"))?,
            warn: at.duration(j.warn, &key("warn"))?,
            size_change,
        },
        metrics_file: j.metrics_file.map(|p| at.abs(p, &key("metrics_file"))).transpose()?,
        drill: j.drill.map(|d| drill::check(at, name, d)).transpose()?,
    })
}

/// A size change threshold: a percentage above zero (`50%`, `200%`), as a fraction.
pub fn size_change(s: &str) -> Result<f64, String> {
    let bad = || "write a percentage above zero such as 50%".to_string();
    let t = s.trim().strip_suffix('%').ok_or_else(bad)?;
    let v: f64 = t.trim().parse().map_err(|_| bad())?;
    if !(v.is_finite() && v > 0.0) {
        return Err(bad());
    }
    Ok(v / 100.0)
}

/// The profile file to read: `given` (`--config` or `CAIRN_CONFIG`), else the first that exists of
/// `$XDG_CONFIG_HOME/cairn/cairn.toml` (or `~/.config/cairn/cairn.toml`) and
/// `/etc/cairn/cairn.toml`. The error lists where it looked.
pub fn locate(given: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    let mut candidates = Vec::new();
    let xdg = std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()).map(PathBuf::from);
    let home = std::env::var_os("HOME").filter(|x| !x.is_empty()).map(|h| PathBuf::from(h).join(".config"));
    if let Some(dir) = xdg.or(home) {
        candidates.push(dir.join("cairn").join("cairn.toml"));
    }
    candidates.push(PathBuf::from("/etc/cairn/cairn.toml"));
    if let Some(p) = candidates.iter().find(|p| p.is_file()) {
        return Ok(p.clone());
    }
    let list: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(format!("no job profile: give --config FILE or CAIRN_CONFIG (looked for {})", list.join(" and ")))
}
