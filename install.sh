#!/usr/bin/env bash
# One command from a fresh clone to a working `cairn` in ~/.cargo/bin: system packages, then the build.
set -euo pipefail
cd "$(dirname "$0")"
.ci/deps
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cairn-target}"
cargo install --locked --path . --root "${CAIRN_INSTALL_ROOT:-$HOME/.cargo}"
echo "installed: $(command -v cairn || echo "${CAIRN_INSTALL_ROOT:-$HOME/.cargo}/bin/cairn")"
