#!/usr/bin/env bash
# Load benchmark of `cairn serve` (issue 14; docs/api.md): 200 concurrent API clients listing and downloading for
# 60 s against a repository of a given size, while slow clients read a download at one byte per second and
# disconnecting clients drop downloads midway. Every downloaded byte is compared with the source (regenerated from
# its seed: benches/serve-load/client.rs), every listing must name the file it was asked about; any error, wrong byte
# or second in which no request completed fails the run (exit 1). Prints p50/p90/p99/max latency per request kind.
#
# The repository is built once per size and reused: BATCHES snapshots of one directory, each about SIZE/BATCHES of
# incompressible files (3 KiB to 8 MiB, one 48 MiB file per batch), generated, backed up and deleted batch by batch
# (the disk needs about SIZE + SIZE/BATCHES free).
#
# Usage: benches/serve-load.sh
#   CAIRN_BIN                   cairn binary (default: built here, opt-level 3, in $CARGO_TARGET_DIR or
#                               ~/.cache/cairn-target-bench)
#   CAIRN_BENCH_SIZE            repository size, as numfmt --from=iec takes it (default 10G)
#   CAIRN_BENCH_BATCHES         snapshots the repository is built from (default 10)
#   CAIRN_BENCH_CLIENTS         concurrent clients (default 200)
#   CAIRN_BENCH_SECONDS         duration (default 60)
#   CAIRN_BENCH_SLOW            clients reading at 1 byte/s (default 1)
#   CAIRN_BENCH_DISCONNECTING   clients dropping downloads midway (default 1)
#   CAIRN_BENCH_DIR             work directory (default /var/tmp/cairn-serve-load); the repository stays there
#   CAIRN_BENCH_WORKERS         the server's --workers (default: its own default, the number of cores)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE="${CAIRN_BENCH_SIZE:-10G}"
BYTES=$(numfmt --from=iec "$SIZE")
BATCHES="${CAIRN_BENCH_BATCHES:-10}"
CLIENTS="${CAIRN_BENCH_CLIENTS:-200}"
SECONDS_RUN="${CAIRN_BENCH_SECONDS:-60}"
SLOW="${CAIRN_BENCH_SLOW:-1}"
DISCONNECTING="${CAIRN_BENCH_DISCONNECTING:-1}"
DIR="${CAIRN_BENCH_DIR:-/var/tmp/cairn-serve-load}"
WORK="$DIR/$SIZE-$BATCHES"
mkdir -p "$WORK"

if [ -z "${CAIRN_BIN:-}" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cairn-target-bench}"
  echo "building cairn (opt-level 3) in $CARGO_TARGET_DIR" >&2
  CARGO_PROFILE_DEV_OPT_LEVEL=3 CARGO_PROFILE_DEV_DEBUG=false cargo build --quiet --bin cairn
  CAIRN_BIN="$CARGO_TARGET_DIR/debug/cairn"
fi
CLIENT="$WORK/client"
if [ ! -x "$CLIENT" ] || [ benches/serve-load/client.rs -nt "$CLIENT" ]; then
  rustc --edition 2021 -O benches/serve-load/client.rs -o "$CLIENT"
fi

export CAIRN_REPOSITORY="$WORK/repo" CAIRN_CACHE_DIR="$WORK/cache" CAIRN_PASSWORD=bench
if [ ! -f "$WORK/manifest.ok" ]; then
  rm -rf "$WORK/repo" "$WORK/cache" "$WORK/src" "$WORK/manifest.tsv"
  "$CAIRN_BIN" init >/dev/null
  start=$(date +%s)
  for ((b = 0; b < BATCHES; b++)); do
    "$CLIENT" gen "$WORK/src" "$b" $((BYTES / BATCHES)) >"$WORK/batch.tsv"
    snap=$("$CAIRN_BIN" backup "$WORK/src" --json | sed -n 's/.*"snapshot_id": *"\([0-9a-f]*\)".*/\1/p')
    [ -n "$snap" ] || { echo "backup of batch $b made no snapshot" >&2; exit 1; }
    sed "s/^/$snap\t/" "$WORK/batch.tsv" >>"$WORK/manifest.tsv"
    rm -rf "$WORK/src"
    echo "batch $((b + 1))/$BATCHES: snapshot ${snap:0:8}" >&2
  done
  echo "repository built in $(($(date +%s) - start)) s" >&2
  touch "$WORK/manifest.ok"
fi
repo_bytes=$(du -sb "$WORK/repo" | cut -f1)

rm -f "$WORK/tokens"
TOKEN=$("$CAIRN_BIN" serve token new --role read --name load --token-file "$WORK/tokens")
"$CAIRN_BIN" serve --listen 127.0.0.1:0 --token-file "$WORK/tokens" ${CAIRN_BENCH_WORKERS:+--workers "$CAIRN_BENCH_WORKERS"} \
  2>"$WORK/serve.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 300); do
  grep -q '^listening on http://' "$WORK/serve.log" && break
  kill -0 $SERVER 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
  sleep 0.1
done
ADDR=$(sed -n 's|^listening on http://||p' "$WORK/serve.log" | head -1)
[ -n "$ADDR" ] || { echo "cairn serve did not start:" >&2; cat "$WORK/serve.log" >&2; exit 1; }

echo "cairn: $CAIRN_BIN ($("$CAIRN_BIN" --version)); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'); $(nproc) cores"
echo "repository: $(numfmt --to=iec "$repo_bytes") on disk, $(cut -f1 "$WORK/manifest.tsv" | sort -u | wc -l) snapshots, $(wc -l <"$WORK/manifest.tsv") files"
echo "load: $CLIENTS clients for $SECONDS_RUN s, $SLOW slow (1 byte/s), $DISCONNECTING disconnecting; server pid $SERVER${CAIRN_BENCH_WORKERS:+, --workers $CAIRN_BENCH_WORKERS}"
echo "uptime before: $(uptime)"
(sleep $((SECONDS_RUN / 2)); echo "uptime during: $(uptime)") &
rc=0
"$CLIENT" load "$ADDR" "$TOKEN" "$WORK/manifest.tsv" "$CLIENTS" "$SECONDS_RUN" "$SLOW" "$DISCONNECTING" || rc=$?
kill -0 $SERVER 2>/dev/null || { echo "cairn serve died during the run:" >&2; tail -20 "$WORK/serve.log" >&2; rc=1; }
exit $rc
