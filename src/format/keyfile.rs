//! Key files (format-spec §4): one per password or capability, the key material sealed under an
//! argon2id key-encryption key. The types and the outer decoding; sealing and opening the
//! material is [`crate::codec::object`]'s. No I/O.

use crate::id::RepoId;
use crate::time::Time;
use serde::{Deserialize, Serialize};

/// First bytes of a key file.
pub const KEY_MAGIC: &[u8; 8] = b"CAIRNKEY";

/// Argon2id parameters of a key file (format-spec §4.1).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfParams {
    /// The floor: t=3, m=64 MiB, p=4.
    pub const MINIMUM: KdfParams = KdfParams { m_kib: 64 * 1024, t: 3, p: 4 };
    /// The upper bound a reader accepts, so a planted key file can cost an open at most about
    /// a second and 1 GiB before it is skipped.
    pub const MAXIMUM: KdfParams = KdfParams { m_kib: 1024 * 1024, t: 16, p: 16 };
}

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
    /// The version 1 fields; a newer version adds a match arm to each accessor below.
    pub fn v1(&self) -> &KeyFileV1 {
        match self {
            KeyFile::V1(k) => k,
        }
    }
    /// What the key grants.
    pub fn kind(&self) -> KeyKind {
        match self {
            KeyFile::V1(k) => k.kind,
        }
    }
    /// The repository.
    pub fn repo_id(&self) -> RepoId {
        match self {
            KeyFile::V1(k) => k.repo_id,
        }
    }
    /// When it was made.
    pub fn created(&self) -> Time {
        match self {
            KeyFile::V1(k) => k.created,
        }
    }
    /// Host it was made on.
    pub fn host(&self) -> &str {
        match self {
            KeyFile::V1(k) => &k.host,
        }
    }
    /// User who made it.
    pub fn user(&self) -> &str {
        match self {
            KeyFile::V1(k) => &k.user,
        }
    }
    /// argon2id parameters.
    pub fn kdf(&self) -> KdfParams {
        match self {
            KeyFile::V1(k) => k.kdf,
        }
    }
    /// argon2id salt.
    pub fn salt(&self) -> &[u8; 32] {
        match self {
            KeyFile::V1(k) => &k.salt,
        }
    }
    /// The sealed key material.
    pub fn sealed(&self) -> &[u8] {
        match self {
            KeyFile::V1(k) => &k.sealed,
        }
    }
}

/// Decodes a key file without opening it.
pub fn decode(bytes: &[u8]) -> Result<KeyFile, String> {
    if bytes.len() < 8 || &bytes[..8] != KEY_MAGIC {
        return Err("not a key file (magic missing)".into());
    }
    postcard::from_bytes(&bytes[8..]).map_err(|e| format!("decode: {e}"))
}
