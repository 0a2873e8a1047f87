//! Blob framing and decompression (format-spec §5.2). Input: `plain length (u32 LE) ‖ bytes`.
//! The bytes go to `blob::open_blob` raw (dies at the AEAD), to `blob::decode_inner` and
//! `compress::decompress` as plaintext, and sealed with a fixed key through `open_blob`, which
//! must decide as `decode_inner` does. Then the bytes themselves are sealed as a blob's content
//! (compressed and not) and must come back unchanged. The same bytes go through the bundle
//! decoders (format-spec §5.5): `decode_bundle_inner` as plaintext, `open_bundle` raw and sealed
//! under the bundle AAD (which must decide as `decode_bundle_inner` does), `bundle_member` at the
//! plain length as offset, and a bundle round trip.
#![no_main]

mod common;

use cairn::blob::{self, MAX_PLAIN_LEN};
use cairn::compress::{self, Compression};
use cairn::crypto::{self, Secret};
use cairn::id::{BlobId, BlobKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let plain_len = u32::from_le_bytes(data[..4].try_into().unwrap()) as usize;
    let inner = &data[4..];
    let keys = common::keys();
    let key = Secret([0x99; 32]);
    let id = BlobId([0x88; 32]);
    let kind = if plain_len.is_multiple_of(2) { BlobKind::Data } else { BlobKind::Tree };

    // Raw: dies at the AEAD, or at the plain-length limit.
    let _ = blob::open_blob(&key, &keys.repo_id, kind, &id, inner, plain_len);

    // As plaintext.
    let _ = compress::decompress(inner, plain_len);
    let plain = blob::decode_inner(inner.to_vec(), plain_len);
    if let Ok(p) = &plain {
        assert_eq!(p.len(), plain_len, "decode_inner returned the wrong length");
    }

    // Sealed with the fixed key: `open_blob` also refuses plain lengths over the maximum.
    let aad = crypto::aad(&keys.repo_id, blob::object_kind(kind), &id.0);
    let sealed = crypto::seal(&key, &aad, inner);
    let opened = blob::open_blob(&key, &keys.repo_id, kind, &id, &sealed, plain_len);
    if plain_len <= MAX_PLAIN_LEN {
        common::assert_same("blob", &plain, &opened);
    } else {
        assert!(opened.is_err(), "open_blob accepted a plain length over the maximum");
    }
    // The wrong kind must not open.
    let other = if kind == BlobKind::Data { BlobKind::Tree } else { BlobKind::Data };
    assert!(blob::open_blob(&key, &keys.repo_id, other, &id, &sealed, plain_len).is_err());

    // Bundles: raw (dies at the AEAD), as plaintext, sealed, sliced, round trip.
    let _ = blob::open_bundle(&key, &keys.repo_id, inner);
    let body = blob::decode_bundle_inner(inner.to_vec());
    if let Ok(b) = &body {
        assert!(b.len() <= cairn::index::MAX_BUNDLE_BODY, "a bundle body over the maximum");
        let _ = blob::bundle_member(b, plain_len as u32, b.len() / 2);
    }
    let bundle_aad = crypto::aad(&keys.repo_id, crypto::ObjectKind::DataBundle, &blob::BUNDLE_NAME);
    let sealed_bundle = crypto::seal(&key, &bundle_aad, inner);
    common::assert_same("bundle", &body, &blob::open_bundle(&key, &keys.repo_id, &sealed_bundle));
    assert!(blob::open_blob(&key, &keys.repo_id, BlobKind::Data, &id, &sealed_bundle, plain_len).is_err());
    let s = blob::seal_bundle(&key, &keys.repo_id, inner, Compression::default());
    assert_eq!(blob::open_bundle(&key, &keys.repo_id, &s).as_deref(), Ok(inner), "bundle round trip");

    // Round trip of the bytes as content, through compression and without.
    for c in [Compression::Off, Compression::Zstd(1), Compression::default()] {
        let s = blob::seal_blob(&key, &keys.repo_id, kind, &id, inner, c);
        let back = blob::open_blob(&key, &keys.repo_id, kind, &id, &s, inner.len());
        assert_eq!(back.as_deref(), Ok(inner), "blob round trip with {c:?}");
        if let Some(z) = compress::compress(inner, c) {
            assert_eq!(compress::decompress(&z, inner.len()).as_deref(), Ok(inner));
        }
    }
});
