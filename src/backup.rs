//! The backup operation (DESIGN §10): walk → read → chunk → id → dedup → compress → seal → pack →
//! upload, then trees, index and snapshot, in that order. Bounded queues keep memory flat: a
//! walker thread reads and chunks in walk order, workers seal chunks, and the calling thread
//! builds trees from the walker's events as their chunk ids arrive.

use crate::cache::FileEntry;
use crate::compress::Compression;
use crate::error::{Error, Result};
use crate::filter::Patterns;
use crate::fsmeta::{self, Stat};
use crate::id::{BlobId, BlobKind, SnapshotId};
use crate::repository::{hostname, username, Repository};
use crate::snapshot::{Snapshot, SnapshotV1, Source, Summary};
use crate::tree::{self, Content, Node, NodeKind, Time, TreeBlob};
use crate::writer::{Writer, WriterOptions};
use crossbeam_channel::{bounded, Receiver, Sender};
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What to back up.
pub enum BackupSource {
    /// Files and directories (absolute or relative to the current directory).
    Paths(Vec<PathBuf>),
    /// A stream, stored as one file `name` at the root.
    Stream {
        /// File name in the snapshot.
        name: String,
        /// The data.
        reader: Box<dyn Read + Send>,
    },
    /// A command's standard output, stored as one file `name`; a non-zero exit makes no snapshot.
    Command {
        /// File name in the snapshot.
        name: String,
        /// Run with `sh -c`.
        command: String,
    },
}

/// Options of a backup.
#[derive(Clone, Debug, Default)]
pub struct BackupOptions {
    /// Host name to record (default: this machine's).
    pub host: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Time to record (default: now).
    pub time: Option<Time>,
    /// Exclude patterns.
    pub excludes: Patterns,
    /// Skip directories that contain any of these names.
    pub exclude_if_present: Vec<String>,
    /// Skip directories with a valid `CACHEDIR.TAG`.
    pub exclude_caches: bool,
    /// Skip files larger than this.
    pub exclude_larger_than: Option<u64>,
    /// Do not cross filesystem boundaries.
    pub one_file_system: bool,
    /// Compression (default: the repository's).
    pub compression: Option<Compression>,
    /// Count, store nothing.
    pub dry_run: bool,
    /// Read every file even when the files cache says it is unchanged.
    pub force: bool,
    /// Parent snapshot (default: the newest of the same host and paths, if readable).
    pub parent: Option<SnapshotId>,
    /// Skip blob verification before upload.
    pub no_verify: bool,
    /// Worker threads (default: available cores).
    pub threads: usize,
    /// Set from a signal handler to stop early; nothing is committed then.
    pub cancel: Option<Arc<AtomicBool>>,
}

/// The walk's selection rules: the backup walk and [`crate::scan`] both decide with these.
impl BackupOptions {
    /// True when `path` is left out by the exclude patterns.
    pub fn excludes_path(&self, path: &Path) -> bool {
        self.excludes.matches(path)
    }

    /// True when directory `dir` is left out with its contents: it holds a file named in
    /// `exclude_if_present`, or (with `exclude_caches`) a valid `CACHEDIR.TAG`.
    pub fn skips_dir(&self, dir: &Path) -> bool {
        for n in &self.exclude_if_present {
            if dir.join(n).symlink_metadata().is_ok() {
                return true;
            }
        }
        if self.exclude_caches {
            if let Ok(mut f) = std::fs::File::open(dir.join("CACHEDIR.TAG")) {
                let mut sig = [0u8; 43];
                if f.read_exact(&mut sig).is_ok() && &sig == b"Signature: 8a477f597d28d172789f06886806bc55" {
                    return true;
                }
            }
        }
        false
    }

    /// True when a regular file of `size` bytes is left out (`exclude_larger_than`).
    pub fn skips_file(&self, size: u64) -> bool {
        self.exclude_larger_than.is_some_and(|m| size > m)
    }

    /// True when a directory on device `dev`, below a parent on `parent_dev`, is recorded but not
    /// entered (`one_file_system`).
    pub fn stays_out(&self, parent_dev: Option<u64>, dev: u64) -> bool {
        self.one_file_system && parent_dev.is_some_and(|d| d != dev)
    }
}

