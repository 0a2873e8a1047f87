//! What a restore would do, found by walks that hold nothing per entry: [`survey`], the walk a
//! restore makes before it writes anything (the limits of format-spec §7.5, what is in the way,
//! the counts a progress bar and a warning need), and [`plan_summary`], the plan `--dry-run`
//! prints, computed batch by batch.

use super::exec::refuse_in_the_way;
use super::plan::plan_batches;
use super::safety::InTheWay;
use super::select::{Sink, Start};
use super::{write, RestoreOptions, BATCH_BUDGET};
use crate::error::{Error, Result};
use crate::id::{BlobId, PackId};
use crate::ops::PathMessage;
use crate::repository::ReadRepository;
use crate::tree::{Limits, Node, NodeKind};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// What [`survey`] checks besides the limits.
#[derive(Clone, Copy, Debug, Default)]
pub struct SurveyChecks {
    /// Refuse when anything is in the way of an entry (in a target that exists): what a restore
    /// without `--overwrite` does before it writes.
    pub refuse_in_the_way: bool,
    /// List what `--overwrite --safety-snapshot` would back up first ([`super::safety`]).
    pub safety: bool,
}

/// What a restore would create, counted without placing any content.
#[derive(Clone, Debug, Default)]
pub struct Survey {
    /// Entries.
    pub entries: u64,
    /// Regular files among them.
    pub files: u64,
    /// Bytes of the files' content (each hardlink group once).
    pub bytes: u64,
    /// Entries whose mode has setuid or setgid.
    pub setuid: u64,
    /// With [`SurveyChecks::safety`]: the paths a restore with `--overwrite` would replace.
    pub in_the_way: Vec<PathBuf>,
}

/// Walks what a restore of `root` (or `sub` within it) would create, within `limits` (the walk's
/// refusals are the restore's), and counts it; with `checks`, refuses what is in the way or lists
/// it. Holds one record per directory level and per hardlink group, nothing per entry.
pub fn survey(
    repo: &ReadRepository,
    root: &BlobId,
    sub: Option<&Path>,
    opts: &RestoreOptions,
    limits: &Limits,
    checks: SurveyChecks,
) -> Result<Survey> {
    // A target that does not exist holds nothing in the way, and is not created here: a refused
    // restore leaves no trace.
    let target = if checks.refuse_in_the_way && std::fs::symlink_metadata(&opts.target).is_ok() {
        Some(write::Target::open(&opts.target).map_err(|e| Error::io(&opts.target, e))?)
    } else {
        None
    };
    let in_the_way = if checks.safety { Some(InTheWay::new(opts)?) } else { None };
    let mut s = Surveyor { opts, target, in_the_way, groups: HashSet::new(), out: Survey::default() };
    Start::find(repo, root, sub)?.walk(repo, opts, limits, &mut s)?;
    if let Some(w) = s.in_the_way {
        s.out.in_the_way = w.into_paths();
    }
    Ok(s.out)
}

struct Surveyor<'o> {
    opts: &'o RestoreOptions,
    target: Option<write::Target>,
    in_the_way: Option<InTheWay>,
    /// Hardlink groups met.
    groups: HashSet<u64>,
    out: Survey,
}

impl Sink for Surveyor<'_> {
    fn entry(&mut self, path: PathBuf, node: Node) -> Result<()> {
        self.out.entries += 1;
        if node.mode & 0o6000 != 0 {
            self.out.setuid += 1;
        }
        if let NodeKind::File { .. } = node.kind {
            self.out.files += 1;
            if node.hardlink == 0 || self.groups.insert(node.hardlink) {
                self.out.bytes += node.size;
            }
        }
        if let Some(t) = &self.target {
            refuse_in_the_way(t, self.opts, &path, &node.kind)?;
        }
        if let Some(w) = &mut self.in_the_way {
            w.add(&path, &node.kind)?;
        }
        Ok(())
    }

    fn dir_done(&mut self, _: PathBuf, _: Node) -> Result<()> {
        Ok(())
    }
}

/// The plan of a restore as `--dry-run` prints it.
#[derive(Clone, Debug, Default)]
pub struct PlanSummary {
    /// Entries to create.
    pub entries: u64,
    /// Regular files among them.
    pub files: u64,
    /// Distinct packs to read.
    pub packs: u64,
    /// Bytes of file content.
    pub bytes: u64,
    /// Bytes that are holes.
    pub hole_bytes: u64,
    /// Entries whose mode has setuid or setgid.
    pub setuid: u64,
    /// Files that cannot be restored.
    pub unrestorable: Vec<PathMessage>,
}

/// Plans the restore of `root` (or `sub` within it) within `limits`, batch by batch as a restore
/// does, and sums the batches; writes nothing. Holds a batch at a time and the set of packs.
pub fn plan_summary(
    repo: &ReadRepository,
    root: &BlobId,
    sub: Option<&Path>,
    opts: &RestoreOptions,
    limits: &Limits,
) -> Result<PlanSummary> {
    let mut out = PlanSummary::default();
    let mut packs: HashSet<PackId> = HashSet::new();
    let budget = if opts.batch_budget > 0 { opts.batch_budget } else { BATCH_BUDGET };
    plan_batches(repo, root, sub, opts, limits, budget, &mut |b| {
        out.entries += b.entries.len() as u64;
        out.files += b.entries.iter().filter(|e| matches!(e.node.kind, NodeKind::File { .. })).count() as u64;
        out.setuid += b.entries.iter().filter(|e| e.node.mode & 0o6000 != 0).count() as u64;
        out.bytes += b.total_bytes;
        out.hole_bytes += b.hole_bytes;
        out.unrestorable.extend(b.unrestorable.iter().cloned());
        packs.extend(b.packs.keys().copied());
        Ok(())
    })?;
    out.packs = packs.len() as u64;
    Ok(out)
}
