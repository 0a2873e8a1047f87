//! Snapshot manifests (format-spec §8): the commit point of a backup. The types, the stored
//! header and the plaintext decoding; sealing is [`crate::codec::object`]'s. No I/O.

use crate::cert::Writer;
use crate::id::{BlobId, KeyId, SnapshotId};
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

/// One source of a version 3 snapshot (format-spec §8.1). A command's text is never recorded:
/// it may hold credentials.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceRecord {
    /// Files and directories under one absolute, lexically normal path.
    Paths {
        /// The path, as bytes.
        path: Vec<u8>,
    },
    /// Standard input, stored as one file.
    Stdin {
        /// The file's path inside the snapshot, relative to `/` (e.g. `db/dump.sql`).
        path: String,
        /// Bytes read from the stream.
        bytes: u64,
    },
    /// A command's standard output, stored as one file.
    Command {
        /// The file's path inside the snapshot, relative to `/` (e.g. `redis/dump.rdb`).
        path: String,
        /// Its exit status (always 0 in a snapshot: a failed command makes none).
        exit_status: i32,
        /// Bytes of its output.
        bytes: u64,
    },
}

impl SourceRecord {
    /// The absolute path the source covers in the snapshot (`/` + a stream's path).
    pub fn absolute_path(&self) -> Vec<u8> {
        match self {
            SourceRecord::Paths { path } => path.clone(),
            SourceRecord::Stdin { path, .. } | SourceRecord::Command { path, .. } => format!("/{path}").into_bytes(),
        }
    }
    /// `paths`, `stdin` or `command`.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceRecord::Paths { .. } => "paths",
            SourceRecord::Stdin { .. } => "stdin",
            SourceRecord::Command { .. } => "command",
        }
    }
    /// The exit status of a command; `None` for other sources.
    pub fn exit_status(&self) -> Option<i32> {
        match self {
            SourceRecord::Command { exit_status, .. } => Some(*exit_status),
            _ => None,
        }
    }
    /// The byte count of a stream or command; `None` for paths.
    pub fn bytes(&self) -> Option<u64> {
        match self {
            SourceRecord::Stdin { bytes, .. } | SourceRecord::Command { bytes, .. } => Some(*bytes),
            SourceRecord::Paths { .. } => None,
        }
    }
    /// A short description: `stdin:/<path>` or `command:/<path>`; `files:<path>` for paths.
    pub fn describe(&self) -> String {
        let p = String::from_utf8_lossy(&self.absolute_path()).into_owned();
        match self {
            SourceRecord::Paths { .. } => format!("files:{p}"),
            SourceRecord::Stdin { .. } => format!("stdin:{p}"),
            SourceRecord::Command { .. } => format!("command:{p}"),
        }
    }
}

/// A snapshot (format-spec §8.1). Writers write `V3`; readers read all three.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Snapshot {
    /// Version 1: no writer block (unattributed).
    V1(SnapshotV1),
    /// Version 2: the version 1 fields, then the writer block (format-spec §4.3).
    V2(SnapshotV2),
    /// Version 3: several sources, the manifests it replaces, then the writer block.
    V3(SnapshotV3),
}

/// Version 3 of a snapshot (format-spec §8.1): the version 2 fields in their order, except that
/// `source` becomes `sources`; then `replaces`, `origin`, then `writer`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotV3 {
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
    /// Every absolute path the snapshot covers (directories and `/<stream path>`), as bytes, sorted.
    pub paths: Vec<Vec<u8>>,
    /// Tags.
    pub tags: Vec<String>,
    /// The root tree (the directory `/`).
    pub root: BlobId,
    /// The snapshot this one was based on.
    pub parent: Option<SnapshotId>,
    /// Where the data came from, one record per source.
    pub sources: Vec<SourceRecord>,
    /// Counters.
    pub summary: Summary,
    /// The program and version that wrote it.
    pub program: String,
    /// The snapshots this one replaces, oldest first (empty for a backup).
    pub replaces: Vec<SnapshotId>,
    /// The writer the first manifest of this history was attributed to, set when a full key
    /// re-signs a rewritten manifest (format-spec §8.3); readers honour it only on a manifest
    /// signed by an unrevoked full key, unflagged, with `replaces` not empty. `None` otherwise.
    pub origin: Option<KeyId>,
    /// Which key wrote it and its signature (format-spec §4.3); `None`: unattributed.
    pub writer: Option<Writer>,
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

impl SnapshotV1 {
    /// The source records a version 1 or 2 `source` stands for (format-spec §8.1): one `Paths`
    /// record per path for files, else one stream record whose byte count is `bytes_processed`.
    pub fn source_records(&self) -> Vec<SourceRecord> {
        let bytes = self.summary.bytes_processed;
        match &self.source {
            Source::Files => self.paths.iter().map(|p| SourceRecord::Paths { path: p.clone() }).collect(),
            Source::Stdin { name } => vec![SourceRecord::Stdin { path: name.clone(), bytes }],
            Source::Command { name, exit_status, .. } => {
                vec![SourceRecord::Command { path: name.clone(), exit_status: *exit_status, bytes }]
            }
        }
    }

    /// The same fields as version 3, with no writer block and nothing replaced.
    pub fn to_v3(&self) -> SnapshotV3 {
        SnapshotV3 {
            time: self.time,
            host: self.host.clone(),
            user: self.user.clone(),
            uid: self.uid,
            gid: self.gid,
            paths: self.paths.clone(),
            tags: self.tags.clone(),
            root: self.root,
            parent: self.parent,
            sources: self.source_records(),
            summary: self.summary.clone(),
            program: self.program.clone(),
            replaces: Vec::new(),
            origin: None,
            writer: None,
        }
    }
}