/// Progress callbacks; every method has an empty default. Called from several threads.
pub trait Progress: Send + Sync {
    /// A file is being processed.
    fn file(&self, _path: &Path, _size: u64) {}
    /// Bytes read from the source.
    fn bytes(&self, _n: u64) {}
    /// A file was skipped because it could not be read.
    fn error(&self, _path: &Path, _message: &str) {}
    /// Something worth knowing (a file changed while it was read).
    fn warning(&self, _path: &Path, _message: &str) {}
}

/// A progress sink that ignores everything.
pub struct NoProgress;
impl Progress for NoProgress {}

/// A path and what went wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathMessage {
    /// The path.
    pub path: String,
    /// The message.
    pub message: String,
}

/// The outcome of a backup.
#[derive(Clone, Debug)]
pub struct BackupResult {
    /// The new snapshot (`None` on a dry run).
    pub snapshot_id: Option<SnapshotId>,
    /// The parent it was compared against.
    pub parent: Option<SnapshotId>,
    /// Counters.
    pub summary: Summary,
    /// Files that could not be read (the snapshot lacks them).
    pub errors: Vec<PathMessage>,
    /// Files that changed while read, and similar notes.
    pub warnings: Vec<PathMessage>,
}

/// Walker events per message to the builder.
const EVENT_BATCH: usize = 64;

struct ChunkJob {
    data: Vec<u8>,
    reply: Sender<Result<BlobId>>,
}

enum FileMsg {
    Chunk(Receiver<Result<BlobId>>),
    Done { size: u64, error: Option<String> },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FileStatus {
    New,
    Changed,
}

enum Event {
    EnterDir(Node),
    LeaveDir,
    Node(Node),
    Cached { node: Node },
    File { node: Node, path: Vec<u8>, status: FileStatus, msgs: Receiver<FileMsg>, cache: Option<FileEntry> },
    HardlinkRef { node: Node, group: u64, path: Vec<u8> },
}

struct Ctx<'a> {
    repo: &'a Repository,
    writer: &'a Writer<'a>,
    opts: &'a BackupOptions,
    progress: &'a dyn Progress,
    jobs: Sender<ChunkJob>,
    /// Events go to the builder in batches: one wake-up per event cost a fifth of an unchanged
    /// backup. A file's event is sent at once (with what is queued before it), because the walker
    /// then feeds that file's chunks, which the builder must be ready to take.
    events: Sender<Vec<Event>>,
    batch: Mutex<Vec<Event>>,
    errors: Mutex<Vec<PathMessage>>,
    warnings: Mutex<Vec<PathMessage>>,
    bytes_read: AtomicU64,
    start: Time,
    names: Mutex<(HashMap<u32, String>, HashMap<u32, String>)>,
    hardlinks: Mutex<HashMap<(u64, u64), u64>>,
}

fn cancelled(opts: &BackupOptions) -> bool {
    opts.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
}

