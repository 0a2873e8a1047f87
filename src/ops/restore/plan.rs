//! The restore plan (format-spec §7): which entries to create, in pre-order, which directories are
//! complete (post-order), and which blobs to read from which pack, so that each pack is read once
//! per batch. Reads trees and the index; writes nothing. A restore plans in batches
//! ([`plan_batches`]): the walk fills a batch up to a memory budget, the batch is carried out, and
//! the walk goes on, so what a plan holds does not grow with the snapshot (format-spec §7.5).
//! Hostile trees cost it little: each chunk list is read and placed once per batch however often
//! files name it, a hole costs no buffer, and the walk's entries and the chunk placements stay
//! within the limit of entries.

use super::batch::{DirDone, EarlierPrimary, PlanEntry, RestorePlan};
use super::place::{Budget, Files};
use super::select::{Sink, Start};
use super::RestoreOptions;
use crate::error::Result;
use crate::id::BlobId;
use crate::ops::PathMessage;
use crate::repository::ReadRepository;
use crate::tree::{entry_bytes, HardlinkGroups, Limits, Node, NodeKind};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Computes the plan for restoring the tree `root` (or the subtree at `sub`), within the
/// reference's limits for an expanding walk ([`Limits::expanding`]), as one plan.
pub fn plan(repo: &ReadRepository, root: &BlobId, sub: Option<&Path>, opts: &RestoreOptions) -> Result<RestorePlan> {
    plan_with(repo, root, sub, opts, &Limits::expanding())
}

/// [`plan`] within `limits`, as one plan (memory grows with the snapshot: a restore plans in
/// batches instead, [`plan_batches`]). A deeper or larger tree is refused with an error naming the
/// tree and the path; more entries plus chunk placements than `limits.max_entries` is an
/// [`crate::Error::Refused`], and so is a walk that passes `limits.expansion`: the
/// [`crate::tree::entry_bytes`] of the entries walked against the budget's cap for the distinct
/// tree bytes read, and the plan's own count (its entries, 16 bytes per chunk placement and 160
/// per blob to read) against the cap for the tree bytes read (directories and chunk lists).
pub fn plan_with(
    repo: &ReadRepository,
    root: &BlobId,
    sub: Option<&Path>,
    opts: &RestoreOptions,
    limits: &Limits,
) -> Result<RestorePlan> {
    let start = Start::find(repo, root, sub)?;
    let mut never = |_: RestorePlan| -> Result<()> { unreachable_flush() };
    let mut p = Planner::new(repo, start.tree(root), limits, u64::MAX, &mut never)?;
    start.walk(repo, opts, limits, &mut p)?;
    Ok(p.plan)
}

/// The flush of a plan made whole never happens: its budget is unbounded.
fn unreachable_flush() -> Result<()> {
    Err(crate::Error::Internal("a whole restore plan was cut into batches".into()))
}

/// Plans the restore of `root` (or `sub` within it) within `limits`, in batches: each batch holds
/// entries, placements and blobs up to `budget` bytes as format-spec §7.5 counts them (plus the one
/// entry that passed it), and goes to `run`, which carries it out (or passes it on to be carried
/// out while the next batch is planned). A batch's packs are
/// read in as few requests as in a whole plan; a pack whose blobs fall in several batches is read
/// once per batch, only its blobs of that batch.
pub fn plan_batches(
    repo: &ReadRepository,
    root: &BlobId,
    sub: Option<&Path>,
    opts: &RestoreOptions,
    limits: &Limits,
    budget: u64,
    run: &mut dyn FnMut(RestorePlan) -> Result<()>,
) -> Result<()> {
    let start = Start::find(repo, root, sub)?;
    let mut p = Planner::new(repo, start.tree(root), limits, budget.max(1), run)?;
    start.walk(repo, opts, limits, &mut p)?;
    p.flush()
}

/// The primary of a hardlink group.
enum Primary {
    /// An entry of the current batch.
    Here(usize),
    /// Restored by an earlier batch.
    Earlier(EarlierPrimary),
}

/// A directory entry handed to the planner, until its `dir_done`.
enum OpenDir {
    /// In the current batch, at this index.
    Here(usize),
    /// In an earlier batch.
    Earlier,
    /// Not restored (refused as a hardlink member).
    Refused,
}

