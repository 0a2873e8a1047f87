//! Pack uploads sent from their staging file: one presigned PUT per attempt, whose body is read
//! from the file piece by piece as the connection takes it, so an upload in flight holds a few
//! pieces, not a whole pack. OpenDAL sends a request body only from memory; this sends the one
//! kind of body that is large, and leaves every other request to OpenDAL. It must not change what
//! is stored or how: the same bytes under the same name, created only if the name is free, an
//! "exists" answer checked as format-spec §1.4 says, retried like OpenDAL's retry layer.

use super::backend_err;
use super::retry::backoff;
use super::staged::StagedFile;
use crate::error::{Error, Result};
use opendal::Operator;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How much of the file one read takes: what an upload holds at a time, besides the socket's
/// buffers.
const PIECE: usize = 256 << 10;

/// How long a presigned request stays valid. The service checks it when the request arrives,
/// which is at once; a body that goes on for longer is not cut off by it.
const PRESIGN_FOR: Duration = Duration::from_secs(3600);

/// The most of an error answer's body that is read, for its message.
const ERROR_BODY: usize = 64 << 10;

/// Streamed uploads over one service: its HTTP client (the one OpenDAL's requests go through,
/// with the same stall watch) and the retry and timeout settings of its writes.
#[derive(Clone, Debug)]
pub struct Streaming {
    /// The service's HTTP client (see `super::remote::with_http_client`).
    pub client: reqwest::Client,
    /// Attempts after the first, for a failure worth another (as OpenDAL's retry layer counts).
    pub retries: usize,
    /// The most one attempt may take, body and answer (`upload_timeout`).
    pub write_timeout: Duration,
    /// How long a failed attempt waits to learn whether its name is now taken (`io_timeout`).
    pub probe_timeout: Duration,
    /// The location, for messages.
    pub location: String,
}

/// What a streamed create came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Put {
    /// Stored under the name.
    Created,
    /// The service refused it: the name is taken (`412`, with create-if-not-exists).
    Exists,
}

/// Why an attempt did not store the object.
enum Failed {
    /// Worth another attempt: no answer, a dropped connection, a 5xx, throttling.
    Again(String),
    /// Not: the service refused the request, or the staging file could not be read.
    Final(Error),
}

impl Streaming {
    /// Stores `file` (its first `file.len()` bytes) under `path`; with `if_not_exists` only if
    /// the name is free. Each attempt presigns a new PUT through `op` and reads the file from its
    /// start, so a retried upload sends the same bytes again.
    pub async fn put(&self, op: &Operator, path: &str, file: &Arc<StagedFile>, if_not_exists: bool) -> Result<Put> {
        let mut attempt = 0u32;
        loop {
            match self.attempt(op, path, file, if_not_exists).await {
                Ok(put) => return Ok(put),
                // A server may answer 412 before it has read the body and close the connection, which
                // the client reports as a failed send (s3s-fs does), and an attempt whose answer was
                // lost may have landed: a name taken now is checked by the caller, not sent again.
                Err(Failed::Again(_))
                    if if_not_exists
                        && matches!(tokio::time::timeout(self.probe_timeout, op.exists(path)).await, Ok(Ok(true))) =>
                {
                    return Ok(Put::Exists);
                }
                Err(Failed::Again(why)) if (attempt as usize) < self.retries => {
                    attempt += 1;
                    let wait = backoff(attempt);
                    tracing::warn!("storage write {path} failed, retry {attempt} in {:.1}s: {why}", wait.as_secs_f64());
                    tokio::time::sleep(wait).await;
                }
                Err(Failed::Again(why)) => {
                    return Err(backend_err("write", path, format!("{}: {why}", self.location)));
                }
                Err(Failed::Final(e)) => return Err(e),
            }
        }
    }

