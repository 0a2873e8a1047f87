//! The walker: reads the source tree in order, skips what the options exclude, takes unchanged
//! files from the files cache, chunks the rest and sends events to the tree builder.

use super::ahead::{self, Opened, ReadAhead, Window};
use super::read_small;
use super::streams::Outcome;
use super::{
    cancelled, make_node, BackupOptions, Body, ChunkJob, Event, FileMsg, FileStatus, Jobs, Owners, PathMessage,
    Progress, Seen, Whole, EVENT_BATCH, JOB_BATCH_BYTES,
};
use crate::cache::FileEntry;
use crate::filescache::RecordView;
use crate::fsmeta::{self, Stat};
use crate::id::BlobId;
use crate::repository::{identity, Repository};
use crate::time::Time;
use crate::tree::{Content, Node, NodeKind};
use crate::writer::Writer;
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What the walker knows of one directory's files before it examines them.
pub(super) struct DirLookup {
    /// The directory's record, if one was read (shared with the builder, which keeps the
    /// entries that stand unchanged by their index).
    pub(super) files: Option<Arc<RecordView>>,
    /// No record, but the cache has per-path entries of an earlier version: look each file up.
    pub(super) by_path: bool,
    /// Where in the record the next file's search starts: the walk visits names in the
    /// record's order, so each search picks up where the last one stopped.
    pub(super) cursor: std::cell::Cell<usize>,
}

pub(super) struct Ctx<'a> {
    pub(super) repo: &'a Repository,
    pub(super) writer: &'a Writer<'a>,
    pub(super) opts: &'a BackupOptions,
    pub(super) progress: &'a dyn Progress,
    pub(super) jobs: Sender<Jobs>,
    /// Chunks read and not yet handed to the workers, and their bytes. Sent before every batch
    /// of events ([`Ctx::flush`]), so the builder never waits for a chunk still held here.
    pub(super) job_batch: Mutex<(Jobs, usize)>,
    /// Events go to the builder in batches: one wake-up per event cost a fifth of an unchanged
    /// backup, and one per file most of a first backup of small files. A file's event waits in
    /// the batch like any other: its chunks queue on its own channel, and when that is full the
    /// batch is sent first ([`Ctx::feed`]), so the builder reaches the file and drains it.
    pub(super) events: Sender<Vec<Event>>,
    pub(super) batch: Mutex<Vec<Event>>,
    pub(super) errors: Mutex<Vec<PathMessage>>,
    pub(super) warnings: Mutex<Vec<PathMessage>>,
    pub(super) bytes_read: &'a AtomicU64,
    pub(super) start: Time,
    pub(super) names: Mutex<Owners>,
    pub(super) hardlinks: Mutex<HashMap<(u64, u64), u64>>,
    /// This backup's session in the files cache (never 0).
    pub(super) session: u64,
    /// The sessions whose files cache entries need no blob lookups (empty when the writer does
    /// not trust the blob map).
    pub(super) trusted: HashSet<u64>,
    /// The cache holds per-path entries of an earlier version.
    pub(super) path_entries: bool,
    /// The read-ahead helpers' queue ([`ahead`]); `None`: the walker opens every file itself.
    pub(super) ahead: Option<ahead::Queue>,
}

