//! Tree building: turns the walker's events into directory nodes, stores directories as tree
//! blobs (split when large, format-spec §7.2) and long chunk lists as indirect lists (§7.3).

use super::{Event, FileMsg, FileStatus, PathMessage};
use crate::cache::FileEntry;
use crate::error::{Error, Result};
use crate::id::{BlobId, BlobKind};
use crate::repository::Repository;
use crate::snapshot::Summary;
use crate::tree::{self, Content, Node, NodeKind, TreeBlob};
use crate::writer::Writer;
use std::collections::HashMap;

/// Stores a directory's nodes as tree blobs (continued across blobs when large).
pub fn store_dir(writer: &Writer, mut nodes: Vec<Node>) -> Result<BlobId> {
    tree::canonicalize(&mut nodes);
    let mut parts: Vec<Vec<Node>> = Vec::new();
    while nodes.len() > tree::MAX_NODES_PER_BLOB {
        let rest = nodes.split_off(tree::MAX_NODES_PER_BLOB);
        parts.push(std::mem::replace(&mut nodes, rest));
    }
    parts.push(nodes);
    let mut next = None;
    for part in parts.into_iter().rev() {
        let t = TreeBlob::DirV1 { nodes: part, next };
        next = Some(writer.store(BlobKind::Tree, &t.encode())?.0);
    }
    Ok(next.expect("at least one part"))
}

/// Content of a file from its chunk ids, through chunk-list blobs when long.
pub fn make_content(writer: &Writer, ids: Vec<BlobId>) -> Result<Content> {
    if ids.len() <= tree::MAX_DIRECT_CHUNKS {
        return Ok(Content::Chunks(ids));
    }
    let count = ids.len() as u64;
    let mut lists = Vec::new();
    for part in ids.chunks(tree::CHUNK_LIST_LEN) {
        let t = TreeBlob::ChunkListV1 { ids: part.to_vec() };
        lists.push(writer.store(BlobKind::Tree, &t.encode())?.0);
    }
    Ok(Content::Indirect { lists, count })
}

pub(super) struct Frame {
    pub(super) node: Option<Node>,
    pub(super) children: Vec<Node>,
}

pub(super) struct Builder<'a> {
    pub(super) writer: &'a Writer<'a>,
    pub(super) repo: &'a Repository,
    pub(super) stack: Vec<Frame>,
    pub(super) summary: Summary,
    pub(super) groups: HashMap<u64, Content>,
    pub(super) file_cache: Vec<(Vec<u8>, FileEntry)>,
    pub(super) errors: Vec<PathMessage>,
}

impl Builder<'_> {
    pub(super) fn push(&mut self, n: Node) {
        self.stack.last_mut().expect("root frame").children.push(n);
    }

    pub(super) fn flush_cache(&mut self, force: bool) -> Result<()> {
        if self.file_cache.len() >= 1000 || (force && !self.file_cache.is_empty()) {
            self.repo.cache().file_put_many(std::mem::take(&mut self.file_cache))?;
        }
        Ok(())
    }

    pub(super) fn event(&mut self, e: Event, dry_run: bool) -> Result<()> {
        match e {
            Event::EnterDir(n) => self.stack.push(Frame { node: Some(n), children: Vec::new() }),
            Event::LeaveDir => {
                let f = self.stack.pop().expect("balanced events");
                let mut n = f.node.expect("a directory frame");
                n.kind = NodeKind::Dir { tree: store_dir(self.writer, f.children)? };
                n.size = 0;
                self.summary.dirs += 1;
                self.push(n);
            }
            Event::Node(n) => {
                self.summary.other += 1;
                self.push(n);
            }
            Event::Cached { node } => {
                self.summary.files_unchanged += 1;
                self.summary.bytes_processed += node.size;
                if node.hardlink != 0 {
                    if let NodeKind::File { content } = &node.kind {
                        self.groups.insert(node.hardlink, content.clone());
                    }
                }
                self.push(node);
            }
            Event::HardlinkRef { mut node, group, path } => match self.groups.get(&group) {
                Some(c) => {
                    node.kind = NodeKind::File { content: c.clone() };
                    self.summary.bytes_processed += node.size;
                    self.push(node);
                }
                None => {
                    // The group's first name could not be read: this name is missing too, and says so.
                    self.errors.push(PathMessage {
                        path: String::from_utf8_lossy(&path).into_owned(),
                        message: "hard link to a file that could not be read; not in the snapshot".into(),
                    });
                }
            },
            Event::File { mut node, path, status, msgs, cache } => {
                let mut ids = Vec::new();
                let mut outcome = None;
                for m in msgs {
                    match m {
                        FileMsg::Chunk(rx) => {
                            let id = rx.recv().map_err(|_| Error::Internal("a worker stopped".into()))??;
                            ids.push(id);
                        }
                        FileMsg::Done { size, error } => outcome = Some((size, error)),
                    }
                }
                let Some((size, error)) = outcome else {
                    return Err(Error::Interrupted);
                };
                if let Some(e) = error {
                    self.errors.push(PathMessage { path: String::from_utf8_lossy(&path).into_owned(), message: e });
                    return Ok(());
                }
                node.size = size;
                match status {
                    FileStatus::New => self.summary.files_new += 1,
                    FileStatus::Changed => self.summary.files_changed += 1,
                }
                self.summary.bytes_processed += size;
                if let (Some(mut c), false) = (cache, dry_run) {
                    if c.size == size {
                        c.content = ids.clone();
                        self.file_cache.push((path, c));
                        self.flush_cache(false)?;
                    }
                }
                let content = make_content(self.writer, ids)?;
                if node.hardlink != 0 {
                    self.groups.insert(node.hardlink, content.clone());
                }
                node.kind = NodeKind::File { content };
                self.push(node);
            }
        }
        Ok(())
    }
}
