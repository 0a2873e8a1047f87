//! Remote services through OpenDAL: turns a parsed [`RepoUrl`] and [`Options`] into a configured
//! operator (retry with backoff and jitter, timeouts, a concurrency limit, tracing of every call),
//! and holds the per-service table of guarantees (format-spec §1.4). It reads credentials from
//! the environment variables documented in README.md; it never puts a secret in a location,
//! message or log line.

use super::opendal::OpendalBackend;
use super::options::Options;
pub use super::retry::{backoff, MAX_DELAY, MIN_DELAY};
use super::url::RepoUrl;
use super::Guarantees;
use crate::error::{Error, Result};
use opendal::layers::{ConcurrentLimitLayer, LoggingInterceptor, LoggingLayer, RetryLayer, TimeoutLayer};
use opendal::raw::{Operation, ServiceInfo};
#[cfg(feature = "remote")]
use opendal::services;
use opendal::{ErrorKind, Operator};
use std::time::Duration;

/// What each service promises, before the open-time probe (which can only lower
/// `conditional_create`, from the operator's `write_with_if_not_exists` capability).
///
/// | service | conditional create | atomic write | consistent list |
/// |---|---|---|---|
/// | local | yes (`renameat2` NOREPLACE / `link`) | yes (temp + rename) | yes |
/// | memory | yes (one process owns it) | yes | yes |
/// | s3 | yes (`If-None-Match: *`; AWS since 2024-08, s3s-fs) | yes (PUT) | yes (AWS since 2020-12) |
/// | gcs | yes (`ifGenerationMatch=0`) | yes | yes |
/// | azblob | yes (`If-None-Match: *`) | yes | yes |
/// | sftp | yes (`O_EXCL` open) | **no** (written in place) | yes (a filesystem) |
/// | webdav | **no** (stat, then PUT under a process lock) | no | yes for rclone; server-dependent |
pub fn service_table(scheme: &str) -> Guarantees {
    let g = |conditional_create, atomic_write, consistent_list| Guarantees {
        conditional_create,
        atomic_write,
        consistent_list,
    };
    match scheme {
        "file" | "memory" => g(true, true, true),
        "s3" | "gcs" | "azblob" => g(true, true, true),
        "sftp" => g(true, false, true),
        "webdav" | "webdavs" => g(false, false, true),
        _ => g(false, false, false),
    }
}

/// Tracing for every OpenDAL call: debug lines, and a warning only for errors that are not an
/// expected answer (a missing object or a refused conditional create are answers, not faults).
#[derive(Clone, Copy, Debug, Default)]
struct Tracer;

impl LoggingInterceptor for Tracer {
    fn log(
        &self,
        info: &ServiceInfo,
        operation: Operation,
        context: &[(&str, &str)],
        message: &str,
        err: Option<&opendal::Error>,
    ) {
        let path = context.iter().find(|(k, _)| *k == "path").map(|(_, v)| *v).unwrap_or("");
        match err {
            Some(e) if !matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConditionNotMatch) => {
                tracing::debug!(service = info.scheme(), op = %operation, path, "{message}: {}", e.kind());
            }
            _ => tracing::trace!(service = info.scheme(), op = %operation, path, "{message}"),
        }
    }
}

/// Settings common to every remote service, from the options.
#[derive(Clone, Debug)]
pub struct Tuning {
    /// Retries of a temporarily failed call.
    pub retries: usize,
    /// Timeout of a call without a body.
    pub timeout: Duration,
    /// Timeout of each read step of a body; over HTTP also how long sent bytes may make no
    /// progress before the connection is dropped (`TCP_USER_TIMEOUT`).
    pub io_timeout: Duration,
    /// Timeout of one write step: over HTTP a whole request body (`upload_timeout`), whose
    /// stalls the connection's `io_timeout` catches; over SFTP `io_timeout`.
    pub write_timeout: Duration,
    /// Requests in flight at most.
    pub connections: usize,
    /// Pack uploads a writer keeps in flight.
    pub uploads: usize,
    /// Multipart part size in bytes (0: one request per object).
    pub chunk_size: usize,
}

