//! Library-level tests: format conformance (spec vectors, codecs, write-only keys) and crash safety under injected
//! storage faults. The second integration-test binary of the crate, beside `tests/cli.rs` (each links RocksDB).

#[path = "library/faults.rs"]
mod faults;
#[path = "library/format.rs"]
mod format;
#[path = "library/prune.rs"]
mod prune;
