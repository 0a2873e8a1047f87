#!/usr/bin/env bash
# Scale curve (issue 11, benches/README.md "Scale"): grows one repository to 10 k, 1 M and 10 M small data blobs
# through cairn's own writer (benches/scale.rs), and at each size measures, under /usr/bin/time -v (wall, CPU, peak
# RSS), each cairn binary given, interleaved step by step:
#   rebuild  the local cache rebuilt from scratch: the cache directory removed, then `ls` of one directory of 1000
#            files of the latest grown snapshot (its first read syncs the whole index into the cache)
#   backup   a 1 GB incremental backup of new pseudo-random data (a file written untimed before each run), with
#            the cache just rebuilt (so it measures the backup, not the sync of what the generator added)
#   snapshots, check (structure), prune --dry-run
#   prune-mark, prune-sweep  (first binary only) the incremental snapshots forgotten, then pruned for real
#            (`--grace 0s --force`, twice: the mark, then the sweep, which replaces every index file), so the disk
#            holds only the grown blobs
#   resync   each binary's first sync after that sweep: `ls` as for rebuild, with a copy of its cache taken before
#            the sweep (every index file it ingested is gone: it forgets its blob map and ingests the new files)
# Before growing, `backup` is measured on the empty repository too (the throughput baseline).
#
# Usage: benches/scale.sh
#   CAIRN_SCALE_BINS   "name=path ..." binaries to compare (default: "cur=$CARGO_TARGET_DIR/debug/cairn")
#   CAIRN_SCALE_GEN    the generator (default: built with `cargo build --bench scale`, opt-level 3)
#   CAIRN_SCALE_DIR    work directory (default /var/tmp/cairn-scale; 10 M blobs need about 4 GB plus 1 GB per
#                      binary for the incremental backups)
#   CAIRN_SCALE_STEPS  blob counts (default "10000 1000000 10000000")
#   CAIRN_SCALE_MB     incremental backup size in MB (default 1000)
#   CAIRN_SCALE_SEED   generator seed (default 1)
#   CAIRN_SCALE_KEEP   1: keep the repository (it is grown further on the next run)
# Results: $CAIRN_SCALE_DIR/results.tsv (N, binary, step, wall s, user s, sys s, peak RSS KiB, exit, load1) and a
# summary table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${CAIRN_SCALE_DIR:-/var/tmp/cairn-scale}"
STEPS="${CAIRN_SCALE_STEPS:-10000 1000000 10000000}"
MB="${CAIRN_SCALE_MB:-1000}"
SEED="${CAIRN_SCALE_SEED:-1}"
TARGET="${CARGO_TARGET_DIR:-$HOME/.cache/cairn-target}"
[ -x /usr/bin/time ] || { echo "GNU time is missing (apt-get install time)" >&2; exit 1; }
if [ -z "${CAIRN_SCALE_GEN:-}" ] || [ -z "${CAIRN_SCALE_BINS:-}" ]; then
  CARGO_PROFILE_DEV_OPT_LEVEL=3 CARGO_PROFILE_DEV_DEBUG=false nice -n 5 cargo build --locked --bin cairn --bench scale \
    --message-format=json-render-diagnostics >"$DIR.build.json"