impl Tuning {
    /// Reads the common options, with their defaults.
    pub fn from_options(o: &Options, scheme: &str) -> Result<Self> {
        // A default pack (16 MiB) goes up in one request: parts of 8 MiB made a corpus backup to
        // S3 12 % slower (benches/README.md, "Remote packs staged in files").
        let chunk_default = if matches!(scheme, "s3" | "gcs" | "azblob") { 64 } else { 0 };
        let io_timeout = Duration::from_secs(o.get_u64("io_timeout")?.unwrap_or(120).max(1));
        // A request body goes out at the link's pace: a 16 MiB pack takes 512 s at 256 kbit/s.
        // Over HTTP a connection whose sent bytes stop moving for `io_timeout` is dropped by the
        // kernel, so only a body that takes longer than `upload_timeout` in all is cut off; SFTP
        // has no such watch, and its writes keep `io_timeout`.
        let write_timeout = match scheme {
            "sftp" => io_timeout,
            _ => Duration::from_secs(o.get_u64("upload_timeout")?.unwrap_or(1800).max(1)),
        };
        let t = Tuning {
            retries: o.get_u64("retries")?.unwrap_or(5) as usize,
            timeout: Duration::from_secs(o.get_u64("timeout")?.unwrap_or(60).max(1)),
            io_timeout,
            write_timeout,
            connections: o.get_u64("connections")?.unwrap_or(16).clamp(1, 1024) as usize,
            uploads: o.get_u64("uploads")?.unwrap_or(4).clamp(1, 64) as usize,
            chunk_size: (o.get_u64("chunk_size")?.unwrap_or(chunk_default).min(4096) as usize) << 20,
        };
        if t.chunk_size != 0 && t.chunk_size < 5 << 20 && scheme == "s3" {
            return Err(Error::Usage("option chunk_size: S3 parts are 5 MiB at least".into()));
        }
        Ok(t)
    }
}

#[cfg(feature = "remote")]
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[cfg(feature = "remote")]
fn root_of(prefix: &str) -> String {
    format!("/{prefix}")
}

#[cfg(feature = "remote")]
fn config_err(url: &RepoUrl, e: opendal::Error) -> Error {
    Error::Usage(format!("repository {url}: cannot configure the {} service: {}", url.scheme(), e.message()))
}

/// Static S3 keys (never shown: no `Debug`).
#[cfg(feature = "remote")]
pub struct S3Keys {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// A session token (`AWS_SESSION_TOKEN`), with keys from the environment only.
    pub session_token: Option<String>,
}

/// Where and as whom an `s3://` repository is reached: read once from the options and the
/// environment, shared by the OpenDAL operator and the object-lock writer ([`super::s3lock`]).
#[cfg(feature = "remote")]
pub struct S3Settings {
    /// `s3.endpoint`, when given (else AWS).
    pub endpoint: Option<String>,
    /// `s3.region`, else `AWS_REGION`, `AWS_DEFAULT_REGION`, `us-east-1`.
    pub region: String,
    /// Virtual-host addressing (`BUCKET.host`) rather than path style (`host/BUCKET`).
    pub virtual_host: bool,
    /// Keys from the options, else from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and
    /// `AWS_SESSION_TOKEN`); `None`: the AWS default chain (AWS_PROFILE and the shared config
    /// files, web identity, instance metadata).
    pub keys: Option<S3Keys>,
}

#[cfg(feature = "remote")]
impl S3Settings {
    /// Reads the `s3.*` options and the AWS environment variables.
    pub fn from_options(o: &Options) -> Result<Self> {
        let endpoint = o.get("s3.endpoint").map(str::to_string);
        let region = o
            .get("s3.region")
            .map(str::to_string)
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        // Path style for S3-compatible servers (an endpoint given), virtual hosts for AWS.
        let virtual_host = !o.get_bool("s3.path_style")?.unwrap_or(endpoint.is_some());
        let ak = o.get("s3.access_key_id").map(str::to_string);
        let sk = o.get("s3.secret_access_key").map(str::to_string);
        let keys = match (ak, sk) {
            (Some(access_key_id), Some(secret_access_key)) => {
                Some(S3Keys { access_key_id, secret_access_key, session_token: None })
            }
            (None, None) => match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
                (Some(access_key_id), Some(secret_access_key)) => {
                    Some(S3Keys { access_key_id, secret_access_key, session_token: env("AWS_SESSION_TOKEN") })
                }
                _ => None,
            },
            _ => return Err(Error::Usage("options s3.access_key_id and s3.secret_access_key go together".into())),
        };
        Ok(S3Settings { endpoint, region, virtual_host, keys })
    }
}

