//! The audit ledger as data (format-spec §13): the entry header every key can read, the sealed
//! body with the event, and the split of a stored entry into its parts; the reading order of the
//! DAG and the one-line head are in the `dag` submodule. Pure: no I/O, no keys.

use crate::id::{Digest, EntryId, KeyId, PackId, RepoId, SnapshotId};
use crate::time::Time;
use serde::{Deserialize, Serialize};

mod dag;
pub use dag::{head_digest, head_line, heads, order, parse_head_line, HEAD_WORD};

/// First bytes of a stored ledger entry.
pub const LEDGER_MAGIC: &[u8; 8] = b"CAIRNLG1";
/// Length of the writer signature that ends a stored entry.
pub const ENTRY_SIG_LEN: usize = 64;
/// The largest ledger entry a reader accepts (format-spec §13.2).
pub const ENTRY_MAX: u64 = 16 << 20;
/// The folder of the ledger, with its trailing `/`.
pub const LEDGER_PREFIX: &str = crate::layout::LEDGER_DIR;

/// The storage path of entry `id`: `ledger/<entry id, 64 hex>`.
pub fn entry_path(id: &EntryId) -> String {
    format!("{LEDGER_PREFIX}{}", id.to_hex())
}

/// The entry id a storage path names, when it is exactly `ledger/<64 lower-case hex>`.
pub fn entry_of_path(path: &str) -> Option<EntryId> {
    let id = EntryId::from_hex(path.strip_prefix(LEDGER_PREFIX)?)?;
    (entry_path(&id) == path).then_some(id)
}

/// What an entry records; the header carries it so that every key can filter and order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// `init`, or the first entry of a repository that had no ledger.
    Init,
    /// `key add`.
    KeyAdd,
    /// `key remove`.
    KeyRemove,
    /// `key passwd`.
    KeyPasswd,
    /// A committed backup.
    Backup,
    /// `forget`.
    Forget,
    /// `prune`.
    Prune,
    /// `check`.
    Check,
    /// `repair index` / `repair snapshots`.
    Repair,
    /// `copy` (recorded in the destination).
    Copy,
    /// Reserved: a restore drill.
    Drill,
    /// Reserved: a rewrite (erasure).
    Rewrite,
    /// Reserved: a tag change that replaces snapshots.
    Tag,
    /// `check` that read data packs (`--read-data*`): the check result and which share it read.
    CheckData,
}

impl EntryKind {
    /// Every kind, in code order.
    pub const ALL: [EntryKind; 14] = [
        EntryKind::Init,
        EntryKind::KeyAdd,
        EntryKind::KeyRemove,
        EntryKind::KeyPasswd,
        EntryKind::Backup,
        EntryKind::Forget,
        EntryKind::Prune,
        EntryKind::Check,
        EntryKind::Repair,
        EntryKind::Copy,
        EntryKind::Drill,
        EntryKind::Rewrite,
        EntryKind::Tag,
        EntryKind::CheckData,
    ];
    /// The name used on the command line and in `--json` (`key-add`, `backup`, ...).
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::Init => "init",
            EntryKind::KeyAdd => "key-add",
            EntryKind::KeyRemove => "key-remove",
            EntryKind::KeyPasswd => "key-passwd",
            EntryKind::Backup => "backup",
            EntryKind::Forget => "forget",
            EntryKind::Prune => "prune",
            EntryKind::Check => "check",
            EntryKind::Repair => "repair",
            EntryKind::Copy => "copy",
            EntryKind::Drill => "drill",
            EntryKind::Rewrite => "rewrite",
            EntryKind::Tag => "tag",
            EntryKind::CheckData => "check-data",
        }
    }
    /// The kind of a name.
    pub fn parse(s: &str) -> Option<EntryKind> {
        EntryKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// The clear, authenticated header of an entry (format-spec §13.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryHeader {
    /// Version 1.
    V1 {
        /// What the entry records; the body's event MUST be of this kind.
        kind: EntryKind,
        /// When the writer wrote it.
        time: Time,
        /// The key that wrote (and signed) it.
        key_id: KeyId,
        /// The heads of the ledger the writer saw, sorted and distinct.
        parents: Vec<EntryId>,
        /// The public key of the writer's session; the body is sealed under its key.
        session: [u8; 32],
        /// Random: the name in the associated data of the sealed body.
        salt: [u8; 32],
    },
}

