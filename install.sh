#!/usr/bin/env bash
# One command from a fresh clone to a working `cairn` in ~/.cargo/bin, with its man pages: system packages, then
# the build, then `cairn man` (the pages are generated from the same clap definition as the flags).
set -euo pipefail
cd "$(dirname "$0")"
.ci/deps
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cairn-target}"
root="${CAIRN_INSTALL_ROOT:-$HOME/.cargo}"
cargo install --locked --path . --root "$root"
if [ -n "${CAIRN_INSTALL_ROOT:-}" ]; then
    man_dir="$CAIRN_INSTALL_ROOT/share/man/man1"
else
    man_dir="${XDG_DATA_HOME:-$HOME/.local/share}/man/man1"
fi
"$root/bin/cairn" man --dir "$man_dir"
echo "installed: $(command -v cairn || echo "$root/bin/cairn"); man pages in $man_dir"
