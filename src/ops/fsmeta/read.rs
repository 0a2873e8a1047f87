//! The read side through handles, for backup: nothing here follows a symlink that the user did
//! not name, and every handle is checked against the stat the walk decided by (README "Security
//! model": a local user who swaps an entry for a symlink between the stat and the open).

use super::{t, Stat};
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;

fn cname(name: &std::ffi::OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| nul_in_name())
}

fn nul_in_name() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "name contains NUL")
}

/// Calls `f` with `name` as a C string: built on the stack when it is short (most names; the walk
/// makes one per entry), else allocated.
fn with_cname<T>(name: &std::ffi::OsStr, f: impl FnOnce(&std::ffi::CStr) -> io::Result<T>) -> io::Result<T> {
    let b = name.as_bytes();
    let mut buf = [0u8; 256];
    if b.len() < buf.len() {
        buf[..b.len()].copy_from_slice(b);
        let c = std::ffi::CStr::from_bytes_with_nul(&buf[..=b.len()]).map_err(|_| nul_in_name())?;
        f(c)
    } else {
        f(&cname(name)?)
    }
}

/// A `stat` buffer as [`Stat`].
fn from_raw(s: &libc::stat) -> Stat {
    Stat {
        dev: s.st_dev,
        ino: s.st_ino,
        mode: s.st_mode,
        nlink: s.st_nlink,
        uid: s.st_uid,
        gid: s.st_gid,
        rdev: s.st_rdev,
        size: s.st_size.max(0) as u64,
        blocks: s.st_blocks.max(0) as u64,
        atime: t(s.st_atime, s.st_atime_nsec),
        mtime: t(s.st_mtime, s.st_mtime_nsec),
        ctime: t(s.st_ctime, s.st_ctime_nsec),
    }
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`: the entry `name` of the open directory `dir`
/// itself, never what it points to.
pub fn lstat_at(dir: &std::fs::File, name: &std::ffi::OsStr) -> io::Result<Stat> {
    use std::os::fd::AsRawFd;
    with_cname(name, |c| {
        // SAFETY: an all-zero `stat` is a valid value of the plain C struct.
        let mut s: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `dir` is an open descriptor, `c` a valid C string, `s` a writable stat buffer.
        if unsafe { libc::fstatat(dir.as_raw_fd(), c.as_ptr(), &mut s, libc::AT_SYMLINK_NOFOLLOW) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(from_raw(&s))
    })
}

/// `fstat(2)` of an open handle.
pub fn fstat(f: &std::fs::File) -> io::Result<Stat> {
    f.metadata().map(|m| Stat::from(&m))
}

/// True when `a` and `b` describe the same object: device, inode and file type (a file deleted
/// and replaced by a FIFO can get its inode number again).
pub fn same_object(a: &Stat, b: &Stat) -> bool {
    a.dev == b.dev && a.ino == b.ino && super::file_type(a.mode) == super::file_type(b.mode)
}

/// `openat(dir, name, flags | O_NOATIME)`, again without `O_NOATIME` where the kernel refuses it
/// (only the owner or root may keep the access time), so reading does not change what the next
/// backup records. `dir` `None` resolves `name` from the current directory (absolute paths).
fn open_at(dir: Option<&std::fs::File>, name: &std::ffi::OsStr, flags: libc::c_int) -> io::Result<std::fs::File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let base = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    let flags = flags | libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY;
    with_cname(name, |c| {
        // SAFETY: `base` is AT_FDCWD or an open descriptor, `c` a valid C string.
        let mut fd = unsafe { libc::openat(base, c.as_ptr(), flags | libc::O_NOATIME) };
        if fd < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EPERM) {
            // SAFETY: as above.
            fd = unsafe { libc::openat(base, c.as_ptr(), flags) };
        }
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and is owned by nobody else.
        Ok(unsafe { std::fs::File::from_raw_fd(fd) })
    })
}

/// Opens the directory `name` of `dir` (or the path `name` when `dir` is `None`) as a handle to
/// read it through. With `follow` false a symlink is refused (`ELOOP`/`ENOTDIR`): only the paths
/// the user names are resolved through symlinks.
pub fn open_dir_for_read(
    dir: Option<&std::fs::File>,
    name: &std::ffi::OsStr,
    follow: bool,
) -> io::Result<std::fs::File> {
    let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
    open_at(dir, name, libc::O_DIRECTORY | nofollow)
}

/// Opens the regular file `name` of `dir` for reading, and returns the handle with its `fstat`:
/// never through a symlink (`O_NOFOLLOW`), and without blocking when the name now holds a FIFO or
/// a device (`O_NONBLOCK`). The flag stays: it has no effect on regular files, and reading through
/// [`Blocking`] clears it should a file system answer `EAGAIN` after all (two system calls a file
/// fewer, for a million small files). The stat must still be compared with the one the caller
/// decided by ([`same_object`]): a rename can put another file under the name.
pub fn open_file_for_read(dir: &std::fs::File, name: &std::ffi::OsStr) -> io::Result<(std::fs::File, Stat)> {
    let f = open_at(Some(dir), name, libc::O_NOFOLLOW | libc::O_NONBLOCK)?;
    let st = fstat(&f)?;
    Ok((f, st))
}

/// Reads a handle [`open_file_for_read`] opened: on `EAGAIN` (a file system that honours
/// `O_NONBLOCK` on a regular file) it clears the flag once and reads again.
pub struct Blocking<'a>(pub &'a std::fs::File);

impl io::Read for Blocking<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        let mut r = (&mut &*self.0).read(buf);
        if matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            let fd = self.0.as_raw_fd();
            // SAFETY: `fd` is open; F_SETFL with the flags F_GETFL read.
            unsafe {
                let fl = libc::fcntl(fd, libc::F_GETFL);
                if fl < 0 || libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            r = (&mut &*self.0).read(buf);
        }
        r
    }
}

/// `readlinkat(dir, name)`: the target of the symlink `name` of `dir`.
pub fn read_link_at(dir: &std::fs::File, name: &std::ffi::OsStr) -> io::Result<Vec<u8>> {
    use std::os::fd::AsRawFd;
    let c = cname(name)?;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: `dir` is open, `c` valid, `buf` writable for `buf.len()` bytes.
        let n = unsafe { libc::readlinkat(dir.as_raw_fd(), c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n < buf.len() {
            buf.truncate(n);
            return Ok(buf);
        }
        if buf.len() >= 1 << 20 {
            return Err(io::Error::other("symlink target longer than 1 MiB"));
        }
        buf.resize(buf.len() * 4, 0);
    }
}

/// The names in the open directory `dir` (without `.` and `..`), in directory order, each with
/// the type the directory entry gives (`d_type`: `DT_REG`, `DT_DIR`, ..., or `DT_UNKNOWN` where
/// the file system does not say). A hint only: the entry can change before it is examined.
///
/// Read with `getdents64` on `dir` itself, from its start: `fdopendir` on a duplicate cost six
/// system calls per directory more (the duplicate, its `fstat`, two `fcntl`, the seek, the close).
pub fn list_dir(dir: &std::fs::File) -> io::Result<Vec<(std::ffi::OsString, u8)>> {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStringExt;
    let fd = dir.as_raw_fd();
    // SAFETY: a plain system call on a descriptor `dir` keeps open.
    if unsafe { libc::lseek(fd, 0, libc::SEEK_SET) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // Not zeroed: the kernel fills what it returns (a zeroed buffer cost 32 KiB of memset per
    // directory).
    let mut buf: Vec<u8> = Vec::with_capacity(DIRENT_BUFFER);
    let mut names = Vec::new();
    loop {
        // SAFETY: the kernel writes at most `buf.capacity()` bytes into `buf`'s allocation.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.capacity()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let n = n as usize;
        if n == 0 {
            return Ok(names);
        }
        if n > buf.capacity() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "getdents64 returned more than it was given room for",
            ));
        }
        // SAFETY: the kernel initialised the first `n` bytes, within the capacity.
        unsafe { buf.set_len(n) };
        dirents(&buf, |name, t| {
            if name != b"." && name != b".." {
                names.push((std::ffi::OsString::from_vec(name.to_vec()), t));
            }
        })?;
    }
}

/// The bytes `getdents64` is given per call (what glibc's `readdir` uses).
const DIRENT_BUFFER: usize = 32 * 1024;

/// The entries of a `getdents64` result: `struct linux_dirent64` records (`d_ino` u64, `d_off`
/// i64, `d_reclen` u16, `d_type` u8, then the NUL-terminated name, padded to `d_reclen`), read
/// byte by byte (no alignment assumed), each name and type handed to `each`. A record that does
/// not fit is an error, not a panic.
fn dirents<'a>(mut bytes: &'a [u8], mut each: impl FnMut(&'a [u8], u8)) -> io::Result<()> {
    const NAME_AT: usize = 19;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed directory entry from getdents64");
    while !bytes.is_empty() {
        let len = bytes.get(16..18).map(|b| u16::from_ne_bytes([b[0], b[1]]) as usize).ok_or_else(bad)?;
        let record = bytes.get(..len).filter(|_| len > NAME_AT).ok_or_else(bad)?;
        let name = &record[NAME_AT..];
        let end = name.iter().position(|&c| c == 0).ok_or_else(bad)?;
        each(&name[..end], record[18]);
        bytes = &bytes[len..];
    }
    Ok(())
}

/// Extended attributes of an open file or directory, sorted by name.
pub fn read_xattrs_fd(f: &std::fs::File) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    use xattr::FileExt;
    let mut out = Vec::new();
    let names = match f.list_xattr() {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(out),
        Err(e) => return Err(e),
    };
    for name in names {
        if let Some(v) = f.get_xattr(&name)? {
            out.push((name.as_bytes().to_vec(), v));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::FromRawFd;

    /// Names on the stack and names too long for it reach the kernel alike; a NUL is refused
    /// either way, before any system call.
    #[test]
    fn names_of_every_length_reach_the_kernel_and_a_nul_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = std::fs::File::open(tmp.path()).unwrap();
        for len in [1usize, 200, 254, 255] {
            let name = "n".repeat(len);
            std::fs::write(tmp.path().join(&name), b"x").unwrap();
            let st = lstat_at(&dir, std::ffi::OsStr::new(&name)).unwrap();
            assert_eq!(st.size, 1, "{len}");
            assert!(open_file_for_read(&dir, std::ffi::OsStr::new(&name)).is_ok(), "{len}");
        }
        // 256 bytes and more: past the stack buffer, and past what ext4 and tmpfs allow in a name.
        let long = "n".repeat(300);
        let e = lstat_at(&dir, std::ffi::OsStr::new(&long)).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENAMETOOLONG));
        for name in ["a\0b", "\0", "x\0"] {
            let e = lstat_at(&dir, std::ffi::OsStr::new(name)).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{name:?}");
            let e = open_file_for_read(&dir, std::ffi::OsStr::new(name)).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{name:?}");
        }
    }

    #[test]
    fn blocking_reads_clear_a_nonblocking_flag_that_a_file_system_honours() {
        // A pipe stands in for a file system that answers EAGAIN on an O_NONBLOCK handle.
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) }, 0);
        // SAFETY: both descriptors were just created and are owned by nobody else.
        let (r, mut w) = unsafe { (std::fs::File::from_raw_fd(fds[0]), std::fs::File::from_raw_fd(fds[1])) };
        let writer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            w.write_all(b"late bytes").unwrap();
        });
        let mut plain = [0u8; 16];
        assert_eq!((&r).read(&mut plain).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        let mut got = Vec::new();
        Blocking(&r).read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        assert_eq!(got, b"late bytes");
    }

    #[test]
    fn a_directory_is_listed_whole_with_its_types_over_many_reads_and_again_from_its_start() {
        let tmp = tempfile::tempdir().unwrap();
        // 255-byte names: about 120 to a 32 KiB read, so 3,000 of them take many reads.
        let mut want = std::collections::BTreeMap::new();
        for i in 0..3000 {
            let name = format!("{i:05}{}", "f".repeat(if i % 2 == 0 { 250 } else { 3 }));
            std::fs::write(tmp.path().join(&name), b"").unwrap();
            want.insert(name.into_bytes(), libc::DT_REG);
        }
        std::fs::create_dir(tmp.path().join("sub")).unwrap();
        want.insert(b"sub".to_vec(), libc::DT_DIR);
        std::os::unix::fs::symlink("nowhere", tmp.path().join("link")).unwrap();
        want.insert(b"link".to_vec(), libc::DT_LNK);
        let dir = std::fs::File::open(tmp.path()).unwrap();
        for _ in 0..2 {
            let got: std::collections::BTreeMap<Vec<u8>, u8> = list_dir(&dir)
                .unwrap()
                .into_iter()
                .map(|(n, t)| (std::os::unix::ffi::OsStringExt::into_vec(n), t))
                .collect();
            // d_type may be DT_UNKNOWN on a file system that does not fill it in.
            assert_eq!(got.len(), want.len(), "no name twice, none missing, no . or ..");
            for (name, t) in &got {
                assert!(want[name] == *t || *t == libc::DT_UNKNOWN, "{}", String::from_utf8_lossy(name));
            }
        }
    }

    #[test]
    fn malformed_directory_records_are_errors_not_panics() {
        // One good record: ino, off, reclen 24, DT_REG, "ab\0", padding.
        let mut good = vec![0u8; 24];
        good[16..18].copy_from_slice(&24u16.to_ne_bytes());
        good[18] = libc::DT_REG;
        good[19..21].copy_from_slice(b"ab");
        let all = |bytes| {
            let mut out = Vec::new();
            dirents(bytes, |n, t| out.push((n, t))).map(|()| out)
        };
        assert_eq!(all(&good).unwrap(), vec![(&b"ab"[..], libc::DT_REG)]);
        let mut no_nul = good.clone();
        no_nul[19..24].copy_from_slice(b"abcde");
        let mut long = good.clone();
        long[16..18].copy_from_slice(&40u16.to_ne_bytes());
        let mut zero = good.clone();
        zero[16..18].copy_from_slice(&0u16.to_ne_bytes());
        for bad in [&good[..10], &good[..20], &no_nul[..], &long[..], &zero[..]] {
            assert!(all(bad).is_err(), "{bad:?}");
        }
    }
}
