//! Placing files' contents for a restore plan (format-spec §7.3, §7.5): which blob of which pack
//! goes to which offset of which entry. Each chunk list is read and placed once per batch however
//! often files name it, a hole (an all-zero chunk) costs no buffer, and what a batch holds is
//! counted against the expansion budget ([`Budget`]).

use super::batch::{PlanBlob, PlanEntry, RestorePlan};
use super::select::too_many;
use crate::cache::Location;
use crate::error::Result;
use crate::id::{BlobId, BlobKind, PackId};
use crate::ops::PathMessage;
use crate::repository::blobmap::Lookups;
use crate::repository::ReadRepository;
use crate::tree::{Content, Expansion, Node, NodeKind};
use crate::trees::chunk_list;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Bytes counted per chunk id of a chunk list read (its place in the list's run).
const RUN_CHUNK_BYTES: u64 = std::mem::size_of::<(BlobId, Location, u64)>() as u64;

/// Bytes counted per blob the plan reads (its [`PlanBlob`] and its place in the lookup of blobs).
const PLAN_BLOB_BYTES: u64 = 160;

/// What the current batch of a plan holds, in the bytes format-spec §7.5 counts, against the
/// expansion budget (if any) of the tree bytes the walk has read so far.
pub(super) struct Budget {
    /// The expansion budget; `None` counts without refusing.
    pub x: Option<Expansion>,
    /// The tree blob the walk started from (named by a refusal).
    pub root: BlobId,
    /// Bytes the current batch holds.
    pub held: u64,
    /// Bytes of tree blobs read so far (directory parts and chunk lists).
    pub read: u64,
}

impl Budget {
    /// Counts `held` more bytes held and `read` more tree bytes read, at `path`.
    pub fn add(&mut self, held: u64, read: u64, path: &Path) -> Result<()> {
        self.held += held;
        self.read += read;
        match self.x {
            Some(x) if self.held > x.cap(self.read) => {
                Err(crate::trees::expansion_refused(&self.root, path, self.held, x, self.read))
            }
            _ => Ok(()),
        }
    }
}

/// Where a run of chunks goes, relative to its start: its number of chunk ids, its length, the
/// bytes that are holes, and the chunks to write (id, location, offset).
#[derive(Debug, Default)]
struct Run {
    ids: u64,
    len: u64,
    holes: u64,
    chunks: Vec<(BlobId, Location, u64)>,
}

/// Places files' contents: each chunk list once per batch, holes without a buffer.
pub(super) struct Files<'r> {
    repo: &'r ReadRepository,
    /// The blob map, through one database iterator for every chunk the plan places (one made per
    /// lookup cost the planner most of its time).
    lookups: Lookups<'r>,
    /// The content id of an all-zero chunk, per length.
    zero_ids: ZeroIds,
    /// Per chunk list placed: its run, or why it cannot be restored.
    lists: HashMap<BlobId, Rc<std::result::Result<Run, String>>>,
    /// Per pack and blob: where the blob is in the plan's list for the pack.
    at: HashMap<(PackId, BlobId), usize>,
    /// Chunk placements so far (over all batches), against `max`.
    placed: u64,
    max: u64,
    /// What the current batch holds.
    pub budget: Budget,
}

/// Bytes of zeros between two saved hasher states of [`ZeroIds`].
const ZERO_STEP: usize = 8 << 10;

/// One step of zeros: what [`ZeroIds`] hashes from a saved state.
static ZEROS: [u8; ZERO_STEP] = [0; ZERO_STEP];

/// The content ids of all-zero chunks, per length. Chunk lengths are nearly all distinct (a
/// content-defined cut, or a small file's size), so hashing `len` zeros for each new length would
/// hash as many zeros as the snapshot has bytes. Instead the keyed hasher's state is saved every
/// [`ZERO_STEP`] zeros (as far as the longest length asked), and a length costs a clone and at
/// most one step of zeros. No chunk is longer than 16 MiB (format-spec §3.6): a longer plain
/// length (only a hostile index can claim one) is not taken for a hole, and the blob is read and
/// verified like any other, so it costs no hashing here and no more than 2,048 saved states.
struct ZeroIds {
    /// `steps[k]`: the state after `k * ZERO_STEP` zeros.
    steps: Vec<blake3::Hasher>,
    /// The ids computed, per length; cleared when it holds [`Self::MAX_IDS`] (a restore of
    /// millions of chunks has about as many lengths).
    ids: HashMap<u32, BlobId>,
}

