//! `restore --overwrite --safety-snapshot`: before a restore replaces anything, what it would
//! replace is backed up as one snapshot tagged [`TAG_SAFETY`], so the restore can be undone by
//! restoring that snapshot. Reads the target with `lstat` only (never through a symlink).

use super::{write, RestoreOptions, RestorePlan};
use crate::backup::{backup, BackupOptions, BackupResult, BackupSource, NoProgress};
use crate::error::{Error, Result};
use crate::repository::Repository;
use crate::tree::NodeKind;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The tag of a safety snapshot.
pub const TAG_SAFETY: &str = "safety";

/// The non-directories on disk that restoring `plan` with `overwrite` would replace: per entry,
/// the first one on the way from the target to it (a file or symlink where a directory belongs
/// is replaced with all it stands for; nothing below it is reached), or the entry's own place.
/// Absolute paths, sorted, each once. Empty directories (which restore also replaces) hold
/// nothing and are left out.
pub fn in_the_way(plan: &RestorePlan, opts: &RestoreOptions) -> Result<Vec<PathBuf>> {
    let mut w = InTheWay::new(opts)?;
    for e in &plan.entries {
        w.add(&e.path, &e.node.kind)?;
    }
    Ok(w.into_paths())
}

/// [`in_the_way`] one entry at a time, as a walk meets them.
pub struct InTheWay {
    skip_special: bool,
    target: PathBuf,
    out: BTreeSet<PathBuf>,
}

impl InTheWay {
    /// Nothing found yet, below the target of `opts`.
    pub fn new(opts: &RestoreOptions) -> Result<Self> {
        let target = crate::backup::absolute(&opts.target)?;
        Ok(InTheWay { skip_special: opts.no_special_files, target, out: BTreeSet::new() })
    }

    /// Looks at the way to the entry at `path` (in the snapshot) of `kind`.
    pub fn add(&mut self, path: &Path, kind: &NodeKind) -> Result<()> {
        let skipped = matches!(kind, NodeKind::Socket)
            || (self.skip_special
                && matches!(kind, NodeKind::Fifo | NodeKind::CharDevice { .. } | NodeKind::BlockDevice { .. }));
        if skipped {
            return Ok(());
        }
        let rel = write::relative(path).map_err(|err| Error::io(path, err))?;
        let mut p = self.target.clone();
        for name in rel.iter() {
            p.push(name);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => continue,
                Ok(_) => {
                    self.out.insert(p.clone());
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&p, e)),
            }
            break;
        }
        Ok(())
    }

    /// The paths found: absolute, sorted, each once.
    pub fn into_paths(self) -> Vec<PathBuf> {
        self.out.into_iter().collect()
    }
}

/// Backs up `paths` (from [`in_the_way`]) as one snapshot of this host tagged [`TAG_SAFETY`].
/// A file that cannot be read makes it fail ([`Error::Refused`], naming the paths): a safety
/// snapshot that lacks a file would not undo the restore.
pub fn safety_snapshot(repo: &Repository, paths: Vec<PathBuf>) -> Result<BackupResult> {
    let opts = BackupOptions { tags: vec![TAG_SAFETY.to_string()], ..Default::default() };
    let r = backup(repo, vec![BackupSource::Paths(paths)], &opts, &NoProgress)?;
    if !r.errors.is_empty() {
        let list: Vec<String> = r.errors.iter().map(|e| format!("{}: {}", e.path, e.message)).collect();
        let id = r.snapshot_id.map(|i| i.to_hex()).unwrap_or_default();
        return Err(Error::refused(format!(
            "the safety snapshot {id} lacks {} file(s) that could not be read ({}); nothing was restored",
            r.errors.len(),
            list.join("; ")
        )));
    }
    Ok(r)
}
