//! The files cache by directory: one record per backed-up directory naming its regular files
//! with what a backup saw of them (size, times, inode, device, data blob ids, extended
//! attributes) and the backup session that recorded them; and the sessions whose blobs the
//! cache's blob map is known to hold. Local state only (format-spec README, "What is not in the
//! format"): deleting it makes the next backup read every file again.

use super::cache::{Cache, FileEntry};
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Key prefix of a directory's record (followed by the directory's absolute path). Records of
/// the version before inline content (prefix `d`, whose `FileEntry` had no `inline`) are not
/// read: their files are read again once.
const DIR: u8 = b'D';
/// Key prefix of a session whose blobs are all in the blob map (followed by its 8 bytes).
const SESSION: u8 = b's';
/// Key prefix of the per-path files cache of earlier versions (one key per file).
const FILE: u8 = b'f';

/// What the files cache remembers of one directory's regular files.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirFiles {
    /// The files, sorted by name (bytes).
    pub files: Vec<DirFile>,
}

/// One file of a [`DirFiles`] record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirFile {
    /// The file's name in its directory.
    pub name: Vec<u8>,
    /// What the backup saw.
    pub entry: FileEntry,
    /// The backup session that recorded the entry or last found its blobs stored: once that
    /// session is in [`Cache::indexed_sessions`], every blob of `entry` is in the blob map.
    pub session: u64,
}

impl DirFiles {
    /// The file named `name`.
    pub fn find(&self, name: &[u8]) -> Option<&DirFile> {
        self.files.binary_search_by(|f| f.name.as_slice().cmp(name)).ok().map(|i| &self.files[i])
    }

    /// The index of the file named `name` in [`DirFiles::files`], searched forward from index
    /// `from` (a caller that looks names up in increasing order passes the second value it got
    /// last time: one pass over the record in all); and where the next search for a greater
    /// name may start. A name before `from` is not found.
    pub fn find_from(&self, name: &[u8], from: usize) -> (Option<usize>, usize) {
        let mut i = from.min(self.files.len());
        while let Some(f) = self.files.get(i) {
            match f.name.as_slice().cmp(name) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Equal => return (Some(i), i + 1),
                std::cmp::Ordering::Greater => break,
            }
        }
        (None, i)
    }
}

fn dir_key(dir: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(dir.len() + 1);
    k.push(DIR);
    k.extend_from_slice(dir);
    k
}

impl Cache {
    /// The record of the directory at absolute path `dir`; `None` when there is none or it does
    /// not decode (an entry of another version: the files are then read again).
    pub fn dir_files_get(&self, dir: &[u8]) -> Result<Option<DirFiles>> {
        Ok(self.get(&dir_key(dir))?.and_then(|v| postcard::from_bytes(&v).ok()))
    }

    /// Stores directory records, replacing what each directory had.
    pub fn dir_files_put_many(&self, records: Vec<(Vec<u8>, DirFiles)>) -> Result<()> {
        let items =
            records.into_iter().map(|(d, r)| (dir_key(&d), postcard::to_allocvec(&r).expect("encodes"))).collect();
        self.put_batch(items)
    }

    /// The backup sessions whose blobs are all in the blob map: each was recorded after its
    /// session's index was written, and [`Cache::clear_index`] forgets them all.
    pub fn indexed_sessions(&self) -> Result<HashSet<u64>> {
        let mut out = HashSet::new();
        self.scan(&[SESSION], |k, _| {
            if let Ok(b) = <[u8; 8]>::try_from(&k[1..]) {
                out.insert(u64::from_le_bytes(b));
            }
            true
        })?;
        Ok(out)
    }

    /// Records that every blob session `session` stored or relied on is in the blob map: call
    /// only once its index files are written and ingested.
    pub fn session_indexed(&self, session: u64) -> Result<()> {
        let mut k = vec![SESSION];
        k.extend_from_slice(&session.to_le_bytes());
        self.put_batch(vec![(k, Vec::new())])
    }

    /// Forgets every indexed session (the blob map is about to lose entries).
    pub(super) fn forget_sessions(&self) -> Result<()> {
        self.delete_prefix(&[SESSION])
    }

    /// True when the cache holds per-path entries of the files cache of earlier versions.
    pub fn has_path_entries(&self) -> Result<bool> {
        let mut any = false;
        self.scan(&[FILE], |_, _| {
            any = true;
            false
        })?;
        Ok(any)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(names: &[&str]) -> DirFiles {
        let entry =
            FileEntry { size: 0, mtime: 0, ctime: 0, inode: 0, dev: 0, content: vec![], xattrs: vec![], inline: None };
        let files = names.iter().map(|n| DirFile { name: n.as_bytes().to_vec(), entry: entry.clone(), session: 1 });
        DirFiles { files: files.collect() }
    }

    /// Names looked up in increasing order from the cursor each search returns are found exactly where a binary
    /// search finds them, names missing from the record are not, and the cursor never passes a name still to come.
    #[test]
    fn a_forward_search_from_the_last_cursor_finds_what_a_binary_search_finds() {
        let r = record(&["a", "b", "d", "f", "g", "z"]);
        let mut cursor = 0;
        for name in ["0", "a", "c", "d", "e", "f", "h", "z", "zz"] {
            let (found, next) = r.find_from(name.as_bytes(), cursor);
            assert_eq!(found.map(|i| &r.files[i]), r.find(name.as_bytes()), "{name}");
            assert!(next >= cursor && next <= r.files.len(), "{name}");
            cursor = next;
        }
        assert_eq!(cursor, r.files.len());
        // Out of order (a caller's mistake): not found, nothing panics.
        assert_eq!(r.find_from(b"a", 3), (None, 3));
        assert_eq!(r.find_from(b"a", 100).0, None);
        assert_eq!(record(&[]).find_from(b"a", 0), (None, 0));
    }
}
