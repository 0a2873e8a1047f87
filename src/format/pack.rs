//! Packs (format-spec §5.3): sealed blobs back to back, then the sealed header, its length and a
//! magic. The header types, the trailer and the plaintext decoding; building packs and sealing
//! headers is [`crate::codec::packer`]'s. No I/O.

use crate::id::{BlobId, BlobKind};
use crate::index::IndexBlob;
use serde::{Deserialize, Serialize};

/// The last 8 bytes of every pack.
pub const PACK_MAGIC: &[u8; 8] = b"CAIRNPK1";
/// Length of the trailer: header length (u32 LE) and the magic.
pub const TRAILER_LEN: usize = 12;
/// Largest header a reader accepts.
pub const MAX_HEADER_LEN: usize = 64 * 1024 * 1024;

/// One blob in a pack header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackEntry {
    /// Blob kind.
    pub kind: BlobKind,
    /// Content id.
    pub id: BlobId,
    /// Index into the header's session table.
    pub session: u32,
    /// Stored (sealed) length.
    pub length: u32,
    /// Plaintext length.
    pub plain_length: u32,
}

/// The decoded header of a pack (format-spec §5.3). Blobs lie back to back from offset 0 in
/// entry order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PackHeader {
    /// Version 1.
    V1 {
        /// The session public keys the entries refer to.
        sessions: Vec<[u8; 32]>,
        /// The blobs, in storage order.
        entries: Vec<PackEntry>,
    },
}

impl PackHeader {
    /// The session table.
    pub fn sessions(&self) -> &[[u8; 32]] {
        match self {
            PackHeader::V1 { sessions, .. } => sessions,
        }
    }
    /// The entries.
    pub fn entries(&self) -> &[PackEntry] {
        match self {
            PackHeader::V1 { entries, .. } => entries,
        }
    }

    /// The entries as index records with their offsets; checks they fit `blob_area` bytes.
    pub fn to_index_blobs(&self, blob_area: u64) -> Result<Vec<IndexBlob>, String> {
        let mut off = 0u64;
        let mut out = Vec::with_capacity(self.entries().len());
        for e in self.entries() {
            if e.session as usize >= self.sessions().len() {
                return Err(format!("blob {} names session {} of {}", e.id, e.session, self.sessions().len()));
            }
            out.push(IndexBlob {
                kind: e.kind,
                id: e.id,
                session: e.session,
                offset: off,
                length: e.length,
                plain_length: e.plain_length,
            });
            off += e.length as u64;
        }
        if off > blob_area {
            return Err(format!("header describes {off} bytes of blobs, the pack has {blob_area}"));
        }
        Ok(out)
    }
}

/// Reads the trailer (the last [`TRAILER_LEN`] bytes): the stored header's length.
pub fn parse_trailer(trailer: &[u8]) -> Result<usize, String> {
    if trailer.len() != TRAILER_LEN {
        return Err("pack shorter than its trailer".into());
    }
    if &trailer[4..] != PACK_MAGIC {
        return Err("pack magic missing".into());
    }
    let n = u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes")) as usize;
    if n > MAX_HEADER_LEN {
        return Err(format!("pack header length {n} too large"));
    }
    Ok(n)
}

/// Decodes the plaintext of a pack header, the step the codec runs after authentication
/// (exposed so it can be fuzzed without the key).
pub fn decode_header(plain: &[u8]) -> Result<PackHeader, String> {
    postcard::from_bytes(plain).map_err(|e| format!("pack header: {e}"))
}
