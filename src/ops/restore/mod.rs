//! The restore operation: a first walk of the snapshot's trees that holds nothing per entry
//! ([`survey`]: the limits of format-spec §7.5 and what is in the way are checked before anything
//! is written), then a second walk that plans in batches of bounded memory (each pack read once per
//! batch) and carries out each batch: every blob written to all its targets, holes left for zero
//! chunks, then links and metadata, directories' metadata once everything below them is done;
//! verify on request. Every write below the target goes through `write` (handles, never a symlink
//! followed). `dump` streams one file.

mod batch;
mod exec;
mod place;
mod plan;
mod read;
pub mod safety;
mod select;
mod survey;
mod write;

pub use batch::{DirDone, EarlierPrimary, PlanBlob, PlanEntry, RestorePlan};
pub use plan::{plan, plan_batches, plan_with};
pub use survey::{plan_summary, survey, PlanSummary, Survey, SurveyChecks};

use crate::browse;
use crate::error::{Error, Result};
use crate::filter::Patterns;
use crate::id::{BlobId, BlobKind};
use crate::ops::PathMessage;
use crate::repository::ReadRepository;
use crate::tree::{Limits, NodeKind};
use crate::trees::chunk_ids_iter;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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
    /// The memory budget of one batch of the plan, in the bytes format-spec §7.5 counts; 0 for
    /// the default ([`BATCH_BUDGET`]). Not a user setting: tests set it small to cut a small
    /// snapshot into many batches.
    #[doc(hidden)]
    pub batch_budget: u64,
}

/// The default memory budget of one batch of a restore plan, in the bytes format-spec §7.5
/// counts (a few hundred per small file: tens of thousands of files per batch).
pub const BATCH_BUDGET: u64 = 16 << 20;

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
    /// Ranged reads of packs made for content.
    pub reads: u64,
    /// Bytes those reads asked for.
    pub read_bytes: u64,
}

fn cancelled(opts: &RestoreOptions) -> bool {
    opts.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
}

/// Carries out a whole plan ([`plan`]) as one batch: refuses first, without `--overwrite`, when
/// anything is in the way of any entry, then writes as [`restore_planned`] does.
pub fn execute(
    repo: &ReadRepository,
    plan: &RestorePlan,
    opts: &RestoreOptions,
    progress: &dyn RestoreProgress,
) -> Result<RestoreResult> {
    let mut x = exec::Exec::new(repo, opts, progress)?;
    for e in &plan.entries {
        x.refuse_in_the_way(e)?;
    }
    x.batch(plan)?;
    Ok(x.finish())
}

/// Restores `root` (or `sub` within it) within `limits`, after a [`survey`] that refused what it
/// must: plans in batches of `opts.batch_budget` and carries out each, so memory stays bounded
/// whatever the number of entries (format-spec §7.5). The next batch is planned (on its own thread)
/// while one is carried out: at most three batches are held at once.
pub fn restore_planned(
    repo: &ReadRepository,
    root: &BlobId,
    sub: Option<&Path>,
    opts: &RestoreOptions,
    limits: &Limits,
    progress: &dyn RestoreProgress,
) -> Result<RestoreResult> {
    let mut x = exec::Exec::new(repo, opts, progress)?;
    let budget = if opts.batch_budget > 0 { opts.batch_budget } else { BATCH_BUDGET };
    let (done, planned) = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<RestorePlan>(0);
        let planner = s.spawn(move || {
            plan_batches(repo, root, sub, opts, limits, budget, &mut |batch| {
                // The receiver is gone when the restore stopped: so does the plan.
                tx.send(batch).map_err(|_| Error::Interrupted)
            })
        });
        let mut done = Ok(());
        for batch in rx.iter() {
            if let Err(e) = x.batch(&batch) {
                done = Err(e);
                break;
            }
        }
        drop(rx);
        let planned = planner.join().unwrap_or_else(|_| Err(Error::Internal("the restore planner panicked".into())));
        (done, planned)
    });
    // The carrying out's error first: the planner's is then only that it was stopped.
    done?;
    planned?;
    if cancelled(opts) {
        return Err(Error::Interrupted);
    }
    Ok(x.finish())
}

/// Restores `root` (or `sub` within it) within `limits`: a [`survey`] (refusing, without
/// `--overwrite`, anything in the way) and then [`restore_planned`].
pub fn restore_with(
    repo: &ReadRepository,
    root: &BlobId,
    sub: Option<&Path>,
    opts: &RestoreOptions,
    limits: &Limits,
    progress: &dyn RestoreProgress,
) -> Result<RestoreResult> {
    let checks = SurveyChecks { refuse_in_the_way: !opts.overwrite, safety: false };
    survey(repo, root, sub, opts, limits, checks)?;
    restore_planned(repo, root, sub, opts, limits, progress)
}

/// Restores `root` (or `sub` within it) within the reference's limits ([`Limits::expanding`]).
pub fn restore(
    repo: &ReadRepository,
    root: &BlobId,
    sub: Option<&Path>,
    opts: &RestoreOptions,
    progress: &dyn RestoreProgress,
) -> Result<RestoreResult> {
    restore_with(repo, root, sub, opts, &Limits::expanding(), progress)
}

/// Blobs `dump` reads ahead of the one it writes.
const DUMP_IN_FLIGHT: usize = 16;

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
    // The ids one chunk list at a time, on a thread of their own that hands each blob's read to
    // the thread pool and queues a receiver for it in file order; the writer takes them in that
    // order. Reads finish out of order but no read waits for its neighbours (a window read all
    // at once waited for its slowest blob). At most DUMP_IN_FLIGHT + 1 blobs are in memory: the
    // queued reads and the one being written (a read is started only once its receiver is queued).
    let mut n = 0u64;
    std::thread::scope(|s| -> Result<()> {
        type Pending = crossbeam_channel::Receiver<Result<Vec<u8>>>;
        let (tx, rx) = crossbeam_channel::bounded::<Result<Pending>>(DUMP_IN_FLIGHT);
        s.spawn(move || {
            rayon::in_place_scope(|pool| {
                for id in chunk_ids_iter(repo, content) {
                    let id = match id {
                        Ok(id) => id,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    let (done, pending) = crossbeam_channel::bounded(1);
                    // The writer stopped (an error): nothing more to read.
                    if tx.send(Ok(pending)).is_err() {
                        return;
                    }
                    pool.spawn(move |_| {
                        let _ = done.send(repo.read_blob(BlobKind::Data, &id));
                    });
                }
            })
        });
        for pending in rx {
            let b = pending?.recv().map_err(|_| Error::Internal("a dump read ended without a result".into()))??;
            out.write_all(&b).map_err(|e| Error::io("<stdout>", e))?;
            n += b.len() as u64;
        }
        Ok(())
    })?;
    out.flush().map_err(|e| Error::io("<stdout>", e))?;
    Ok(n)
}
