//! Reading and applying file metadata on Unix: owners, modes, nanosecond times, xattrs, special
//! files. Thin wrappers over the system calls; no policy.

use crate::time::Time;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

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

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
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

/// Sets extended attributes on the path itself.
pub fn write_xattrs(p: &Path, attrs: &[(Vec<u8>, Vec<u8>)]) -> io::Result<()> {
    for (k, v) in attrs {
        xattr::set(p, std::ffi::OsStr::from_bytes(k), v)?;
    }
    Ok(())
}

/// `lchown(2)`.
pub fn lchown(p: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let c = cpath(p)?;
    // SAFETY: c is a valid C string.
    if unsafe { libc::lchown(c.as_ptr(), uid, gid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets atime and mtime with nanoseconds, not following symlinks.
pub fn set_times(p: &Path, atime: Time, mtime: Time) -> io::Result<()> {
    let c = cpath(p)?;
    let ts = [
        libc::timespec { tv_sec: atime.secs as libc::time_t, tv_nsec: atime.nanos as libc::c_long },
        libc::timespec { tv_sec: mtime.secs as libc::time_t, tv_nsec: mtime.nanos as libc::c_long },
    ];
    // SAFETY: c is valid, ts has two entries.
    if unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `chmod(2)` with the permission bits of `mode` (including setuid, setgid, sticky).
pub fn chmod(p: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode & 0o7777))
}

/// Creates a FIFO.
pub fn mkfifo(p: &Path, mode: u32) -> io::Result<()> {
    let c = cpath(p)?;
    // SAFETY: c is valid.
    if unsafe { libc::mkfifo(c.as_ptr(), (mode & 0o777) as libc::mode_t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Creates a device node (`kind` is `S_IFCHR` or `S_IFBLK`).
pub fn mknod(p: &Path, kind: u32, mode: u32, rdev: u64) -> io::Result<()> {
    let c = cpath(p)?;
    // SAFETY: c is valid.
    if unsafe { libc::mknod(c.as_ptr(), (kind | (mode & 0o777)) as libc::mode_t, rdev as libc::dev_t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