fi
GEN="${CAIRN_SCALE_GEN:-$(sed -n 's/.*"executable":"\([^"]*\/scale-[0-9a-f]*\)".*/\1/p' "$DIR.build.json" | tail -1)}"
BINS="${CAIRN_SCALE_BINS:-cur=$TARGET/debug/cairn}"
[ -x "$GEN" ] || { echo "no generator at $GEN" >&2; exit 1; }
mkdir -p "$DIR"
REPO="$DIR/repo"
RES="$DIR/results.tsv"
[ -f "$RES" ] || printf 'blobs\tbin\tstep\twall_s\tuser_s\tsys_s\tmaxrss_kib\texit\tload1\n' >"$RES"
export CAIRN_PASSWORD="cairn scale" CAIRN_REPOSITORY="$REPO"
read -r -a NAMES <<<"$(for b in $BINS; do printf '%s ' "${b%%=*}"; done)"
bin_of() { for b in $BINS; do if [ "${b%%=*}" = "$1" ]; then echo "${b#*=}"; fi; done; }
ROUND=0

measure() { # N NAME STEP ARGS...: one timed run of binary NAME, one line of results
  local n="$1" name="$2" step="$3"; shift 3
  local bin load t="$DIR/time.$name.$step"
  bin="$(bin_of "$name")"
  load=$(cut -d' ' -f1 /proc/loadavg)
  local rc=0
  CAIRN_CACHE_DIR="${MEASURE_CACHE:-$DIR/cache-$name}" nice -n 5 /usr/bin/time -v "$bin" "$@" >"$DIR/out.$name.$step" 2>"$t" || rc=$?
  local wall user sys rss
  wall=$(awk '/Elapsed \(wall clock\)/ {n=split($NF,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$t")
  user=$(awk -F': ' '/User time/ {print $2}' "$t")
  sys=$(awk -F': ' '/System time/ {print $2}' "$t")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$t")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$name" "$step" "$wall" "$user" "$sys" "$rss" "$rc" "$load" \
    | tee -a "$RES"
  [ "$rc" = 0 ] || { echo "  ($name $step failed, exit $rc:)"; tail -3 "$t"; }
}

order() { # the binaries, rotated by round, so no one always runs first
  local k=$((ROUND % ${#NAMES[@]}))
  echo "${NAMES[@]:$k}" "${NAMES[@]:0:$k}"
}

backup_step() { # N: one incremental backup of new data per binary
  local name
  for name in $(order); do
    ROUND=$((ROUND + 1))
    "$GEN" --random-file "$DIR/input.bin" --bytes $((MB * 1000000)) --seed $((SEED * 1000 + ROUND))
    # Written back before the timed run: a backup that must write while the kernel writes back the input (or
    # the generator's gigabytes) is throttled, and timed the disk, not cairn (2.2x the empty repository's).
    sync
    measure "$1" "$name" backup backup --tag scale-incr "$DIR/input.bin"
    rm -f "$DIR/input.bin"
  done
}

measure_all() { # N
  local n="$1" name
  for name in $(order); do
    rm -rf "$DIR/cache-$name"
    measure "$n" "$name" rebuild ls --tag scale latest:/b00000/d00000000
  done
  backup_step "$n"
  for step in snapshots check prune; do
    for name in $(order); do
      case $step in
        snapshots) measure "$n" "$name" snapshots snapshots ;;
        check) measure "$n" "$name" check check ;;
        prune) measure "$n" "$name" prune prune --dry-run ;;
      esac
    done
    ROUND=$((ROUND + 1))
  done
}

prune_steps() { # N: forget the incremental backups; prune them (measured, first binary); each binary's resync
  local n="$1" first="${NAMES[0]}" bin ids name
  bin="$(bin_of "$first")"
  ids=$(CAIRN_CACHE_DIR="$DIR/cache-$first" "$bin" snapshots --tag scale-incr --json \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); d=d.get("snapshots", d) if isinstance(d, dict) else d; print(" ".join(s["id"] for s in d))')
  [ -n "$ids" ] || return 0
  # shellcheck disable=SC2086
  CAIRN_CACHE_DIR="$DIR/cache-$first" "$bin" forget $ids >/dev/null
  measure "$n" "$first" prune-mark prune --grace 0s --force
  for name in "${NAMES[@]}"; do
    rm -rf "$DIR/stale-$name"
    cp -a "$DIR/cache-$name" "$DIR/stale-$name"
  done
  measure "$n" "$first" prune-sweep prune --grace 0s --force
  for name in $(order); do # (no grown snapshot to list before the first size)
    [ "$n" = 0 ] || MEASURE_CACHE="$DIR/stale-$name" measure "$n" "$name" resync ls --tag scale latest:/b00000/d00000000
    rm -rf "$DIR/stale-$name"
  done
  ROUND=$((ROUND + 1))
}

echo "scale: $DIR; generator $GEN; binaries $BINS; steps $STEPS; $(nproc) cores; $(df -h --output=avail / | tail -1) free"
"$GEN" --repo "$REPO" --cache "$DIR/gen-cache" --state "$DIR/grow.state" --blobs 0 --seed "$SEED"
have=$(cut -d' ' -f2 "$DIR/grow.state" 2>/dev/null | head -1 || echo 0)
if [ "${have:-0}" = 0 ]; then
  backup_step 0
  prune_steps 0
fi
for n in $STEPS; do
  s=$(date +%s)
  nice -n 5 "$GEN" --repo "$REPO" --cache "$DIR/gen-cache" --state "$DIR/grow.state" --blobs "$n" --seed "$SEED"
  echo "grew to $n blobs in $(($(date +%s) - s)) s; repository $(du -sh "$REPO" | cut -f1); load $(cut -d' ' -f1-3 /proc/loadavg)"
  measure_all "$n"
  prune_steps "$n"
done
column -t -s $'\t' "$RES"
[ "${CAIRN_SCALE_KEEP:-0}" = 1 ] || rm -rf "$REPO" "$DIR"/cache-* "$DIR"/stale-* "$DIR/gen-cache" "$DIR/grow.state"
