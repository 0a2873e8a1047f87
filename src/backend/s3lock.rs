//! Object-lock retention on ledger entries (format-spec §13.7): the `ledger_retention` option
//! (`MODE:PERIOD`), and [`LedgerLock`], a backend over an `s3://` repository that creates every
//! `ledger/` object with one signed PUT carrying `If-None-Match: *`, `Content-MD5`,
//! `x-amz-object-lock-mode` and `x-amz-object-lock-retain-until-date`. OpenDAL 0.59's S3 writer
//! cannot send the lock headers, and a header added after its signature breaks SigV4, so this
//! request is signed here with the crates OpenDAL's S3 service signs with (reqsign) and sent
//! through OpenDAL's HTTP transport. Every other call, and every other path, goes to the inner
//! backend unchanged: packs, indexes and snapshots are never locked.

use super::remote::{backoff, S3Settings, Tuning};
use super::streamed::s3_error_text;
use super::{backend_err, Backend, DynBackend, Guarantees, ObjectInfo, Options, RepoUrl, Spill, Staged};
use crate::error::{Error, Result};
use crate::layout::LEDGER_DIR;
use crate::time::Time;
use crate::units::DurationSpec;
use base64::Engine as _;
use md5::Digest as _;
use reqsign_aws_v4::{Credential, DefaultCredentialProvider, RequestSigner, StaticCredentialProvider};
use reqsign_core::{Context, OsEnv, Signer};
use std::future::Future;
use std::time::Duration;

/// The option key: `ledger_retention = "compliance:7y"`.
pub const OPTION: &str = "ledger_retention";

/// The object-lock mode (format-spec §13.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// `GOVERNANCE`: a user with `s3:BypassGovernanceRetention` can still shorten or remove it.
    Governance,
    /// `COMPLIANCE`: nobody, the account's root user included, can shorten or remove it.
    Compliance,
}

impl LockMode {
    /// The value of `x-amz-object-lock-mode`.
    pub fn header(self) -> &'static str {
        match self {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        }
    }
}

/// A parsed `ledger_retention` value: the mode and how long after its write an entry is locked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// The lock mode.
    pub mode: LockMode,
    /// The period from the write (years and months are calendar units, in UTC).
    pub period: DurationSpec,
}

impl std::str::FromStr for Retention {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = |why: &str| {
            format!("option {OPTION}: {s:?} {why}; write MODE:PERIOD, e.g. compliance:7y or governance:90d")
        };
        let (mode, period) = s.trim().split_once(':').ok_or_else(|| bad("has no mode"))?;
        let mode = match mode.trim().to_ascii_lowercase().as_str() {
            "governance" => LockMode::Governance,
            "compliance" => LockMode::Compliance,
            _ => return Err(bad("names no mode (governance or compliance)")),
        };
        let period: DurationSpec = period.trim().parse().map_err(|e: String| format!("option {OPTION}: {e}"))?;
        if period.is_zero() {
            return Err(bad("has a zero period"));
        }
        if period.years > 100 || period.months > 1200 || period.fixed_secs().is_ok_and(|s| s > 100 * 366 * 86_400) {
            return Err(bad("is longer than 100 years"));
        }
        Ok(Retention { mode, period })
    }
}

impl Retention {
    /// The option's value in `o`, if set.
    pub fn from_options(o: &Options) -> Result<Option<Self>> {
        o.get(OPTION).map(|v| v.parse().map_err(Error::Usage)).transpose()
    }

    /// The end of the retention of an object written at `now`: `now + period`, calendar units
    /// in UTC, truncated to whole seconds (the header's resolution).
    pub fn until(&self, now: Time) -> Result<Time> {
        let p = &self.period;
        let span = jiff::Span::new()
            .years(i64::from(p.years))
            .months(i64::from(p.months))
            .weeks(i64::from(p.weeks))
            .days(i64::from(p.days))
            .hours(i64::from(p.hours))
            .minutes(i64::from(p.minutes))
            .seconds(i64::from(p.seconds));
        let ts = jiff::Timestamp::new(now.secs, 0).map_err(|e| Error::Internal(format!("clock: {e}")))?;
        let z = ts
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .checked_add(span)
            .map_err(|e| Error::Usage(format!("option {OPTION}: the retention ends out of range: {e}")))?;
        Ok(Time { secs: z.timestamp().as_second(), nanos: 0 })
    }
}

