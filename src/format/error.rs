//! The library's error type. Errors are grouped by meaning ([`ErrorKind`]); every variant names
//! the object or path it is about, never a command-line flag. [`ErrorKind::exit_code`] is the
//! one map from kinds to the documented exit codes of the `cairn` command.

use crate::id::{BlobId, BlobKind, KeyId, PackId};
use crate::layout::Object;
use std::fmt;
use std::path::PathBuf;

/// Result alias for the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error a storage service or the operating system gave, kept whole so the cause chain can
/// be printed.
pub type SourceError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A request that cannot be carried out as asked: a bad argument, option or URL, an
    /// ambiguous prefix ([`ErrorKind::Usage`]).
    #[error("{0}")]
    Usage(String),
    /// An object named by the request does not exist ([`ErrorKind::NotFound`]).
    #[error("{0} not found")]
    NotFound(String),
    /// There is no repository at the location ([`ErrorKind::Repository`]).
    #[error("no cairn repository at {0}")]
    RepoNotFound(String),
    /// There is something at the location, but not a valid repository ([`ErrorKind::Repository`]).
    #[error("{location}: not a valid cairn repository: {reason}")]
    RepoInvalid {
        /// Where.
        location: String,
        /// Why.
        reason: String,
    },
    /// The writer's lease lapsed, or a maintenance run holds the repository ([`ErrorKind::Locked`]).
    #[error("lease: {0}")]
    Locked(String),
    /// No key file opened with the given password ([`ErrorKind::Key`]).
    #[error("wrong password: no key file of the repository opens with it")]
    WrongPassword,
    /// A write-only key was asked to read snapshots, trees or data, or to make a full key
    /// ([`ErrorKind::Key`]).
    #[error("{}", write_only_message(key))]
    WriteOnlyKey {
        /// The key file the repository was opened with, when known.
        key: Option<KeyId>,
    },
    /// The certificate of the key in use binds it to other hosts than the one a backup names
    /// (format-spec §4.3; [`ErrorKind::Key`]).
    #[error("key {key} may write snapshots only for host(s) {}, not {host:?}; nothing was written", hosts.join(", "))]
    HostNotAllowed {
        /// The key in use.
        key: KeyId,
        /// The host the backup named.
        host: String,
        /// The hosts its certificate allows.
        hosts: Vec<String>,
    },
    /// A stored object failed to decode, authenticate or verify ([`ErrorKind::Corrupt`]).
    #[error("{object}: {reason}")]
    Corrupt {
        /// The damaged object or blob.
        object: Damaged,
        /// What is wrong.
        reason: String,
    },
    /// A safety guard refused the request; nothing was changed ([`ErrorKind::Refused`]).
    #[error("{reason}")]
    Refused {
        /// Why, naming the objects or paths involved.
        reason: String,
        /// What the caller may ask for to go ahead anyway, when anything may.
        lifted_by: Option<Override>,
    },
    /// The repository requires a newer writer ([`ErrorKind::Refused`]).
    #[error("this repository requires cairn writer version {required} or newer to write (this is {have})")]
    WriterTooOld {
        /// Minimum from the config.
        required: u32,
        /// Ours.
        have: u32,
    },
    /// The operation was interrupted by a signal; nothing was committed ([`ErrorKind::Interrupted`]).
    #[error("interrupted; nothing was committed")]
    Interrupted,
    /// A storage operation failed ([`ErrorKind::Storage`]).
    #[error("storage {op} {path}: {source}")]
    Backend {
        /// The operation ("read", "write", "list", ...).
        op: &'static str,
        /// The object path.
        path: String,
        /// What the service or the file system said.
        #[source]
        source: SourceError,
        /// The object was missing.
        not_found: bool,
        /// The object already existed (create-if-not-exists refused).
        exists: bool,
    },
    /// A local file operation failed ([`ErrorKind::Io`]).
    #[error("{}: {source}", path.display())]
    Io {
        /// The local path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A stream source's command failed ([`ErrorKind::Io`]). Named by its path in the snapshot,
    /// never by its text (it may hold credentials).
    #[error("the command for {path} failed: {status}{}", stderr_tail(stderr))]
    CommandFailed {
        /// The absolute path of its output in the snapshot (`/redis/dump.rdb`).
        path: String,
        /// How it ended (`exited with status 3`, `killed by signal 9 (SIGKILL)`).
        status: String,
        /// The last lines of its standard error (empty: it wrote none).
        stderr: String,
    },
    /// The local cache failed ([`ErrorKind::Io`]).
    #[error("cache {path}: {message}")]
    Cache {
        /// The cache directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A failure inside this process that no input explains: a worker thread stopped, a runtime
    /// did not start ([`ErrorKind::Internal`]).
    #[error("internal error: {0}")]
    Internal(String),
}

fn write_only_message(key: &Option<KeyId>) -> String {
    let who = match key {
        Some(k) => format!("key {}", k.short()),
        None => "this key".to_string(),
    };
    format!("{who} is write-only: it can add backups but cannot read snapshots or data")
}

/// What a [`Error::Corrupt`] is about: a stored object, or a blob inside a pack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Damaged {
    /// A stored object.
    Object(Object),
    /// A blob, with the pack it was read from when known.
    Blob {
        /// Data or tree.
        kind: BlobKind,
        /// The blob id.
        id: BlobId,
        /// The pack it was read from.
        pack: Option<PackId>,
    },
    /// Something found damaged where no object or blob id is at hand, by description.
    Other(String),
}

