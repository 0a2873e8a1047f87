//! Carrying out a restore plan, one batch at a time. Every write goes through [`write::Target`]:
//! from a handle on the target, never following a symlink. Per batch: directories, special files
//! and files without content to write; content, pack by pack, each file created at its first write
//! and finished (verified on request, given its metadata, closed) at its last; hardlinks; removal of
//! files that failed; metadata of everything else; symlinks (last of the batch's entries, so
//! nothing restore does afterwards in the batch can pass through one); then the metadata of the
//! directories the batch completed, deepest first, so a directory's mode and times are applied
//! after everything in it was restored.

use super::batch::{PlanBlob, PlanEntry, RestorePlan};
use super::{read, write, RestoreOptions, RestoreProgress, RestoreResult};
use crate::error::{Error, Override, Result};
use crate::id::PackId;
use crate::layout::pack_path;
use crate::ops::PathMessage;
use crate::repository::ReadRepository;
use crate::tree::NodeKind;
use crate::trees::chunk_ids_iter;
use rayon::prelude::*;
use std::collections::HashSet;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// The longest ranged read of a pack reader: with four readers this bounds the bytes in flight
/// (32 MiB reads made a full restore peak at 255 MB; 8 MiB at 147 MiB, 4 MiB at 131 MiB with
/// the same wall time: benches/README.md, session 11).
const MAX_READ_SPAN: u64 = 4 << 20;

/// Files kept open at once between writes of their content (a file is reopened when its handle
/// was closed); a small file is written and closed at once.
const MAX_OPEN_FILES: usize = 256;

/// The unit of holes restore leaves: an all-zero range of the file aligned to it is not written.
/// 4 KiB is the block size of the common Linux file systems; on a larger block only whole blocks
/// of zeros stay holes.
const HOLE_BLOCK: u64 = 4096;

/// A restore in progress: the target, the readers, what failed so far and the result.
pub(super) struct Exec<'a> {
    repo: &'a ReadRepository,
    opts: &'a RestoreOptions,
    progress: &'a dyn RestoreProgress,
    target: write::Target,
    pool: rayon::ThreadPool,
    policy: write::MetaPolicy,
    /// Directories whose creation failed: their metadata is never applied.
    failed_dirs: HashSet<PathBuf>,
    /// Hardlinked files (snapshot paths) whose restore failed: later members are not linked.
    failed_links: HashSet<PathBuf>,
    /// Pack reads and their bytes.
    reads: AtomicU64,
    read_bytes: AtomicU64,
    /// Batches carried out.
    batches: u64,
    /// The result so far.
    pub res: RestoreResult,
}

/// A file of the batch being written: its handle while open, and whether it was created.
#[derive(Default)]
struct Slot {
    file: Option<std::fs::File>,
    created: bool,
}

/// The per-entry state of one batch.
struct Batch<'p> {
    plan: &'p RestorePlan,
    rels: Vec<PathBuf>,
    failed: Vec<AtomicBool>,
    /// Placements not yet written, per entry.
    left: Vec<AtomicU64>,
    /// Whether a file's placements cover all its bytes (it needs no sizing then, if small).
    covered: Vec<bool>,
    slots: Vec<Mutex<Slot>>,
    /// Files finished by their last write (verified, metadata applied).
    done: Vec<AtomicBool>,
    open: AtomicUsize,
    files: AtomicU64,
    verified: AtomicU64,
    written: AtomicU64,
    errors: Mutex<Vec<PathMessage>>,
}

impl Batch<'_> {
    fn error(&self, exec: &Exec<'_>, i: usize, message: String) {
        self.failed[i].store(true, Ordering::Release);
        let e = PathMessage { path: exec.target.display(&self.rels[i]), message };
        self.errors.lock().unwrap_or_else(|p| p.into_inner()).push(e);
    }
}

