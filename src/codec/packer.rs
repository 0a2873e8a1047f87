//! Building and opening packs (format-spec §5.3): accumulates sealed blobs, seals the header,
//! and parses a stored pack back into its header and index records. The layout types are
//! [`crate::pack`]'s. Bytes in, bytes out.

use crate::codec::envelope;
use crate::crypto::{self, MasterKeys, ObjectKind};
use crate::id::{BlobId, BlobKind, PackId, RepoId};
use crate::index::{IndexBlob, IndexPack};
use crate::pack::{
    decode_header, parse_trailer, BundleMember, PackBundle, PackEntry, PackHeader, PackSegment, PACK_MAGIC, TRAILER_LEN,
};

/// A pack whose blob bytes are written elsewhere as they are added (streamed to storage, format-spec
/// §5.3): keeps only the header's entries and a running BLAKE3 of the bytes, so the pack id is
/// known once [`PackLayout::finish`] has added the header and trailer.
pub struct PackLayout {
    kind: BlobKind,
    hasher: blake3::Hasher,
    len: u64,
    sessions: Vec<[u8; 32]>,
    segments: Vec<PackSegment>,
    blobs: usize,
}

/// The end of a streamed pack: the bytes to append after its blobs, its id and index record.
pub struct PackTail {
    /// `stored header ‖ u32le(header length) ‖ "CAIRNPK1"`.
    pub bytes: Vec<u8>,
    /// BLAKE3 of the whole pack (blobs and these bytes).
    pub id: PackId,
    /// What the index says about it.
    pub index: IndexPack,
}

impl PackLayout {
    /// An empty pack for blobs of `kind`.
    pub fn new(kind: BlobKind) -> Self {
        PackLayout { kind, hasher: blake3::Hasher::new(), len: 0, sessions: Vec::new(), segments: Vec::new(), blobs: 0 }
    }

    /// Bytes of blobs so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when no blob was added.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Number of blobs (bundle members counted one by one).
    pub fn count(&self) -> usize {
        self.blobs
    }

    fn session_index(&mut self, session: &[u8; 32]) -> u32 {
        match self.sessions.iter().position(|p| p == session) {
            Some(i) => i as u32,
            None => {
                self.sessions.push(*session);
                self.sessions.len() as u32 - 1
            }
        }
    }

    /// Records a sealed blob; the caller writes `sealed` right after the bytes of the segments
    /// recorded before it.
    pub fn add(&mut self, session: &[u8; 32], kind: BlobKind, id: BlobId, sealed: &[u8], plain_length: u32) {
        let s = self.session_index(session);
        self.segments.push(PackSegment::Blob(PackEntry {
            kind,
            id,
            session: s,
            length: sealed.len() as u32,
            plain_length,
        }));
        self.blobs += 1;
        self.hasher.update(sealed);
        self.len += sealed.len() as u64;
    }

    /// Records a sealed bundle of data blobs (format-spec §5.5) whose body holds `members` in
    /// order; the caller writes `sealed` right after the bytes recorded before it.
    pub fn add_bundle(&mut self, session: &[u8; 32], members: Vec<BundleMember>, sealed: &[u8]) {
        let s = self.session_index(session);
        self.blobs += members.len();
        self.segments.push(PackSegment::Bundle(PackBundle {
            kind: BlobKind::Data,
            session: s,
            length: sealed.len() as u32,
            members,
        }));
        self.hasher.update(sealed);
        self.len += sealed.len() as u64;
    }

    /// Seals the header; returns what follows the blobs, the pack id and its index record.
    pub fn finish(mut self, keys: &MasterKeys) -> PackTail {
        let header = PackHeader::new(self.sessions, self.segments);
        let blob_area = self.len;
        let stored_header = seal_header(keys, &header);
        let header_hash = *blake3::hash(&stored_header).as_bytes();
        let mut tail = Vec::with_capacity(stored_header.len() + TRAILER_LEN);
        tail.extend_from_slice(&stored_header);
        tail.extend_from_slice(&(stored_header.len() as u32).to_le_bytes());
        tail.extend_from_slice(PACK_MAGIC);
        self.hasher.update(&tail);
        let id = PackId(*self.hasher.finalize().as_bytes());
        let blobs = header.to_index_blobs(blob_area).expect("a header we just built is consistent");
        let sessions = header.sessions().to_vec();
        PackTail {
            id,
            index: IndexPack {
                id,
                kind: self.kind,
                size: blob_area + tail.len() as u64,
                header_length: stored_header.len() as u32,
                header_hash,
                sessions,
                blobs,
            },
            bytes: tail,
        }
    }
}

/// Accumulates sealed blobs into a pack held in memory.
pub struct PackBuilder {
    layout: PackLayout,
    buf: Vec<u8>,
}

