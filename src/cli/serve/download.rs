//! `GET /api/v1/snapshots/{id}/download?path=&format=raw|tar|zip`: a file's bytes, or a directory
//! as a tar or zip archive, streamed. The archive is written by a blocking task into a bounded
//! channel of 256 KiB pieces that the response body drains: memory stays a few pieces and one blob
//! per download whatever the size. Each blob is read and decrypted under a worker permit
//! ([`super::work`]) taken for that blob alone, so downloads take turns on the cores, and a slow
//! client, whose task waits on the full channel, holds no permit meanwhile. A client that goes away
//! ends the task at its next write or its next wait for a permit.

use super::read::{inner_path, snapshot_of};
use super::routes::{ApiError, Shared};
use super::work::Gate;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cairn::id::{BlobId, BlobKind};
use cairn::repository::ReadRepository;
use cairn::tree::{Content, Node, NodeKind};
use serde::Deserialize;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Pieces in flight per download.
const DEPTH: usize = 4;
/// The size of one piece.
const PIECE: usize = 256 * 1024;

/// `?path=&format=`.
#[derive(Deserialize)]
pub struct DownloadQuery {
    path: Option<String>,
    format: Option<String>,
}

/// What is sent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Raw,
    Tar,
    Zip,
}

/// The download handler.
pub async fn download(
    State(s): State<Shared>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<DownloadQuery>,
) -> Result<Response, ApiError> {
    let repo = s.repo();
    let path = inner_path(q.path.as_deref());
    let (node, root) = {
        let (repo, path) = (repo.clone(), path.clone());
        s.work
            .run(move || {
                let (_, snap) = snapshot_of(&repo, &id)?;
                Ok((cairn::browse::find(&repo, &snap.root(), &path)?, snap.root()))
            })
            .await?
    };
    let is_dir = node.as_ref().is_none_or(|n| matches!(n.kind, NodeKind::Dir { .. }));
    let format = match (q.format.as_deref(), is_dir) {
        (None | Some(""), true) | (Some("tar"), _) => Format::Tar,
        (Some("zip"), _) => Format::Zip,
        (None | Some("") | Some("raw"), false) => Format::Raw,
        (Some("raw"), true) => {
            return Err(ApiError::bad(format!("{} is a directory: format tar or zip", path.display())))
        }
        (Some(f), _) => return Err(ApiError::bad(format!("format {f:?}: raw, tar or zip"))),
    };
    if format == Format::Raw && !matches!(node.as_ref().map(|n| &n.kind), Some(NodeKind::File { .. })) {
        let kind = node.as_ref().map_or("directory", |n| n.type_name());
        return Err(ApiError::bad(format!("{} is a {kind}: only a regular file downloads raw", path.display())));
    }
    let name = match path.file_name() {
        Some(n) => String::from_utf8_lossy(n.as_bytes()).into_owned(),
        None => "snapshot".to_string(),
    };
    // A slot first (waited for without a thread): past MAX_DOWNLOADS, downloads queue here.
    let slot = s.work.download_slot().await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Piece>(DEPTH);
    let gate = s.work.gate(tx.clone());
    let (content_type, file_name, length) = match format {
        Format::Raw => ("application/octet-stream", name.clone(), node.as_ref().map(|n| n.size)),
        Format::Tar => ("application/x-tar", format!("{name}.tar"), None),
        Format::Zip => ("application/zip", format!("{name}.zip"), None),
    };
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let mut out = ChannelWriter { tx: tx.clone(), buf: Vec::with_capacity(PIECE) };
        let src = Source { repo: &repo, gate: &gate };
        let result = match (format, node) {
            (Format::Raw, Some(n)) => copy_file(&src, &n, &mut out).map(|_| ()),
            (Format::Tar, n) => write_tar(&src, &root, &path, n.as_ref(), &name, &mut out),
            (Format::Zip, n) => write_zip(&src, &root, &path, n.as_ref(), &name, &mut out),
            (Format::Raw, None) => Ok(()),
        };
        drop(gate);
        let result = result.and_then(|_| out.flush());
        if let Err(e) = result {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                tracing::warn!("serve: download of {} failed: {e}", path.display());
                // The body ends with an error: the client sees a broken transfer, not a short file.
                let _ = tx.blocking_send(Err(e));
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    let mut r = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(n) = length {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    if let Ok(v) = HeaderValue::from_str(&disposition(&file_name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

/// `attachment; filename="ascii"; filename*=UTF-8''percent-encoded` (RFC 6266).
fn disposition(name: &str) -> String {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' { c } else { '_' }).collect();
    let mut enc = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{enc}")
}

/// One piece of a download's body, or the error that ends it.
type Piece = Result<Bytes, std::io::Error>;

/// Where a download reads blobs: the repository, through the worker permits.
struct Source<'a> {
    repo: &'a ReadRepository,
    gate: &'a Gate<Piece>,
}

/// Sends what is written in [`PIECE`]-sized pieces; a closed channel (the client went away) is a
/// `BrokenPipe` error.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Piece>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE)));
        self.tx.blocking_send(Ok(piece)).map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(PIECE - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == PIECE {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// A file's content as a reader of exactly `size` bytes (zeros after a short content, which
/// cannot happen in a sound repository: the archive's framing stays right either way). Each blob
/// is fetched under a worker permit of its own, given back before its bytes are handed on.
struct FileReader<'a> {
    gate: &'a Gate<Piece>,
    repo: &'a ReadRepository,
    ids: cairn::trees::ChunkIds<'a>,
    blob: Vec<u8>,
    at: usize,
    left: u64,
}

impl<'a> FileReader<'a> {
    fn new(src: &Source<'a>, content: &'a Content, size: u64) -> Self {
        let repo = src.repo;
        let ids = cairn::trees::chunk_ids_iter(repo, content);
        // An inline content (format-spec §7.3) is its own one blob; it names no other.
        let blob = content.inline().map(<[u8]>::to_vec).unwrap_or_default();
        FileReader { gate: src.gate, repo, ids, blob, at: 0, left: size }
    }
}

impl Read for FileReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 || out.is_empty() {
            return Ok(0);
        }
        while self.at == self.blob.len() {
            // The permit covers finding the next id (a chunk-list blob may be read) and reading,
            // decrypting and checking the blob; it is dropped before the bytes go anywhere.
            let _permit = self.gate.turn()?;
            match self.ids.next() {
                Some(id) => {
                    let id: BlobId = id.map_err(std::io::Error::other)?;
                    self.blob = self.repo.read_blob(BlobKind::Data, &id).map_err(std::io::Error::other)?;
                    self.at = 0;
                }
                None => {
                    let n = out.len().min(self.left as usize);
                    out[..n].fill(0);
                    self.left -= n as u64;
                    return Ok(n);
                }
            }
        }
        let n = out.len().min(self.blob.len() - self.at).min(usize::try_from(self.left).unwrap_or(usize::MAX));
        out[..n].copy_from_slice(&self.blob[self.at..self.at + n]);
        self.at += n;
        self.left -= n as u64;
        Ok(n)
    }
}

fn copy_file(src: &Source, n: &Node, out: &mut dyn Write) -> std::io::Result<u64> {
    let NodeKind::File { content } = &n.kind else { return Ok(0) };
    std::io::copy(&mut FileReader::new(src, content, n.size), out)
}

/// Every node of the download: `(archive path, node)` for `top` (the node at `path`, `None` for
/// the root) and, for a directory, everything below it in pre-order, handed to `f`.
fn each(
    repo: &ReadRepository,
    root: &BlobId,
    path: &Path,
    top: Option<&Node>,
    name: &str,
    f: &mut dyn FnMut(&Path, &Node) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let base = PathBuf::from(name);
    let tree = match top {
        None => *root,
        Some(n) => {
            f(&base, n)?;
            match n.kind {
                NodeKind::Dir { tree } => tree,
                _ => return Ok(()),
            }
        }
    };
    let mut failed = None;
    let limits = crate::cli::values::tree_limits(None);
    let r = cairn::browse::walk(repo, &tree, &base, &limits, &mut |p, n| match f(p, n) {
        Ok(()) => Ok(true),
        Err(e) => {
            failed = Some(e);
            Err(cairn::Error::Interrupted)
        }
    });
    match (failed, r) {
        (Some(e), _) => Err(e),
        (None, Err(e)) => Err(std::io::Error::other(format!("{}: {e}", path.display()))),
        (None, Ok(())) => Ok(()),
    }
}

fn write_tar(
    src: &Source,
    root: &BlobId,
    path: &Path,
    top: Option<&Node>,
    name: &str,
    out: &mut ChannelWriter,
) -> std::io::Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Complete);
    tar.follow_symlinks(false);
    if top.is_none() {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        tar.append_data(&mut h, name, std::io::empty())?;
    }
    each(src.repo, root, path, top, name, &mut |p, n| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(n.mode & 0o7777);
        h.set_uid(n.uid.into());
        h.set_gid(n.gid.into());
        h.set_mtime(u64::try_from(n.mtime.secs).unwrap_or(0));
        let _ = h.set_username(&n.user);
        let _ = h.set_groupname(&n.group);
        match &n.kind {
            NodeKind::Dir { .. } => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                tar.append_data(&mut h, p, std::io::empty())
            }
            NodeKind::File { content } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(n.size);
                tar.append_data(&mut h, p, FileReader::new(src, content, n.size))
            }
            NodeKind::Symlink { target } => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                tar.append_link(&mut h, p, std::ffi::OsStr::from_bytes(target))
            }
            // Devices, FIFOs and sockets carry no data; a download leaves them out.
            _ => Ok(()),
        }
    })?;
    tar.into_inner()?.flush()
}

