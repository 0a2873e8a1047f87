//! Reading trees from any source of tree blobs (format-spec §7): a directory across its
//! continuation parts (§7.2, names strictly increasing across all parts), a file's chunk ids
//! through its chunk lists one list at a time (§7.3), within the reference's limits (§7.5). Pure:
//! the [`TreeSource`] does the reading. A failure says which blob failed and how, so each caller
//! can keep going, rebuild, or stop, as its operation needs.

use crate::error::{Error, Result};
use crate::id::{BlobId, BlobKind};
use crate::tree::{self, Content, Node, TreeBlob, CHUNK_LIST_LEN, MAX_DIR_PARTS};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Where tree blobs come from: a repository, or a map in memory.
pub trait TreeSource {
    /// The plaintext of tree blob `id` and what it decodes to ([`TreeBlob::decode`]); an error
    /// names the blob.
    fn load_tree(&self, id: &BlobId) -> Result<(Vec<u8>, TreeBlob)>;
}

/// Tree blobs in memory, by id, as plaintext. Ids are taken as given, not verified against the
/// content (tests of what content ids rule out, such as cycles; fuzzing).
impl TreeSource for HashMap<BlobId, Vec<u8>> {
    fn load_tree(&self, id: &BlobId) -> Result<(Vec<u8>, TreeBlob)> {
        let plain = self.get(id).ok_or_else(|| Error::corrupt_blob(BlobKind::Tree, *id, None, "not stored"))?;
        let t = TreeBlob::decode(plain).map_err(|e| Error::corrupt_blob(BlobKind::Tree, *id, None, e))?;
        Ok((plain.clone(), t))
    }
}

/// The entries of a directory, read across its parts.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    /// The entries, in the order of the parts (each part is in canonical order).
    pub nodes: Vec<Node>,
    /// The parts read, first to last.
    pub parts: Vec<BlobId>,
}

/// Why a directory could not be read whole, or may not be used as read (format-spec §7.2, §7.5).
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
    /// This part's first name is not after the last name of the parts before it: names do not
    /// strictly increase across the parts. Every part was read (the listing holds them all).
    Order(BlobId),
    /// This part is one more than [`MAX_DIR_PARTS`] (or the walk's limit) allows.
    TooManyParts(BlobId),
    /// The directory lies deeper than the walk's depth limit; it was not read.
    TooDeep(BlobId),
}

impl DirFault {
    /// The blob at fault: the part that failed, or the directory met again or too deep.
    pub fn blob(&self) -> BlobId {
        match self {
            DirFault::Loop(b)
            | DirFault::NotADirectory(b)
            | DirFault::Unreadable(b, _)
            | DirFault::Cycle(b)
            | DirFault::Order(b)
            | DirFault::TooManyParts(b)
            | DirFault::TooDeep(b) => *b,
        }
    }

    /// The error that stands for the fault of the directory whose first part is `tree`.
    pub fn into_error(self, tree: &BlobId) -> Error {
        let corrupt = |b: BlobId, why: String| Error::corrupt_blob(BlobKind::Tree, b, None, why);
        match self {
            DirFault::Loop(_) => corrupt(*tree, "continuation loop".into()),
            DirFault::NotADirectory(part) => corrupt(part, "a chunk list where a directory was expected".into()),
            DirFault::Unreadable(_, e) => e,
            DirFault::Cycle(t) => corrupt(t, "a directory that contains itself".into()),
            DirFault::Order(part) => corrupt(
                part,
                format!(
                    "a part of directory tree {tree} whose first name does not follow the previous part's last: \
                     names must strictly increase across all parts (format-spec §7.2)"
                ),
            ),
            DirFault::TooManyParts(part) => corrupt(
                part,
                format!(
                    "directory tree {tree} has more parts than the limit (the reference's is {MAX_DIR_PARTS}, \
                     format-spec §7.5)"
                ),
            ),
            DirFault::TooDeep(t) => corrupt(
                t,
                format!("a directory deeper than the limit (the reference's is {}, format-spec §7.5)", tree::MAX_DEPTH),
            ),
        }
    }

    /// [`DirFault::into_error`], naming the directory's path too.
    pub fn error_at(self, tree: &BlobId, path: &Path) -> Error {
        match self.into_error(tree) {
            Error::Corrupt { object, reason } => {
                Error::Corrupt { object, reason: format!("{reason} (directory {})", path.display()) }
            }
            e => e,
        }
    }
}

/// Reads the directory whose first part is `tree`, following `next` until none, at most
/// `max_parts` parts. `on_part` sees each part as read, with its plaintext. Returns the entries of
/// the parts read and, when the directory could not be read whole or its names do not strictly
/// increase across its parts, why: the entries are then those of the parts before the failing
/// one (for [`DirFault::Order`], of all parts).
pub fn read_dir_with(
    src: &dyn TreeSource,
    tree: &BlobId,
    max_parts: usize,
    on_part: &mut dyn FnMut(&BlobId, &[u8]),
) -> (Listing, Option<DirFault>) {
    let mut out = Listing::default();
    let mut next = Some(*tree);
    let mut seen = HashSet::new();
    let mut order = None;
    while let Some(part) = next {
        if !seen.insert(part) {
            return (out, Some(DirFault::Loop(part)));
        }
        if out.parts.len() >= max_parts {
            return (out, Some(DirFault::TooManyParts(part)));
        }
        match src.load_tree(&part) {
            Ok((plain, TreeBlob::DirV1 { nodes, next: n })) => {
                on_part(&part, &plain);
                if let (None, Some(last), Some(first)) = (order, out.nodes.last(), nodes.first()) {
                    if first.name <= last.name {
                        order = Some(part);
                    }
                }
                out.nodes.extend(nodes);
                out.parts.push(part);
                next = n;
            }
            Ok((_, TreeBlob::ChunkListV1 { .. })) => return (out, Some(DirFault::NotADirectory(part))),
            Err(e) => return (out, Some(DirFault::Unreadable(part, e))),
        }
    }
    (out, order.map(DirFault::Order))
}

