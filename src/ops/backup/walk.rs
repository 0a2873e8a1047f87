//! The walker: reads the source tree in order, skips what the options exclude, takes unchanged
//! files from the files cache, chunks the rest and sends events to the tree builder.

use super::{cancelled, BackupOptions, ChunkJob, Event, FileMsg, FileStatus, PathMessage, Progress, EVENT_BATCH};
use crate::cache::FileEntry;
use crate::fsmeta::{self, Stat};
use crate::id::{BlobId, BlobKind};
use crate::repository::{identity, Repository};
use crate::time::Time;
use crate::tree::{Content, Node, NodeKind};
use crate::writer::Writer;
use crossbeam_channel::{bounded, Sender};
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

pub(super) struct Ctx<'a> {
    pub(super) repo: &'a Repository,
    pub(super) writer: &'a Writer<'a>,
    pub(super) opts: &'a BackupOptions,
    pub(super) progress: &'a dyn Progress,
    pub(super) jobs: Sender<ChunkJob>,
    /// Events go to the builder in batches: one wake-up per event cost a fifth of an unchanged
    /// backup. A file's event is sent at once (with what is queued before it), because the walker
    /// then feeds that file's chunks, which the builder must be ready to take.
    pub(super) events: Sender<Vec<Event>>,
    pub(super) batch: Mutex<Vec<Event>>,
    pub(super) errors: Mutex<Vec<PathMessage>>,
    pub(super) warnings: Mutex<Vec<PathMessage>>,
    pub(super) bytes_read: AtomicU64,
    pub(super) start: Time,
    pub(super) names: Mutex<(HashMap<u32, String>, HashMap<u32, String>)>,
    pub(super) hardlinks: Mutex<HashMap<(u64, u64), u64>>,
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
    pub(super) fn flush(&self) -> bool {
        let b = std::mem::take(&mut *self.batch.lock().unwrap_or_else(|p| p.into_inner()));
        b.is_empty() || self.events.send(b).is_ok()
    }

    /// Announces a stream source stored as the one file `name`; its chunks go on the returned sender.
    pub(super) fn begin_stream(&self, name: &str) -> Option<Sender<FileMsg>> {
        let (mtx, mrx) = bounded(256);
        let node = stream_node(name, 0, Time::now());
        let file =
            Event::File { node, path: name.as_bytes().to_vec(), status: FileStatus::New, msgs: mrx, cache: None };
        self.send(file).then_some(mtx)
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
        let (user, group) = {
            let mut g = self.names.lock().unwrap_or_else(|p| p.into_inner());
            let u = g.0.entry(st.uid).or_insert_with(|| identity::user_name(st.uid).unwrap_or_default()).clone();
            let gr = g.1.entry(st.gid).or_insert_with(|| identity::group_name(st.gid).unwrap_or_default()).clone();
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
                    if self.jobs.send(ChunkJob { data, reply: tx }).is_err() || msgs.send(FileMsg::Chunk(rx)).is_err() {
                        return (now, Some("backup stopped".into()));
                    }
                }
            }
        }
    }

    pub(super) fn file(&self, path: &Path, name: &[u8], st: &Stat) -> bool {
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
    pub(super) fn entry(&self, path: &Path, name: &[u8], parent_dev: Option<u64>) -> bool {
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
    pub(super) fn virtual_dir(&self, dir: &Path, children: &BTreeMap<Vec<u8>, Trie>) -> bool {
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

#[derive(Default)]
pub(super) struct Trie {
    pub(super) selected: bool,
    pub(super) children: BTreeMap<Vec<u8>, Trie>,
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
            t = t.children.entry(c).or_default();
        }
        t.selected = true;
        t.children.clear();
    }
    root
}

pub(super) fn stream_node(name: &str, size: u64, now: Time) -> Node {
    // SAFETY: plain getters.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    Node {
        name: name.as_bytes().to_vec(),
        kind: NodeKind::File { content: Content::Chunks(vec![]) },
        mode: 0o600,
        uid,
        gid,
        user: identity::user_name(uid).unwrap_or_default(),
        group: identity::group_name(gid).unwrap_or_default(),
        mtime: now,
        atime: now,
        ctime: now,
        size,
        hardlink: 0,
        xattrs: vec![],
    }
}
