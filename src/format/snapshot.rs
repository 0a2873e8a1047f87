//! Snapshot manifests (format-spec §8): the commit point of a backup. Encodes and decodes; no I/O.

use crate::crypto::{self, MasterKeys, ObjectKind, Session};
use crate::id::{BlobId, SnapshotId};
use crate::tree::Time;
use serde::{Deserialize, Serialize};

/// First bytes of a snapshot object.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"CAIRNSNP";
/// Version byte after the magic.
pub const SNAPSHOT_VERSION: u8 = 1;

/// Where a snapshot's data came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// Files and directories.
    Files,
    /// Standard input, stored as one file.
    Stdin {
        /// The file name it was stored under.
        name: String,
    },
    /// A command's standard output, stored as one file.
    Command {
        /// The command line.
        command: String,
        /// The file name it was stored under.
        name: String,
        /// Its exit status (always 0 in a snapshot: a failed command makes none).
        exit_status: i32,
    },
}

impl Source {
    /// A one-word description.
    pub fn describe(&self) -> String {
        match self {
            Source::Files => "files".into(),
            Source::Stdin { name } => format!("stdin:{name}"),
            Source::Command { command, .. } => format!("command:{command}"),
        }
    }
}

/// Counters of one backup run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Files not in the files cache or parent.
    pub files_new: u64,
    /// Files that were read again because they changed.
    pub files_changed: u64,
    /// Files taken from the files cache without reading.
    pub files_unchanged: u64,
    /// Directories.
    pub dirs: u64,
    /// Symlinks, devices, FIFOs, sockets.
    pub other: u64,
    /// Bytes read from the source.
    pub bytes_read: u64,
    /// Bytes of file content the snapshot covers.
    pub bytes_processed: u64,
    /// New blobs stored.
    pub blobs_added: u64,
    /// Plain bytes of new blobs.
    pub bytes_added: u64,
    /// Stored (compressed, sealed) bytes of new blobs.
    pub bytes_added_stored: u64,
    /// Files that could not be read.
    pub errors: u64,
    /// Start of the run.
    pub started: Time,
    /// End of the run.
    pub finished: Time,
}

/// A snapshot (format-spec §8.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Snapshot {
    /// Version 1.
    V1(SnapshotV1),
}

/// Version 1 of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotV1 {
    /// When it was taken (or the time given with `--time`).
    pub time: Time,
    /// Host name.
    pub host: String,
    /// User name.
    pub user: String,
    /// Numeric user id.
    pub uid: u32,
    /// Numeric group id.
    pub gid: u32,
    /// The absolute source paths, as bytes.
    pub paths: Vec<Vec<u8>>,
    /// Tags.
    pub tags: Vec<String>,
    /// The root tree (the directory `/`).
    pub root: BlobId,
    /// The snapshot this one was based on.
    pub parent: Option<SnapshotId>,
    /// Where the data came from.
    pub source: Source,
    /// Counters.
    pub summary: Summary,
    /// The program and version that wrote it.
    pub program: String,
}

impl Snapshot {
    /// The version-independent view.
    pub fn v1(&self) -> &SnapshotV1 {
        match self {
            Snapshot::V1(s) => s,
        }
    }
    /// Paths as display strings.
    pub fn display_paths(&self) -> Vec<String> {
        self.v1().paths.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect()
    }
}

/// `magic ‖ version ‖ session public key ‖ seal(session key, aad(Snapshot, id), postcard)`.
pub fn encode(keys: &MasterKeys, session: &Session, id: &SnapshotId, snap: &Snapshot) -> Vec<u8> {
    let plain = postcard::to_allocvec(snap).expect("snapshot encodes");
    let aad = crypto::aad(&keys.repo_id, ObjectKind::Snapshot, &id.0);
    let mut out = SNAPSHOT_MAGIC.to_vec();
    out.push(SNAPSHOT_VERSION);
    out.extend_from_slice(&session.public);
    out.extend_from_slice(&crypto::seal(session.key(), &aad, &plain));
    out
}

/// Splits a stored snapshot into its session public key and sealed body.
pub fn split(bytes: &[u8]) -> Result<([u8; 32], &[u8]), String> {
    if bytes.len() < 41 || &bytes[..8] != SNAPSHOT_MAGIC {
        return Err("not a snapshot (magic missing)".into());
    }
    if bytes[8] != SNAPSHOT_VERSION {
        return Err(format!("unknown snapshot version {}", bytes[8]));
    }
    Ok((bytes[9..41].try_into().expect("32 bytes"), &bytes[41..]))
}

/// Opens and decodes a stored snapshot. Needs a key that can read.
pub fn decode(keys: &MasterKeys, id: &SnapshotId, bytes: &[u8]) -> Result<Snapshot, String> {
    let (public, body) = split(bytes)?;
    let session = Session::for_reading(keys, &public).map_err(|e| e.to_string())?;
    decode_body(keys, &session, id, body)
}

/// Decodes the sealed body with a known session.
pub fn decode_body(keys: &MasterKeys, session: &Session, id: &SnapshotId, body: &[u8]) -> Result<Snapshot, String> {
    let aad = crypto::aad(&keys.repo_id, ObjectKind::Snapshot, &id.0);
    let plain = crypto::open(session.key(), &aad, body).ok_or("does not authenticate")?;
    decode_plain(&plain)
}

/// Decodes the plaintext of a snapshot, the step [`decode_body`] runs after authentication
/// (exposed so it can be fuzzed without the key).
pub fn decode_plain(plain: &[u8]) -> Result<Snapshot, String> {
    postcard::from_bytes(plain).map_err(|e| format!("decode: {e}"))
}
