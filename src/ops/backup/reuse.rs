//! The files cache as the walker reads it: one record per directory (`filescache`), read once
//! when the walk enters the directory, instead of one lookup per file; and the rule that lets a
//! hit skip looking up its blobs one by one: the record's session is one whose blobs the blob
//! map is known to hold, and the writer trusts the blob map (no condemned pack, format-spec
//! §10.3; no read-back verification of dedup).

use super::walk::{Ctx, DirLookup};
use super::Cached;
use crate::cache::FileEntry;
use crate::filescache::DirFile;
use crate::id::BlobKind;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What the files cache holds of a file ([`Ctx::previous`]).
pub(super) enum Previous<'l> {
    /// The entry at this index of the directory's record.
    Record(usize, &'l DirFile),
    /// An entry of the per-path cache of an earlier version (session 0: never trusted).
    ByPath(FileEntry),
    None,
}

impl Previous<'_> {
    /// The entry and the session that recorded it.
    pub(super) fn entry(&self) -> Option<(&FileEntry, u64)> {
        match self {
            Previous::Record(_, f) => Some((&f.entry, f.session)),
            Previous::ByPath(e) => Some((e, 0)),
            Previous::None => None,
        }
    }

    /// Where the builder finds the entry of a file it stands for.
    pub(super) fn into_cached(self) -> Option<Cached> {
        match self {
            Previous::Record(i, _) => Some(Cached::Record(i)),
            Previous::ByPath(e) => Some(Cached::Entry(e)),
            Previous::None => None,
        }
    }
}

impl Ctx<'_> {
    /// Reads the record of the directory at `path` (nothing with `force`).
    pub(super) fn dir_lookup(&self, path: &Path) -> DirLookup {
        if self.opts.force {
            return DirLookup { files: None, by_path: false, cursor: Default::default() };
        }
        match self.repo.cache().dir_files_get(path.as_os_str().as_bytes()) {
            Ok(files) => {
                let by_path = files.is_none() && self.path_entries;
                DirLookup { files: files.map(std::sync::Arc::new), by_path, cursor: Default::default() }
            }
            Err(e) => {
                self.warning(path, e);
                DirLookup { files: None, by_path: false, cursor: Default::default() }
            }
        }
    }

    /// The files cache's entry of the file `name` at `path`: from the directory's record
    /// (`look`, borrowed with its index), else by path (a file the user named, or a directory
    /// recorded by an earlier version).
    pub(super) fn previous<'l>(&self, look: Option<&'l DirLookup>, name: &[u8], path: &[u8]) -> Previous<'l> {
        let by_path = match look {
            Some(l) => match &l.files {
                Some(files) => {
                    let (found, next) = files.find_from(name, l.cursor.get());
                    l.cursor.set(next);
                    return match found {
                        Some(i) => Previous::Record(i, &files.files[i]),
                        None => Previous::None,
                    };
                }
                None => l.by_path,
            },
            None => true,
        };
        if !by_path {
            return Previous::None;
        }
        match self.repo.cache().file_get(path) {
            Ok(e) => e.map_or(Previous::None, Previous::ByPath),
            Err(e) => {
                self.warning(Path::new(std::ffi::OsStr::from_bytes(path)), e);
                Previous::None
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
