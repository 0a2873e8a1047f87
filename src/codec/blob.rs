//! Blob framing (format-spec §5.2): the plaintext inside a sealed blob is
//! `version (1) ‖ compression (1) ‖ padding length (u32 LE) ‖ payload ‖ padding (zeros)`; a bundle
//! (§5.5) frames its body, the members' plaintexts back to back, the same way.
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
    seal_framed(key, &crypto::aad(repo, object_kind(kind), &id.0), plain, compression)
}

/// Compresses `plain` (where it pays), frames it (format-spec §5.2) and seals it under `aad`.
fn seal_framed(key: &Secret, aad: &[u8], plain: &[u8], compression: Compression) -> Vec<u8> {
    seal_payload(key, aad, plain, compress::compress(plain, compression).as_deref())
}

/// The writer's check of its compressor before a payload is sealed (format-spec §5.4): refuses a
/// compressed payload that does not decompress to exactly `plain`. A payload stored raw (`None`)
/// is `plain` itself.
pub fn check_compressed(compressed: Option<&[u8]>, plain: &[u8]) -> Result<(), String> {
    match compressed {
        Some(c) if !compress::decompresses_to(c, plain) => {
            Err("the compressed payload does not decompress to the plaintext".into())
        }
        _ => Ok(()),
    }
}

/// Frames `plain`, or its `compressed` form, and seals it under `aad`.
fn seal_payload(key: &Secret, aad: &[u8], plain: &[u8], compressed: Option<&[u8]>) -> Vec<u8> {
    let (flag, payload) = match compressed {
        Some(c) => (COMPRESSION_ZSTD, c),
        None => (COMPRESSION_NONE, plain),
    };
    let mut buf = Vec::with_capacity(NONCE_LEN + HEADER_LEN + payload.len() + crypto::TAG_LEN);
    buf.extend_from_slice(&[0u8; NONCE_LEN]);
    buf.push(BLOB_VERSION);
    buf.push(flag);
    buf.extend_from_slice(&0u32.to_le_bytes());
    buf.extend_from_slice(payload);
    crypto::seal_prepared(key, aad, buf)
}

