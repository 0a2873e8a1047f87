//! Blob framing (format-spec §5.2): the plaintext inside a sealed blob is
//! `version (1) ‖ compression (1) ‖ padding length (u32 LE) ‖ payload ‖ padding (zeros)`.
//! Pure: takes bytes and keys, returns bytes.

use crate::compress::{self, Compression};
use crate::crypto::{self, ObjectKind, Secret, NONCE_LEN};
use crate::id::{BlobId, BlobKind, RepoId};

/// The blob framing version.
pub const BLOB_VERSION: u8 = 1;
/// Payload stored as is.
pub const COMPRESSION_NONE: u8 = 0;
/// Payload is one zstd frame.
pub const COMPRESSION_ZSTD: u8 = 1;
/// Length of the framing header.
pub const HEADER_LEN: usize = 6;
pub use crate::compress::MAX_PLAIN_LEN;

/// The object kind bound into a blob's associated data.
pub fn object_kind(kind: BlobKind) -> ObjectKind {
    match kind {
        BlobKind::Data => ObjectKind::DataBlob,
        BlobKind::Tree => ObjectKind::TreeBlob,
    }
}

/// Compresses (where it pays), frames and seals a blob whose id is already known.
pub fn seal_blob(
    key: &Secret,
    repo: &RepoId,
    kind: BlobKind,
    id: &BlobId,
    plain: &[u8],
    compression: Compression,
) -> Vec<u8> {
    let compressed = compress::compress(plain, compression);
    let (flag, payload) = match &compressed {
        Some(c) => (COMPRESSION_ZSTD, &c[..]),
        None => (COMPRESSION_NONE, plain),
    };
    let mut buf = Vec::with_capacity(NONCE_LEN + HEADER_LEN + payload.len() + crypto::TAG_LEN);
    buf.extend_from_slice(&[0u8; NONCE_LEN]);
    buf.push(BLOB_VERSION);
    buf.push(flag);
    buf.extend_from_slice(&0u32.to_le_bytes());
    buf.extend_from_slice(payload);
    let aad = crypto::aad(repo, object_kind(kind), &id.0);
    crypto::seal_prepared(key, &aad, buf)
}

/// Opens and decodes a sealed blob, checking its plain length. The caller verifies the id.
pub fn open_blob(
    key: &Secret,
    repo: &RepoId,
    kind: BlobKind,
    id: &BlobId,
    sealed: &[u8],
    plain_len: usize,
) -> Result<Vec<u8>, String> {
    if plain_len > MAX_PLAIN_LEN {
        return Err(format!("plain length {plain_len} exceeds the maximum"));
    }
    let aad = crypto::aad(repo, object_kind(kind), &id.0);
    let inner = crypto::open(key, &aad, sealed)
        .ok_or_else(|| "does not authenticate (wrong key, or the bytes were altered)".to_string())?;
    decode_inner(inner, plain_len)
}

/// Decodes the framed plaintext of a blob.
pub fn decode_inner(mut inner: Vec<u8>, plain_len: usize) -> Result<Vec<u8>, String> {
    if inner.len() < HEADER_LEN {
        return Err("blob framing too short".into());
    }
    if inner[0] != BLOB_VERSION {
        return Err(format!("unknown blob framing version {}", inner[0]));
    }
    let flag = inner[1];
    let pad = u32::from_le_bytes(inner[2..6].try_into().expect("4 bytes")) as usize;
    let end = inner.len().checked_sub(pad).filter(|&e| e >= HEADER_LEN).ok_or("blob padding longer than the blob")?;
    match flag {
        COMPRESSION_NONE => {
            if end - HEADER_LEN != plain_len {
                return Err(format!("blob holds {} bytes, expected {plain_len}", end - HEADER_LEN));
            }
            inner.truncate(end);
            inner.drain(..HEADER_LEN);
            Ok(inner)
        }
        COMPRESSION_ZSTD => compress::decompress(&inner[HEADER_LEN..end], plain_len),
        f => Err(format!("unknown compression {f}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_both_ways() {
        let key = Secret([3; 32]);
        let repo = RepoId([4; 32]);
        let id = BlobId([5; 32]);
        for plain in [vec![], vec![7u8; 100_000], b"abc".to_vec()] {
            let s = seal_blob(&key, &repo, BlobKind::Data, &id, &plain, Compression::default());
            assert_eq!(open_blob(&key, &repo, BlobKind::Data, &id, &s, plain.len()).unwrap(), plain);
            assert!(open_blob(&key, &repo, BlobKind::Tree, &id, &s, plain.len()).is_err());
        }
    }

    #[test]
    fn hostile_inner_bytes_are_errors() {
        for bytes in [vec![], vec![1], vec![1, 0, 255, 255, 255, 255], vec![9, 0, 0, 0, 0, 0]] {
            assert!(decode_inner(bytes, 0).is_err());
        }
        assert!(decode_inner(vec![1, 1, 0, 0, 0, 0, 1, 2, 3], 10).is_err());
    }
}
