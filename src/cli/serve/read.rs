//! The read routes (docs/api.md): each answers with the JSON its command prints with `--json`
//! (`snapshots`, `ls`, `diff`, `find`, `stats`, `status`, `ledger log`, `key list`), reading the
//! repository off the async workers, each under a worker permit ([`super::work`]); and
//! `/metrics`, the jobs' metrics file.

use super::routes::{blocking, ApiError, Shared};
use crate::cli::cmd::{diff as diff_cmd, ls as ls_cmd, snapshots as snapshots_cmd, status as status_cmd};
use crate::cli::profile::{self, Profile};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cairn::filter::Patterns;
use cairn::repository::ReadRepository;
use cairn::select::{self, Filter, SnapshotSpec};
use cairn::tree::{NodeKind, Time};
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A JSON answer.
pub type JsonResult = Result<Json<Value>, ApiError>;

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::bad(format!("cannot encode the answer: {e}")))
}

/// `id`: a snapshot id, a unique prefix or `latest`.
pub fn spec(id: &str) -> Result<SnapshotSpec, ApiError> {
    SnapshotSpec::from_str(id).map_err(|e| ApiError::bad(format!("snapshot {id:?}: {e}")))
}

/// A path inside a snapshot, made absolute (`""` and `/` are the root).
pub fn inner_path(p: Option<&str>) -> PathBuf {
    let p = p.unwrap_or("/");
    if p.starts_with('/') {
        PathBuf::from(p)
    } else {
        Path::new("/").join(p)
    }
}

/// The snapshot `id` names (an id, a prefix or `latest`).
pub fn snapshot_of(
    repo: &ReadRepository,
    id: &str,
) -> Result<(cairn::id::SnapshotId, cairn::snapshot::Snapshot), ApiError> {
    Ok(select::select(repo, &spec(id)?, &Filter::default())?)
}

/// The snapshot filter of `?host=&tag=&path=`.
#[derive(Deserialize, Default)]
pub struct FilterQuery {
    host: Option<String>,
    tag: Option<String>,
    path: Option<String>,
}

impl FilterQuery {
    fn filter(&self) -> Filter {
        Filter {
            host: self.host.clone().filter(|h| !h.is_empty()),
            tags: self.tag.iter().filter(|t| !t.is_empty()).flat_map(|t| t.split(',').map(str::to_string)).collect(),
            paths: self.path.iter().filter(|p| !p.is_empty()).map(PathBuf::from).collect(),
            writer: None,
        }
    }
}

/// `GET /api/v1/repository`.
pub async fn repository(State(s): State<Shared>) -> JsonResult {
    let url = crate::cli::metrics::repository_label(&s.repo_url);
    let repo = s.repo();
    s.work
        .run(move || {
            let snapshots = repo.snapshot_ids()?.len();
            // Raw mode over no snapshot reads the index alone: packs and their stored bytes.
            let stats = cairn::stats::stats(&repo, &[], cairn::stats::Mode::Raw, true)?;
            let (packs, size) = stats.repository.as_ref().map_or((0, 0), |r| (r.packs, r.pack_bytes));
            Ok(Json(json!({
                "id": repo.keys().repo_id.to_string(),
                "location": url,
                "version": repo.config().format_version(),
                "snapshots": snapshots,
                "packs": packs,
                "size_bytes": size,
                "key": repo.key_id().to_hex(),
            })))
        })
        .await
}

/// `GET /api/v1/snapshots?host=&tag=&path=`.
pub async fn snapshots(State(s): State<Shared>, Query(q): Query<FilterQuery>) -> JsonResult {
    let repo = s.repo();
    s.work
        .run(move || {
            let snaps = q.filter().entries(&repo)?;
            let doc: Vec<snapshots_cmd::Listed> = snaps.iter().map(snapshots_cmd::listed).collect();
            Ok(Json(to_json(&doc)?))
        })
        .await
}

/// `GET /api/v1/snapshots/{id}`.
pub async fn snapshot(State(s): State<Shared>, UrlPath(id): UrlPath<String>) -> JsonResult {
    let repo = s.repo();
    s.work
        .run(move || {
            let (sid, _) = snapshot_of(&repo, &id)?;
            let all = select::list_all(&repo)?;
            let l = all.iter().find(|l| l.id == sid).ok_or_else(|| {
                ApiError::new(axum::http::StatusCode::NOT_FOUND, "not_found", format!("snapshot {sid} is not readable"))
            })?;
            Ok(Json(to_json(&snapshots_cmd::listed(l))?))
        })
        .await
}

