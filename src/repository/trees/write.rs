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
/// [`tree::MAX_NODES_PER_BLOB`] chained by `next`, the last part first. Returns the id of the
/// first part; an empty directory is one empty part.
pub fn write_dir(sink: &dyn TreeSink, mut nodes: Vec<Node>) -> Result<BlobId> {
    tree::canonicalize(&mut nodes);
    let mut parts: Vec<Vec<Node>> = Vec::new();
    while nodes.len() > tree::MAX_NODES_PER_BLOB {
        let rest = nodes.split_off(tree::MAX_NODES_PER_BLOB);
        parts.push(std::mem::replace(&mut nodes, rest));
    }
    parts.push(nodes);
    let mut next = None;
    for part in parts.into_iter().rev() {
        next = Some(sink.put(&TreeBlob::DirV1 { nodes: part, next }.encode())?);
    }
    Ok(next.expect("at least one part"))
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
