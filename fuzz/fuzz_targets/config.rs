//! Config objects (format-spec §9): `config::decode_unverified` and `object::decode_config` on the raw
//! input (dies at the MAC), the input behind the magic with a valid MAC from fixed keys (so
//! `decode` reaches its repository and chunker checks) and the encode round trip. Config paths
//! are fuzzed with every object path by the `layout` target.
#![no_main]

mod common;

use cairn::codec::object;
use cairn::chunker::Chunker;
use cairn::config::{self, CONFIG_MAGIC};
use cairn::crypto::{self, context};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let keys = common::keys();
    let n = data.first().map_or(1, |&b| b as u64);

    let _ = config::decode_unverified(data);
    let _ = object::decode_config(&keys, n, data);

    // `magic ‖ input ‖ MAC`: the MAC verifies, so decoding decides.
    let mut bytes = CONFIG_MAGIC.to_vec();
    bytes.extend_from_slice(data);
    let tag = crypto::mac(&keys.writer_mac_key(context::CONFIG_MAC), &[&n.to_le_bytes(), &bytes]);
    bytes.extend_from_slice(&tag);
    let unverified = config::decode_unverified(&bytes);
    let verified = object::decode_config(&keys, n, &bytes);
    if let Ok(c) = &verified {
        assert_eq!(unverified.as_ref(), Ok(c));
        assert_eq!(c.repo_id(), keys.repo_id);
        // A config that verifies has parameters the chunker takes.
        Chunker::new(c.chunker(), &keys.chunk_key).expect("a verified config's chunker builds");
    }
    assert!(object::decode_config(&keys, n.wrapping_add(1), &bytes).is_err(), "the MAC must bind the number");
    if let Ok(c) = &unverified {
        let _ = (c.created().to_rfc3339(), c.chunker().validate());
        let again = object::legacy::encode_config_mac(&keys, n, c);
        assert_eq!(config::decode_unverified(&again).as_ref(), Ok(c), "config round trip");
        assert_eq!(object::decode_config(&keys, n, &again).is_ok(), verified.is_ok());
    }
});