/// All entries of the directory whose first part is `tree`; any fault is an error.
pub fn read_dir(src: &dyn TreeSource, tree: &BlobId) -> Result<Vec<Node>> {
    match read_dir_with(src, tree, MAX_DIR_PARTS, &mut |_, _| {}) {
        (l, None) => Ok(l.nodes),
        (_, Some(f)) => Err(f.into_error(tree)),
    }
}

/// Why a chunk list could not be read (format-spec §7.3).
#[derive(Debug)]
pub enum ListFault {
    /// The blob is a directory listing, not a chunk list.
    NotAList,
    /// The blob could not be read, opened or decoded, or holds more than [`CHUNK_LIST_LEN`] ids.
    Unreadable(Error),
}

impl ListFault {
    /// The error that stands for the fault of chunk list `id`.
    pub fn into_error(self, id: &BlobId) -> Error {
        match self {
            ListFault::NotAList => Error::corrupt_blob(BlobKind::Tree, *id, None, "expected a chunk list"),
            ListFault::Unreadable(e) => e,
        }
    }
}

/// The data blob ids of one chunk list (at most [`CHUNK_LIST_LEN`]).
pub fn chunk_list(src: &dyn TreeSource, id: &BlobId) -> std::result::Result<Vec<BlobId>, ListFault> {
    match src.load_tree(id) {
        Ok((_, TreeBlob::ChunkListV1 { ids })) if ids.len() > CHUNK_LIST_LEN => Err(ListFault::Unreadable(
            Error::corrupt_blob(BlobKind::Tree, *id, None, format!("a chunk list of {} ids", ids.len())),
        )),
        Ok((_, TreeBlob::ChunkListV1 { ids })) => Ok(ids),
        Ok((_, TreeBlob::DirV1 { .. })) => Err(ListFault::NotAList),
        Err(e) => Err(ListFault::Unreadable(e)),
    }
}

/// The data blob ids of a file's content, in order, read one chunk list at a time: at most one
/// list is in memory. An inline content (§7.3) names none: a reader of the file's bytes takes
/// them from [`Content::inline`]. A list that cannot be read, a shape beyond §7.3 and [`tree::check_indirect`],
/// or lists whose total length differs from the count, is an error (the last item).
pub struct ChunkIds<'a> {
    src: &'a dyn TreeSource,
    direct: std::slice::Iter<'a, BlobId>,
    lists: std::slice::Iter<'a, BlobId>,
    first_list: Option<BlobId>,
    count: u64,
    seen: u64,
    current: std::vec::IntoIter<BlobId>,
    pending: Option<Error>,
    done: bool,
}

/// Streams the data blob ids of `content` ([`ChunkIds`]).
pub fn chunk_ids_iter<'a>(src: &'a dyn TreeSource, content: &'a Content) -> ChunkIds<'a> {
    let (direct, lists, count): (&[BlobId], &[BlobId], u64) = match content {
        Content::Chunks(v) => (v, &[], 0),
        Content::Indirect { lists, count } => (&[], lists, *count),
        // Its bytes are in the node (§7.3): it names no blob.
        Content::Inline(_) => (&[], &[], 0),
    };
    let first_list = lists.first().copied();
    let pending = match content {
        Content::Indirect { lists, count } => tree::check_indirect(lists, *count)
            .err()
            .map(|e| Error::corrupt_blob(BlobKind::Tree, first_list.unwrap_or(BlobId([0; 32])), None, e)),
        Content::Chunks(_) | Content::Inline(_) => None,
    };
    ChunkIds {
        src,
        direct: direct.iter(),
        lists: lists.iter(),
        first_list,
        count,
        seen: 0,
        current: Vec::new().into_iter(),
        pending,
        done: false,
    }
}

impl ChunkIds<'_> {
    fn fail(&mut self, e: Error) -> Option<Result<BlobId>> {
        self.done = true;
        Some(Err(e))
    }

    fn mismatch(&self) -> Error {
        let first = self.first_list.unwrap_or(BlobId([0; 32]));
        Error::corrupt_blob(
            BlobKind::Tree,
            first,
            None,
            format!("chunk list count mismatch: the content says {}", self.count),
        )
    }
}

impl Iterator for ChunkIds<'_> {
    type Item = Result<BlobId>;

    fn next(&mut self) -> Option<Result<BlobId>> {
        if self.done {
            return None;
        }
        if let Some(e) = self.pending.take() {
            return self.fail(e);
        }
        if let Some(id) = self.direct.next() {
            return Some(Ok(*id));
        }
        loop {
            if let Some(id) = self.current.next() {
                self.seen += 1;
                if self.seen > self.count {
                    let e = self.mismatch();
                    return self.fail(e);
                }
                return Some(Ok(id));
            }
            let Some(l) = self.lists.next() else {
                self.done = true;
                if self.seen != self.count {
                    return Some(Err(self.mismatch()));
                }
                return None;
            };
            match chunk_list(self.src, l) {
                Ok(ids) => self.current = ids.into_iter(),
                Err(f) => {
                    let e = f.into_error(l);
                    return self.fail(e);
                }
            }
        }
    }
}

/// The data blob ids of a file's content, collected ([`chunk_ids_iter`] streams them instead).
pub fn chunk_ids(src: &dyn TreeSource, content: &Content) -> Result<Vec<BlobId>> {
    chunk_ids_iter(src, content).collect()
}
