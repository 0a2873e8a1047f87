//! Key certificates (format-spec §4.3): `attribution::decode_cert` on the raw input (dies at the signature), then the
//! input behind the magic signed by a fixed repository key, which must decode exactly as postcard decodes the input
//! unless it certifies another key than its path names; a certificate must not verify under another path, and decoded
//! certificates must survive their encoder. The same for key revocations (`attribution::decode_revocation`).
#![no_main]

mod common;

use cairn::cert::{KeyCert, Revocation, CERT_MAGIC, REVOCATION_MAGIC};
use cairn::codec::{attribution, sign};
use cairn::crypto::{self, context};
use cairn::id::KeyId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut keys = common::keys();
    let secret = crypto::Secret([0x77; 32]);
    keys.repo_public = crypto::public_key(&secret);
    keys.repo_secret = Some(secret.clone());
    let key = KeyId([0x12; 32]);
    let path = attribution::cert_path(&key);

    let _ = attribution::decode_cert(&keys, &key, data);

    let mut bytes = CERT_MAGIC.to_vec();
    bytes.extend_from_slice(data);
    let sig = sign::sign(&secret, context::CERT_SIG, &[path.as_bytes(), &bytes]);
    bytes.extend_from_slice(&sig);
    let want: Result<KeyCert, String> = postcard::from_bytes(data).map_err(|e| e.to_string());
    let got = attribution::decode_cert(&keys, &key, &bytes);
    match &want {
        Ok(c) if c.key_id() == key => common::assert_same("certificate", &want, &got),
        _ => assert!(got.is_err(), "accepted {got:?} from {want:?}"),
    }
    assert!(attribution::decode_cert(&keys, &KeyId([0x13; 32]), &bytes).is_err(), "the signature binds the path");
    if let Ok(c) = &got {
        let _ = (c.kind(), c.hosts().len(), c.key_public());
        let again = attribution::encode_cert(&keys, c).expect("a full key signs");
        assert_eq!(attribution::decode_cert(&keys, &key, &again).as_ref(), Ok(c), "certificate round trip");
    }

    let path = attribution::revocation_path(&key);
    let _ = attribution::decode_revocation(&keys, &key, data);
    let mut bytes = REVOCATION_MAGIC.to_vec();
    bytes.extend_from_slice(data);
    let sig = sign::sign(&secret, context::REVOCATION_SIG, &[path.as_bytes(), &bytes]);
    bytes.extend_from_slice(&sig);
    let want: Result<Revocation, String> = postcard::from_bytes(data).map_err(|e| e.to_string());
    let got = attribution::decode_revocation(&keys, &key, &bytes);
    match &want {
        Ok(r) if r.key_id() == key => common::assert_same("revocation", &want, &got),
        _ => assert!(got.is_err(), "accepted {got:?} from {want:?}"),
    }
    assert!(attribution::decode_revocation(&keys, &KeyId([0x13; 32]), &bytes).is_err(), "the signature binds the path");
    // A certificate's signature is not a revocation's.
    assert!(attribution::decode_cert(&keys, &key, &bytes).is_err(), "a revocation is no certificate");
    if let Ok(r) = &got {
        let _ = r.revoked();
        let again = attribution::encode_revocation(&keys, r).expect("a full key signs");
        assert_eq!(attribution::decode_revocation(&keys, &key, &again).as_ref(), Ok(r), "revocation round trip");
    }
});
