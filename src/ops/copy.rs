//! Copy: snapshots from one repository into another (a local repository feeding an off-site one),
//! re-sealed with the destination's keys, storing only the blobs the destination lacks. With
//! shared chunker keys (`init --copy-chunker-from`) blobs move as they are, and data the
//! destination already has is not read; otherwise every file is read and cut again with the
//! destination's chunker. Idempotent: a snapshot whose time, host and paths the destination
//! already has is not copied again. Prints nothing.

use crate::error::{Error, Result};
use crate::id::{BlobId, BlobKind, SnapshotId};
use crate::repository::{ReadRepository, Repository};
use crate::snapshot::Snapshot;
use crate::tree::{Content, Node, NodeKind, TreeBlob};
use crate::trees::{
    chunk_ids_iter, read_tree, rebuild, write_content, write_dir, Control, DirFault, Listing, Rebuilder, Rebuilt,
    Visitor, Walker,
};
use crate::writer::{Writer, WriterOptions};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

/// What happened to one source snapshot.
#[derive(Clone, Debug, Serialize)]
pub struct CopiedSnapshot {
    /// The snapshot in the source repository.
    pub source: SnapshotId,
    /// The new snapshot in the destination (`None` when skipped or on a dry run).
    pub target: Option<SnapshotId>,
    /// The destination's snapshot with the same time, host and paths, when it was skipped.
    pub already: Option<SnapshotId>,
}

/// What a copy did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CopyReport {
    /// True when the repositories do not share chunker keys and files were cut again.
    pub rechunked: bool,
    /// Per source snapshot.
    pub snapshots: Vec<CopiedSnapshot>,
    /// Blobs stored in the destination.
    pub blobs_added: u64,
    /// Plain bytes of those blobs.
    pub bytes_added: u64,
    /// Data blobs read from the source.
    pub data_blobs_read: u64,
    /// Plain bytes of those.
    pub data_bytes_read: u64,
}

/// True when ids and cut points agree between the two repositories (format-spec §3, §5).
pub fn shares_chunker(src: &Repository, dst: &Repository) -> bool {
    let (a, b) = (src.keys(), dst.keys());
    crate::crypto::mac_eq(&a.id_key.0, &b.id_key.0)
        && crate::crypto::mac_eq(&a.chunk_key.0, &b.chunk_key.0)
        && src.config().chunker() == dst.config().chunker()
}

fn identity(s: &Snapshot) -> (crate::tree::Time, String, Vec<Vec<u8>>) {
    (s.time(), s.host().to_string(), s.paths().to_vec())
}

/// Copies `snapshots` (all of the source's when empty) from `src` into `dst`.
pub fn copy(src: &ReadRepository, dst: &ReadRepository, snapshots: &[SnapshotId], dry_run: bool) -> Result<CopyReport> {
    if src.keys().repo_id == dst.keys().repo_id {
        return Err(Error::Usage("source and destination are the same repository".into()));
    }
    // A destination that may not hold inline content (format version 1, format-spec §7.3) gets
    // the source's trees rebuilt, each inline content stored as data blobs.
    let inline_to_blobs = src.config().inline_allowed() && !dst.config().inline_allowed();
    let mut report = CopyReport { rechunked: !shares_chunker(src, dst) || inline_to_blobs, ..Default::default() };
    // Who wrote each: a copy is signed by the destination's key only when the source snapshot
    // is attributed and unflagged (format-spec §4.3); when no snapshot is named, flagged ones
    // (forged, host-not-allowed, future) are left out.
    let all: Vec<(SnapshotId, Snapshot, bool)> = crate::select::list_all(src)?
        .into_iter()
        .map(|l| {
            let sign = l.eligible() && l.attribution.key_id().is_some();
            let keep = l.eligible() || !snapshots.is_empty();
            (l.id, l.snapshot, sign, keep)
        })
        .filter(|x| x.3)
        .map(|(id, s, sign, _)| (id, s, sign))
        .collect();
    let selected: Vec<(SnapshotId, Snapshot, bool)> = if snapshots.is_empty() {
        all
    } else {
        let mut v = Vec::new();
        for id in snapshots {
            match all.iter().find(|(i, _, _)| i == id) {
                Some(x) => v.push(x.clone()),
                None => return Err(Error::NotFound(format!("snapshot {id} in {}", src.backend().location()))),
            }
        }
        v
    };
    let existing: HashMap<_, SnapshotId> =
        dst.list_snapshots()?.into_iter().map(|(id, s)| (identity(&s), id)).collect();
    let todo: Vec<&(SnapshotId, Snapshot, bool)> = selected
        .iter()
        .filter(|(id, s, _)| match existing.get(&identity(s)) {
            Some(e) => {
                report.snapshots.push(CopiedSnapshot { source: *id, target: None, already: Some(*e) });
                false
            }
            None => true,
        })
        .collect();
    if todo.is_empty() {
        return Ok(report);
    }
    let w = Writer::new(dst, WriterOptions { dry_run, ..WriterOptions::default() }, "copy")?;
    let mut c = Copier {
        src,
        dst,
        w: &w,
        walker: Walker::new(src).skip_seen(),
        lists_done: HashSet::new(),
        data_done: HashSet::new(),
        rechunked: HashMap::new(),
        files: HashMap::new(),
        reads: (0, 0),
    };
    let mut prepared = Vec::new();
    for (id, snap, sign) in todo {
        let root = snap.root();
        let new_root = if report.rechunked {
            c.rechunk_dir(&root)?
        } else {
            c.copy_tree(&root)?;
            root
        };
        // The source's writer block cannot verify in the destination: the commit signs anew
        // with the destination's key (format-spec §4.3).
        let mut v = snap.with_writer(None);
        v.v3_mut().root = new_root;
        // The parent names a snapshot of the source repository.
        v.v3_mut().parent = None;
        prepared.push((*id, (v, *sign)));
    }
    report.data_blobs_read = c.reads.0;
    report.data_bytes_read = c.reads.1;
    drop(c);
    let st = w.stats();
    report.blobs_added = st.blobs_added.load(std::sync::atomic::Ordering::Relaxed);
    report.bytes_added = st.bytes_added.load(std::sync::atomic::Ordering::Relaxed);
    if dry_run {
        w.abandon();
        report.snapshots.extend(prepared.into_iter().map(|(id, _)| CopiedSnapshot {
            source: id,
            target: None,
            already: None,
        }));
        return Ok(report);
    }
    // Every blob is stored and indexed before the first snapshot names it (format-spec §11).
    let snaps: Vec<(Snapshot, bool)> = prepared.iter().map(|(_, s)| s.clone()).collect();
    let targets = w.commit_all(&snaps)?;
    let mut copied = Vec::new();
    for ((id, _), t) in prepared.into_iter().zip(targets) {
        report.snapshots.push(CopiedSnapshot { source: id, target: Some(t), already: None });
        copied.push(crate::ledger::Replaced { old: id, new: t });
    }
    dst.ledger_record(crate::ledger::Event::Copy { from: src.keys().repo_id, copied })?;
    Ok(report)
}

