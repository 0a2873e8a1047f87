//! Packs (format-spec §5.3): sealed blobs and bundles back to back, then the sealed header, its
//! length and a magic. The header types, the trailer and the plaintext decoding; building packs and sealing
//! headers is [`crate::codec::packer`]'s. No I/O.

use crate::id::{BlobId, BlobKind};
use crate::index::{IndexBlob, MAX_BUNDLE_BODY};
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

/// One member of a bundle: a data blob whose plaintext lies in the bundle's body right after the
/// previous member's (format-spec §5.5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleMember {
    /// Content id.
    pub id: BlobId,
    /// Plaintext length.
    pub plain_length: u32,
}

/// A bundle in a pack header: one sealed segment holding several blobs (format-spec §5.5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackBundle {
    /// Kind of every member (data).
    pub kind: BlobKind,
    /// Index into the header's session table.
    pub session: u32,
    /// Stored (sealed) length of the bundle.
    pub length: u32,
    /// The members, in body order.
    pub members: Vec<BundleMember>,
}

/// One stored segment of a version 2 pack: a blob alone, or a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PackSegment {
    /// A sealed blob (format-spec §5.2).
    Blob(PackEntry),
    /// A sealed bundle (format-spec §5.5).
    Bundle(PackBundle),
}

impl PackSegment {
    /// Stored length.
    pub fn length(&self) -> u32 {
        match self {
            PackSegment::Blob(e) => e.length,
            PackSegment::Bundle(b) => b.length,
        }
    }
}

/// The decoded header of a pack (format-spec §5.3). Segments lie back to back from offset 0 in
/// entry order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PackHeader {
    /// Version 1: every segment is one blob.
    V1 {
        /// The session public keys the entries refer to.
        sessions: Vec<[u8; 32]>,
        /// The blobs, in storage order.
        entries: Vec<PackEntry>,
    },
    /// Version 2: segments are blobs or bundles (format-spec §5.5).
    V2 {
        /// The session public keys the segments refer to.
        sessions: Vec<[u8; 32]>,
        /// The segments, in storage order.
        segments: Vec<PackSegment>,
    },
}

impl PackHeader {
    /// The header a writer stores for `segments`: version 1 unless one is a bundle, so packs
    /// without bundles stay what older readers read.
    pub fn new(sessions: Vec<[u8; 32]>, segments: Vec<PackSegment>) -> Self {
        if segments.iter().all(|s| matches!(s, PackSegment::Blob(_))) {
            let entries = segments
                .into_iter()
                .filter_map(|s| match s {
                    PackSegment::Blob(e) => Some(e),
                    PackSegment::Bundle(_) => None,
                })
                .collect();
            PackHeader::V1 { sessions, entries }
        } else {
            PackHeader::V2 { sessions, segments }
        }
    }

    /// The session table.
    pub fn sessions(&self) -> &[[u8; 32]] {
        match self {
            PackHeader::V1 { sessions, .. } | PackHeader::V2 { sessions, .. } => sessions,
        }
    }

    /// Number of blobs the header names (bundle members counted one by one).
    pub fn blob_count(&self) -> usize {
        match self {
            PackHeader::V1 { entries, .. } => entries.len(),
            PackHeader::V2 { segments, .. } => segments
                .iter()
                .map(|s| match s {
                    PackSegment::Blob(_) => 1,
                    PackSegment::Bundle(b) => b.members.len(),
                })
                .sum(),
        }
    }

    /// The blobs as index records with their offsets; checks they fit `blob_area` bytes, that
    /// every session exists, and that every bundle has members and a body within
    /// [`MAX_BUNDLE_BODY`].
    pub fn to_index_blobs(&self, blob_area: u64) -> Result<Vec<IndexBlob>, String> {
        let sessions = self.sessions().len();
        let check_session = |what: &dyn std::fmt::Display, s: u32| {
            if s as usize >= sessions {
                Err(format!("{what} names session {s} of {sessions}"))
            } else {
                Ok(())
            }
        };
        let blob = |e: &PackEntry, off: u64| IndexBlob {
            kind: e.kind,
            id: e.id,
            session: e.session,
            offset: off,
            length: e.length,
            plain_length: e.plain_length,
            inner: None,
        };
        let mut off = 0u64;
        let mut out = Vec::with_capacity(self.blob_count().min(1 << 20));
        match self {
            PackHeader::V1 { entries, .. } => {
                for e in entries {
                    check_session(&format_args!("blob {}", e.id), e.session)?;
                    out.push(blob(e, off));
                    off += e.length as u64;
                }
            }
            PackHeader::V2 { segments, .. } => {
                for seg in segments {
                    match seg {
                        PackSegment::Blob(e) => {
                            check_session(&format_args!("blob {}", e.id), e.session)?;
                            out.push(blob(e, off));
                        }
                        PackSegment::Bundle(b) => {
                            check_session(&format_args!("the bundle at offset {off}"), b.session)?;
                            if b.kind != BlobKind::Data {
                                return Err(format!("the bundle at offset {off} holds {} blobs", b.kind));
                            }
                            if b.members.is_empty() {
                                return Err(format!("the bundle at offset {off} has no members"));
                            }
                            let mut inner = 0u64;
                            for m in &b.members {
                                let end = inner + m.plain_length as u64;
                                if end > MAX_BUNDLE_BODY as u64 {
                                    return Err(format!("the bundle at offset {off} has a body over 64 MiB"));
                                }
                                out.push(IndexBlob {
                                    kind: b.kind,
                                    id: m.id,
                                    session: b.session,
                                    offset: off,
                                    length: b.length,
                                    plain_length: m.plain_length,
                                    inner: Some(inner as u32),
                                });
                                inner = end;
                            }
                        }
                    }
                    off += seg.length() as u64;
                }
            }
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