impl Ctx<'_> {
    fn error(&self, path: &Path, msg: impl ToString) {
        let m = msg.to_string();
        self.progress.error(path, &m);
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(PathMessage { path: path.display().to_string(), message: m });
    }

    fn warning(&self, path: &Path, msg: impl ToString) {
        let m = msg.to_string();
        self.progress.warning(path, &m);
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(PathMessage { path: path.display().to_string(), message: m });
    }

    fn send(&self, e: Event) -> bool {
        let urgent = matches!(e, Event::File { .. });
        let full = {
            let mut b = self.batch.lock().unwrap_or_else(|p| p.into_inner());
            b.push(e);
            b.len() >= EVENT_BATCH
        };
        if urgent || full {
            return self.flush();
        }
        true
    }

    /// Sends the queued events; false when the builder has stopped.
    fn flush(&self) -> bool {
        let b = std::mem::take(&mut *self.batch.lock().unwrap_or_else(|p| p.into_inner()));
        b.is_empty() || self.events.send(b).is_ok()
    }

    /// Announces a stream source stored as the one file `name`; its chunks go on the returned sender.
    fn begin_stream(&self, name: &str) -> Option<Sender<FileMsg>> {
        let (mtx, mrx) = bounded(256);
        let node = stream_node(name, 0, Time::now());
        let file =
            Event::File { node, path: name.as_bytes().to_vec(), status: FileStatus::New, msgs: mrx, cache: None };
        self.send(file).then_some(mtx)
    }

    fn xattrs(&self, path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
        match fsmeta::read_xattrs(path) {
            Ok(x) => x,
            Err(e) => {
                self.warning(path, format!("extended attributes not read: {e}"));
                Vec::new()
            }
        }
    }

    fn node(&self, name: &[u8], st: &Stat, kind: NodeKind, path: &Path, xattrs: bool) -> Node {
        let (user, group) = {
            let mut g = self.names.lock().unwrap_or_else(|p| p.into_inner());
            let u = g.0.entry(st.uid).or_insert_with(|| fsmeta::user_name(st.uid).unwrap_or_default()).clone();
            let gr = g.1.entry(st.gid).or_insert_with(|| fsmeta::group_name(st.gid).unwrap_or_default()).clone();
            (u, gr)
        };
        let xattrs = if xattrs { self.xattrs(path) } else { Vec::new() };
        Node {
            name: name.to_vec(),
            kind,
            mode: st.mode & 0o7777,
            uid: st.uid,
            gid: st.gid,
            user,
            group,
            mtime: st.mtime,
            atime: st.atime,
            ctime: st.ctime,
            size: st.size,
            hardlink: 0,
            xattrs,
        }
    }

    /// Reads `reader` into chunks, handing them to the workers, and reports on `msgs`.
    fn read_chunks(&self, reader: impl Read, size_hint: Option<u64>, msgs: &Sender<FileMsg>) -> (u64, Option<String>) {
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
                    if self.jobs.send(ChunkJob { data, reply: tx }).is_err() || msgs.send(FileMsg::Chunk(rx)).is_err() {
                        return (now, Some("backup stopped".into()));
                    }
                }
            }
        }
    }

    fn file(&self, path: &Path, name: &[u8], st: &Stat) -> bool {
        let pbytes = path.as_os_str().as_bytes().to_vec();
        // Extended attributes are read below, unless the files cache already has them.
        let mut node = self.node(name, st, NodeKind::File { content: Content::Chunks(vec![]) }, path, false);
        if st.nlink > 1 {
            let mut h = self.hardlinks.lock().unwrap_or_else(|p| p.into_inner());
            let next = h.len() as u64 + 1;
            match h.get(&(st.dev, st.ino)) {
                Some(&g) => {
                    node.hardlink = g;
                    drop(h);
                    node.xattrs = self.xattrs(path);
                    return self.send(Event::HardlinkRef {
                        node,
                        group: g,
                        path: path.as_os_str().as_bytes().to_vec(),
                    });
                }
                None => {
                    h.insert((st.dev, st.ino), next);
                    node.hardlink = next;
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
        };
        let mut status = FileStatus::New;
        if !self.opts.force {
            match self.repo.cache().file_get(&pbytes) {
                Ok(Some(c)) => {
                    let same = c.size == entry.size
                        && c.mtime == entry.mtime
                        && c.ctime == entry.ctime
                        && c.inode == entry.inode
                        && c.dev == entry.dev;
                    let known =
                        same && c.content.iter().all(|id| self.writer.is_known(BlobKind::Data, id).unwrap_or(false));
                    if known {
                        node.kind = NodeKind::File { content: Content::Chunks(c.content) };
                        node.xattrs = c.xattrs;
                        return self.send(Event::Cached { node });
                    }
                    status = FileStatus::Changed;
                }
                Ok(None) => {}
                Err(e) => self.warning(path, e),
            }
        }
        node.xattrs = self.xattrs(path);
        let entry = FileEntry { xattrs: node.xattrs.clone(), ..entry };
        let f = match open_noatime(path) {
            Ok(f) => f,
            Err(e) => {
                self.error(path, format!("cannot open: {e}"));
                return true;
            }
        };
        // Racily clean files are not trusted to the files cache: a change within the same timestamp
        // tick as the last one would not move mtime or ctime. The tick is taken as 2 s where the
        // file system keeps whole seconds (FAT, some network file systems), else 50 ms.
        let tick: i128 = if st.mtime.nanos == 0 && st.ctime.nanos == 0 { 2_000_000_000 } else { 50_000_000 };
        let since = self.start.as_nanos() - tick;
        let racy = st.mtime.as_nanos() >= since || st.ctime.as_nanos() >= since;
        // The channel's slots are allocated up front: size it for the chunks this file can have
        // (a 1 KiB file needs 2, not 256), so many small files do not churn the allocator.
        let min_chunk = u64::from(self.repo.chunker().params().min_size.max(1));
        let slots = (st.size / min_chunk + 2).min(256) as usize;
        let (mtx, mrx) = bounded(slots);
        if !self.send(Event::File { node, path: pbytes, status, msgs: mrx, cache: (!racy).then_some(entry) }) {
            return false;
        }
        let (size, error) = self.read_chunks(&f, Some(st.size), &mtx);
        if error.is_none() {
            if let Ok(after) = f.metadata().map(|m| Stat::from(&m)) {
                if after.size != st.size || after.mtime != st.mtime || after.ctime != st.ctime || size != st.size {
                    self.warning(path, "file changed while it was read; the snapshot has what was read");
                }
            }
        }
        let _ = mtx.send(FileMsg::Done { size, error });
        true
    }

    /// Walks one real entry; false when the backup must stop.
    fn entry(&self, path: &Path, name: &[u8], parent_dev: Option<u64>) -> bool {
        if cancelled(self.opts) {
            return false;
        }
        if self.opts.excludes_path(path) {
            return true;
        }
        let st = match fsmeta::lstat(path) {
            Ok(s) => s,
            Err(e) => {
                self.error(path, format!("cannot stat: {e}"));
                return true;
            }
        };
        match fsmeta::file_type(st.mode) {
            libc::S_IFDIR => {
                if self.opts.skips_dir(path) {
                    return true;
                }
                let node = self.node(name, &st, NodeKind::Dir { tree: BlobId([0; 32]) }, path, true);
                if !self.send(Event::EnterDir(node)) {
                    return false;
                }
                let cross = self.opts.stays_out(parent_dev, st.dev);
                if !cross {
                    match list_dir_noatime(path) {
                        Ok(mut names) => {
                            names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
                            for n in names {
                                if !self.entry(&path.join(&n), n.as_bytes(), Some(st.dev)) {
                                    return false;
                                }
                            }
                        }
                        Err(e) => self.error(path, format!("cannot list: {e}")),
                    }
                }
                self.send(Event::LeaveDir)
            }
            libc::S_IFREG => {
                if self.opts.skips_file(st.size) {
                    return true;
                }
                self.file(path, name, &st)
            }
            libc::S_IFLNK => match std::fs::read_link(path) {
                Ok(t) => {
                    let target = t.as_os_str().as_bytes().to_vec();
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

    /// Walks the virtual directories that lead to the selected paths.
    fn virtual_dir(&self, dir: &Path, children: &BTreeMap<Vec<u8>, Trie>) -> bool {
        for (name, child) in children {
            let path = dir.join(OsStr::from_bytes(name));
            if child.selected {
                let parent_dev = fsmeta::lstat(dir).ok().map(|s| s.dev);
                if !self.entry(&path, name, parent_dev) {
                    return false;
                }
                continue;
            }
            let st = match fsmeta::lstat(&path) {
                Ok(s) => s,
                Err(e) => {
                    self.error(&path, format!("cannot stat: {e}"));
                    continue;
                }
            };
            let node = self.node(name, &st, NodeKind::Dir { tree: BlobId([0; 32]) }, &path, true);
            if !self.send(Event::EnterDir(node))
                || !self.virtual_dir(&path, &child.children)
                || !self.send(Event::LeaveDir)
            {
                return false;
            }
        }
        true
    }
}

#[derive(Default)]
struct Trie {
    selected: bool,
    children: BTreeMap<Vec<u8>, Trie>,
}

/// Makes paths absolute and lexically normal (no `.`, `..` or trailing `/`).
pub fn absolute(p: &Path) -> Result<PathBuf> {
    let base =
        if p.is_absolute() { PathBuf::from("/") } else { std::env::current_dir().map_err(|e| Error::io(p, e))? };
    let mut out = base;
    for c in p.components() {
        match c {
            std::path::Component::RootDir => out = PathBuf::from("/"),
            std::path::Component::CurDir | std::path::Component::Prefix(_) => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
        }
    }
    Ok(out)
}

fn build_trie(paths: &[PathBuf]) -> Trie {
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
            t = t.children.entry(c).or_default();
        }
        t.selected = true;
        t.children.clear();
    }
    root
}

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

struct Frame {
    node: Option<Node>,
    children: Vec<Node>,
}

struct Builder<'a> {
    writer: &'a Writer<'a>,
    repo: &'a Repository,
    stack: Vec<Frame>,
    summary: Summary,
    groups: HashMap<u64, Content>,
    file_cache: Vec<(Vec<u8>, FileEntry)>,
    errors: Vec<PathMessage>,
}

impl Builder<'_> {
    fn push(&mut self, n: Node) {
        self.stack.last_mut().expect("root frame").children.push(n);
    }

    fn flush_cache(&mut self, force: bool) -> Result<()> {
        if self.file_cache.len() >= 1000 || (force && !self.file_cache.is_empty()) {
            self.repo.cache().file_put_many(std::mem::take(&mut self.file_cache))?;
        }
        Ok(())
    }

    fn event(&mut self, e: Event, dry_run: bool) -> Result<()> {
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
                            let id = rx.recv().map_err(|_| Error::Invalid("a worker stopped".into()))??;
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

fn stream_node(name: &str, size: u64, now: Time) -> Node {
    // SAFETY: plain getters.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    Node {
        name: name.as_bytes().to_vec(),
        kind: NodeKind::File { content: Content::Chunks(vec![]) },
        mode: 0o600,
        uid,
        gid,
        user: fsmeta::user_name(uid).unwrap_or_default(),
        group: fsmeta::group_name(gid).unwrap_or_default(),
        mtime: now,
        atime: now,
        ctime: now,
        size,
        hardlink: 0,
        xattrs: vec![],
    }
}

fn check_stream_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." || name.contains('\0') {
        return Err(Error::Invalid(format!("--stdin-filename {name:?} must be a plain file name")));
    }
    Ok(())
}

