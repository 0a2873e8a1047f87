//! Key files (format-spec §4): `keyfile::decode` on the raw input and behind the magic (both
//! variants: opened with a password, opened with a generated secret), `KeySecret::parse` on the
//! input as a credential, and `object::decode_key_material` on the input as the opened key material
//! of a fixed key file of each variant (the step `object::open_keyfile` runs after the KEK
//! derivation and the AEAD; argon2id is too slow to fuzz through).
#![no_main]

mod common;

use cairn::codec::object;
use cairn::crypto::KdfParams;
use cairn::keyfile::{self, KeyFile, KeyFileSecretV1, KeyFileV1, KeySecret, KeyKind, KEY_MAGIC};
use cairn::tree::Time;
use libfuzzer_sys::fuzz_target;

fn fixed_file(kind: KeyKind, secret: bool) -> KeyFile {
    let (repo_id, created, host, user, salt, sealed) =
        (common::keys().repo_id, Time::default(), "h".into(), "u".into(), [1; 32], vec![]);
    if secret {
        KeyFile::SecretV1(KeyFileSecretV1 { kind, repo_id, created, host, user, salt, sealed })
    } else {
        KeyFile::V1(KeyFileV1 { kind, repo_id, created, host, user, kdf: KdfParams::MINIMUM, salt, sealed })
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = keyfile::decode(data);
    let mut framed = KEY_MAGIC.to_vec();
    framed.extend_from_slice(data);
    if let Ok(kf) = keyfile::decode(&framed) {
        let _ = (kf.created().to_rfc3339(), kf.host().len(), kf.sealed().len(), kf.kdf(), kf.credential());
        let mut again = KEY_MAGIC.to_vec();
        again.extend_from_slice(&postcard::to_allocvec(&kf).unwrap());
        assert_eq!(keyfile::decode(&again).as_ref(), Ok(&kf), "key file round trip");
    }

    // A credential of the secret's form parses to the secret whose text it is, trimmed.
    if let Some(secret) = KeySecret::parse(data) {
        assert_eq!(secret.to_text().as_bytes(), data.trim_ascii(), "secret text round trip");
    }

    for (kind, secret) in [(KeyKind::Full, false), (KeyKind::WriteOnly, false), (KeyKind::Full, true), (KeyKind::WriteOnly, true)] {
        let kf = fixed_file(kind, secret);
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
        for secret in [false, true] {
            assert_eq!(object::decode_key_material(&fixed_file(kind, secret), &bytes), Ok(m.clone()));
        }
    }
});