impl<'a> Exec<'a> {
    /// Opens the target (creating it) and the readers.
    pub fn new(repo: &'a ReadRepository, opts: &'a RestoreOptions, progress: &'a dyn RestoreProgress) -> Result<Self> {
        let target = write::Target::open(&opts.target).map_err(|e| Error::io(&opts.target, e))?;
        let threads = if opts.threads > 0 { opts.threads } else { 4 };
        let pool =
            rayon::ThreadPoolBuilder::new().num_threads(threads).build().map_err(|e| Error::Internal(e.to_string()))?;
        let policy = write::MetaPolicy {
            // SAFETY: plain getter.
            chown: !opts.no_owner && unsafe { libc::geteuid() } == 0,
            strip_setuid: opts.strip_setuid,
            no_security_xattrs: opts.no_security_xattrs,
        };
        Ok(Exec {
            repo,
            opts,
            progress,
            target,
            pool,
            policy,
            failed_dirs: HashSet::new(),
            failed_links: HashSet::new(),
            reads: AtomicU64::new(0),
            read_bytes: AtomicU64::new(0),
            batches: 0,
            res: RestoreResult::default(),
        })
    }

    /// Without `--overwrite`: refuses (before anything is written) when something is in the way
    /// of `e`.
    pub fn refuse_in_the_way(&self, e: &PlanEntry) -> Result<()> {
        refuse_in_the_way(&self.target, self.opts, &e.path, &e.node.kind)
    }

    /// The result, with the pack reads counted.
    pub fn finish(mut self) -> RestoreResult {
        self.res.reads = self.reads.into_inner();
        self.res.read_bytes = self.read_bytes.into_inner();
        tracing::debug!(
            batches = self.batches,
            reads = self.res.reads,
            read_bytes = self.res.read_bytes,
            "restore: pack reads"
        );
        self.res
    }

    /// Carries out one batch; returns per entry whether it failed.
    pub fn batch(&mut self, plan: &RestorePlan) -> Result<Vec<bool>> {
        if super::cancelled(self.opts) {
            return Err(Error::Interrupted);
        }
        self.batches += 1;
        let n = plan.entries.len();
        let rels: Vec<PathBuf> = plan
            .entries
            .iter()
            .map(|e| write::relative(&e.path).map_err(|err| Error::io(&e.path, err)))
            .collect::<Result<_>>()?;
        let mut left: Vec<u64> = vec![0; n];
        let mut bytes: Vec<u64> = vec![0; n];
        for b in plan.packs.values().flatten() {
            for &(i, _) in &b.targets {
                left[i] += 1;
                bytes[i] += b.loc.plain_length as u64;
            }
        }
        let covered = plan.entries.iter().zip(&bytes).map(|(e, b)| *b == e.node.size).collect();
        let b = Batch {
            plan,
            rels,
            failed: (0..n).map(|_| AtomicBool::new(false)).collect(),
            left: left.into_iter().map(AtomicU64::new).collect(),
            covered,
            slots: (0..n).map(|_| Mutex::new(Slot::default())).collect(),
            done: (0..n).map(|_| AtomicBool::new(false)).collect(),
            open: AtomicUsize::new(0),
            files: AtomicU64::new(0),
            verified: AtomicU64::new(0),
            written: AtomicU64::new(0),
            errors: Mutex::new(std::mem::take(&mut plan.unrestorable.clone())),
        };
        self.create(&b);
        self.content(&b);
        if super::cancelled(self.opts) {
            return Err(Error::Interrupted);
        }
        self.progress.bytes(plan.hole_bytes);
        self.links(&b);
        // Remove files that failed, so no wrong or partial content is left behind.
        for (i, e) in plan.entries.iter().enumerate() {
            if b.failed[i].load(Ordering::Acquire) && matches!(e.node.kind, NodeKind::File { .. }) {
                let _ = self.target.remove_file(&b.rels[i]);
            }
        }
        if self.opts.verify {
            self.verify_rest(&b);
        }
        self.metadata(&b);
        let Batch { failed, files, verified, written, errors, .. } = b;
        let failed: Vec<bool> = failed.into_iter().map(AtomicBool::into_inner).collect();
        for (i, e) in plan.entries.iter().enumerate() {
            if failed[i] && matches!(e.node.kind, NodeKind::Dir { .. }) {
                self.failed_dirs.insert(e.path.clone());
            }
            if failed[i] && e.node.hardlink != 0 && e.link_to.is_none() && e.earlier.is_none() {
                self.failed_links.insert(e.path.clone());
            }
        }
        self.res.files += files.into_inner();
        self.res.verified += verified.into_inner();
        self.res.bytes += written.into_inner() + plan.hole_bytes;
        self.res.errors.extend(errors.into_inner().unwrap_or_else(|p| p.into_inner()));
        Ok(failed)
    }