/// The value of `x-amz-object-lock-retain-until-date` for `t`: ISO 8601 in UTC, whole seconds.
pub fn header_date(t: Time) -> String {
    match jiff::Timestamp::new(t.secs, 0) {
        Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => format!("@{}", t.secs),
    }
}

/// Refuses `ledger_retention` where it cannot be honoured: every backend but `s3://`. Called
/// before the backend opens, so that a repository is never written believing its ledger locked.
pub fn refuse_unless_s3(url: &RepoUrl, o: &Options) -> Result<()> {
    if o.get(OPTION).is_none() || matches!(url, RepoUrl::S3 { .. }) {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "option {OPTION}: the {} backend of {url} has no object lock that cairn can set; only s3:// repositories \
         lock ledger entries (docs/compliance.md, format-spec §13.7)",
        url.scheme()
    )))
}

/// A backend that writes `ledger/` objects of an S3 repository with object-lock retention and
/// passes everything else to `inner`.
pub struct LedgerLock {
    inner: DynBackend,
    rt: tokio::runtime::Runtime,
    signer: Signer<Credential>,
    /// `https://host/BUCKET` or `https://BUCKET.host`: an object's URL is this, `/`, its key.
    base: String,
    /// The repository's key prefix in the bucket (may be empty).
    prefix: String,
    retention: Retention,
    retries: usize,
    io_timeout: Duration,
}

impl std::fmt::Debug for LedgerLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerLock").field("base", &self.base).field("retention", &self.retention).finish()
    }
}

