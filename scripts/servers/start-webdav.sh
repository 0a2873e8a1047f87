#!/usr/bin/env bash
# Starts `rclone serve webdav` on 127.0.0.1 with basic auth over a local directory, checks that a
# request without credentials gets 401, and prints `export WEBDAV_...=` lines for the tests.
#
# Usage: start-webdav.sh STATE_DIR        env WEBDAV_PORT (default: a free port)
# Needs: rclone (Debian's 1.60 works; .ci/servers installs it).
# Stop: kill "$(cat STATE_DIR/rclone.pid)"  (or scripts/servers/down.sh)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
DIR="${1:?usage: start-webdav.sh STATE_DIR}"
mkdir -p "$DIR/data"
DIR="$(cd "$DIR" && pwd)"
HOST=127.0.0.1
PORT="${WEBDAV_PORT:-$(free_port)}"
USER_NAME=cairn
PASS="$(rnd 12)"
command -v rclone >/dev/null || { log "rclone is missing (apt-get install rclone; .ci/servers does)"; exit 1; }

port_unused "$HOST" "$PORT"
: > "$DIR/rclone.conf"
RCLONE_CONFIG="$DIR/rclone.conf" nohup rclone serve webdav "$DIR/data" \
    --addr "$HOST:$PORT" --user "$USER_NAME" --pass "$PASS" \
    --log-file "$DIR/rclone.log" --log-level NOTICE </dev/null >/dev/null 2>&1 &
echo $! > "$DIR/rclone.pid"
trap 'kill "$(cat "$DIR/rclone.pid")" 2>/dev/null || true' EXIT
wait_port "$HOST" "$PORT" "$DIR/rclone.pid" "$DIR/rclone.log"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$HOST:$PORT/")
[ "$code" = 401 ] || { log "a request without credentials got $code, not 401"; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' -u "$USER_NAME:$PASS" -X PROPFIND -H 'Depth: 0' "http://$HOST:$PORT/")
[ "$code" = 207 ] || { log "PROPFIND with credentials got $code, not 207"; exit 1; }
trap - EXIT
cat <<EOT
export WEBDAV_STATE_DIR='$DIR'
export WEBDAV_HOST='$HOST'
export WEBDAV_PORT='$PORT'
export WEBDAV_USER='$USER_NAME'
export WEBDAV_PASS='$PASS'
EOT