impl fmt::Display for Damaged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damaged::Object(o) => write!(f, "{} {}", o.object_type(), o.name()),
            Damaged::Blob { kind, id, pack: None } => write!(f, "{kind} blob {id}"),
            Damaged::Blob { kind, id, pack: Some(p) } => write!(f, "{kind} blob {id} in pack {p}"),
            Damaged::Other(what) => f.write_str(what),
        }
    }
}

/// What lifts a [`Error::Refused`]: the caller's way of saying "go ahead anyway". The library
/// names the meaning; a front end names its own switch for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Override {
    /// Replace files that already exist (restore).
    Overwrite,
    /// Go past a safety check of prune that this repository or run fails; rewrite a flagged
    /// snapshot's manifest (tag).
    Force,
    /// Let a retention policy remove every snapshot of a group.
    AllowEmpty,
    /// Let a walk that keeps its entries (restore's plan, a listing) hold more memory than the
    /// limit of format-spec §7.5; the front end's switch takes the new limit.
    TreeMemory,
}

/// Errors grouped by meaning: what a caller decides on (retry, ask for another password, report
/// damage). [`ErrorKind::exit_code`] maps each to the `cairn` command's exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A bad argument, option or URL; an ambiguous prefix.
    Usage,
    /// A named object (snapshot, key, path in a snapshot) does not exist.
    NotFound,
    /// No repository at the location, or not a valid one.
    Repository,
    /// The repository is locked by a maintenance run, or the writer's lease was lost.
    Locked,
    /// Wrong password, or a key of the wrong kind (write-only where reading is needed).
    Key,
    /// A stored object is damaged.
    Corrupt,
    /// A safety guard refused; nothing was changed.
    Refused,
    /// Interrupted by a signal; nothing was committed.
    Interrupted,
    /// A storage operation failed.
    Storage,
    /// A local file, cache or command failed.
    Io,
    /// A failure inside this process.
    Internal,
}

impl ErrorKind {
    /// The documented exit code of the `cairn` command for errors of this kind (README, "Exit
    /// codes"). This is the one place kinds become exit codes.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Usage => exit::USAGE,
            ErrorKind::Repository => exit::REPO,
            ErrorKind::Locked => exit::LOCKED,
            ErrorKind::Key => exit::KEY,
            ErrorKind::Interrupted => exit::INTERRUPTED,
            ErrorKind::NotFound
            | ErrorKind::Corrupt
            | ErrorKind::Refused
            | ErrorKind::Storage
            | ErrorKind::Io
            | ErrorKind::Internal => exit::ERROR,
        }
    }
}

/// The documented exit codes of the `cairn` command (README, "Exit codes").
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// Any error.
    pub const ERROR: i32 = 1;
    /// Usage error.
    pub const USAGE: i32 = 2;
    /// Backup made, but some files could not be read.
    pub const PARTIAL: i32 = 3;
    /// A drill passed every check but took longer than its recovery-time objective.
    pub const OVER_RTO: i32 = 4;
    /// Repository not found or invalid.
    pub const REPO: i32 = 10;
    /// Lease lost / repository locked.
    pub const LOCKED: i32 = 11;
    /// Wrong password or no key.
    pub const KEY: i32 = 12;
    /// Interrupted.
    pub const INTERRUPTED: i32 = 130;
}

/// `CommandFailed`'s stderr part: nothing, or the tail on its own lines.
fn stderr_tail(stderr: &str) -> String {
    if stderr.is_empty() {
        " (no standard error output)".into()
    } else {
        format!("; the end of its standard error:\n{stderr}")
    }
}

impl Error {
    /// Shorthand for a local I/O error at `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// Shorthand for a damaged stored object.
    pub fn corrupt(object: Object, reason: impl ToString) -> Self {
        Error::Corrupt { object: Damaged::Object(object), reason: reason.to_string() }
    }