    /// Directories, special files and the files no pack read writes to (empty, all holes, or
    /// inline). Directories first, in pre-order on this thread (a parent before what is in it);
    /// then the rest in parallel: a million small files are a million creations.
    fn create(&mut self, b: &Batch<'_>) {
        let (target, replace) = (&self.target, self.opts.overwrite);
        for (i, e) in b.plan.entries.iter().enumerate() {
            if matches!(e.node.kind, NodeKind::Dir { .. }) {
                if let Err(err) = target.make_dir(&b.rels[i], replace) {
                    b.error(self, i, err.to_string());
                }
            }
        }
        let inline_bytes = AtomicU64::new(0);
        let special_skipped = AtomicU64::new(0);
        let this = &*self;
        this.pool.install(|| {
            b.plan.entries.par_iter().enumerate().with_min_len(64).for_each(|(i, e)| {
                let rel = &b.rels[i];
                let r = match &e.node.kind {
                    NodeKind::Dir { .. } => Ok(()),
                    NodeKind::File { .. } if e.link_to.is_some() || e.earlier.is_some() => Ok(()),
                    NodeKind::File { .. } if b.left[i].load(Ordering::Relaxed) > 0 => Ok(()),
                    NodeKind::File { content } => {
                        let inline = content.inline();
                        let r = this.whole_file(b, i, inline);
                        if r.is_ok() {
                            inline_bytes.fetch_add(inline.map_or(0, |b| b.len() as u64), Ordering::Relaxed);
                        }
                        r
                    }
                    NodeKind::Symlink { .. } | NodeKind::Socket => Ok(()),
                    _ if this.opts.no_special_files => {
                        special_skipped.fetch_add(1, Ordering::Relaxed);
                        Ok(())
                    }
                    NodeKind::Fifo => target.create_special(rel, libc::S_IFIFO, e.node.mode, 0, replace),
                    NodeKind::CharDevice { rdev } => {
                        target.create_special(rel, libc::S_IFCHR, e.node.mode, *rdev, replace)
                    }
                    NodeKind::BlockDevice { rdev } => {
                        target.create_special(rel, libc::S_IFBLK, e.node.mode, *rdev, replace)
                    }
                };
                if let Err(err) = r {
                    b.error(this, i, err.to_string());
                }
            })
        });
        let inline_bytes = inline_bytes.into_inner();
        self.res.special_skipped += special_skipped.into_inner();
        self.progress.bytes(inline_bytes);
        self.res.bytes += inline_bytes;
    }

    /// Creates file `i`, whose whole content is at hand (`inline`, format-spec §7.3, or none: empty
    /// or all holes), and finishes it through the same handle: verified (`--verify`), then given
    /// its metadata, as [`Self::placed`] finishes a file a pack read completed.
    fn whole_file(&self, b: &Batch<'_>, i: usize, inline: Option<&[u8]>) -> std::io::Result<()> {
        let (e, rel) = (&b.plan.entries[i], &b.rels[i]);
        let f = self.target.create_file_handle(rel, inline.is_none().then_some(e.node.size), self.opts.overwrite)?;
        if let Some(bytes) = inline {
            write::write_inline(&f, bytes)?;
        }
        self.finish_file(b, i, &f).map_err(std::io::Error::other)
    }

    /// Finishes file `idx`, whose content is all written through `file`: verified (`--verify`),
    /// then given its metadata through that handle, counted and marked done.
    fn finish_file(&self, b: &Batch<'_>, idx: usize, file: &std::fs::File) -> std::result::Result<(), String> {
        let (e, rel) = (&b.plan.entries[idx], &b.rels[idx]);
        if self.opts.verify {
            // Before the metadata: a file may lose its read permission.
            let NodeKind::File { content } = &e.node.kind else { return Ok(()) };
            let r = self.target.open_file(rel, false).map_err(|e| e.to_string());
            r.and_then(|f| verify_file(self.repo, &f, content, e.node.size))
                .map_err(|m| format!("verify failed: {m}"))?;
            b.verified.fetch_add(1, Ordering::Relaxed);
        }
        if let Err(err) = self.target.apply_file(rel, &e.node, self.policy, file) {
            let m = PathMessage { path: self.target.display(rel), message: format!("metadata: {err}") };
            b.errors.lock().unwrap_or_else(|p| p.into_inner()).push(m);
        }
        b.files.fetch_add(1, Ordering::Relaxed);
        b.done[idx].store(true, Ordering::Release);
        Ok(())
    }

