#!/usr/bin/env bash
# Peak memory of stream backups (issue 12: "a 50 GB dump must work with the same memory as a 50 MB one"): runs
# `cairn backup --command` on a generated stream under `/usr/bin/time -v` and prints the peak RSS and wall time of
# each run, against the backup memory budget of 100 MB (benches/README.md), and the peak while streaming (VmRSS
# sampled every 100 ms from the start of the first command; the whole run's peak is usually the key opening).
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
  /usr/bin/time -v "$BIN" backup "$@" --json >"$WORK/$name.json" 2>"$WORK/$name.time" &
  local timer=$! pid="" streaming=0 stream_rss=0 r
  # The whole run's peak is the key opening (argon2id, 64 MiB, freed before the backup starts); the stream's own
  # peak is the largest VmRSS sampled (every 100 ms) once cairn has started its first command.
  while kill -0 "$timer" 2>/dev/null; do
    [ -n "$pid" ] || pid=$(pgrep -P "$timer" | head -1 || true)
    if [ -n "$pid" ]; then
      [ "$streaming" = 1 ] || { pgrep -P "$pid" >/dev/null && streaming=1; }
      r=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
      if [ "$streaming" = 1 ] && [ -n "$r" ] && [ "$r" -gt "$stream_rss" ]; then stream_rss=$r; fi
    fi
    sleep 0.1
  done
  wait "$timer"
  local rss wall read
  rss=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$WORK/$name.time")
  wall=$(awk '/Elapsed \(wall clock\)/ {print $NF}' "$WORK/$name.time")
  read=$(sed -n 's/.*"bytes_read": *\([0-9]*\).*/\1/p' "$WORK/$name.json")
  printf '%-28s read %6d MiB  peak RSS %6.1f MiB  while streaming %6.1f MiB  wall %s\n' "$name" $((read / 1048576)) \
    "$(echo "$rss / 1024" | bc -l)" "$(echo "$stream_rss / 1024" | bc -l)" "$wall"
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