struct Copier<'a, 'r> {
    src: &'a ReadRepository,
    dst: &'a Repository,
    w: &'a Writer<'r>,
    /// Source directories whose blobs are all stored (shared chunker).
    walker: Walker<'a>,
    /// Chunk lists stored (shared chunker).
    lists_done: HashSet<BlobId>,
    data_done: HashSet<BlobId>,
    rechunked: Rebuilt<()>,
    /// Per file content re-cut: its new chunk ids.
    files: HashMap<Content, Vec<BlobId>>,
    reads: (u64, u64),
}

impl Copier<'_, '_> {
    fn read_data(&mut self, id: &BlobId) -> Result<Vec<u8>> {
        let plain = self.src.read_blob(BlobKind::Data, id)?;
        self.reads.0 += 1;
        self.reads.1 += plain.len() as u64;
        Ok(plain)
    }

    /// Shared chunker: stores every blob of the tree that the destination lacks, a directory's
    /// parts after everything below it. Every blob is looked up, not only the tree: a tree the
    /// destination has may have lost its children to a prune (it can sit unreferenced in a pack
    /// kept for other blobs).
    fn copy_tree(&mut self, root: &BlobId) -> Result<()> {
        let mut walker = std::mem::replace(&mut self.walker, Walker::new(self.src));
        let r = walker.walk(root, Path::new("/"), &mut TreeCopy { c: self, parts: Vec::new() });
        self.walker = walker;
        r
    }

    fn copy_data(&mut self, id: &BlobId) -> Result<()> {
        if !self.data_done.insert(*id) || self.w.is_known(BlobKind::Data, id)? {
            return Ok(());
        }
        let plain = self.read_data(id)?;
        self.w.store_with_id(BlobKind::Data, *id, &plain)?;
        Ok(())
    }

    /// Different chunkers: rebuilds the tree with every file cut again; returns its new id.
    fn rechunk_dir(&mut self, root: &BlobId) -> Result<BlobId> {
        let mut done = std::mem::take(&mut self.rechunked);
        let r = rebuild(&mut Walker::new(self.src), root, self, &mut done);
        self.rechunked = done;
        r.map(|(new, ())| new)
    }