/// A finished pack: its id, bytes and index record.
pub struct FinishedPack {
    /// BLAKE3 of `bytes`.
    pub id: PackId,
    /// The pack's stored bytes.
    pub bytes: Vec<u8>,
    /// What the index says about it.
    pub index: IndexPack,
}

impl PackBuilder {
    /// An empty pack for blobs of `kind`.
    pub fn new(kind: BlobKind, capacity: usize) -> Self {
        PackBuilder { layout: PackLayout::new(kind), buf: Vec::with_capacity(capacity) }
    }

    /// Bytes of blobs so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when no blob was added.
    pub fn is_empty(&self) -> bool {
        self.layout.is_empty()
    }

    /// Number of blobs.
    pub fn count(&self) -> usize {
        self.layout.count()
    }

    /// Appends a sealed blob.
    pub fn add(&mut self, session: &[u8; 32], kind: BlobKind, id: BlobId, sealed: &[u8], plain_length: u32) {
        self.layout.add(session, kind, id, sealed, plain_length);
        self.buf.extend_from_slice(sealed);
    }

    /// Appends a sealed bundle ([`PackLayout::add_bundle`]).
    pub fn add_bundle(&mut self, session: &[u8; 32], members: Vec<BundleMember>, sealed: &[u8]) {
        self.layout.add_bundle(session, members, sealed);
        self.buf.extend_from_slice(sealed);
    }

    /// Seals the header and returns the finished pack.
    pub fn finish(self, keys: &MasterKeys) -> FinishedPack {
        let tail = self.layout.finish(keys);
        let mut bytes = self.buf;
        bytes.extend_from_slice(&tail.bytes);
        FinishedPack { id: tail.id, bytes, index: tail.index }
    }
}

/// `salt ‖ seal(index seal key, aad(PackHeader, salt), postcard(header))`.
pub fn seal_header(keys: &MasterKeys, header: &PackHeader) -> Vec<u8> {
    let salt = crypto::random_32();
    envelope::seal(&salt, &keys.index_seal_key(), &keys.repo_id, ObjectKind::PackHeader, &salt, header)
}

/// Opens a stored pack header.
pub fn open_header(repo: &RepoId, index_seal_key: &crypto::Secret, stored: &[u8]) -> Result<PackHeader, String> {
    if stored.len() < 32 + crypto::SEAL_OVERHEAD {
        return Err("pack header too short".into());
    }
    let salt: [u8; 32] = stored[..32].try_into().expect("32 bytes");
    let plain = envelope::open(index_seal_key, repo, ObjectKind::PackHeader, &salt, &stored[32..])
        .ok_or("pack header does not authenticate")?;
    decode_header(&plain)
}

/// Parses a whole pack: checks the trailer, opens the header and checks the blob layout.
pub fn parse_pack(keys: &MasterKeys, bytes: &[u8]) -> Result<(PackHeader, Vec<IndexBlob>), String> {
    if bytes.len() < TRAILER_LEN {
        return Err("pack shorter than its trailer".into());
    }
    let hl = parse_trailer(&bytes[bytes.len() - TRAILER_LEN..])?;
    let body = bytes.len() - TRAILER_LEN;
    if hl > body {
        return Err("pack header longer than the pack".into());
    }
    let header = open_header(&keys.repo_id, &keys.index_seal_key(), &bytes[body - hl..body])?;
    let blobs = header.to_index_blobs((body - hl) as u64)?;
    Ok((header, blobs))
}

