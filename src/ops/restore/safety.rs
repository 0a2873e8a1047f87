//! `restore --overwrite --safety-snapshot`: before a restore replaces anything, what it would
//! replace is backed up as one snapshot tagged [`TAG_SAFETY`], so the restore can be undone by
//! restoring that snapshot. Reads the target with `lstat` only (never through a symlink).

use super::{write, RestoreOptions, RestorePlan};
use crate::backup::{backup, BackupOptions, BackupResult, BackupSource, NoProgress};
use crate::error::{Error, Result};
use crate::repository::Repository;
use crate::tree::NodeKind;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// The tag of a safety snapshot.
pub const TAG_SAFETY: &str = "safety";

/// The non-directories on disk that restoring `plan` with `overwrite` would replace: per entry,
/// the first one on the way from the target to it (a file or symlink where a directory belongs
/// is replaced with all it stands for; nothing below it is reached), or the entry's own place.
/// Absolute paths, sorted, each once. Empty directories (which restore also replaces) hold
/// nothing and are left out.
pub fn in_the_way(plan: &RestorePlan, opts: &RestoreOptions) -> Result<Vec<PathBuf>> {
    let target = crate::backup::absolute(&opts.target)?;
    let mut out: BTreeSet<PathBuf> = BTreeSet::new();
    for e in &plan.entries {
        let skipped = matches!(e.node.kind, NodeKind::Socket)
            || (opts.no_special_files
                && matches!(e.node.kind, NodeKind::Fifo | NodeKind::CharDevice { .. } | NodeKind::BlockDevice { .. }));
        if skipped {
            continue;
        }
        let rel = write::relative(&e.path).map_err(|err| Error::io(&e.path, err))?;
        let mut p = target.clone();
        for name in rel.iter() {
            p.push(name);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => continue,
                Ok(_) => {
                    out.insert(p.clone());
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&p, e)),
            }
            break;
        }
    }
    Ok(out.into_iter().collect())
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
