//! The backup operation: walk → read → chunk → id → dedup → compress → seal → pack → upload,
//! then trees, index and snapshot, in the write order of format-spec §11. Bounded queues keep
//! memory flat: a walker thread reads and chunks in walk order ([`walk`]; helpers open and read
//! the files of new directories a bounded window ahead of it, [`ahead`]), workers seal chunks,
//! and the calling thread builds trees from the walker's events as their chunk ids arrive
//! ([`tree`], storing them with [`crate::trees::write`]); [`pipeline`] wires them together,
//! [`sources`] says what is read. Prints nothing.

mod ahead;
mod inline;
mod pipeline;
mod reuse;
mod sources;
mod streams;
mod tree;
mod walk;

pub use crate::ops::PathMessage;
pub use ahead::READ_AHEAD;
pub use pipeline::backup;
pub use sources::absolute;

use crate::cache::FileEntry;
use crate::compress::Compression;
use crate::error::Result;
use crate::filescache::RecordView;
use crate::filter::Patterns;
use crate::id::BlobId;
use crate::id::SnapshotId;
use crate::snapshot::Summary;
use crate::time::Time;
use crate::tree::{Node, NodeKind};
use crossbeam_channel::{Receiver, Sender};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What to back up: one backup takes several sources into one snapshot (format-spec §8.1).
pub enum BackupSource {
    /// Files and directories (absolute or relative to the current directory).
    Paths(Vec<PathBuf>),
    /// A stream, stored as one file at `path`.
    Stream {
        /// The file's path inside the snapshot, relative to `/` (e.g. `db/dump.sql`); its parent
        /// directories are made in the snapshot's tree.
        path: String,
        /// The data.
        reader: Box<dyn Read + Send>,
    },
    /// A command's standard output, stored as one file at `path`, read as it arrives; a command
    /// that fails (non-zero exit, killed) makes no snapshot.
    Command {
        /// The file's path inside the snapshot, relative to `/` (e.g. `redis/dump.rdb`).
        path: String,
        /// Run with `sh -c`. Never recorded in the snapshot: it may hold credentials.
        command: String,
    },
}

/// Commands a backup runs at once unless [`BackupOptions::command_concurrency`] says otherwise.
pub const DEFAULT_COMMAND_CONCURRENCY: usize = 4;

/// Options of a backup.
#[derive(Clone, Debug, Default)]
pub struct BackupOptions {
    /// Host name to record (default: this machine's).
    pub host: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Time to record (default: now).
    pub time: Option<Time>,
    /// Exclude patterns.
    pub excludes: Patterns,
    /// Skip directories that contain any of these names.
    pub exclude_if_present: Vec<String>,
    /// Skip directories with a valid `CACHEDIR.TAG`.
    pub exclude_caches: bool,
    /// Skip files larger than this.
    pub exclude_larger_than: Option<u64>,
    /// Do not cross filesystem boundaries.
    pub one_file_system: bool,
    /// Compression (default: the repository's).
    pub compression: Option<Compression>,
    /// Count, store nothing.
    pub dry_run: bool,
    /// Read every file even when the files cache says it is unchanged.
    pub force: bool,
    /// Parent snapshot (default: the newest of the same host and paths, if readable).
    pub parent: Option<SnapshotId>,
    /// What is checked of each sealed blob before upload (format-spec §5.4).
    pub verify: crate::writer::Verification,
    /// Read back once the stored copy of each blob the backup dedups against, and store the blob
    /// anew when no copy verifies (needs a full key; format-spec §12).
    pub verify_dedup: bool,
    /// Worker threads (default: available cores).
    pub threads: usize,
    /// Commands (and standard input) read at once; 0: [`DEFAULT_COMMAND_CONCURRENCY`].
    pub command_concurrency: usize,
    /// Set from a signal handler to stop early; nothing is committed then.
    pub cancel: Option<Arc<AtomicBool>>,
    /// The largest regular file stored inline in its tree node (format-spec §7.3); `None`:
    /// [`crate::tree::INLINE_THRESHOLD`]. At most [`crate::tree::MAX_INLINE`]; no file is inline
    /// in a repository of format version 1 (§9.1). Files cache entries of larger inline files are
    /// not reused (the file is read again).
    pub inline_max: Option<usize>,
    /// Test-only: called with each entry's path after the walk has examined it and before it
    /// reads it, so a test can swap or change the entry at that moment: after the `lstat` and
    /// before the open, or, for a file examined through its open handle (a directory the files
    /// cache has no record of), after the open.
    #[doc(hidden)]
    pub test_before_open: Option<WalkHook>,
    /// Test-only: the writer's blobs per pack and blobs per index file
    /// ([`crate::writer::WriterOptions`]), small so that a small tree makes many of each.
    #[doc(hidden)]
    pub test_blob_limits: Option<(usize, usize)>,
}

/// A test-only callback of the walk (see `BackupOptions::test_before_open`).
#[doc(hidden)]
#[derive(Clone)]
pub struct WalkHook(pub Arc<dyn Fn(&Path) + Send + Sync>);