    /// Cuts the file of `content` again, reading its chunk ids one chunk list at a time.
    fn rechunk_file(&mut self, content: &Content) -> Result<Vec<BlobId>> {
        let ids = chunk_ids_iter(self.src, content);
        let mut reader = BlobReader { src: self.src, ids, buf: Vec::new(), pos: 0, error: None, reads: (0, 0) };
        let mut out = Vec::new();
        let mut failed = None;
        for c in self.dst.chunker().stream(&mut reader) {
            match c {
                // Stored as they come: memory stays at a few chunks.
                Ok(c) => out.push(self.w.store(BlobKind::Data, &c)?.0),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        self.reads.0 += reader.reads.0;
        self.reads.1 += reader.reads.1;
        if let Some(e) = failed {
            return Err(reader.error.take().unwrap_or_else(|| Error::Internal(format!("re-chunking: {e}"))));
        }
        Ok(out)
    }
}

/// The shared-chunker copy of one tree: each directory part is stored as read (same id), after
/// the blobs below it.
struct TreeCopy<'c, 'a, 'r> {
    c: &'c mut Copier<'a, 'r>,
    /// Per directory being walked: its parts as read.
    parts: Vec<Vec<(BlobId, Vec<u8>)>>,
}

impl Visitor for TreeCopy<'_, '_, '_> {
    fn enter(&mut self, _: &Path, _: &BlobId) -> Result<Control> {
        self.parts.push(Vec::new());
        Ok(Control::Descend)
    }

    fn tree_blob(&mut self, id: &BlobId, plain: &[u8]) {
        self.parts.last_mut().expect("entered").push((*id, plain.to_vec()));
    }

    fn fault(&mut self, _: &Path, tree: &BlobId, fault: DirFault, _: &Listing) -> Result<Control> {
        match fault {
            // Every part was read before the chain came back to one.
            DirFault::Loop(_) => Ok(Control::Descend),
            f => Err(f.into_error(tree)),
        }
    }

    fn node(&mut self, _: &Path, n: &Node) -> Result<Control> {
        match &n.kind {
            NodeKind::File { content: Content::Chunks(ids) } => {
                for d in ids {
                    self.c.copy_data(d)?;
                }
            }
            NodeKind::File { content: Content::Indirect { lists, .. } } => {
                for l in lists {
                    if !self.c.lists_done.insert(*l) {
                        continue;
                    }
                    let (plain, tb) = read_tree(self.c.src, l)?;
                    let TreeBlob::ChunkListV1 { ids } = tb else {
                        return Err(Error::corrupt_blob(BlobKind::Tree, *l, None, "expected a chunk list"));
                    };
                    for d in &ids {
                        self.c.copy_data(d)?;
                    }
                    self.c.w.store_with_id(BlobKind::Tree, *l, &plain)?;
                }
            }
            _ => {}
        }
        Ok(Control::Descend)
    }

    fn leave(&mut self, _: &Path, _: &BlobId) -> Result<()> {
        for (id, plain) in self.parts.pop().expect("entered").into_iter().rev() {
            self.c.w.store_with_id(BlobKind::Tree, id, &plain)?;
        }
        Ok(())
    }
}

/// The re-chunking copy: every file cut again, every directory written again.
impl Rebuilder for Copier<'_, '_> {
    type State = ();

    fn entry(&mut self, _: &Path, n: &mut Node, _: &mut ()) -> Result<()> {
        let NodeKind::File { content } = &n.kind else { return Ok(()) };
        if let Content::Inline(bytes) = content {
            if self.dst.config().inline_allowed() {
                return Ok(());
            }
            let mut ids = Vec::new();
            for c in self.dst.chunker().stream(&bytes[..]) {
                let c = c.map_err(|e| Error::Internal(format!("re-chunking: {e}")))?;
                ids.push(self.w.store(BlobKind::Data, &c)?.0);
            }
            n.kind = NodeKind::File { content: Content::Chunks(ids) };
            return Ok(());
        }
        // A file unchanged between snapshots has the same content: cut it once.
        let new_ids = match self.files.get(content) {
            Some(v) => v.clone(),
            None => {
                let content = content.clone();
                let v = self.rechunk_file(&content)?;
                self.files.insert(content, v.clone());
                v
            }
        };
        n.kind = NodeKind::File { content: write_content(self.w, new_ids)? };
        Ok(())
    }

    fn finish(&mut self, _: &BlobId, entries: Vec<Node>, _: &()) -> Result<BlobId> {
        write_dir(self.w, entries)
    }
}

/// Reads a file's content from the source, blob by blob.
struct BlobReader<'a> {
    src: &'a ReadRepository,
    ids: crate::trees::ChunkIds<'a>,
    buf: Vec<u8>,
    pos: usize,
    error: Option<Error>,
    reads: (u64, u64),
}

impl Read for BlobReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            let Some(id) = self.ids.next() else { return Ok(0) };
            match id.and_then(|id| self.src.read_blob(BlobKind::Data, &id)) {
                Ok(b) => {
                    self.reads.0 += 1;
                    self.reads.1 += b.len() as u64;
                    self.buf = b;
                    self.pos = 0;
                }
                Err(e) => {
                    let msg = e.to_string();
                    self.error = Some(e);
                    return Err(std::io::Error::other(msg));
                }
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
