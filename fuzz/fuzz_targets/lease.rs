//! Leases, prune marks, maintenance locks and waits (format-spec §10): the four decoders on the raw input (dies at the
//! MAC or signature), then the input behind each magic with a valid MAC (leases) or signature (the prune objects) from
//! fixed keys, which must decode exactly as postcard decodes the input; the prune objects in the MAC framing of before
//! signatures are refused; decoded values must survive their encoders.
#![no_main]

mod common;

use cairn::codec::object;
use cairn::codec::sign;
use cairn::crypto::{self, context};
use cairn::layout::Object;
use cairn::lease::{
    Lease, MaintenanceLock, PruneMark, PruneWait, LEASE_MAGIC, LOCK_MAGIC, PRUNE_MAGIC, SIGNED_LOCK_MAGIC,
    SIGNED_PRUNE_MAGIC, SIGNED_WAIT_MAGIC, WAIT_MAGIC,
};
use libfuzzer_sys::fuzz_target;

fn macd(magic: &[u8; 8], key: &crypto::Secret, path: &str, data: &[u8]) -> Vec<u8> {
    let mut out = magic.to_vec();
    out.extend_from_slice(data);
    let tag = crypto::mac(key, &[path.as_bytes(), &out]);
    out.extend_from_slice(&tag);
    out
}

fn signed(magic: &[u8; 8], key: &crypto::Secret, ctx: &str, path: &str, data: &[u8]) -> Vec<u8> {
    let mut out = magic.to_vec();
    out.extend_from_slice(data);
    let sig = sign::sign(key, ctx, &[path.as_bytes(), &out]);
    out.extend_from_slice(&sig);
    out
}

fuzz_target!(|data: &[u8]| {
    let mut keys = common::keys();
    let secret = crypto::Secret([0x77; 32]);
    keys.repo_public = crypto::public_key(&secret);
    keys.repo_secret = Some(secret.clone());
    let lease_key = keys.writer_mac_key(context::LEASE_MAC);
    let prune_key = keys.writer_mac_key(context::PRUNE_MAC);
    let path = Object::Lease { session: [0x12; 32], seq: 7 }.path();

    let _ = object::decode_lease(&keys, &path, data);
    let _ = object::decode_prune_mark(&keys, &path, data);
    let _ = object::decode_lock(&keys, &path, data);
    let _ = object::decode_wait(&keys, &path, data);

    // Leases.
    let want: Result<Lease, String> = postcard::from_bytes(data).map_err(|e| e.to_string());
    let bytes = macd(LEASE_MAGIC, &lease_key, &path, data);
    common::assert_same("lease", &want, &object::decode_lease(&keys, &path, &bytes));
    assert!(object::decode_lease(&keys, "leases/other", &bytes).is_err(), "the MAC must bind the path");
    assert!(object::decode_prune_mark(&keys, &path, &bytes).is_err(), "a lease is no prune mark");
    if let Ok(l) = &want {
        let Lease::V1 { client_time, .. } = l;
        let _ = client_time.to_rfc3339();
        let again = object::encode_lease(&keys, &path, l);
        assert_eq!(object::decode_lease(&keys, &path, &again).as_ref(), Ok(l), "lease round trip");
    }

    // Prune marks.
    let want: Result<PruneMark, String> = postcard::from_bytes(data).map_err(|e| e.to_string());
    assert!(object::decode_prune_mark(&keys, &path, &macd(PRUNE_MAGIC, &prune_key, &path, data)).is_err());
    let bytes = signed(SIGNED_PRUNE_MAGIC, &secret, context::MARK_SIG, &path, data);
    common::assert_same("prune mark", &want, &object::decode_prune_mark(&keys, &path, &bytes));
    assert!(object::decode_lease(&keys, &path, &bytes).is_err(), "a prune mark is no lease");
    assert!(object::decode_prune_mark(&keys, "prune/mark-other", &bytes).is_err(), "the signature binds the path");
    if let Ok(m) = &want {
        let _ = m.condemned().len();
        let again = object::encode_prune_mark(&keys, &path, m).expect("a full key signs");
        assert_eq!(object::decode_prune_mark(&keys, &path, &again).as_ref(), Ok(m), "prune mark round trip");
    }

    // Maintenance locks.
    let want: Result<MaintenanceLock, String> = postcard::from_bytes(data).map_err(|e| e.to_string());
    assert!(object::decode_lock(&keys, &path, &macd(LOCK_MAGIC, &prune_key, &path, data)).is_err());
    let bytes = signed(SIGNED_LOCK_MAGIC, &secret, context::LOCK_SIG, &path, data);
    common::assert_same("lock", &want, &object::decode_lock(&keys, &path, &bytes));
    assert!(object::decode_prune_mark(&keys, &path, &bytes).is_err(), "a lock is no prune mark");
    if let Ok(l) = &want {
        let again = object::encode_lock(&keys, &path, l).expect("a full key signs");
        assert_eq!(object::decode_lock(&keys, &path, &again).as_ref(), Ok(l), "lock round trip");
    }

    // Waits.
    let want: Result<PruneWait, String> = postcard::from_bytes(data).map_err(|e| e.to_string());
    assert!(object::decode_wait(&keys, &path, &macd(WAIT_MAGIC, &prune_key, &path, data)).is_err());
    let bytes = signed(SIGNED_WAIT_MAGIC, &secret, context::WAIT_SIG, &path, data);
    common::assert_same("wait", &want, &object::decode_wait(&keys, &path, &bytes));
    assert!(object::decode_lock(&keys, &path, &bytes).is_err(), "a wait is no lock");
    if let Ok(w) = &want {
        let _ = w.sessions().len();
        let again = object::encode_wait(&keys, &path, w).expect("a full key signs");
        assert_eq!(object::decode_wait(&keys, &path, &again).as_ref(), Ok(w), "wait round trip");
    }
});