/// `s` percent-encoded once as an S3 key in a path: RFC 3986 unreserved characters and `/` kept.
fn encode_key(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The URL an object key is appended to, as OpenDAL's S3 service builds it: the endpoint
/// (`https://` added when it names no scheme; AWS's regional endpoint by default) with the
/// bucket as a path segment or, in virtual-host style, as the first label of the host.
pub fn bucket_url(endpoint: Option<&str>, region: &str, bucket: &str, virtual_host: bool) -> String {
    let ep = match endpoint {
        Some(e) if e.starts_with("http://") || e.starts_with("https://") => e.to_string(),
        Some(e) => format!("https://{e}"),
        None => format!("https://s3.{region}.amazonaws.com"),
    };
    let ep = ep.trim_end_matches('/');
    if virtual_host {
        ep.replacen("//", &format!("//{bucket}."), 1)
    } else {
        format!("{ep}/{bucket}")
    }
}

/// What one PUT came to.
enum Outcome {
    Created,
    Exists,
    /// Worth another attempt (a timeout, a dropped connection, 5xx, throttling, 409 conflict).
    Retry(String),
    Failed(String),
}

impl LedgerLock {
    /// Wraps `inner` (the repository's S3 backend) for `url`, signing as the S3 backend does
    /// (the same options, environment and default credential chain).
    pub fn new(inner: DynBackend, url: &RepoUrl, o: &Options, retention: Retention) -> Result<Self> {
        let RepoUrl::S3 { bucket, prefix } = url else {
            return Err(Error::Internal(format!("{url}: object lock is S3 only")));
        };
        let st = S3Settings::from_options(o)?;
        let tuning = Tuning::from_options(o, "s3")?;
        let mut chain = DefaultCredentialProvider::new();
        if let Some(k) = &st.keys {
            let mut p = StaticCredentialProvider::new(&k.access_key_id, &k.secret_access_key);
            if let Some(t) = &k.session_token {
                p = p.with_session_token(t);
            }
            chain = chain.push_front(p);
        }
        let ctx = Context::new()
            .with_file_read(reqsign_file_read_tokio::TokioFileRead)
            .with_env(OsEnv)
            .with_http_send(opendal::HttpTransporter::default());
        let signer = Signer::new(ctx, chain, RequestSigner::new("s3", &st.region));
        // A worker of its own, as the S3 backend's runtime has: the HTTP client's pooled
        // connections keep running between calls.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cairn-lock-io")
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start the object-lock runtime: {e}")))?;
        Ok(LedgerLock {
            inner,
            rt,
            signer,
            base: bucket_url(st.endpoint.as_deref(), &st.region, bucket, st.virtual_host),
            prefix: prefix.clone(),
            retention,
            retries: tuning.retries,
            io_timeout: tuning.io_timeout,
        })
    }

    fn url_of(&self, path: &str) -> String {
        let key = if self.prefix.is_empty() { path.to_string() } else { format!("{}/{path}", self.prefix) };
        format!("{}/{}", self.base, encode_key(&key))
    }

    /// Signs `req` and sends it; `Err(outcome)` when no answer came (a retry or a failure).
    async fn send(
        &self,
        path: &str,
        req: http::Request<opendal::Buffer>,
    ) -> Result<std::result::Result<http::Response<opendal::Buffer>, Outcome>> {
        let (mut parts, body) = req.into_parts();
        self.signer.sign(&mut parts, None).await.map_err(|e| {
            backend_err("write", path, format!("cannot sign the object-lock request (S3 credentials): {e}"))
        })?;
        // As OpenDAL does: the transport sets Host itself (it was signed with the same value).
        parts.headers.remove(http::header::HOST);
        let transport = opendal::HttpTransporter::default();
        let send = transport.send(http::Request::from_parts(parts, body));
        Ok(match timeout(self.io_timeout, send).await {
            None => Err(Outcome::Retry(format!("no answer in {} s", self.io_timeout.as_secs()))),
            Some(Err(e)) if e.is_temporary() => Err(Outcome::Retry(e.to_string())),
            Some(Err(e)) => Err(Outcome::Failed(e.to_string())),
            Some(Ok(r)) => Ok(r),
        })
    }

    /// One signed create-once PUT with the lock headers, retained until `until`.
    async fn put_once(&self, path: &str, data: &[u8], until: Time) -> Result<Outcome> {
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(data));
        let sha = hex::encode(sha2::Sha256::digest(data));
        let req = http::Request::builder()
            .method(http::Method::PUT)
            .uri(self.url_of(path))
            .header(http::header::CONTENT_LENGTH, data.len())
            .header(http::header::CONTENT_TYPE, "application/octet-stream")
            .header(http::header::IF_NONE_MATCH, "*")
            .header("content-md5", md5)
            .header("x-amz-content-sha256", sha)
            .header("x-amz-object-lock-mode", self.retention.mode.header())
            .header("x-amz-object-lock-retain-until-date", header_date(until))
            .body(opendal::Buffer::from(data.to_vec()))
            .map_err(|e| backend_err("write", path, format!("cannot build the request: {e}")))?;
        let resp = match self.send(path, req).await? {
            Ok(r) => r,
            Err(o) => return Ok(o),
        };
        let status = resp.status().as_u16();
        let text = || s3_error_text(&resp.body().to_vec());
        Ok(match status {
            200..=299 => Outcome::Created,
            412 => Outcome::Exists,
            409 | 429 | 500 | 502..=599 => Outcome::Retry(format!("HTTP {status}: {}", text())),
            400 if text().contains("ObjectLock") || text().contains("Object Lock") => Outcome::Failed(format!(
                "HTTP 400: {} (the bucket needs S3 Object Lock enabled: format-spec §13.7)",
                text()
            )),
            501 => Outcome::Failed(format!("HTTP 501: {} (the service does not implement S3 Object Lock)", text())),
            _ => Outcome::Failed(format!("HTTP {status}: {}", text())),
        })
    }

    /// One signed HEAD of a stored entry: `Created` when the service reports this mode and a
    /// retain-until date no earlier than `until`. A service that ignores the lock headers (s3s-fs
    /// stores the object and reports no retention) fails here, so no entry is believed locked
    /// that is not.
    async fn check_once(&self, path: &str, until: Time) -> Result<Outcome> {
        let req = http::Request::builder()
            .method(http::Method::HEAD)
            .uri(self.url_of(path))
            .header("x-amz-content-sha256", EMPTY_SHA256)
            .body(opendal::Buffer::new())
            .map_err(|e| backend_err("write", path, format!("cannot build the request: {e}")))?;
        let resp = match self.send(path, req).await? {
            Ok(r) => r,
            Err(o) => return Ok(o),
        };
        let status = resp.status().as_u16();
        if status != 200 {
            return Ok(if status == 404 || status == 429 || status >= 500 {
                Outcome::Retry(format!("HTTP {status} on the HEAD that reads the retention back"))
            } else {
                Outcome::Failed(format!("HTTP {status} on the HEAD that reads the retention back"))
            });
        }
        let header = |n: &str| resp.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
        let mode = header("x-amz-object-lock-mode");
        let stored = header("x-amz-object-lock-retain-until-date");
        let stored_secs = stored.as_deref().and_then(|v| v.parse::<jiff::Timestamp>().ok()).map(|t| t.as_second());
        if mode.as_deref() == Some(self.retention.mode.header()) && stored_secs.is_some_and(|s| s >= until.secs) {
            return Ok(Outcome::Created);
        }
        Ok(Outcome::Failed(format!(
            "the service stored the entry but reports lock mode {mode:?} and retain-until {stored:?}, not {} until \
             {}: it ignores S3 Object Lock, or these credentials may not read retention (s3:GetObjectRetention)",
            self.retention.mode.header(),
            header_date(until)
        )))
    }

    /// Runs `attempt` until it is not a retry, at most `retries` more times, with backoff.
    fn retried<'a, F, Fut>(&'a self, path: &str, what: &str, mut attempt: F) -> Result<Outcome>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Outcome>> + 'a,
    {
        let mut n = 0u32;
        loop {
            match self.rt.block_on(attempt())? {
                Outcome::Retry(why) if (n as usize) < self.retries => {
                    n += 1;
                    let wait = backoff(n);
                    tracing::warn!("storage {what} {path} failed, retry {n} in {:.1}s: {why}", wait.as_secs_f64());
                    std::thread::sleep(wait);
                }
                other => return Ok(other),
            }
        }
    }

    /// [`Backend::write_new`] for a ledger object: the locked PUT, retried as the S3 backend
    /// retries, with an "exists" answer accepted when the stored object holds exactly `data` (a
    /// retried create whose first attempt landed; `super::opendal` explains the rule); then the
    /// retention read back. The retention runs from the first attempt.
    fn write_locked(&self, path: &str, data: &[u8]) -> Result<()> {
        let refused = |why: String| {
            backend_err("write", path, format!("{}: the object-lock write was refused: {why}", self.inner.location()))
        };
        let until = self.retention.until(Time::now())?;
        match self.retried(path, "write (object lock)", || self.put_once(path, data, until))? {
            Outcome::Created => {}
            Outcome::Exists => match self.inner.read(path) {
                Ok(stored) if stored == data => {}
                _ => return Err(super::exists(path)),
            },
            Outcome::Retry(why) | Outcome::Failed(why) => return Err(refused(why)),
        }
        match self.retried(path, "stat (object lock)", || self.check_once(path, until))? {
            Outcome::Created => Ok(()),
            Outcome::Retry(why) => Err(refused(format!("the retention could not be read back: {why}"))),
            Outcome::Exists => Err(refused("the retention could not be read back".into())),
            Outcome::Failed(why) => Err(refused(why)),
        }
    }
}

