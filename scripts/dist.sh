#!/usr/bin/env bash
# Builds the release download: the `cairn` binary of the release profile (Cargo.toml), stripped, with its debug
# symbols split into a separate file that debuggers and panic backtraces find through a .gnu_debuglink.
#
#   scripts/dist.sh                     # build, split, pack into dist/ (CAIRN_DIST_DIR)
#   CAIRN_DIST_BIN=path/to/cairn scripts/dist.sh     # pack an already built release binary, do not build
#
# Writes, for VERSION from Cargo.toml and the host's target triple (x86_64-linux on the dev box):
#   cairn-VERSION-TARGET.tar.xz          the download: cairn-VERSION-TARGET/{cairn, README.md, man/, completions/}
#   cairn-VERSION-TARGET-debug.tar.xz    cairn.debug: the symbols and line tables of exactly that binary
#   SHA256SUMS                           sha256sum of both archives
# and fails when the download exceeds CAIRN_DIST_MAX_MB (default 30, in 10^6 bytes) or when the symbol file does not
# resolve an address of the stripped binary to a source line. See README.md ("Release builds").
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cairn-target}"
OUT=$(realpath -m "${CAIRN_DIST_DIR:-dist}")
MAX_MB=${CAIRN_DIST_MAX_MB:-30}
for t in objcopy objdump nm readelf addr2line xz sha256sum tar; do
  command -v "$t" >/dev/null || { echo "dist.sh: $t is missing (Debian: apt-get install binutils xz-utils)" >&2; exit 1; }
done

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
triple=$(rustc -vV | sed -n 's/^host: //p')
case "$triple" in
  x86_64-unknown-linux-gnu) target=x86_64-linux ;;
  aarch64-unknown-linux-gnu) target=aarch64-linux ;;
  *) target=$triple ;;
esac
name=cairn-$version-$target

if [[ -n ${CAIRN_DIST_BIN:-} ]]; then
  bin=$CAIRN_DIST_BIN
else
  cargo build --locked --release --bin cairn
  bin=$CARGO_TARGET_DIR/release/cairn
fi
[[ -x $bin ]] || { echo "dist.sh: no binary at $bin" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT
stage=$work/$name
mkdir -p "$stage/man" "$stage/completions" "$work/debug" "$OUT"

# 1. The symbols: every debug section and the symbol table, compressed (gdb, addr2line and Rust's backtraces read
#    compressed sections). 2. The binary without debug sections but with its symbol table (+0.8 MB of xz: a panic
#    backtrace names its functions even without cairn.debug), pointing at cairn.debug by name and CRC.
objcopy --only-keep-debug --compress-debug-sections=zlib "$bin" "$work/debug/cairn.debug"
objcopy --strip-debug --remove-section=.comment \
  --add-gnu-debuglink="$work/debug/cairn.debug" "$bin" "$stage/cairn"
chmod 0755 "$stage/cairn"
readelf --string-dump=.gnu_debuglink "$stage/cairn" | grep 'cairn.debug' >/dev/null || {
  echo "dist.sh: the stripped binary has no .gnu_debuglink to cairn.debug" >&2; exit 1; }

# The symbol file must resolve the stripped binary's code: the address of a function of cairn's own (the first in
# the symbol table) must map to a line of a source file under src/.
read -r addr fn < <(nm -C --defined-only "$work/debug/cairn.debug" | awk '$2 ~ /^[tT]$/ && $3 ~ /^cairn::/ { print $1, $3; exit }')
line=$(addr2line -e "$work/debug/cairn.debug" "0x$addr")
case "$line" in
  */src/*.rs:[0-9]*) ;;
  *) echo "dist.sh: cairn.debug does not resolve $fn (0x$addr) to a line of src/: got '$line'" >&2; exit 1 ;;
esac

"$stage/cairn" --version >/dev/null
# The newest symbol versions the binary asks of the C and C++ runtimes: the oldest system it runs on.
newest() { objdump -T "$stage/cairn" | { grep -o "$1_[0-9.]*" || true; } | sed "s/$1_//" | sort -V | tail -n1; }
glibc=$(newest GLIBC)
glibcxx=$(newest GLIBCXX)
"$stage/cairn" man --dir "$stage/man" >/dev/null
for sh in bash zsh fish; do
  "$stage/cairn" completion "$sh" >"$stage/completions/cairn.$sh"
done
{
  echo "cairn $version ($target), built from $(git rev-parse --short=12 HEAD 2>/dev/null || echo 'a source tree')"
  echo "with $(rustc -V). Needs Linux with glibc $glibc or newer${glibcxx:+ and libstdc++6 (GLIBCXX $glibcxx or newer)}."
  echo
  echo "  cairn                     the program: copy it into a directory on PATH"
  echo "  man/                      man pages: copy to ~/.local/share/man/man1 (or /usr/local/share/man/man1)"
  echo "  completions/cairn.SHELL   shell completions (bash, zsh, fish)"
  echo
  echo "Debug symbols are a separate download, $name-debug.tar.xz: put its cairn.debug next to"
  echo "the cairn binary and panic backtraces (RUST_BACKTRACE=1) and gdb show functions, files and lines."
  echo
  sed -n '/^## A first backup and restore/,/^## /{/^## [^A]/!p}' README.md
  echo "The full manual: README.md and docs/ of the source repository."
} >"$stage/README.md"
for f in LICENSE LICENSE-APACHE LICENSE-MIT COPYRIGHT; do
  [[ -f $f ]] && cp "$f" "$stage/"
done

# Reproducible archive metadata: fixed owner, order and mtime (the commit's time when there is one).
mtime=$(git log -1 --format=%ct 2>/dev/null || date +%s)
tarx() { # archive dir-with-entry entry
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" -C "$2" -cf - "$3" | xz -9e -T1 >"$1"
}
tarx "$OUT/$name.tar.xz" "$work" "$name"
tarx "$OUT/$name-debug.tar.xz" "$work/debug" cairn.debug
(cd "$OUT" && sha256sum "$name.tar.xz" "$name-debug.tar.xz" >SHA256SUMS)

size=$(stat -c %s "$OUT/$name.tar.xz")
echo "dist.sh: $OUT/$name.tar.xz: $size bytes (binary $(stat -c %s "$stage/cairn") bytes stripped," \
  "from $(stat -c %s "$bin")); symbols $OUT/$name-debug.tar.xz: $(stat -c %s "$OUT/$name-debug.tar.xz") bytes"
if (( size > MAX_MB * 1000000 )); then
  echo "dist.sh: the download is over $MAX_MB MB" >&2
  exit 1
fi
