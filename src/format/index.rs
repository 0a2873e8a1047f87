//! Index files (format-spec §6): the authoritative map blob → pack. The types, the stored header
//! and the plaintext decoding; sealing is [`crate::codec::object`]'s. No I/O.

use crate::id::{BlobId, BlobKind, IndexId, PackId};
use serde::{Deserialize, Serialize};

/// First bytes of every index file.
pub const INDEX_MAGIC: &[u8; 8] = b"CAIRNIDX";
/// Version byte after the magic.
pub const INDEX_VERSION: u8 = 1;
/// The largest body a bundle may have (format-spec §5.5): the largest blob plaintext a reader
/// accepts (§5.2).
pub const MAX_BUNDLE_BODY: usize = 64 * 1024 * 1024;

/// One blob's location. `offset` and `length` are those of the blob's stored segment: the sealed
/// blob, or the sealed bundle it is a member of (format-spec §5.5).
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
    /// `Some(o)`: the segment is a bundle and this blob's plaintext starts at byte `o` of the
    /// bundle's body; `None`: the segment is this blob alone. Index files of version 1 cannot say
    /// `Some` (format-spec §6.1).
    pub inner: Option<u32>,
}

impl IndexBlob {
    /// Where this blob's plaintext ends in its bundle's body (`None` outside a bundle).
    pub fn inner_end(&self) -> Option<u64> {
        self.inner.map(|o| o as u64 + self.plain_length as u64)
    }
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

impl IndexPack {
    /// The stored bytes each blob accounts for, in `blobs` order: its stored length, or for a
    /// bundle member its share of the bundle's, in proportion to its plaintext (the shares of a
    /// bundle's members add up to the bundle's stored length).
    pub fn stored_shares(&self) -> Vec<u64> {
        let mut body_end: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
        for b in &self.blobs {
            if let Some(end) = b.inner_end() {
                let e = body_end.entry(b.offset).or_default();
                *e = (*e).max(end);
            }
        }
        self.blobs
            .iter()
            .map(|b| match b.inner {
                None => b.length as u64,
                Some(start) => {
                    let total = body_end.get(&b.offset).copied().unwrap_or(0) as u128;
                    let len = b.length as u128;
                    if total == 0 {
                        return if start == 0 { b.length as u64 } else { 0 };
                    }
                    let at = |x: u64| len * x as u128 / total;
                    (at(start as u64 + b.plain_length as u64) - at(start as u64)) as u64
                }
            })
            .collect()
    }
}

/// An index file (format-spec §6.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexFile {
    /// Version 1: no bundles.
    V1 {
        /// Index files this one replaces (written by prune).
        supersedes: Vec<IndexId>,
        /// The packs it describes; on the wire without `inner`, which must be `None`.
        #[serde(with = "v1")]
        packs: Vec<IndexPack>,
    },
    /// Version 2: blobs may be members of bundles (format-spec §5.5).
    V2 {
        /// Index files this one replaces (written by prune).
        supersedes: Vec<IndexId>,
        /// The packs it describes.
        packs: Vec<IndexPack>,
    },
}

/// The wire form of version 1's packs: [`IndexPack`] and [`IndexBlob`] without `inner`.
mod v1 {
    use super::{BlobId, BlobKind, IndexBlob, IndexPack, PackId};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Blob {
        kind: BlobKind,
        id: BlobId,
        session: u32,
        offset: u64,
        length: u32,
        plain_length: u32,
    }

    #[derive(Serialize, Deserialize)]
    struct Pack {
        id: PackId,
        kind: BlobKind,
        size: u64,
        header_length: u32,
        header_hash: [u8; 32],
        sessions: Vec<[u8; 32]>,
        blobs: Vec<Blob>,
    }

    pub fn serialize<S: Serializer>(packs: &[IndexPack], s: S) -> Result<S::Ok, S::Error> {
        if packs.iter().flat_map(|p| &p.blobs).any(|b| b.inner.is_some()) {
            return Err(serde::ser::Error::custom("an index file of version 1 cannot name a bundle member"));
        }
        let wire: Vec<Pack> = packs
            .iter()
            .map(|p| Pack {
                id: p.id,
                kind: p.kind,
                size: p.size,
                header_length: p.header_length,
                header_hash: p.header_hash,
                sessions: p.sessions.clone(),
                blobs: p
                    .blobs
                    .iter()
                    .map(|b| Blob {
                        kind: b.kind,
                        id: b.id,
                        session: b.session,
                        offset: b.offset,
                        length: b.length,
                        plain_length: b.plain_length,
                    })
                    .collect(),
            })
            .collect();
        wire.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IndexPack>, D::Error> {
        let wire = Vec::<Pack>::deserialize(d)?;
        Ok(wire
            .into_iter()
            .map(|p| IndexPack {
                id: p.id,
                kind: p.kind,
                size: p.size,
                header_length: p.header_length,
                header_hash: p.header_hash,
                sessions: p.sessions,
                blobs: p
                    .blobs
                    .into_iter()
                    .map(|b| IndexBlob {
                        kind: b.kind,
                        id: b.id,
                        session: b.session,
                        offset: b.offset,
                        length: b.length,
                        plain_length: b.plain_length,
                        inner: None,
                    })
                    .collect(),
            })
            .collect())
    }
}

impl IndexFile {
    /// The index file a writer stores for `packs`: version 1 unless a blob is a bundle member
    /// (format-spec §6.1), so repositories without bundles keep writing what older readers read.
    pub fn new(supersedes: Vec<IndexId>, packs: Vec<IndexPack>) -> Self {
        if packs.iter().flat_map(|p| &p.blobs).any(|b| b.inner.is_some()) {
            IndexFile::V2 { supersedes, packs }
        } else {
            IndexFile::V1 { supersedes, packs }
        }
    }

    /// The packs.
    pub fn packs(&self) -> &[IndexPack] {
        match self {
            IndexFile::V1 { packs, .. } | IndexFile::V2 { packs, .. } => packs,
        }
    }

    /// The packs, by value.
    pub fn into_packs(self) -> Vec<IndexPack> {
        match self {
            IndexFile::V1 { packs, .. } | IndexFile::V2 { packs, .. } => packs,
        }
    }

    /// The superseded index files.
    pub fn supersedes(&self) -> &[IndexId] {
        match self {
            IndexFile::V1 { supersedes, .. } | IndexFile::V2 { supersedes, .. } => supersedes,
        }
    }

    /// Checks internal consistency: session references, blob extents and bundle members' places.
    pub fn validate(&self) -> Result<(), String> {
        for p in self.packs() {
            let mut end = 0u64;
            for b in &p.blobs {
                if b.session as usize >= p.sessions.len() {
                    return Err(format!("pack {}: blob {} names a missing session", p.id, b.id));
                }
                if b.inner_end().is_some_and(|e| e > MAX_BUNDLE_BODY as u64) {
                    return Err(format!("pack {}: blob {} lies past the largest bundle body", p.id, b.id));
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
