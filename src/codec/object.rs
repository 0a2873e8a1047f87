//! The stored encoding of every object other than blobs and packs: configs, snapshots, index
//! files, key files, leases, prune marks, lock links and waits. Each is one call into
//! [`crate::codec::envelope`] with the object's magic, key and name; the types are the format
//! layer's. Configs, prune marks, lock links and waits are signed by the repository key, which
//! only full keys hold (format-spec §3.7); [`legacy`] keeps the MAC framing they had before, for
//! reading old repositories and for tests. Bytes in, bytes out.

use crate::codec::envelope::{self, MacError};
use crate::config::{self, Config, CONFIG_MAGIC, CONFIG_SIGNED_MAGIC};
use crate::crypto::{self, context, KdfParams, KeySecret, MasterKeys, ObjectKind, Secret, Session};
use crate::error::{Error, Result};
use crate::id::{IndexId, KeyId, RepoId, SnapshotId};
use crate::index::{self, IndexFile, INDEX_MAGIC, INDEX_VERSION};
use crate::keyfile::{KeyFile, KeyFileSecretV1, KeyFileV1, KeyKind, KEY_MAGIC};
use crate::layout::Object;
use crate::lease::{
    Lease, MaintenanceLock, PruneMark, PruneWait, LEASE_MAGIC, LOCK_MAGIC, PRUNE_MAGIC, SIGNED_LOCK_MAGIC,
    SIGNED_PRUNE_MAGIC, SIGNED_WAIT_MAGIC, WAIT_MAGIC,
};
use crate::snapshot::{self, Snapshot, SNAPSHOT_MAGIC, SNAPSHOT_VERSION};
use crate::time::Time;

// Configs (format-spec §9.1): signed by the repository key, the name is the config number.

/// The repository secret that signs configs and prune state; only full keys hold it.
fn signer(keys: &MasterKeys) -> Result<&Secret> {
    keys.repo_secret.as_ref().ok_or(Error::WriteOnlyKey { key: None })
}

/// `"CAIRNCF2" ‖ postcard(config) ‖ XEdDSA(repo_secret, CONFIG_SIG ‖ u64le(n) ‖ preceding bytes)`.
/// Needs a full key.
pub fn encode_config(keys: &MasterKeys, n: u64, cfg: &Config) -> Result<Vec<u8>> {
    Ok(envelope::sig_encode(CONFIG_SIGNED_MAGIC, signer(keys)?, context::CONFIG_SIG, &n.to_le_bytes(), cfg))
}

