#!/usr/bin/env bash
# Peak memory of stream backups (issue 12: "a 50 GB dump must work with the same memory as a 50 MB one"): runs
# `cairn backup --command` on a generated stream under `/usr/bin/time -v` and prints the peak RSS and wall time of
# each run, against the backup memory budget of 100 MB (benches/README.md).
#
# Runs, each into a fresh repository on the local file system:
#   1. one command streaming SIZE bytes (default 2 GiB) of /dev/urandom;
#   2. the same at SIZE/8, to show the peak does not grow with the stream;
#   3. four commands of SIZE/4 each at once (the default --command-concurrency), plus a directory, in one snapshot.
#
# Usage: benches/stream-memory.sh
#   CAIRN_BIN             cairn binary (default: $CARGO_TARGET_DIR or ~/.cache/cairn-target, release/cairn)
#   CAIRN_BENCH_STREAM    stream size in bytes, as `head -c` takes it (default 2G)
#   CAIRN_BENCH_DIR       work directory (default /var/tmp); needs about 2 x SIZE free
set -euo pipefail
BIN="${CAIRN_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/cairn-target}/release/cairn}"
SIZE="${CAIRN_BENCH_STREAM:-2G}"
BYTES=$(numfmt --from=iec "$SIZE")
[ -x "$BIN" ] || { echo "no cairn binary at $BIN (cargo build --release, or set CAIRN_BIN)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "GNU time is missing (apt-get install time)" >&2; exit 1; }
WORK="$(mktemp -d "${CAIRN_BENCH_DIR:-/var/tmp}/cairn-stream-mem.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
export CAIRN_PASSWORD=bench

run() { # NAME ARGS...: a fresh repository, one timed backup, one line of results
  local name="$1"; shift
  export CAIRN_REPOSITORY="$WORK/$name/repo" CAIRN_CACHE_DIR="$WORK/$name/cache"
  "$BIN" init >/dev/null
  /usr/bin/time -v "$BIN" backup "$@" --json >"$WORK/$name.json" 2>"$WORK/$name.time"
  local rss wall read
  rss=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$WORK/$name.time")
  wall=$(awk '/Elapsed \(wall clock\)/ {print $NF}' "$WORK/$name.time")
  read=$(sed -n 's/.*"bytes_read": *\([0-9]*\).*/\1/p' "$WORK/$name.json")
  printf '%-28s read %6d MiB  peak RSS %6.1f MiB  wall %s\n' "$name" $((read / 1048576)) "$(echo "$rss / 1024" | bc -l)" "$wall"
  rm -rf "${WORK:?}/$name"
}

echo "cairn: $BIN ($("$BIN" --version)); stream $SIZE; $(nproc) cores"
run "one-stream-$SIZE" --command "big.bin=head -c $BYTES /dev/urandom"
run "one-stream-$((BYTES / 8 / 1048576))MiB" --command "big.bin=head -c $((BYTES / 8)) /dev/urandom"
mkdir -p "$WORK/dir"
head -c $((64 * 1048576)) /dev/urandom >"$WORK/dir/file.bin"
run "dir+four-streams-$SIZE" "$WORK/dir" \
  --command "a/1.bin=head -c $((BYTES / 4)) /dev/urandom" --command "a/2.bin=head -c $((BYTES / 4)) /dev/urandom" \
  --command "b/3.bin=head -c $((BYTES / 4)) /dev/urandom" --command "b/4.bin=head -c $((BYTES / 4)) /dev/urandom"