/// `?path=`.
#[derive(Deserialize)]
pub struct PathQuery {
    path: Option<String>,
}

/// `GET /api/v1/snapshots/{id}/ls?path=/dir`: the entries of one directory (a file: itself).
pub async fn ls(State(s): State<Shared>, UrlPath(id): UrlPath<String>, Query(q): Query<PathQuery>) -> JsonResult {
    let repo = s.repo();
    s.work
        .run(move || {
            let (_, snap) = snapshot_of(&repo, &id)?;
            let dir = inner_path(q.path.as_deref());
            let tree = match cairn::browse::find(&repo, &snap.root(), &dir)? {
                None => snap.root(),
                Some(n) => match n.kind {
                    NodeKind::Dir { tree } => tree,
                    _ => return Ok(Json(to_json(&vec![ls_cmd::Entry::new(&dir, &n)])?)),
                },
            };
            let nodes = cairn::trees::read_dir(&repo, &tree)?;
            let paths: Vec<PathBuf> = nodes.iter().map(|n| dir.join(std::ffi::OsStr::from_bytes(&n.name))).collect();
            let doc: Vec<ls_cmd::Entry> = nodes.iter().zip(&paths).map(|(n, p)| ls_cmd::Entry::new(p, n)).collect();
            Ok(Json(to_json(&doc)?))
        })
        .await
}

use std::os::unix::ffi::OsStrExt;

/// `?from=&to=&path=`.
#[derive(Deserialize)]
pub struct DiffQuery {
    from: String,
    to: String,
    path: Option<String>,
    #[serde(default)]
    metadata: bool,
}

/// `GET /api/v1/diff?from=ID&to=ID&path=`.
pub async fn diff(State(s): State<Shared>, Query(q): Query<DiffQuery>) -> JsonResult {
    let repo = s.repo();
    s.work
        .run(move || {
            let (old_id, old) = snapshot_of(&repo, &q.from)?;
            let (new_id, new) = snapshot_of(&repo, &q.to)?;
            let path = q.path.as_deref().filter(|p| !p.is_empty()).map(|p| inner_path(Some(p)));
            let opts = cairn::diff::DiffOptions { path, metadata: q.metadata };
            let report = cairn::diff::diff(&repo, &old.root(), &new.root(), &opts)?;
            Ok(Json(to_json(&diff_cmd::Doc { old: old_id, new: new_id, report: &report })?))
        })
        .await
}

/// `?pattern=&host=&snapshot=`.
#[derive(Deserialize)]
pub struct FindQuery {
    pattern: String,
    host: Option<String>,
    snapshot: Option<String>,
    #[serde(default)]
    ignore_case: bool,
}

/// `GET /api/v1/find?pattern=P&host=&snapshot=`.
pub async fn find(State(s): State<Shared>, Query(q): Query<FindQuery>) -> JsonResult {
    let repo = s.repo();
    s.work
        .run(move || {
            let patterns = Patterns::new([(q.pattern.as_str(), q.ignore_case)]).map_err(ApiError::bad)?;
            let filter = Filter { host: q.host.clone().filter(|h| !h.is_empty()), ..Default::default() };
            let specs = match q.snapshot.as_deref().filter(|s| !s.is_empty()) {
                Some(id) => vec![spec(id)?],
                None => vec![],
            };
            let snapshots = select::select_many(&repo, &specs, &filter)?;
            let opts = cairn::find::FindOptions { patterns, oldest: None, newest: None, blobs: Default::default() };
            Ok(Json(to_json(&cairn::find::find(&repo, &snapshots, &opts)?)?))
        })
        .await
}

/// `?snapshot=&mode=`.
#[derive(Deserialize)]
pub struct StatsQuery {
    snapshot: Option<String>,
    mode: Option<String>,
}

/// `GET /api/v1/stats?snapshot=ID&mode=`: one snapshot, or the whole repository.
pub async fn stats(State(s): State<Shared>, Query(q): Query<StatsQuery>) -> JsonResult {
    let repo = s.repo();
    s.work
        .run(move || {
            let mode = match q.mode.as_deref() {
                None | Some("") => cairn::stats::Mode::RestoreSize,
                Some(m) => cairn::stats::Mode::from_str(m).map_err(|e| ApiError::bad(format!("mode {m:?}: {e}")))?,
            };
            let specs = match q.snapshot.as_deref().filter(|s| !s.is_empty()) {
                Some(id) => vec![spec(id)?],
                None => vec![],
            };
            let whole = specs.is_empty();
            let snapshots = select::select_many(&repo, &specs, &Filter::default())?;
            Ok(Json(to_json(&cairn::stats::stats(&repo, &snapshots, mode, whole)?)?))
        })
        .await
}

