#!/usr/bin/env bash
# Backup throughput to a local S3 server (s3s-fs on loopback) against backup to local disk, same corpus, same
# release binary, fresh repository and cache each round. Prints both wall times (median of the rounds) and the
# ratio S3/local throughput (= local time / S3 time; 100 % means S3 costs nothing extra). Then it restores the
# last round's snapshot from each repository once (to a tmpfs when /dev/shm is one) and prints the same ratio for
# the restore; CAIRN_BENCH_RESTORE=0 skips it. Each line also gives the peak RSS (GNU time's maximum resident set
# size; for the backups the largest of the rounds).
#
#   benches/s3.sh [CORPUS_DIR...]     default: /var/tmp/cairn-bench/corpus-200mb (made by benches/compare.sh)
#   env CAIRN_BENCH_ROUNDS (default 3), CAIRN_BIN (default: build --release), CAIRN_BENCH_WORK (default
#       /var/tmp/cairn-bench-s3: the local repository and the S3 server's data both live there, on one disk)
# Needs s3s-fs (.ci/servers installs it), curl and GNU time (/usr/bin/time).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
if [ $# -gt 0 ]; then CORPUS=("$@"); else CORPUS=(/var/tmp/cairn-bench/corpus-200mb); fi
ROUNDS="${CAIRN_BENCH_ROUNDS:-3}"
WORK="${CAIRN_BENCH_WORK:-/var/tmp/cairn-bench-s3}"
for c in "${CORPUS[@]}"; do
  [ -d "$c" ] || { echo "no corpus at $c (run benches/compare.sh once, or name directories)" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "GNU time (/usr/bin/time, Debian package time) is required" >&2; exit 2; }
if [ -z "${CAIRN_BIN:-}" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cairn-target}"
  (cd "$root" && cargo build --release --locked --bin cairn >&2)
  CAIRN_BIN="$CARGO_TARGET_DIR/release/cairn"
fi
rm -rf "$WORK"; mkdir -p "$WORK"
trap 'kill "$(cat "$WORK/s3/server.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$WORK"' EXIT
eval "$(env -u S3_PORT -u S3_ACCESS_KEY -u S3_SECRET_KEY -u S3_BUCKET "$root/scripts/servers/start-s3.sh" "$WORK/s3")"
export CAIRN_PASSWORD=bench AWS_ACCESS_KEY_ID="$S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$S3_SECRET_KEY"
size_mb=$(du -scm "${CORPUS[@]}" | tail -1 | cut -f1)
echo "corpus ${CORPUS[*]} (${size_mb} MB), $ROUNDS rounds, binary $CAIRN_BIN" >&2

# timed FILE CMD...: runs CMD, writing "WALL_S MAXRSS_KIB" to FILE.
timed() { local f=$1; shift; /usr/bin/time -f "%e %M" -o "$f" "$@"; }
# run REPO_URL: init + one backup with a fresh cache; prints the backup's wall seconds and peak RSS (KiB).
run() {
  local cache="$WORK/cache"; rm -rf "$cache"
  "$CAIRN_BIN" -q -r "$1" --cache-dir "$cache" -o "s3.endpoint=$S3_ENDPOINT" init >/dev/null
  timed "$WORK/time" "$CAIRN_BIN" -q -r "$1" --cache-dir "$cache" -o "s3.endpoint=$S3_ENDPOINT" backup "${CORPUS[@]}" >/dev/null
  cat "$WORK/time"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: > "$WORK/local.t"; : > "$WORK/s3.t"
for i in $(seq 1 "$ROUNDS"); do
  rm -rf "$WORK/local-repo"
  l=$(run "$WORK/local-repo"); echo "$l" >> "$WORK/local.t"
  s=$(run "s3://$S3_BUCKET/round-$i"); echo "$s" >> "$WORK/s3.t"
  echo "round $i: local ${l% *} s (${l#* } KiB), s3 ${s% *} s (${s#* } KiB)" >&2
done
L=$(cut -d' ' -f1 "$WORK/local.t" | median); S=$(cut -d' ' -f1 "$WORK/s3.t" | median)
LM=$(cut -d' ' -f2 "$WORK/local.t" | sort -n | tail -1); SM=$(cut -d' ' -f2 "$WORK/s3.t" | sort -n | tail -1)
awk -v l="$L" -v s="$S" -v mb="$size_mb" -v lm="$LM" -v sm="$SM" 'BEGIN {
  printf "backup local: %.2f s (%.0f MB/s), peak %d KiB\nbackup s3:    %.2f s (%.0f MB/s), peak %d KiB\nS3/local throughput: %.0f %%\n",
         l, mb / l, lm, s, mb / s, sm, 100 * l / s }'
[ "${CAIRN_BENCH_RESTORE:-1}" = 1 ] || exit 0

# restore REPO_URL: the latest snapshot into a fresh target, with whatever cache is in $WORK/cache; prints wall
# seconds and peak RSS (KiB).
restore() {
  local target="$TARGET_BASE/restore"; rm -rf "$target"
  timed "$WORK/time" "$CAIRN_BIN" -q -r "$1" --cache-dir "$WORK/cache" -o "s3.endpoint=$S3_ENDPOINT" restore latest \
    --target "$target" >/dev/null
  rm -rf "$target"
  cat "$WORK/time"
}
if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then TARGET_BASE=$(mktemp -d /dev/shm/cairn-s3-restore.XXXXXX)
else TARGET_BASE="$WORK"; fi
trap 'kill "$(cat "$WORK/s3/server.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$WORK" "$TARGET_BASE"' EXIT
# Each restore starts with an empty cache, as one on a new machine does.
rl=$(rm -rf "$WORK/cache"; restore "$WORK/local-repo")
rs=$(rm -rf "$WORK/cache"; restore "s3://$S3_BUCKET/round-$ROUNDS")
awk -v l="${rl% *}" -v s="${rs% *}" -v mb="$size_mb" -v lm="${rl#* }" -v sm="${rs#* }" 'BEGIN {
  printf "restore local: %.2f s (%.0f MB/s), peak %d KiB\nrestore s3:    %.2f s (%.0f MB/s), peak %d KiB\nS3/local restore throughput: %.0f %%\n",
         l, mb / l, lm, s, mb / s, sm, 100 * l / s }'
