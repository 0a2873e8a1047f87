//! The library's error type. Every variant names the object or path it is about; the CLI maps
//! [`Error::exit_code`] to the documented exit codes.

use std::path::PathBuf;

/// Result alias for the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No key file opened with the given password.
    #[error("wrong password: no key file of the repository opens with it")]
    WrongPassword,
    /// There is no repository at the location.
    #[error("no cairn repository at {0}")]
    RepoNotFound(String),
    /// There is something at the location, but not a valid repository.
    #[error("{location}: not a valid cairn repository: {reason}")]
    RepoInvalid {
        /// Where.
        location: String,
        /// Why.
        reason: String,
    },
    /// A stored object failed to decode, authenticate or verify.
    #[error("{kind} {id}: {reason}")]
    Corrupt {
        /// Object kind ("pack", "index", "blob", ...).
        kind: &'static str,
        /// Its id or path.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// A storage operation failed.
    #[error("storage {op} {path}: {message}")]
    Backend {
        /// The operation ("read", "write", "list", ...).
        op: &'static str,
        /// The object path.
        path: String,
        /// What the service said.
        message: String,
        /// The object was missing.
        not_found: bool,
        /// The object already existed (create-if-not-exists refused).
        exists: bool,
    },
    /// A local file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The local path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A request that cannot be satisfied (bad argument, ambiguous prefix, ...).
    #[error("{0}")]
    Invalid(String),
    /// An object named by the user does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The operation was interrupted by a signal; nothing was committed.
    #[error("interrupted; nothing was committed")]
    Interrupted,
    /// The writer's lease lapsed, or a maintenance run holds the repository.
    #[error("lease: {0}")]
    Lease(String),
    /// The repository requires a newer writer.
    #[error("this repository requires cairn writer version {required} or newer to write (this is {have})")]
    WriterTooOld {
        /// Minimum from the config.
        required: u32,
        /// Ours.
        have: u32,
    },
    /// A stream source's command failed.
    #[error("command `{command}` failed: {status}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
    },
    /// The local cache failed.
    #[error("cache {path}: {message}")]
    Cache {
        /// The cache directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
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
    /// Repository not found or invalid.
    pub const REPO: i32 = 10;
    /// Lease lost / repository locked.
    pub const LOCKED: i32 = 11;
    /// Wrong password or no key.
    pub const KEY: i32 = 12;
    /// Interrupted.
    pub const INTERRUPTED: i32 = 130;
}

impl Error {
    /// Shorthand for a local I/O error at `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// Shorthand for a corrupt object.
    pub fn corrupt(kind: &'static str, id: impl ToString, reason: impl ToString) -> Self {
        Error::Corrupt { kind, id: id.to_string(), reason: reason.to_string() }
    }

    /// True when a storage read found no object.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Backend { not_found: true, .. })
    }

    /// True when create-if-not-exists found the object already there.
    pub fn is_exists(&self) -> bool {
        matches!(self, Error::Backend { exists: true, .. })
    }

    /// The exit code the `cairn` command uses for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::WrongPassword => exit::KEY,
            Error::RepoNotFound(_) | Error::RepoInvalid { .. } => exit::REPO,
            Error::Interrupted => exit::INTERRUPTED,
            Error::Lease(_) => exit::LOCKED,
            _ => exit::ERROR,
        }
    }
}
