//! Tree building: turns the walker's events into directory nodes and file contents, stored
//! through the one tree writer ([`crate::trees::write`]: split directories, format-spec §7.2,
//! and indirect chunk lists, §7.3).

use super::streams::Shared;
use super::{make_node, Body, Event, FileMsg, FileStatus, Owners, PathMessage};
use crate::cache::FileEntry;
use crate::error::{Error, Result};
use crate::filescache::{DirFile, DirFiles, RecordView};
use crate::repository::Repository;
use crate::snapshot::SourceRecord;
use crate::snapshot::Summary;
use crate::tree::{Content, Node, NodeKind};
use crate::trees::{write_content, write_dir};
use crate::writer::Writer;
use crossbeam_channel::RecvTimeoutError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub(super) struct Frame {
    pub(super) node: Option<Node>,
    pub(super) children: Vec<Node>,
    /// The directory's files cache record as this backup makes it, when the walker read one.
    pub(super) record: Option<Record>,
}

/// A directory's new files cache record, built as its files arrive.
pub(super) struct Record {
    dir: Vec<u8>,
    /// The record the walker read (`None`: none read).
    old: Option<Arc<RecordView>>,
    files: Vec<Kept>,
    /// An entry differs from the record read.
    changed: bool,
}

/// One file of a [`Record`] being built.
enum Kept {
    /// The entry at this index of the record read, recorded by this session: copied only when
    /// the record is written again (most directories of an unchanged backup are not).
    Old(usize, u64),
    New(DirFile),
}

impl Record {
    /// The files of the new record, in walk order.
    fn into_files(self) -> Vec<DirFile> {
        let old = self.old;
        self.files
            .into_iter()
            .filter_map(|k| match k {
                Kept::New(f) => Some(f),
                Kept::Old(i, session) => old.as_ref().and_then(|o| o.file(i)).map(|f| DirFile { session, ..f }),
            })
            .collect()
    }
}

pub(super) struct Builder<'a> {
    pub(super) writer: &'a Writer<'a>,
    pub(super) repo: &'a Repository,
    pub(super) stack: Vec<Frame>,
    pub(super) summary: Summary,
    pub(super) groups: HashMap<u64, Content>,
    pub(super) file_cache: Vec<(Vec<u8>, FileEntry)>,
    /// Directory records to write, and the files they hold.
    pub(super) dir_records: (Vec<(Vec<u8>, DirFiles)>, usize),
    /// This backup's session in the files cache.
    pub(super) session: u64,
    pub(super) errors: Vec<PathMessage>,
    /// The streams' state, shared with their runners.
    pub(super) shared: &'a Shared,
    /// Set from a signal handler to stop early.
    pub(super) cancel: Option<Arc<AtomicBool>>,
    /// The records of the streams read, with their place among the sources.
    pub(super) records: Vec<(usize, SourceRecord)>,
    /// Owner and group names of the nodes the builder makes ([`Event::Unchanged`]).
    pub(super) owners: Owners,
}