impl Ctx<'_> {
    pub(super) fn error(&self, path: &Path, msg: impl ToString) {
        let m = msg.to_string();
        self.progress.error(path, &m);
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(PathMessage { path: path.display().to_string(), message: m });
    }

    pub(super) fn warning(&self, path: &Path, msg: impl ToString) {
        let m = msg.to_string();
        self.progress.warning(path, &m);
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(PathMessage { path: path.display().to_string(), message: m });
    }

    pub(super) fn send(&self, e: Event) -> bool {
        let full = {
            let mut b = self.batch.lock().unwrap_or_else(|p| p.into_inner());
            b.push(e);
            b.len() >= EVENT_BATCH
        };
        if full {
            return self.flush();
        }
        true
    }

    /// Queues a message of the file being read; false when the builder has stopped. When the
    /// file's channel is full the builder must take from it: the queued events go first.
    pub(super) fn feed(&self, msgs: &Sender<FileMsg>, m: FileMsg) -> bool {
        match msgs.try_send(m) {
            Ok(()) => true,
            Err(TrySendError::Full(m)) => self.flush() && msgs.send(m).is_ok(),
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Sends the queued chunks, then the queued events; false when the builder or the workers
    /// have stopped.
    pub(super) fn flush(&self) -> bool {
        if !self.flush_jobs() {
            return false;
        }
        // The next batch is allocated whole: grown from empty, each batch cost six reallocations
        // and copies of its events on the walker's thread.
        let mut guard = self.batch.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_empty() {
            return true;
        }
        let b = std::mem::replace(&mut *guard, Vec::with_capacity(EVENT_BATCH));
        drop(guard);
        self.events.send(b).is_ok()
    }

    /// Queues a chunk for the workers, handing the queue over when it is full; false when the
    /// workers have stopped.
    fn job(&self, job: ChunkJob) -> bool {
        let full = {
            let mut b = self.job_batch.lock().unwrap_or_else(|p| p.into_inner());
            b.1 += job.data.len();
            b.0.push(job);
            b.0.len() >= EVENT_BATCH || b.1 >= JOB_BATCH_BYTES
        };
        !full || self.flush_jobs()
    }

    /// Hands the queued chunks to the workers; false when they have stopped.
    fn flush_jobs(&self) -> bool {
        let mut guard = self.job_batch.lock().unwrap_or_else(|p| p.into_inner());
        if guard.0.is_empty() {
            return true;
        }
        let (jobs, _) = std::mem::replace(&mut *guard, (Vec::with_capacity(EVENT_BATCH), 0));
        drop(guard);
        self.jobs.send(jobs).is_ok()
    }

    pub(super) fn xattrs(&self, path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
        match fsmeta::read_xattrs(path) {
            Ok(x) => x,
            Err(e) => {
                self.warning(path, format!("extended attributes not read: {e}"));
                Vec::new()
            }
        }
    }

    pub(super) fn node(&self, name: &[u8], st: &Stat, kind: NodeKind, path: &Path, xattrs: bool) -> Node {
        let names = self.names.lock().unwrap_or_else(|p| p.into_inner()).names(st.uid, st.gid);
        let mut node = make_node(name.to_vec(), st, kind, names);
        if xattrs {
            node.xattrs = self.xattrs(path);
        }
        node
    }

    /// Reads `reader` into chunks, handing them to the workers, and reports on `msgs`.
    pub(super) fn read_chunks(
        &self,
        reader: impl Read,
        size_hint: Option<u64>,
        msgs: &Sender<FileMsg>,
    ) -> (u64, Option<String>) {
        let mut stream = self.repo.chunker().stream_with_hint(reader, size_hint);
        let mut last = 0;
        loop {
            if cancelled(self.opts) {
                return (stream.bytes_read(), Some("interrupted".into()));
            }
            let next = stream.next();
            let now = stream.bytes_read();
            self.progress.bytes(now - last);
            self.bytes_read.fetch_add(now - last, Ordering::Relaxed);
            last = now;
            match next {
                None => return (now, None),
                Some(Err(e)) => return (now, Some(format!("read failed: {e}"))),
                Some(Ok(data)) => {
                    let (tx, rx) = bounded(1);
                    if !self.job(ChunkJob { data, reply: tx }) || !self.feed(msgs, FileMsg::Chunk(rx)) {
                        return (now, Some("backup stopped".into()));
                    }
                }
            }
        }
    }

    /// Stores the regular file `name` of `dir` (at `path`), examined as `st`: from the files
    /// cache when unchanged, else read, through `opened` when the walk examined it through its
    /// handle ([`Self::by_handle`]; with what a helper read of it ahead, if it did), else through
    /// a handle opened and checked to be that object.
    pub(super) fn file(
        &self,
        dir: &File,
        path: &Path,
        name: &[u8],
        st: &Stat,
        look: Option<&DirLookup>,
        opened: Option<(File, Option<ReadAhead>)>,
    ) -> bool {
        let mut hardlink = 0;
        if st.nlink > 1 {
            let mut h = self.hardlinks.lock().unwrap_or_else(|p| p.into_inner());
            let next = h.len() as u64 + 1;
            match h.get(&(st.dev, st.ino)) {
                Some(&g) => {
                    drop(h);
                    // Extended attributes are read here: a later name has no files cache entry.
                    let mut node = self.node(name, st, NodeKind::File { content: Content::Chunks(vec![]) }, path, true);
                    node.hardlink = g;
                    return self.send(Event::HardlinkRef {
                        node,
                        group: g,
                        path: path.as_os_str().as_bytes().to_vec(),
                    });
                }
                None => {
                    h.insert((st.dev, st.ino), next);
                    hardlink = next;
                }
            }
        }
        self.progress.file(path, st.size);
        let entry = FileEntry {
            size: st.size,
            mtime: st.mtime.as_nanos(),
            ctime: st.ctime.as_nanos(),
            inode: st.ino,
            dev: st.dev,
            content: vec![],
            xattrs: vec![],
            inline: None,
        };
        let mut status = FileStatus::New;
        if !self.opts.force {
            let prev = self.previous(look, name, path.as_os_str().as_bytes());
            if let Some((seen, session)) = prev.seen() {
                if seen == Seen::of_entry(&entry) {
                    if let Some(e) = self.reuse(name, st, path, hardlink, prev, session) {
                        return self.send(e);
                    }
                }
                status = FileStatus::Changed;
            }
        }
        // Extended attributes are read below, from the open file.
        let mut node = self.node(name, st, NodeKind::File { content: Content::Chunks(vec![]) }, path, false);
        node.hardlink = hardlink;
        let (f, ahead) = match opened {
            Some((f, ahead)) => (f, ahead),
            None => match self.open_checked(path, st, || fsmeta::open_file_for_read(dir, OsStr::from_bytes(name))) {
                Some(f) => (f, None),
                None => return true,
            },
        };
        let (xattrs, small) = match ahead {
            Some(a) => (a.xattrs, Some(a.small)),
            None => (fsmeta::read_xattrs_fd(&f), None),
        };
        node.xattrs = self.xattrs_or_warn(path, xattrs);
        let entry = FileEntry { xattrs: node.xattrs.clone(), ..entry };
        // Racily clean files are not trusted to the files cache: a change within the same timestamp
        // tick as the last one would not move mtime or ctime. The tick is taken as 2 s where the
        // file system keeps whole seconds (FAT, some network file systems), else 50 ms.
        let tick: i128 = if st.mtime.nanos == 0 && st.ctime.nanos == 0 { 2_000_000_000 } else { 50_000_000 };
        let since = self.start.as_nanos() - tick;
        let racy = st.mtime.as_nanos() >= since || st.ctime.as_nanos() >= since;
        let cache = (!racy).then_some(entry);
        // A small file is read whole first and goes to the builder with its bytes; a larger one
        // (or one that grew past the threshold since the `lstat`) is chunked as it is read.
        let small = small.unwrap_or_else(|| read_small(&f, st, self.inline_max()));
        let prefix = match small.whole {
            None => Vec::new(),
            Some(Whole::Grown(prefix)) => prefix,
            Some(Whole::Read(read)) => {
                self.count_read(read.size);
                if read.error.is_none() {
                    self.warn_if_changed(path, small.after.as_ref(), st, read.size);
                }
                let body = Body::Whole(read);
                let path = path.as_os_str().as_bytes().to_vec();
                return self.send(Event::File { node, path, status, body, cache });
            }
        };
        // The channel's slots are allocated up front: size it for the chunks this file can have
        // (a 1 KiB file needs 2, not 256), so many small files do not churn the allocator.
        let min_chunk = u64::from(self.repo.chunker().params().min_size.max(1));
        let slots = (st.size / min_chunk + 2).min(256) as usize;
        let (mtx, mrx) = bounded(slots);
        let pbytes = path.as_os_str().as_bytes().to_vec();
        if !self.send(Event::File { node, path: pbytes, status, body: Body::Channel(mrx), cache }) {
            return false;
        }
        let reader = std::io::Cursor::new(prefix).chain(fsmeta::Blocking(&f));
        let (size, error) = self.read_chunks(reader, Some(st.size), &mtx);
        if error.is_none() {
            self.check_unchanged(path, &f, st, size);
        }
        let _ = self.feed(&mtx, FileMsg::Done { size, error });
        true
    }

    /// Warns when the file `f` at `path`, examined as `st` and read to `size` bytes, shows
    /// another size or other times now, or was not `st.size` long.
    fn check_unchanged(&self, path: &Path, f: &File, st: &Stat, size: u64) {
        self.warn_if_changed(path, fsmeta::fstat(f).ok().as_ref(), st, size);
    }

    /// Warns when the file at `path`, examined as `st` and read to `size` bytes, showed another
    /// size or other times after the read (`after`; `None`: not known), or was not `st.size` long.
    fn warn_if_changed(&self, path: &Path, after: Option<&Stat>, st: &Stat, size: u64) {
        if let Some(after) = after {
            if after.size != st.size || after.mtime != st.mtime || after.ctime != st.ctime || size != st.size {
                self.warning(path, "file changed while it was read; the snapshot has what was read");
            }
        }
    }

    /// Opens what the walk examined as `st` at `path`, with `open`, and checks that the handle is
    /// that object (device and inode): a local user may have swapped the entry for a symlink or
    /// another file since the `lstat`. On failure the path goes on the error list and nothing of
    /// it is stored (README "Security model").
    fn open_checked(
        &self,
        path: &Path,
        st: &Stat,
        open: impl FnOnce() -> std::io::Result<(File, Stat)>,
    ) -> Option<File> {
        let (f, now) = match open() {
            Ok(f) => f,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                self.error(path, format!("replaced by a symlink after it was examined; not stored: {e}"));
                return None;
            }
            Err(e) => {
                self.error(path, format!("cannot open: {e}"));
                return None;
            }
        };
        if fsmeta::same_object(&now, st) {
            Some(f)
        } else {
            self.error(path, "replaced by another file after it was examined; not stored");
            None
        }
    }

    fn xattrs_of(&self, path: &Path, f: &File) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.xattrs_or_warn(path, fsmeta::read_xattrs_fd(f))
    }

    /// The extended attributes `read` gave, or none and a warning naming `path`.
    fn xattrs_or_warn(&self, path: &Path, read: std::io::Result<Vec<(Vec<u8>, Vec<u8>)>>) -> Vec<(Vec<u8>, Vec<u8>)> {
        match read {
            Ok(x) => x,
            Err(e) => {
                self.warning(path, format!("extended attributes not read: {e}"));
                Vec::new()
            }
        }
    }

    /// Walks the entry `name` of the open directory `dir` (at `path`); false when the backup
    /// must stop. Nothing below a path the user named is resolved through a symlink: entries are
    /// examined and opened relative to their parent's handle. `by_handle`: the entry is a
    /// regular file by its directory entry's type, in a directory the files cache has no record
    /// of, so it is examined through its handle first ([`Self::by_handle`]), opened by a
    /// read-ahead helper when `ahead` is its answer.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn entry(
        &self,
        dir: &File,
        path: &Path,
        name: &[u8],
        parent_dev: Option<u64>,
        look: Option<&DirLookup>,
        by_handle: bool,
        ahead: Option<Opened>,
    ) -> bool {
        if cancelled(self.opts) {
            return false;
        }
        if self.opts.excludes_path(path) {
            return true;
        }
        if by_handle {
            if let Some(go) = self.by_handle(dir, path, name, look, ahead) {
                return go;
            }
        }
        let oname = OsStr::from_bytes(name);
        let st = match fsmeta::lstat_at(dir, oname) {
            Ok(s) => s,
            Err(e) => {
                self.error(path, format!("cannot stat: {e}"));
                return true;
            }
        };
        if let Some(hook) = &self.opts.test_before_open {
            (hook.0)(path);
        }
        match fsmeta::file_type(st.mode) {
            libc::S_IFDIR => {
                if self.opts.skips_dir(path) {
                    return true;
                }
                if self.opts.stays_out(parent_dev, st.dev) {
                    // Recorded, not entered: nothing is read through it.
                    let node = self.node(name, &st, NodeKind::Dir { tree: BlobId([0; 32]) }, path, true);
                    return self.send(Event::EnterDir(node)) && self.send(Event::LeaveDir);
                }
                let open = || {
                    let d = fsmeta::open_dir_for_read(Some(dir), oname, false)?;
                    fsmeta::fstat(&d).map(|st| (d, st))
                };
                let Some(handle) = self.open_checked(path, &st, open) else {
                    return true;
                };
                let mut node = self.node(name, &st, NodeKind::Dir { tree: BlobId([0; 32]) }, path, false);
                node.xattrs = self.xattrs_of(path, &handle);
                if !self.send(Event::EnterDir(node)) {
                    return false;
                }
                if !self.children(&handle, path, st.dev) {
                    return false;
                }
                self.send(Event::LeaveDir)
            }
            libc::S_IFREG => {
                if self.opts.skips_file(st.size) {
                    return true;
                }
                self.file(dir, path, name, &st, look, None)
            }
            libc::S_IFLNK => match fsmeta::read_link_at(dir, oname) {
                Ok(target) => {
                    let n = self.node(name, &st, NodeKind::Symlink { target }, path, true);
                    self.send(Event::Node(n))
                }
                Err(e) => {
                    self.error(path, format!("cannot read link: {e}"));
                    true
                }
            },
            t => {
                let kind = match t {
                    libc::S_IFIFO => NodeKind::Fifo,
                    libc::S_IFCHR => NodeKind::CharDevice { rdev: st.rdev },
                    libc::S_IFBLK => NodeKind::BlockDevice { rdev: st.rdev },
                    _ => NodeKind::Socket,
                };
                let mut n = self.node(name, &st, kind, path, true);
                n.size = 0;
                self.send(Event::Node(n))
            }
        }
    }

    /// Stores the entry `name` of `dir` (at `path`) as the regular file a handle opened first
    /// shows (never through a symlink, never blocking: [`fsmeta::open_file_for_read`]) and its
    /// `fstat`: nothing of a file in a directory without a record can be reused, so the `lstat`
    /// only cost a second lookup of the name, and no window is left between examining and
    /// opening for a local user to swap the entry in. `None` when the open fails or the handle
    /// is not a regular file: the caller examines the entry by `lstat` as whatever it is now.
    /// `ahead`: a read-ahead helper's answer for the entry ([`ahead`]), which opened it the same
    /// way (and may have read it); without one, or with the helpers gone, it is opened here.
    fn by_handle(
        &self,
        dir: &File,
        path: &Path,
        name: &[u8],
        look: Option<&DirLookup>,
        ahead: Option<Opened>,
    ) -> Option<bool> {
        // A helper's answer comes with the hook already run (for a regular file).
        let hooked = ahead.is_some();
        let Opened { opened, read } = match ahead {
            Some(o) => o,
            None => Opened { opened: fsmeta::open_file_for_read(dir, OsStr::from_bytes(name)), read: None },
        };
        let (f, st) = opened.ok()?;
        if fsmeta::file_type(st.mode) != libc::S_IFREG {
            return None;
        }
        if let (Some(hook), false) = (&self.opts.test_before_open, hooked) {
            (hook.0)(path);
        }
        if self.opts.skips_file(st.size) {
            return Some(true);
        }
        Some(self.file(dir, path, name, &st, look, Some((f, read))))
    }

    /// Walks every entry of the open directory `handle` (at `path`, on device `dev`) in name
    /// order; false when the backup must stop.
    pub(super) fn children(&self, handle: &File, path: &Path, dev: u64) -> bool {
        match fsmeta::list_dir(handle) {
            Ok(mut names) => {
                names.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                let look = self.dir_lookup(path);
                let old = look.files.clone();
                if !self.send(Event::Record { dir: path.as_os_str().as_bytes().to_vec(), old }) {
                    return false;
                }
                // Nothing here to compare with: regular files are examined through their handles,
                // opened (and the small ones read) by the read-ahead helpers.
                let fresh = look.files.is_none() && !look.by_path;
                let mut window = match (&self.ahead, fresh) {
                    (Some(q), true) => Window::new(handle, q.clone(), self.opts, self.inline_max()),
                    _ => None,
                };
                let wanted = |p: &Path| !self.opts.excludes_path(p);
                for (i, (n, t)) in names.iter().enumerate() {
                    let (p, ahead) = match window.as_mut().and_then(|w| w.take(&names, path, i, wanted)) {
                        Some((p, opened)) => (p, Some(opened)),
                        None => (path.join(n), None),
                    };
                    let by_handle = fresh && *t == libc::DT_REG;
                    if !self.entry(handle, &p, n.as_bytes(), Some(dev), Some(&look), by_handle, ahead) {
                        return false;
                    }
                }
            }
            Err(e) => self.error(path, format!("cannot list: {e}")),
        }
        true
    }

    /// Walks the virtual directories that lead to the selected paths and the streams, from the
    /// open directory `dir` at `dir_path` (`None`: a directory made only for streams, or one that
    /// could not be opened). These are the paths the user named: symlinks in them are followed.
    pub(super) fn virtual_dir(&self, dir: Option<&File>, dir_path: &Path, children: &BTreeMap<Vec<u8>, Trie>) -> bool {
        for (name, child) in children {
            let path = dir_path.join(OsStr::from_bytes(name));
            if let Some(rx) = &child.stream {
                let node = stream_node(name, 0o600, Time::now(), NodeKind::File { content: Content::Chunks(vec![]) });
                if !self.send(Event::Stream { node, outcome: rx.clone() }) {
                    return false;
                }
                continue;
            }
            if child.selected {
                let Some(dir) = dir else {
                    self.error(&path, "not stored: its parent directory could not be opened");
                    continue;
                };
                let parent_dev = fsmeta::fstat(dir).ok().map(|s| s.dev);
                if !self.entry(dir, &path, name, parent_dev, None, false, None) {
                    return false;
                }
                continue;
            }
            let oname = OsStr::from_bytes(name);
            let real = match dir.filter(|_| child.real) {
                None => None,
                Some(dir) => match fsmeta::lstat_at(dir, oname) {
                    Err(e) => {
                        self.error(&path, format!("cannot stat: {e}"));
                        None
                    }
                    Ok(st) => match fsmeta::open_dir_for_read(Some(dir), oname, true) {
                        Ok(h) => Some((st, h)),
                        Err(e) => {
                            self.error(&path, format!("cannot open: {e}"));
                            None
                        }
                    },
                },
            };
            if real.is_none() && !child.streams {
                continue;
            }
            let node = match &real {
                Some((st, _)) => self.node(name, st, NodeKind::Dir { tree: BlobId([0; 32]) }, &path, true),
                // Made for the streams below it.
                None => stream_node(name, 0o700, Time::now(), NodeKind::Dir { tree: BlobId([0; 32]) }),
            };
            if !self.send(Event::EnterDir(node))
                || !self.virtual_dir(real.as_ref().map(|(_, h)| h), &path, &child.children)
                || !self.send(Event::LeaveDir)
            {
                return false;
            }
        }
        true
    }
}

