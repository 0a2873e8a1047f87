//! Writer leases and prune marks as writers see them (format-spec §10). Encodes, decodes and
//! verifies the MACed objects; the repository layer stores them.

use crate::crypto::{self, context, MasterKeys};
use crate::id::{BlobKind, PackId, SnapshotId};
use crate::tree::Time;
use serde::{Deserialize, Serialize};

/// First bytes of a lease object.
pub const LEASE_MAGIC: &[u8; 8] = b"CAIRNLSE";
/// First bytes of a prune mark.
pub const PRUNE_MAGIC: &[u8; 8] = b"CAIRNPRN";
/// How long a lease lasts unless renewed.
pub const LEASE_DURATION_SECS: u64 = 3600;
/// How often a writer renews its lease.
pub const LEASE_RENEW_SECS: u64 = 600;

/// A writer lease (format-spec §10.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lease {
    /// Version 1.
    V1 {
        /// The writer's session public key.
        session: [u8; 32],
        /// Sequence number of this lease object within the session.
        seq: u32,
        /// Host.
        host: String,
        /// Process id.
        pid: u32,
        /// Validity from the object's backend timestamp, in seconds.
        duration_secs: u64,
        /// What the writer does ("backup", "prune", ...).
        operation: String,
        /// The writer's clock at writing (informational; the backend's time rules).
        client_time: Time,
    },
}

/// Storage path of a lease.
pub fn lease_path(session: &[u8; 32], seq: u32) -> String {
    format!("leases/{}-{seq:08}", hex::encode(session))
}

fn encode_macd<T: Serialize>(magic: &[u8; 8], key: &crypto::Secret, name: &str, v: &T) -> Vec<u8> {
    let mut out = magic.to_vec();
    out.extend_from_slice(&postcard::to_allocvec(v).expect("encodes"));
    let tag = crypto::mac(key, &[name.as_bytes(), &out]);
    out.extend_from_slice(&tag);
    out
}

fn decode_macd<T: for<'de> Deserialize<'de>>(
    magic: &[u8; 8],
    key: &crypto::Secret,
    name: &str,
    bytes: &[u8],
) -> Result<T, String> {
    if bytes.len() < 40 || &bytes[..8] != magic {
        return Err("magic missing".into());
    }
    let (body, tag) = bytes.split_at(bytes.len() - 32);
    if !crypto::mac_eq(&crypto::mac(key, &[name.as_bytes(), body]), tag) {
        return Err("MAC does not verify".into());
    }
    postcard::from_bytes(&body[8..]).map_err(|e| format!("decode: {e}"))
}

/// Encodes a lease stored at `path`; the MAC binds the path.
pub fn encode_lease(keys: &MasterKeys, path: &str, lease: &Lease) -> Vec<u8> {
    encode_macd(LEASE_MAGIC, &keys.writer_mac_key(context::LEASE_MAC), path, lease)
}

/// Decodes and verifies a lease stored at `path`.
pub fn decode_lease(keys: &MasterKeys, path: &str, bytes: &[u8]) -> Result<Lease, String> {
    decode_macd(LEASE_MAGIC, &keys.writer_mac_key(context::LEASE_MAC), path, bytes)
}

/// A prune mark (format-spec §10.2): phase 1's record of condemned packs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PruneMark {
    /// Version 1.
    V1 {
        /// When the mark was made (client clock; the object's backend time rules).
        created: Time,
        /// Packs that hold no blob a marked snapshot needs, with their kind.
        condemned: Vec<(BlobKind, PackId)>,
        /// The snapshots the mark saw.
        snapshots: Vec<SnapshotId>,
    },
}

impl PruneMark {
    /// The condemned packs.
    pub fn condemned(&self) -> &[(BlobKind, PackId)] {
        match self {
            PruneMark::V1 { condemned, .. } => condemned,
        }
    }
}

/// Encodes a prune mark stored at `path`.
pub fn encode_prune_mark(keys: &MasterKeys, path: &str, m: &PruneMark) -> Vec<u8> {
    encode_macd(PRUNE_MAGIC, &keys.writer_mac_key(context::PRUNE_MAC), path, m)
}

/// Decodes and verifies a prune mark stored at `path`.
pub fn decode_prune_mark(keys: &MasterKeys, path: &str, bytes: &[u8]) -> Result<PruneMark, String> {
    decode_macd(PRUNE_MAGIC, &keys.writer_mac_key(context::PRUNE_MAC), path, bytes)
}
