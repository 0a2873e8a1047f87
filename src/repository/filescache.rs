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
    #[serde(with = "serde_bytes")]
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
}

/// A directory's record as a backup reads it: the stored bytes, and for each file its name and
/// the fields a backup compares, found without copying anything out. The rest of an entry (its
/// blob ids, extended attributes, inline bytes) is decoded only where it is used
/// ([`RecordView::file`]): an unchanged backup compares every file and decodes none.
#[derive(Debug)]
pub struct RecordView {
    bytes: Vec<u8>,
    files: Vec<FileAt>,
}

/// One file of a [`RecordView`]: where it is in the record's bytes, and what a backup compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileAt {
    /// The byte range of the file's name.
    name: (usize, usize),
    /// The byte range of the whole entry (a [`DirFile`]).
    at: (usize, usize),
    /// Size, as in [`FileEntry::size`].
    pub size: u64,
    /// mtime in ns.
    pub mtime: i128,
    /// ctime in ns.
    pub ctime: i128,
    /// Inode number.
    pub inode: u64,
    /// Device.
    pub dev: u64,
    /// The length of its inline bytes; `None`: its content is chunks.
    pub inline_len: Option<usize>,
    /// The session that recorded it ([`DirFile::session`]).
    pub session: u64,
}

/// The head of a [`DirFile`] as stored, borrowing from the record's bytes: the same fields in
/// the same order (postcard is positional), the parts a backup does not compare only skipped.
#[derive(Deserialize)]
struct DirFileHead<'a> {
    #[serde(borrow)]
    name: &'a [u8],
    entry: EntryHead<'a>,
    session: u64,
}

/// [`FileEntry`] as [`DirFileHead`] reads it.
#[derive(Deserialize)]
struct EntryHead<'a> {
    size: u64,
    mtime: i128,
    ctime: i128,
    inode: u64,
    dev: u64,
    content: SkipIds,
    #[serde(borrow)]
    xattrs: SkipPairs<'a>,
    #[serde(borrow)]
    inline: Option<&'a [u8]>,
}

/// A sequence of 32-byte ids, read and dropped one by one (no allocation).
struct SkipIds;

impl<'de> Deserialize<'de> for SkipIds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SkipIds;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sequence of 32-byte ids")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<SkipIds, A::Error> {
                while seq.next_element::<[u8; 32]>()?.is_some() {}
                Ok(SkipIds)
            }
        }
        d.deserialize_seq(V)
    }
}

/// A sequence of pairs of byte strings, read and dropped one by one (no allocation).
struct SkipPairs<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Deserialize<'de> for SkipPairs<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = SkipPairs<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sequence of pairs of byte strings")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Self::Value, A::Error> {
                while seq.next_element::<(&'de [u8], &'de [u8])>()?.is_some() {}
                Ok(SkipPairs(std::marker::PhantomData))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

impl RecordView {
    /// Reads a record's bytes as postcard encodes a [`DirFiles`]; `None` when they do not decode
    /// as one (never a panic, whatever the bytes).
    pub fn parse(bytes: Vec<u8>) -> Option<RecordView> {
        let (n, mut rest) = postcard::take_from_bytes::<usize>(&bytes).ok()?;
        // Every entry takes more than one byte: a count beyond the bytes cannot be true.
        let mut files = Vec::with_capacity(n.min(bytes.len()));
        let base = bytes.as_ptr() as usize;
        for _ in 0..n {
            let (h, after) = postcard::take_from_bytes::<DirFileHead>(rest).ok()?;
            let start = bytes.len() - rest.len();
            let end = bytes.len() - after.len();
            // The name is borrowed from `bytes` (postcard reads byte strings in place).
            let name_at = (h.name.as_ptr() as usize).checked_sub(base)?;
            let name = (name_at, name_at.checked_add(h.name.len()).filter(|&e| e <= end)?);
            files.push(FileAt {
                name,
                at: (start, end),
                size: h.entry.size,
                mtime: h.entry.mtime,
                ctime: h.entry.ctime,
                inode: h.entry.inode,
                dev: h.entry.dev,
                inline_len: h.entry.inline.map(<[u8]>::len),
                session: h.session,
            });
            let _ = (h.entry.content, h.entry.xattrs);
            rest = after;
        }
        Some(RecordView { bytes, files })
    }

