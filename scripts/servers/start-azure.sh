#!/usr/bin/env bash
# Starts Azurite's blob service (the Azure Storage emulator, npm package `azurite`) on 127.0.0.1 with the
# emulator's well-known development account, creates a container, proves that an unsigned request and a wrong key
# are refused, and prints `export AZURE_...=` lines for the tests.
#
# Usage: start-azure.sh STATE_DIR          env AZURE_PORT (default: a free port), AZURE_CONTAINER (cairn-test)
# Needs: node, and azurite-blob on PATH or in ~/.cache/cairn-servers/azurite/node_modules/.bin
# (.ci/servers installs it).
# Stop: kill "$(cat STATE_DIR/azurite.pid)"  (or scripts/servers/down.sh)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
here="$(cd "$(dirname "$0")" && pwd)"
DIR="${1:?usage: start-azure.sh STATE_DIR}"
mkdir -p "$DIR/data"
DIR="$(cd "$DIR" && pwd)"
HOST=127.0.0.1
PORT="${AZURE_PORT:-$(free_port)}"
CONTAINER="${AZURE_CONTAINER:-cairn-test}"
# The emulator's fixed development account (public, documented with Azurite; not a secret).
ACCOUNT=devstoreaccount1
KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
BIN="$(command -v azurite-blob || echo "$HOME/.cache/cairn-servers/azurite/node_modules/.bin/azurite-blob")"
[ -x "$BIN" ] || { log "azurite-blob is not installed (run .ci/servers)"; exit 1; }
command -v node >/dev/null || { log "node is missing"; exit 1; }

port_unused "$HOST" "$PORT"
rm -f "$DIR/azurite.pid"
trap 'if [ -f "$DIR/azurite.pid" ]; then kill "$(cat "$DIR/azurite.pid")" 2>/dev/null || true; fi' EXIT
nohup "$BIN" --blobHost "$HOST" --blobPort "$PORT" --loose --skipApiVersionCheck --disableTelemetry --silent \
    --location "$DIR/data" </dev/null >>"$DIR/azurite.log" 2>&1 &
echo $! > "$DIR/azurite.pid"
wait_port "$HOST" "$PORT" "$DIR/azurite.pid" "$DIR/azurite.log"

EP="http://$HOST:$PORT/$ACCOUNT"
req() { node "$here/azblob-request.js" "$@"; }
code=$(req PUT "$EP/$CONTAINER?restype=container" "$ACCOUNT" "$KEY")
case "$code" in 201|409) ;; *) log "Create Container answered $code"; exit 1;; esac
code=$(req GET "$EP/$CONTAINER?restype=container&comp=list" "$ACCOUNT" "$(printf 'wrong-key' | base64)")
case "$code" in 401|403) ;; *) log "a wrong key got $code: authentication is not enforced"; exit 1;; esac
code=$(curl -s -o /dev/null -w '%{http_code}' "$EP/$CONTAINER?restype=container&comp=list")
case "$code" in 401|403|404) ;; *) log "an unsigned request got $code: authentication is not enforced"; exit 1;; esac
code=$(req GET "$EP/$CONTAINER?restype=container&comp=list" "$ACCOUNT" "$KEY")
[ "$code" = 200 ] || { log "signed List Blobs answered $code"; exit 1; }

trap - EXIT
cat <<EOT
export AZURE_STATE_DIR='$DIR'
export AZURE_ENDPOINT='$EP'
export AZURE_PORT='$PORT'
export AZURE_CONTAINER='$CONTAINER'
export AZURE_ACCOUNT='$ACCOUNT'
export AZURE_KEY='$KEY'
EOT