impl ZeroIds {
    /// The longest all-zero chunk recognised: the longest chunk there is (at most 2,048 saved
    /// states, about 4 MiB).
    const MAX_LEN: usize = 16 << 20;
    /// At most this many ids kept (about 2.5 MiB); one more costs at most one step of zeros.
    const MAX_IDS: usize = 65_536;

    fn new(key: &[u8; 32]) -> Self {
        ZeroIds { steps: vec![blake3::Hasher::new_keyed(key)], ids: HashMap::new() }
    }

    /// The keyed BLAKE3 of `len` zero bytes, the content id of an all-zero chunk of that length;
    /// `None` past the longest chunk there is.
    fn id(&mut self, len: u32) -> Option<BlobId> {
        let len_bytes = len as usize;
        if len_bytes > Self::MAX_LEN {
            return None;
        }
        if let Some(id) = self.ids.get(&len) {
            return Some(*id);
        }
        let k = len_bytes / ZERO_STEP;
        while self.steps.len() <= k {
            let mut h = self.steps[self.steps.len() - 1].clone();
            h.update(&ZEROS);
            self.steps.push(h);
        }
        let mut h = self.steps[k].clone();
        // Less than one step.
        h.update(&ZEROS[..len_bytes - k * ZERO_STEP]);
        let id = BlobId(*h.finalize().as_bytes());
        if self.ids.len() >= Self::MAX_IDS {
            self.ids.clear();
        }
        self.ids.insert(len, id);
        Some(id)
    }
}

impl<'r> Files<'r> {
    /// A placer for `repo`, refused past `max` chunk placements, counting into `budget`.
    pub fn new(repo: &'r ReadRepository, max: u64, budget: Budget) -> Result<Self> {
        Ok(Files {
            repo,
            lookups: repo.lookups()?,
            zero_ids: ZeroIds::new(&repo.keys().id_key.0),
            lists: HashMap::new(),
            at: HashMap::new(),
            placed: 0,
            max,
            budget,
        })
    }

    /// Starts a new batch: forgets the chunk lists placed and the blobs of the batch's packs.
    pub fn next_batch(&mut self) {
        self.lists = HashMap::new();
        self.at = HashMap::new();
        self.budget.held = 0;
    }

    /// Places `ids` one after the other.
    fn run(&mut self, ids: &[BlobId]) -> Result<std::result::Result<Run, String>> {
        let mut r = Run::default();
        for id in ids {
            let Some(loc) = self.lookups.lookup(BlobKind::Data, id)?.into_iter().next() else {
                return Ok(Err(format!("data blob {id} is not in any index")));
            };
            let len = loc.plain_length;
            if self.zero_ids.id(len) == Some(*id) {
                r.holes += len as u64;
            } else {
                r.chunks.push((*id, loc, r.len));
            }
            r.len += len as u64;
            r.ids += 1;
        }
        Ok(Ok(r))
    }

    /// The run of chunk list `l`, read and placed once.
    fn list(&mut self, l: &BlobId) -> Result<Rc<std::result::Result<Run, String>>> {
        if let Some(r) = self.lists.get(l) {
            return Ok(r.clone());
        }
        let r = match chunk_list(self.repo, l) {
            Ok(ids) => {
                // The list's plaintext is read once per batch; its run is kept.
                self.budget.add(RUN_CHUNK_BYTES * ids.len() as u64, 32 * ids.len() as u64, Path::new("/"))?;
                self.run(&ids)?
            }
            Err(f) => Err(f.into_error(l).to_string()),
        };
        let r = Rc::new(r);
        self.lists.insert(*l, r.clone());
        Ok(r)
    }

