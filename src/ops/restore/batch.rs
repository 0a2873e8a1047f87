//! What a restore plan (or one batch of it) holds: the entries to create in pre-order, the
//! directories it completes in post-order, and per pack the blobs to read and where each goes
//! (format-spec §7). Pure data; `plan` fills it, `exec` carries it out.

use crate::cache::Location;
use crate::id::{BlobId, PackId};
use crate::ops::PathMessage;
use crate::tree::Node;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One entry to create.
#[derive(Clone, Debug)]
pub struct PlanEntry {
    /// The path in the snapshot (absolute).
    pub path: PathBuf,
    /// The node.
    pub node: Node,
    /// For a hardlink: the entry of this plan that is its group's primary (created first).
    pub link_to: Option<usize>,
    /// For a hardlink whose primary an earlier batch restored: that primary.
    pub earlier: Option<EarlierPrimary>,
}

/// The primary of a hardlink group that an earlier batch of the restore planned (if its restore
/// failed, the members fail too and nothing is linked to it).
#[derive(Clone, Debug)]
pub struct EarlierPrimary {
    /// Its path in the snapshot.
    pub path: PathBuf,
}

/// One blob to read and where it goes.
#[derive(Clone, Debug)]
pub struct PlanBlob {
    /// The blob.
    pub id: BlobId,
    /// Where it is.
    pub loc: Location,
    /// (entry index, offset in file).
    pub targets: Vec<(usize, u64)>,
}

/// A directory all of whose entries the plan (or an earlier batch) holds: its metadata is applied
/// once they are restored.
#[derive(Clone, Debug)]
pub struct DirDone {
    /// The path in the snapshot.
    pub path: PathBuf,
    /// The directory's node.
    pub node: Node,
    /// Its entry in this plan; `None` when an earlier batch created it.
    pub entry: Option<usize>,
}

/// A restore plan (or one batch of it): what to create and which packs to read.
#[derive(Debug, Default)]
pub struct RestorePlan {
    /// Entries in pre-order.
    pub entries: Vec<PlanEntry>,
    /// Directories complete after this plan, in post-order (every directory after all below it).
    pub dirs_done: Vec<DirDone>,
    /// Blobs to read, grouped by pack.
    pub packs: BTreeMap<PackId, Vec<PlanBlob>>,
    /// Bytes of file content.
    pub total_bytes: u64,
    /// Bytes that are holes (all-zero chunks) and are not written.
    pub hole_bytes: u64,
    /// Files that cannot be restored (their data is not indexed).
    pub unrestorable: Vec<PathMessage>,
}

impl RestorePlan {
    /// Nothing to create, complete or report.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.dirs_done.is_empty() && self.unrestorable.is_empty()
    }
}
