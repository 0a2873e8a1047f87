//! Library-level tests: what a write-only key can no longer write (configs, prune marks, waits, locks) nor claim
//! (snapshots of other keys and hosts), format
//! conformance (spec vectors, codecs, write-only keys), crash safety under injected
//! storage faults, prune (crash points, concurrency), repair, restore against hostile trees and planted symlinks
//! (nothing outside the target changes), hostile trees written by a write-only key, the cold-storage promise (metadata operations read
//! nothing under `data/`), the config chain under damage, and the backend conformance suite (local, memory, OpenDAL
//! fs, and the S3/SFTP/WebDAV servers `./test.sh` starts). The second integration-test binary of the crate, beside
//! `tests/cli.rs` (each links RocksDB).

#[path = "support/alloc.rs"]
mod alloc;
#[path = "library/attribution.rs"]
mod attribution;
#[path = "library/auth.rs"]
mod auth;
#[path = "library/bundles.rs"]
mod bundles;
#[path = "library/cold.rs"]
mod cold;
#[path = "library/config_chain.rs"]
mod config_chain;
#[path = "library/drill.rs"]
mod drill;
#[path = "library/faults.rs"]
mod faults;
#[path = "library/filescache.rs"]
mod filescache;
#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "library/forged_index.rs"]
mod forged_index;
#[path = "library/format.rs"]
mod format;
#[path = "library/hostile.rs"]
mod hostile;
#[path = "library/hostile_restore.rs"]
mod hostile_restore;
#[path = "library/inline.rs"]
mod inline;
#[path = "library/ledger.rs"]
mod ledger;
#[path = "library/limits.rs"]
mod limits;
#[path = "library/mount.rs"]
mod mount;
#[path = "library/object_lock.rs"]
mod object_lock;
#[path = "library/prune.rs"]
mod prune;
#[path = "library/races.rs"]
mod races;
#[path = "library/repair.rs"]
mod repair;
#[path = "library/report.rs"]
mod report;
#[path = "library/restore_batches.rs"]
mod restore_batches;
#[path = "library/revocation.rs"]
mod revocation;
#[path = "library/rewrite.rs"]
mod rewrite;
#[path = "library/secret_keys.rs"]
mod secret_keys;
#[path = "support/servers.rs"]
mod servers;
#[path = "library/session_bounds.rs"]
mod session_bounds;
#[path = "library/sources.rs"]
mod sources;
#[path = "library/storage.rs"]
mod storage;
#[path = "library/verification.rs"]
mod verification;
