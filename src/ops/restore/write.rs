//! Every file-system write of a restore below its target (docs/cli-contract.md, `restore`). The
//! target is opened once; everything below it is reached from that handle one name at a time with
//! `O_NOFOLLOW`, created relative to its parent's handle (`mkdirat`, `openat(O_CREAT | O_EXCL)`,
//! `symlinkat`, `linkat`, `mknodat`) and given its metadata through its own handle or with the
//! no-follow `*at` calls. No path below the target is ever resolved by the kernel, so no symlink,
//! whether planted by a local user or restored from the snapshot, is followed.

use crate::fsmeta;
use crate::tree::{Node, NodeKind};
use rustix::fs::FileType;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Directory handles kept open at once; the least recently used is closed first, so a deep or wide
/// tree cannot exhaust file descriptors.
const MAX_OPEN_DIRS: usize = 128;

/// The restore target: a handle on it and a bounded cache of handles on directories below it.
pub(super) struct Target {
    /// The target as the user gave it (for messages).
    path: PathBuf,
    root: Arc<OwnedFd>,
    dirs: Mutex<DirCache>,
}

#[derive(Default)]
struct DirCache {
    /// Relative path → handle and the tick of its last use.
    open: HashMap<PathBuf, (Arc<OwnedFd>, u64)>,
    tick: u64,
}

impl DirCache {
    fn insert(&mut self, rel: PathBuf, fd: Arc<OwnedFd>) {
        if self.open.len() >= MAX_OPEN_DIRS {
            if let Some(oldest) = self.open.iter().min_by_key(|(_, (_, t))| *t).map(|(p, _)| p.clone()) {
                self.open.remove(&oldest);
            }
        }
        self.open.insert(rel, (fd, self.tick));
    }

    /// Drops the handles of `rel` and of everything below it (it was removed).
    fn forget(&mut self, rel: &Path) {
        self.open.retain(|p, _| !p.starts_with(rel));
    }
}

/// How a walk to a directory treats what is missing or in its way.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Walk {
    /// Open only what exists: a missing directory ends the walk with `None`.
    Existing,
    /// Create what is missing (mode 0777 less the umask); with `replace`, remove a non-directory
    /// in the way (a symlink is removed, never followed) and put a directory there.
    Create {
        /// `--overwrite`.
        replace: bool,
    },
}

/// What metadata restore applies, beyond what the node says.
#[derive(Clone, Copy, Debug)]
pub(super) struct MetaPolicy {
    /// Set owners (root only, and not with `--no-owner`).
    pub chown: bool,
    /// Clear setuid and setgid from every mode.
    pub strip_setuid: bool,
    /// Skip `security.*` and `trusted.*` extended attributes.
    pub no_security_xattrs: bool,
}

/// The path below the target of a snapshot path: its normal components. `..` (or anything but a
/// name, the root and `.`) is refused: a restore never leaves its target.
pub(super) fn relative(path: &Path) -> io::Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "the path leaves the restore target"))
            }
        }
    }
    Ok(out)
}

fn split(rel: &Path) -> io::Result<(&Path, &OsStr)> {
    match (rel.parent(), rel.file_name()) {
        (Some(p), Some(n)) => Ok((p, n)),
        _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "the restore target itself cannot be replaced")),
    }
}

/// "a symlink", "a file", ... for messages.
fn what(t: FileType) -> &'static str {
    match t {
        FileType::Directory => "a directory",
        FileType::RegularFile => "a file",
        FileType::Symlink => "a symlink",
        FileType::Fifo => "a fifo",
        FileType::CharacterDevice | FileType::BlockDevice => "a device",
        FileType::Socket => "a socket",
        _ => "something",
    }
}

/// An entry in the way of what restore must create there.
fn in_way(shown: String, t: FileType) -> io::Error {
    io::Error::new(io::ErrorKind::AlreadyExists, format!("{shown} exists and is {}", what(t)))
}

impl Target {
    /// Opens the target directory (creating it and its parents if missing). The user's own path
    /// is followed as given; nothing below it ever is.
    pub fn open(path: &Path) -> io::Result<Target> {
        std::fs::create_dir_all(path)?;
        let root = fsmeta::open_dir(path)?;
        Ok(Target { path: path.to_path_buf(), root: Arc::new(root), dirs: Mutex::new(DirCache::default()) })
    }

