//! Stream sources: standard input and commands, each read on a runner thread (at most
//! `command_concurrency` at once), chunked as the output arrives and sealed by the backup's
//! workers, so a 50 GB dump costs the memory of a 50 MB one. A command runs in its own process
//! group with its standard error kept as a bounded tail; the first failure (non-zero exit, killed,
//! unreadable output) is kept and every other command is killed, so no snapshot is made.

use super::{cancelled, BackupOptions, ChunkJob, Jobs, Progress};
use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::repository::Repository;
use crate::snapshot::SourceRecord;
use crate::tree::Content;
use crate::trees::ContentWriter;
use crate::writer::Writer;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::collections::VecDeque;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Bytes of a command's standard error kept for the failure message.
pub const STDERR_TAIL_BYTES: usize = 4096;
/// Lines of a command's standard error shown in the failure message.
pub const STDERR_TAIL_LINES: usize = 20;
/// Chunks of one stream handed to the workers and not yet stored.
const IN_FLIGHT: usize = 16;

/// What a stream is read from.
pub(super) enum Kind {
    /// A reader (standard input).
    Reader(Box<dyn Read + Send>),
    /// A command line, run with `sh -c`.
    Command(String),
}

/// One stream source to read: its place among the sources, its path inside the snapshot
/// (relative to `/`), what it reads, and where its outcome goes.
pub(super) struct Spec {
    pub(super) index: usize,
    pub(super) path: String,
    pub(super) kind: Kind,
    pub(super) tx: Sender<Outcome>,
}

/// A stream read to its end: its content and its record. `None`: it failed or was stopped (the
/// reason is [`Shared::take_failure`]'s).
pub(crate) type Outcome = Option<Done>;

/// A stream read to its end.
pub(crate) struct Done {
    pub(super) index: usize,
    pub(super) size: u64,
    pub(super) content: Content,
    pub(super) record: SourceRecord,
}

/// State the runners and the tree builder share: the running commands' process groups, the
/// first failure, and whether everything must stop.
#[derive(Default)]
pub(super) struct Shared {
    groups: Mutex<Vec<u32>>,
    failure: Mutex<Option<Error>>,
    stop: AtomicBool,
}

impl Shared {
    /// True once a stream failed or the backup stopped.
    pub(super) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Records `e` unless a failure is already recorded, then stops everything.
    pub(super) fn fail(&self, e: Error) {
        {
            let mut f = self.failure.lock().unwrap_or_else(|p| p.into_inner());
            if f.is_none() {
                *f = Some(e);
            }
        }
        self.stop_all();
    }

    /// Stops every stream: no new one starts and the running commands are killed.
    pub(super) fn stop_all(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        for &g in groups.iter() {
            // SAFETY: a plain system call. The group's leader is not reaped while it is listed,
            // so the id names no other process group.
            unsafe { libc::kill(-(g as libc::pid_t), libc::SIGKILL) };
        }
    }

    /// The first failure, if any.
    pub(super) fn take_failure(&self) -> Option<Error> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn register(&self, pid: u32) {
        let mut groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        groups.push(pid);
        if self.stopped() {
            // SAFETY: as in `stop_all`.
            unsafe { libc::kill(-(pid as libc::pid_t), libc::SIGKILL) };
        }
    }

    fn unregister(&self, pid: u32) {
        self.groups.lock().unwrap_or_else(|p| p.into_inner()).retain(|&g| g != pid);
    }
}

/// What a runner needs of the backup.
#[derive(Clone)]
pub(super) struct Env<'a> {
    pub(super) repo: &'a Repository,
    pub(super) writer: &'a Writer<'a>,
    pub(super) opts: &'a BackupOptions,
    pub(super) progress: &'a dyn Progress,
    pub(super) jobs: Sender<Jobs>,
    pub(super) bytes_read: &'a AtomicU64,
    pub(super) shared: &'a Shared,
}

/// Reads streams from `queue` until it is empty.
pub(super) fn runner(env: &Env, queue: &Mutex<VecDeque<Spec>>) {
    loop {
        let Some(spec) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front() else {
            return;
        };
        let out = if env.shared.stopped() || cancelled(env.opts) {
            None
        } else {
            match spec.kind {
                Kind::Reader(r) => read_stdin(env, spec.index, &spec.path, r),
                Kind::Command(c) => run_command(env, spec.index, &spec.path, &c),
            }
        };
        let _ = spec.tx.send(out);
    }
}

/// Why reading a stream stopped early.
enum Stop {
    /// The stream itself could not be read.
    Read(std::io::Error),
    /// Storing failed (the backup's error, not the stream's).
    Store(Error),
    /// Another stream failed or the backup was interrupted.
    Stopped,
}

/// Chunks `reader` to its end, handing the chunks to the workers; its size and content.
fn chunk(env: &Env, reader: impl Read) -> std::result::Result<(u64, Content), Stop> {
    let mut stream = env.repo.chunker().stream_with_hint(reader, None);
    let mut content = ContentWriter::new(env.writer);
    let mut pending: VecDeque<Receiver<Result<BlobId>>> = VecDeque::new();
    let take = |content: &mut ContentWriter, rx: Receiver<Result<BlobId>>| -> std::result::Result<(), Stop> {
        let id =
            rx.recv().map_err(|_| Stop::Store(Error::Internal("a worker stopped".into())))?.map_err(Stop::Store)?;
        content.push(id).map_err(Stop::Store)
    };
    let mut last = 0;
    loop {
        if env.shared.stopped() || cancelled(env.opts) {
            return Err(Stop::Stopped);
        }
        let next = stream.next();
        let now = stream.bytes_read();
        env.progress.bytes(now - last);
        env.bytes_read.fetch_add(now - last, Ordering::Relaxed);
        last = now;
        match next {
            None => break,
            Some(Err(e)) => return Err(Stop::Read(e)),
            Some(Ok(data)) => {
                let (tx, rx) = bounded(1);
                if env.jobs.send(vec![ChunkJob { data, reply: tx }]).is_err() {
                    return Err(Stop::Store(Error::Internal("the workers stopped".into())));
                }
                pending.push_back(rx);
                while pending.len() > IN_FLIGHT {
                    let rx = pending.pop_front().expect("non-empty");
                    take(&mut content, rx)?;
                }
            }
        }
    }
    while let Some(rx) = pending.pop_front() {
        take(&mut content, rx)?;
    }
    let size = stream.bytes_read();
    Ok((size, content.finish().map_err(Stop::Store)?))
}

