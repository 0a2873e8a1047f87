//! The drill's own re-read of what restore wrote: every file of the plan is opened again (the last
//! component never through a symlink), its size checked and its bytes cut at the snapshot's chunk
//! boundaries and hashed into content ids, compared one by one with the ids the snapshot's trees
//! list (format-spec §3.2, §7.3). Also the scratch directory a drill restores into by default.

use crate::error::{Error, Result};
use crate::id::{BlobId, BlobKind};
use crate::ops::restore::RestorePlan;
use crate::repository::ReadRepository;
use crate::tree::NodeKind;
use crate::trees::chunk_ids_iter;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// A problem the re-read found: the path (under the target), when it is about one, and what is
/// wrong.
pub type Mismatch = (Option<String>, String);

/// Re-reads every file of `plan` (a restore plan of the snapshot) below `target`, where a restore
/// of that plan wrote it. Returns the files and bytes that matched and the mismatches (a missing
/// file, a wrong size, bytes that do not hash to the listed id). `Err` only when `cancel` is set.
pub fn compare_restored(
    repo: &ReadRepository,
    plan: &RestorePlan,
    target: &Path,
    cancel: Option<&AtomicBool>,
) -> Result<(u64, u64, Vec<Mismatch>)> {
    let (mut files, mut bytes, mut bad) = (0u64, 0u64, Vec::new());
    let mut buf = Vec::new();
    for e in &plan.entries {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Error::Interrupted);
        }
        let NodeKind::File { content } = &e.node.kind else { continue };
        let Some(rel) = relative(&e.path) else {
            bad.push((Some(e.path.display().to_string()), "not a plain absolute path in the snapshot".into()));
            continue;
        };
        let path = target.join(rel);
        let shown = Some(path.display().to_string());
        let f = match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&path) {
            Ok(f) => f,
            Err(err) => {
                bad.push((shown, format!("not restored: {err}")));
                continue;
            }
        };
        let len = match f.metadata() {
            Ok(m) if m.is_file() => m.len(),
            Ok(_) => {
                bad.push((shown, "not a regular file".into()));
                continue;
            }
            Err(err) => {
                bad.push((shown, err.to_string()));
                continue;
            }
        };
        if len != e.node.size {
            bad.push((shown, format!("size {len}, the snapshot says {}", e.node.size)));
            continue;
        }
        let compared = match content.inline() {
            // Inline content (format-spec §7.3): the bytes are in the node.
            Some(b) => {
                buf.resize(b.len(), 0);
                match f.read_exact_at(&mut buf, 0) {
                    Ok(()) if buf == b => Ok(b.len() as u64),
                    Ok(()) => Err("the bytes are not the snapshot's inline content".to_string()),
                    Err(err) => Err(err.to_string()),
                }
            }
            None => compare_file(repo, &f, chunk_ids_iter(repo, content), &mut buf),
        };
        match compared {
            Ok(n) if n == len => {
                files += 1;
                bytes += n;
            }
            Ok(n) => bad.push((shown, format!("the chunks cover {n} bytes of {len}"))),
            Err(m) => bad.push((shown, m)),
        }
    }
    Ok((files, bytes, bad))
}

/// Hashes the bytes of `f` chunk by chunk against `ids`; returns the bytes compared. A chunk's
/// length is taken from the index (each distinct length it lists is tried, so a forged entry
/// cannot fail a correct file).
fn compare_file(
    repo: &ReadRepository,
    f: &std::fs::File,
    ids: impl Iterator<Item = Result<BlobId>>,
    buf: &mut Vec<u8>,
) -> std::result::Result<u64, String> {
    let mut off = 0u64;
    for id in ids {
        let id = id.map_err(|e| e.to_string())?;
        let mut lengths: Vec<u32> =
            repo.locate(BlobKind::Data, &id).map_err(|e| e.to_string())?.iter().map(|l| l.plain_length).collect();
        if lengths.is_empty() {
            return Err(format!("data blob {id} is not indexed"));
        }
        lengths.sort_unstable();
        lengths.dedup();
        let found = lengths.into_iter().find(|&n| {
            buf.resize(n as usize, 0);
            f.read_exact_at(buf, off).is_ok() && repo.keys().content_id(buf) == id
        });
        match found {
            Some(n) => off += n as u64,
            None => return Err(format!("the bytes at offset {off} are not those of data blob {id}")),
        }
    }
    Ok(off)
}

/// The snapshot path `p` (absolute) as a path below a target: its normal components only.
fn relative(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(n) => out.push(n),
            _ => return None,
        }
    }
    Some(out)
}

/// A fresh private directory (0700) under the system temporary directory, removed when dropped
/// (or by [`Scratch::remove`], which says whether that worked).
pub(super) struct Scratch {
    path: Option<PathBuf>,
}

impl Scratch {
    /// Creates `cairn-drill-<random>` under the temporary directory; never an existing one.
    pub(super) fn create() -> Result<Scratch> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::temp_dir();
        for _ in 0..16 {
            let mut r = [0u8; 8];
            getrandom::getrandom(&mut r).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
            let path = base.join(format!("cairn-drill-{}", hex::encode(r)));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(Scratch { path: Some(path) }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        Err(Error::io(base, std::io::Error::other("no fresh name for a drill directory")))
    }

    /// The directory.
    pub(super) fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// Removes the directory and everything in it; true when it is gone.
    pub(super) fn remove(mut self) -> bool {
        match self.path.take() {
            Some(p) => remove_tree(&p),
            None => true,
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            remove_tree(&p);
        }
    }
}

/// Removes `root` and everything below it, never following a symlink; directories restored
/// without write or search permission are opened up first. True when `root` is gone.
pub(super) fn remove_tree(root: &Path) -> bool {
    if std::fs::remove_dir_all(root).is_ok() || !root.exists() {
        return true;
    }
    open_up(root);
    std::fs::remove_dir_all(root).is_ok() || std::fs::symlink_metadata(root).is_err()
}

/// Gives the owner rwx on every directory below `dir` (symlinks are not followed).
fn open_up(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(m) = std::fs::symlink_metadata(dir) else { return };
    if !m.is_dir() {
        return;
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            open_up(&e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_paths_become_relative_and_dot_dot_is_refused() {
        assert_eq!(relative(Path::new("/a/b")), Some(PathBuf::from("a/b")));
        assert_eq!(relative(Path::new("/a/../b")), None);
    }

    #[test]
    fn the_scratch_directory_is_private_and_removed_even_when_locked_down() {
        use std::os::unix::fs::PermissionsExt;
        let s = Scratch::create().unwrap();
        let p = s.path().to_path_buf();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o700);
        std::fs::create_dir(p.join("ro")).unwrap();
        std::fs::write(p.join("ro/f"), b"x").unwrap();
        std::fs::set_permissions(p.join("ro"), std::fs::Permissions::from_mode(0o500)).unwrap();
        assert!(s.remove());
        assert!(!p.exists());
        let s = Scratch::create().unwrap();
        let p = s.path().to_path_buf();
        drop(s);
        assert!(!p.exists());
    }
}