/// Rebuilds the index record of a stored pack from its bytes alone (repair): checks that the
/// bytes hash to `id`, opens the header and describes every blob as the writer did.
pub fn index_entry(keys: &MasterKeys, id: &PackId, kind: BlobKind, bytes: &[u8]) -> Result<IndexPack, String> {
    if *blake3::hash(bytes).as_bytes() != id.0 {
        return Err("the pack's bytes do not hash to its name".into());
    }
    let (header, blobs) = parse_pack(keys, bytes)?;
    let header_length = parse_trailer(&bytes[bytes.len() - TRAILER_LEN..])?;
    let body = bytes.len() - TRAILER_LEN;
    let stored_header = &bytes[body - header_length..body];
    if blobs.iter().any(|b| b.kind != kind) {
        return Err(format!("a {kind} pack holds blobs of another kind"));
    }
    Ok(IndexPack {
        id: *id,
        kind,
        size: bytes.len() as u64,
        header_length: header_length as u32,
        header_hash: *blake3::hash(stored_header).as_bytes(),
        sessions: header.sessions().to_vec(),
        blobs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::Compression;

    #[test]
    fn build_and_parse() {
        let keys = MasterKeys::generate();
        let mut b = PackBuilder::new(BlobKind::Data, 0);
        let sess = [7u8; 32];
        let mut ids = vec![];
        for i in 0..5u8 {
            let plain = vec![i; 1000 * i as usize];
            let id = keys.content_id(&plain);
            let sealed = crate::codec::blob::seal_blob(
                &keys.index_key,
                &keys.repo_id,
                BlobKind::Data,
                &id,
                &plain,
                Compression::default(),
            );
            b.add(&sess, BlobKind::Data, id, &sealed, plain.len() as u32);
            ids.push(id);
        }
        let p = b.finish(&keys);
        assert_eq!(p.id, PackId(*blake3::hash(&p.bytes).as_bytes()));
        assert_eq!(
            index_entry(&keys, &p.id, BlobKind::Data, &p.bytes).unwrap(),
            p.index,
            "repair rebuilds the same record"
        );
        assert!(index_entry(&keys, &p.id, BlobKind::Tree, &p.bytes).is_err());
        let (h, blobs) = parse_pack(&keys, &p.bytes).unwrap();
        assert_eq!(h.sessions(), &[sess]);
        assert_eq!(blobs, p.index.blobs);
        assert_eq!(blobs.iter().map(|b| b.id).collect::<Vec<_>>(), ids);
        let mut bad = p.bytes.clone();
        let n = bad.len();
        bad[n - 20] ^= 1;
        assert!(parse_pack(&keys, &bad).is_err());
        assert!(parse_pack(&keys, &p.bytes[..5]).is_err());
    }

    #[test]
    fn a_streamed_pack_is_named_by_the_hash_of_every_byte_written() {
        let keys = MasterKeys::generate();
        let mut l = PackLayout::new(BlobKind::Data);
        let mut written = Vec::new();
        for i in 0..3u8 {
            let plain = vec![i; 5000];
            let id = keys.content_id(&plain);
            let sealed = crate::codec::blob::seal_blob(
                &keys.index_key,
                &keys.repo_id,
                BlobKind::Data,
                &id,
                &plain,
                Compression::default(),
            );
            l.add(&[1u8; 32], BlobKind::Data, id, &sealed, plain.len() as u32);
            written.extend_from_slice(&sealed);
        }
        assert_eq!(l.len(), written.len() as u64);
        let t = l.finish(&keys);
        written.extend_from_slice(&t.bytes);
        assert_eq!(t.id, PackId(*blake3::hash(&written).as_bytes()));
        assert_eq!(t.index.size, written.len() as u64);
        assert_eq!(index_entry(&keys, &t.id, BlobKind::Data, &written).unwrap(), t.index);
    }

    #[test]
    fn a_pack_with_a_bundle_describes_every_member_at_the_bundles_place() {
        let keys = MasterKeys::generate();
        let sess = [7u8; 32];
        let key = crate::crypto::Secret([5; 32]);
        let mut b = PackBuilder::new(BlobKind::Data, 0);
        let lone = vec![1u8; 3000];
        let lone_id = keys.content_id(&lone);
        let sealed =
            crate::codec::blob::seal_blob(&key, &keys.repo_id, BlobKind::Data, &lone_id, &lone, Compression::default());
        b.add(&sess, BlobKind::Data, lone_id, &sealed, lone.len() as u32);
        let members: Vec<Vec<u8>> =
            (0..4u8).map(|i| format!("member {i} ").repeat(100 + i as usize).into_bytes()).collect();
        let body = members.concat();
        let sealed_bundle = crate::codec::blob::seal_bundle(&key, &keys.repo_id, &body, Compression::default());
        let list =
            members.iter().map(|m| BundleMember { id: keys.content_id(m), plain_length: m.len() as u32 }).collect();
        b.add_bundle(&sess, list, &sealed_bundle);
        assert_eq!(b.count(), 5);
        let p = b.finish(&keys);
        let (h, blobs) = parse_pack(&keys, &p.bytes).unwrap();
        assert!(matches!(h, PackHeader::V2 { .. }), "a pack with a bundle has a version 2 header");
        assert_eq!(blobs, p.index.blobs);
        assert_eq!(index_entry(&keys, &p.id, BlobKind::Data, &p.bytes).unwrap(), p.index);
        assert_eq!(blobs[0].inner, None);
        let mut inner = 0;
        for (m, e) in members.iter().zip(&blobs[1..]) {
            assert_eq!((e.offset, e.length, e.inner), (sealed.len() as u64, sealed_bundle.len() as u32, Some(inner)));
            let at = e.offset as usize;
            let body =
                crate::codec::blob::open_bundle(&key, &keys.repo_id, &p.bytes[at..at + e.length as usize]).unwrap();
            assert_eq!(crate::codec::blob::bundle_member(&body, inner, m.len()).unwrap(), &m[..]);
            inner += m.len() as u32;
        }
        let f = crate::index::IndexFile::new(vec![], vec![p.index.clone()]);
        assert!(matches!(f, crate::index::IndexFile::V2 { .. }), "its index file is version 2");
        let v1 = crate::index::IndexFile::V1 { supersedes: vec![], packs: vec![p.index.clone()] };
        assert!(postcard::to_allocvec(&v1).is_err(), "version 1 cannot name a bundle member");
    }
}
