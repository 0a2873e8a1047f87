//! The stored encoding of every object other than blobs and packs: configs, snapshots, index
//! files, key files, leases, prune marks, lock links and waits. Each is one call into
//! [`crate::codec::envelope`] with the object's magic, key and name; the types are the format
//! layer's. Bytes in, bytes out.

use crate::codec::envelope::{self, MacError};
use crate::config::{self, Config, CONFIG_MAGIC};
use crate::crypto::{self, context, KdfParams, MasterKeys, ObjectKind, Secret, Session};
use crate::error::{Error, Result};
use crate::id::{IndexId, KeyId, RepoId, SnapshotId};
use crate::index::{self, IndexFile, INDEX_MAGIC, INDEX_VERSION};
use crate::keyfile::{KeyFile, KeyFileV1, KeyKind, KEY_MAGIC};
use crate::layout::Object;
use crate::lease::{Lease, MaintenanceLock, PruneMark, PruneWait, LEASE_MAGIC, LOCK_MAGIC, PRUNE_MAGIC, WAIT_MAGIC};
use crate::snapshot::{self, Snapshot, SNAPSHOT_MAGIC, SNAPSHOT_VERSION};
use crate::time::Time;

// Configs (format-spec §9.1): MACed, the name is the config number.

/// `magic ‖ postcard(config) ‖ MAC(n ‖ preceding bytes)`.
pub fn encode_config(keys: &MasterKeys, n: u64, cfg: &Config) -> Vec<u8> {
    envelope::mac_encode(CONFIG_MAGIC, &keys.writer_mac_key(context::CONFIG_MAC), &n.to_le_bytes(), cfg)
}

/// Decodes a config object and checks its MAC and that it belongs to `keys`' repository.
pub fn decode_config(keys: &MasterKeys, n: u64, bytes: &[u8]) -> Result<Config, String> {
    let cfg = config::decode_unverified(bytes)?;
    if !envelope::mac_verifies(&keys.writer_mac_key(context::CONFIG_MAC), &n.to_le_bytes(), bytes) {
        return Err("MAC does not verify (not written by a holder of this repository's keys)".into());
    }
    if cfg.repo_id() != keys.repo_id {
        return Err("belongs to another repository".into());
    }
    cfg.chunker().validate()?;
    Ok(cfg)
}

// Snapshots (format-spec §8.1): sealed under the writing session's key, named by their id.

/// `magic ‖ version ‖ session public key ‖ seal(session key, aad(Snapshot, id), postcard)`.
pub fn encode_snapshot(keys: &MasterKeys, session: &Session, id: &SnapshotId, snap: &Snapshot) -> Vec<u8> {
    let mut header = SNAPSHOT_MAGIC.to_vec();
    header.push(SNAPSHOT_VERSION);
    header.extend_from_slice(&session.public);
    envelope::seal(&header, session.key(), &keys.repo_id, ObjectKind::Snapshot, &id.0, snap)
}

/// Opens and decodes a stored snapshot. Needs a key that can read.
pub fn decode_snapshot(keys: &MasterKeys, id: &SnapshotId, bytes: &[u8]) -> Result<Snapshot, String> {
    let (public, body) = snapshot::split(bytes)?;
    let session = Session::for_reading(keys, &public).map_err(|e| e.to_string())?;
    decode_snapshot_body(keys, &session, id, body)
}

/// Decodes the sealed body of a snapshot (what follows [`snapshot::split`]'s header) with a
/// known session.
pub fn decode_snapshot_body(
    keys: &MasterKeys,
    session: &Session,
    id: &SnapshotId,
    body: &[u8],
) -> Result<Snapshot, String> {
    let plain = envelope::open(session.key(), &keys.repo_id, ObjectKind::Snapshot, &id.0, body)
        .ok_or("does not authenticate")?;
    snapshot::decode_plain(&plain)
}

// Index files (format-spec §6.1): sealed under the index seal key, named by their id.

/// Encodes and seals an index file under its id.
pub fn encode_index(keys: &MasterKeys, id: &IndexId, file: &IndexFile) -> Vec<u8> {
    let mut header = INDEX_MAGIC.to_vec();
    header.push(INDEX_VERSION);
    envelope::seal(&header, &keys.index_seal_key(), &keys.repo_id, ObjectKind::Index, &id.0, file)
}

/// Opens and decodes an index file.
pub fn decode_index(keys: &MasterKeys, id: &IndexId, bytes: &[u8]) -> Result<IndexFile, String> {
    decode_index_with(&keys.repo_id, &keys.index_seal_key(), id, bytes)
}

/// [`decode_index`] with the key material spelled out (for fuzzing).
pub fn decode_index_with(repo: &RepoId, seal_key: &Secret, id: &IndexId, bytes: &[u8]) -> Result<IndexFile, String> {
    let body = index::split(bytes)?;
    let plain = envelope::open(seal_key, repo, ObjectKind::Index, &id.0, body).ok_or("does not authenticate")?;
    index::decode_plain(&plain)
}

// Key files (format-spec §4): the material sealed under an argon2id key-encryption key.