    /// Shorthand for a damaged blob, read from `pack` when known.
    pub fn corrupt_blob(kind: BlobKind, id: BlobId, pack: Option<PackId>, reason: impl ToString) -> Self {
        Error::Corrupt { object: Damaged::Blob { kind, id, pack }, reason: reason.to_string() }
    }

    /// Shorthand for a refusal that nothing lifts.
    pub fn refused(reason: impl Into<String>) -> Self {
        Error::Refused { reason: reason.into(), lifted_by: None }
    }

    /// Shorthand for a refusal that `lifted_by` lifts.
    pub fn refused_unless(reason: impl Into<String>, lifted_by: Override) -> Self {
        Error::Refused { reason: reason.into(), lifted_by: Some(lifted_by) }
    }

    /// A storage error: operation `op` on object `path` failed with `source`.
    pub fn storage(op: &'static str, path: impl Into<String>, source: impl Into<SourceError>) -> Self {
        Error::Backend { op, path: path.into(), source: source.into(), not_found: false, exists: false }
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Usage(_) => ErrorKind::Usage,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::RepoNotFound(_) | Error::RepoInvalid { .. } => ErrorKind::Repository,
            Error::Locked(_) => ErrorKind::Locked,
            Error::WrongPassword | Error::WriteOnlyKey { .. } | Error::HostNotAllowed { .. } => ErrorKind::Key,
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::Refused { .. } | Error::WriterTooOld { .. } => ErrorKind::Refused,
            Error::Interrupted => ErrorKind::Interrupted,
            Error::Backend { .. } => ErrorKind::Storage,
            Error::Io { .. } | Error::CommandFailed { .. } | Error::Cache { .. } => ErrorKind::Io,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The exit code the `cairn` command uses for this error: [`ErrorKind::exit_code`] of its
    /// kind.
    pub fn exit_code(&self) -> i32 {
        self.kind().exit_code()
    }

    /// What lifts this error, when it is a refusal that something lifts.
    pub fn lifted_by(&self) -> Option<Override> {
        match self {
            Error::Refused { lifted_by, .. } => *lifted_by,
            _ => None,
        }
    }

    /// True when a storage read found no object.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Backend { not_found: true, .. })
    }

    /// True when create-if-not-exists found the object already there.
    pub fn is_exists(&self) -> bool {
        matches!(self, Error::Backend { exists: true, .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::SnapshotId;
    use std::error::Error as _;

    #[test]
    fn kinds_map_to_the_documented_exit_codes() {
        let cases = [
            (Error::Usage("x".into()), 2),
            (Error::NotFound("snapshot 1234".into()), 1),
            (Error::RepoNotFound("/r".into()), 10),
            (Error::RepoInvalid { location: "/r".into(), reason: "no config".into() }, 10),
            (Error::Locked("held".into()), 11),
            (Error::WrongPassword, 12),
            (Error::WriteOnlyKey { key: None }, 12),
            (Error::corrupt(Object::Snapshot(SnapshotId([1; 32])), "bad"), 1),
            (Error::refused_unless("no", Override::Force), 1),
            (Error::Interrupted, 130),
            (Error::storage("read", "index/x", "down"), 1),
            (Error::io("/x", std::io::Error::other("gone")), 1),
            (Error::Internal("worker".into()), 1),
        ];
        for (e, code) in cases {
            assert_eq!(e.exit_code(), code, "{e}");
            assert_eq!(e.kind().exit_code(), code, "{e}");
        }
    }

    #[test]
    fn messages_name_the_object_and_keep_the_cause() {
        let id = SnapshotId([0xab; 32]);
        let e = Error::corrupt(Object::Snapshot(id), "MAC mismatch");
        assert_eq!(e.to_string(), format!("snapshot {id}: MAC mismatch"));
        let b = Error::corrupt_blob(BlobKind::Tree, BlobId([1; 32]), Some(PackId([2; 32])), "bad");
        assert!(b.to_string().starts_with("tree blob 0101"), "{b}");
        assert!(b.to_string().contains(&format!("in pack {}", PackId([2; 32]))), "{b}");
        let s = Error::storage("read", "keys/k", std::io::Error::other("connection reset"));
        assert_eq!(s.to_string(), "storage read keys/k: connection reset");
        assert_eq!(s.source().map(|c| c.to_string()).as_deref(), Some("connection reset"));
        assert_eq!(Error::refused_unless("x", Override::AllowEmpty).lifted_by(), Some(Override::AllowEmpty));
        assert!(Error::WriteOnlyKey { key: Some(KeyId([3; 32])) }
            .to_string()
            .starts_with("key 03030303 is write-only"));
    }
}
