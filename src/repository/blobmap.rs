//! The blob map of the local cache: blob id → locations, from the index files ingested (each
//! file's entries and its mark written in one batch) and the packs this process just stored;
//! and the lookups of it (format-spec §6.2). Derived state: rebuilt from the index at will.

use super::cache::{Cache, LocVal, Location, BLOB, BLOB_PREFIX};
use crate::error::Result;
use crate::id::{BlobId, BlobKind, IndexId, PackId};
use crate::index::IndexPack;

/// Key prefix of an ingested index file's mark (followed by its id).
const INDEX: u8 = b'i';

fn blob_prefix(kind: BlobKind, id: &BlobId) -> Vec<u8> {
    let mut k = Vec::with_capacity(66);
    k.push(BLOB);
    k.push(kind.code());
    k.extend_from_slice(&id.0);
    k
}

impl Cache {
    /// Records the packs of one index file and marks the file ingested, atomically.
    pub fn ingest_index(&self, id: &IndexId, packs: &[IndexPack]) -> Result<()> {
        self.put_with(batch_bytes(packs) + 33, |put| {
            put_locations(packs, put);
            let mut k = vec![INDEX];
            k.extend_from_slice(&id.0);
            put(&k, &[]);
        })
    }

    /// Records packs this process just stored (before their index file exists).
    pub fn add_packs(&self, packs: &[IndexPack]) -> Result<()> {
        self.put_with(batch_bytes(packs), |put| put_locations(packs, put))
    }

    /// The index files already ingested.
    pub fn ingested(&self) -> Result<Vec<IndexId>> {
        let mut v = Vec::new();
        self.scan(&[INDEX], |k, _| {
            if let Ok(b) = <[u8; 32]>::try_from(&k[1..]) {
                v.push(IndexId(b));
            }
            true
        })?;
        Ok(v)
    }

    /// Forgets every blob location and ingested index (before a rebuild), and with them the
    /// backup sessions whose blobs the blob map was known to hold (`filescache`): any removal from
    /// the blob map must forget those sessions.
    pub fn clear_index(&self) -> Result<()> {
        self.forget_sessions()?;
        self.delete_prefix(&[BLOB])?;
        self.delete_prefix(&[INDEX])
    }

    /// Every known location of a blob.
    pub fn lookup(&self, kind: BlobKind, id: &BlobId) -> Result<Vec<Location>> {
        let prefix = blob_prefix(kind, id);
        let mut out = Vec::new();
        let mut bad = false;
        self.scan(&prefix, |k, v| {
            match location(kind, k, v) {
                Some(l) => out.push(l),
                None => bad = true,
            }
            true
        })?;
        if bad {
            return Err(self.err("undecodable entry; delete the cache directory"));
        }
        Ok(out)
    }

    /// A handle for many lookups in a row (`check` looks up every data blob): one database
    /// iterator serves them all instead of one made per lookup. It sees the blob map as it was
    /// when the handle was made: for a reader whose sync is done.
    pub fn lookups(&self) -> Lookups<'_> {
        Lookups {
            cache: self,
            #[cfg(feature = "cache")]
            it: self.blob_iterator(),
        }
    }
}

/// The location a blob-map entry (key `k`, value `v`) of a blob of `kind` records; `None` when
/// it does not decode.
fn location(kind: BlobKind, k: &[u8], v: &[u8]) -> Option<Location> {
    let pack = <[u8; 32]>::try_from(k.get(BLOB_PREFIX..)?).ok()?;
    let (l, rest) = postcard::take_from_bytes::<LocVal>(v).ok()?;
    let inner = match rest {
        [] => None,
        r => Some(postcard::from_bytes::<u32>(r).ok()?),
    };
    Some(Location {
        kind,
        pack: PackId(pack),
        offset: l.offset,
        length: l.length,
        plain_length: l.plain_length,
        session: l.session,
        inner,
    })
}

/// Many blob lookups through one database iterator ([`Cache::lookups`]).
pub struct Lookups<'a> {
    cache: &'a Cache,
    #[cfg(feature = "cache")]
    it: Option<rocksdb::DBRawIterator<'a>>,
}

impl Lookups<'_> {
    /// Every known location of a blob, as [`Cache::lookup`] gives them.
    pub fn lookup(&mut self, kind: BlobKind, id: &BlobId) -> Result<Vec<Location>> {
        #[cfg(feature = "cache")]
        if let Some(it) = &mut self.it {
            let prefix = blob_prefix(kind, id);
            let mut out = Vec::new();
            it.seek(&prefix);
            while let (Some(k), Some(v)) = (it.key(), it.value()) {
                if !k.starts_with(&prefix) {
                    break;
                }
                out.push(
                    location(kind, k, v)
                        .ok_or_else(|| self.cache.err("undecodable entry; delete the cache directory"))?,
                );
                it.next();
            }
            it.status().map_err(|e| self.cache.err(e))?;
            return Ok(out);
        }
        self.cache.lookup(kind, id)
    }
}

/// About the bytes [`put_locations`] puts for `packs`: a key of the blob prefix and pack id, and
/// a location of about 45 bytes, per blob.
fn batch_bytes(packs: &[IndexPack]) -> usize {
    packs.iter().map(|p| p.blobs.len()).sum::<usize>() * (BLOB_PREFIX + 32 + 45)
}