fn read_stdin(env: &Env, index: usize, path: &str, reader: Box<dyn Read + Send>) -> Outcome {
    match chunk(env, reader) {
        Ok((size, content)) => {
            Some(Done { index, size, content, record: SourceRecord::Stdin { path: path.to_string(), bytes: size } })
        }
        Err(Stop::Read(e)) => {
            env.shared
                .fail(Error::io(format!("/{path}"), std::io::Error::other(format!("reading standard input: {e}"))));
            None
        }
        Err(Stop::Store(e)) => {
            env.shared.fail(e);
            None
        }
        Err(Stop::Stopped) => None,
    }
}

fn run_command(env: &Env, index: usize, path: &str, command: &str) -> Outcome {
    let failed = |status: String, stderr: String| Error::CommandFailed { path: format!("/{path}"), status, stderr };
    let child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a failure elsewhere kills the command and whatever it started.
        .process_group(0)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            env.shared.fail(failed(format!("cannot start: {e}"), String::new()));
            return None;
        }
    };
    let pid = child.id();
    env.shared.register(pid);
    let tail = child.stderr.take().map(|mut err| {
        std::thread::spawn(move || {
            let mut tail = Tail::default();
            let mut buf = [0u8; 8192];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                tail.push(&buf[..n]);
            }
            tail.text()
        })
    });
    let read = match child.stdout.take() {
        Some(out) => chunk(env, out),
        None => Err(Stop::Store(Error::Internal("no pipe for the command's output".into()))),
    };
    if read.is_err() {
        // SAFETY: as in `Shared::stop_all`; the child is not reaped yet.
        unsafe { libc::kill(-(pid as libc::pid_t), libc::SIGKILL) };
    }
    env.shared.unregister(pid);
    let status = child.wait();
    let stderr = tail.and_then(|t| t.join().ok()).unwrap_or_default();
    match (read, status) {
        (Ok((size, content)), Ok(st)) if st.success() => Some(Done {
            index,
            size,
            content,
            record: SourceRecord::Command { path: path.to_string(), exit_status: 0, bytes: size },
        }),
        (Err(Stop::Store(e)), _) => {
            env.shared.fail(e);
            None
        }
        (Err(Stop::Stopped), _) => None,
        (Err(Stop::Read(e)), _) => {
            env.shared.fail(failed(format!("reading its output failed: {e}"), stderr));
            None
        }
        (Ok(_), Ok(st)) => {
            // Killed by `stop_all` because something else failed: that failure is the one told.
            if !env.shared.stopped() {
                env.shared.fail(failed(describe(st), stderr));
            }
            None
        }
        (Ok(_), Err(e)) => {
            env.shared.fail(failed(format!("cannot wait for it: {e}"), stderr));
            None
        }
    }
}

/// `exited with status 3` or `killed by signal 9 (SIGKILL)`.
fn describe(st: ExitStatus) -> String {
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!("killed by signal {s}{}", signal_name(s)),
        (None, None) => format!("ended with {st}"),
    }
}

fn signal_name(s: i32) -> &'static str {
    match s {
        libc::SIGINT => " (SIGINT)",
        libc::SIGTERM => " (SIGTERM)",
        libc::SIGKILL => " (SIGKILL)",
        libc::SIGPIPE => " (SIGPIPE)",
        libc::SIGSEGV => " (SIGSEGV)",
        libc::SIGABRT => " (SIGABRT)",
        libc::SIGHUP => " (SIGHUP)",
        _ => "",
    }
}

/// The last [`STDERR_TAIL_BYTES`] bytes of a stream.
#[derive(Default)]
struct Tail {
    buf: VecDeque<u8>,
    dropped: bool,
}

impl Tail {
    fn push(&mut self, data: &[u8]) {
        self.buf.extend(data);
        while self.buf.len() > STDERR_TAIL_BYTES {
            let excess = self.buf.len() - STDERR_TAIL_BYTES;
            self.buf.drain(..excess);
            self.dropped = true;
        }
    }

    /// The last [`STDERR_TAIL_LINES`] lines, without a trailing newline.
    fn text(self) -> String {
        let bytes: Vec<u8> = self.buf.into_iter().collect();
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.trim_end().lines().collect();
        let mut start = lines.len().saturating_sub(STDERR_TAIL_LINES);
        // A first line cut by the byte limit is left out.
        if self.dropped && start == 0 && lines.len() > 1 {
            start = 1;
        }
        lines[start..].join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_lines_within_its_bytes() {
        let mut t = Tail::default();
        for i in 0..100 {
            t.push(format!("line {i}\n").as_bytes());
        }
        let text = t.text();
        assert_eq!(text.lines().count(), STDERR_TAIL_LINES);
        assert!(text.ends_with("line 99"));
        assert!(text.starts_with("line 80\n"));
        let mut t = Tail::default();
        t.push(&vec![b'x'; 3 * STDERR_TAIL_BYTES]);
        t.push(b"\nlast words\n");
        assert_eq!(t.text(), "last words");
    }
}