#[cfg(feature = "remote")]
/// Builds the operator for `url` (a remote one) without layers.
pub fn build_operator(url: &RepoUrl, o: &Options) -> Result<Operator> {
    let op = match url {
        RepoUrl::S3 { bucket, prefix } => {
            let st = S3Settings::from_options(o)?;
            let mut b = services::S3::default().bucket(bucket).root(&root_of(prefix)).region(&st.region);
            if let Some(ep) = &st.endpoint {
                b = b.endpoint(ep);
            }
            if st.virtual_host {
                b = b.enable_virtual_host_style();
            }
            if let Some(k) = &st.keys {
                b = b.access_key_id(&k.access_key_id).secret_access_key(&k.secret_access_key);
                if let Some(t) = &k.session_token {
                    b = b.session_token(t);
                }
            }
            Operator::new(b).map_err(|e| config_err(url, e))?
        }
        RepoUrl::Sftp { user, host, port, path } => {
            let endpoint = match port {
                Some(p) => format!("ssh://{host}:{p}"),
                None => format!("ssh://{host}"),
            };
            let strategy = match o.get("sftp.known_hosts").unwrap_or("strict") {
                "strict" => "strict",
                "accept-new" => "add",
                other => {
                    return Err(Error::Usage(format!("option sftp.known_hosts: {other:?} is not strict or accept-new")))
                }
            };
            let mut b = services::Sftp::default().endpoint(&endpoint).root(path).known_hosts_strategy(strategy);
            if let Some(u) = user {
                b = b.user(u);
            }
            if let Some(k) = o.get("sftp.key") {
                // `-o sftp.key=~/.ssh/id` reaches us unexpanded (the shell expands `~` only at a word's start).
                let k = match (k.strip_prefix("~/"), env("HOME")) {
                    (Some(rest), Some(home)) => format!("{home}/{rest}"),
                    _ => k.to_string(),
                };
                if !std::path::Path::new(&k).is_file() {
                    return Err(Error::Usage(format!("option sftp.key: no key file at {k}")));
                }
                b = b.key(&k);
            }
            Operator::new(b).map_err(|e| config_err(url, e))?
        }
        RepoUrl::Webdav { tls, user, host, port, path } => {
            let scheme = if *tls { "https" } else { "http" };
            let endpoint = match port {
                Some(p) => format!("{scheme}://{host}:{p}"),
                None => format!("{scheme}://{host}"),
            };
            let mut b = services::Webdav::default().endpoint(&endpoint).root(path);
            let user = o.get("webdav.user").map(str::to_string).or_else(|| user.clone());
            if let Some(u) = &user {
                b = b.username(u);
            }
            let pass = o.get("webdav.password").map(str::to_string).or_else(|| env("CAIRN_WEBDAV_PASSWORD"));
            if let Some(p) = pass {
                b = b.password(&p);
            }
            Operator::new(b).map_err(|e| config_err(url, e))?
        }
        RepoUrl::Gcs { bucket, prefix } => {
            let mut b = services::Gcs::default().bucket(bucket).root(&root_of(prefix));
            if let Some(p) = o.get("gcs.credential_path") {
                b = b.credential_path(p);
            }
            if let Some(ep) = o.get("gcs.endpoint") {
                b = b.endpoint(ep);
            }
            if let Some(t) = o.get("gcs.token") {
                b = b.token(t.to_string());
            }
            Operator::new(b).map_err(|e| config_err(url, e))?
        }
        RepoUrl::Azblob { container, prefix } => {
            let mut b = services::Azblob::default().container(container).root(&root_of(prefix));
            let account = o.get("azblob.account_name").map(str::to_string).or_else(|| env("AZURE_STORAGE_ACCOUNT"));
            let endpoint = o
                .get("azblob.endpoint")
                .map(str::to_string)
                .or_else(|| account.as_ref().map(|a| format!("https://{a}.blob.core.windows.net")));
            let Some(endpoint) = endpoint else {
                return Err(Error::Usage(format!(
                    "repository {url}: set option azblob.account_name (or azblob.endpoint)"
                )));
            };
            b = b.endpoint(&endpoint);
            if let Some(a) = &account {
                b = b.account_name(a);
            }
            let key = o.get("azblob.account_key").map(str::to_string).or_else(|| env("AZURE_STORAGE_ACCOUNT_KEY"));
            if let Some(k) = key {
                b = b.account_key(&k);
            }
            Operator::new(b).map_err(|e| config_err(url, e))?
        }
        RepoUrl::Local(_) | RepoUrl::Memory(_) => {
            return Err(Error::Usage(format!("{url} is not a remote service")));
        }
    };
    Ok(op)
}

