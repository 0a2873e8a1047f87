//! The drill's verify command: `sh -c CMD` with the drill's environment, standard output and
//! standard error into one pipe of which the last [`OUTPUT_TAIL`] bytes are kept, and, when the
//! drill streams a file, that file's content written into its standard input chunk by chunk, each
//! chunk's id checked as it is read (so nothing touches the disk). Stopped when the drill is
//! cancelled.

use super::evidence::{CommandRun, Streamed, OUTPUT_TAIL};
use crate::browse;
use crate::error::{Error, Result};
use crate::id::{BlobId, BlobKind};
use crate::repository::ReadRepository;
use crate::tree::NodeKind;
use crate::trees::chunk_ids_iter;
use rayon::prelude::*;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The file a drill streams into the command.
pub(super) struct StreamSource<'a> {
    /// The repository.
    pub repo: &'a ReadRepository,
    /// The snapshot's root tree.
    pub root: BlobId,
    /// The file's path in the snapshot.
    pub path: &'a Path,
}

/// How `status` ended, in words.
fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => "ended without a status".into(),
    }
}

/// Runs `cmd`; the run passes when it exits 0. A command that cannot start is a run that did not
/// pass. `Err` only when `cancel` was set (the command is killed).
pub(super) fn run(
    cmd: &str,
    env: &[(&str, String)],
    stream: Option<&StreamSource>,
    cancel: Option<&AtomicBool>,
) -> Result<CommandRun> {
    let mut run = CommandRun { command: cmd.to_string(), ..Default::default() };
    let (reader, writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => {
            run.status = format!("could not start: no pipe: {e}");
            return Ok(run);
        }
    };
    let child = writer.try_clone().and_then(|w2| {
        let mut c = Command::new("sh");
        c.arg("-c").arg(cmd).stdout(w2).stderr(writer);
        c.stdin(if stream.is_some() { Stdio::piped() } else { Stdio::null() });
        for (k, v) in env {
            c.env(k, v);
        }
        c.spawn()
        // `c` drops here with its copies of the pipe's write end, so the reader sees the end.
    });
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            run.status = format!("could not start: {e}");
            return Ok(run);
        }
    };
    let tail = std::thread::spawn(move || keep_tail(reader));
    if let Some(src) = stream {
        let stdin = child.stdin.take();
        let s = feed(src, stdin, cancel);
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            stop(&mut child);
            let _ = tail.join();
            return Err(Error::Interrupted);
        }
        run.streamed = Some(s);
    }
    let status = loop {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            stop(&mut child);
            let _ = tail.join();
            return Err(Error::Interrupted);
        }
        match child.try_wait() {
            Ok(Some(s)) => break Ok(s),
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => break Err(e),
        }
    };
    let (out, total) = tail.join().unwrap_or_default();
    run.output_tail = out;
    run.output_bytes = total;
    match status {
        Ok(s) => {
            run.exit_code = s.code();
            run.passed = s.success();
            run.status = describe(s);
        }
        Err(e) => run.status = format!("could not be waited for: {e}"),
    }
    Ok(run)
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Reads `r` to its end; returns the last [`OUTPUT_TAIL`] bytes as text (lossy, cut at a
/// character boundary) and the total read.
fn keep_tail(mut r: impl Read) -> (String, u64) {
    let mut kept: Vec<u8> = Vec::new();
    let mut total = 0u64;
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                total += n as u64;
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * OUTPUT_TAIL {
                    kept.drain(..kept.len() - OUTPUT_TAIL);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if kept.len() > OUTPUT_TAIL {
        kept.drain(..kept.len() - OUTPUT_TAIL);
    }
    // Skip continuation bytes a cut left at the front.
    let start = kept.iter().take(3).take_while(|b| (**b & 0xc0) == 0x80).count();
    (String::from_utf8_lossy(&kept[start..]).into_owned(), total)
}

/// Writes the file's content into `stdin`, eight blobs read (and their ids checked) in parallel.
/// When the command stops reading, the rest is still read and checked, so the whole file is
/// proven readable whatever the command needs of it.
fn feed(src: &StreamSource, stdin: Option<std::process::ChildStdin>, cancel: Option<&AtomicBool>) -> Streamed {
    let t = Instant::now();
    let mut s = Streamed::default();
    let r = (|| -> std::result::Result<(), String> {
        let node = browse::find(src.repo, &src.root, src.path)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "no such file in the snapshot".to_string())?;
        let NodeKind::File { content } = &node.kind else {
            return Err(format!("a {}, not a file", node.type_name()));
        };
        let mut sink = stdin;
        if let Some(b) = content.inline() {
            // Inline content (format-spec §7.3): the bytes are in the node.
            s.bytes = b.len() as u64;
            if let Some(w) = sink.as_mut() {
                let _ = w.write_all(b);
            }
        }
        let mut ids = chunk_ids_iter(src.repo, content);
        loop {
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Ok(());
            }
            let window = ids.by_ref().take(8).collect::<Result<Vec<BlobId>>>().map_err(|e| e.to_string())?;
            if window.is_empty() {
                break;
            }
            let blobs: Vec<Result<Vec<u8>>> =
                window.par_iter().map(|id| src.repo.read_blob(BlobKind::Data, id)).collect();
            for b in blobs {
                let b = b.map_err(|e| e.to_string())?;
                s.bytes += b.len() as u64;
                if let Some(w) = sink.as_mut() {
                    if w.write_all(&b).is_err() {
                        // The command closed its input (it read what it needed, or failed;
                        // its exit status says which).
                        sink = None;
                    }
                }
            }
        }
        if s.bytes != node.size {
            return Err(format!("the chunks hold {} bytes, the snapshot says {}", s.bytes, node.size));
        }
        Ok(())
    })();
    s.error = r.err();
    s.ms = t.elapsed().as_millis().min(u64::MAX as u128) as u64;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_bytes_and_counts_all() {
        let data: Vec<u8> = (0..3 * OUTPUT_TAIL + 7).map(|i| b'a' + (i % 26) as u8).collect();
        let (tail, total) = keep_tail(&data[..]);
        assert_eq!(total, data.len() as u64);
        assert_eq!(tail.as_bytes(), &data[data.len() - OUTPUT_TAIL..]);
    }

    #[test]
    fn a_command_runs_with_its_environment_and_its_output_is_kept() {
        let r = run(
            "echo \"$CAIRN_DRILL_SNAPSHOT\"; echo err >&2; exit 3",
            &[("CAIRN_DRILL_SNAPSHOT", "abc".into())],
            None,
            None,
        )
        .unwrap();
        assert!(!r.passed);
        assert_eq!(r.exit_code, Some(3));
        assert_eq!(r.status, "exited with status 3");
        assert_eq!(r.output_tail, "abc\nerr\n");
        let ok = run("true", &[], None, None).unwrap();
        assert!(ok.passed);
    }
}