/// Opens a file for reading without updating its access time where the kernel allows it (the
/// owner or root): otherwise every backup would change the atime it records, and with it every
/// tree, so an unchanged tree would never dedup.
fn open_noatime(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOATIME).open(path) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => std::fs::File::open(path),
        r => r,
    }
}

/// The names in a directory, read without updating its access time where the kernel allows it
/// (see [`open_noatime`]).
fn list_dir_noatime(path: &Path) -> std::io::Result<Vec<std::ffi::OsString>> {
    use std::os::unix::ffi::OsStringExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("path contains a NUL byte"))?;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
    // SAFETY: `c` is a valid NUL-terminated path.
    let mut fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_NOATIME) };
    if fd < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM) {
        // SAFETY: as above.
        fd = unsafe { libc::open(c.as_ptr(), flags) };
    }
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is an open directory descriptor; fdopendir takes ownership of it on success.
    let dir = unsafe { libc::fdopendir(fd) };
    if dir.is_null() {
        let e = std::io::Error::last_os_error();
        // SAFETY: fdopendir failed, so `fd` is still ours to close.
        unsafe { libc::close(fd) };
        return Err(e);
    }
    let mut names = Vec::new();
    let result = loop {
        // SAFETY: errno is thread-local; reset it to tell the end of the stream from an error.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: `dir` is a valid DIR stream until closedir below.
        let ent = unsafe { libc::readdir(dir) };
        if ent.is_null() {
            let e = std::io::Error::last_os_error();
            break if e.raw_os_error().unwrap_or(0) == 0 { Ok(()) } else { Err(e) };
        }
        // SAFETY: readdir returned a valid dirent whose d_name is NUL-terminated.
        let name = unsafe { std::ffi::CStr::from_ptr((*ent).d_name.as_ptr()) }.to_bytes();
        if name != b"." && name != b".." {
            names.push(std::ffi::OsString::from_vec(name.to_vec()));
        }
    };
    // SAFETY: `dir` came from fdopendir and is closed exactly once.
    unsafe { libc::closedir(dir) };
    result.map(|()| names)
}

