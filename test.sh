#!/usr/bin/env bash
# Runs every test of cairn: unit, property, spec test vectors and the black-box CLI suite.
# Uses one cargo target directory outside the clone, so repeated runs (and CI) reuse the RocksDB build.
set -euo pipefail
cd "$(dirname "$0")"
.ci/deps
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cairn-target}"
exec cargo test --locked "$@"