/// Seals `keys` under `password` into a new key file.
pub fn create_keyfile(
    keys: &MasterKeys,
    id: &KeyId,
    password: &[u8],
    kdf: KdfParams,
    host: &str,
    user: &str,
) -> Result<Vec<u8>> {
    let salt = crypto::random_32();
    let kek = crypto::derive_kek(password, &salt, kdf)?;
    let kf = KeyFile::V1(KeyFileV1 {
        kind: if keys.can_read() { KeyKind::Full } else { KeyKind::WriteOnly },
        repo_id: keys.repo_id,
        created: Time::now(),
        host: host.into(),
        user: user.into(),
        kdf,
        salt,
        sealed: envelope::seal(&[], &kek, &keys.repo_id, ObjectKind::KeyFile, &id.0, keys),
    });
    let mut out = KEY_MAGIC.to_vec();
    out.extend_from_slice(&postcard::to_allocvec(&kf).expect("key file encodes"));
    Ok(out)
}

/// Opens a key file with a password: `Ok(None)` when the password does not fit.
pub fn open_keyfile(kf: &KeyFile, id: &KeyId, password: &[u8]) -> Result<Option<MasterKeys>> {
    let kek = crypto::derive_kek(password, kf.salt(), kf.kdf())?;
    let Some(plain) = envelope::open(&kek, &kf.repo_id(), ObjectKind::KeyFile, &id.0, kf.sealed()) else {
        return Ok(None);
    };
    decode_key_material(kf, &plain).map(Some).map_err(|e| Error::corrupt(Object::Key(*id), e))
}

/// Decodes the opened key material of `kf` and checks it against the key file, the step
/// [`open_keyfile`] runs after authentication (exposed so it can be fuzzed without a password).
pub fn decode_key_material(kf: &KeyFile, plain: &[u8]) -> Result<MasterKeys, String> {
    let keys: MasterKeys = postcard::from_bytes(plain).map_err(|e| format!("key material: {e}"))?;
    if keys.repo_id != kf.repo_id() {
        return Err("key material names another repository".into());
    }
    if (kf.kind() == KeyKind::Full) != keys.can_read() {
        return Err("key kind does not match its material".into());
    }
    Ok(keys)
}

// Leases, prune marks, lock links and waits (format-spec §10): MACed, the name is the path.

fn mac_err(e: MacError) -> String {
    e.to_string()
}

/// Encodes a lease stored at `path`; the MAC binds the path.
pub fn encode_lease(keys: &MasterKeys, path: &str, lease: &Lease) -> Vec<u8> {
    envelope::mac_encode(LEASE_MAGIC, &keys.writer_mac_key(context::LEASE_MAC), path.as_bytes(), lease)
}

/// Decodes and verifies a lease stored at `path`.
pub fn decode_lease(keys: &MasterKeys, path: &str, bytes: &[u8]) -> Result<Lease, String> {
    envelope::mac_decode(LEASE_MAGIC, &keys.writer_mac_key(context::LEASE_MAC), path.as_bytes(), bytes).map_err(mac_err)
}

/// Encodes a prune mark stored at `path`.
pub fn encode_prune_mark(keys: &MasterKeys, path: &str, m: &PruneMark) -> Vec<u8> {
    envelope::mac_encode(PRUNE_MAGIC, &keys.writer_mac_key(context::PRUNE_MAC), path.as_bytes(), m)
}

/// Decodes and verifies a prune mark stored at `path`.
pub fn decode_prune_mark(keys: &MasterKeys, path: &str, bytes: &[u8]) -> Result<PruneMark, String> {
    envelope::mac_decode(PRUNE_MAGIC, &keys.writer_mac_key(context::PRUNE_MAC), path.as_bytes(), bytes).map_err(mac_err)
}

/// Encodes a lock link stored at `path`.
pub fn encode_lock(keys: &MasterKeys, path: &str, l: &MaintenanceLock) -> Vec<u8> {
    envelope::mac_encode(LOCK_MAGIC, &keys.writer_mac_key(context::PRUNE_MAC), path.as_bytes(), l)
}

/// Decodes and verifies a lock link stored at `path`.
pub fn decode_lock(keys: &MasterKeys, path: &str, bytes: &[u8]) -> Result<MaintenanceLock, String> {
    envelope::mac_decode(LOCK_MAGIC, &keys.writer_mac_key(context::PRUNE_MAC), path.as_bytes(), bytes).map_err(mac_err)
}

/// Encodes a wait stored at `path`.
pub fn encode_wait(keys: &MasterKeys, path: &str, w: &PruneWait) -> Vec<u8> {
    envelope::mac_encode(WAIT_MAGIC, &keys.writer_mac_key(context::PRUNE_MAC), path.as_bytes(), w)
}

/// Decodes and verifies a wait stored at `path`.
pub fn decode_wait(keys: &MasterKeys, path: &str, bytes: &[u8]) -> Result<PruneWait, String> {
    envelope::mac_decode(WAIT_MAGIC, &keys.writer_mac_key(context::PRUNE_MAC), path.as_bytes(), bytes).map_err(mac_err)
}
