//! The restore operation: plan by pack so each pack is read once, write every blob
//! to all its targets, leave holes for zero chunks, then links and metadata; verify on request.
//! `dump` streams one file.

mod plan;

use plan::target_of;
pub use plan::{plan, plan_with, PlanBlob, PlanEntry, RestorePlan};

use crate::browse;
use crate::error::{Error, Override, Result};
use crate::filter::Patterns;
use crate::fsmeta;
use crate::id::{BlobId, BlobKind, PackId};
use crate::layout::{pack_path, Object};
use crate::ops::PathMessage;
use crate::repository::ReadRepository;
use crate::tree::NodeKind;
use crate::trees::chunk_ids_iter;
use rayon::prelude::*;
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
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
    /// Replace existing files.
    pub overwrite: bool,
    /// Re-read every restored file and compare its chunk ids.
    pub verify: bool,
    /// Parallel pack readers (default 4).
    pub threads: usize,
    /// Set from a signal handler to stop early.
    pub cancel: Option<Arc<AtomicBool>>,
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
    /// Bytes of content.
    pub bytes: u64,
    /// Files verified.
    pub verified: u64,
    /// What failed (the restore wrote no wrong bytes for these: the files were removed).
    pub errors: Vec<PathMessage>,
}

trait FromBytesCompat {
    fn from_bytes_compat(b: &[u8]) -> &std::ffi::OsStr;
}
impl FromBytesCompat for std::ffi::OsStr {
    fn from_bytes_compat(b: &[u8]) -> &std::ffi::OsStr {
        use std::os::unix::ffi::OsStrExt;
        std::ffi::OsStr::from_bytes(b)
    }
}

fn cancelled(opts: &RestoreOptions) -> bool {
    opts.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
}

fn remove_existing(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => Ok(()),
    }
}

/// The longest ranged read of a pack reader: with four readers this bounds the bytes in flight
/// (32 MiB reads made a full restore peak at 255 MB).
const MAX_READ_SPAN: u64 = 8 << 20;

/// Files a pack reader keeps open at once (it reopens a file whose handle it dropped).
const MAX_OPEN_FILES_PER_READER: usize = 64;