impl Builder<'_> {
    pub(super) fn push(&mut self, n: Node) {
        self.stack.last_mut().expect("root frame").children.push(n);
    }

    pub(super) fn flush_cache(&mut self, force: bool) -> Result<()> {
        if self.file_cache.len() >= 1000 || (force && !self.file_cache.is_empty()) {
            self.repo.cache().file_put_many(std::mem::take(&mut self.file_cache))?;
        }
        if self.dir_records.1 >= 1000 || (force && !self.dir_records.0.is_empty()) {
            self.repo.cache().dir_files_put_many(std::mem::take(&mut self.dir_records).0)?;
        }
        Ok(())
    }

    /// Queues a directory's new record when it differs from the one read (never on a dry run).
    pub(super) fn finish_record(&mut self, record: Option<Record>, dry_run: bool) -> Result<()> {
        let Some(mut r) = record else { return Ok(()) };
        if dry_run || (!r.changed && r.old.as_ref().map(|o| o.len()) == Some(r.files.len())) {
            return Ok(());
        }
        self.dir_records.1 += r.files.len() + 1;
        let dir = std::mem::take(&mut r.dir);
        self.dir_records.0.push((dir, DirFiles { files: r.into_files() }));
        self.flush_cache(false)
    }

    /// Counts an unchanged file and adds its node.
    fn unchanged(&mut self, node: Node) {
        self.summary.files_unchanged += 1;
        self.summary.bytes_processed += node.size;
        if node.hardlink != 0 {
            if let NodeKind::File { content } = &node.kind {
                self.groups.insert(node.hardlink, content.clone());
            }
        }
        self.push(node);
    }

    fn record(&mut self) -> Option<&mut Record> {
        self.stack.last_mut().and_then(|f| f.record.as_mut())
    }

    pub(super) fn event(&mut self, e: Event, dry_run: bool) -> Result<()> {
        match e {
            Event::EnterDir(n) => self.stack.push(Frame { node: Some(n), children: Vec::new(), record: None }),
            Event::Record { dir, old } => {
                if let Some(f) = self.stack.last_mut() {
                    let files = Vec::with_capacity(old.as_ref().map_or(0, |o| o.len()));
                    f.record = Some(Record { dir, old, files, changed: false });
                }
            }
            Event::LeaveDir => {
                let mut f = self.stack.pop().expect("balanced events");
                self.finish_record(f.record.take(), dry_run)?;
                let mut n = f.node.expect("a directory frame");
                n.kind = NodeKind::Dir { tree: write_dir(self.writer, f.children)? };
                n.size = 0;
                self.summary.dirs += 1;
                self.push(n);
            }
            Event::Stream { mut node, outcome } => {
                let done = loop {
                    match outcome.recv_timeout(Duration::from_millis(100)) {
                        Ok(Some(d)) => break d,
                        // It failed or was stopped: the pipeline tells the first failure.
                        Ok(None) | Err(RecvTimeoutError::Disconnected) => return Err(Error::Interrupted),
                        Err(RecvTimeoutError::Timeout) => {
                            if self.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
                                self.shared.stop_all();
                                return Err(Error::Interrupted);
                            }
                            if self.shared.stopped() {
                                return Err(Error::Interrupted);
                            }
                        }
                    }
                };
                node.size = done.size;
                node.kind = NodeKind::File { content: done.content };
                self.summary.files_new += 1;
                self.summary.bytes_processed += done.size;
                self.records.push((done.index, done.record));
                self.push(node);
            }
            Event::Node(n) => {
                self.summary.other += 1;
                self.push(n);
            }
            Event::Cached { node, entry, session, restamped } => {
                if let Some(r) = self.record() {
                    r.files.push(Kept::New(DirFile { name: node.name.clone(), entry, session }));
                    r.changed |= restamped;
                }
                self.unchanged(node);
            }
            Event::Unchanged { st, index, hardlink, session, restamped } => {
                // The walker compared the entry; it is decoded here, off the walk.
                let names = self.owners.names(st.uid, st.gid);
                let Some(r) = self.record() else {
                    return Err(Error::Internal("an unchanged file outside a directory's record".into()));
                };
                let Some(f) = r.old.as_ref().and_then(|o| o.file(index)) else {
                    let dir = String::from_utf8_lossy(&r.dir).into_owned();
                    return Err(Error::Internal(format!("the files cache record of {dir:?} lost its entry {index}")));
                };
                r.files.push(Kept::Old(index, session));
                r.changed |= restamped;
                let content = match f.entry.inline {
                    Some(b) => Content::Inline(b),
                    None => Content::Chunks(f.entry.content),
                };
                let mut node = make_node(f.name, &st, NodeKind::File { content }, names);
                node.hardlink = hardlink;
                node.xattrs = f.entry.xattrs;
                self.unchanged(node);
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
            Event::File { mut node, path, status, body, cache } => {
                let (ids, inline, size, error) = match body {
                    Body::Whole(w) => (Vec::new(), w.inline, w.size, w.error),
                    Body::Channel(msgs) => {
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
                        (ids, None, size, error)
                    }
                };
                // A file read anew changes its directory's record.
                if let Some(r) = self.record() {
                    r.changed = true;
                }
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
                        c.inline = inline.clone();
                        let session = self.session;
                        match self.record() {
                            Some(r) => r.files.push(Kept::New(DirFile { name: node.name.clone(), entry: c, session })),
                            None => {
                                self.file_cache.push((path, c));
                                self.flush_cache(false)?;
                            }
                        }
                    }
                }
                let content = match inline {
                    Some(b) => Content::Inline(b),
                    None => write_content(self.writer, ids)?,
                };
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