/// Wraps an operator in cairn's layers, innermost first: the concurrency limit (each attempt
/// holds a permit), timeouts, retry with exponential backoff and jitter, and tracing. OpenDAL
/// retries only errors it marks temporary (timeouts, connection failures, 5xx, throttling).
/// Writes are retried too: the one non-idempotent call, a conditional create, is made safe by
/// [`OpendalBackend`]'s compare-on-exists (a retry that finds the name taken reads the object
/// back and accepts it only when it holds exactly the bytes being written).
///
/// Returns three operators over one service: the retrying one; one for writes, the same but with
/// [`Tuning::write_timeout`] for each step; and one without the retry layer for listings.
/// OpenDAL retries a listing page by page, and a retried page can end the listing: with the
/// WebDAV service a PROPFIND that failed and was retried gave an empty listing and no error (found
/// by `https_client_starts_with_the_ring_provider`). A short listing is the one storage answer
/// that cannot be told from the truth, so [`OpendalBackend`] retries listings whole.
pub fn layered(op: Operator, t: &Tuning) -> Layered {
    let limited = op.layer(ConcurrentLimitLayer::new(t.connections));
    let timed = |io: Duration| limited.clone().layer(TimeoutLayer::new().with_timeout(t.timeout).with_io_timeout(io));
    let base = timed(t.io_timeout);
    Layered {
        op: retrying(base.clone(), t),
        writer: retrying(timed(t.write_timeout), t),
        lister: base.layer(LoggingLayer::new(Tracer)),
    }
}

/// The operators [`layered`] returns.
pub struct Layered {
    /// Reads and metadata calls, retried.
    pub op: Operator,
    /// Writes, retried.
    pub writer: Operator,
    /// Listings (retried whole by the backend).
    pub lister: Operator,
}

fn retrying(op: Operator, t: &Tuning) -> Operator {
    op.layer(
        RetryLayer::new()
            .with_max_times(t.retries)
            .with_jitter()
            .with_factor(2.0)
            .with_min_delay(MIN_DELAY)
            .with_max_delay(MAX_DELAY)
            .with_notify(|ev: opendal::layers::RetryEvent<'_>| {
                tracing::warn!(
                    "storage {} failed, retry {} in {:.1}s: {}",
                    ev.op,
                    ev.attempt,
                    ev.retry_after.as_secs_f64(),
                    ev.err
                );
            }),
    )
    .layer(LoggingLayer::new(Tracer))
}