/// Puts the location of every blob of `packs`; a blob naming no session of its pack (an index
/// file that fails validation, format-spec §6.2) has none and is skipped.
fn put_locations(packs: &[IndexPack], put: &mut dyn FnMut(&[u8], &[u8])) {
    let mut k = Vec::with_capacity(BLOB_PREFIX + 32);
    let mut v = [0u8; 64];
    for p in packs {
        for b in &p.blobs {
            let Some(&session) = p.sessions.get(b.session as usize) else { continue };
            k.clear();
            k.push(BLOB);
            k.push(b.kind.code());
            k.extend_from_slice(&b.id.0);
            k.extend_from_slice(&p.id.0);
            let l = LocVal { offset: b.offset, length: b.length, plain_length: b.plain_length, session };
            // At most 10 + 5 + 5 + 32 bytes: a u64, two u32 as varints, and the key; then a bundle
            // member's inner offset, at most 5 more.
            let n = postcard::to_slice(&l, &mut v).expect("a location fits in 64 bytes").len();
            let n = match b.inner {
                Some(o) => n + postcard::to_slice(&o, &mut v[n..]).expect("and its inner offset").len(),
                None => n,
            };
            put(&k, &v[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::RepoId;

    #[cfg(feature = "cache")]
    fn pack(n: u8, blobs: &[BlobId]) -> IndexPack {
        IndexPack {
            id: PackId([n; 32]),
            kind: BlobKind::Data,
            size: 1000,
            header_length: 10,
            header_hash: [0; 32],
            sessions: vec![[n; 32]],
            blobs: blobs
                .iter()
                .enumerate()
                .map(|(i, id)| crate::index::IndexBlob {
                    kind: BlobKind::Data,
                    id: *id,
                    session: 0,
                    offset: 100 * i as u64 + n as u64,
                    length: 50,
                    plain_length: 20,
                    // Every other blob of pack 3 is a bundle member.
                    inner: (n == 3 && i % 2 == 1).then_some(1_000_000 + i as u32),
                })
                .collect(),
        }
    }

    #[cfg(feature = "cache")]
    fn near(last: u8) -> BlobId {
        let mut b = [9u8; 32];
        b[31] = last;
        BlobId(b)
    }

    #[cfg(feature = "cache")]
    /// Blob lookups use the key-prefix filter (benches/README.md "Scale"): each still finds
    /// exactly its blob's locations, in files written before and after and in the memtable, with
    /// ids that differ only in their last byte; the reused iterator of [`Cache::lookups`] answers
    /// the same; scans across prefixes (the ingested list, `clear_index`) still see every file.
    #[test]
    fn blob_lookups_are_exact_across_files_and_scans_cross_prefixes() {
        let tmp = tempfile::tempdir().unwrap();
        let c = Cache::open(tmp.path(), &RepoId([1; 32])).unwrap();
        c.ingest_index(&IndexId([1; 32]), &[pack(1, &[near(1), near(2)])]).unwrap();
        c.flush();
        c.ingest_index(&IndexId([2; 32]), &[pack(2, &[near(2), near(3)])]).unwrap();
        c.flush();
        c.add_packs(&[pack(3, &[near(3), near(5)])]).unwrap();
        let packs = |v: Vec<Location>| {
            let mut p: Vec<(u8, u64)> = v.iter().map(|l| (l.pack.0[0], l.offset)).collect();
            p.sort();
            p
        };
        let want = [vec![], vec![(1, 1)], vec![(1, 101), (2, 2)], vec![(2, 102), (3, 3)], vec![], vec![(3, 103)]];
        let mut many = c.lookups();
        for (last, w) in want.iter().enumerate() {
            assert_eq!(&packs(c.lookup(BlobKind::Data, &near(last as u8)).unwrap()), w, "blob {last}");
            assert_eq!(&packs(many.lookup(BlobKind::Data, &near(last as u8)).unwrap()), w, "blob {last}, reused");
            assert!(c.lookup(BlobKind::Tree, &near(last as u8)).unwrap().is_empty());
        }
        drop(many);
        let inner =
            |last: u8| c.lookup(BlobKind::Data, &near(last)).unwrap().iter().map(|l| l.inner).collect::<Vec<_>>();
        assert_eq!(inner(5), vec![Some(1_000_001)], "a bundle member's inner offset is kept");
        assert_eq!(inner(1), vec![None]);
        let mut ing = c.ingested().unwrap();
        ing.sort();
        assert_eq!(ing, vec![IndexId([1; 32]), IndexId([2; 32])]);
        c.clear_index().unwrap();
        assert!(c.ingested().unwrap().is_empty());
        for last in 0..6 {
            assert!(c.lookup(BlobKind::Data, &near(last)).unwrap().is_empty(), "blob {last} after clear_index");
        }
    }

    #[cfg(feature = "cache")]
    /// A cache written before the prefix filter existed (no extractor, no filters in its files)
    /// opens and answers lookups.
    #[test]
    fn a_cache_written_without_the_prefix_filter_still_answers() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = RepoId([2; 32]);
        drop(Cache::open(tmp.path(), &repo).unwrap());
        let db_dir = tmp.path().join(repo.to_hex()).join("db");
        std::fs::remove_dir_all(&db_dir).unwrap();
        {
            let mut o = rocksdb::Options::default();
            o.create_if_missing(true);
            let db = rocksdb::DB::open(&o, &db_dir).unwrap();
            let mut b = rocksdb::WriteBatch::default();
            put_locations(&[pack(4, &[near(7)])], &mut |k, v| b.put(k, v));
            db.write(b).unwrap();
            db.flush().unwrap();
        }
        let c = Cache::open(tmp.path(), &repo).unwrap();
        let l = c.lookup(BlobKind::Data, &near(7)).unwrap();
        assert_eq!((l.len(), l[0].pack, l[0].offset, l[0].session), (1, PackId([4; 32]), 4, [4; 32]));
        assert_eq!(c.lookups().lookup(BlobKind::Data, &near(7)).unwrap(), l);
        assert!(c.lookup(BlobKind::Data, &near(8)).unwrap().is_empty());
    }
}
