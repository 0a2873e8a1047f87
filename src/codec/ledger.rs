//! The stored encoding of a ledger entry (format-spec §13.2): the clear header, the body sealed
//! under a fresh session key (only full keys open it), the writer key's signature over both, and
//! the entry id, a keyed hash of every stored byte under a key every key holder derives. Bytes
//! in, bytes out.

use crate::codec::{envelope, sign};
use crate::crypto::{self, context, MasterKeys, ObjectKind, Secret, Session};
use crate::id::{EntryId, KeyId};
use crate::ledger::{self, EntryBody, EntryHeader, Split, ENTRY_SIG_LEN, LEDGER_MAGIC};
use crate::time::Time;

/// The key of entry ids: `BLAKE3-derive(LEDGER_ID, writer_key)`.
pub fn entry_id_key(keys: &MasterKeys) -> Secret {
    keys.writer_mac_key(context::LEDGER_ID)
}

/// The id of a stored entry: `BLAKE3-keyed(entry id key, stored bytes)`.
pub fn entry_id(keys: &MasterKeys, bytes: &[u8]) -> EntryId {
    EntryId(crypto::mac(&entry_id_key(keys), &[bytes]))
}

/// What a writer puts in an entry besides the event.
pub struct NewEntry<'a> {
    /// The writing key.
    pub key_id: KeyId,
    /// Its signing secret (format-spec §4.3); `None` writes an unsigned entry (64 zero bytes),
    /// which readers report.
    pub sign_secret: Option<&'a Secret>,
    /// When.
    pub time: Time,
    /// The heads the writer saw.
    pub parents: Vec<EntryId>,
}

/// Encodes an entry: `"CAIRNLG1" ‖ postcard(header) ‖ seal(session key, aad(7, salt),
/// postcard(body)) ‖ XEdDSA(key signing secret, LEDGER_SIG ‖ preceding bytes)`, and its id.
pub fn encode_entry(keys: &MasterKeys, new: NewEntry<'_>, body: &EntryBody) -> (EntryId, Vec<u8>) {
    let session = Session::new_writer(keys);
    let salt = crypto::random_32();
    let mut parents = new.parents;
    parents.sort();
    parents.dedup();
    let header = EntryHeader::V1 {
        kind: body.event().kind(),
        time: new.time,
        key_id: new.key_id,
        parents,
        session: session.public,
        salt,
    };
    let mut prefix = LEDGER_MAGIC.to_vec();
    prefix.extend_from_slice(&postcard::to_allocvec(&header).expect("headers encode"));
    let mut out = envelope::seal(&prefix, session.key(), &keys.repo_id, ObjectKind::LedgerEntry, &salt, body);
    let sig = match new.sign_secret {
        Some(s) => sign::sign(s, context::LEDGER_SIG, &[&out]),
        None => [0u8; ENTRY_SIG_LEN],
    };
    out.extend_from_slice(&sig);
    (entry_id(keys, &out), out)
}

/// Splits a stored entry named `id` and checks that the name is the keyed hash of its bytes (so
/// nobody without a key of this repository made or changed it). Any key can.
pub fn decode_entry<'a>(keys: &MasterKeys, id: &EntryId, bytes: &'a [u8]) -> Result<Split<'a>, String> {
    if entry_id(keys, bytes) != *id {
        return Err(
            "its name is not the keyed hash of its bytes (changed, or not written with a key of this repository)"
                .into(),
        );
    }
    ledger::split(bytes)
}

/// Opens and decodes the body of a split entry. Needs a full key.
pub fn open_body(keys: &MasterKeys, split: &Split<'_>) -> Result<EntryBody, String> {
    let session = Session::for_reading(keys, &split.header.session()).map_err(|e| e.to_string())?;
    open_body_with(keys, &session, split)
}

