//! Index files (format-spec §6): the authoritative map blob → pack. The types, the stored header
//! and the plaintext decoding; sealing is [`crate::codec::object`]'s. No I/O.

use crate::id::{BlobId, BlobKind, IndexId, PackId};
use serde::{Deserialize, Serialize};

/// First bytes of every index file.
pub const INDEX_MAGIC: &[u8; 8] = b"CAIRNIDX";
/// Version byte after the magic.
pub const INDEX_VERSION: u8 = 1;

/// One blob's location.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexBlob {
    /// Blob kind.
    pub kind: BlobKind,
    /// Content id.
    pub id: BlobId,
    /// Index into the pack's session table.
    pub session: u32,
    /// Offset of the sealed blob in the pack.
    pub offset: u64,
    /// Sealed length.
    pub length: u32,
    /// Plain length.
    pub plain_length: u32,
}

/// One pack and its blobs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexPack {
    /// The pack.
    pub id: PackId,
    /// `data/` or `tree/`.
    pub kind: BlobKind,
    /// Stored size of the pack in bytes.
    pub size: u64,
    /// Length of the stored header.
    pub header_length: u32,
    /// BLAKE3 of the stored header.
    pub header_hash: [u8; 32],
    /// Session public keys.
    pub sessions: Vec<[u8; 32]>,
    /// Blobs in storage order.
    pub blobs: Vec<IndexBlob>,
}

/// An index file (format-spec §6.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexFile {
    /// Version 1.
    V1 {
        /// Index files this one replaces (written by prune).
        supersedes: Vec<IndexId>,
        /// The packs it describes.
        packs: Vec<IndexPack>,
    },
}

impl IndexFile {
    /// The packs.
    pub fn packs(&self) -> &[IndexPack] {
        match self {
            IndexFile::V1 { packs, .. } => packs,
        }
    }
    /// The superseded index files.
    pub fn supersedes(&self) -> &[IndexId] {
        match self {
            IndexFile::V1 { supersedes, .. } => supersedes,
        }
    }

    /// Checks internal consistency: session references and blob extents.
    pub fn validate(&self) -> Result<(), String> {
        for p in self.packs() {
            let mut end = 0u64;
            for b in &p.blobs {
                if b.session as usize >= p.sessions.len() {
                    return Err(format!("pack {}: blob {} names a missing session", p.id, b.id));
                }
                end = end.max(b.offset.saturating_add(b.length as u64));
            }
            if end.saturating_add(p.header_length as u64) > p.size {
                return Err(format!("pack {}: blobs extend past the pack", p.id));
            }
        }
        Ok(())
    }
}

/// Checks the magic and version of a stored index file and returns its sealed body.
pub fn split(bytes: &[u8]) -> Result<&[u8], String> {
    if bytes.len() < 9 || &bytes[..8] != INDEX_MAGIC {
        return Err("not an index file (magic missing)".into());
    }
    if bytes[8] != INDEX_VERSION {
        return Err(format!("unknown index version {}", bytes[8]));
    }
    Ok(&bytes[9..])
}

/// Decodes and validates the plaintext of an index file, the step the codec runs after
/// authentication (exposed so it can be fuzzed without the key).
pub fn decode_plain(plain: &[u8]) -> Result<IndexFile, String> {
    let f: IndexFile = postcard::from_bytes(plain).map_err(|e| format!("decode: {e}"))?;
    f.validate()?;
    Ok(f)
}