/// [`seal_blob`] of a payload already compressed (`Some`, by [`compress::compress`]) or to be
/// stored raw (`None`): what a writer seals after [`check_compressed`].
pub fn seal_blob_payload(
    key: &Secret,
    repo: &RepoId,
    kind: BlobKind,
    id: &BlobId,
    plain: &[u8],
    compressed: Option<&[u8]>,
) -> Vec<u8> {
    seal_payload(key, &crypto::aad(repo, object_kind(kind), &id.0), plain, compressed)
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

/// The name in a bundle's associated data (format-spec §5.5): none. A bundle is bound to its kind
/// and repository; each member to its content id, which readers recompute.
pub const BUNDLE_NAME: [u8; 32] = [0; 32];

/// Compresses (where it pays), frames and seals a bundle `body`: its members' plaintexts, back to
/// back (format-spec §5.5).
pub fn seal_bundle(key: &Secret, repo: &RepoId, body: &[u8], compression: Compression) -> Vec<u8> {
    seal_framed(key, &crypto::aad(repo, ObjectKind::DataBundle, &BUNDLE_NAME), body, compression)
}

/// [`seal_bundle`] of a body already compressed or to be stored raw, as [`seal_blob_payload`].
pub fn seal_bundle_payload(key: &Secret, repo: &RepoId, body: &[u8], compressed: Option<&[u8]>) -> Vec<u8> {
    seal_payload(key, &crypto::aad(repo, ObjectKind::DataBundle, &BUNDLE_NAME), body, compressed)
}

/// Opens a sealed bundle and returns its body (at most [`crate::index::MAX_BUNDLE_BODY`] bytes).
/// The caller slices members out of it and verifies their ids.
pub fn open_bundle(key: &Secret, repo: &RepoId, sealed: &[u8]) -> Result<Vec<u8>, String> {
    let aad = crypto::aad(repo, ObjectKind::DataBundle, &BUNDLE_NAME);
    let inner = crypto::open(key, &aad, sealed)
        .ok_or_else(|| "bundle does not authenticate (wrong key, or the bytes were altered)".to_string())?;
    decode_bundle_inner(inner)
}

/// Decodes the framed plaintext of a bundle into its body.
pub fn decode_bundle_inner(mut inner: Vec<u8>) -> Result<Vec<u8>, String> {
    let (flag, end) = framing(&inner)?;
    match flag {
        COMPRESSION_NONE => {
            if end - HEADER_LEN > crate::index::MAX_BUNDLE_BODY {
                return Err("bundle body over 64 MiB".into());
            }
            inner.truncate(end);
            inner.drain(..HEADER_LEN);
            Ok(inner)
        }
        COMPRESSION_ZSTD => compress::decompress_frame(&inner[HEADER_LEN..end], crate::index::MAX_BUNDLE_BODY),
        f => Err(format!("unknown compression {f}")),
    }
}

/// The member of a bundle body that starts at `inner` and is `plain_len` bytes long.
pub fn bundle_member(body: &[u8], inner: u32, plain_len: usize) -> Result<&[u8], String> {
    let start = inner as usize;
    body.get(start..start.saturating_add(plain_len)).ok_or_else(|| {
        format!("bundle body holds {} bytes, the member ends at {}", body.len(), start.saturating_add(plain_len))
    })
}

/// Checks the framing header; returns the compression flag and where the payload ends.
fn framing(inner: &[u8]) -> Result<(u8, usize), String> {
    if inner.len() < HEADER_LEN {
        return Err("blob framing too short".into());
    }
    if inner[0] != BLOB_VERSION {
        return Err(format!("unknown blob framing version {}", inner[0]));
    }
    let pad = u32::from_le_bytes(inner[2..6].try_into().expect("4 bytes")) as usize;
    let end = inner.len().checked_sub(pad).filter(|&e| e >= HEADER_LEN).ok_or("blob padding longer than the blob")?;
    Ok((inner[1], end))
}

/// Decodes the framed plaintext of a blob.
pub fn decode_inner(mut inner: Vec<u8>, plain_len: usize) -> Result<Vec<u8>, String> {
    let (flag, end) = framing(&inner)?;
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
    fn a_payload_seals_as_the_plain_seal_does_and_the_check_refuses_one_that_gives_back_other_bytes() {
        let key = Secret([3; 32]);
        let repo = RepoId([4; 32]);
        let id = BlobId([5; 32]);
        let text: Vec<u8> = b"check my compressor ".iter().cycle().take(100_000).copied().collect();
        let mut random = vec![0u8; 100_000];
        getrandom::getrandom(&mut random).unwrap();
        for plain in [text.clone(), random, b"abc".to_vec(), vec![]] {
            let c = compress::compress(&plain, Compression::default());
            assert!(check_compressed(c.as_deref(), &plain).is_ok());
            let s = seal_blob_payload(&key, &repo, BlobKind::Data, &id, &plain, c.as_deref());
            assert_eq!(s.len(), seal_blob(&key, &repo, BlobKind::Data, &id, &plain, Compression::default()).len());
            assert_eq!(open_blob(&key, &repo, BlobKind::Data, &id, &s, plain.len()).unwrap(), plain);
            let b = seal_bundle_payload(&key, &repo, &plain, c.as_deref());
            assert_eq!(open_bundle(&key, &repo, &b).unwrap(), plain);
        }
        // What a faulty compressor could hand over: a payload for other bytes.
        let good = compress::compress(&text, Compression::default()).unwrap();
        let mut other = text.clone();
        other[50_000] = b'#';
        let wrong = compress::compress(&other, Compression::default()).unwrap();
        assert!(check_compressed(Some(&good), &text).is_ok());
        assert!(check_compressed(None, &text).is_ok(), "stored raw: the payload is the plaintext");
        let e = check_compressed(Some(&wrong), &text).unwrap_err();
        assert!(e.contains("does not decompress to the plaintext"), "{e}");
        assert!(check_compressed(Some(&good[..good.len() - 1]), &text).is_err());
    }

    #[test]
    fn a_bundle_round_trips_and_is_no_blob() {
        let key = Secret([3; 32]);
        let repo = RepoId([4; 32]);
        let text: Vec<u8> = b"bundle me ".iter().cycle().take(50_000).copied().collect();
        for (body, c) in
            [(text.clone(), Compression::default()), (text.clone(), Compression::Off), (vec![], Compression::default())]
        {
            let s = seal_bundle(&key, &repo, &body, c);
            assert_eq!(open_bundle(&key, &repo, &s).unwrap(), body);
            assert!(open_blob(&key, &repo, BlobKind::Data, &BlobId(BUNDLE_NAME), &s, body.len()).is_err());
            assert!(open_bundle(&Secret([9; 32]), &repo, &s).is_err());
        }
        let s = seal_blob(&key, &repo, BlobKind::Data, &BlobId(BUNDLE_NAME), &text, Compression::default());
        assert!(open_bundle(&key, &repo, &s).is_err(), "a blob never opens as a bundle");
        assert_eq!(bundle_member(&text, 10, 5).unwrap(), &text[10..15]);
        assert!(bundle_member(&text, 49_999, 5).is_err());
        assert!(bundle_member(&text, u32::MAX, usize::MAX).is_err());
    }

    #[test]
    fn hostile_inner_bytes_are_errors() {
        for bytes in
            [vec![], vec![1], vec![1, 0, 255, 255, 255, 255], vec![9, 0, 0, 0, 0, 0], vec![1, 1, 0, 0, 0, 0, 1]]
        {
            assert!(decode_bundle_inner(bytes).is_err());
        }
        for bytes in [vec![], vec![1], vec![1, 0, 255, 255, 255, 255], vec![9, 0, 0, 0, 0, 0]] {
            assert!(decode_inner(bytes, 0).is_err());
        }
        assert!(decode_inner(vec![1, 1, 0, 0, 0, 0, 1, 2, 3], 10).is_err());
    }
}
