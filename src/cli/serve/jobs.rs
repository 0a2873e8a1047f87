//! Background jobs (docs/api.md "Jobs"): `POST /api/v1/jobs` (backup of a configured job, check,
//! drill), `/forget` and `/prune` queue a job and answer 202 with its id; one worker runs them one
//! at a time (one repository-mutating job at a time; reads keep serving), each as a `cairn` child
//! process with `--json`, the repository password handed over on a pipe (never in its arguments
//! or environment). Its JSON output is the job's `result`; its last stderr line the `progress`.
//! A drill runs in this process ([`cairn::ops::drill`]: a restore into a private scratch directory,
//! compared with the snapshot; no verify command can be given through the API). When the server
//! stops, the running child gets SIGTERM (cairn leaves the repository consistent), a drill its
//! cancel flag, and queued jobs fail as cancelled.

use super::routes::{blocking, ApiError, Shared};
use crate::cli::args::Global;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::Json;
use cairn::tree::Time;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroizing;

/// Jobs waiting at most; more is 409.
const QUEUE: usize = 32;
/// Finished jobs kept in the list.
const KEEP: usize = 200;

/// How job processes are started: the server's repository options, its password, the metrics file.
pub struct Spawn {
    global: Vec<OsString>,
    password: Zeroizing<Vec<u8>>,
}

impl Spawn {
    /// From the server's global options `g`, its `password` and the `metrics` file.
    pub fn new(g: &Global, password: Zeroizing<Vec<u8>>, metrics: PathBuf) -> Self {
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |k: &str, v: OsString| {
            a.push(k.into());
            a.push(v);
        };
        if let Some(r) = &g.repo {
            push("--repo", r.into());
        }
        for o in &g.options {
            push("--option", o.into());
        }
        if let Some(f) = &g.options_file {
            push("--options-file", f.into());
        }
        if let Some(d) = &g.cache_dir {
            push("--cache-dir", d.into());
        }
        if let Some(c) = &g.config {
            push("--config", c.into());
        }
        push("--metrics-file", metrics.into());
        push("--password-file", "/dev/stdin".into());
        if g.no_cache {
            a.push("--no-cache".into());
        }
        a.push("--json".into());
        Spawn { global: a, password }
    }
}

/// A job's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for the worker.
    Queued,
    /// Its process runs.
    Running,
    /// It ended with exit code 0 (or 3: a partial backup).
    Done,
    /// It ended otherwise, or was cancelled.
    Failed,
}

/// One job as the API shows it.
#[derive(Clone, serde::Serialize)]
pub struct Job {
    /// Its id.
    pub id: u64,
    /// `backup`, `check`, `drill`, `forget`, `prune`.
    pub kind: &'static str,
    /// The job of the profile, for a backup (or a forget by a job's retention).
    pub job: Option<String>,
    /// Where it is.
    pub state: JobState,
    /// When it was queued.
    pub queued: Time,
    /// When its process started.
    pub started: Option<Time>,
    /// When it ended.
    pub finished: Option<Time>,
    /// The last line its process wrote on stderr, while it runs.
    pub progress: Option<String>,
    /// The process's `--json` document, when it printed one.
    pub result: Option<Value>,
    /// The exit code.
    pub exit_code: Option<i32>,
    /// Why it failed.
    pub error: Option<String>,
    /// What it runs (not shown).
    #[serde(skip)]
    work: Work,
}

/// What a job runs.
#[derive(Clone)]
enum Work {
    /// `cairn <global options> <these arguments>`.
    Process(Vec<OsString>),
    /// A drill of this snapshot (an id, a prefix or `latest` among those passing the filter) in
    /// this process.
    Drill(Box<(String, cairn::select::Filter, cairn::ops::drill::DrillOptions)>),
}

#[derive(Default)]
struct Inner {
    jobs: BTreeMap<u64, Job>,
    next: u64,
    /// The pid of the running process.
    running: Option<u32>,
    stopping: bool,
}

/// Set when the server stops: a running drill ends early.
static DRILL_CANCEL: std::sync::LazyLock<Arc<std::sync::atomic::AtomicBool>> = std::sync::LazyLock::new(Arc::default);

