//! Reading and applying file metadata on Unix: owners, modes, nanosecond times, xattrs, special
//! files, and the handle-relative (`*at`, `f*`) calls that never follow a symlink. Thin wrappers
//! over the system calls; no policy.

use crate::time::Time;
use rustix::fs as rfs;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

mod read;
pub use read::*;

/// What backup needs from `lstat`.
#[derive(Clone, Debug)]
pub struct Stat {
    /// Device of the filesystem.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Full `st_mode` (type and permission bits).
    pub mode: u32,
    /// Link count.
    pub nlink: u64,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number of a device node.
    pub rdev: u64,
    /// Size.
    pub size: u64,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    /// Access time.
    pub atime: Time,
    /// Modification time.
    pub mtime: Time,
    /// Status change time.
    pub ctime: Time,
}

fn t(secs: i64, nanos: i64) -> Time {
    Time { secs, nanos: nanos.clamp(0, 999_999_999) as u32 }
}

impl From<&std::fs::Metadata> for Stat {
    fn from(m: &std::fs::Metadata) -> Self {
        Stat {
            dev: m.dev(),
            ino: m.ino(),
            mode: m.mode(),
            nlink: m.nlink(),
            uid: m.uid(),
            gid: m.gid(),
            rdev: m.rdev(),
            size: m.size(),
            blocks: m.blocks(),
            atime: t(m.atime(), m.atime_nsec()),
            mtime: t(m.mtime(), m.mtime_nsec()),
            ctime: t(m.ctime(), m.ctime_nsec()),
        }
    }
}

/// `lstat(2)`.
pub fn lstat(p: &Path) -> io::Result<Stat> {
    std::fs::symlink_metadata(p).map(|m| Stat::from(&m))
}

/// File type bits.
pub fn file_type(mode: u32) -> u32 {
    mode & libc::S_IFMT
}

/// Extended attributes of the path itself (not following symlinks), sorted by name.
pub fn read_xattrs(p: &Path) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    let names = match xattr::list(p) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(out),
        Err(e) => return Err(e),
    };
    for name in names {
        if let Some(v) = xattr::get(p, &name)? {
            out.push((name.as_bytes().to_vec(), v));
        }
    }
    out.sort();
    Ok(out)
}

// The setters act on a name relative to an open directory, or on an open file, and never follow a
// symlink: restore walks its target through them (src/ops/restore/write.rs). There are no
// path-based setters.

/// What is at `name` in `dir` (not following a symlink): `None` when nothing is.
pub fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<rfs::FileType>> {
    match rfs::statat(dir, name, rfs::AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(rfs::FileType::from_raw_mode(st.st_mode))),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Opens the directory `name` in `dir`; a symlink there is an error (`ELOOP`), never followed.
pub fn open_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    let flags = rfs::OFlags::RDONLY | rfs::OFlags::DIRECTORY | rfs::OFlags::NOFOLLOW | rfs::OFlags::CLOEXEC;
    Ok(rfs::openat(dir, name, flags, rfs::Mode::empty())?)
}

/// Opens the directory at `path`, following the caller's own path (symlinks included).
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let flags = rfs::OFlags::RDONLY | rfs::OFlags::DIRECTORY | rfs::OFlags::CLOEXEC;
    Ok(rfs::open(path, flags, rfs::Mode::empty())?)
}

/// `mkdirat(2)`.
pub fn mkdir_at(dir: BorrowedFd<'_>, name: &OsStr, mode: u32) -> io::Result<()> {
    Ok(rfs::mkdirat(dir, name, rfs::Mode::from_raw_mode(mode & 0o7777))?)
}

/// Creates the regular file `name` in `dir` (mode 0600, write-only): fails if anything, a
/// symlink included, is already there.
pub fn create_file_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<File> {
    let flags =
        rfs::OFlags::WRONLY | rfs::OFlags::CREATE | rfs::OFlags::EXCL | rfs::OFlags::NOFOLLOW | rfs::OFlags::CLOEXEC;
    Ok(File::from(rfs::openat(dir, name, flags, rfs::Mode::from_raw_mode(0o600))?))
}

