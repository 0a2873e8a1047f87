//! The backup pipeline: the walker thread, the sealing workers and the tree builder, joined by
//! bounded queues; then the root tree and the snapshot, committed last.

use super::sources::{resolve, walk_source};
use super::tree::{Builder, Frame};
use super::walk::Ctx;
use super::{
    cancelled, BackupOptions, BackupResult, BackupSource, ChunkJob, Event, PathMessage, Progress, EVENT_BATCH,
};
use crate::error::{Error, Result};
use crate::id::BlobKind;
use crate::repository::{hostname, username, Repository};
use crate::snapshot::{Snapshot, SnapshotV1, Source, Summary};
use crate::time::Time;
use crate::trees::write_dir;
use crate::writer::{Writer, WriterOptions};
use crossbeam_channel::bounded;
use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Runs a backup and commits its snapshot.
pub fn backup(
    repo: &Repository,
    source: BackupSource,
    opts: &BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupResult> {
    let started = Time::now();
    let host = opts.host.clone().unwrap_or_else(hostname);
    let (paths, snap_source) = resolve(&source)?;
    let path_bytes: Vec<Vec<u8>> = paths.iter().map(|p| p.as_os_str().as_bytes().to_vec()).collect();
    // A key bound to hosts refuses another host before anything is written (format-spec §4.3).
    let signer = repo.signer()?;
    signer.check_host(&host)?;
    let unattributed = signer.unattributed().map(str::to_string);
    let parent = match (opts.parent, repo.readable().ok()) {
        (Some(p), _) => Some(p),
        // Flagged snapshots (forged, host-not-allowed, future) are never a parent.
        (None, Some(reader)) => crate::select::list_all(&reader)?
            .into_iter()
            .rev()
            .find(|l| l.eligible() && l.snapshot.host() == host && l.snapshot.paths() == path_bytes)
            .map(|l| l.id),
        // A write-only key cannot read earlier snapshots to pick a parent.
        (None, None) => None,
    };
    let wopts = WriterOptions {
        compression: opts.compression.unwrap_or_else(|| repo.default_compression()),
        verify: !opts.no_verify,
        uploaders: 2,
        dry_run: opts.dry_run,
        verify_dedup: opts.verify_dedup,
    };
    let writer = Writer::new(repo, wopts, "backup")?;
    let threads = if opts.threads > 0 {
        opts.threads
    } else {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
    };
    let (jobs_tx, jobs_rx) = bounded::<ChunkJob>(threads * 2);
    let (ev_tx, ev_rx) = bounded::<Vec<Event>>(1024 / EVENT_BATCH);
    let ctx = Ctx {
        repo,
        writer: &writer,
        opts,
        progress,
        jobs: jobs_tx,
        events: ev_tx,
        batch: Mutex::new(Vec::with_capacity(EVENT_BATCH)),
        errors: Mutex::new(Vec::new()),
        warnings: Mutex::new(Vec::new()),
        bytes_read: AtomicU64::new(0),
        start: started,
        names: Mutex::new((HashMap::new(), HashMap::new())),
        hardlinks: Mutex::new(HashMap::new()),
    };
    let mut builder = Builder {
        writer: &writer,
        repo,
        stack: vec![Frame { node: None, children: Vec::new() }],
        summary: Summary::default(),
        groups: HashMap::new(),
        file_cache: Vec::new(),
        errors: Vec::new(),
    };
    struct WalkOutcome {
        errors: Vec<PathMessage>,
        warnings: Vec<PathMessage>,
        bytes_read: u64,
        command_status: Option<std::process::ExitStatus>,
        command_error: Option<Error>,
    }
    let (built, walked): (Result<()>, WalkOutcome) = std::thread::scope(|s| {
        for _ in 0..threads {
            let rx = jobs_rx.clone();
            let w = &writer;
            s.spawn(move || {
                for job in rx {
                    let r = w.store(BlobKind::Data, &job.data).map(|(id, _)| id);
                    let _ = job.reply.send(r);
                }
            });
        }
        drop(jobs_rx);
        let walker = s.spawn(move || {
            let (command_status, command_error) = walk_source(&ctx, source, &paths);
            // Dropping the senders ends the builder's loop and the workers.
            ctx.flush();
            let Ctx { jobs, events, errors, warnings, bytes_read, .. } = ctx;
            drop(jobs);
            drop(events);
            WalkOutcome {
                errors: errors.into_inner().unwrap_or_else(|p| p.into_inner()),
                warnings: warnings.into_inner().unwrap_or_else(|p| p.into_inner()),
                bytes_read: bytes_read.into_inner(),
                command_status,
                command_error,
            }
        });
        let res = (|| {
            for batch in ev_rx.iter() {
                if cancelled(opts) {
                    return Err(Error::Interrupted);
                }
                for e in batch {
                    builder.event(e, opts.dry_run)?;
                }
            }
            Ok(())
        })();
        if res.is_err() {
            // Unblock the walker: drop whatever it still sends.
            for e in ev_rx.iter() {
                drop(e);
            }
        }
        let walked = walker.join().unwrap_or_else(|_| WalkOutcome {
            errors: vec![],
            warnings: vec![],
            bytes_read: 0,
            command_status: None,
            command_error: Some(Error::Internal("the walker thread panicked".into())),
        });
        (res, walked)
    });
    let command_status = walked.command_status;
    let command_error = walked.command_error;
    if let Err(e) = built {
        writer.abandon();
        return Err(e);
    }
    if cancelled(opts) {
        writer.abandon();
        return Err(Error::Interrupted);
    }
    if let Some(e) = command_error {
        writer.abandon();
        return Err(e);
    }
    if let Source::Command { command, .. } = &snap_source {
        match command_status {
            Some(st) if st.success() => {}
            Some(st) => {
                writer.abandon();
                return Err(Error::CommandFailed { command: command.clone(), status: st.to_string() });
            }
            None => {
                writer.abandon();
                return Err(Error::CommandFailed { command: command.clone(), status: "no exit status".into() });
            }
        }
    }
    let mut errors = walked.errors;
    errors.extend(std::mem::take(&mut builder.errors));
    if !matches!(snap_source, Source::Files) && !errors.is_empty() {
        writer.abandon();
        let e = &errors[0];
        return Err(Error::io(&e.path, std::io::Error::other(format!("reading the stream failed: {}", e.message))));
    }
    builder.flush_cache(true)?;
    let root_frame = builder.stack.pop().expect("root frame");
    if !builder.stack.is_empty() {
        writer.abandon();
        return Err(Error::Interrupted);
    }
    let root = write_dir(&writer, root_frame.children)?;
    let mut summary = builder.summary;
    summary.bytes_read = walked.bytes_read;
    summary.errors = errors.len() as u64;
    summary.started = started;
    let st = writer.stats();
    summary.blobs_added = st.blobs_added.load(Ordering::Relaxed);
    summary.bytes_added = st.bytes_added.load(Ordering::Relaxed);
    summary.bytes_added_stored = st.bytes_added_stored.load(Ordering::Relaxed);
    summary.finished = Time::now();
    let dedup_verified = st.dedup_verified.load(Ordering::Relaxed);
    let dedup_rejected = st.dedup_rejected.load(Ordering::Relaxed);
    let mut warnings = walked.warnings;
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let snap = Snapshot::V1(SnapshotV1 {
        time: opts.time.unwrap_or(started),
        host,
        user: username(),
        uid,
        gid,
        paths: path_bytes,
        tags: opts.tags.clone(),
        root,
        parent,
        source: snap_source,
        summary: summary.clone(),
        program: format!("cairn {}", env!("CARGO_PKG_VERSION")),
    });
    let snapshot_id = if opts.dry_run {
        writer.abandon();
        None
    } else {
        let id = writer.commit(&snap)?;
        // The ledger entry, after the commit (format-spec §13.4); when it fails the snapshot stays
        // committed, unrecorded (`ledger verify` names it), and the backup warns.
        warnings.extend(
            repo.ledger_note(crate::ledger::Event::backup(&id, &snap))
                .map(|message| PathMessage { path: "ledger/".into(), message }),
        );
        Some(id)
    };
    Ok(BackupResult { snapshot_id, parent, summary, errors, warnings, dedup_verified, dedup_rejected, unattributed })
}