/// Runs a backup and commits its snapshot.
pub fn backup(
    repo: &Repository,
    source: BackupSource,
    opts: &BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupResult> {
    let started = Time::now();
    let host = opts.host.clone().unwrap_or_else(hostname);
    let (paths, snap_source): (Vec<PathBuf>, Source) = match &source {
        BackupSource::Paths(p) => {
            if p.is_empty() {
                return Err(Error::Invalid("nothing to back up: give at least one path".into()));
            }
            let mut abs = p.iter().map(|x| absolute(x)).collect::<Result<Vec<_>>>()?;
            abs.sort();
            abs.dedup();
            (abs, Source::Files)
        }
        BackupSource::Stream { name, .. } => {
            check_stream_name(name)?;
            (vec![PathBuf::from("/").join(name)], Source::Stdin { name: name.clone() })
        }
        BackupSource::Command { name, command } => {
            check_stream_name(name)?;
            (
                vec![PathBuf::from("/").join(name)],
                Source::Command { command: command.clone(), name: name.clone(), exit_status: 0 },
            )
        }
    };
    let path_bytes: Vec<Vec<u8>> = paths.iter().map(|p| p.as_os_str().as_bytes().to_vec()).collect();
    let parent = match opts.parent {
        Some(p) => Some(p),
        None if repo.keys().can_read() => repo
            .list_snapshots()?
            .into_iter()
            .rev()
            .find(|(_, s)| s.v1().host == host && s.v1().paths == path_bytes)
            .map(|(id, _)| id),
        None => None,
    };
    let wopts = WriterOptions {
        compression: opts.compression.unwrap_or_else(|| repo.default_compression()),
        verify: !opts.no_verify,
        uploaders: 2,
        dry_run: opts.dry_run,
    };
    let writer = Writer::new(repo, wopts, "backup")?;
    let threads = if opts.threads > 0 {
        opts.threads
    } else {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
    };
    let (jobs_tx, jobs_rx) = bounded::<ChunkJob>(threads * 2);
    let (ev_tx, ev_rx) = bounded::<Vec<Event>>(1024 / EVENT_BATCH);
    let ctx = Ctx {
        repo,
        writer: &writer,
        opts,
        progress,
        jobs: jobs_tx,
        events: ev_tx,
        batch: Mutex::new(Vec::with_capacity(EVENT_BATCH)),
        errors: Mutex::new(Vec::new()),
        warnings: Mutex::new(Vec::new()),
        bytes_read: AtomicU64::new(0),
        start: started,
        names: Mutex::new((HashMap::new(), HashMap::new())),
        hardlinks: Mutex::new(HashMap::new()),
    };
    let mut builder = Builder {
        writer: &writer,
        repo,
        stack: vec![Frame { node: None, children: Vec::new() }],
        summary: Summary::default(),
        groups: HashMap::new(),
        file_cache: Vec::new(),
        errors: Vec::new(),
    };
    struct WalkOutcome {
        errors: Vec<PathMessage>,
        warnings: Vec<PathMessage>,
        bytes_read: u64,
        command_status: Option<std::process::ExitStatus>,
        command_error: Option<Error>,
    }
    let (built, walked): (Result<()>, WalkOutcome) = std::thread::scope(|s| {
        for _ in 0..threads {
            let rx = jobs_rx.clone();
            let w = &writer;
            s.spawn(move || {
                for job in rx {
                    let r = w.store(BlobKind::Data, &job.data).map(|(id, _)| id);
                    let _ = job.reply.send(r);
                }
            });
        }
        drop(jobs_rx);
        let walker = s.spawn(move || {
            let mut command_status = None;
            let mut command_error = None;
            match source {
                BackupSource::Paths(_) => {
                    let trie = build_trie(&paths);
                    if trie.selected {
                        // "/" itself was given: walk its entries.
                        if let Ok(rd) = std::fs::read_dir("/") {
                            let mut names: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.file_name())).collect();
                            names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
                            let dev = fsmeta::lstat(Path::new("/")).ok().map(|s| s.dev);
                            for n in names {
                                if !ctx.entry(&Path::new("/").join(&n), n.as_bytes(), dev) {
                                    break;
                                }
                            }
                        }
                    } else {
                        ctx.virtual_dir(Path::new("/"), &trie.children);
                    }
                }
                BackupSource::Stream { name, reader } => {
                    if let Some(mtx) = ctx.begin_stream(&name) {
                        let (size, error) = ctx.read_chunks(reader, None, &mtx);
                        let _ = mtx.send(FileMsg::Done { size, error });
                    }
                }
                BackupSource::Command { name, command } => {
                    let child = std::process::Command::new("sh")
                        .arg("-c")
                        .arg(&command)
                        .stdin(std::process::Stdio::null())
                        .stdout(std::process::Stdio::piped())
                        .spawn();
                    match child {
                        Err(e) => {
                            command_error = Some(Error::CommandFailed {
                                command: command.clone(),
                                status: format!("cannot start: {e}"),
                            })
                        }
                        Ok(mut child) => {
                            let out = child.stdout.take().expect("piped stdout");
                            if let Some(mtx) = ctx.begin_stream(&name) {
                                let (size, error) = ctx.read_chunks(out, None, &mtx);
                                match child.wait() {
                                    Ok(st) => command_status = Some(st),
                                    Err(e) => {
                                        command_error = Some(Error::CommandFailed {
                                            command: command.clone(),
                                            status: e.to_string(),
                                        })
                                    }
                                }
                                let _ = mtx.send(FileMsg::Done { size, error });
                            } else {
                                let _ = child.kill();
                                let _ = child.wait();
                            }
                        }
                    }
                }
            }
            // Dropping the senders ends the builder's loop and the workers.
            ctx.flush();
            let Ctx { jobs, events, errors, warnings, bytes_read, .. } = ctx;
            drop(jobs);
            drop(events);
            WalkOutcome {
                errors: errors.into_inner().unwrap_or_else(|p| p.into_inner()),
                warnings: warnings.into_inner().unwrap_or_else(|p| p.into_inner()),
                bytes_read: bytes_read.into_inner(),
                command_status,
                command_error,
            }
        });
        let res = (|| {
            for batch in ev_rx.iter() {
                if cancelled(opts) {
                    return Err(Error::Interrupted);
                }
                for e in batch {
                    builder.event(e, opts.dry_run)?;
                }
            }
            Ok(())
        })();
        if res.is_err() {
            // Unblock the walker: drop whatever it still sends.
            for e in ev_rx.iter() {
                drop(e);
            }
        }
        let walked = walker.join().unwrap_or_else(|_| WalkOutcome {
            errors: vec![],
            warnings: vec![],
            bytes_read: 0,
            command_status: None,
            command_error: Some(Error::Invalid("the walker thread panicked".into())),
        });
        (res, walked)
    });
    let command_status = walked.command_status;
    let command_error = walked.command_error;
    if let Err(e) = built {
        writer.abandon();
        return Err(e);
    }
    if cancelled(opts) {
        writer.abandon();
        return Err(Error::Interrupted);
    }
    if let Some(e) = command_error {
        writer.abandon();
        return Err(e);
    }
    if let Source::Command { command, .. } = &snap_source {
        match command_status {
            Some(st) if st.success() => {}
            Some(st) => {
                writer.abandon();
                return Err(Error::CommandFailed { command: command.clone(), status: st.to_string() });
            }
            None => {
                writer.abandon();
                return Err(Error::CommandFailed { command: command.clone(), status: "no exit status".into() });
            }
        }
    }
    let mut errors = walked.errors;
    errors.extend(std::mem::take(&mut builder.errors));
    if !matches!(snap_source, Source::Files) && !errors.is_empty() {
        writer.abandon();
        let e = &errors[0];
        return Err(Error::Invalid(format!("reading the stream failed: {}", e.message)));
    }
    builder.flush_cache(true)?;
    let root_frame = builder.stack.pop().expect("root frame");
    if !builder.stack.is_empty() {
        writer.abandon();
        return Err(Error::Interrupted);
    }
    let root = store_dir(&writer, root_frame.children)?;
    let mut summary = builder.summary;
    summary.bytes_read = walked.bytes_read;
    summary.errors = errors.len() as u64;
    summary.started = started;
    let st = writer.stats();
    summary.blobs_added = st.blobs_added.load(Ordering::Relaxed);
    summary.bytes_added = st.bytes_added.load(Ordering::Relaxed);
    summary.bytes_added_stored = st.bytes_added_stored.load(Ordering::Relaxed);
    summary.finished = Time::now();
    let warnings = walked.warnings;
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let snap = Snapshot::V1(SnapshotV1 {
        time: opts.time.unwrap_or(started),
        host,
        user: username(),
        uid,
        gid,
        paths: path_bytes,
        tags: opts.tags.clone(),
        root,
        parent,
        source: snap_source,
        summary: summary.clone(),
        program: format!("cairn {}", env!("CARGO_PKG_VERSION")),
    });
    if opts.dry_run {
        writer.abandon();
        return Ok(BackupResult { snapshot_id: None, parent, summary, errors, warnings });
    }
    let id = writer.commit(&snap)?;
    Ok(BackupResult { snapshot_id: Some(id), parent, summary, errors, warnings })
}
