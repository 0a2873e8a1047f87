//! The files cache as the walker reads it: one record per directory (`filescache`), read once
//! when the walk enters the directory, instead of one lookup per file; and the rule that lets a
//! hit skip looking up its blobs one by one: the record's session is one whose blobs the blob
//! map is known to hold, and the writer trusts the blob map (no condemned pack, format-spec
//! §10.3; no read-back verification of dedup).

use super::walk::{Ctx, DirLookup};
use crate::cache::FileEntry;
use crate::id::BlobKind;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

impl Ctx<'_> {
    /// Reads the record of the directory at `path` (nothing with `force`).
    pub(super) fn dir_lookup(&self, path: &Path) -> DirLookup {
        if self.opts.force {
            return DirLookup { files: None, by_path: false };
        }
        match self.repo.cache().dir_files_get(path.as_os_str().as_bytes()) {
            Ok(files) => {
                let by_path = files.is_none() && self.path_entries;
                DirLookup { files, by_path }
            }
            Err(e) => {
                self.warning(path, e);
                DirLookup { files: None, by_path: false }
            }
        }
    }

    /// The files cache's entry of the file `name` at `path` and the session that recorded it:
    /// from the directory's record (`look`), else by path (a file the user named, or a directory
    /// recorded by an earlier version). Session 0 is never trusted.
    pub(super) fn previous(&self, look: Option<&DirLookup>, name: &[u8], path: &[u8]) -> Option<(FileEntry, u64)> {
        let by_path = match look {
            Some(l) => match &l.files {
                Some(files) => return files.find(name).map(|f| (f.entry.clone(), f.session)),
                None => l.by_path,
            },
            None => true,
        };
        if !by_path {
            return None;
        }
        match self.repo.cache().file_get(path) {
            Ok(e) => e.map(|e| (e, 0)),
            Err(e) => {
                self.warning(Path::new(std::ffi::OsStr::from_bytes(path)), e);
                None
            }
        }
    }

    /// True when every data blob of `entry`, recorded by `session`, counts as stored: without a
    /// lookup when the session's blobs are known to be in the blob map and the writer trusts it
    /// (the first element of the pair), else each blob looked up (format-spec §10.3).
    pub(super) fn blobs_stored(&self, entry: &FileEntry, session: u64) -> (bool, bool) {
        if self.trusted.contains(&session) {
            return (true, true);
        }
        let known = entry.content.iter().all(|id| self.writer.is_known(BlobKind::Data, id).unwrap_or(false));
        (false, known)
    }
}
