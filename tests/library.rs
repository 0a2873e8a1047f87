//! Library-level tests: format conformance (spec vectors, codecs, write-only keys), crash safety under injected
//! storage faults, and the backend conformance suite (local, memory, OpenDAL fs, and the S3/SFTP/WebDAV servers
//! `./test.sh` starts). The second integration-test binary of the crate, beside `tests/cli.rs` (each links RocksDB).

#[path = "library/faults.rs"]
mod faults;
#[path = "library/format.rs"]
mod format;
#[path = "support/servers.rs"]
mod servers;
#[path = "library/storage.rs"]
mod storage;