    /// The path of `rel` below the target, for messages.
    pub fn display(&self, rel: &Path) -> String {
        self.path.join(rel).display().to_string()
    }

    /// A handle on the directory `rel`, walked to from the target one name at a time without
    /// following a symlink; `None` when `walk` is [`Walk::Existing`] and it does not exist.
    pub fn dir(&self, rel: &Path, walk: Walk) -> io::Result<Option<Arc<OwnedFd>>> {
        let names: Vec<&OsStr> = relative_names(rel)?;
        let mut cache = self.dirs.lock().unwrap_or_else(|p| p.into_inner());
        cache.tick += 1;
        let tick = cache.tick;
        // The deepest directory on the way that is open already.
        let mut have = names.len();
        let mut fd = loop {
            if have == 0 {
                break self.root.clone();
            }
            let prefix: PathBuf = names[..have].iter().collect();
            if let Some((fd, t)) = cache.open.get_mut(&prefix) {
                *t = tick;
                break fd.clone();
            }
            have -= 1;
        };
        for i in have..names.len() {
            let prefix: PathBuf = names[..=i].iter().collect();
            let Some(next) = self.step(fd.as_fd(), names[i], walk, &prefix)? else {
                return Ok(None);
            };
            let next = Arc::new(next);
            cache.insert(prefix, next.clone());
            fd = next;
        }
        Ok(Some(fd))
    }

    /// Opens (or creates, or replaces a non-directory by) the directory `name` in `parent`.
    fn step(&self, parent: BorrowedFd<'_>, name: &OsStr, walk: Walk, rel: &Path) -> io::Result<Option<OwnedFd>> {
        match (fsmeta::stat_at(parent, name)?, walk) {
            (Some(FileType::Directory), _) => {}
            (None, Walk::Existing) => return Ok(None),
            (None, Walk::Create { .. }) => create_dir(parent, name)?,
            (Some(_), Walk::Create { replace: true }) => {
                fsmeta::unlink_at(parent, name, false)?;
                create_dir(parent, name)?;
            }
            (Some(t), _) => return Err(in_way(self.display(rel), t)),
        }
        fsmeta::open_dir_at(parent, name).map(Some).map_err(|e| self.err(rel, e))
    }

    fn err(&self, rel: &Path, e: io::Error) -> io::Error {
        if e.raw_os_error() == Some(libc::ELOOP) {
            return io::Error::new(io::ErrorKind::AlreadyExists, format!("{} is a symlink", self.display(rel)));
        }
        e
    }

