//! Black-box integration tests of the `cairn` command-line program.
//!
//! Every test runs the real binary (`CARGO_BIN_EXE_cairn`) against a repository, a cache directory and source
//! trees in a private temporary directory; nothing here calls into the library. The contract the tests check is
//! `docs/cli-contract.md`.
//!
//! This is deliberately the only integration-test binary of the crate (each test binary links RocksDB); the tests
//! are split into modules under `tests/cli/`.

#[path = "cli/common.rs"]
mod common;
#[path = "cli/manifest.rs"]
mod manifest;
#[path = "support/servers.rs"]
mod servers;

#[path = "cli/attribution.rs"]
mod attribution;
#[path = "cli/check.rs"]
mod check;
#[path = "cli/contract.rs"]
mod contract;
#[path = "cli/control.rs"]
mod control;
#[path = "cli/copy.rs"]
mod copy;
#[path = "cli/corruption.rs"]
mod corruption;
#[path = "cli/databases.rs"]
mod databases;
#[path = "cli/dedup.rs"]
mod dedup;
#[path = "cli/drill.rs"]
mod drill;
#[path = "cli/forget.rs"]
mod forget;
#[path = "cli/grammar.rs"]
mod grammar;
#[path = "cli/hostile_restore.rs"]
mod hostile_restore;
#[path = "cli/inspect.rs"]
mod inspect;
#[path = "cli/jobs.rs"]
mod jobs;
#[path = "cli/jobs_examples.rs"]
mod jobs_examples;
#[path = "cli/ledger.rs"]
mod ledger;
#[path = "cli/local_user.rs"]
mod local_user;
#[path = "cli/metrics.rs"]
mod metrics;
#[path = "cli/options.rs"]
mod options;
#[path = "cli/prune.rs"]
mod prune;
#[path = "cli/remote.rs"]
mod remote;
#[path = "cli/repair.rs"]
mod repair;
#[path = "cli/report.rs"]
mod report;
#[path = "cli/rewrite.rs"]
mod rewrite;
#[path = "cli/roundtrip.rs"]
mod roundtrip;
#[path = "cli/safety.rs"]
mod safety;
#[path = "cli/secret_keys.rs"]
mod secret_keys;
#[path = "cli/serve.rs"]
mod serve;
#[path = "cli/serve_web.rs"]
mod serve_web;
#[path = "cli/sources.rs"]
mod sources;
#[path = "cli/status.rs"]
mod status;
#[path = "cli/streams.rs"]
mod streams;
#[path = "cli/tagmount.rs"]
mod tagmount;