/// Carries out a plan.
pub fn execute(
    repo: &ReadRepository,
    plan: &RestorePlan,
    opts: &RestoreOptions,
    progress: &dyn RestoreProgress,
) -> Result<RestoreResult> {
    let mut res = RestoreResult { errors: plan.unrestorable.clone(), ..Default::default() };
    let target = &opts.target;
    std::fs::create_dir_all(target).map_err(|e| Error::io(target, e))?;
    // Refuse before writing anything.
    if !opts.overwrite {
        for e in &plan.entries {
            if matches!(e.node.kind, NodeKind::Dir { .. }) {
                continue;
            }
            let t = target_of(target, &e.path);
            if t.symlink_metadata().is_ok() {
                return Err(Error::refused_unless(format!("{} exists", t.display()), Override::Overwrite));
            }
        }
    }
    let failed: Vec<AtomicBool> = plan.entries.iter().map(|_| AtomicBool::new(false)).collect();
    let mut errors: Vec<PathMessage> = Vec::new();
    // 1. Create directories, files (sized, with holes), links and special files.
    for (i, e) in plan.entries.iter().enumerate() {
        let t = target_of(target, &e.path);
        let r: std::io::Result<()> = (|| {
            if let Some(parent) = t.parent() {
                std::fs::create_dir_all(parent)?;
            }
            match &e.node.kind {
                NodeKind::Dir { .. } => {
                    if !t.is_dir() {
                        remove_existing(&t)?;
                        std::fs::create_dir(&t)?;
                    }
                    // Owner-writable until metadata is applied at the end.
                    fsmeta::chmod(&t, 0o700)?;
                }
                NodeKind::File { .. } => {
                    if e.link_to.is_some() {
                        return Ok(());
                    }
                    remove_existing(&t)?;
                    let f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&t)?;
                    f.set_len(e.node.size)?;
                }
                NodeKind::Symlink { target: to } => {
                    remove_existing(&t)?;
                    std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes_compat(to), &t)?;
                }
                NodeKind::Fifo => {
                    remove_existing(&t)?;
                    fsmeta::mkfifo(&t, e.node.mode)?;
                }
                NodeKind::CharDevice { rdev } => {
                    remove_existing(&t)?;
                    fsmeta::mknod(&t, libc::S_IFCHR, e.node.mode, *rdev)?;
                }
                NodeKind::BlockDevice { rdev } => {
                    remove_existing(&t)?;
                    fsmeta::mknod(&t, libc::S_IFBLK, e.node.mode, *rdev)?;
                }
                NodeKind::Socket => {}
            }
            Ok(())
        })();
        if let Err(err) = r {
            failed[i].store(true, Ordering::Relaxed);
            errors.push(PathMessage { path: t.display().to_string(), message: err.to_string() });
        }
    }
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
                    let plain = range
                        .as_ref()
                        .map_err(|e| Error::corrupt(Object::Pack(kind, **pack), e.to_string()))
                        .and_then(|r| {
                            let from = (b.loc.offset - start) as usize;
                            let sealed = r.get(from..from.saturating_add(b.loc.length as usize)).ok_or_else(|| {
                                Error::corrupt(
                                    Object::Pack(kind, **pack),
                                    format!("blob {} lies beyond the end of the pack", b.id),
                                )
                            })?;
                            repo.open_blob_at(&b.loc, &b.id, sealed)
                        });
                    match plain {
                        Ok(data) => {
                            for &(idx, off) in &b.targets {
                                if failed[idx].load(Ordering::Relaxed) {
                                    continue;
                                }
                                let t = target_of(target, &plan.entries[idx].path);
                                let w = (|| -> std::io::Result<()> {
                                    // A pack can hold thousands of small files: keep few open.
                                    if files.len() >= MAX_OPEN_FILES_PER_READER && !files.contains_key(&idx) {
                                        files.clear();
                                    }
                                    let f = match files.entry(idx) {
                                        std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                                        std::collections::hash_map::Entry::Vacant(v) => {
                                            v.insert(std::fs::OpenOptions::new().write(true).open(&t)?)
                                        }
                                    };
                                    write_skipping_zero_blocks(f, &data, off)
                                })();
                                if let Err(err) = w {
                                    failed[idx].store(true, Ordering::Relaxed);
                                    pack_errors.lock().unwrap_or_else(|p| p.into_inner()).push(PathMessage {
                                        path: t.display().to_string(),
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
                                let t = target_of(target, &plan.entries[idx].path);
                                pack_errors
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .push(PathMessage { path: t.display().to_string(), message: err.to_string() });
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
    progress.bytes(plan.hole_bytes);
    // 3. Hardlinks.
    for (i, e) in plan.entries.iter().enumerate() {
        if let Some(primary) = e.link_to {
            let t = target_of(target, &e.path);
            if failed[primary].load(Ordering::Relaxed) {
                failed[i].store(true, Ordering::Relaxed);
                continue;
            }
            let src = target_of(target, &plan.entries[primary].path);
            if let Err(err) = remove_existing(&t).and_then(|_| std::fs::hard_link(&src, &t)) {
                failed[i].store(true, Ordering::Relaxed);
                errors.push(PathMessage {
                    path: t.display().to_string(),
                    message: format!("cannot link to {}: {err}", src.display()),
                });
            }
        }
    }
    // 4. Remove files that failed, so no wrong or partial content is left behind.
    for (i, e) in plan.entries.iter().enumerate() {
        if failed[i].load(Ordering::Relaxed) && matches!(e.node.kind, NodeKind::File { .. }) {
            let _ = std::fs::remove_file(target_of(target, &e.path));
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
                let t = target_of(target, &e.path);
                match verify_file(repo, &t, content, e.node.size) {
                    Ok(()) => {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(msg) => {
                        failed[i].store(true, Ordering::Relaxed);
                        verify_errors.lock().unwrap_or_else(|p| p.into_inner()).push(PathMessage {
                            path: t.display().to_string(),
                            message: format!("verify failed: {msg}"),
                        });
                    }
                }
            })
        });
        res.verified = count.into_inner();
        errors.extend(verify_errors.into_inner().unwrap_or_else(|p| p.into_inner()));
    }
    // 6. Metadata: everything but directories, then directories deepest first.
    // SAFETY: plain getter.
    let root = unsafe { libc::geteuid() } == 0;
    let apply = |e: &PlanEntry, t: &Path| -> std::io::Result<()> {
        let n = &e.node;
        if root {
            fsmeta::lchown(t, n.uid, n.gid)?;
        }
        if !matches!(n.kind, NodeKind::Symlink { .. }) {
            fsmeta::chmod(t, n.mode)?;
        }
        if !n.xattrs.is_empty() {
            if let Err(err) = fsmeta::write_xattrs(t, &n.xattrs) {
                if !matches!(n.kind, NodeKind::Symlink { .. }) {
                    return Err(err);
                }
            }
        }
        fsmeta::set_times(t, n.atime, n.mtime)
    };
    for (i, e) in plan.entries.iter().enumerate() {
        if matches!(e.node.kind, NodeKind::Dir { .. } | NodeKind::Socket) || failed[i].load(Ordering::Relaxed) {
            continue;
        }
        let t = target_of(target, &e.path);
        if let Err(err) = apply(e, &t) {
            errors.push(PathMessage { path: t.display().to_string(), message: format!("metadata: {err}") });
        }
        match e.node.kind {
            NodeKind::File { .. } => res.files += 1,
            _ => res.other += 1,
        }
    }
    for (i, e) in plan.entries.iter().enumerate().rev() {
        if !matches!(e.node.kind, NodeKind::Dir { .. }) || failed[i].load(Ordering::Relaxed) {
            continue;
        }
        let t = target_of(target, &e.path);
        if let Err(err) = apply(e, &t) {
            errors.push(PathMessage { path: t.display().to_string(), message: format!("metadata: {err}") });
        }
        res.dirs += 1;
    }
    res.bytes = written.into_inner() + plan.hole_bytes;
    res.errors.extend(errors);
    Ok(res)
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
    path: &Path,
    content: &crate::tree::Content,
    size: u64,
) -> std::result::Result<(), String> {
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    if len != size {
        return Err(format!("size {len}, expected {size}"));
    }
    let mut off = 0u64;
    let mut buf = Vec::new();
    for id in chunk_ids_iter(repo, content) {
        let id = id.map_err(|e| e.to_string())?;
        let loc = repo.locate(BlobKind::Data, &id).map_err(|e| e.to_string())?;
        let n = loc.first().ok_or_else(|| format!("blob {id} not indexed"))?.plain_length as usize;
        buf.resize(n, 0);
        f.read_exact_at(&mut buf, off).map_err(|e| e.to_string())?;
        if repo.keys().content_id(&buf) != id {
            return Err(format!("bytes at offset {off} do not match blob {id}"));
        }
        off += n as u64;
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