/// Decodes a config object of either framing (format-spec §9.1): a signed one must verify under
/// `keys.repo_public`, a MAC-framed one under the config MAC key (whether a MAC-framed config may
/// rule is the chain's rule, §9.2; [`config::is_signed`] tells the framings apart). Then checks
/// that it belongs to `keys`' repository and that its chunker parameters are valid.
pub fn decode_config(keys: &MasterKeys, n: u64, bytes: &[u8]) -> Result<Config, String> {
    let cfg = config::decode_unverified(bytes)?;
    if config::is_signed(bytes) {
        if !envelope::sig_verifies(&keys.repo_public, context::CONFIG_SIG, &n.to_le_bytes(), bytes) {
            return Err(envelope::MacError::Signature.to_string());
        }
    } else if !envelope::mac_verifies(&keys.writer_mac_key(context::CONFIG_MAC), &n.to_le_bytes(), bytes) {
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

// Key files (format-spec §4): the material sealed under a key-encryption key derived from a
// password (argon2id) or a generated secret (BLAKE3).

/// What a new key file is opened with (format-spec §4.1).
#[derive(Clone, Copy, Debug)]
pub enum NewCredential<'a> {
    /// A password, its KEK derived with argon2id under `kdf` (`KeyFile::V1`).
    Password {
        /// The password, as given.
        password: &'a [u8],
        /// argon2id parameters.
        kdf: KdfParams,
    },
    /// A generated secret, its KEK derived with BLAKE3 (`KeyFile::SecretV1`).
    Secret(&'a KeySecret),
}

/// Seals `keys` under `password` into a new key file.
pub fn create_keyfile(
    keys: &MasterKeys,
    id: &KeyId,
    password: &[u8],
    kdf: KdfParams,
    host: &str,
    user: &str,
) -> Result<Vec<u8>> {
    create_keyfile_signing(keys, id, NewCredential::Password { password, kdf }, host, user).map(|(kf, _)| kf)
}

/// Seals `keys` into a new key file for `credential`, also returning the new key's signing secret
/// (format-spec §4.3), which only this moment (the credential at hand) allows a full key to
/// certify.
pub fn create_keyfile_signing(
    keys: &MasterKeys,
    id: &KeyId,
    credential: NewCredential<'_>,
    host: &str,
    user: &str,
) -> Result<(Vec<u8>, Secret)> {
    let salt = crypto::random_32();
    let kind = if keys.can_read() { KeyKind::Full } else { KeyKind::WriteOnly };
    let (created, host, user) = (Time::now(), host.to_string(), user.to_string());
    let (kf, kek) = match credential {
        NewCredential::Password { password, kdf } => {
            let kek = crypto::derive_kek(password, &salt, kdf)?;
            let sealed = envelope::seal(&[], &kek, &keys.repo_id, ObjectKind::KeyFile, &id.0, keys);
            let kf = KeyFile::V1(KeyFileV1 { kind, repo_id: keys.repo_id, created, host, user, kdf, salt, sealed });
            (kf, kek)
        }
        NewCredential::Secret(secret) => {
            let kek = crypto::derive_secret_kek(secret, &salt);
            let sealed = envelope::seal(&[], &kek, &keys.repo_id, ObjectKind::KeyFile, &id.0, keys);
            let kf =
                KeyFile::SecretV1(KeyFileSecretV1 { kind, repo_id: keys.repo_id, created, host, user, salt, sealed });
            (kf, kek)
        }
    };
    let mut out = KEY_MAGIC.to_vec();
    out.extend_from_slice(&postcard::to_allocvec(&kf).expect("key file encodes"));
    Ok((out, crate::codec::attribution::key_sign_secret(&kek)))
}

/// Opens a key file with a credential (format-spec §4.1): `Ok(None)` when it does not fit. A
/// password key file takes the credential as given, through argon2id; a secret key file only a
/// credential of the secret's text form ([`KeySecret::parse`]), through BLAKE3.
pub fn open_keyfile(kf: &KeyFile, id: &KeyId, credential: &[u8]) -> Result<Option<MasterKeys>> {
    open_keyfile_signing(kf, id, credential).map(|o| o.map(|(keys, _)| keys))
}

/// [`open_keyfile`], also returning the key's signing secret (format-spec §4.3).
pub fn open_keyfile_signing(kf: &KeyFile, id: &KeyId, credential: &[u8]) -> Result<Option<(MasterKeys, Secret)>> {
    let kek = match kf {
        KeyFile::V1(k) => crypto::derive_kek(credential, &k.salt, k.kdf)?,
        KeyFile::SecretV1(k) => match KeySecret::parse(credential) {
            Some(secret) => crypto::derive_secret_kek(&secret, &k.salt),
            None => return Ok(None),
        },
    };
    let Some(plain) = envelope::open(&kek, &kf.repo_id(), ObjectKind::KeyFile, &id.0, kf.sealed()) else {
        return Ok(None);
    };
    let keys = decode_key_material(kf, &plain).map_err(|e| Error::corrupt(Object::Key(*id), e))?;
    Ok(Some((keys, crate::codec::attribution::key_sign_secret(&kek))))
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

// Leases (MACed: every writer writes them), prune marks, lock links and waits (signed: only full
// keys write them), format-spec §10; the name is the path.

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

/// Decodes a signed prune object, naming the MAC framing of before signatures when it has that.
fn sig_decode<T: serde::de::DeserializeOwned>(
    keys: &MasterKeys,
    magic: &[u8; 8],
    mac_magic: &[u8; 8],
    ctx: &str,
    path: &str,
    bytes: &[u8],
) -> Result<T, String> {
    if bytes.get(..8) == Some(&mac_magic[..]) {
        return Err("in the MAC framing of before signatures, which a write-only key can forge: not trusted".into());
    }
    envelope::sig_decode(magic, &keys.repo_public, ctx, path.as_bytes(), bytes).map_err(mac_err)
}

/// Encodes a prune mark stored at `path`, signed by the repository key (format-spec §10.2).
/// Needs a full key.
pub fn encode_prune_mark(keys: &MasterKeys, path: &str, m: &PruneMark) -> Result<Vec<u8>> {
    Ok(envelope::sig_encode(SIGNED_PRUNE_MAGIC, signer(keys)?, context::MARK_SIG, path.as_bytes(), m))
}

/// Decodes a prune mark stored at `path` and verifies its signature under `keys.repo_public`
/// (any key can). A mark in the MAC framing is refused.
pub fn decode_prune_mark(keys: &MasterKeys, path: &str, bytes: &[u8]) -> Result<PruneMark, String> {
    sig_decode(keys, SIGNED_PRUNE_MAGIC, PRUNE_MAGIC, context::MARK_SIG, path, bytes)
}

/// Encodes a lock link stored at `path`, signed by the repository key (format-spec §10.4). Needs
/// a full key.
pub fn encode_lock(keys: &MasterKeys, path: &str, l: &MaintenanceLock) -> Result<Vec<u8>> {
    Ok(envelope::sig_encode(SIGNED_LOCK_MAGIC, signer(keys)?, context::LOCK_SIG, path.as_bytes(), l))
}

/// Decodes a lock link stored at `path` and verifies its signature. A link in the MAC framing is
/// refused.
pub fn decode_lock(keys: &MasterKeys, path: &str, bytes: &[u8]) -> Result<MaintenanceLock, String> {
    sig_decode(keys, SIGNED_LOCK_MAGIC, LOCK_MAGIC, context::LOCK_SIG, path, bytes)
}

/// Encodes a wait stored at `path`, signed by the repository key (format-spec §10.5). Needs a
/// full key.
pub fn encode_wait(keys: &MasterKeys, path: &str, w: &PruneWait) -> Result<Vec<u8>> {
    Ok(envelope::sig_encode(SIGNED_WAIT_MAGIC, signer(keys)?, context::WAIT_SIG, path.as_bytes(), w))
}

/// Decodes a wait stored at `path` and verifies its signature. A wait in the MAC framing is
/// refused.
pub fn decode_wait(keys: &MasterKeys, path: &str, bytes: &[u8]) -> Result<PruneWait, String> {
    sig_decode(keys, SIGNED_WAIT_MAGIC, WAIT_MAGIC, context::WAIT_SIG, path, bytes)
}

/// The MAC framing that configs, prune marks, lock links and waits had before they were signed
/// (format-spec §9.1, §10). Any key with `writer_key` (write-only keys included) can make these,
/// so no reader trusts them except a MAC-framed config in a repository that has no signed config
/// yet (§9.2). Kept to read old repositories, to pin the old encoding in the test vectors, and for
/// the tests that play an attacker or build an old repository.
pub mod legacy {
    use super::*;

    /// `"CAIRNCFG" ‖ postcard(config) ‖ MAC(n ‖ preceding bytes)`.
    pub fn encode_config_mac(keys: &MasterKeys, n: u64, cfg: &Config) -> Vec<u8> {
        envelope::mac_encode(CONFIG_MAGIC, &keys.writer_mac_key(context::CONFIG_MAC), &n.to_le_bytes(), cfg)
    }

    /// A prune mark in the MAC framing.
    pub fn encode_prune_mark_mac(keys: &MasterKeys, path: &str, m: &PruneMark) -> Vec<u8> {
        envelope::mac_encode(PRUNE_MAGIC, &keys.writer_mac_key(context::PRUNE_MAC), path.as_bytes(), m)
    }

    /// Decodes a prune mark in the MAC framing and checks its MAC.
    pub fn decode_prune_mark_mac(keys: &MasterKeys, path: &str, bytes: &[u8]) -> Result<PruneMark, String> {
        envelope::mac_decode(PRUNE_MAGIC, &keys.writer_mac_key(context::PRUNE_MAC), path.as_bytes(), bytes)
            .map_err(mac_err)
    }

    /// A lock link in the MAC framing.
    pub fn encode_lock_mac(keys: &MasterKeys, path: &str, l: &MaintenanceLock) -> Vec<u8> {
        envelope::mac_encode(LOCK_MAGIC, &keys.writer_mac_key(context::PRUNE_MAC), path.as_bytes(), l)
    }

    /// A wait in the MAC framing.
    pub fn encode_wait_mac(keys: &MasterKeys, path: &str, w: &PruneWait) -> Vec<u8> {
        envelope::mac_encode(WAIT_MAGIC, &keys.writer_mac_key(context::PRUNE_MAC), path.as_bytes(), w)
    }
}