/// Gives `op` an HTTP client of its own whose connections are dropped when bytes they sent stay
/// unacknowledged, or unsent for want of window, for `io_timeout` (`TCP_USER_TIMEOUT`): a
/// stalled upload ends at the same pace as a stalled read, while one that keeps moving may take
/// as long as [`Tuning::write_timeout`], and which follows only redirects that keep the body
/// ([`body_keeping_redirects`]). Other settings are reqwest's defaults.
/// Returns the client too, for the requests the backend sends itself ([`super::streamed`]).
#[cfg(feature = "remote")]
fn with_http_client(op: Operator, t: &Tuning) -> Result<(Operator, reqwest::Client)> {
    let client = reqwest::Client::builder()
        .tcp_user_timeout(t.io_timeout)
        .redirect(reqwest::redirect::Policy::custom(body_keeping_redirects))
        .build()
        .map_err(|e| Error::Internal(format!("cannot build the HTTP client: {e}")))?;
    let transport =
        opendal::HttpTransporter::new(opendal_http_transport_reqwest::ReqwestTransport::new(client.clone()));
    Ok((op.with_context(opendal::OperationContext::new().with_http_transport(transport)), client))
}

/// The redirects the client follows: only those that keep the method and the body (307, 308), at
/// most 10. A client follows a 301, 302 or 303 with a GET and no body, so a write answered with one
/// would end in whatever the new address answers to a GET, and a 200 from there would be taken for
/// the object stored (format-spec §1.4). The 3xx answer goes back to the caller, an error.
#[cfg(feature = "remote")]
fn body_keeping_redirects(attempt: reqwest::redirect::Attempt<'_>) -> reqwest::redirect::Action {
    let status = attempt.status().as_u16();
    if matches!(status, 307 | 308) && attempt.previous().len() < 10 {
        attempt.follow()
    } else {
        attempt.stop()
    }
}

#[cfg(feature = "remote")]
/// Installs the process-wide TLS provider (`ring`) and OpenDAL's HTTP transport, once.
fn install_transport() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Fails only when a provider is already installed, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        opendal_http_transport_reqwest::install_default();
    });
}

/// Without the `remote` feature (the fuzz targets' build) no remote service is compiled in.
#[cfg(not(feature = "remote"))]
pub fn open(url: &RepoUrl, _o: &Options) -> Result<OpendalBackend> {
    Err(Error::Usage(format!("repository {url}: this build of cairn has no remote backends (feature `remote`)")))
}

#[cfg(feature = "remote")]
/// Opens a remote backend: validates the options for its scheme, builds and layers the operator,
/// and probes what it can (the conditional-write capability).
pub fn open(url: &RepoUrl, o: &Options) -> Result<OpendalBackend> {
    // A service option of another scheme is ignored (an options file may serve several
    // repositories); unknown keys were refused when the options were built.
    let scheme = url.scheme();
    let tuning = Tuning::from_options(o, scheme)?;
    install_transport();
    let (op, client) = with_http_client(build_operator(url, o)?, &tuning)?;
    let Layered { op, writer, lister } = layered(op, &tuning);
    let cap = op.info().capability();
    // Packs go up from their staging files as presigned PUTs: S3 only, the service whose presigned
    // writes the tests run against a real server (GCS and Azure presign only with some credentials).
    let streaming =
        (scheme == "s3" && cap.presign_write && o.get_bool("s3.presigned_uploads")? != Some(false)).then(|| {
            super::streamed::Streaming {
                client,
                retries: tuning.retries,
                write_timeout: tuning.write_timeout,
                probe_timeout: tuning.io_timeout,
                location: url.to_string(),
            }
        });
    let mut g = service_table(scheme);
    g.conditional_create &= cap.write_with_if_not_exists;
    // The probe sees only what OpenDAL declares; a server that ignores `If-None-Match` cannot be
    // detected without writing, so the user can declare it (it can only lower the guarantee).
    if o.get_bool("conditional_create")? == Some(false) {
        g.conditional_create = false;
    }
    let chunk = if cap.write_can_multi { tuning.chunk_size } else { 0 };
    OpendalBackend::remote(
        op,
        super::opendal::Remote {
            writer,
            lister,
            list_retries: tuning.retries,
            probe_timeout: tuning.io_timeout,
            location: url.to_string(),
            streaming,
        },
        g,
        tuning.uploads,
        chunk,
    )
}

#[cfg(all(test, feature = "remote"))]
mod tests {
    use super::*;

