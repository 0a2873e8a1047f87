//! Pack trailers and headers (format-spec §5.3): `pack::parse_trailer`, `open_header`,
//! `parse_pack` on the raw input, `decode_header` on it as a header's plaintext, and the input
//! sealed as a header with fixed keys inside a pack, which must decode exactly as the plaintext.
#![no_main]

mod common;

use cairn::codec::packer;
use cairn::crypto::{self, ObjectKind};
use cairn::pack::{self, PackHeader, PACK_MAGIC, TRAILER_LEN};
use libfuzzer_sys::fuzz_target;

/// Bytes of (zero) blob area in front of the sealed header of the built pack.
const BLOB_AREA: usize = 4096;

fn plain_path(data: &[u8]) -> Result<(PackHeader, Vec<cairn::index::IndexBlob>), String> {
    let h = pack::decode_header(data)?;
    let blobs = h.to_index_blobs(BLOB_AREA as u64)?;
    Ok((h, blobs))
}

fuzz_target!(|data: &[u8]| {
    let keys = common::keys();
    let seal_key = keys.index_seal_key();

    // Raw input: the trailer parse, the header open (dies at the AEAD) and the whole-pack parse.
    let _ = pack::parse_trailer(data);
    if data.len() >= TRAILER_LEN {
        let _ = pack::parse_trailer(&data[data.len() - TRAILER_LEN..]);
    }
    let _ = packer::open_header(&keys.repo_id, &seal_key, data);
    let _ = packer::parse_pack(&keys, data);

    // The input as a header's plaintext.
    let plain = plain_path(data);
    if let Ok((h, _)) = &plain {
        let _ = h.to_index_blobs(0);
        let _ = h.to_index_blobs(u64::MAX);
        // Round trip through the real sealing.
        let stored = packer::seal_header(&keys, h);
        assert_eq!(packer::open_header(&keys.repo_id, &seal_key, &stored).as_ref(), Ok(h));
    }

    // The input sealed as a header, inside a pack: `blobs ‖ salt ‖ seal ‖ length ‖ magic`.
    let salt = [0xa5u8; 32];
    let aad = crypto::aad(&keys.repo_id, ObjectKind::PackHeader, &salt);
    let mut stored = salt.to_vec();
    stored.extend_from_slice(&crypto::seal(&seal_key, &aad, data));
    let mut bytes = vec![0u8; BLOB_AREA];
    bytes.extend_from_slice(&stored);
    bytes.extend_from_slice(&(stored.len() as u32).to_le_bytes());
    bytes.extend_from_slice(PACK_MAGIC);
    let sealed = packer::parse_pack(&keys, &bytes);
    common::assert_same("pack", &plain, &sealed);
});
