//! Library-level tests: format conformance (spec vectors, codecs, write-only keys), crash safety under injected
//! storage faults, the cold-storage promise (metadata operations read nothing under `data/`) and the config chain
//! under damage. The second integration-test binary of the crate, beside `tests/cli.rs` (each links RocksDB).

#[path = "library/cold.rs"]
mod cold;
#[path = "library/config_chain.rs"]
mod config_chain;
#[path = "library/faults.rs"]
mod faults;
#[path = "library/format.rs"]
mod format;
#[path = "library/prune.rs"]
mod prune;
#[path = "library/repair.rs"]
mod repair;
