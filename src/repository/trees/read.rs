//! Reading trees (format-spec §7): one tree blob with its plaintext, a directory across its
//! continuation blobs (§7.2), a file's chunk lists (§7.3). A failure says which blob failed and
//! how, so each caller can keep going, rebuild, or stop, as its operation needs.

use crate::error::{Error, Result};
use crate::id::{BlobId, BlobKind};
use crate::repository::ReadRepository;
use crate::tree::{Content, Node, TreeBlob};
use std::collections::HashSet;

impl ReadRepository {
    /// Reads a tree blob.
    pub fn read_tree_blob(&self, id: &BlobId) -> Result<TreeBlob> {
        read_tree(self, id).map(|(_, t)| t)
    }
}

/// Reads a tree blob: its plaintext (as stored, for a copy that keeps its id) and what it
/// decodes to.
pub fn read_tree(repo: &ReadRepository, id: &BlobId) -> Result<(Vec<u8>, TreeBlob)> {
    let plain = repo.read_blob(BlobKind::Tree, id)?;
    let tree = TreeBlob::decode(&plain).map_err(|e| Error::corrupt_blob(BlobKind::Tree, *id, None, e))?;
    Ok((plain, tree))
}

/// The entries of a directory, read across its parts.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    /// The entries, in the order of the parts (each part is in canonical order).
    pub nodes: Vec<Node>,
    /// The parts read, first to last.
    pub parts: Vec<BlobId>,
}

/// Why a directory could not be read whole (format-spec §7.2).
#[derive(Debug)]
pub enum DirFault {
    /// The chain of parts names this part a second time.
    Loop(BlobId),
    /// This part is a chunk list, not a directory listing.
    NotADirectory(BlobId),
    /// This part could not be read, opened or decoded.
    Unreadable(BlobId, Error),
    /// The directory lies below itself (the walk met it again on the way down).
    Cycle(BlobId),
}

impl DirFault {
    /// The blob at fault: the part that failed, or the directory met again.
    pub fn blob(&self) -> BlobId {
        match self {
            DirFault::Loop(b) | DirFault::NotADirectory(b) | DirFault::Unreadable(b, _) | DirFault::Cycle(b) => *b,
        }
    }

    /// The error that stands for the fault of the directory whose first part is `tree`.
    pub fn into_error(self, tree: &BlobId) -> Error {
        match self {
            DirFault::Loop(_) => Error::corrupt_blob(BlobKind::Tree, *tree, None, "continuation loop"),
            DirFault::NotADirectory(part) => {
                Error::corrupt_blob(BlobKind::Tree, part, None, "a chunk list where a directory was expected")
            }
            DirFault::Unreadable(_, e) => e,
            DirFault::Cycle(t) => Error::corrupt_blob(BlobKind::Tree, t, None, "a directory that contains itself"),
        }
    }
}

/// Reads the directory whose first part is `tree`, following `next` until none. `on_part` sees
/// each part as read, with its plaintext. Returns the entries of the parts read and, when the
/// directory could not be read whole, why: the entries are then those of the parts before the
/// failing one.
pub fn read_dir_with(
    repo: &ReadRepository,
    tree: &BlobId,
    on_part: &mut dyn FnMut(&BlobId, &[u8]),
) -> (Listing, Option<DirFault>) {
    let mut out = Listing::default();
    let mut next = Some(*tree);
    let mut seen = HashSet::new();
    while let Some(part) = next {
        if !seen.insert(part) {
            return (out, Some(DirFault::Loop(part)));
        }
        match read_tree(repo, &part) {
            Ok((plain, TreeBlob::DirV1 { nodes, next: n })) => {
                on_part(&part, &plain);
                out.nodes.extend(nodes);
                out.parts.push(part);
                next = n;
            }
            Ok((_, TreeBlob::ChunkListV1 { .. })) => return (out, Some(DirFault::NotADirectory(part))),
            Err(e) => return (out, Some(DirFault::Unreadable(part, e))),
        }
    }
    (out, None)
}

/// All entries of the directory whose first part is `tree`; any fault is an error.
pub fn read_dir(repo: &ReadRepository, tree: &BlobId) -> Result<Vec<Node>> {
    match read_dir_with(repo, tree, &mut |_, _| {}) {
        (l, None) => Ok(l.nodes),
        (_, Some(f)) => Err(f.into_error(tree)),
    }
}

/// Why a chunk list could not be read (format-spec §7.3).
#[derive(Debug)]
pub enum ListFault {
    /// The blob is a directory listing, not a chunk list.
    NotAList,
    /// The blob could not be read, opened or decoded.
    Unreadable(Error),
}

/// The data blob ids of one chunk list.
pub fn chunk_list(repo: &ReadRepository, id: &BlobId) -> std::result::Result<Vec<BlobId>, ListFault> {
    match read_tree(repo, id) {
        Ok((_, TreeBlob::ChunkListV1 { ids })) => Ok(ids),
        Ok((_, TreeBlob::DirV1 { .. })) => Err(ListFault::NotAList),
        Err(e) => Err(ListFault::Unreadable(e)),
    }
}

/// The data blob ids of a file's content, through its chunk lists; a list that cannot be read,
/// or lists whose length differs from the count, is an error.
pub fn chunk_ids(repo: &ReadRepository, content: &Content) -> Result<Vec<BlobId>> {
    let (lists, count) = match content {
        Content::Chunks(v) => return Ok(v.clone()),
        Content::Indirect { lists, count } => (lists, count),
    };
    let mut out = Vec::new();
    for l in lists {
        match chunk_list(repo, l) {
            Ok(ids) => out.extend(ids),
            Err(ListFault::NotAList) => {
                return Err(Error::corrupt_blob(BlobKind::Tree, *l, None, "expected a chunk list"))
            }
            Err(ListFault::Unreadable(e)) => return Err(e),
        }
    }
    if out.len() as u64 != *count {
        let first = lists.first().copied().unwrap_or(BlobId([0; 32]));
        return Err(Error::corrupt_blob(BlobKind::Tree, first, None, "chunk list count mismatch"));
    }
    Ok(out)
}
