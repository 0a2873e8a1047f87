//! A whole snapshot's trees (format-spec §7, §7.5): the input is a set of tree blobs (each a
//! 2-byte little-endian length, then that many bytes of plaintext), the first the root. The walker
//! of `cairn::treewalk` reads them recursively through a source in memory that resolves any id to
//! a blob (the id's first two bytes modulo their number), so references always land, and DAGs,
//! repeated names across parts and cycles (which content ids rule out in a repository) all
//! occur. Every file's chunk ids are streamed, every hardlink group checked. The walk must end
//! within the limits it was given, and the allocations it holds must stay within a budget.
#![no_main]

use cairn::error::{Error, Result};
use cairn::id::{BlobId, BlobKind};
use cairn::tree::{Expansion, HardlinkGroups, Limits, Node, NodeKind, TreeBlob};
use cairn::treeread::{chunk_ids_iter, TreeSource};
use cairn::treewalk::{Control, Visitor, Walker};
use libfuzzer_sys::fuzz_target;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the bytes held and their peak.
struct Counting;
static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call goes to the system allocator unchanged; only atomics are touched besides.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let now = HELD.fetch_add(l.size(), Ordering::Relaxed) + l.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        HELD.fetch_sub(l.size(), Ordering::Relaxed);
        System.dealloc(p, l)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// What a walk of one input may hold at once, beyond what it held before.
const BUDGET: usize = 64 << 20;
/// The limits of the walk: small, so that a run stays short.
const LIMITS: Limits =
    Limits { max_depth: 64, max_dir_parts: 64, max_entries: 4096, expansion: Some(Expansion { floor: 1 << 20, factor: 16 }) };
/// Chunk ids streamed per run, at most.
const MAX_IDS: u64 = 1 << 20;

struct Blobs(Vec<Vec<u8>>);

impl TreeSource for Blobs {
    fn load_tree(&self, id: &BlobId) -> Result<(Vec<u8>, TreeBlob)> {
        let i = u16::from_le_bytes([id.0[0], id.0[1]]) as usize % self.0.len();
        let plain = &self.0[i];
        let t = TreeBlob::decode(plain).map_err(|e| Error::corrupt_blob(BlobKind::Tree, *id, None, e))?;
        Ok((plain.clone(), t))
    }
}

struct Walk<'a> {
    src: &'a Blobs,
    groups: HardlinkGroups,
    entries: u64,
    ids: u64,
}

impl Visitor for Walk<'_> {
    fn fault(&mut self, path: &Path, tree: &BlobId, fault: cairn::treeread::DirFault, _: &cairn::treeread::Listing) -> Result<Control> {
        let _ = fault.error_at(tree, path).to_string();
        Ok(Control::Descend)
    }

    fn node(&mut self, _: &Path, n: &Node) -> Result<Control> {
        self.entries += 1;
        let _ = self.groups.admit(n);
        if let NodeKind::File { content } = &n.kind {
            for id in chunk_ids_iter(self.src, content) {
                self.ids += 1;
                if id.is_err() || self.ids > MAX_IDS {
                    break;
                }
            }
        }
        Ok(Control::Descend)
    }
}

fuzz_target!(|data: &[u8]| {
    let mut blobs = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 {
        let n = (u16::from_le_bytes([rest[0], rest[1]]) as usize).min(rest.len() - 2);
        blobs.push(rest[2..2 + n].to_vec());
        rest = &rest[2 + n..];
    }
    if blobs.is_empty() {
        return;
    }
    let src = Blobs(blobs);
    let before = HELD.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let mut v = Walk { src: &src, groups: HardlinkGroups::default(), entries: 0, ids: 0 };
    let r = Walker::new(&src).limits(LIMITS).walk(&BlobId([0; 32]), Path::new("/"), &mut v);
    assert!(v.entries <= LIMITS.max_entries, "the walk visited {} entries", v.entries);
    if let Err(e) = r {
        let _ = e.to_string();
    }
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    assert!(peak <= BUDGET, "the walk held {peak} bytes, over the budget of {BUDGET}");
});
