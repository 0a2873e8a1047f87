//! Key certificates and snapshot attribution (format-spec §4.3, issue 10 finding 4). A certificate `certs/<key id>` binds a key id to the key's
//! own signing public key and the hosts it may back up, signed by the repository key; a snapshot's
//! `Writer` block is that key's signature over the snapshot. The types and what a verified result
//! means; the signing and verifying are [`crate::codec::attribution`]'s. No I/O.

use crate::id::KeyId;
use crate::keyfile::KeyKind;
use crate::time::Time;
use serde::{Deserialize, Serialize};

/// First bytes of a key certificate.
pub const CERT_MAGIC: &[u8; 8] = b"CAIRNCRT";

/// A key certificate (format-spec §4.3), signed by `repo_secret`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyCert {
    /// Version 1.
    V1 {
        /// The key this certificate is for.
        key_id: KeyId,
        /// What the key grants.
        kind: KeyKind,
        /// Hosts the key may write snapshots for; empty = any host.
        hosts: Vec<String>,
        /// The key's signing public key: `X25519(key_sign_secret, 9)`.
        key_public: [u8; 32],
        /// When the certificate was made.
        created: Time,
    },
}

impl KeyCert {
    /// The key this certificate is for.
    pub fn key_id(&self) -> KeyId {
        match self {
            KeyCert::V1 { key_id, .. } => *key_id,
        }
    }
    /// The key's signing public key.
    pub fn key_public(&self) -> [u8; 32] {
        match self {
            KeyCert::V1 { key_public, .. } => *key_public,
        }
    }
    /// What the key grants.
    pub fn kind(&self) -> KeyKind {
        match self {
            KeyCert::V1 { kind, .. } => *kind,
        }
    }
    /// Hosts the key may write snapshots for; empty = any host.
    pub fn hosts(&self) -> &[String] {
        match self {
            KeyCert::V1 { hosts, .. } => hosts,
        }
    }
    /// When the certificate was made.
    pub fn created(&self) -> Time {
        match self {
            KeyCert::V1 { created, .. } => *created,
        }
    }
}

/// First bytes of a key revocation.
pub const REVOCATION_MAGIC: &[u8; 8] = b"CAIRNRVK";

/// A key revocation `revocations/<key id>` (format-spec §4.3), signed by `repo_secret`: snapshots
/// attributed to the key and dated after `revoked` are flagged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Revocation {
    /// Version 1.
    V1 {
        /// The revoked key.
        key_id: KeyId,
        /// When it was revoked.
        revoked: Time,
    },
}

impl Revocation {
    /// The revoked key.
    pub fn key_id(&self) -> KeyId {
        match self {
            Revocation::V1 { key_id, .. } => *key_id,
        }
    }
    /// When it was revoked.
    pub fn revoked(&self) -> Time {
        match self {
            Revocation::V1 { revoked, .. } => *revoked,
        }
    }
}

/// A 64-byte signature, stored as its 64 raw bytes (postcard encodes the two halves back to back,
/// exactly as it would a `[u8; 64]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature64(pub [u8; 32], pub [u8; 32]);

impl Signature64 {
    /// From the 64 bytes of a signature.
    pub fn from_bytes(b: &[u8; 64]) -> Self {
        let mut r = [0u8; 32];
        let mut s = [0u8; 32];
        r.copy_from_slice(&b[..32]);
        s.copy_from_slice(&b[32..]);
        Signature64(r, s)
    }
    /// The 64 bytes.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[..32].copy_from_slice(&self.0);
        b[32..].copy_from_slice(&self.1);
        b
    }
}

/// The writer block of a snapshot: which key wrote it, and that key's signature over it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Writer {
    /// The writing key.
    pub key_id: KeyId,
    /// XEdDSA by the key's signing secret (format-spec §4.3).
    pub signature: Signature64,
}

/// Who wrote a snapshot, as far as a reader can verify (format-spec §4.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attribution {
    /// The writer's certificate verifies under the repository key and its signature under the
    /// certificate's key.
    Attributed {
        /// The writing key.
        key_id: KeyId,
        /// What it grants.
        kind: KeyKind,
        /// The hosts it is bound to (empty = any).
        hosts: Vec<String>,
        /// False when `hosts` is not empty and the snapshot's host is not among them.
        host_allowed: bool,
        /// The time of the key's verified revocation when the snapshot is dated after it
        /// (format-spec §4.3); `None` when the key is not revoked or the snapshot predates it.
        revoked: Option<Time>,
    },
    /// No writer block (a snapshot from before attribution, or from a key without certificate).
    Unattributed,
    /// A writer block whose certificate is missing or does not verify, or whose signature does not.
    Forged(String),
}

impl Attribution {
    /// The writing key when attributed.
    pub fn key_id(&self) -> Option<KeyId> {
        match self {
            Attribution::Attributed { key_id, .. } => Some(*key_id),
            _ => None,
        }
    }
    /// True when attributed to a full key that was not revoked before the snapshot's time.
    pub fn is_full_key(&self) -> bool {
        matches!(self, Attribution::Attributed { kind: KeyKind::Full, revoked: None, .. })
    }
    /// One word: `attributed`, `unattributed` or `forged`.
    pub fn state(&self) -> &'static str {
        match self {
            Attribution::Attributed { .. } => "attributed",
            Attribution::Unattributed => "unattributed",
            Attribution::Forged(_) => "forged",
        }
    }
}
