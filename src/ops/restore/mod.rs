//! The restore operation: plan by pack so each pack is read once, write every blob
//! to all its targets, leave holes for zero chunks, then links and metadata; verify on request.
//! Every write below the target goes through `write` (handles, never a symlink followed).
//! `dump` streams one file.

mod plan;
mod read;
pub mod safety;
mod write;

pub use plan::{plan, plan_with, PlanBlob, PlanEntry, RestorePlan};

use crate::browse;
use crate::error::{Error, Override, Result};
use crate::filter::Patterns;
use crate::id::{BlobId, BlobKind, PackId};
use crate::layout::pack_path;
use crate::ops::PathMessage;
use crate::repository::ReadRepository;
use crate::tree::NodeKind;
use crate::trees::chunk_ids_iter;
use rayon::prelude::*;
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Options of a restore.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Where to restore; the snapshot's absolute paths land below it.
    pub target: PathBuf,
    /// Restore only what matches (and what lies below a match).
    pub includes: Patterns,
    /// Skip what matches.
    pub excludes: Patterns,
    /// Replace what is in the way: files, symlinks and other non-directories (a symlink where a
    /// directory belongs is removed, never followed), and empty directories where a non-directory
    /// belongs.
    pub overwrite: bool,
    /// Re-read every restored file and compare its chunk ids.
    pub verify: bool,
    /// Parallel pack readers (default 4).
    pub threads: usize,
    /// Set from a signal handler to stop early.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Never set owners, even as root (`--no-owner`): everything belongs to the restoring user.
    pub no_owner: bool,
    /// Skip FIFOs and device nodes (`--no-special-files`); they are counted in
    /// [`RestoreResult::special_skipped`].
    pub no_special_files: bool,
    /// Skip `security.*` and `trusted.*` extended attributes (`--no-security-xattrs`).
    pub no_security_xattrs: bool,
    /// Clear the setuid and setgid bits of every mode restore applies.
    pub strip_setuid: bool,
}

/// Progress callbacks for restore.
pub trait RestoreProgress: Send + Sync {
    /// Bytes of file content written (or holes skipped).
    fn bytes(&self, _n: u64) {}
}

/// No progress reporting.
pub struct NoRestoreProgress;
impl RestoreProgress for NoRestoreProgress {}

/// What a restore did.
#[derive(Clone, Debug, Default)]
pub struct RestoreResult {
    /// Files restored.
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Other entries.
    pub other: u64,
    /// FIFOs and device nodes not created (`no_special_files`).
    pub special_skipped: u64,
    /// Bytes of content.
    pub bytes: u64,
    /// Files verified.
    pub verified: u64,
    /// What failed (the restore wrote no wrong bytes for these: the files were removed).
    pub errors: Vec<PathMessage>,
}

fn cancelled(opts: &RestoreOptions) -> bool {
    opts.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
}

/// The longest ranged read of a pack reader: with four readers this bounds the bytes in flight
/// (32 MiB reads made a full restore peak at 255 MB).
const MAX_READ_SPAN: u64 = 8 << 20;

/// Files a pack reader keeps open at once (it reopens a file whose handle it dropped).
const MAX_OPEN_FILES_PER_READER: usize = 64;

