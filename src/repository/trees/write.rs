//! Writing trees (format-spec §7.2, §7.3): a directory's nodes become tree blobs, split into
//! parts when large; a long chunk list becomes chunk-list blobs. The blobs go to a [`TreeSink`]:
//! a writer stores them, a dry pass only names them.

use crate::error::Result;
use crate::id::{BlobId, BlobKind};
use crate::repository::ReadRepository;
use crate::tree::{self, Content, Node, TreeBlob};
use crate::writer::Writer;

/// Where tree blobs go.
pub trait TreeSink {
    /// Takes a tree blob's plaintext; returns its content id.
    fn put(&self, plain: &[u8]) -> Result<BlobId>;
}

impl TreeSink for Writer<'_> {
    fn put(&self, plain: &[u8]) -> Result<BlobId> {
        self.store(BlobKind::Tree, plain).map(|(id, _)| id)
    }
}

/// Names tree blobs without storing them (a pass that only plans).
pub struct IdsOnly<'r>(pub &'r ReadRepository);

impl TreeSink for IdsOnly<'_> {
    fn put(&self, plain: &[u8]) -> Result<BlobId> {
        Ok(self.0.keys().content_id(plain))
    }
}

/// Stores a directory: its nodes in canonical order (sorted here), cut into parts of
/// [`tree::MAX_NODES_PER_BLOB`] chained by `next`, the last part first; a part also ends before
/// the node whose inline content would take the part's inline bytes above
/// [`tree::MAX_INLINE_PER_PART`] (format-spec §7.2). Returns the id of the first part; an empty
/// directory is one empty part.
pub fn write_dir(sink: &dyn TreeSink, mut nodes: Vec<Node>) -> Result<BlobId> {
    tree::canonicalize(&mut nodes);
    let mut parts: Vec<Vec<Node>> = Vec::new();
    loop {
        let cut = part_len(&nodes);
        if cut == nodes.len() {
            break;
        }
        let rest = nodes.split_off(cut);
        parts.push(std::mem::replace(&mut nodes, rest));
    }
    parts.push(nodes);
    let mut next = None;
    for part in parts.into_iter().rev() {
        next = Some(sink.put(&TreeBlob::DirV1 { nodes: part, next }.encode())?);
    }
    Ok(next.expect("at least one part"))
}

/// How many of `nodes` (canonical order) the next part takes (format-spec §7.2): at most
/// [`tree::MAX_NODES_PER_BLOB`], and no more than keep its inline bytes within
/// [`tree::MAX_INLINE_PER_PART`] (always at least one node).
pub fn part_len(nodes: &[Node]) -> usize {
    let mut inline = 0usize;
    for (i, n) in nodes.iter().enumerate().take(tree::MAX_NODES_PER_BLOB) {
        if let crate::tree::NodeKind::File { content: Content::Inline(b) } = &n.kind {
            inline += b.len();
            if inline > tree::MAX_INLINE_PER_PART && i > 0 {
                return i;
            }
        }
    }
    nodes.len().min(tree::MAX_NODES_PER_BLOB)
}

/// [`write_content`] fed one id at a time: holds at most one chunk list of ids, whatever the
/// length of the content, and writes the same blobs.
pub struct ContentWriter<'s> {
    sink: &'s dyn TreeSink,
    pending: Vec<BlobId>,
    lists: Vec<BlobId>,
    count: u64,
}

impl<'s> ContentWriter<'s> {
    /// A content with no ids yet, its chunk lists going to `sink`.
    pub fn new(sink: &'s dyn TreeSink) -> Self {
        ContentWriter { sink, pending: Vec::new(), lists: Vec::new(), count: 0 }
    }

    /// Appends `id`.
    pub fn push(&mut self, id: BlobId) -> Result<()> {
        self.pending.push(id);
        self.count += 1;
        if self.pending.len() == tree::CHUNK_LIST_LEN {
            let ids = std::mem::take(&mut self.pending);
            self.lists.push(self.sink.put(&TreeBlob::ChunkListV1 { ids }.encode())?);
        }
        Ok(())
    }

    /// Ids appended so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The content: as [`write_content`] of every id appended.
    pub fn finish(mut self) -> Result<Content> {
        if self.lists.is_empty() && self.pending.len() <= tree::MAX_DIRECT_CHUNKS {
            return Ok(Content::Chunks(self.pending));
        }
        if !self.pending.is_empty() {
            let ids = std::mem::take(&mut self.pending);
            self.lists.push(self.sink.put(&TreeBlob::ChunkListV1 { ids }.encode())?);
        }
        Ok(Content::Indirect { lists: self.lists, count: self.count })
    }
}

/// A file's content from its data blob ids: the ids themselves up to
/// [`tree::MAX_DIRECT_CHUNKS`], else chunk lists of [`tree::CHUNK_LIST_LEN`] ids.
pub fn write_content(sink: &dyn TreeSink, ids: Vec<BlobId>) -> Result<Content> {
    if ids.len() <= tree::MAX_DIRECT_CHUNKS {
        return Ok(Content::Chunks(ids));
    }
    let count = ids.len() as u64;
    let mut lists = Vec::new();
    for part in ids.chunks(tree::CHUNK_LIST_LEN) {
        lists.push(sink.put(&TreeBlob::ChunkListV1 { ids: part.to_vec() }.encode())?);
    }
    Ok(Content::Indirect { lists, count })
}