/// The tree of what a backup covers: the selected file system paths, the directories that lead
/// to them, and the streams (leaves).
#[derive(Default)]
pub(super) struct Trie {
    /// A file system path the user named: walked with its contents.
    pub(super) selected: bool,
    /// On the way to a selected path: read from the file system.
    pub(super) real: bool,
    /// A stream or the way to one.
    pub(super) streams: bool,
    /// A stream's file: its outcome arrives here.
    pub(super) stream: Option<Receiver<Outcome>>,
    pub(super) children: BTreeMap<Vec<u8>, Trie>,
}

impl Trie {
    /// Adds the stream at `path` (relative to `/`, checked not to collide with anything).
    pub(super) fn add_stream(&mut self, path: &str, rx: Receiver<Outcome>) {
        let mut t = self;
        for c in path.split('/') {
            t.streams = true;
            t = t.children.entry(c.as_bytes().to_vec()).or_default();
        }
        t.streams = true;
        t.stream = Some(rx);
    }
}

pub(super) fn build_trie(paths: &[PathBuf]) -> Trie {
    let mut root = Trie::default();
    for p in paths {
        let mut t = &mut root;
        for c in p.components().filter_map(|c| match c {
            std::path::Component::Normal(n) => Some(n.as_bytes().to_vec()),
            _ => None,
        }) {
            if t.selected {
                break;
            }
            t.real = true;
            t = t.children.entry(c).or_default();
        }
        t.real = true;
        t.selected = true;
        t.children.clear();
    }
    root
}

/// A node made by the backup itself (a stream's file, a directory for streams): owned by the
/// user running it, with mode `mode` and times `now`.
pub(super) fn stream_node(name: &[u8], mode: u32, now: Time, kind: NodeKind) -> Node {
    // SAFETY: plain getters.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    Node {
        name: name.to_vec(),
        kind,
        mode,
        uid,
        gid,
        user: identity::user_name(uid).unwrap_or_default(),
        group: identity::group_name(gid).unwrap_or_default(),
        mtime: now,
        atime: now,
        ctime: now,
        size: 0,
        hardlink: 0,
        xattrs: vec![],
    }
}