/// Carries out a plan. Every write goes through [`write::Target`]: from a handle on the target,
/// never following a symlink. Order: directories, files (sized, with holes) and special files;
/// content; hardlinks; metadata of everything but directories; symlinks (last of all entries, so
/// nothing restore does afterwards can pass through one); directory metadata, deepest first.
pub fn execute(
    repo: &ReadRepository,
    plan: &RestorePlan,
    opts: &RestoreOptions,
    progress: &dyn RestoreProgress,
) -> Result<RestoreResult> {
    let mut res = RestoreResult { errors: plan.unrestorable.clone(), ..Default::default() };
    let target = write::Target::open(&opts.target).map_err(|e| Error::io(&opts.target, e))?;
    let rels: Vec<PathBuf> = plan
        .entries
        .iter()
        .map(|e| write::relative(&e.path).map_err(|err| Error::io(&e.path, err)))
        .collect::<Result<_>>()?;
    // Refuse before writing anything.
    if !opts.overwrite {
        for (e, rel) in plan.entries.iter().zip(&rels) {
            if matches!(e.node.kind, NodeKind::Socket) || (opts.no_special_files && is_special(&e.node.kind)) {
                continue;
            }
            let is_dir = matches!(e.node.kind, NodeKind::Dir { .. });
            let why = target.in_the_way(rel, is_dir).map_err(|err| Error::io(target.display(rel), err))?;
            if let Some(why) = why {
                return Err(Error::refused_unless(why, Override::Overwrite));
            }
        }
    }
    let replace = opts.overwrite;
    let failed: Vec<AtomicBool> = plan.entries.iter().map(|_| AtomicBool::new(false)).collect();
    let mut errors: Vec<PathMessage> = Vec::new();
    let mut fail = |i: usize, rel: &Path, message: String| {
        failed[i].store(true, Ordering::Relaxed);
        errors.push(PathMessage { path: target.display(rel), message });
    };
    // 1. Create directories, files (sized, with holes; inline contents written) and special files.
    let mut inline_bytes = 0u64;
    for (i, e) in plan.entries.iter().enumerate() {
        let rel = &rels[i];
        let r = match &e.node.kind {
            NodeKind::Dir { .. } => target.make_dir(rel, replace),
            NodeKind::File { .. } if e.link_to.is_some() => Ok(()),
            NodeKind::File { content } => {
                let r = target.create_file(rel, e.node.size, content.inline(), replace);
                inline_bytes += content.inline().filter(|_| r.is_ok()).map_or(0, |b| b.len() as u64);
                r
            }
            NodeKind::Symlink { .. } | NodeKind::Socket => Ok(()),
            _ if opts.no_special_files => {
                res.special_skipped += 1;
                Ok(())
            }
            NodeKind::Fifo => target.create_special(rel, libc::S_IFIFO, e.node.mode, 0, replace),
            NodeKind::CharDevice { rdev } => target.create_special(rel, libc::S_IFCHR, e.node.mode, *rdev, replace),
            NodeKind::BlockDevice { rdev } => target.create_special(rel, libc::S_IFBLK, e.node.mode, *rdev, replace),
        };
        if let Err(err) = r {
            fail(i, rel, err.to_string());
        }
    }
    progress.bytes(inline_bytes);
    // 2. Content, pack by pack.
    let threads = if opts.threads > 0 { opts.threads } else { 4 };
    let pool =
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().map_err(|e| Error::Internal(e.to_string()))?;
    let written = AtomicU64::new(0);
    let pack_errors: Mutex<Vec<PathMessage>> = Mutex::new(Vec::new());
    let packs: Vec<(&PackId, &Vec<PlanBlob>)> = plan.packs.iter().collect();
    pool.install(|| {
        packs.par_iter().for_each(|(pack, blobs)| {
            if cancelled(opts) {
                return;
            }
            let mut blobs: Vec<&PlanBlob> = blobs.iter().collect();
            blobs.sort_by_key(|b| b.loc.offset);
            let mut files: HashMap<usize, std::fs::File> = HashMap::new();
            // Coalesce neighbouring blobs into ranged reads.
            let mut i = 0;
            while i < blobs.len() {
                let start = blobs[i].loc.offset;
                // Offsets come from authenticated index files, but saturate anyway: no overflow
                // panics on anything read from storage.
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
                let range = repo.backend().read_range(&pack_path(kind, pack), start, end - start);
                for b in &blobs[i..j] {
                    let plain = read::planned_blob(repo, kind, pack, &range, start, b);
                    match plain {
                        Ok(data) => {
                            for &(idx, off) in &b.targets {
                                if failed[idx].load(Ordering::Relaxed) {
                                    continue;
                                }
                                let w = (|| -> std::io::Result<()> {
                                    // A pack can hold thousands of small files: keep few open.
                                    if files.len() >= MAX_OPEN_FILES_PER_READER && !files.contains_key(&idx) {
                                        files.clear();
                                    }
                                    let f = match files.entry(idx) {
                                        std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                                        std::collections::hash_map::Entry::Vacant(v) => {
                                            v.insert(target.open_file(&rels[idx], true)?)
                                        }
                                    };
                                    write_skipping_zero_blocks(f, &data, off)
                                })();
                                if let Err(err) = w {
                                    failed[idx].store(true, Ordering::Relaxed);
                                    pack_errors.lock().unwrap_or_else(|p| p.into_inner()).push(PathMessage {
                                        path: target.display(&rels[idx]),
                                        message: format!("write failed: {err}"),
                                    });
                                } else {
                                    written.fetch_add(data.len() as u64, Ordering::Relaxed);
                                    progress.bytes(data.len() as u64);
                                }
                            }
                        }
                        Err(err) => {
                            for &(idx, _) in &b.targets {
                                failed[idx].store(true, Ordering::Relaxed);
                                pack_errors
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .push(PathMessage { path: target.display(&rels[idx]), message: err.to_string() });
                            }
                        }
                    }
                }
                i = j;
            }
            // Files are closed when `files` drops.
        })
    });
    if cancelled(opts) {
        return Err(Error::Interrupted);
    }
    errors.extend(pack_errors.into_inner().unwrap_or_else(|p| p.into_inner()));
    let mut fail = |i: usize, rel: &Path, message: String| {
        failed[i].store(true, Ordering::Relaxed);
        errors.push(PathMessage { path: target.display(rel), message });
    };
    progress.bytes(plan.hole_bytes);
    // 3. Hardlinks: only regular files form hardlink groups (format-spec §7.1); a link to anything
    // else is an error, never made.
    for (i, e) in plan.entries.iter().enumerate() {
        let Some(primary) = e.link_to else { continue };
        let from = &plan.entries[primary];
        if !matches!(e.node.kind, NodeKind::File { .. }) || !matches!(from.node.kind, NodeKind::File { .. }) {
            fail(
                i,
                &rels[i],
                format!(
                    "hardlink group of a {} and a {}: only files are linked",
                    from.node.type_name(),
                    e.node.type_name()
                ),
            );
            continue;
        }
        if failed[primary].load(Ordering::Relaxed) {
            failed[i].store(true, Ordering::Relaxed);
            continue;
        }
        if let Err(err) = target.hardlink(&rels[i], &rels[primary], replace) {
            fail(i, &rels[i], format!("cannot link to {}: {err}", target.display(&rels[primary])));
        }
    }
    // 4. Remove files that failed, so no wrong or partial content is left behind.
    for (i, e) in plan.entries.iter().enumerate() {
        if failed[i].load(Ordering::Relaxed) && matches!(e.node.kind, NodeKind::File { .. }) {
            let _ = target.remove_file(&rels[i]);
        }
    }
    // 5. Verify before metadata (a file may lose read permission).
    if opts.verify {
        let verify_errors: Mutex<Vec<PathMessage>> = Mutex::new(Vec::new());
        let count = AtomicU64::new(0);
        pool.install(|| {
            plan.entries.par_iter().enumerate().for_each(|(i, e)| {
                let NodeKind::File { content } = &e.node.kind else { return };
                if failed[i].load(Ordering::Relaxed) {
                    return;
                }
                let r = target.open_file(&rels[i], false).map_err(|e| e.to_string());
                match r.and_then(|f| verify_file(repo, &f, content, e.node.size)) {
                    Ok(()) => {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(msg) => {
                        failed[i].store(true, Ordering::Relaxed);
                        verify_errors.lock().unwrap_or_else(|p| p.into_inner()).push(PathMessage {
                            path: target.display(&rels[i]),
                            message: format!("verify failed: {msg}"),
                        });
                    }
                }
            })
        });
        res.verified = count.into_inner();
        errors.extend(verify_errors.into_inner().unwrap_or_else(|p| p.into_inner()));
    }
    // 6. Metadata of files and special files, then symlinks (created and given their metadata
    // here, after everything that could otherwise pass through one), then directories deepest
    // first, through handles.
    let policy = write::MetaPolicy {
        // SAFETY: plain getter.
        chown: !opts.no_owner && unsafe { libc::geteuid() } == 0,
        strip_setuid: opts.strip_setuid,
        no_security_xattrs: opts.no_security_xattrs,
    };
    let meta = |i: usize, e: &PlanEntry, errors: &mut Vec<PathMessage>| {
        if let Err(err) = target.apply(&rels[i], &e.node, policy) {
            errors.push(PathMessage { path: target.display(&rels[i]), message: format!("metadata: {err}") });
        }
    };
    for (i, e) in plan.entries.iter().enumerate() {
        let skipped = opts.no_special_files && is_special(&e.node.kind);
        if matches!(e.node.kind, NodeKind::Dir { .. } | NodeKind::Socket | NodeKind::Symlink { .. })
            || skipped
            || failed[i].load(Ordering::Relaxed)
        {
            continue;
        }
        meta(i, e, &mut errors);
        match e.node.kind {
            NodeKind::File { .. } => res.files += 1,
            _ => res.other += 1,
        }
    }
    for (i, e) in plan.entries.iter().enumerate() {
        let NodeKind::Symlink { target: to } = &e.node.kind else { continue };
        if failed[i].load(Ordering::Relaxed) {
            continue;
        }
        if let Err(err) = target.symlink(&rels[i], to, replace) {
            errors.push(PathMessage { path: target.display(&rels[i]), message: err.to_string() });
            continue;
        }
        meta(i, e, &mut errors);
        res.other += 1;
    }
    for (i, e) in plan.entries.iter().enumerate().rev() {
        if !matches!(e.node.kind, NodeKind::Dir { .. }) || failed[i].load(Ordering::Relaxed) {
            continue;
        }
        meta(i, e, &mut errors);
        res.dirs += 1;
    }
    res.bytes = written.into_inner() + plan.hole_bytes + inline_bytes;
    res.errors.extend(errors);
    Ok(res)
}

/// A FIFO or device node (what `no_special_files` skips).
fn is_special(k: &NodeKind) -> bool {
    matches!(k, NodeKind::Fifo | NodeKind::CharDevice { .. } | NodeKind::BlockDevice { .. })
}

/// The unit of holes restore leaves: an all-zero range of the file aligned to it is not written.
/// 4 KiB is the block size of the common Linux file systems; on a larger block only whole blocks
/// of zeros stay holes.
const HOLE_BLOCK: u64 = 4096;

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

/// Plans and executes a restore of `root` (or `sub` within it).
pub fn restore(
    repo: &ReadRepository,
    root: &BlobId,
    sub: Option<&Path>,
    opts: &RestoreOptions,
    progress: &dyn RestoreProgress,
) -> Result<RestoreResult> {
    let p = plan(repo, root, sub, opts)?;
    execute(repo, &p, opts, progress)
}

/// Writes the content of the file at `path` to `out`, reading ahead in parallel.
pub fn dump(repo: &ReadRepository, root: &BlobId, path: &Path, out: &mut dyn Write) -> Result<u64> {
    let node = browse::find(repo, root, path)?.ok_or_else(|| Error::Usage("dump needs a file path, not /".into()))?;
    let NodeKind::File { content } = &node.kind else {
        return Err(Error::Usage(format!("{} is a {}, not a file", path.display(), node.type_name())));
    };
    if let Some(bytes) = content.inline() {
        out.write_all(bytes).and_then(|()| out.flush()).map_err(|e| Error::io("<stdout>", e))?;
        return Ok(bytes.len() as u64);
    }
    // The ids one chunk list at a time, eight blobs read in parallel.
    let mut ids = chunk_ids_iter(repo, content);
    let mut n = 0u64;
    loop {
        let window = ids.by_ref().take(8).collect::<Result<Vec<BlobId>>>()?;
        if window.is_empty() {
            break;
        }
        let blobs: Vec<Result<Vec<u8>>> = window.par_iter().map(|id| repo.read_blob(BlobKind::Data, id)).collect();
        for b in blobs {
            let b = b?;
            out.write_all(&b).map_err(|e| Error::io("<stdout>", e))?;
            n += b.len() as u64;
        }
    }
    out.flush().map_err(|e| Error::io("<stdout>", e))?;
    Ok(n)
}