impl EntryHeader {
    /// What the entry records.
    pub fn kind(&self) -> EntryKind {
        match self {
            EntryHeader::V1 { kind, .. } => *kind,
        }
    }
    /// When it was written.
    pub fn time(&self) -> Time {
        match self {
            EntryHeader::V1 { time, .. } => *time,
        }
    }
    /// The writing key.
    pub fn key_id(&self) -> KeyId {
        match self {
            EntryHeader::V1 { key_id, .. } => *key_id,
        }
    }
    /// The heads the writer saw.
    pub fn parents(&self) -> &[EntryId] {
        match self {
            EntryHeader::V1 { parents, .. } => parents,
        }
    }
    /// The session public key.
    pub fn session(&self) -> [u8; 32] {
        match self {
            EntryHeader::V1 { session, .. } => *session,
        }
    }
    /// The salt bound into the body's associated data.
    pub fn salt(&self) -> [u8; 32] {
        match self {
            EntryHeader::V1 { salt, .. } => *salt,
        }
    }
}

/// The sealed body of an entry: who wrote it and the event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryBody {
    /// Version 1.
    V1 {
        /// The writer's host.
        host: String,
        /// The writer's user.
        user: String,
        /// What happened.
        event: Event,
    },
}

impl EntryBody {
    /// The writer's host.
    pub fn host(&self) -> &str {
        match self {
            EntryBody::V1 { host, .. } => host,
        }
    }
    /// The writer's user.
    pub fn user(&self) -> &str {
        match self {
            EntryBody::V1 { user, .. } => user,
        }
    }
    /// What happened.
    pub fn event(&self) -> &Event {
        match self {
            EntryBody::V1 { event, .. } => event,
        }
    }
}

/// A snapshot a forget removed, and the rule (the policy's reasons) it fell under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    /// The removed snapshot.
    pub snapshot: SnapshotId,
    /// Why: the policy rule, or `explicit` when it was named on the command line.
    pub rule: String,
}

/// One snapshot replaced by another (copy: source → destination; rewrite, tag: old → new).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replaced {
    /// The snapshot replaced (for a copy, the snapshot in the source repository).
    pub old: SnapshotId,
    /// The snapshot written in this repository.
    pub new: SnapshotId,
}

/// What an entry records (format-spec §13.3). Never file content, never key material.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    /// A new repository (`existing` empty), or the first entry of a repository that had no ledger:
    /// the snapshots in storage then, which have no backup entry.
    Init {
        /// Snapshots present before the ledger began.
        existing: Vec<SnapshotId>,
    },
    /// A key file was added.
    KeyAdd {
        /// The new key.
        key: KeyId,
        /// True for a write-only key.
        write_only: bool,
        /// The hosts it is bound to (empty: any).
        hosts: Vec<String>,
    },
    /// A key was revoked and its key file removed.
    KeyRemove {
        /// The removed key.
        key: KeyId,
    },
    /// A password change: a new key file replaced the old one.
    KeyPasswd {
        /// The key file of the old password.
        old: KeyId,
        /// The key file of the new one.
        new: KeyId,
    },
    /// A committed backup.
    Backup {
        /// The snapshot it committed.
        snapshot: SnapshotId,
        /// Its sources (the paths backed up).
        sources: Vec<String>,
        /// Files in the snapshot (new + changed + unchanged).
        files: u64,
        /// Bytes read.
        bytes: u64,
        /// Bytes added to the repository (before compression).
        bytes_added: u64,
    },
    /// Snapshots removed by `forget`.
    Forget {
        /// What was removed, and by which rule.
        removed: Vec<Removed>,
    },
    /// A prune run.
    Prune {
        /// The packs it deleted.
        packs_deleted: Vec<PackId>,
        /// The bytes they held.
        bytes_returned: u64,
    },
    /// A check run.
    Check {
        /// Errors found.
        errors: u64,
        /// Warnings found.
        warnings: u64,
        /// BLAKE3 of the report's JSON.
        report_hash: Digest,
    },
    /// A repair.
    Repair {
        /// `index` or `snapshots`.
        what: String,
        /// Snapshots it wrote (repaired copies).
        written: Vec<SnapshotId>,
        /// Snapshots it removed (the originals of repaired copies).
        removed: Vec<SnapshotId>,
        /// A one-line summary.
        detail: String,
    },
    /// Snapshots copied into this repository.
    Copy {
        /// The source repository.
        from: RepoId,
        /// Source snapshot → the copy written here.
        copied: Vec<Replaced>,
    },
    /// A restore drill and its evidence (format-spec §13.3).
    Drill {
        /// The snapshot drilled.
        snapshot: SnapshotId,
        /// True when every check passed (restore, re-read, verify command), whatever the time.
        passed: bool,
        /// BLAKE3 of the evidence report's JSON.
        report_hash: Digest,
        /// Wall time of the whole drill, milliseconds.
        duration_ms: u64,
        /// The recovery-time objective it was held to, milliseconds (`None`: none given).
        rto_ms: Option<u64>,
        /// The job whose drill this was (`None`: run by hand).
        job: Option<String>,
    },
    /// A rewrite (erasure) request. Never the erased data.
    Rewrite {
        /// The request reference.
        reason: String,
        /// The patterns excluded.
        patterns: Vec<String>,
        /// Each rewritten snapshot and its replacement.
        replaced: Vec<Replaced>,
        /// The originals removed (`--forget`).
        removed: Vec<SnapshotId>,
    },
    /// A tag change that wrote replacement snapshots.
    Tag {
        /// A one-line summary (the tags added and removed).
        detail: String,
        /// Each changed snapshot and its replacement.
        replaced: Vec<Replaced>,
        /// The originals removed.
        removed: Vec<SnapshotId>,
    },
    /// A check run that read data packs (format-spec §13.3): what `check` records instead of
    /// [`Event::Check`] when it reads data, so that a report can tell which packs were read.
    CheckData {
        /// Errors found.
        errors: u64,
        /// Warnings found.
        warnings: u64,
        /// BLAKE3 of the report's JSON.
        report_hash: Digest,
        /// Data packs in the index.
        data_packs: u64,
        /// Data packs read in full.
        data_packs_read: u64,
        /// The rule that chose the packs read.
        share: ReadShare,
    },
}

