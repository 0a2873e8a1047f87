#!/usr/bin/env bash
# Runs every test of cairn: unit, property, spec test vectors, the backend conformance suite and the black-box CLI
# suite, with the storage servers (S3, SFTP, WebDAV), emulators (GCS, Azure) and database servers (PostgreSQL,
# MariaDB, Redis: docs/databases.md's recipes) running on loopback.
# Uses one cargo target directory outside the clone, so repeated runs (and CI) reuse the RocksDB build.
#
# The servers are installed if missing (.ci/servers), started by scripts/servers/up.sh on random free ports, and
# stopped on exit. Their tests run with CAIRN_TEST_SERVERS=required: a server that is missing FAILS them. A plain
# `cargo test` (without these variables) skips the server tests with a notice. CAIRN_TEST_SERVERS=off ./test.sh
# runs without servers (skipping their tests) — never do that in CI.
set -euo pipefail
cd "$(dirname "$0")"
.ci/deps
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cairn-target}"
if [ "${CAIRN_TEST_SERVERS:-required}" != off ]; then
  .ci/servers
  state="$(mktemp -d "${TMPDIR:-/tmp}/cairn-servers.XXXXXX")"
  trap 'scripts/servers/down.sh "$state"; rm -rf "$state"' EXIT
  # Tests of a server that is missing fail from here on, even if up.sh itself failed to say so.
  export CAIRN_TEST_SERVERS=required
  servers="$(scripts/servers/up.sh "$state")"   # an assignment: a failing up.sh stops the script (set -e)
  eval "$servers"
else
  unset CAIRN_TEST_SERVERS
fi
cargo test --locked "$@"