/// The job list and the queue to the one worker.
pub struct Jobs {
    inner: Arc<Mutex<Inner>>,
    spawn: Arc<Spawn>,
    tx: Mutex<Option<tokio::sync::mpsc::Sender<u64>>>,
    rx: Mutex<Option<tokio::sync::mpsc::Receiver<u64>>>,
}

impl Jobs {
    /// No jobs yet; the worker starts with the first one.
    pub fn new(spawn: Spawn) -> Self {
        let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
        Jobs { inner: Arc::default(), spawn: Arc::new(spawn), tx: Mutex::new(Some(tx)), rx: Mutex::new(Some(rx)) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a job of `kind` running `cairn <global> <args>`.
    fn queue(
        &self,
        state: &Shared,
        kind: &'static str,
        job: Option<String>,
        args: Vec<OsString>,
    ) -> Result<u64, ApiError> {
        self.queue_work(state, kind, job, Work::Process(args))
    }

    /// Queues a job of `kind` running `work`.
    fn queue_work(&self, state: &Shared, kind: &'static str, job: Option<String>, work: Work) -> Result<u64, ApiError> {
        if let Some(rx) = self.rx.lock().unwrap_or_else(|e| e.into_inner()).take() {
            tokio::spawn(worker(state.clone(), rx));
        }
        let id = {
            let mut inner = self.lock();
            if inner.stopping {
                return Err(ApiError::new(StatusCode::CONFLICT, "stopping", "the server is stopping"));
            }
            inner.next += 1;
            let id = inner.next;
            let j = Job {
                id,
                kind,
                job,
                state: JobState::Queued,
                queued: Time::now(),
                started: None,
                finished: None,
                progress: None,
                result: None,
                exit_code: None,
                error: None,
                work,
            };
            inner.jobs.insert(id, j);
            while inner.jobs.len() > KEEP {
                let old = inner.jobs.iter().find(|(_, j)| matches!(j.state, JobState::Done | JobState::Failed));
                let Some(old) = old.map(|(k, _)| *k) else { break };
                inner.jobs.remove(&old);
            }
            id
        };
        let sent = self.tx.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|tx| tx.try_send(id));
        if !matches!(sent, Some(Ok(()))) {
            self.lock().jobs.remove(&id);
            return Err(ApiError::new(StatusCode::CONFLICT, "queue_full", format!("{QUEUE} jobs are waiting already")));
        }
        Ok(id)
    }

    /// Stops: queued jobs fail as cancelled, the running process gets SIGTERM and is waited for.
    pub async fn cancel_all(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        DRILL_CANCEL.store(true, std::sync::atomic::Ordering::Relaxed);
        let pid = {
            let mut inner = self.lock();
            inner.stopping = true;
            for j in inner.jobs.values_mut().filter(|j| j.state == JobState::Queued) {
                j.state = JobState::Failed;
                j.error = Some("cancelled: the server stopped".into());
                j.finished = Some(Time::now());
            }
            inner.running
        };
        if let Some(pid) = pid {
            // SAFETY: kill with a pid this server started and has not reaped (`running` is cleared
            // after the wait).
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
            for _ in 0..300 {
                if self.lock().running.is_none() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Runs queued jobs one at a time.
async fn worker(state: Shared, mut rx: tokio::sync::mpsc::Receiver<u64>) {
    while let Some(id) = rx.recv().await {
        let work = {
            let mut inner = state.jobs.lock();
            if inner.stopping {
                break;
            }
            let Some(j) = inner.jobs.get_mut(&id) else { continue };
            if j.state != JobState::Queued {
                continue;
            }
            j.state = JobState::Running;
            j.started = Some(Time::now());
            j.work.clone()
        };
        let outcome = match work {
            Work::Process(args) => run_one(&state, id, args).await,
            Work::Drill(d) => {
                let (snapshot, filter, opts) = *d;
                run_drill(&state, snapshot, filter, opts).await
            }
        };
        {
            let mut inner = state.jobs.lock();
            inner.running = None;
            if let Some(j) = inner.jobs.get_mut(&id) {
                j.finished = Some(Time::now());
                j.progress = None;
                match outcome {
                    Ok((code, result, last)) => {
                        j.exit_code = Some(code);
                        j.result = result;
                        if code == 0 || code == 3 {
                            j.state = JobState::Done;
                        } else {
                            j.state = JobState::Failed;
                            j.error = Some(last.unwrap_or_else(|| format!("exit code {code}")));
                        }
                    }
                    Err(e) => {
                        j.state = JobState::Failed;
                        j.error = Some(e);
                    }
                }
            }
        }
        // New snapshots and packs become visible to the reads; the repository gauges follow.
        let s = state.clone();
        let _ = blocking(move || {
            if let Err(e) = s.repo().sync_index() {
                tracing::warn!("serve: index sync after job {id}: {e}");
            }
            record_totals(&s);
            Ok(())
        })
        .await;
    }
}

/// Runs one job's process: its exit code, its JSON document, its last stderr line.
async fn run_one(state: &Shared, id: u64, args: Vec<OsString>) -> Result<(i32, Option<Value>, Option<String>), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the cairn program: {e}"))?;
    let spawn = &state.jobs.spawn;
    let mut child = tokio::process::Command::new(exe)
        .args(&spawn.global)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start cairn: {e}"))?;
    state.jobs.lock().running = child.id();
    if let Some(mut stdin) = child.stdin.take() {
        let mut line = Zeroizing::new(spawn.password.to_vec());
        line.push(b'\n');
        // A child that exits before reading (a usage error) closes the pipe: not our failure.
        let _ = stdin.write_all(&line).await;
    }
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let out_task = tokio::spawn(async move {
        let mut buf = Vec::new();
        // At most 64 MiB of JSON; more is cut (the result is then not shown).
        let _ = (&mut stdout).take(64 << 20).read_to_end(&mut buf).await;
        buf
    });
    let inner = state.jobs.inner.clone();
    let err_task = tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        let mut last = None;
        while let Ok(Some(l)) = lines.next_line().await {
            let l: String = l.chars().take(1000).collect();
            if l.trim().is_empty() {
                continue;
            }
            if let Some(j) = inner.lock().unwrap_or_else(|e| e.into_inner()).jobs.get_mut(&id) {
                j.progress = Some(l.clone());
            }
            last = Some(l);
        }
        last
    });
    let status = child.wait().await.map_err(|e| format!("waiting for cairn: {e}"))?;
    let out = out_task.await.unwrap_or_default();
    let last = err_task.await.unwrap_or_default();
    let result = serde_json::from_slice::<Value>(&out).ok();
    let code = status.code().unwrap_or(128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0));
    Ok((code, result, last))
}

/// Runs a drill in this process: exit code 0 when it passed, 1 otherwise; the evidence report is
/// the result.
async fn run_drill(
    state: &Shared,
    snapshot: String,
    filter: cairn::select::Filter,
    mut opts: cairn::ops::drill::DrillOptions,
) -> Result<(i32, Option<Value>, Option<String>), String> {
    let repo = state.repo();
    opts.cancel = Some(DRILL_CANCEL.clone());
    let r = blocking(move || {
        let (id, snap) = cairn::select::select(&repo, &super::read::spec(&snapshot)?, &filter)?;
        let noop = cairn::ops::restore::NoRestoreProgress;
        Ok(cairn::ops::drill::drill(&repo, id, &snap, &opts, &noop)?)
    })
    .await
    .map_err(|e| e.message)?;
    let passed = r.verdict() == cairn::ops::drill::Verdict::Passed;
    let result = serde_json::from_slice::<Value>(&r.json).ok();
    let why = (!passed).then(|| format!("drill verdict: {}", serde_json::to_string(&r.verdict()).unwrap_or_default()));
    Ok((if passed { 0 } else { 1 }, result, why.or(r.ledger_warning)))
}

/// Writes the repository gauges (`cairn_snapshots`, `cairn_repository_size_bytes`) of the
/// `serve` series into the metrics file `/metrics` serves.
pub fn record_totals(state: &Shared) {
    use crate::cli::metrics::{self, Labels, RunOutcome, Sample};
    let repo = state.repo();
    let Ok((snapshots, bytes)) = metrics::repository_totals(&repo) else { return };
    let labels = Labels {
        command: "serve".into(),
        job: String::new(),
        host: cairn::repository::hostname(),
        repository: metrics::repository_label(&state.repo_url),
    };
    let s = |name: &str, value: f64| Sample { name: name.into(), labels: vec![], value };
    let samples = [s("cairn_snapshots", snapshots as f64), s("cairn_repository_size_bytes", bytes as f64)];
    let now = Time::now();
    if let Err(e) = metrics::write(&state.metrics_file, &labels, RunOutcome::Success, now, now, &samples) {
        tracing::warn!("serve: metrics file {}: {e}", state.metrics_file.display());
    }
}

/// `GET /api/v1/jobs`: every job, newest first.
pub async fn list(State(s): State<Shared>) -> Json<Vec<Job>> {
    Json(s.jobs.lock().jobs.values().rev().cloned().collect())
}

/// `GET /api/v1/jobs/{id}`.
pub async fn show(State(s): State<Shared>, UrlPath(id): UrlPath<u64>) -> Result<Json<Job>, ApiError> {
    let j = s.jobs.lock().jobs.get(&id).cloned();
    j.map(Json).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no job {id}")))
}

fn accepted(id: u64) -> (StatusCode, Json<Value>) {
    (StatusCode::ACCEPTED, Json(json!({"id": id})))
}

fn body(b: &axum::body::Bytes) -> Result<Value, ApiError> {
    if b.iter().all(|c| c.is_ascii_whitespace()) {
        return Ok(json!({}));
    }
    serde_json::from_slice(b).map_err(|e| ApiError::bad(format!("the body is not JSON: {e}")))
}

/// `POST /api/v1/jobs` `{"kind":"backup","job":NAME}` | `{"kind":"check","read_data":bool}` |
/// `{"kind":"drill", ...}`.
pub async fn start(State(s): State<Shared>, b: axum::body::Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let v = body(&b)?;
    match v.get("kind").and_then(Value::as_str) {
        Some("backup") => {
            let name = v.get("job").and_then(Value::as_str).ok_or_else(|| ApiError::bad("backup needs \"job\""))?;
            let config = s.config.clone().ok_or_else(|| ApiError::bad("the server has no job profile (--config)"))?;
            let profile = {
                let c = config.clone();
                blocking(move || super::read::load_profile(Some(&c))).await?
            };
            if !profile.jobs.contains_key(name) {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("no job {name:?} in the profile"),
                ));
            }
            let id =
                s.jobs.queue(&s, "backup", Some(name.to_string()), vec!["run".into(), "--".into(), name.into()])?;
            Ok(accepted(id))
        }
        Some("check") => {
            let mut args: Vec<OsString> = vec!["check".into()];
            if v.get("read_data").and_then(Value::as_bool).unwrap_or(false) {
                args.push("--read-data".into());
            }
            Ok(accepted(s.jobs.queue(&s, "check", None, args)?))
        }
        Some("drill") => {
            let str_of = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
            if v.get("verify_command").is_some() || v.get("target").is_some() {
                return Err(ApiError::bad("a drill through the API takes no verify_command or target"));
            }
            let includes = match v.get("include") {
                None => vec![],
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| x.as_str().map(str::to_string).ok_or_else(|| ApiError::bad("include: a list of globs")))
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(ApiError::bad("include: a list of globs")),
            };
            let mut opts = cairn::ops::drill::DrillOptions {
                includes,
                rto_ms: v.get("rto_ms").and_then(Value::as_u64),
                job: str_of("job"),
                ..Default::default()
            };
            let mut filter = cairn::select::Filter::default();
            if let Some(name) = &opts.job {
                // A job of the profile: its snapshots (host and paths) and its `[job.NAME.drill]` settings, which
                // the profile's owner wrote (a verify command among them); the body's include and rto_ms win.
                let config =
                    s.config.clone().ok_or_else(|| ApiError::bad("the server has no job profile (--config)"))?;
                let profile = blocking(move || super::read::load_profile(Some(&config))).await?;
                let j = profile.jobs.get(name).ok_or_else(|| {
                    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no job {name:?} in the profile"))
                })?;
                filter.host = Some(j.host.clone().unwrap_or_else(cairn::repository::hostname));
                filter.paths = j.paths.clone();
                if let Some(d) = &j.drill {
                    opts.verify_command = d.verify_command.clone();
                    opts.stream = d.stream.clone();
                    opts.evidence_dir = d.evidence_dir.clone();
                    opts.target = d.target.clone();
                    opts.rto_ms = opts.rto_ms.or(d.rto_ms);
                    if opts.includes.is_empty() {
                        opts.includes = d.includes.clone();
                    }
                }
            }
            let snapshot = str_of("snapshot").unwrap_or_else(|| "latest".into());
            super::read::spec(&snapshot)?;
            Ok(accepted(s.jobs.queue_work(
                &s,
                "drill",
                opts.job.clone(),
                Work::Drill(Box::new((snapshot, filter, opts))),
            )?))
        }
        Some(k) => Err(ApiError::bad(format!("kind {k:?}: backup, check or drill"))),
        None => Err(ApiError::bad("the body needs \"kind\"")),
    }
}