/// The job profile at `path`.
pub fn load_profile(path: Option<&Path>) -> Result<Profile, ApiError> {
    let path = profile::locate(path).map_err(ApiError::bad)?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ApiError::bad(format!("cannot read job profile {}: {e}", path.display())))?;
    profile::parse(&text).map_err(|e| ApiError::bad(format!("job profile {}: {e}", path.display())))
}

/// `GET /api/v1/status`: as `cairn status --json` (RPO 24h, groups by host and paths); with
/// `--config`, one group per job of the profile, judged by its thresholds.
pub async fn status(State(s): State<Shared>) -> JsonResult {
    let repo = s.repo();
    let config = s.config.clone();
    s.work
        .run(move || {
            use cairn::status::{self as st, GroupKey, Rules};
            let default = Rules { rpo_secs: 24 * 3600, warn_secs: None, size_change: None };
            let snaps = select::list_all(&repo)?;
            let now = Time::now();
            let report = match &config {
                None => st::evaluate(
                    &snaps,
                    cairn::forget::GroupBy::from_str("host,paths").map_err(ApiError::bad)?,
                    &|_| default,
                    now,
                ),
                Some(path) => {
                    let profile = load_profile(Some(path))?;
                    let mut groups = Vec::new();
                    for (name, job) in &profile.jobs {
                        let (host, paths) = job.group();
                        let members: Vec<&select::Listed> = snaps
                            .iter()
                            .filter(|l| l.snapshot.host() == host && l.snapshot.paths() == paths.as_slice())
                            .collect();
                        let t = &job.thresholds;
                        let rules = Rules {
                            rpo_secs: t.rpo.map_or(default.rpo_secs, |d| d.secs),
                            warn_secs: t.warn.map(|d| d.secs),
                            size_change: t.size_change.as_ref().map(|(f, _)| *f),
                        };
                        let group = cairn::forget::GroupKey { host: Some(host), ..Default::default() };
                        let key = GroupKey { name: Some(format!("job {name}")), group };
                        groups.push(st::assess(key, &members, &rules, now));
                    }
                    st::Report::new(groups, now)
                }
            };
            let doc = status_cmd::Doc { report: &report, exit_code: report.status.exit_code() };
            Ok(Json(to_json(&doc)?))
        })
        .await
}

/// `?since=&kind=`.
#[derive(Deserialize)]
pub struct LedgerQuery {
    since: Option<String>,
    kind: Option<String>,
}

/// `GET /api/v1/ledger?since=&kind=`: as `cairn ledger log --json` (an empty list without a ledger).
pub async fn ledger(State(s): State<Shared>, Query(q): Query<LedgerQuery>) -> JsonResult {
    let repo = s.repo();
    s.work
        .run(move || {
            let since = match q.since.as_deref().filter(|s| !s.is_empty()) {
                Some(t) => Some(crate::cli::values::time(t).map_err(|e| ApiError::bad(format!("since {t:?}: {e}")))?),
                None => None,
            };
            let kind = match q.kind.as_deref().filter(|s| !s.is_empty()) {
                Some(k) => Some(
                    cairn::ledger::EntryKind::parse(k).ok_or_else(|| ApiError::bad(format!("no entry kind {k:?}")))?,
                ),
                None => None,
            };
            Ok(Json(to_json(&cairn::ops::ledger::log(&repo, since, kind)?)?))
        })
        .await
}

/// `GET /api/v1/keys`: as `cairn key list --json`.
pub async fn keys(State(s): State<Shared>) -> JsonResult {
    let repo = s.repo();
    s.work.run(move || Ok(Json(to_json(&repo.list_keys()?)?))).await
}

/// `GET /metrics`: the Prometheus text of the jobs' metrics file (the families of `--metrics-file`,
/// docs/monitoring.md), with the server's own `cairn_snapshots` and `cairn_repository_size_bytes`.
pub async fn metrics(State(s): State<Shared>) -> Result<Response, ApiError> {
    let path = s.metrics_file.clone();
    let text = blocking(move || match std::fs::read_to_string(&path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(ApiError::bad(format!("metrics file {}: {e}", path.display()))),
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response())
}