/// A field every version has, by reference.
macro_rules! field {
    ($s:expr, $f:ident) => {
        match $s {
            Snapshot::V1(s) => &s.$f,
            Snapshot::V2(s) => &s.base.$f,
            Snapshot::V3(s) => &s.$f,
        }
    };
}

impl Snapshot {
    /// The fields as version 3 (a version 1 or 2 `source` becomes its records; its writer block
    /// is dropped: it signs other bytes).
    pub fn v3(&self) -> SnapshotV3 {
        match self {
            Snapshot::V1(s) => s.to_v3(),
            Snapshot::V2(s) => s.base.to_v3(),
            Snapshot::V3(s) => s.clone(),
        }
    }
    /// The fields as version 3, to change (a copy or a repair builds its snapshot from another):
    /// an older snapshot is turned into version 3 first, without its writer block.
    pub fn v3_mut(&mut self) -> &mut SnapshotV3 {
        if !matches!(self, Snapshot::V3(_)) {
            *self = Snapshot::V3(self.v3());
        }
        match self {
            Snapshot::V3(s) => s,
            // Just made version 3.
            _ => unreachable!("converted above"),
        }
    }
    /// The writer block (format-spec §4.3); `None` for a version 1 snapshot or an unattributed one.
    pub fn writer(&self) -> Option<&Writer> {
        match self {
            Snapshot::V1(_) => None,
            Snapshot::V2(s) => s.writer.as_ref(),
            Snapshot::V3(s) => s.writer.as_ref(),
        }
    }
    /// The same fields as a version 3 snapshot with writer block `writer`.
    pub fn with_writer(&self, writer: Option<Writer>) -> Snapshot {
        Snapshot::V3(SnapshotV3 { writer, ..self.v3() })
    }
    /// What a writer signs (format-spec §4.3): the postcard of the snapshot, in its own version
    /// (a version 1 snapshot as the version 3 a writer would make of it), with no writer block.
    pub fn unsigned_bytes(&self) -> Vec<u8> {
        let unsigned = match self {
            Snapshot::V2(s) => Snapshot::V2(SnapshotV2 { base: s.base.clone(), writer: None }),
            other => other.with_writer(None),
        };
        // Serializing plain data to a vector cannot fail.
        postcard::to_allocvec(&unsigned).unwrap_or_default()
    }
    /// When it was taken (or the time given with `--time`).
    pub fn time(&self) -> Time {
        *field!(self, time)
    }
    /// Host name.
    pub fn host(&self) -> &str {
        field!(self, host)
    }
    /// User name.
    pub fn user(&self) -> &str {
        field!(self, user)
    }
    /// Numeric user id.
    pub fn uid(&self) -> u32 {
        *field!(self, uid)
    }
    /// Numeric group id.
    pub fn gid(&self) -> u32 {
        *field!(self, gid)
    }
    /// Every absolute path the snapshot covers, as bytes.
    pub fn paths(&self) -> &[Vec<u8>] {
        field!(self, paths)
    }
    /// Tags.
    pub fn tags(&self) -> &[String] {
        field!(self, tags)
    }
    /// The root tree (the directory `/`).
    pub fn root(&self) -> BlobId {
        *field!(self, root)
    }
    /// The snapshot this one was based on.
    pub fn parent(&self) -> Option<SnapshotId> {
        *field!(self, parent)
    }
    /// Where the data came from: a version 3 snapshot's records, or the records a version 1 or 2
    /// `source` stands for.
    pub fn sources(&self) -> Vec<SourceRecord> {
        match self {
            Snapshot::V1(s) => s.source_records(),
            Snapshot::V2(s) => s.base.source_records(),
            Snapshot::V3(s) => s.sources.clone(),
        }
    }
    /// The `source` field of a version 1 or 2 snapshot (with an old command's text); `None` for
    /// version 3.
    pub fn legacy_source(&self) -> Option<&Source> {
        match self {
            Snapshot::V1(s) => Some(&s.source),
            Snapshot::V2(s) => Some(&s.base.source),
            Snapshot::V3(_) => None,
        }
    }
    /// A one-line description of the sources: an old snapshot's `files`, `stdin:NAME` or
    /// `command:TEXT`; for version 3, `files` when it has paths, then `stdin:/PATH` or
    /// `command:/PATH` per stream, comma-separated (never a command's text).
    pub fn describe_sources(&self) -> String {
        if let Some(s) = self.legacy_source() {
            return s.describe();
        }
        let sources = self.sources();
        let mut parts = Vec::new();
        if sources.iter().any(|s| matches!(s, SourceRecord::Paths { .. })) {
            parts.push("files".to_string());
        }
        parts.extend(sources.iter().filter(|s| !matches!(s, SourceRecord::Paths { .. })).map(|s| s.describe()));
        parts.join(",")
    }
    /// The snapshots this one replaces, oldest first (empty before version 3).
    pub fn replaces(&self) -> &[SnapshotId] {
        match self {
            Snapshot::V3(s) => &s.replaces,
            _ => &[],
        }
    }
    /// The `origin` field (format-spec §8.3): the original writer a rewritten manifest names
    /// (`None` before version 3), as stored: a reader honours it only under the conditions of
    /// format-spec §8.3.
    pub fn origin(&self) -> Option<KeyId> {
        match self {
            Snapshot::V3(s) => s.origin,
            _ => None,
        }
    }
    /// Counters.
    pub fn summary(&self) -> &Summary {
        field!(self, summary)
    }
    /// The program and version that wrote it.
    pub fn program(&self) -> &str {
        field!(self, program)
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