impl std::fmt::Debug for WalkHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WalkHook")
    }
}

/// The walk's selection rules: the backup walk and [`crate::scan`] both decide with these.
impl BackupOptions {
    /// True when `path` is left out by the exclude patterns.
    pub fn excludes_path(&self, path: &Path) -> bool {
        self.excludes.matches(path)
    }

    /// True when directory `dir` is left out with its contents: it holds a file named in
    /// `exclude_if_present`, or (with `exclude_caches`) a valid `CACHEDIR.TAG`.
    pub fn skips_dir(&self, dir: &Path) -> bool {
        for n in &self.exclude_if_present {
            if dir.join(n).symlink_metadata().is_ok() {
                return true;
            }
        }
        if self.exclude_caches {
            use std::os::unix::fs::OpenOptionsExt;
            // Never through a symlink, and without blocking on a FIFO planted under the name.
            let tag = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(dir.join("CACHEDIR.TAG"));
            if let Ok(mut f) = tag {
                let mut sig = [0u8; 43];
                if f.read_exact(&mut sig).is_ok() && &sig == b"Signature: 8a477f597d28d172789f06886806bc55" {
                    return true;
                }
            }
        }
        false
    }

    /// True when a regular file of `size` bytes is left out (`exclude_larger_than`).
    pub fn skips_file(&self, size: u64) -> bool {
        self.exclude_larger_than.is_some_and(|m| size > m)
    }

    /// True when a directory on device `dev`, below a parent on `parent_dev`, is recorded but not
    /// entered (`one_file_system`).
    pub fn stays_out(&self, parent_dev: Option<u64>, dev: u64) -> bool {
        self.one_file_system && parent_dev.is_some_and(|d| d != dev)
    }
}

/// Progress callbacks; every method has an empty default. Called from several threads.
pub trait Progress: Send + Sync {
    /// A file is being processed.
    fn file(&self, _path: &Path, _size: u64) {}
    /// Bytes read from the source.
    fn bytes(&self, _n: u64) {}
    /// A file was skipped because it could not be read.
    fn error(&self, _path: &Path, _message: &str) {}
    /// Something worth knowing (a file changed while it was read).
    fn warning(&self, _path: &Path, _message: &str) {}
}

/// A progress sink that ignores everything.
pub struct NoProgress;
impl Progress for NoProgress {}

/// The outcome of a backup.
#[derive(Clone, Debug)]
pub struct BackupResult {
    /// The new snapshot (`None` on a dry run).
    pub snapshot_id: Option<SnapshotId>,
    /// The parent it was compared against.
    pub parent: Option<SnapshotId>,
    /// Counters.
    pub summary: Summary,
    /// Files that could not be read (the snapshot lacks them).
    pub errors: Vec<PathMessage>,
    /// Files that changed while read, and similar notes.
    pub warnings: Vec<PathMessage>,
    /// With `verify_dedup`: stored copies read back and verified.
    pub dedup_verified: u64,
    /// With `verify_dedup`: blobs stored anew because no indexed copy verified.
    pub dedup_rejected: u64,
    /// Why the snapshot carries no writer block (format-spec §4.3); `None` when it is signed.
    pub unattributed: Option<String>,
}

/// Walker events per message to the builder.
pub(super) const EVENT_BATCH: usize = 64;
/// The walker hands chunks to the workers in batches of up to [`EVENT_BATCH`] chunks and this many
/// bytes; a chunk at least this large goes at once. One hand-off per chunk woke a worker per small
/// file.
pub(super) const JOB_BATCH_BYTES: usize = 256 << 10;

/// Chunks handed to a worker at once, sealed in order.
pub(super) type Jobs = Vec<ChunkJob>;

pub(super) struct ChunkJob {
    data: bytes::Bytes,
    reply: Sender<Result<BlobId>>,
}

pub(super) enum FileMsg {
    Chunk(Receiver<Result<BlobId>>),
    Done { size: u64, error: Option<String> },
}

/// What a backup compares of a file with the files cache: size, mtime and ctime (ns), inode,
/// device.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Seen {
    pub(super) size: u64,
    pub(super) mtime: i128,
    pub(super) ctime: i128,
    pub(super) inode: u64,
    pub(super) dev: u64,
}

impl Seen {
    pub(super) fn of_entry(e: &FileEntry) -> Seen {
        Seen { size: e.size, mtime: e.mtime, ctime: e.ctime, inode: e.inode, dev: e.dev }
    }
    pub(super) fn of_record(f: &crate::filescache::FileAt) -> Seen {
        Seen { size: f.size, mtime: f.mtime, ctime: f.ctime, inode: f.inode, dev: f.dev }
    }
}