/// The sink of a planning walk: fills the current batch and hands it to `run` when it is full.
struct Planner<'r, 'f> {
    files: Files<'r>,
    plan: RestorePlan,
    members: HardlinkGroups,
    /// Per hardlink group: its primary. One path per group (the groups' first contents are kept
    /// by `members` anyway).
    groups: HashMap<u64, Primary>,
    /// The groups whose primary is in the current batch.
    here: Vec<(u64, usize)>,
    /// The directories handed and not yet done: one per level of the current path.
    open: Vec<OpenDir>,
    /// Bytes the batch's completed directories hold (counted for the batch, not against the
    /// expansion budget: their entries were counted when handed).
    dirs_held: u64,
    budget: u64,
    run: &'f mut dyn FnMut(RestorePlan) -> Result<()>,
}

impl<'r, 'f> Planner<'r, 'f> {
    fn new(
        repo: &'r ReadRepository,
        root: BlobId,
        limits: &Limits,
        budget: u64,
        run: &'f mut dyn FnMut(RestorePlan) -> Result<()>,
    ) -> Result<Self> {
        let b = Budget { x: limits.expansion, root, held: 0, read: 0 };
        Ok(Planner {
            files: Files::new(repo, limits.max_entries, b)?,
            plan: RestorePlan::default(),
            members: HardlinkGroups::default(),
            groups: HashMap::new(),
            here: Vec::new(),
            open: Vec::new(),
            dirs_held: 0,
            budget,
            run,
        })
    }

    /// Hands the current batch to `run` and starts the next one.
    fn flush(&mut self) -> Result<()> {
        if self.plan.is_empty() {
            return Ok(());
        }
        for (g, i) in self.here.drain(..) {
            let path = self.plan.entries[i].path.clone();
            self.groups.insert(g, Primary::Earlier(EarlierPrimary { path }));
        }
        for o in &mut self.open {
            if let OpenDir::Here(_) = o {
                *o = OpenDir::Earlier;
            }
        }
        self.files.next_batch();
        self.dirs_held = 0;
        (self.run)(std::mem::take(&mut self.plan))
    }

    fn maybe_flush(&mut self) -> Result<()> {
        if self.files.budget.held.saturating_add(self.dirs_held) >= self.budget {
            self.flush()?;
        }
        Ok(())
    }
}

impl Sink for Planner<'_, '_> {
    fn entry(&mut self, path: PathBuf, node: Node) -> Result<()> {
        let is_dir = matches!(node.kind, NodeKind::Dir { .. });
        if let Err(m) = self.members.admit(&node) {
            if is_dir {
                self.open.push(OpenDir::Refused);
            }
            self.plan.unrestorable.push(PathMessage { path: path.display().to_string(), message: m });
            return Ok(());
        }
        self.files.budget.add(entry_bytes(path.as_os_str().len(), &node), 0, &path)?;
        let hl = node.hardlink;
        let primary = if hl != 0 { self.groups.get(&hl) } else { None };
        match primary {
            Some(Primary::Here(i)) => {
                let e = PlanEntry { path, node, link_to: Some(*i), earlier: None };
                self.plan.entries.push(e);
            }
            Some(Primary::Earlier(p)) => {
                let e = PlanEntry { path, node, link_to: None, earlier: Some(p.clone()) };
                self.plan.entries.push(e);
            }
            None => {
                let idx = self.files.add_entry(&mut self.plan, path, node)?;
                if let Some(i) = idx {
                    if hl != 0 {
                        self.groups.insert(hl, Primary::Here(i));
                        self.here.push((hl, i));
                    }
                    if is_dir {
                        self.open.push(OpenDir::Here(i));
                    }
                }
            }
        }
        self.maybe_flush()
    }

    fn dir_done(&mut self, path: PathBuf, node: Node) -> Result<()> {
        let entry = match self.open.pop() {
            Some(OpenDir::Here(i)) => Some(i),
            Some(OpenDir::Earlier) => None,
            Some(OpenDir::Refused) | None => return Ok(()),
        };
        self.dirs_held += entry_bytes(path.as_os_str().len(), &node);
        self.plan.dirs_done.push(DirDone { path, node, entry });
        self.maybe_flush()
    }

    fn tree_bytes(&mut self, n: u64) {
        self.files.budget.read += n;
    }
}