/// Opens the regular file `name` in `dir` for writing or reading: a symlink is an error, never
/// followed, and so is anything but a regular file (opened non-blocking, so a FIFO put there
/// cannot hang the caller).
pub fn open_file_at(dir: BorrowedFd<'_>, name: &OsStr, write: bool) -> io::Result<File> {
    let access = if write { rfs::OFlags::WRONLY } else { rfs::OFlags::RDONLY };
    let flags = access | rfs::OFlags::NOFOLLOW | rfs::OFlags::NONBLOCK | rfs::OFlags::CLOEXEC;
    let fd = rfs::openat(dir, name, flags, rfs::Mode::empty())?;
    if rfs::FileType::from_raw_mode(rfs::fstat(&fd)?.st_mode) != rfs::FileType::RegularFile {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(File::from(fd))
}

/// Opens `name` in `dir` as an `O_PATH` handle on the entry itself (a symlink is not followed) and
/// returns it with its type.
pub fn open_path_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<(OwnedFd, rfs::FileType)> {
    let flags = rfs::OFlags::PATH | rfs::OFlags::NOFOLLOW | rfs::OFlags::CLOEXEC;
    let fd = rfs::openat(dir, name, flags, rfs::Mode::empty())?;
    let t = rfs::FileType::from_raw_mode(rfs::fstat(&fd)?.st_mode);
    Ok((fd, t))
}

/// Sets the permission bits of what an `O_PATH` handle (not on a symlink) names, through
/// `/proc/self/fd`, which resolves to that very inode.
pub fn chmod_path_fd(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    let p = format!("/proc/self/fd/{}", fd.as_raw_fd());
    Ok(rfs::chmod(p.as_str(), rfs::Mode::from_raw_mode(mode & 0o7777))?)
}

/// `unlinkat(2)`: removes the directory (only if empty) or the other entry `name` in `dir`.
pub fn unlink_at(dir: BorrowedFd<'_>, name: &OsStr, is_dir: bool) -> io::Result<()> {
    let flags = if is_dir { rfs::AtFlags::REMOVEDIR } else { rfs::AtFlags::empty() };
    Ok(rfs::unlinkat(dir, name, flags)?)
}

/// `symlinkat(2)`: creates `name` in `dir` pointing to `to`.
pub fn symlink_at(to: &[u8], dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    Ok(rfs::symlinkat(OsStr::from_bytes(to), dir, name)?)
}

/// `linkat(2)` without `AT_SYMLINK_FOLLOW`: `name` in `dir` becomes another name of `from_name` in
/// `from_dir` (the entry itself).
pub fn link_at(from_dir: BorrowedFd<'_>, from_name: &OsStr, dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    Ok(rfs::linkat(from_dir, from_name, dir, name, rfs::AtFlags::empty())?)
}

/// `mknodat(2)`: a FIFO (`kind` `S_IFIFO`) or a device node (`S_IFCHR`, `S_IFBLK`).
pub fn mknod_at(dir: BorrowedFd<'_>, name: &OsStr, kind: u32, mode: u32, rdev: u64) -> io::Result<()> {
    let t = rfs::FileType::from_raw_mode(kind);
    Ok(rfs::mknodat(dir, name, t, rfs::Mode::from_raw_mode(mode & 0o777), rdev)?)
}

/// Owner ids as rustix takes them: `u32::MAX` (-1) means "leave unchanged" to the kernel and is no
/// one's id, so it is an error.
fn ids(uid: u32, gid: u32) -> io::Result<(rfs::Uid, rfs::Gid)> {
    if uid == u32::MAX || gid == u32::MAX {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("invalid owner {uid}:{gid}")));
    }
    Ok((rfs::Uid::from_raw(uid), rfs::Gid::from_raw(gid)))
}

/// `fchown(2)`.
pub fn fchown(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    let (u, g) = ids(uid, gid)?;
    Ok(rfs::fchown(fd, Some(u), Some(g))?)
}

/// `fchownat(2)` with `AT_SYMLINK_NOFOLLOW`: the owner of the entry `name` in `dir` itself.
pub fn lchown_at(dir: BorrowedFd<'_>, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
    let (u, g) = ids(uid, gid)?;
    Ok(rfs::chownat(dir, name, Some(u), Some(g), rfs::AtFlags::SYMLINK_NOFOLLOW)?)
}

/// `fchmod(2)` with the permission bits of `mode` (setuid, setgid, sticky included).
pub fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    Ok(rfs::fchmod(fd, rfs::Mode::from_raw_mode(mode & 0o7777))?)
}

fn timestamps(atime: Time, mtime: Time) -> rfs::Timestamps {
    let ts = |t: Time| rfs::Timespec { tv_sec: t.secs, tv_nsec: t.nanos.into() };
    rfs::Timestamps { last_access: ts(atime), last_modification: ts(mtime) }
}

/// `futimens(2)`: atime and mtime with nanoseconds.
pub fn set_times_fd(fd: BorrowedFd<'_>, atime: Time, mtime: Time) -> io::Result<()> {
    Ok(rfs::futimens(fd, &timestamps(atime, mtime))?)
}

/// `utimensat(2)` with `AT_SYMLINK_NOFOLLOW`: the times of the entry `name` in `dir` itself.
pub fn set_times_at(dir: BorrowedFd<'_>, name: &OsStr, atime: Time, mtime: Time) -> io::Result<()> {
    Ok(rfs::utimensat(dir, name, &timestamps(atime, mtime), rfs::AtFlags::SYMLINK_NOFOLLOW)?)
}

/// Sets extended attributes through an open file.
pub fn write_xattrs_fd(fd: BorrowedFd<'_>, attrs: &[(Vec<u8>, Vec<u8>)]) -> io::Result<()> {
    for (k, v) in attrs {
        rfs::fsetxattr(fd, OsStr::from_bytes(k), v, rfs::XattrFlags::empty())?;
    }
    Ok(())
}

/// Sets extended attributes of the entry `name` in `dir` itself (a symlink, which cannot be
/// opened): `lsetxattr` on `/proc/self/fd/DIR/NAME`, whose last component is not followed.
pub fn write_xattrs_at(dir: BorrowedFd<'_>, name: &OsStr, attrs: &[(Vec<u8>, Vec<u8>)]) -> io::Result<()> {
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name.as_bytes());
    for (k, v) in attrs {
        rfs::lsetxattr(OsStr::from_bytes(&p), OsStr::from_bytes(k), v, rfs::XattrFlags::empty())?;
    }
    Ok(())
}
