//! Key files (format-spec §4): one per password or capability, the key material sealed under an
//! argon2id key-encryption key. Encodes and decodes; no I/O.

use crate::crypto::{self, KdfParams, MasterKeys, ObjectKind};
use crate::error::{Error, Result};
use crate::id::{KeyId, RepoId};
use crate::tree::Time;
use serde::{Deserialize, Serialize};

/// First bytes of a key file.
pub const KEY_MAGIC: &[u8; 8] = b"CAIRNKEY";

/// What a key grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyKind {
    /// Read and write everything.
    Full,
    /// Add backups; cannot read what other sessions wrote.
    WriteOnly,
}

/// A key file (format-spec §4.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyFile {
    /// Version 1.
    V1(KeyFileV1),
}

/// Version 1 of a key file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFileV1 {
    /// What the key grants.
    pub kind: KeyKind,
    /// The repository.
    pub repo_id: RepoId,
    /// When it was made.
    pub created: Time,
    /// Host it was made on.
    pub host: String,
    /// User who made it.
    pub user: String,
    /// argon2id parameters.
    pub kdf: KdfParams,
    /// argon2id salt.
    pub salt: [u8; 32],
    /// `seal(KEK, aad(KeyFile, key id), postcard(MasterKeys))`.
    pub sealed: Vec<u8>,
}

impl KeyFile {
    /// The version-independent view.
    pub fn v1(&self) -> &KeyFileV1 {
        match self {
            KeyFile::V1(k) => k,
        }
    }
}

/// Seals `keys` under `password` into a new key file.
pub fn create(
    keys: &MasterKeys,
    id: &KeyId,
    password: &[u8],
    kdf: KdfParams,
    host: &str,
    user: &str,
) -> Result<Vec<u8>> {
    let salt = crypto::random_32();
    let kek = crypto::derive_kek(password, &salt, kdf)?;
    let plain = zeroize::Zeroizing::new(postcard::to_allocvec(keys).expect("keys encode"));
    let aad = crypto::aad(&keys.repo_id, ObjectKind::KeyFile, &id.0);
    let kf = KeyFile::V1(KeyFileV1 {
        kind: if keys.can_read() { KeyKind::Full } else { KeyKind::WriteOnly },
        repo_id: keys.repo_id,
        created: Time::now(),
        host: host.into(),
        user: user.into(),
        kdf,
        salt,
        sealed: crypto::seal(&kek, &aad, &plain),
    });
    let mut out = KEY_MAGIC.to_vec();
    out.extend_from_slice(&postcard::to_allocvec(&kf).expect("key file encodes"));
    Ok(out)
}

/// Decodes a key file without opening it.
pub fn decode(bytes: &[u8]) -> Result<KeyFile, String> {
    if bytes.len() < 8 || &bytes[..8] != KEY_MAGIC {
        return Err("not a key file (magic missing)".into());
    }
    postcard::from_bytes(&bytes[8..]).map_err(|e| format!("decode: {e}"))
}

/// Opens a key file with a password: `Ok(None)` when the password does not fit.
pub fn open(kf: &KeyFile, id: &KeyId, password: &[u8]) -> Result<Option<MasterKeys>> {
    let k = kf.v1();
    let kek = crypto::derive_kek(password, &k.salt, k.kdf)?;
    let aad = crypto::aad(&k.repo_id, ObjectKind::KeyFile, &id.0);
    let Some(plain) = crypto::open(&kek, &aad, &k.sealed) else {
        return Ok(None);
    };
    let plain = zeroize::Zeroizing::new(plain);
    decode_material(kf, &plain).map(Some).map_err(|e| Error::corrupt("key", id, e))
}

/// Decodes the opened key material of `kf` and checks it against the key file, the step
/// [`open`] runs after authentication (exposed so it can be fuzzed without a password).
pub fn decode_material(kf: &KeyFile, plain: &[u8]) -> Result<MasterKeys, String> {
    let k = kf.v1();
    let keys: MasterKeys = postcard::from_bytes(plain).map_err(|e| format!("key material: {e}"))?;
    if keys.repo_id != k.repo_id {
        return Err("key material names another repository".into());
    }
    if (k.kind == KeyKind::Full) != keys.can_read() {
        return Err("key kind does not match its material".into());
    }
    Ok(keys)
}
