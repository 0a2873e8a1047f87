//! Snapshots (format-spec §8): `snapshot::split` and `object::decode_snapshot` on the raw input (dies at
//! the AEAD), `snapshot::decode_plain` on it as plaintext, and the input sealed with a fixed
//! session, which must decode exactly as the plaintext; a decoded snapshot must survive `encode`.
#![no_main]

mod common;

use cairn::codec::object;
use cairn::crypto::{self, ObjectKind, Session};
use cairn::id::SnapshotId;
use cairn::snapshot::{self, SNAPSHOT_MAGIC, SNAPSHOT_VERSION};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    let keys = common::keys();
    let id = SnapshotId([0x3c; 32]);

    let _ = snapshot::split(data);
    let _ = object::decode_snapshot(&keys, &id, data);
    let _ = object::decode_snapshot(&keys.write_only(), &id, data);

    let plain = snapshot::decode_plain(data);
    // X25519 is the slow part: derive the session once.
    static SESSION: OnceLock<Session> = OnceLock::new();
    let session = SESSION.get_or_init(|| Session::for_reading(&common::keys(), &[0x42; 32]).expect("full keys read"));
    if let Ok(s) = &plain {
        let _ = (s.display_paths(), s.describe_sources(), s.time().to_rfc3339(), s.summary().started.to_rfc3339());
        let _ = (s.root().short(), s.parent().map(|p| p.to_hex()));
        let bytes = object::encode_snapshot(&keys, session, &id, s);
        assert_eq!(object::decode_snapshot(&keys, &id, &bytes).as_ref(), Ok(s), "snapshot round trip");
    }

    let aad = crypto::aad(&keys.repo_id, ObjectKind::Snapshot, &id.0);
    let mut sealed = SNAPSHOT_MAGIC.to_vec();
    sealed.push(SNAPSHOT_VERSION);
    sealed.extend_from_slice(&session.public);
    sealed.extend_from_slice(&crypto::seal(session.key(), &aad, data));
    let (public, body) = snapshot::split(&sealed).expect("a snapshot just framed splits");
    assert_eq!(public, session.public);
    common::assert_same("snapshot body", &plain, &object::decode_snapshot_body(&keys, session, &id, body));
    if plain.is_ok() {
        // The whole reader path, session derivation included.
        common::assert_same("snapshot", &plain, &object::decode_snapshot(&keys, &id, &sealed));
    }
});
