//! The files cache as the walker reads it: one record per directory (`filescache`), read once
//! when the walk enters the directory, instead of one lookup per file; and the rule that lets a
//! hit skip looking up its blobs one by one: the record's session is one whose blobs the blob
//! map is known to hold, and the writer trusts the blob map (no condemned pack, format-spec
//! §10.3; no read-back verification of dedup).

use super::walk::{Ctx, DirLookup};
use super::{Event, Seen};
use crate::cache::FileEntry;
use crate::filescache::{FileAt, RecordView};
use crate::fsmeta::Stat;
use crate::id::BlobKind;
use crate::tree::NodeKind;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What the files cache holds of a file ([`Ctx::previous`]).
pub(super) enum Previous<'l> {
    /// The entry at this index of the directory's record (its compared fields read, the rest
    /// decoded only where used).
    Record(usize, &'l RecordView, &'l FileAt),
    /// An entry of the per-path cache of an earlier version (session 0: never trusted).
    ByPath(FileEntry),
    None,
}

impl Previous<'_> {
    /// What the cache saw of the file, and the session that recorded it.
    pub(super) fn seen(&self) -> Option<(Seen, u64)> {
        match self {
            Previous::Record(_, _, f) => Some((Seen::of_record(f), f.session)),
            Previous::ByPath(e) => Some((Seen::of_entry(e), 0)),
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
        match self.repo.cache().dir_record(path.as_os_str().as_bytes()) {
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
                    return match found.and_then(|i| files.at(i).map(|f| (i, f))) {
                        Some((i, f)) => Previous::Record(i, files, f),
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

    /// The event of the unchanged file `name` (at `path`, examined as `st`, in hardlink group
    /// `hardlink`) when it may be taken from the files cache: its content usable by this backup
    /// and its blobs stored (`prev` recorded by `session`). An entry of the directory's record
    /// becomes [`Event::Unchanged`]: the walker compared it and moves on, the builder decodes it.
    /// The session to record it with is `session` when its blobs needed no lookup, else this
    /// backup's (restamped).
    pub(super) fn reuse(
        &self,
        name: &[u8],
        st: &Stat,
        path: &Path,
        hardlink: u64,
        prev: Previous<'_>,
        session: u64,
    ) -> Option<Event> {
        let restamp = |trusted: bool| if trusted { (session, false) } else { (self.session, true) };
        match prev {
            Previous::Record(index, record, f) => {
                if !self.inline_usable(f.inline_len, f.size) {
                    return None;
                }
                let trusted = self.trusted.contains(&session);
                if !trusted && !self.blobs_stored(&record.file(index)?.entry, session).1 {
                    return None;
                }
                let (session, restamped) = restamp(trusted);
                Some(Event::Unchanged { st: st.clone(), index, hardlink, session, restamped })
            }
            Previous::ByPath(entry) => {
                let content = self.cached_content(&entry)?;
                let (trusted, known) = self.blobs_stored(&entry, session);
                if !known {
                    return None;
                }
                let mut node = self.node(name, st, NodeKind::File { content }, path, false);
                node.hardlink = hardlink;
                node.xattrs = entry.xattrs.clone();
                let (session, restamped) = restamp(trusted);
                Some(Event::Cached { node, entry, session, restamped })
            }
            Previous::None => None,
        }
    }
}
