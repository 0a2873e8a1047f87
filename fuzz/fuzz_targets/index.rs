//! Index files (format-spec §6): `object::decode_index_with` on the raw input and behind the magic
//! (dies at the AEAD), `index::decode_plain` on it as plaintext, and the input sealed with fixed
//! keys, which must decode exactly as the plaintext; a decoded file must survive `encode`.
#![no_main]

mod common;

use cairn::codec::object;
use cairn::crypto::{self, ObjectKind};
use cairn::id::IndexId;
use cairn::index::{self, INDEX_MAGIC, INDEX_VERSION};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let keys = common::keys();
    let seal_key = keys.index_seal_key();
    let id = IndexId([0x5a; 32]);

    let _ = object::decode_index_with(&keys.repo_id, &seal_key, &id, data);
    let mut framed = INDEX_MAGIC.to_vec();
    framed.push(INDEX_VERSION);
    framed.extend_from_slice(data);
    let _ = object::decode_index(&keys, &id, &framed);

    let plain = index::decode_plain(data);
    if let Ok(f) = &plain {
        for p in f.packs() {
            let _ = (p.id.to_hex(), p.blobs.len(), f.supersedes().len());
        }
        let bytes = object::encode_index(&keys, &id, f);
        assert_eq!(object::decode_index(&keys, &id, &bytes).as_ref(), Ok(f), "index round trip");
    }

    let aad = crypto::aad(&keys.repo_id, ObjectKind::Index, &id.0);
    let mut sealed = INDEX_MAGIC.to_vec();
    sealed.push(INDEX_VERSION);
    sealed.extend_from_slice(&crypto::seal(&seal_key, &aad, data));
    common::assert_same("index", &plain, &object::decode_index(&keys, &id, &sealed));
});
