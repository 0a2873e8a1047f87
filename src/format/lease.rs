//! Writer leases, prune marks, the maintenance lock and prune waits (format-spec §10): the types
//! and their storage paths. Their encoding (leases MACed, the prune objects signed by the
//! repository key) is [`crate::codec::object`]'s; the repository and prune store them.

use crate::id::{BlobKind, PackId, SnapshotId};
use crate::time::Time;
use serde::{Deserialize, Serialize};

/// First bytes of a lease object.
pub const LEASE_MAGIC: &[u8; 8] = b"CAIRNLSE";
/// First bytes of a prune mark in the MAC framing from before signatures (never trusted).
pub const PRUNE_MAGIC: &[u8; 8] = b"CAIRNPRN";
/// First bytes of a signed prune mark (format-spec §10.2).
pub const SIGNED_PRUNE_MAGIC: &[u8; 8] = b"CAIRNPR2";
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
    /// The snapshots the mark saw.
    pub fn snapshots(&self) -> &[SnapshotId] {
        match self {
            PruneMark::V1 { snapshots, .. } => snapshots,
        }
    }
}

/// First bytes of a maintenance lock object in the MAC framing from before signatures (never
/// trusted).
pub const LOCK_MAGIC: &[u8; 8] = b"CAIRNPLK";
/// First bytes of a signed maintenance lock link (format-spec §10.4).
pub const SIGNED_LOCK_MAGIC: &[u8; 8] = b"CAIRNPL2";
/// First bytes of a prune wait object in the MAC framing from before signatures (never trusted).
pub const WAIT_MAGIC: &[u8; 8] = b"CAIRNPRW";
/// First bytes of a signed prune wait (format-spec §10.5).
pub const SIGNED_WAIT_MAGIC: &[u8; 8] = b"CAIRNPW2";
/// How long a maintenance lock lasts.
pub const LOCK_DURATION_SECS: u64 = 4 * 3600;
/// Allowance for clock skew between the backend's stamps and a writer's own clock (format-spec §10.1).
pub const LEASE_SKEW_SECS: u64 = 300;

/// One link of the maintenance lock chain (format-spec §10.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaintenanceLock {
    /// Version 1.
    V1 {
        /// Random per prune run.
        holder: [u8; 32],
        /// Host of the holder.
        host: String,
        /// Process id of the holder.
        pid: u32,
        /// Validity from the object's backend time.
        duration_secs: u64,
        /// True for the link that releases the lock.
        released: bool,
        /// The holder's clock (informational).
        client_time: Time,
    },
}

/// The writer sessions a mark waits for (format-spec §10.5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PruneWait {
    /// Version 1.
    V1 {
        /// The marking client's clock (informational).
        created: Time,
        /// Sessions whose leases were listed after the mark was stored.
        sessions: Vec<[u8; 32]>,
    },
}

impl PruneWait {
    /// The sessions to wait for.
    pub fn sessions(&self) -> &[[u8; 32]] {
        match self {
            PruneWait::V1 { sessions, .. } => sessions,
        }
    }
}