    async fn attempt(
        &self,
        op: &Operator,
        path: &str,
        file: &Arc<StagedFile>,
        if_not_exists: bool,
    ) -> std::result::Result<Put, Failed> {
        let options = opendal::options::WriteOptions { if_not_exists, ..Default::default() };
        let signed = match op.presign_write_options(path, PRESIGN_FOR, options).await {
            Ok(s) => s,
            Err(e) if e.is_temporary() => return Err(Failed::Again(format!("cannot sign the request: {e}"))),
            Err(e) => {
                let why = format!("{}: cannot sign the request: {e}", self.location);
                return Err(Failed::Final(backend_err("write", path, why)));
            }
        };
        let len = file.len();
        let url = match reqwest::Url::parse(&signed.uri().to_string()) {
            Ok(u) => u,
            Err(e) => {
                let why = format!("{}: the signed request has no usable URL: {e}", self.location);
                return Err(Failed::Final(backend_err("write", path, why)));
            }
        };
        let mut req = self.client.request(signed.method().clone(), url);
        for (name, value) in signed.header() {
            // The client sets Host from the URL, as OpenDAL's requests do.
            if name != http::header::HOST {
                req = req.header(name, value);
            }
        }
        let local_error = Arc::new(Mutex::new(None));
        let body = reqwest::Body::wrap_stream(pieces(file.clone(), len, local_error.clone()));
        let req = req.header(http::header::CONTENT_LENGTH, len).body(body);
        tracing::trace!(service = "s3", op = "write", path, len, "streamed from its staging file");
        let answer = tokio::time::timeout(self.write_timeout, async {
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            let text = if (200..300).contains(&status) { String::new() } else { error_body(resp).await };
            Ok::<_, reqwest::Error>((status, text))
        })
        .await;
        // The staging file failing to read is this machine's fault: not worth sending again.
        if let Some(e) = local_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(Failed::Final(e));
        }
        let (status, text) = match answer {
            Err(_) => return Err(Failed::Again(format!("no answer in {} s", self.write_timeout.as_secs()))),
            // The URL carries the presigned signature, a bearer credential for this write: never shown.
            Ok(Err(e)) => return Err(Failed::Again(chain(&e.without_url()))),
            Ok(Ok(a)) => a,
        };
        match status {
            200..=299 => Ok(Put::Created),
            412 if if_not_exists => Ok(Put::Exists),
            // 409: S3's answer to two conditional writes of one name at once; the next says which won.
            408 | 409 | 429 | 500..=599 => Err(Failed::Again(format!("HTTP {status}: {text}"))),
            // Not followed (`remote::body_keeping_redirects`; a body read from a file is not sent
            // twice in one request): whatever the new address would say, the pack is not there.
            300..=399 => {
                let why =
                    format!("{}: the service redirected the upload (HTTP {status}); it is not stored", self.location);
                Err(Failed::Final(backend_err("write", path, why)))
            }
            _ => {
                let hint = if matches!(status, 401 | 403) { " (the service refused the credentials)" } else { "" };
                let why = format!("{}: HTTP {status}: {text}{hint}", self.location);
                Err(Failed::Final(backend_err("write", path, why)))
            }
        }
    }
}

/// The first `len` bytes of `file` as a stream of pieces of at most [`PIECE`] bytes, each read
/// when the connection asks for it. A read that fails, or a file shorter than `len`, ends the
/// stream with an error (the request fails) and leaves the reason in `failed`.
fn pieces(
    file: Arc<StagedFile>,
    len: u64,
    failed: Arc<Mutex<Option<Error>>>,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    futures_util::stream::try_unfold(0u64, move |at| {
        let (file, failed) = (file.clone(), failed.clone());
        async move {
            if at >= len {
                return Ok::<_, std::io::Error>(None);
            }
            let n = (len - at).min(PIECE as u64) as usize;
            let read = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; n];
                match file.file().read_exact_at(&mut buf, at) {
                    Ok(()) => Ok(buf),
                    Err(e) => {
                        let kind = e.kind();
                        *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(file.error("read", e));
                        Err(std::io::Error::new(kind, "the staging file could not be read"))
                    }
                }
            })
            .await
            .map_err(std::io::Error::other)??;
            Ok(Some((bytes::Bytes::from(read), at + n as u64)))
        }
    })
}

/// The start of an error answer's body, as the service's code and message where it has them.
async fn error_body(mut resp: reqwest::Response) -> String {
    let mut body = Vec::new();
    while let Ok(Some(piece)) = resp.chunk().await {
        body.extend_from_slice(&piece[..piece.len().min(ERROR_BODY - body.len())]);
        if body.len() >= ERROR_BODY {
            break;
        }
    }
    s3_error_text(&body)
}

/// An HTTP client error with its causes (the useful one, a reset connection or a refused
/// certificate, is often deeper).
fn chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// The `<Code>` and `<Message>` of an S3 error body, for messages.
pub fn s3_error_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let tag = |t: &str| {
        let open = format!("<{t}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{t}>"))? + start;
        Some(text[start..end].to_string())
    };
    match (tag("Code"), tag("Message")) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c,
        _ => text.chars().take(200).collect(),
    }
}