    /// Content, pack by pack, in parallel: neighbouring blobs of a pack in one ranged read.
    fn content(&self, b: &Batch<'_>) {
        let packs: Vec<(&PackId, &Vec<PlanBlob>)> = b.plan.packs.iter().collect();
        self.pool.install(|| {
            packs.par_iter().for_each(|(pack, blobs)| {
                if super::cancelled(self.opts) {
                    return;
                }
                let mut blobs: Vec<&PlanBlob> = blobs.iter().collect();
                blobs.sort_by_key(|b| b.loc.offset);
                let mut i = 0;
                while i < blobs.len() {
                    let start = blobs[i].loc.offset;
                    // Offsets come from authenticated index files, but saturate anyway: no
                    // overflow panics on anything read from storage.
                    let mut end = start.saturating_add(blobs[i].loc.length as u64);
                    let mut j = i + 1;
                    while j < blobs.len()
                        && blobs[j].loc.offset <= end.saturating_add(1 << 20)
                        && blobs[j].loc.offset.saturating_add(blobs[j].loc.length as u64) - start <= MAX_READ_SPAN
                    {
                        end = end.max(blobs[j].loc.offset.saturating_add(blobs[j].loc.length as u64));
                        j += 1;
                    }
                    let kind = blobs[i].loc.kind;
                    let range = self.repo.backend().read_range(&pack_path(kind, pack), start, end - start);
                    self.reads.fetch_add(1, Ordering::Relaxed);
                    self.read_bytes.fetch_add(end - start, Ordering::Relaxed);
                    // The blobs of one read are opened and written in parallel too: a batch of
                    // small files may lie in a single pack.
                    blobs[i..j].par_iter().with_min_len(64).for_each(|blob| {
                        match read::planned_blob(self.repo, kind, pack, &range, start, blob) {
                            Ok(data) => {
                                for &(idx, off) in &blob.targets {
                                    self.place(b, idx, off, &data);
                                }
                            }
                            Err(err) => {
                                for &(idx, _) in &blob.targets {
                                    if !b.failed[idx].load(Ordering::Acquire) {
                                        b.error(self, idx, err.to_string());
                                    }
                                    self.placed(b, idx);
                                }
                            }
                        }
                    });
                    i = j;
                }
            })
        });
        // Files whose last write never came (an interrupted restore) are closed here.
    }