    /// The number of files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when the record names no file.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The compared fields of file `i`.
    pub fn at(&self, i: usize) -> Option<&FileAt> {
        self.files.get(i)
    }

    /// The name of file `i`.
    pub fn name(&self, i: usize) -> Option<&[u8]> {
        self.files.get(i).and_then(|f| self.bytes.get(f.name.0..f.name.1))
    }

    /// File `i` decoded whole.
    pub fn file(&self, i: usize) -> Option<DirFile> {
        let f = self.files.get(i)?;
        postcard::from_bytes(self.bytes.get(f.at.0..f.at.1)?).ok()
    }

    /// Every file decoded whole (`None` if one does not decode).
    pub fn decode_all(&self) -> Option<DirFiles> {
        (0..self.files.len()).map(|i| self.file(i)).collect::<Option<Vec<_>>>().map(|files| DirFiles { files })
    }

    /// The index of the file named `name`, searched forward from index `from` (a caller that
    /// looks names up in increasing order passes the second value it got last time: one pass
    /// over the record in all); and where the next search for a greater name may start. A name
    /// before `from` is not found.
    pub fn find_from(&self, name: &[u8], from: usize) -> (Option<usize>, usize) {
        let mut i = from.min(self.files.len());
        while let Some(n) = self.name(i) {
            match n.cmp(name) {
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

    /// The record of the directory at absolute path `dir` as a backup reads it (the bytes kept,
    /// nothing decoded but what it compares); `None` when there is none or it does not decode.
    pub fn dir_record(&self, dir: &[u8]) -> Result<Option<RecordView>> {
        Ok(self.get(&dir_key(dir))?.and_then(RecordView::parse))
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
    use proptest::prelude::*;

    fn record(names: &[&str]) -> DirFiles {
        let entry =
            FileEntry { size: 0, mtime: 0, ctime: 0, inode: 0, dev: 0, content: vec![], xattrs: vec![], inline: None };
        let files = names.iter().map(|n| DirFile { name: n.as_bytes().to_vec(), entry: entry.clone(), session: 1 });
        DirFiles { files: files.collect() }
    }

    fn view(r: &DirFiles) -> RecordView {
        RecordView::parse(postcard::to_allocvec(r).unwrap()).expect("an encoded record parses")
    }

    /// Names looked up in increasing order from the cursor each search returns are found exactly where a binary
    /// search finds them, names missing from the record are not, and the cursor never passes a name still to come.
    #[test]
    fn a_forward_search_from_the_last_cursor_finds_what_a_binary_search_finds() {
        let owned = record(&["a", "b", "d", "f", "g", "z"]);
        let r = view(&owned);
        let mut cursor = 0;
        for name in ["0", "a", "c", "d", "e", "f", "h", "z", "zz"] {
            let (found, next) = r.find_from(name.as_bytes(), cursor);
            assert_eq!(found.and_then(|i| r.file(i)).as_ref(), owned.find(name.as_bytes()), "{name}");
            assert!(next >= cursor && next <= r.len(), "{name}");
            cursor = next;
        }
        assert_eq!(cursor, r.len());
        // Out of order (a caller's mistake): not found, nothing panics.
        assert_eq!(r.find_from(b"a", 3), (None, 3));
        assert_eq!(r.find_from(b"a", 100).0, None);
        assert_eq!(view(&record(&[])).find_from(b"a", 0), (None, 0));
    }

    fn arb_file() -> impl Strategy<Value = DirFile> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..40);
        (
            bytes(),
            (any::<u64>(), any::<i128>(), any::<i128>(), any::<u64>(), any::<u64>()),
            proptest::collection::vec(any::<[u8; 32]>(), 0..4),
            proptest::collection::vec((bytes(), bytes()), 0..3),
            proptest::option::of(bytes()),
            any::<u64>(),
        )
            .prop_map(|(name, (size, mtime, ctime, inode, dev), ids, xattrs, inline, session)| DirFile {
                name,
                entry: FileEntry {
                    size,
                    mtime,
                    ctime,
                    inode,
                    dev,
                    content: ids.into_iter().map(crate::id::BlobId).collect(),
                    xattrs,
                    inline,
                },
                session,
            })
    }

    /// [`DirFile`] as it was declared before its name and inline bytes went through `serde_bytes`: a plain
    /// `Vec<u8>` is a sequence of `u8`, one call per byte, and postcard writes it as the same length and bytes.
    #[derive(Serialize, Deserialize)]
    struct PlainFile {
        name: Vec<u8>,
        entry: PlainEntry,
        session: u64,
    }

    #[derive(Serialize, Deserialize)]
    struct PlainEntry {
        size: u64,
        mtime: i128,
        ctime: i128,
        inode: u64,
        dev: u64,
        content: Vec<crate::id::BlobId>,
        xattrs: Vec<(Vec<u8>, Vec<u8>)>,
        inline: Option<Vec<u8>>,
    }

    proptest! {
        /// Byte strings read and written whole (`serde_bytes`) keep the stored bytes: a record written by the
        /// declaration before encodes and decodes as one written now, so caches already on disk stay readable.
        #[test]
        fn byte_strings_encode_as_the_sequences_of_bytes_they_were(f in arb_file()) {
            let e = f.entry.clone();
            let plain = PlainFile {
                name: f.name.clone(),
                entry: PlainEntry {
                    size: e.size,
                    mtime: e.mtime,
                    ctime: e.ctime,
                    inode: e.inode,
                    dev: e.dev,
                    content: e.content,
                    xattrs: e.xattrs,
                    inline: e.inline,
                },
                session: f.session,
            };
            let old = postcard::to_allocvec(&plain).unwrap();
            prop_assert_eq!(&postcard::to_allocvec(&f).unwrap(), &old);
            prop_assert_eq!(postcard::from_bytes::<DirFile>(&old).unwrap(), f);
        }

        /// The view of an encoded record gives back every file's compared fields and name as they were, and each
        /// file decoded whole is the file.
        #[test]
        fn a_record_read_through_the_view_is_the_record(mut files in proptest::collection::vec(arb_file(), 0..12)) {
            files.sort_by(|a, b| a.name.cmp(&b.name));
            files.dedup_by(|a, b| a.name == b.name);
            let owned = DirFiles { files };
            let v = view(&owned);
            prop_assert_eq!(v.len(), owned.files.len());
            for (i, f) in owned.files.iter().enumerate() {
                let at = v.at(i).unwrap();
                let e = &f.entry;
                prop_assert_eq!(
                    (at.size, at.mtime, at.ctime, at.inode, at.dev, at.session),
                    (e.size, e.mtime, e.ctime, e.inode, e.dev, f.session)
                );
                prop_assert_eq!(at.inline_len, e.inline.as_ref().map(Vec::len));
                prop_assert_eq!(v.name(i), Some(f.name.as_slice()));
                prop_assert_eq!(v.file(i), Some(f.clone()));
                prop_assert_eq!(v.find_from(&f.name, 0).0, Some(i));
            }
            prop_assert_eq!(v.decode_all(), Some(owned));
        }

        /// A record's bytes cut short or with one byte changed: the view parses exactly when postcard decodes them,
        /// and then gives back what postcard decodes.
        #[test]
        fn damaged_records_parse_as_postcard_decodes_them(
            files in proptest::collection::vec(arb_file(), 1..6),
            cut in any::<proptest::sample::Index>(),
            at in any::<proptest::sample::Index>(),
            xor in 1u8..,
        ) {
            let bytes = postcard::to_allocvec(&DirFiles { files }).unwrap();
            let short = bytes[..cut.index(bytes.len())].to_vec();
            let mut flipped = bytes.clone();
            flipped[at.index(bytes.len())] ^= xor;
            for b in [short, flipped] {
                let want = postcard::from_bytes::<DirFiles>(&b).ok();
                prop_assert_eq!(RecordView::parse(b).map(|v| v.decode_all()), want.map(Some));
            }
        }

        /// Any bytes: the view parses exactly when postcard decodes a record, then decodes every file whole as
        /// postcard does (the builder relies on it), and nothing panics.
        #[test]
        fn any_bytes_parse_as_postcard_decodes_them(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let want = postcard::from_bytes::<DirFiles>(&bytes).ok();
            let v = RecordView::parse(bytes);
            prop_assert_eq!(v.as_ref().map(|v| v.decode_all()), want.map(Some));
        }
    }
}