    /// Adds the entry for `node`; for a file, the blobs of its content. Returns the entry's
    /// index, or `None` when the file cannot be restored (recorded in `unrestorable`).
    pub fn add_entry(&mut self, p: &mut RestorePlan, path: PathBuf, node: Node) -> Result<Option<usize>> {
        let idx = p.entries.len();
        if let NodeKind::File { content } = &node.kind {
            let fail = |p: &mut RestorePlan, message: String| {
                p.unrestorable.push(PathMessage { path: path.display().to_string(), message });
                Ok(None)
            };
            // The runs of the content, in order: one per chunk list (a list named again is the
            // same run, placed once).
            let mut runs: Vec<Rc<std::result::Result<Run, String>>> = Vec::new();
            match content {
                // Written from the node when the file is created (write::write_inline).
                Content::Inline(_) => {}
                Content::Chunks(ids) => runs.push(Rc::new(self.run(ids)?)),
                Content::Indirect { lists, count } => {
                    if let Err(e) = crate::tree::check_indirect(lists, *count) {
                        return fail(p, e);
                    }
                    for l in lists {
                        runs.push(self.list(l)?);
                    }
                }
            }
            let mut off = content.inline().map_or(0, |b| b.len() as u64);
            let mut holes = 0u64;
            for r in &runs {
                match r.as_ref() {
                    Err(m) => return fail(p, m.clone()),
                    Ok(run) => {
                        off = match off.checked_add(run.len) {
                            Some(o) => o,
                            None => return fail(p, "content longer than 2^64 bytes".into()),
                        };
                        holes += run.holes;
                    }
                }
            }
            if let Content::Indirect { lists, count } = content {
                let ids: u64 = runs.iter().map(|r| r.as_ref().as_ref().map_or(0, |r| r.ids)).sum();
                if ids != *count {
                    let first = lists.first().copied().unwrap_or(BlobId([0; 32]));
                    return fail(
                        p,
                        format!("tree blob {first}: chunk list count mismatch: {ids} ids, the content says {count}"),
                    );
                }
            }
            if off != node.size {
                return fail(p, format!("content is {off} bytes, the tree says {}", node.size));
            }
            p.total_bytes += off;
            p.hole_bytes += holes;
            let mut start = 0u64;
            for r in &runs {
                let Ok(run) = r.as_ref() else { continue };
                self.placed += run.chunks.len() as u64;
                if self.placed > self.max {
                    return Err(too_many(self.max, &path));
                }
                self.budget.add(16 * run.chunks.len() as u64, 0, &path)?;
                for (id, loc, o) in &run.chunks {
                    let list = p.packs.entry(loc.pack).or_default();
                    match self.at.get(&(loc.pack, *id)) {
                        Some(&i) => list[i].targets.push((idx, start + o)),
                        None => {
                            self.budget.add(PLAN_BLOB_BYTES, 0, &path)?;
                            self.at.insert((loc.pack, *id), list.len());
                            list.push(PlanBlob { id: *id, loc: loc.clone(), targets: vec![(idx, start + o)] });
                        }
                    }
                }
                start += run.len;
            }
        }
        p.entries.push(PlanEntry { path, node, link_to: None, earlier: None });
        Ok(Some(idx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(key: &[u8; 32], len: usize) -> BlobId {
        BlobId(*blake3::keyed_hash(key, &vec![0u8; len]).as_bytes())
    }

    #[test]
    fn zero_ids_from_saved_states_are_the_hash_of_that_many_zeros() {
        let key = [7u8; 32];
        let mut z = ZeroIds::new(&key);
        let s = ZERO_STEP;
        // Longest first, then shorter ones inside the saved steps, then on and across step bounds.
        let lens = [5 * s + 17, 0, 1, s - 1, s, s + 1, 3 * s, 2 * s + 1000, 9 * s, 65536, 1 << 20, 4095];
        for len in lens {
            assert_eq!(z.id(len as u32), Some(direct(&key, len)), "{len} zeros");
        }
        assert_eq!(z.steps.len(), (1 << 20) / s + 1, "states as far as the longest length");
        assert_ne!(ZeroIds::new(&[8u8; 32]).id(4096), z.id(4096), "keyed");
    }

    #[test]
    fn zero_ids_stop_at_the_longest_chunk_and_keep_a_bounded_map() {
        // No chunk is longer than 16 MiB (format-spec §3.6), but an index could claim a longer
        // plain length: it is not a hole, and costs no hashing.
        let key = [1u8; 32];
        let mut z = ZeroIds::new(&key);
        assert_eq!(z.id(ZeroIds::MAX_LEN as u32), Some(direct(&key, ZeroIds::MAX_LEN)));
        assert_eq!(z.steps.len(), ZeroIds::MAX_LEN / ZERO_STEP + 1);
        assert_eq!(z.id(ZeroIds::MAX_LEN as u32 + 1), None);
        assert_eq!(z.id(u32::MAX), None);
        for len in 0..ZeroIds::MAX_IDS as u32 + 10 {
            z.id(len);
        }
        assert!(z.ids.len() <= ZeroIds::MAX_IDS, "{}", z.ids.len());
        assert_eq!(z.id(12_345), Some(direct(&key, 12_345)), "an id computed again after the map was cleared");
    }
}
