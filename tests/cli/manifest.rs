//! An independent description of a directory tree (computed with lstat/readlink/read/xattr calls, never with
//! cairn's code) that two trees can be compared by: per relative path the kind, mode, owner, size, mtime and atime
//! in nanoseconds, symlink target, device number, `user.*` extended attributes and a content digest, plus the
//! groups of paths that share an inode (hard links). ctime is not part of it (it cannot be restored).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::common::{file_digest, join_rel, set_times, show};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    CharDev,
    BlockDev,
    Socket,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// Full `st_mode` (type and permission bits, including setuid/setgid/sticky).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// `st_size`; 0 for directories (their size depends on the file system's directory layout).
    pub size: u64,
    pub mtime_ns: i128,
    pub atime_ns: i128,
    pub link_target: Option<Vec<u8>>,
    /// `st_rdev` of device nodes.
    pub rdev: Option<u64>,
    /// `user.*` extended attributes.
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// blake3 of a regular file's content.
    pub digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub entries: BTreeMap<Vec<u8>, Entry>,
    /// Sets of (two or more) paths that are the same inode.
    pub hardlinks: BTreeSet<BTreeSet<Vec<u8>>>,
}

fn ns(sec: i64, nsec: i64) -> i128 {
    sec as i128 * 1_000_000_000 + nsec as i128
}

impl Manifest {
    /// Describes the tree at `root`; the root itself is the entry with the empty relative path.
    ///
    /// Times are taken from a first pass of lstat calls, each directory before it is read, so the manifest holds
    /// the times as they were before this function looked. Reading contents, symlinks and directories may change
    /// atimes, so at the end every entry's atime is set back to the recorded value (mtime untouched): computing a
    /// manifest leaves the tree's atimes and mtimes as they were.
    pub fn capture(root: &Path) -> Manifest {
        let mut stats: Vec<(Vec<u8>, PathBuf, fs::Metadata)> = Vec::new();
        fn stat_walk(path: &Path, rel: Vec<u8>, out: &mut Vec<(Vec<u8>, PathBuf, fs::Metadata)>) {
            let md = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {path:?}: {e}"));
            let is_dir = md.is_dir();
            out.push((rel.clone(), path.to_path_buf(), md));
            if is_dir {
                let mut names: Vec<_> = fs::read_dir(path)
                    .unwrap_or_else(|e| panic!("read_dir {path:?}: {e}"))
                    .map(|e| e.unwrap().file_name())
                    .collect();
                names.sort();
                for name in names {
                    let mut r = rel.clone();
                    if !r.is_empty() {
                        r.push(b'/');
                    }
                    r.extend_from_slice(name.as_bytes());
                    stat_walk(&path.join(&name), r, out);
                }
            }
        }
        stat_walk(root, Vec::new(), &mut stats);

        let mut entries = BTreeMap::new();
        let mut inodes: BTreeMap<(u64, u64), BTreeSet<Vec<u8>>> = BTreeMap::new();
        for (rel, path, md) in &stats {
            let ft = md.file_type();
            let kind = if ft.is_file() {
                Kind::File
            } else if ft.is_dir() {
                Kind::Dir
            } else if ft.is_symlink() {
                Kind::Symlink
            } else if ft.is_fifo() {
                Kind::Fifo
            } else if ft.is_char_device() {
                Kind::CharDev
            } else if ft.is_block_device() {
                Kind::BlockDev
            } else if ft.is_socket() {
                Kind::Socket
            } else {
                panic!("unknown file type at {path:?}")
            };
            let link_target =
                (kind == Kind::Symlink).then(|| fs::read_link(path).unwrap().into_os_string().as_bytes().to_vec());
            let digest = (kind == Kind::File).then(|| file_digest(path));
            let rdev = matches!(kind, Kind::CharDev | Kind::BlockDev).then(|| md.rdev());
            let mut xattrs = BTreeMap::new();
            if let Ok(names) = xattr::list(path) {
                for name in names {
                    if name.as_bytes().starts_with(b"user.") {
                        if let Ok(Some(value)) = xattr::get(path, &name) {
                            xattrs.insert(name.as_bytes().to_vec(), value);
                        }
                    }
                }
            }
            if kind != Kind::Dir && md.nlink() > 1 {
                inodes.entry((md.dev(), md.ino())).or_default().insert(rel.clone());
            }
            entries.insert(
                rel.clone(),
                Entry {
                    kind,
                    mode: md.mode(),
                    uid: md.uid(),
                    gid: md.gid(),
                    size: if kind == Kind::Dir { 0 } else { md.size() },
                    mtime_ns: ns(md.mtime(), md.mtime_nsec()),
                    atime_ns: ns(md.atime(), md.atime_nsec()),
                    link_target,
                    rdev,
                    xattrs,
                    digest,
                },
            );
        }
        // Put back the atimes our reads may have changed (deepest entries first; mtimes are left alone).
        for (_, path, md) in stats.iter().rev() {
            set_times(path, Some((md.atime(), md.atime_nsec())), None);
        }
        let hardlinks = inodes.into_values().filter(|g| g.len() > 1).collect();
        Manifest { entries, hardlinks }
    }