    fn opts(flags: &[&str]) -> Options {
        let f: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
        Options::from_sources(&f, vec![], None).unwrap()
    }

    #[test]
    fn builders_construct_for_every_scheme() {
        for (url, flags) in [
            ("s3://bkt/pre/fix", vec!["s3.endpoint=http://127.0.0.1:1", "s3.region=eu-west-1"]),
            ("s3://bkt", vec![]),
            ("sftp://u@127.0.0.1:2/srv/x", vec!["sftp.known_hosts=accept-new"]),
            ("webdavs://u@dav.example/r", vec!["webdav.password=pw"]),
            ("gcs://bkt/p", vec!["gcs.endpoint=http://127.0.0.1:1"]),
            ("azblob://c/p", vec!["azblob.account_name=acct", "azblob.account_key=a2V5"]),
        ] {
            let u = RepoUrl::parse(url).unwrap();
            let b = open(&u, &opts(&flags)).unwrap_or_else(|e| panic!("{url}: {e}"));
            use crate::backend::Backend;
            assert_eq!(b.location(), u.to_string());
            assert!(!b.location().contains("pw") && !b.location().contains("a2V5"));
        }
    }

    #[test]
    fn uploads_over_http_get_upload_timeout_and_sftp_keeps_io_timeout() {
        let t = Tuning::from_options(&opts(&[]), "s3").unwrap();
        assert_eq!((t.io_timeout.as_secs(), t.write_timeout.as_secs()), (120, 1800));
        let t = Tuning::from_options(&opts(&["io_timeout=9", "upload_timeout=99"]), "webdav").unwrap();
        assert_eq!((t.io_timeout.as_secs(), t.write_timeout.as_secs()), (9, 99));
        let t = Tuning::from_options(&opts(&["io_timeout=9", "upload_timeout=99"]), "sftp").unwrap();
        assert_eq!((t.io_timeout.as_secs(), t.write_timeout.as_secs()), (9, 9));
    }

    #[test]
    fn guarantees_follow_the_table_and_the_probe() {
        use crate::backend::Backend;
        let s3 = open(&RepoUrl::parse("s3://b/p").unwrap(), &opts(&["s3.endpoint=http://127.0.0.1:1"])).unwrap();
        assert!(s3.guarantees().conditional_create && s3.guarantees().atomic_write);
        assert_eq!(s3.upload_concurrency(), 4);
        let dav = open(&RepoUrl::parse("webdav://h/p").unwrap(), &opts(&[])).unwrap();
        assert!(!dav.guarantees().conditional_create, "WebDAV has no conditional create");
        let off = open(
            &RepoUrl::parse("s3://b/p").unwrap(),
            &opts(&["s3.endpoint=http://127.0.0.1:1", "conditional_create=false"]),
        )
        .unwrap();
        assert!(!off.guarantees().conditional_create, "the option lowers the guarantee");
        let sftp = open(&RepoUrl::parse("sftp://h/p").unwrap(), &opts(&["uploads=7"])).unwrap();
        assert!(sftp.guarantees().conditional_create && !sftp.guarantees().atomic_write);
        assert_eq!(sftp.upload_concurrency(), 7);
    }

    #[test]
    fn bad_option_values_are_named() {
        let u = RepoUrl::parse("sftp://h/p").unwrap();
        let e = open(&u, &opts(&["sftp.known_hosts=maybe"])).unwrap_err().to_string();
        assert!(e.contains("sftp.known_hosts"), "{e}");
        let e = open(&u, &opts(&["sftp.key=/nonexistent/key"])).unwrap_err().to_string();
        assert!(e.contains("sftp.key"), "{e}");
        let e = open(&RepoUrl::parse("azblob://c/p").unwrap(), &opts(&[])).unwrap_err().to_string();
        assert!(e.contains("azblob.account_name"), "{e}");
        let e = open(&RepoUrl::parse("s3://b/p").unwrap(), &opts(&["chunk_size=1"])).unwrap_err().to_string();
        assert!(e.contains("chunk_size"), "{e}");
    }
}