/// Which data packs a check read (format-spec §13.3), as a rule a reader can apply to any pack id:
/// the first 8 bytes of the id as a big-endian integer `x` decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadShare {
    /// Every data pack.
    All,
    /// Part `n` of `m`: the packs with `x mod m = n - 1`.
    Subset {
        /// Which part, 1..=m.
        n: u64,
        /// How many parts.
        m: u64,
    },
    /// About `ppm` parts per million of the packs: those with `x < ppm / 10^6 · (2^64 - 1)`.
    Percent {
        /// Parts per million (1..=1 000 000).
        ppm: u32,
    },
    /// Day `day` (days since 1970-01-01 UTC) of a rotation of `days`: `x mod days = day mod days`.
    Rotation {
        /// Length of the rotation.
        days: u64,
        /// The day number.
        day: u64,
    },
}

impl ReadShare {
    /// True when the rule selects pack `id`.
    pub fn selects(&self, id: &PackId) -> bool {
        let mut b = [0u8; 8];
        b.copy_from_slice(&id.0[..8]);
        let x = u64::from_be_bytes(b);
        match *self {
            ReadShare::All => true,
            ReadShare::Subset { n, m } => m > 0 && x % m == (n.max(1) - 1) % m,
            ReadShare::Percent { ppm } => (x as f64) < (f64::from(ppm) / 1e6) * (u64::MAX as f64),
            ReadShare::Rotation { days, day } => days > 0 && x % days == day % days,
        }
    }
}

impl Event {
    /// The backup entry of snapshot `id` as committed.
    pub fn backup(id: &SnapshotId, snap: &crate::snapshot::Snapshot) -> Event {
        let s = snap.summary();
        Event::Backup {
            snapshot: *id,
            sources: snap.display_paths(),
            files: s.files_new + s.files_changed + s.files_unchanged,
            bytes: s.bytes_read,
            bytes_added: s.bytes_added,
        }
    }

    /// The kind of this event.
    pub fn kind(&self) -> EntryKind {
        match self {
            Event::Init { .. } => EntryKind::Init,
            Event::KeyAdd { .. } => EntryKind::KeyAdd,
            Event::KeyRemove { .. } => EntryKind::KeyRemove,
            Event::KeyPasswd { .. } => EntryKind::KeyPasswd,
            Event::Backup { .. } => EntryKind::Backup,
            Event::Forget { .. } => EntryKind::Forget,
            Event::Prune { .. } => EntryKind::Prune,
            Event::Check { .. } => EntryKind::Check,
            Event::Repair { .. } => EntryKind::Repair,
            Event::Copy { .. } => EntryKind::Copy,
            Event::Drill { .. } => EntryKind::Drill,
            Event::Rewrite { .. } => EntryKind::Rewrite,
            Event::Tag { .. } => EntryKind::Tag,
            Event::CheckData { .. } => EntryKind::CheckData,
        }
    }

