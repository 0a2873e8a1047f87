//! Key files (format-spec §4): `keyfile::decode` on the raw input and behind the magic, and
//! `object::decode_key_material` on the input as the opened key material of a fixed key file (the
//! step `object::open_keyfile` runs after argon2id and the AEAD, which are too slow to fuzz through).
#![no_main]

mod common;

use cairn::codec::object;
use cairn::crypto::KdfParams;
use cairn::keyfile::{self, KeyFile, KeyFileV1, KeyKind, KEY_MAGIC};
use cairn::tree::Time;
use libfuzzer_sys::fuzz_target;

fn fixed_file(kind: KeyKind) -> KeyFile {
    KeyFile::V1(KeyFileV1 {
        kind,
        repo_id: common::keys().repo_id,
        created: Time::default(),
        host: "h".into(),
        user: "u".into(),
        kdf: KdfParams::MINIMUM,
        salt: [1; 32],
        sealed: vec![],
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = keyfile::decode(data);
    let mut framed = KEY_MAGIC.to_vec();
    framed.extend_from_slice(data);
    if let Ok(kf) = keyfile::decode(&framed) {
        let _ = (kf.created().to_rfc3339(), kf.host().len(), kf.sealed().len());
        let mut again = KEY_MAGIC.to_vec();
        again.extend_from_slice(&postcard::to_allocvec(&kf).unwrap());
        assert_eq!(keyfile::decode(&again).as_ref(), Ok(&kf), "key file round trip");
    }

    for kind in [KeyKind::Full, KeyKind::WriteOnly] {
        let kf = fixed_file(kind);
        if let Ok(m) = object::decode_key_material(&kf, data) {
            assert_eq!(m.repo_id, kf.repo_id());
            assert_eq!(m.can_read(), kind == KeyKind::Full);
            let _ = (m.index_seal_key(), m.fingerprint());
            let again = postcard::to_allocvec(&m).unwrap();
            assert_eq!(object::decode_key_material(&kf, &again).as_ref(), Ok(&m), "key material round trip");
        }
    }
    let full = common::keys();
    for m in [full.clone(), full.write_only()] {
        let kind = if m.can_read() { KeyKind::Full } else { KeyKind::WriteOnly };
        let bytes = postcard::to_allocvec(&m).unwrap();
        assert_eq!(object::decode_key_material(&fixed_file(kind), &bytes), Ok(m));
    }
});
