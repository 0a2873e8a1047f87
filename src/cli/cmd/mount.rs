//! `cairn mount`: the snapshots as a read-only FUSE filesystem. The filesystem model is the
//! library's ([`cairn::mount::MountFs`]); this file maps fuser's calls onto it one to one and runs
//! the session until a signal (SIGINT, SIGTERM) or an unmount from outside, then unmounts.

use crate::cli::args::MountArgs;
use crate::cli::{open, Ctx, Outcome};
use anyhow::Context;
use cairn::mount::{Attr, Kind, MountFs};
use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, MountOption,
    OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry, ReplyOpen, ReplyXattr, Request, SessionACL,
};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long the kernel may keep attributes and names: the mount never changes.
const TTL: Duration = Duration::from_secs(3600);

struct Fs(MountFs);

fn errno(e: &cairn::Error) -> Errno {
    match e {
        cairn::Error::NotFound(_) => Errno::ENOENT,
        cairn::Error::Usage(m) if m.contains("not a directory") => Errno::ENOTDIR,
        cairn::Error::Usage(_) => Errno::EINVAL,
        _ => Errno::EIO,
    }
}

/// A stored time as the kernel takes it; one beyond what `SystemTime` holds (a hostile tree) is the epoch.
fn system_time(t: cairn::tree::Time) -> SystemTime {
    if t.secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(t.secs as u64, t.nanos.min(999_999_999))).unwrap_or(UNIX_EPOCH)
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(t.secs.unsigned_abs())).unwrap_or(UNIX_EPOCH)
    }
}

fn file_type(k: Kind) -> FileType {
    match k {
        Kind::Dir => FileType::Directory,
        Kind::File => FileType::RegularFile,
        Kind::Symlink => FileType::Symlink,
        Kind::Fifo => FileType::NamedPipe,
        Kind::CharDevice => FileType::CharDevice,
        Kind::BlockDevice => FileType::BlockDevice,
        Kind::Socket => FileType::Socket,
    }
}

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: system_time(a.atime),
        mtime: system_time(a.mtime),
        ctime: system_time(a.ctime),
        crtime: system_time(a.mtime),
        kind: file_type(a.kind),
        perm: (a.perm & 0o7777) as u16,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev as u32,
        blksize: 4096,
        flags: 0,
    }
}

/// Answers an xattr request: the size when `size` is 0, the bytes when they fit, else ERANGE.
fn xattr_reply(reply: ReplyXattr, data: &[u8], size: u32) {
    if size == 0 {
        reply.size(data.len() as u32);
    } else if data.len() <= size as usize {
        reply.data(data);
    } else {
        reply.error(Errno::ERANGE);
    }
}

impl Filesystem for Fs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.0.lookup(parent.0, name.as_bytes()) {
            Ok(a) => reply.entry(&TTL, &file_attr(&a), Generation(0)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.0.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.0.getattr(ino.0) {
            Ok(a) => reply.attr(&TTL, &file_attr(&a)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.0.readlink(ino.0) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.0 & libc::O_ACCMODE != libc::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        match self.0.open(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE),
            Err(e) => {
                tracing::warn!("open of inode {}: {e}", ino.0);
                reply.error(errno(&e))
            }
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.0.read(fh.0, offset, u64::from(size)) {
            Ok(d) => reply.data(&d),
            Err(e) => {
                tracing::warn!("read: {e}");
                reply.error(Errno::EIO)
            }
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: fuser::ReplyEmpty) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: fuser::ReplyEmpty,
    ) {
        self.0.release(fh.0);
        reply.ok();
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let entries = match self.0.readdir(ino.0) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!("listing inode {}: {e}", ino.0);
                return reply.error(errno(&e));
            }
        };
        let dots = [(b".".to_vec(), Kind::Dir, Some(ino.0)), (b"..".to_vec(), Kind::Dir, Some(ino.0))];
        let all = dots.into_iter().chain(entries);
        for (i, (name, kind, known)) in all.enumerate().skip(offset as usize) {
            // An entry the kernel has not looked up yet gets a stand-in number (ls -i shows the
            // real one after a stat, which is a lookup).
            let n = known.unwrap_or(u64::MAX - i as u64);
            if reply.add(INodeNo(n), (i + 1) as u64, file_type(kind), OsStr::from_bytes(&name)) {
                break;
            }
        }
        reply.ok();
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        match self.0.xattrs(ino.0) {
            Ok(x) => match x.iter().find(|(k, _)| k.as_slice() == name.as_bytes()) {
                Some((_, v)) => xattr_reply(reply, v, size),
                None => reply.error(Errno::NO_XATTR),
            },
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        match self.0.xattrs(ino.0) {
            Ok(x) => {
                let names: Vec<u8> = x.iter().flat_map(|(k, _)| k.iter().copied().chain([0])).collect();
                xattr_reply(reply, &names, size)
            }
            Err(e) => reply.error(errno(&e)),
        }
    }
}

pub fn run(ctx: &Ctx, a: MountArgs) -> anyhow::Result<Outcome> {
    let repo = open::open_reader(&ctx.g, &ctx.out)?;
    let snaps = a.filter.filter().entries(&repo)?;
    let n = snaps.len();
    // SAFETY: getuid and getgid cannot fail and touch no memory.
    let owner = unsafe { (libc::getuid(), libc::getgid()) };
    let fs = Fs(MountFs::new(repo, snaps, a.cache_size, owner));
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::RO,
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::DefaultPermissions,
        MountOption::FSName("cairn".into()),
        MountOption::Subtype("cairn".into()),
    ];
    if a.allow_other {
        config.acl = SessionACL::All;
    }
    let session = fuser::spawn_mount(fs, &a.mountpoint, &config)
        .with_context(|| format!("cannot mount on {}", a.mountpoint.display()))?;
    ctx.out.note(format!("mounted {n} snapshot(s) on {} (read-only); Ctrl-C or umount to end", a.mountpoint.display()));
    // Until a signal, or until the kernel ends the session (an unmount from outside).
    while !ctx.cancel.load(Ordering::Relaxed) && !session.guard.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
    }
    if session.guard.is_finished() {
        session.join().context("the FUSE session failed")?;
    } else {
        session.umount_and_join().with_context(|| format!("unmounting {}", a.mountpoint.display()))?;
    }
    Ok(Outcome::Done)
}