    /// The snapshots this event accounts for in storage (format-spec §13.5): written by it, or
    /// present when the ledger began.
    pub fn created(&self) -> Vec<SnapshotId> {
        match self {
            Event::Init { existing } => existing.clone(),
            Event::Backup { snapshot, .. } => vec![*snapshot],
            Event::Repair { written, .. } => written.clone(),
            Event::Copy { copied, .. } => copied.iter().map(|r| r.new).collect(),
            Event::Rewrite { replaced, .. } | Event::Tag { replaced, .. } => replaced.iter().map(|r| r.new).collect(),
            _ => Vec::new(),
        }
    }

    /// The snapshots this event removed from storage.
    pub fn removed(&self) -> Vec<SnapshotId> {
        match self {
            Event::Forget { removed } => removed.iter().map(|r| r.snapshot).collect(),
            Event::Repair { removed, .. } | Event::Rewrite { removed, .. } | Event::Tag { removed, .. } => {
                removed.clone()
            }
            _ => Vec::new(),
        }
    }
}

/// A stored entry split into its parts (format-spec §13.2): `"CAIRNLG1" ‖ postcard(header) ‖
/// sealed body ‖ signature (64)`.
#[derive(Debug)]
pub struct Split<'a> {
    /// The decoded header.
    pub header: EntryHeader,
    /// The sealed body.
    pub sealed: &'a [u8],
    /// Every byte before the signature (what the writer signed).
    pub signed: &'a [u8],
    /// The signature.
    pub signature: &'a [u8],
}

/// Splits a stored entry and decodes its header, refusing a header whose parents are not sorted
/// and distinct. Checks nothing cryptographic.
pub fn split(bytes: &[u8]) -> Result<Split<'_>, String> {
    if bytes.len() < LEDGER_MAGIC.len() + ENTRY_SIG_LEN || &bytes[..LEDGER_MAGIC.len()] != LEDGER_MAGIC {
        return Err("not a ledger entry (magic missing)".into());
    }
    let (signed, signature) = bytes.split_at(bytes.len() - ENTRY_SIG_LEN);
    let (header, sealed) =
        postcard::take_from_bytes::<EntryHeader>(&signed[LEDGER_MAGIC.len()..]).map_err(|e| format!("header: {e}"))?;
    if !header.parents().windows(2).all(|w| w[0] < w[1]) {
        return Err("header: parents not sorted and distinct".into());
    }
    Ok(Split { header, sealed, signed, signature })
}

/// Decodes an opened body and checks that its event is of the header's kind.
pub fn decode_body(header: &EntryHeader, plain: &[u8]) -> Result<EntryBody, String> {
    let body: EntryBody = postcard::from_bytes(plain).map_err(|e| format!("body: {e}"))?;
    if body.event().kind() != header.kind() {
        return Err(format!(
            "body is a {} event, the header says {}",
            body.event().kind().name(),
            header.kind().name()
        ));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> EntryId {
        EntryId([b; 32])
    }
    fn t(s: i64) -> Time {
        Time { secs: s, nanos: 0 }
    }

    #[test]
    fn garbage_does_not_split_and_paths_are_exact() {
        for bad in [&b""[..], b"CAIRNLG1", &[0u8; 100], &[b'C'; 200]] {
            assert!(split(bad).is_err());
        }
        let mut b = LEDGER_MAGIC.to_vec();
        b.extend_from_slice(&[0xff; 80]);
        assert!(split(&b).is_err());
        let p = entry_path(&id(0xab));
        assert_eq!(p, format!("ledger/{}", "ab".repeat(32)));
        assert_eq!(entry_of_path(&p), Some(id(0xab)));
        assert_eq!(entry_of_path(&p.to_uppercase()), None);
        assert_eq!(entry_of_path("ledger/x"), None);
        assert_eq!(entry_of_path(&format!("{p}/")), None);
    }

    #[test]
    fn unsorted_parents_and_a_kind_mismatch_are_refused() {
        let h = EntryHeader::V1 {
            kind: EntryKind::Backup,
            time: t(1),
            key_id: KeyId([1; 32]),
            parents: vec![id(2), id(1)],
            session: [0; 32],
            salt: [0; 32],
        };
        let mut b = LEDGER_MAGIC.to_vec();
        b.extend_from_slice(&postcard::to_allocvec(&h).unwrap());
        b.extend_from_slice(&[0; 64]);
        assert!(split(&b).unwrap_err().contains("sorted"));
        let body =
            EntryBody::V1 { host: "h".into(), user: "u".into(), event: Event::KeyRemove { key: KeyId([1; 32]) } };
        let e = decode_body(&h, &postcard::to_allocvec(&body).unwrap()).unwrap_err();
        assert!(e.contains("key-remove event, the header says backup"), "{e}");
        for k in EntryKind::ALL {
            assert_eq!(EntryKind::parse(k.name()), Some(k));
        }
    }
}