/// [`open_body`] with a known session (for fuzzing).
pub fn open_body_with(keys: &MasterKeys, session: &Session, split: &Split<'_>) -> Result<EntryBody, String> {
    let plain =
        envelope::open(session.key(), &keys.repo_id, ObjectKind::LedgerEntry, &split.header.salt(), split.sealed)
            .ok_or("body does not authenticate")?;
    ledger::decode_body(&split.header, &plain)
}

/// The signature state of an entry against the signing public key of its writer's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signed {
    /// It verifies.
    Valid,
    /// The writer had no signing secret: 64 zero bytes.
    Unsigned,
    /// It does not verify.
    Invalid,
}

/// Checks the signature of `split` under `key_public` (a certificate's signing key).
pub fn signature(split: &Split<'_>, key_public: &[u8; 32]) -> Signed {
    if split.signature.iter().all(|b| *b == 0) {
        return Signed::Unsigned;
    }
    if sign::verify(key_public, context::LEDGER_SIG, &[split.signed], split.signature) {
        Signed::Valid
    } else {
        Signed::Invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::attribution::{key_public, key_sign_secret};
    use crate::id::SnapshotId;
    use crate::ledger::{EntryKind, Event};

    fn body() -> EntryBody {
        EntryBody::V1 {
            host: "web-1".into(),
            user: "root".into(),
            event: Event::Backup {
                snapshot: SnapshotId([9; 32]),
                sources: vec!["/srv".into()],
                files: 3,
                bytes: 10,
                bytes_added: 4,
            },
        }
    }

    #[test]
    fn an_entry_round_trips_and_binds_name_body_and_signer() {
        let keys = MasterKeys::generate();
        let wo = keys.write_only();
        let secret = key_sign_secret(&Secret([5; 32]));
        let other = key_sign_secret(&Secret([6; 32]));
        let new = NewEntry {
            key_id: KeyId([1; 32]),
            sign_secret: Some(&secret),
            time: Time { secs: 7, nanos: 0 },
            parents: vec![EntryId([3; 32]), EntryId([2; 32]), EntryId([3; 32])],
        };
        // A write-only key writes one; a full key reads it.
        let (id, bytes) = encode_entry(&wo, new, &body());
        let s = decode_entry(&wo, &id, &bytes).unwrap();
        assert_eq!(s.header.kind(), EntryKind::Backup);
        assert_eq!(s.header.parents(), &[EntryId([2; 32]), EntryId([3; 32])]);
        assert_eq!(open_body(&keys, &s), Ok(body()));
        // The write-only key reads the header but not the body of a session other than its own.
        assert!(open_body(&wo, &s).is_err());
        assert_eq!(signature(&s, &key_public(&secret)), Signed::Valid);
        assert_eq!(signature(&s, &key_public(&other)), Signed::Invalid);
        // Any changed byte breaks the name; another repository's key computes another name.
        for i in [0, 9, bytes.len() / 2, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert!(decode_entry(&keys, &id, &bad).is_err(), "byte {i}");
        }
        assert!(decode_entry(&MasterKeys::generate(), &id, &bytes).is_err());
        // Unsigned.
        let new = NewEntry { key_id: KeyId([1; 32]), sign_secret: None, time: Time::now(), parents: vec![] };
        let (id, bytes) = encode_entry(&keys, new, &body());
        assert_eq!(signature(&decode_entry(&keys, &id, &bytes).unwrap(), &key_public(&secret)), Signed::Unsigned);
    }

    #[test]
    fn garbage_errors_cleanly() {
        let keys = MasterKeys::generate();
        let mut seed = 1u64;
        for len in 0..300usize {
            let mut bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (seed >> 33) as u8
                })
                .collect();
            if len > 8 && len % 2 == 0 {
                bytes[..8].copy_from_slice(LEDGER_MAGIC);
            }
            let id = entry_id(&keys, &bytes);
            if let Ok(s) = decode_entry(&keys, &id, &bytes) {
                assert!(open_body(&keys, &s).is_err());
            }
            assert!(decode_entry(&keys, &EntryId([0; 32]), &bytes).is_err());
        }
    }
}
