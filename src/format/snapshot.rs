//! Snapshot manifests (format-spec §8): the commit point of a backup. The types, the stored
//! header and the plaintext decoding; sealing is [`crate::codec::object`]'s. No I/O.

use crate::cert::Writer;
use crate::id::{BlobId, SnapshotId};
use crate::time::Time;
use serde::{Deserialize, Serialize};

/// First bytes of a snapshot object.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"CAIRNSNP";
/// Version byte after the magic.
pub const SNAPSHOT_VERSION: u8 = 1;
/// Length of the stored header: magic, version and the session public key.
pub const HEADER_LEN: usize = 41;

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

/// A snapshot (format-spec §8.1). Writers write `V2`; readers read both.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Snapshot {
    /// Version 1: no writer block (unattributed).
    V1(SnapshotV1),
    /// Version 2: the version 1 fields, then the writer block (format-spec §4.3).
    V2(SnapshotV2),
}

/// Version 2 of a snapshot: every field of [`SnapshotV1`] in its order, then `writer`. Postcard
/// encodes the nested struct as its fields back to back, so this is exactly the field list of
/// format-spec §8.1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotV2 {
    /// The version 1 fields.
    pub base: SnapshotV1,
    /// Which key wrote it and its signature (format-spec §4.3); `None`: unattributed.
    pub writer: Option<Writer>,
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
    /// The version 1 fields (every version has them).
    pub fn v1(&self) -> &SnapshotV1 {
        match self {
            Snapshot::V1(s) => s,
            Snapshot::V2(s) => &s.base,
        }
    }
    /// The version 1 fields, to change (a copy or a repair builds its snapshot from another).
    pub fn v1_mut(&mut self) -> &mut SnapshotV1 {
        match self {
            Snapshot::V1(s) => s,
            Snapshot::V2(s) => &mut s.base,
        }
    }
    /// The writer block (format-spec §4.3); `None` for a version 1 snapshot or an unattributed one.
    pub fn writer(&self) -> Option<&Writer> {
        match self {
            Snapshot::V1(_) => None,
            Snapshot::V2(s) => s.writer.as_ref(),
        }
    }
    /// The same fields as a version 2 snapshot with writer block `writer`.
    pub fn with_writer(&self, writer: Option<Writer>) -> Snapshot {
        Snapshot::V2(SnapshotV2 { base: self.v1().clone(), writer })
    }
    /// What a writer signs (format-spec §4.3): the postcard of the snapshot as version 2 with no
    /// writer block.
    pub fn unsigned_bytes(&self) -> Vec<u8> {
        // Serializing plain data to a vector cannot fail.
        postcard::to_allocvec(&self.with_writer(None)).unwrap_or_default()
    }
    /// When it was taken (or the time given with `--time`).
    pub fn time(&self) -> Time {
        self.v1().time
    }
    /// Host name.
    pub fn host(&self) -> &str {
        &self.v1().host
    }
    /// User name.
    pub fn user(&self) -> &str {
        &self.v1().user
    }
    /// Numeric user id.
    pub fn uid(&self) -> u32 {
        self.v1().uid
    }
    /// Numeric group id.
    pub fn gid(&self) -> u32 {
        self.v1().gid
    }
    /// The absolute source paths, as bytes.
    pub fn paths(&self) -> &[Vec<u8>] {
        &self.v1().paths
    }
    /// Tags.
    pub fn tags(&self) -> &[String] {
        &self.v1().tags
    }
    /// The root tree (the directory `/`).
    pub fn root(&self) -> BlobId {
        self.v1().root
    }
    /// The snapshot this one was based on.
    pub fn parent(&self) -> Option<SnapshotId> {
        self.v1().parent
    }
    /// Where the data came from.
    pub fn source(&self) -> &Source {
        &self.v1().source
    }
    /// Counters.
    pub fn summary(&self) -> &Summary {
        &self.v1().summary
    }
    /// The program and version that wrote it.
    pub fn program(&self) -> &str {
        &self.v1().program
    }
    /// Paths as display strings.
    pub fn display_paths(&self) -> Vec<String> {
        self.paths().iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect()
    }
}

/// Splits a stored snapshot into its session public key and sealed body.
pub fn split(bytes: &[u8]) -> Result<([u8; 32], &[u8]), String> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != SNAPSHOT_MAGIC {
        return Err("not a snapshot (magic missing)".into());
    }
    if bytes[8] != SNAPSHOT_VERSION {
        return Err(format!("unknown snapshot version {}", bytes[8]));
    }
    Ok((bytes[9..HEADER_LEN].try_into().expect("32 bytes"), &bytes[HEADER_LEN..]))
}

/// Decodes the plaintext of a snapshot, the step the codec runs after authentication
/// (exposed so it can be fuzzed without the key).
pub fn decode_plain(plain: &[u8]) -> Result<Snapshot, String> {
    postcard::from_bytes(plain).map_err(|e| format!("decode: {e}"))
}