/// SHA-256 of the empty body (SigV4's payload hash of a HEAD).
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// `f`, or `None` when it takes longer than `d`.
async fn timeout<T>(d: Duration, f: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(d, f).await.ok()
}

impl Backend for LedgerLock {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn read(&self, path: &str) -> Result<Vec<u8>> {
        self.inner.read(path)
    }
    fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.inner.read_range(path, offset, len)
    }
    fn read_at_most(&self, path: &str, max: u64) -> Result<std::result::Result<Vec<u8>, u64>> {
        self.inner.read_at_most(path, max)
    }
    fn write_new(&self, path: &str, data: &[u8]) -> Result<()> {
        super::check_path(path)?;
        if path.starts_with(LEDGER_DIR) {
            self.write_locked(path, data)
        } else {
            self.inner.write_new(path, data)
        }
    }
    fn stage(&self, kind_dir: &str, capacity: usize, spill: Spill<'_>) -> Result<Staged> {
        self.inner.stage(kind_dir, capacity, spill)
    }
    fn write_staged(&self, path: &str, staged: Staged) -> Result<()> {
        if path.starts_with(LEDGER_DIR) {
            return self.write_new(path, &staged.into_bytes()?);
        }
        self.inner.write_staged(path, staged)
    }
    fn stat(&self, path: &str) -> Result<Option<ObjectInfo>> {
        self.inner.stat(path)
    }
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.inner.list(prefix)
    }
    fn delete(&self, path: &str) -> Result<()> {
        self.inner.delete(path)
    }
    fn sync(&self) -> Result<()> {
        self.inner.sync()
    }
    fn create_root(&self) -> Result<()> {
        self.inner.create_root()
    }
    fn guarantees(&self) -> Guarantees {
        self.inner.guarantees()
    }
    fn upload_concurrency(&self) -> usize {
        self.inner.upload_concurrency()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_values() {
        let r: Retention = "compliance:7y".parse().unwrap();
        assert_eq!(r.mode, LockMode::Compliance);
        assert_eq!(r.period.years, 7);
        let r: Retention = " Governance : 90d ".parse().unwrap();
        assert_eq!((r.mode, r.period.days), (LockMode::Governance, 90));
        for bad in ["7y", "legal:7y", "compliance:", "compliance:0", "compliance:6m", "compliance:101y"] {
            let e = bad.parse::<Retention>().unwrap_err();
            assert!(e.contains(OPTION), "{bad}: {e}");
        }
    }

    #[test]
    fn retain_until_is_write_time_plus_period_in_utc_calendar() {
        // 2024-02-29T12:00:30Z
        let t = Time { secs: 1_709_208_030, nanos: 5 };
        let r: Retention = "compliance:1y".parse().unwrap();
        assert_eq!(header_date(r.until(t).unwrap()), "2025-02-28T12:00:30Z");
        let r: Retention = "governance:2d3h".parse().unwrap();
        assert_eq!(header_date(r.until(t).unwrap()), "2024-03-02T15:00:30Z");
    }

    #[test]
    fn urls_follow_the_s3_service() {
        assert_eq!(bucket_url(Some("http://127.0.0.1:9000/"), "x", "b", false), "http://127.0.0.1:9000/b");
        assert_eq!(bucket_url(None, "eu-west-1", "b", true), "https://b.s3.eu-west-1.amazonaws.com");
        assert_eq!(bucket_url(Some("minio.example"), "x", "b", false), "https://minio.example/b");
        assert_eq!(encode_key("p q/ledger/ab"), "p%20q/ledger/ab");
    }

    #[test]
    fn only_s3_takes_the_option() {
        let o = Options::from_sources(&["ledger_retention=compliance:1d".into()], vec![], None).unwrap();
        for url in ["/srv/repo", "memory://x", "sftp://h/p", "webdav://h/p", "gcs://b/p", "azblob://c/p"] {
            let u = RepoUrl::parse(url).unwrap();
            let e = refuse_unless_s3(&u, &o).unwrap_err();
            let m = e.to_string();
            assert!(matches!(e, Error::Usage(_)) && m.contains(OPTION) && m.contains(u.scheme()), "{m}");
        }
        assert!(refuse_unless_s3(&RepoUrl::parse("s3://b/p").unwrap(), &o).is_ok());
        assert!(refuse_unless_s3(&RepoUrl::parse("/srv/repo").unwrap(), &Options::default()).is_ok());
    }
}
