//! Ledger entries (format-spec §13.2): `ledger::split` and `codec::ledger::decode_entry` on the raw input named by
//! its own keyed hash (so it passes the name check and dies at the header or the AEAD), `ledger::decode_body` on it
//! as a plaintext body, and the input sealed as the body of an entry with a fixed session, which must open and
//! decode exactly as the plaintext does; a decoded body must survive `encode_entry`. Head lines parse or refuse
//! without panicking, and the reading order of any parents places every entry once.
#![no_main]

mod common;

use cairn::codec::ledger::{self as codec, NewEntry};
use cairn::crypto::{self, ObjectKind, Session};
use cairn::id::{EntryId, KeyId};
use cairn::ledger::{self, EntryHeader, EntryKind, LEDGER_MAGIC};
use cairn::time::Time;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// The fixed keys with a `repo_public` that matches `repo_secret`, so an entry a writer seals opens.
fn fixed_keys() -> cairn::crypto::MasterKeys {
    let mut keys = common::keys();
    keys.repo_public = crypto::public_key(keys.repo_secret.as_ref().expect("full keys"));
    keys
}

fuzz_target!(|data: &[u8]| {
    let keys = fixed_keys();
    let _ = ledger::split(data);
    let id = codec::entry_id(&keys, data);
    if let Ok(s) = codec::decode_entry(&keys, &id, data) {
        let _ = (s.header.kind().name(), s.header.time().to_rfc3339(), s.header.parents().len());
        assert!(codec::open_body(&keys, &s).is_err() || data.len() > 100, "random bytes opened");
        let _ = codec::signature(&s, &[9; 32]);
        // The reading order of its parents and itself places each once.
        let mut list: Vec<(EntryId, Time, Vec<EntryId>)> =
            s.header.parents().iter().map(|p| (*p, s.header.time(), vec![id])).collect();
        list.push((id, s.header.time(), s.header.parents().to_vec()));
        let order = ledger::order(&list);
        assert_eq!(order.len(), 1 + s.header.parents().len());
    }
    assert!(codec::decode_entry(&keys, &EntryId([0; 32]), data).is_err() || id == EntryId([0; 32]));
    let _ = ledger::parse_head_line(&keys.repo_id, &String::from_utf8_lossy(data));

    // The input as the plaintext body of an entry of each kind it could be.
    static SESSION: OnceLock<Session> = OnceLock::new();
    let session = SESSION.get_or_init(|| Session::for_reading(&fixed_keys(), &[0x42; 32]).expect("full keys read"));
    let probe = EntryHeader::V1 {
        kind: EntryKind::Backup,
        time: Time { secs: 1, nanos: 0 },
        key_id: KeyId([1; 32]),
        parents: vec![],
        session: session.public,
        salt: [7; 32],
    };
    let plain = ledger::decode_body(&probe, data);
    let kind = postcard::from_bytes::<cairn::ledger::EntryBody>(data).map(|b| b.event().kind()).unwrap_or(EntryKind::Backup);
    let header = EntryHeader::V1 {
        kind,
        time: Time { secs: 1, nanos: 0 },
        key_id: KeyId([1; 32]),
        parents: vec![EntryId([2; 32])],
        session: session.public,
        salt: [7; 32],
    };
    let want = ledger::decode_body(&header, data);
    if kind == EntryKind::Backup {
        common::assert_same("body", &plain, &want);
    }
    let mut bytes = LEDGER_MAGIC.to_vec();
    bytes.extend_from_slice(&postcard::to_allocvec(&header).unwrap());
    let aad = crypto::aad(&keys.repo_id, ObjectKind::LedgerEntry, &[7; 32]);
    bytes.extend_from_slice(&crypto::seal(session.key(), &aad, data));
    bytes.extend_from_slice(&[0; 64]);
    let id = codec::entry_id(&keys, &bytes);
    let split = codec::decode_entry(&keys, &id, &bytes).expect("an entry just framed splits");
    assert_eq!(split.header, header);
    assert_eq!(codec::signature(&split, &[9; 32]), codec::Signed::Unsigned);
    let got = codec::open_body_with(&keys, session, &split);
    common::assert_same("sealed body", &want, &got);
    if let Ok(body) = &got {
        let new = NewEntry { key_id: KeyId([1; 32]), sign_secret: None, time: Time::now(), parents: vec![] };
        let (id, again) = codec::encode_entry(&keys, new, body);
        let s = codec::decode_entry(&keys, &id, &again).expect("an encoded entry decodes");
        assert_eq!(codec::open_body(&keys, &s).as_ref(), Ok(body), "entry round trip");
    }
});