/// The owner and group names of ids, each looked up once ([`identity`](crate::repository::identity)).
#[derive(Default)]
pub(super) struct Owners {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl Owners {
    /// The names of `uid` and `gid`; empty where there is none.
    pub(super) fn names(&mut self, uid: u32, gid: u32) -> (String, String) {
        use crate::repository::identity;
        let u = self.users.entry(uid).or_insert_with(|| identity::user_name(uid).unwrap_or_default()).clone();
        let g = self.groups.entry(gid).or_insert_with(|| identity::group_name(gid).unwrap_or_default()).clone();
        (u, g)
    }
}

/// The node of an entry named `name` examined as `st`, of `kind`, owned by `names`: no
/// hardlink group and no extended attributes yet.
pub(super) fn make_node(name: Vec<u8>, st: &crate::fsmeta::Stat, kind: NodeKind, names: (String, String)) -> Node {
    Node {
        name,
        kind,
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        user: names.0,
        group: names.1,
        mtime: st.mtime,
        atime: st.atime,
        ctime: st.ctime,
        size: st.size,
        hardlink: 0,
        xattrs: Vec::new(),
    }
}

/// A small file read whole: its bytes (`None` when it was empty or the read failed), how many
/// were read, and the error that stopped the read.
pub(super) struct WholeRead {
    pub(super) inline: Option<Vec<u8>>,
    pub(super) size: u64,
    pub(super) error: Option<String>,
}

/// What reading a small file whole gave.
pub(super) enum Whole {
    /// The file held no more than the threshold.
    Read(WholeRead),
    /// It held more (it grew since the `lstat`): these bytes were read, the rest is to be
    /// chunked with them like any other file's.
    Grown(Vec<u8>),
}

/// What [`read_small`] gave: the file read whole, or the bytes read of one that grew past the
/// threshold (`None`: too large to be read whole), and the handle's `fstat` after a whole read
/// without error (what the walker compares with its first `fstat`).
pub(super) struct Small {
    pub(super) whole: Option<Whole>,
    pub(super) after: Option<crate::fsmeta::Stat>,
}

/// Reads the file `f` (examined as `st`) whole when its size allows an inline content of at most
/// `inline_max` bytes (`None`: no inline content), or when it is empty: `whole` is `None` when it
/// does not (then it is chunked; an empty file is `Chunks` with no ids, §7.3). The file is read up
/// to one byte beyond the threshold, so one that grew since it was examined is told apart. Counts
/// nothing: the walker does (`Ctx::count_read`).
pub(super) fn read_small(f: &std::fs::File, st: &crate::fsmeta::Stat, inline_max: Option<u64>) -> Small {
    let max = inline_max.unwrap_or(0);
    if st.size > max {
        return Small { whole: None, after: None };
    }
    let mut buf = Vec::with_capacity(st.size as usize + 1);
    let read = crate::fsmeta::Blocking(f).take(max + 1).read_to_end(&mut buf);
    let n = buf.len() as u64;
    if read.is_ok() && n > max {
        return Small { whole: Some(Whole::Grown(buf)), after: None };
    }
    let error = read.err().map(|e| format!("read failed: {e}"));
    let after = if error.is_none() { crate::fsmeta::fstat(f).ok() } else { None };
    Small {
        whole: Some(Whole::Read(WholeRead { inline: (n > 0 && error.is_none()).then_some(buf), size: n, error })),
        after,
    }
}

/// How a file's content reaches the builder.
pub(super) enum Body {
    /// On the file's own channel, as the walker reads it.
    Channel(Receiver<FileMsg>),
    /// Read whole before the event was made (at most the inline threshold, format-spec §7.3).
    Whole(WholeRead),
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum FileStatus {
    New,
    Changed,
}

pub(super) enum Event {
    EnterDir(Node),
    /// A stream source's file; its content arrives on `outcome` when the stream ends.
    Stream {
        node: Node,
        outcome: Receiver<streams::Outcome>,
    },
    LeaveDir,
    Node(Node),
    /// A file taken from the per-path files cache of an earlier version: its node, complete, and
    /// its entry there, to be recorded by `session`; `restamped` when its blobs were looked up
    /// one by one this session (its directory's record must be written again).
    Cached {
        node: Node,
        entry: FileEntry,
        session: u64,
        restamped: bool,
    },
    /// A file of the current directory's record found unchanged (examined as `st`): the builder
    /// makes its node from `st` and the record's entry `index` (name, content, extended
    /// attributes), in hardlink group `hardlink` (0: none), recorded by `session`; `restamped`
    /// as for [`Event::Cached`]. The walker only compares: nothing of the entry is copied there.
    Unchanged {
        st: crate::fsmeta::Stat,
        index: usize,
        hardlink: u64,
        session: u64,
        restamped: bool,
    },
    /// The walker reads the current directory's files against `old`, the record of `dir`
    /// (absolute path; `None`: no record was read); the builder writes the directory's new
    /// record when it leaves it, if that differs.
    Record {
        dir: Vec<u8>,
        old: Option<Arc<RecordView>>,
    },
    File {
        node: Node,
        path: Vec<u8>,
        status: FileStatus,
        body: Body,
        cache: Option<FileEntry>,
    },
    HardlinkRef {
        node: Node,
        group: u64,
        path: Vec<u8>,
    },
}

pub(super) fn cancelled(opts: &BackupOptions) -> bool {
    opts.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
}
