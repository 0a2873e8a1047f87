//! The backup pipeline: the walker thread, the stream runners, the sealing workers and the tree
//! builder, joined by bounded queues; then the root tree and the snapshot, committed last.

use super::sources::{resolve, trie, walk};
use super::streams::{self, Env, Shared, Spec};
use super::tree::{Builder, Frame};
use super::walk::Ctx;
use super::Owners;
use super::{
    cancelled, BackupOptions, BackupResult, BackupSource, Event, Jobs, PathMessage, Progress,
    DEFAULT_COMMAND_CONCURRENCY, EVENT_BATCH,
};
use crate::error::{Error, Result};
use crate::id::BlobKind;
use crate::repository::{hostname, username, Repository};
use crate::snapshot::{Snapshot, SnapshotV3, Summary};
use crate::time::Time;
use crate::trees::write_dir;
use crate::writer::{Writer, WriterOptions};
use crossbeam_channel::bounded;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Runs a backup of `sources` and commits its one snapshot (format-spec §8.1): the file system
/// paths, and each stream as one file at its path. A stream that fails (a command's non-zero exit
/// or death, unreadable input) makes no snapshot: the error names its path.
pub fn backup(
    repo: &Repository,
    sources: Vec<BackupSource>,
    opts: &BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupResult> {
    let started = Time::now();
    let host = opts.host.clone().unwrap_or_else(hostname);
    let mut plan = resolve(sources)?;
    let path_bytes = plan.paths.clone();
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
        verify: opts.verify,
        uploaders: 2,
        dry_run: opts.dry_run,
        verify_dedup: opts.verify_dedup,
        ..WriterOptions::default()
    };
    let wopts = match opts.test_blob_limits {
        Some((blobs_per_pack, blobs_per_index)) => WriterOptions { blobs_per_pack, blobs_per_index, ..wopts },
        None => wopts,
    };
    let writer = Writer::new(repo, wopts, "backup")?;
    // This backup's session in the files cache, and the earlier sessions whose entries need no
    // blob lookups (`reuse`).
    let session = u64::from_le_bytes(crate::crypto::random_32()[..8].try_into().expect("8 bytes")) | 1;
    let trusted = if writer.trusts_blob_map() { repo.cache().indexed_sessions()? } else { Default::default() };
    let path_entries = repo.cache().has_path_entries()?;
    let threads = if opts.threads > 0 {
        opts.threads
    } else {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
    };
    // One queued batch of chunks per worker: each is resident memory (up to the chunker's
    // maximum size, or `JOB_BATCH_BYTES` of small chunks). Measured only together with the other
    // memory changes (benches/README.md, "Stream backups and memory"), not on its own.
    let (jobs_tx, jobs_rx) = bounded::<Jobs>(threads);
    let (ev_tx, ev_rx) = bounded::<Vec<Event>>(1024 / EVENT_BATCH);
    let bytes_read = AtomicU64::new(0);
    let shared = Shared::default();
    let mut queue = VecDeque::new();
    let mut outcomes = Vec::new();
    for (index, path, kind) in std::mem::take(&mut plan.streams) {
        let (tx, rx) = bounded(1);
        outcomes.push((path.clone(), rx));
        queue.push_back(Spec { index, path, kind, tx });
    }
    let runners = queue.len().min(match opts.command_concurrency {
        0 => DEFAULT_COMMAND_CONCURRENCY,
        n => n,
    });
    let queue = Mutex::new(queue);
    let trie = trie(&plan, outcomes);
    let has_fs = !plan.fs.is_empty();
    // The read-ahead helpers' queue (at most `READ_AHEAD` files asked for at a time).
    let (ahead_tx, ahead_rx) = crossbeam_channel::unbounded();
    let env =
        Env { repo, writer: &writer, opts, progress, jobs: jobs_tx.clone(), bytes_read: &bytes_read, shared: &shared };
    let ctx = Ctx {
        repo,
        writer: &writer,
        opts,
        progress,
        jobs: jobs_tx,
        job_batch: Mutex::new((Vec::new(), 0)),
        events: ev_tx,
        batch: Mutex::new(Vec::with_capacity(EVENT_BATCH)),
        errors: Mutex::new(Vec::new()),
        warnings: Mutex::new(Vec::new()),
        bytes_read: &bytes_read,
        start: started,
        names: Mutex::new(Owners::default()),
        hardlinks: Mutex::new(HashMap::new()),
        session,
        trusted,
        path_entries,
        ahead: has_fs.then(|| (ahead_tx, ahead_rx.clone())),
    };
    let inline_max = ctx.inline_max();
    let mut builder = Builder {
        writer: &writer,
        repo,
        stack: vec![Frame { node: None, children: Vec::new(), record: None }],
        summary: Summary::default(),
        groups: HashMap::new(),
        file_cache: Vec::new(),
        dir_records: (Vec::new(), 0),
        session,
        errors: Vec::new(),
        shared: &shared,
        cancel: opts.cancel.clone(),
        records: Vec::new(),
        owners: Owners::default(),
    };
    struct WalkOutcome {
        errors: Vec<PathMessage>,
        warnings: Vec<PathMessage>,
    }
    let (built, walked): (Result<()>, std::thread::Result<WalkOutcome>) = std::thread::scope(|s| {
        for _ in 0..threads {
            let rx = jobs_rx.clone();
            let w = &writer;
            s.spawn(move || {
                for job in rx.iter().flatten() {
                    let r = w.store(BlobKind::Data, &job.data).map(|(id, _)| id);
                    let _ = job.reply.send(r);
                }
            });
        }
        drop(jobs_rx);
        if has_fs {
            for _ in 0..threads {
                let rx = ahead_rx.clone();
                s.spawn(move || super::ahead::helper(rx, opts, inline_max));
            }
        }
        drop(ahead_rx);
        let queue = &queue;
        for _ in 0..runners {
            let env = env.clone();
            s.spawn(move || streams::runner(&env, queue));
        }
        // The runners hold the only other senders of chunk jobs: the workers end after them.
        drop(env);
        let trie = &trie;
        let walker = s.spawn(move || {
            walk(&ctx, trie, has_fs);
            // Dropping the senders ends the builder's loop and the workers.
            ctx.flush();
            let Ctx { jobs, events, errors, warnings, ahead, .. } = ctx;
            drop(ahead);
            drop(jobs);
            drop(events);
            WalkOutcome {
                errors: errors.into_inner().unwrap_or_else(|p| p.into_inner()),
                warnings: warnings.into_inner().unwrap_or_else(|p| p.into_inner()),
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
            // Kill the commands, and unblock the walker: drop whatever it still sends.
            shared.stop_all();
            for e in ev_rx.iter() {
                drop(e);
            }
        }
        let walked = walker.join();
        (res, walked)
    });
    // The first stream failure is the one told, whatever it made the builder stop with.
    let built = match (built, shared.take_failure()) {
        (_, Some(e)) => Err(e),
        (r, None) => r,
    };
    if let Err(e) = built {
        writer.abandon();
        return Err(e);
    }
    if cancelled(opts) {
        writer.abandon();
        return Err(Error::Interrupted);
    }
    let Ok(walked) = walked else {
        writer.abandon();
        return Err(Error::Internal("the walker thread panicked".into()));
    };
    let mut errors = walked.errors;
    errors.extend(std::mem::take(&mut builder.errors));
    let mut root_frame = builder.stack.pop().expect("root frame");
    builder.finish_record(root_frame.record.take(), opts.dry_run)?;
    builder.flush_cache(true)?;
    if !builder.stack.is_empty() {
        writer.abandon();
        return Err(Error::Interrupted);
    }
    let root = write_dir(&writer, root_frame.children)?;
    let mut summary = builder.summary;
    summary.bytes_read = bytes_read.load(Ordering::Relaxed);
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
    let mut records = std::mem::take(&mut builder.records);
    records.sort_by_key(|(i, _)| *i);
    let sources = plan.fs_records.iter().cloned().chain(records.into_iter().map(|(_, r)| r)).collect();
    let snap = Snapshot::V3(SnapshotV3 {
        time: opts.time.unwrap_or(started),
        host,
        user: username(),
        uid,
        gid,
        paths: path_bytes,
        tags: opts.tags.clone(),
        root,
        parent,
        sources,
        summary: summary.clone(),
        program: format!("cairn {}", env!("CARGO_PKG_VERSION")),
        replaces: Vec::new(),
        origin: None,
        writer: None,
    });
    let snapshot_id = if opts.dry_run {
        writer.abandon();
        None
    } else {
        let id = writer.commit(&snap)?;
        // Every blob this session stored or relied on is now indexed and in the blob map.
        if let Err(e) = repo.cache().session_indexed(session) {
            warnings.push(PathMessage { path: repo.cache().dir().display().to_string(), message: e.to_string() });
        }
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