    /// Writes `data` at `off` of entry `idx` (creating the file at its first write).
    fn place(&self, b: &Batch<'_>, idx: usize, off: u64, data: &[u8]) {
        if !b.failed[idx].load(Ordering::Acquire) {
            let mut slot = b.slots[idx].lock().unwrap_or_else(|p| p.into_inner());
            let rel = &b.rels[idx];
            if slot.file.is_none() {
                let opened = if slot.created {
                    self.target.open_file(rel, true).map_err(|e| format!("write failed: {e}"))
                } else {
                    slot.created = true;
                    let e = &b.plan.entries[idx];
                    let size = (!b.covered[idx] || e.node.size > HOLE_BLOCK).then_some(e.node.size);
                    self.target.create_file_handle(rel, size, self.opts.overwrite).map_err(|e| e.to_string())
                };
                match opened {
                    Ok(f) => {
                        slot.file = Some(f);
                        b.open.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(m) => b.error(self, idx, m),
                }
            }
            if let Some(f) = &slot.file {
                match write_skipping_zero_blocks(f, data, off) {
                    Ok(()) => {
                        b.written.fetch_add(data.len() as u64, Ordering::Relaxed);
                        self.progress.bytes(data.len() as u64);
                    }
                    Err(err) => b.error(self, idx, format!("write failed: {err}")),
                }
                if b.open.load(Ordering::Relaxed) > MAX_OPEN_FILES && b.left[idx].load(Ordering::Acquire) > 1 {
                    slot.file = None;
                    b.open.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        self.placed(b, idx);
    }

    /// One placement of entry `idx` is written (or failed); after its last the file is finished.
    fn placed(&self, b: &Batch<'_>, idx: usize) {
        if b.left[idx].fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let file = b.slots[idx].lock().unwrap_or_else(|p| p.into_inner()).file.take();
        if file.is_some() {
            b.open.fetch_sub(1, Ordering::Relaxed);
        }
        let (Some(file), false) = (file, b.failed[idx].load(Ordering::Acquire)) else { return };
        if let Err(m) = self.finish_file(b, idx, &file) {
            b.error(self, idx, m);
        }
    }

    /// Hardlinks: only regular files form hardlink groups (format-spec §7.1); a link to anything
    /// else is an error, never made.
    fn links(&self, b: &Batch<'_>) {
        let entries = &b.plan.entries;
        for (i, e) in entries.iter().enumerate() {
            let (from, from_kind) = match (e.link_to, &e.earlier) {
                (Some(p), _) => {
                    if b.failed[p].load(Ordering::Acquire) {
                        b.failed[i].store(true, Ordering::Release);
                        continue;
                    }
                    (b.rels[p].clone(), &entries[p].node)
                }
                (None, Some(p)) => {
                    if self.failed_links.contains(&p.path) {
                        b.failed[i].store(true, Ordering::Release);
                        continue;
                    }
                    match write::relative(&p.path) {
                        Ok(rel) => (rel, &e.node),
                        Err(err) => {
                            b.error(self, i, err.to_string());
                            continue;
                        }
                    }
                }
                (None, None) => continue,
            };
            if !matches!(e.node.kind, NodeKind::File { .. }) || !matches!(from_kind.kind, NodeKind::File { .. }) {
                let m = format!(
                    "hardlink group of a {} and a {}: only files are linked",
                    from_kind.type_name(),
                    e.node.type_name()
                );
                b.error(self, i, m);
                continue;
            }
            if let Err(err) = self.target.hardlink(&b.rels[i], &from, self.opts.overwrite) {
                b.error(self, i, format!("cannot link to {}: {err}", self.target.display(&from)));
            }
        }
    }

    /// `--verify` of the files no pack read finished (empty, all holes, hardlinks).
    fn verify_rest(&self, b: &Batch<'_>) {
        self.pool.install(|| {
            b.plan.entries.par_iter().enumerate().for_each(|(i, e)| {
                let NodeKind::File { content } = &e.node.kind else { return };
                if b.failed[i].load(Ordering::Acquire) || b.done[i].load(Ordering::Acquire) {
                    return;
                }
                let r = self.target.open_file(&b.rels[i], false).map_err(|e| e.to_string());
                match r.and_then(|f| verify_file(self.repo, &f, content, e.node.size)) {
                    Ok(()) => {
                        b.verified.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(msg) => b.error(self, i, format!("verify failed: {msg}")),
                }
            })
        });
    }

    /// Metadata of files not yet finished and of special files; then symlinks (created and given
    /// their metadata here, after everything that could otherwise pass through one); then the
    /// directories the batch completed, deepest first, through handles.
    fn metadata(&mut self, b: &Batch<'_>) {
        let mut errors = b.errors.lock().unwrap_or_else(|p| p.into_inner());
        let (target, policy) = (&self.target, self.policy);
        let meta = |rel: &Path, n: &crate::tree::Node, errors: &mut Vec<PathMessage>| {
            if let Err(err) = target.apply(rel, n, policy) {
                errors.push(PathMessage { path: target.display(rel), message: format!("metadata: {err}") });
            }
        };
        for (i, e) in b.plan.entries.iter().enumerate() {
            let skipped = self.opts.no_special_files && is_special(&e.node.kind);
            if matches!(e.node.kind, NodeKind::Dir { .. } | NodeKind::Socket | NodeKind::Symlink { .. })
                || skipped
                || b.failed[i].load(Ordering::Acquire)
                || b.done[i].load(Ordering::Acquire)
            {
                continue;
            }
            meta(&b.rels[i], &e.node, &mut errors);
            match e.node.kind {
                NodeKind::File { .. } => self.res.files += 1,
                _ => self.res.other += 1,
            }
        }
        for (i, e) in b.plan.entries.iter().enumerate() {
            let NodeKind::Symlink { target: to } = &e.node.kind else { continue };
            if b.failed[i].load(Ordering::Acquire) {
                continue;
            }
            if let Err(err) = target.symlink(&b.rels[i], to, self.opts.overwrite) {
                errors.push(PathMessage { path: target.display(&b.rels[i]), message: err.to_string() });
                continue;
            }
            meta(&b.rels[i], &e.node, &mut errors);
            self.res.other += 1;
        }
        for d in &b.plan.dirs_done {
            let failed = match d.entry {
                Some(i) => b.failed[i].load(Ordering::Acquire),
                None => self.failed_dirs.remove(&d.path),
            };
            if failed {
                continue;
            }
            match write::relative(&d.path) {
                Ok(rel) => meta(&rel, &d.node, &mut errors),
                Err(err) => errors.push(PathMessage { path: d.path.display().to_string(), message: err.to_string() }),
            }
            self.res.dirs += 1;
        }
    }
}

/// Without `--overwrite`: refuses when something is in the way of the entry at `path` (a FIFO or
/// device node only when it is restored; a socket never is).
pub(super) fn refuse_in_the_way(
    target: &write::Target,
    opts: &RestoreOptions,
    path: &Path,
    kind: &NodeKind,
) -> Result<()> {
    if opts.overwrite || matches!(kind, NodeKind::Socket) || (opts.no_special_files && is_special(kind)) {
        return Ok(());
    }
    let rel = write::relative(path).map_err(|err| Error::io(path, err))?;
    let is_dir = matches!(kind, NodeKind::Dir { .. });
    let why = target.in_the_way(&rel, is_dir).map_err(|err| Error::io(target.display(&rel), err))?;
    match why {
        Some(why) => Err(Error::refused_unless(why, Override::Overwrite)),
        None => Ok(()),
    }
}

/// A FIFO or device node (what `no_special_files` skips).
pub(super) fn is_special(k: &NodeKind) -> bool {
    matches!(k, NodeKind::Fifo | NodeKind::CharDevice { .. } | NodeKind::BlockDevice { .. })
}

/// Writes `data` at `off` of a file that was created empty and sized (so unwritten ranges read as
/// zeros), leaving out every `HOLE_BLOCK`-aligned piece that is all zeros: those stay holes, so a
/// sparse file comes back sparse even where its holes are shorter than a chunk.
fn write_skipping_zero_blocks(f: &std::fs::File, data: &[u8], off: u64) -> std::io::Result<()> {
    let mut pos = 0usize;
    // The start of the run of non-zero pieces being collected, if any.
    let mut run: Option<usize> = None;
    while pos < data.len() {
        let file_pos = off + pos as u64;
        let piece = ((HOLE_BLOCK - file_pos % HOLE_BLOCK) as usize).min(data.len() - pos);
        let zero = data[pos..pos + piece].iter().all(|b| *b == 0);
        match (zero, run) {
            (true, Some(start)) => {
                f.write_all_at(&data[start..pos], off + start as u64)?;
                run = None;
            }
            (false, None) => run = Some(pos),
            _ => {}
        }
        pos += piece;
    }
    if let Some(start) = run {
        f.write_all_at(&data[start..], off + start as u64)?;
    }
    Ok(())
}

/// Re-reads a restored file and compares its chunk ids.
fn verify_file(
    repo: &ReadRepository,
    f: &std::fs::File,
    content: &crate::tree::Content,
    size: u64,
) -> std::result::Result<(), String> {
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    if len != size {
        return Err(format!("size {len}, expected {size}"));
    }
    if let Some(bytes) = content.inline() {
        let mut buf = vec![0; bytes.len()];
        f.read_exact_at(&mut buf, 0).map_err(|e| e.to_string())?;
        return if buf == bytes { Ok(()) } else { Err("content differs from the inline content".into()) };
    }
    let mut off = 0u64;
    let mut buf = Vec::new();
    for id in chunk_ids_iter(repo, content) {
        let id = id.map_err(|e| e.to_string())?;
        let n = read::verify_chunk(repo, f, &id, off, &mut buf)?;
        off += n;
    }
    Ok(())
}