    pub fn get(&self, rel: &[u8]) -> &Entry {
        self.entries.get(rel).unwrap_or_else(|| panic!("no entry {} in the manifest", show(rel)))
    }

    /// The differences from `expected` to `self`, one readable line each.
    pub fn diff(expected: &Manifest, actual: &Manifest) -> Vec<String> {
        let mut out = Vec::new();
        for (rel, e) in &expected.entries {
            let Some(a) = actual.entries.get(rel) else {
                out.push(format!("missing: {} ({:?})", show(rel), e.kind));
                continue;
            };
            let p = show(rel);
            let mut field = |name: &str, exp: String, got: String| {
                if exp != got {
                    out.push(format!("{p}: {name} expected {exp}, got {got}"));
                }
            };
            field("kind", format!("{:?}", e.kind), format!("{:?}", a.kind));
            field("mode", format!("{:o}", e.mode), format!("{:o}", a.mode));
            field("uid", e.uid.to_string(), a.uid.to_string());
            field("gid", e.gid.to_string(), a.gid.to_string());
            field("size", e.size.to_string(), a.size.to_string());
            field("mtime_ns", e.mtime_ns.to_string(), a.mtime_ns.to_string());
            field("atime_ns", e.atime_ns.to_string(), a.atime_ns.to_string());
            field("link target", fmt_opt_bytes(&e.link_target), fmt_opt_bytes(&a.link_target));
            field("rdev", format!("{:?}", e.rdev), format!("{:?}", a.rdev));
            field("xattrs", fmt_xattrs(&e.xattrs), fmt_xattrs(&a.xattrs));
            field("content", format!("{:?}", e.digest), format!("{:?}", a.digest));
        }
        for (rel, a) in &actual.entries {
            if !expected.entries.contains_key(rel) {
                out.push(format!("unexpected: {} ({:?})", show(rel), a.kind));
            }
        }
        if expected.hardlinks != actual.hardlinks {
            out.push(format!(
                "hard link groups: expected {}, got {}",
                fmt_groups(&expected.hardlinks),
                fmt_groups(&actual.hardlinks)
            ));
        }
        out
    }
}

/// Asserts that `actual` describes the same tree as `expected`, listing the differences.
pub fn assert_manifest_eq(expected: &Manifest, actual: &Manifest, what: &str) {
    let d = Manifest::diff(expected, actual);
    assert!(
        d.is_empty(),
        "{what}: {} difference(s):\n{}",
        d.len(),
        d.iter().take(60).cloned().collect::<Vec<_>>().join("\n")
    );
}

fn fmt_opt_bytes(b: &Option<Vec<u8>>) -> String {
    match b {
        None => "none".into(),
        Some(b) => format!("\"{}\"", b.escape_ascii()),
    }
}

fn fmt_xattrs(x: &BTreeMap<Vec<u8>, Vec<u8>>) -> String {
    let parts: Vec<String> = x.iter().map(|(k, v)| format!("{}={}", k.escape_ascii(), v.escape_ascii())).collect();
    format!("{{{}}}", parts.join(", "))
}

fn fmt_groups(g: &BTreeSet<BTreeSet<Vec<u8>>>) -> String {
    let parts: Vec<String> =
        g.iter().map(|s| format!("[{}]", s.iter().map(|r| show(r)).collect::<Vec<_>>().join(", "))).collect();
    parts.join(" ")
}

impl fmt::Display for Manifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (rel, e) in &self.entries {
            writeln!(
                f,
                "{} {:?} {:o} {}:{} size {} mtime {} atime {}",
                show(rel),
                e.kind,
                e.mode,
                e.uid,
                e.gid,
                e.size,
                e.mtime_ns,
                e.atime_ns
            )?;
        }
        Ok(())
    }
}

/// Convenience: the manifest of `root` with every entry's path made relative (for a tree restored under a target).
pub fn capture_at(root: &Path) -> Manifest {
    assert!(fs::symlink_metadata(root).is_ok(), "{root:?} does not exist");
    Manifest::capture(root)
}

/// Re-export for callers that build paths from manifest keys.
pub fn path_of(root: &Path, rel: &[u8]) -> PathBuf {
    join_rel(root, rel)
}
