#!/usr/bin/env bash
# Release-profile variants side by side: sizes of each binary, then the same workload run by each binary in
# rotated order, round after round, so machine noise hits all of them alike. See benches/README.md
# ("Release build: profile variants and the download").
#
#   benches/release.sh SRC NAME=BIN [NAME=BIN ...]
#
# SRC is a directory tree to back up (a copy of benches/compare.sh's small corpus was used). Per round and binary:
# a fresh repository and cache, `init`, `backup SRC` (first), `backup SRC` (unchanged), `check --read-data`,
# `restore latest` to a tmpfs. Every restore is compared with SRC (`diff -r`, untimed). Each command is timed with
# /usr/bin/time (wall, user, sys, peak RSS). The summary gives per step and binary the median wall and median CPU
# (user + sys) seconds, and their ratio to the first binary (< 1: faster than the first).
#
# Settings: CAIRN_RELEASE_ROUNDS (default 5), CAIRN_RELEASE_DIR (work dir, default /var/tmp/cairn-release-bench),
# CAIRN_RELEASE_TMPFS (restore targets, default /dev/shm).
set -euo pipefail
export LC_ALL=C

[[ $# -ge 2 ]] || { sed -n 2,14p "$0" >&2; exit 2; }
SRC=$(realpath "$1"); shift
[[ -d $SRC ]] || { echo "not a directory: $SRC" >&2; exit 2; }
ROUNDS=${CAIRN_RELEASE_ROUNDS:-5}
DIR=${CAIRN_RELEASE_DIR:-/var/tmp/cairn-release-bench}
TMPFS=${CAIRN_RELEASE_TMPFS:-/dev/shm}
NAMES=() BINS=()
for a in "$@"; do
  [[ $a == *=* ]] || { echo "expected NAME=BIN, got $a" >&2; exit 2; }
  NAMES+=("${a%%=*}"); BINS+=("$(realpath "${a#*=}")")
  [[ -x ${BINS[-1]} ]] || { echo "not executable: ${BINS[-1]}" >&2; exit 2; }
done
N=${#NAMES[@]}

unset CAIRN_REPOSITORY CAIRN_PASSWORD_FILE CAIRN_PASSWORD_COMMAND CAIRN_CACHE_DIR CAIRN_NEW_PASSWORD
export CAIRN_PASSWORD=cairn-release-bench
RUN=$DIR/runs/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$RUN"
SCRATCH=$DIR/scratch
SHM=$(mktemp -d "$TMPFS/cairn-release-bench.XXXXXX")
trap 'rm -rf -- "$SCRATCH" "$SHM"' EXIT
TSV=$RUN/results.tsv
printf 'round\tname\tstep\twall\tuser\tsys\trss_kb\n' >"$TSV"

echo "== sizes (bytes): unstripped, stripped (strip --strip-all), xz -9e, zstd -19 of the stripped binary"
printf '%-12s %12s %12s %12s %12s\n' name unstripped stripped xz zstd
for i in $(seq 0 $((N - 1))); do
  s=$SHM/stripped
  strip --strip-all -o "$s" "${BINS[$i]}"
  printf '%-12s %12d %12d %12d %12d\n' "${NAMES[$i]}" "$(stat -c %s "${BINS[$i]}")" "$(stat -c %s "$s")" \
    "$(xz -9e -T1 -c "$s" | wc -c)" "$(zstd -19 -q -c "$s" | wc -c)"
  rm -f "$s"
done | tee "$RUN/sizes.txt"

timed() { # round name step cmd...
  local r=$1 n=$2 step=$3; shift 3
  if ! /usr/bin/time -o "$SHM/time" -f '%e %U %S %M' "$@" >"$RUN/$n-$step.log" 2>&1; then
    echo "FAILED: $n $step (round $r), see $RUN/$n-$step.log" >&2; exit 1
  fi
  read -r w u s m <"$SHM/time"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$n" "$step" "$w" "$u" "$s" "$m" >>"$TSV"
}

echo "== workload: $(du -sh "$SRC" | cut -f1) in $(find "$SRC" -type f | wc -l) files, $ROUNDS rounds; load: $(uptime)"
for r in $(seq 1 "$ROUNDS"); do
  for k in $(seq 0 $((N - 1))); do
    i=$(( (k + r - 1) % N ))
    n=${NAMES[$i]} b=${BINS[$i]}
    rm -rf -- "$SCRATCH"; mkdir -p "$SCRATCH"
    R=$SCRATCH/repo C=$SCRATCH/cache T=$SHM/restore
    rm -rf -- "$T"
    timed "$r" "$n" init "$b" -r "$R" --cache-dir "$C" init
    timed "$r" "$n" backup1 "$b" -r "$R" --cache-dir "$C" backup "$SRC"
    timed "$r" "$n" backup2 "$b" -r "$R" --cache-dir "$C" backup "$SRC"
    timed "$r" "$n" check_data "$b" -r "$R" --cache-dir "$C" check --read-data
    timed "$r" "$n" restore "$b" -r "$R" --cache-dir "$C" restore latest --target "$T"
    root=$(find "$T" -type d -path "*${SRC}" -print -quit)
    diff -r --no-dereference "$SRC" "$root" >/dev/null || { echo "FAILED: $n restore differs (round $r)" >&2; exit 1; }
    rm -rf -- "$T"
    echo "round $r: $n done ($(cut -d' ' -f1-3 /proc/loadavg))"
  done
done

echo "== medians over $ROUNDS rounds (wall s, CPU s = user + sys; ratio to ${NAMES[0]}); load at end: $(uptime)"
python3 - "$TSV" "${NAMES[@]}" <<'PY' | tee "$RUN/summary.txt"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
names = sys.argv[2:]
steps = []
for r in rows:
    if r["step"] not in steps:
        steps.append(r["step"])
med = {}
for n in names:
    for s in steps:
        rs = [r for r in rows if r["name"] == n and r["step"] == s]
        med[n, s] = (statistics.median(float(r["wall"]) for r in rs),
                     statistics.median(float(r["user"]) + float(r["sys"]) for r in rs),
                     max(int(r["rss_kb"]) for r in rs) // 1024)
print("| step | " + " | ".join(f"{n} wall / CPU s (ratio) / RSS MB" for n in names) + " |")
print("|---|" + "---|" * len(names))
for s in steps:
    cells = []
    for n in names:
        w, c, m = med[n, s]
        w0, c0, _ = med[names[0], s]
        cells.append(f"{w:.2f} / {c:.2f} ({w / w0:.2f} / {c / c0:.2f}) / {m}" if w0 and c0 else f"{w:.2f} / {c:.2f} / {m}")
    print(f"| {s} | " + " | ".join(cells) + " |")
PY
echo "results: $RUN"