    /// The parent directory's handle (created as needed) and the name of `rel`.
    fn parent<'p>(&self, rel: &'p Path, walk: Walk) -> io::Result<(Arc<OwnedFd>, &'p OsStr)> {
        let (parent, name) = split(rel)?;
        let fd = self.dir(parent, walk)?.ok_or_else(|| not_found(&self.display(parent)))?;
        Ok((fd, name))
    }

    /// Without `--overwrite`: why creating `rel` (a directory when `dir`) must be refused, if it
    /// must: a non-directory on the way to it, or anything but a directory where a directory goes,
    /// or anything where anything else goes. Creates nothing.
    pub fn in_the_way(&self, rel: &Path, dir: bool) -> io::Result<Option<String>> {
        if rel.as_os_str().is_empty() {
            return Ok(None);
        }
        let (parent, name) = split(rel)?;
        let fd = match self.dir(parent, Walk::Existing) {
            Ok(Some(fd)) => fd,
            Ok(None) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(Some(e.to_string())),
            Err(e) => return Err(e),
        };
        Ok(match fsmeta::stat_at(fd.as_fd(), name)? {
            None => None,
            Some(FileType::Directory) if dir => None,
            Some(t) => Some(in_way(self.display(rel), t).to_string()),
        })
    }

    /// Creates the directory `rel` (or keeps the one there) and makes it owner-writable until its
    /// metadata is applied at the end.
    pub fn make_dir(&self, rel: &Path, replace: bool) -> io::Result<()> {
        let fd = self.dir(rel, Walk::Create { replace })?.ok_or_else(|| not_found(&self.display(rel)))?;
        fsmeta::fchmod(fd.as_fd(), 0o700)
    }

    /// Runs `create` for `rel`; when something is there and `replace`, removes it (a directory only
    /// if empty) and runs `create` again.
    fn create(
        &self,
        rel: &Path,
        replace: bool,
        create: &dyn Fn(BorrowedFd<'_>, &OsStr) -> io::Result<()>,
    ) -> io::Result<()> {
        let (fd, name) = self.parent(rel, Walk::Create { replace })?;
        match create(fd.as_fd(), name) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && replace => {
                let is_dir = fsmeta::stat_at(fd.as_fd(), name)? == Some(FileType::Directory);
                fsmeta::unlink_at(fd.as_fd(), name, is_dir).map_err(|e| {
                    if is_dir {
                        io::Error::new(e.kind(), format!("{} is a directory that is not empty", self.display(rel)))
                    } else {
                        e
                    }
                })?;
                if is_dir {
                    self.dirs.lock().unwrap_or_else(|p| p.into_inner()).forget(rel);
                }
                create(fd.as_fd(), name)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err(in_way(self.display(rel), fsmeta::stat_at(fd.as_fd(), name)?.unwrap_or(FileType::Unknown)))
            }
            r => r,
        }
    }

    /// Creates the regular file `rel` (mode 0600) and returns its handle for writing; with `size`,
    /// sizes it (a hole until written).
    pub fn create_file_handle(&self, rel: &Path, size: Option<u64>, replace: bool) -> io::Result<File> {
        let made: std::cell::RefCell<Option<File>> = std::cell::RefCell::new(None);
        self.create(rel, replace, &|dir, name| {
            let f = fsmeta::create_file_at(dir, name)?;
            if let Some(size) = size {
                f.set_len(size)?;
            }
            *made.borrow_mut() = Some(f);
            Ok(())
        })?;
        made.into_inner().ok_or_else(|| io::Error::other("the file was not created"))
    }

    /// Creates a FIFO or device node (`kind` `S_IFIFO`, `S_IFCHR` or `S_IFBLK`).
    pub fn create_special(&self, rel: &Path, kind: u32, mode: u32, rdev: u64, replace: bool) -> io::Result<()> {
        self.create(rel, replace, &|dir, name| fsmeta::mknod_at(dir, name, kind, mode, rdev))
    }

    /// Creates the symlink `rel` pointing to `to`.
    pub fn symlink(&self, rel: &Path, to: &[u8], replace: bool) -> io::Result<()> {
        self.create(rel, replace, &|dir, name| fsmeta::symlink_at(to, dir, name))
    }

    /// Makes `rel` another name of the regular file `from` (both below the target).
    pub fn hardlink(&self, rel: &Path, from: &Path, replace: bool) -> io::Result<()> {
        let (from_dir, from_name) = self.parent(from, Walk::Existing)?;
        // The link names the entry itself, which must be a regular file: never a symlink's target.
        let (_, t) = fsmeta::open_path_at(from_dir.as_fd(), from_name)?;
        if t != FileType::RegularFile {
            return Err(io::Error::other(format!("{} is {}, not a file", self.display(from), what(t))));
        }
        self.create(rel, replace, &|dir, name| fsmeta::link_at(from_dir.as_fd(), from_name, dir, name))
    }

    /// Opens the regular file `rel` for writing its content (or for reading it back).
    pub fn open_file(&self, rel: &Path, write: bool) -> io::Result<File> {
        let (fd, name) = self.parent(rel, Walk::Existing)?;
        fsmeta::open_file_at(fd.as_fd(), name, write)
    }

    /// Removes the regular file `rel` (one whose content failed); anything else there stays.
    pub fn remove_file(&self, rel: &Path) -> io::Result<()> {
        let (fd, name) = self.parent(rel, Walk::Existing)?;
        if fsmeta::stat_at(fd.as_fd(), name)? == Some(FileType::RegularFile) {
            fsmeta::unlink_at(fd.as_fd(), name, false)?;
        }
        Ok(())
    }

    /// Applies owner, extended attributes, mode and times of `n` to `rel`, through its handle (a
    /// directory or a regular file), an `O_PATH` handle (a FIFO or device) or the no-follow `*at`
    /// calls (a symlink). Owner first (it clears setuid), mode after the attributes (a read-only mode
    /// would refuse them), times last.
    pub fn apply(&self, rel: &Path, n: &Node, policy: MetaPolicy) -> io::Result<()> {
        self.apply_with(rel, n, policy, None)
    }

    /// [`Target::apply`] to a regular file through `file`, a handle restore opened on it.
    pub fn apply_file(&self, rel: &Path, n: &Node, policy: MetaPolicy, file: &File) -> io::Result<()> {
        self.apply_with(rel, n, policy, Some(file))
    }

    fn apply_with(&self, rel: &Path, n: &Node, policy: MetaPolicy, file: Option<&File>) -> io::Result<()> {
        let mode = if policy.strip_setuid { n.mode & !0o6000 } else { n.mode };
        let xattrs: Vec<(Vec<u8>, Vec<u8>)> = n
            .xattrs
            .iter()
            .filter(|(k, _)| {
                !(policy.no_security_xattrs && (k.starts_with(b"security.") || k.starts_with(b"trusted.")))
            })
            .cloned()
            .collect();
        let by_fd = |fd: BorrowedFd<'_>| -> io::Result<()> {
            if policy.chown {
                fsmeta::fchown(fd, n.uid, n.gid)?;
            }
            if !xattrs.is_empty() {
                fsmeta::write_xattrs_fd(fd, &xattrs)?;
            }
            fsmeta::fchmod(fd, mode)?;
            fsmeta::set_times_fd(fd, n.atime, n.mtime)
        };
        match &n.kind {
            NodeKind::Dir { .. } => {
                let fd = self.dir(rel, Walk::Existing)?.ok_or_else(|| not_found(&self.display(rel)))?;
                by_fd(fd.as_fd())
            }
            NodeKind::File { .. } => match file {
                Some(f) => by_fd(f.as_fd()),
                None => by_fd(self.open_file(rel, false)?.as_fd()),
            },
            NodeKind::Symlink { .. } => {
                let (dir, name) = self.parent(rel, Walk::Existing)?;
                if policy.chown {
                    fsmeta::lchown_at(dir.as_fd(), name, n.uid, n.gid)?;
                }
                // Most file systems refuse user attributes on symlinks: not an error.
                let _ = fsmeta::write_xattrs_at(dir.as_fd(), name, &xattrs);
                fsmeta::set_times_at(dir.as_fd(), name, n.atime, n.mtime)
            }
            NodeKind::Fifo | NodeKind::CharDevice { .. } | NodeKind::BlockDevice { .. } => {
                let (dir, name) = self.parent(rel, Walk::Existing)?;
                let (fd, t) = fsmeta::open_path_at(dir.as_fd(), name)?;
                let want = match n.kind {
                    NodeKind::Fifo => FileType::Fifo,
                    NodeKind::CharDevice { .. } => FileType::CharacterDevice,
                    _ => FileType::BlockDevice,
                };
                if t != want {
                    return Err(io::Error::other(format!("{} is now {}", self.display(rel), what(t))));
                }
                if policy.chown {
                    fsmeta::lchown_at(dir.as_fd(), name, n.uid, n.gid)?;
                }
                if !xattrs.is_empty() {
                    fsmeta::write_xattrs_at(dir.as_fd(), name, &xattrs)?;
                }
                fsmeta::chmod_path_fd(fd.as_fd(), mode)?;
                fsmeta::set_times_at(dir.as_fd(), name, n.atime, n.mtime)
            }
            NodeKind::Socket => Ok(()),
        }
    }
}

/// The names of a relative path (as [`relative`] makes them).
fn relative_names(rel: &Path) -> io::Result<Vec<&OsStr>> {
    rel.components()
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "the path leaves the restore target")),
        })
        .collect()
}

fn create_dir(parent: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    match fsmeta::mkdir_at(parent, name, 0o777) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        r => r,
    }
}

fn not_found(shown: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{shown} does not exist"))
}

/// Writes an inline content (format-spec §7.3) into the file just created for it: the one place
/// restore writes a content that is not in data blobs. Its length is the node's size (a tree
/// whose inline content differs from its size does not decode).
pub(super) fn write_inline(f: &std::fs::File, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut f = f;
    f.write_all(bytes)
}