fn write_zip(
    src: &Source,
    root: &BlobId,
    path: &Path,
    top: Option<&Node>,
    name: &str,
    out: &mut ChannelWriter,
) -> std::io::Result<()> {
    use zip::write::SimpleFileOptions;
    let mut zip = zip::ZipWriter::new_stream(out);
    let zerr = |e: zip::result::ZipError| std::io::Error::other(e.to_string());
    let utf8 = |p: &Path| p.to_string_lossy().into_owned();
    if top.is_none() {
        zip.add_directory(name, SimpleFileOptions::default()).map_err(zerr)?;
    }
    each(src.repo, root, path, top, name, &mut |p, n| {
        let mut o = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .unix_permissions(n.mode & 0o7777)
            .large_file(n.size >= u32::MAX as u64);
        if let Some(t) = dos_time(n.mtime.secs) {
            o = o.last_modified_time(t);
        }
        match &n.kind {
            NodeKind::Dir { .. } => zip.add_directory(utf8(p), o).map_err(zerr),
            NodeKind::File { content } => {
                zip.start_file(utf8(p), o).map_err(zerr)?;
                std::io::copy(&mut FileReader::new(src, content, n.size), &mut zip).map(|_| ())
            }
            NodeKind::Symlink { target } => zip.add_symlink(utf8(p), String::from_utf8_lossy(target), o).map_err(zerr),
            _ => Ok(()),
        }
    })?;
    zip.finish().map_err(zerr)?.into_inner().flush()
}

/// A zip (MS-DOS) time for Unix time `secs`, in UTC; `None` outside 1980–2107.
fn dos_time(secs: i64) -> Option<zip::DateTime> {
    let t = jiff::tz::TimeZone::UTC.to_datetime(jiff::Timestamp::from_second(secs).ok()?);
    let (y, mo, d) = (u16::try_from(t.year()).ok()?, t.month() as u8, t.day() as u8);
    zip::DateTime::from_date_and_time(y, mo, d, t.hour() as u8, t.minute() as u8, t.second() as u8).ok()
}
