//! Reading and applying file metadata on Unix: owners, modes, nanosecond times, xattrs, special
//! files. Thin wrappers over the system calls; no policy.

use crate::tree::Time;
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

/// The first buffer size for `getpwuid_r`/`getgrgid_r`; it grows on `ERANGE`.
const NAME_BUF_START: usize = 4096;
/// The largest buffer a lookup tries (a group with thousands of members needs a large one).
const NAME_BUF_MAX: usize = 16 << 20;

/// Runs a `get*id_r` lookup with a buffer that starts at `start` bytes and doubles while the call
/// answers `ERANGE`. `call` returns the call's result code and, on success, the name.
fn lookup_name(start: usize, mut call: impl FnMut(&mut [u8]) -> (libc::c_int, Option<String>)) -> Option<String> {
    let mut size = start.max(1);
    loop {
        let mut buf = vec![0u8; size];
        match call(&mut buf) {
            (0, name) => return name,
            (libc::ERANGE, _) if size < NAME_BUF_MAX => size = size.saturating_mul(2).min(NAME_BUF_MAX),
            _ => return None,
        }
    }
}

fn user_name_from(uid: u32, start: usize) -> Option<String> {
    lookup_name(start, |buf| {
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut res: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the sizes given; getpwuid_r fills pw within buf.
        let r = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr() as *mut libc::c_char, buf.len(), &mut res) };
        if r != 0 || res.is_null() {
            return (r, None);
        }
        // SAFETY: on success pw_name points to a NUL-terminated string inside buf.
        let name = unsafe { std::ffi::CStr::from_ptr(pw.pw_name) };
        (0, Some(name.to_string_lossy().into_owned()))
    })
}

fn group_name_from(gid: u32, start: usize) -> Option<String> {
    lookup_name(start, |buf| {
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut res: *mut libc::group = std::ptr::null_mut();
        // SAFETY: as for getpwuid_r.
        let r = unsafe { libc::getgrgid_r(gid, &mut gr, buf.as_mut_ptr() as *mut libc::c_char, buf.len(), &mut res) };
        if r != 0 || res.is_null() {
            return (r, None);
        }
        // SAFETY: on success gr_name points into buf.
        let name = unsafe { std::ffi::CStr::from_ptr(gr.gr_name) };
        (0, Some(name.to_string_lossy().into_owned()))
    })
}

/// The name of a user id (`None` when the id has no entry).
pub fn user_name(uid: u32) -> Option<String> {
    user_name_from(uid, NAME_BUF_START)
}

/// The name of a group id (`None` when the id has no entry).
pub fn group_name(gid: u32) -> Option<String> {
    group_name_from(gid, NAME_BUF_START)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry larger than the first buffer (here: a 1-byte first buffer, where the default is 4 KiB) is found
    /// after the buffer grows, instead of coming back as no name.
    #[test]
    fn names_larger_than_the_first_buffer_are_found() {
        let user = user_name_from(0, NAME_BUF_START).expect("uid 0 has a name");
        assert_eq!(user_name_from(0, 1).as_deref(), Some(user.as_str()));
        let group = group_name_from(0, NAME_BUF_START).expect("gid 0 has a name");
        assert_eq!(group_name_from(0, 1).as_deref(), Some(group.as_str()));
    }

    #[test]
    fn the_buffer_doubles_on_erange_and_stops_at_the_limit() {
        let mut sizes = Vec::new();
        let name = lookup_name(1000, |buf| {
            sizes.push(buf.len());
            if buf.len() < 5000 {
                (libc::ERANGE, None)
            } else {
                (0, Some("long".into()))
            }
        });
        assert_eq!(name.as_deref(), Some("long"));
        assert_eq!(sizes, [1000, 2000, 4000, 8000]);
        let mut calls = 0;
        assert_eq!(
            lookup_name(NAME_BUF_MAX / 2, |_| {
                calls += 1;
                (libc::ERANGE, None)
            }),
            None
        );
        assert_eq!(calls, 2, "gives up at the limit");
        assert_eq!(lookup_name(64, |_| (libc::EIO, None)), None);
    }
}