/// The policy fields `POST /api/v1/forget` takes, each as `cairn forget --keep-...` does.
const POLICY: &[&str] = &[
    "keep_last",
    "keep_hourly",
    "keep_daily",
    "keep_weekly",
    "keep_monthly",
    "keep_yearly",
    "keep_within",
    "keep_within_hourly",
    "keep_within_daily",
    "keep_within_weekly",
    "keep_within_monthly",
    "keep_within_yearly",
];

/// `POST /api/v1/forget` `{"job":NAME}` (the job's retention file, its host and paths) or policy
/// fields (`keep_last`, `keep_daily`, `keep_within`, ..., `keep_tag`: [..], `host`).
pub async fn forget(State(s): State<Shared>, b: axum::body::Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let v = body(&b)?;
    let obj = v.as_object().ok_or_else(|| ApiError::bad("the body must be a JSON object"))?;
    let mut args: Vec<OsString> = vec!["forget".into()];
    let mut job = None;
    if let Some(name) = obj.get("job").and_then(Value::as_str) {
        let config = s.config.clone().ok_or_else(|| ApiError::bad("the server has no job profile (--config)"))?;
        let profile = blocking(move || super::read::load_profile(Some(&config))).await?;
        let j = profile.jobs.get(name).ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no job {name:?} in the profile"))
        })?;
        match &j.retention {
            Some(crate::cli::profile::Retention::File(f)) => {
                args.push("--policy".into());
                args.push(f.into());
            }
            Some(_) => {
                return Err(ApiError::bad(format!("job {name:?} has an inline retention: send its policy fields")))
            }
            None => return Err(ApiError::bad(format!("job {name:?} has no retention"))),
        }
        args.push("--host".into());
        args.push(j.host.clone().unwrap_or_else(cairn::repository::hostname).into());
        for p in &j.paths {
            args.push("--path".into());
            args.push(p.into());
        }
        job = Some(name.to_string());
    } else {
        let mut any = false;
        for (k, val) in obj {
            let flag = format!("--{}", k.replace('_', "-"));
            match (k.as_str(), val) {
                // `--flag=value`: one argument, so a value can never be read as another flag.
                (k, Value::Number(n)) if POLICY.contains(&k) => args.push(format!("{flag}={n}").into()),
                (k, Value::String(t)) if POLICY.contains(&k) || k == "host" => args.push(format!("{flag}={t}").into()),
                ("keep_tag", Value::Array(tags)) => {
                    for t in tags {
                        let t = t.as_str().ok_or_else(|| ApiError::bad("keep_tag: a list of strings"))?;
                        args.push(format!("--keep-tag={t}").into());
                    }
                }
                _ => return Err(ApiError::bad(format!("field {k:?} is not a forget policy field"))),
            }
            any |= k != "host";
        }
        if !any {
            return Err(ApiError::bad("give \"job\" or at least one policy field (keep_last, keep_daily, ...)"));
        }
    }
    Ok(accepted(s.jobs.queue(&s, "forget", job, args)?))
}

/// `POST /api/v1/prune` `{}`.
pub async fn prune(State(s): State<Shared>, b: axum::body::Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let v = body(&b)?;
    if v.as_object().is_none_or(|o| !o.is_empty()) {
        return Err(ApiError::bad("prune takes an empty object"));
    }
    Ok(accepted(s.jobs.queue(&s, "prune", None, vec!["prune".into()])?))
}
