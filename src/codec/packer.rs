//! Building and opening packs (format-spec §5.3): accumulates sealed blobs, seals the header,
//! and parses a stored pack back into its header and index records. The layout types are
//! [`crate::pack`]'s. Bytes in, bytes out.

use crate::codec::envelope;
use crate::crypto::{self, MasterKeys, ObjectKind};
use crate::id::{BlobId, BlobKind, PackId, RepoId};
use crate::index::{IndexBlob, IndexPack};
use crate::pack::{decode_header, parse_trailer, PackEntry, PackHeader, PACK_MAGIC, TRAILER_LEN};

/// A pack whose blob bytes are written elsewhere as they are added (streamed to storage, format-spec
/// §5.3): keeps only the header's entries and a running BLAKE3 of the bytes, so the pack id is
/// known once [`PackLayout::finish`] has added the header and trailer.
pub struct PackLayout {
    kind: BlobKind,
    hasher: blake3::Hasher,
    len: u64,
    sessions: Vec<[u8; 32]>,
    entries: Vec<PackEntry>,
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
        PackLayout { kind, hasher: blake3::Hasher::new(), len: 0, sessions: Vec::new(), entries: Vec::new() }
    }

    /// Bytes of blobs so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when no blob was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of blobs.
    pub fn count(&self) -> usize {
        self.entries.len()
    }

    /// Records a sealed blob; the caller writes `sealed` right after the bytes of the blobs
    /// recorded before it.
    pub fn add(&mut self, session: &[u8; 32], kind: BlobKind, id: BlobId, sealed: &[u8], plain_length: u32) {
        let s = match self.sessions.iter().position(|p| p == session) {
            Some(i) => i,
            None => {
                self.sessions.push(*session);
                self.sessions.len() - 1
            }
        };
        self.entries.push(PackEntry { kind, id, session: s as u32, length: sealed.len() as u32, plain_length });
        self.hasher.update(sealed);
        self.len += sealed.len() as u64;
    }

    /// Seals the header; returns what follows the blobs, the pack id and its index record.
    pub fn finish(mut self, keys: &MasterKeys) -> PackTail {
        let header = PackHeader::V1 { sessions: self.sessions, entries: self.entries };
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
        let PackHeader::V1 { sessions, .. } = header;
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
}
