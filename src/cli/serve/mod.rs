//! `cairn serve` (docs/api.md): one repository behind a REST API. The repository is opened once
//! with the server's own password source; requests never carry it. [`auth`] holds tokens and the
//! failed-attempt limit, [`routes`] the one route table and the errors, [`read`] the JSON reads,
//! [`download`] streamed file/tar/zip downloads, [`jobs`] the background jobs (one repository-
//! mutating job at a time, each a `cairn` child process), [`listen`] the accept loop with or without
//! TLS, [`work`] the worker permits every repository read takes its turn for; `web/` is the web
//! page at `/`.

pub mod auth;
pub mod download;
pub mod jobs;
pub mod listen;
pub mod read;
pub mod routes;
pub mod web;
pub mod work;

use super::args_serve::{ServeArgs, ServeCommand, TokenCommand};
use super::{open, CliError, Ctx, Outcome};
use anyhow::Context;
use cairn::repository::ReadRepository;
use std::path::PathBuf;
use std::sync::Arc;

/// What every request handler shares.
pub struct State {
    /// The open repository (a full key).
    repo: std::sync::RwLock<ReadRepository>,
    /// The repository URL as given.
    pub repo_url: String,
    /// The accepted tokens.
    pub tokens: auth::Tokens,
    /// Failed token attempts per address.
    pub limiter: auth::Limiter,
    /// The background jobs.
    pub jobs: jobs::Jobs,
    /// The job profile (`--config`), when given.
    pub config: Option<PathBuf>,
    /// The metrics file the jobs write and `/metrics` serves.
    pub metrics_file: PathBuf,
    /// The worker permits and download slots (`--workers`).
    pub work: work::Workers,
}

impl State {
    /// The repository handle (cheap: clones share the open repository).
    pub fn repo(&self) -> ReadRepository {
        self.repo.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// `cairn serve`.
pub fn run(ctx: &Ctx, a: ServeArgs) -> anyhow::Result<Outcome> {
    match a.command {
        Some(ServeCommand::Token(TokenCommand::New { role, name, token_file })) => {
            let token = auth::new_token(&token_file, role.into(), &name)?;
            if ctx.out.json() {
                println!("{}", serde_json::json!({"token": token, "name": name, "role": auth::Role::from(role)}));
            } else {
                println!("{token}");
            }
            ctx.out.note(format!("cairn: token {name:?} added to {}; it is not shown again", token_file.display()));
            return Ok(Outcome::Done);
        }
        Some(ServeCommand::Routes) => {
            println!("{}", serde_json::to_string_pretty(&routes::table_json())?);
            return Ok(Outcome::Done);
        }
        None => {}
    }
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(c), Some(k)) => Some(listen::tls_config(c, k)?),
        _ => None,
    };
    if tls.is_none() && !a.listen.ip().is_loopback() && !a.insecure_http {
        return Err(CliError::Usage(format!(
            "--listen {} is not a loopback address: give --tls-cert and --tls-key, or --insecure-http to serve plain \
             HTTP there anyway",
            a.listen
        ))
        .into());
    }
    let tokens = auth::Tokens::load(&a.token_files)?;
    if tokens.len() == 0 {
        ctx.out.note(
            "cairn: warning: no token file given (--token-file): only /health, / and the OpenAPI document answer",
        );
    }
    // The password is read once here and kept (zeroized on drop) for the job processes, which get it
    // through a pipe, never in their arguments or environment.
    let password = open::password(&ctx.g, false)?;
    // The server reads through a private temporary cache, so the persistent one stays free for the
    // jobs' backups (their files cache).
    let mut g = ctx.g.clone();
    g.no_cache = true;
    let backend = open::backend(&g)?;
    if !open::has_repository(&backend)? {
        return Err(cairn::Error::RepoNotFound(backend.location()).into());
    }
    let repo = cairn::repository::Repository::open(backend, &password, &open::open_options(&g, false))?;
    let repo = repo.readable().map_err(|e| CliError::Key(format!("{e}; the server needs a full key")))?;
    repo.sync_index()?;
    let work = private_dir()?;
    let metrics_file = ctx.g.metrics_file.clone().unwrap_or_else(|| work.path.join("cairn.prom"));
    let state = Arc::new(State {
        repo: std::sync::RwLock::new(repo),
        repo_url: ctx.g.repo.clone().unwrap_or_default(),
        tokens,
        limiter: auth::Limiter::new(a.max_auth_failures),
        jobs: jobs::Jobs::new(jobs::Spawn::new(&ctx.g, password, metrics_file.clone())),
        config: ctx.g.config.clone(),
        metrics_file,
        work: work::Workers::new(a.workers.map_or_else(work::cores, |n| n as usize)),
    });
    jobs::record_totals(&state);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("no async runtime")?;
    let served = runtime.block_on(listen::serve(state, a.listen, tls, ctx.cancel.clone()));
    // Downloads still writing end at their next piece (their client is gone); wait for them a little.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    drop(work);
    served?;
    Ok(Outcome::Done)
}

/// A directory only this user can enter (for the jobs' metrics file), removed on drop.
struct PrivateDir {
    path: PathBuf,
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn private_dir() -> anyhow::Result<PrivateDir> {
    use std::os::unix::fs::DirBuilderExt;
    let mut r = [0u8; 8];
    getrandom::getrandom(&mut r).context("no random bytes")?;
    let path = std::env::temp_dir().join(format!("cairn-serve-{}-{}", std::process::id(), hex::encode(r)));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    Ok(PrivateDir { path })
}
