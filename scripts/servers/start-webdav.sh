#!/usr/bin/env bash
# Starts `rclone serve webdav` on 127.0.0.1 with basic auth over a local directory, checks that a
# request without credentials gets 401, and prints `export WEBDAV_...=` lines for the tests.
#
# Usage: start-webdav.sh STATE_DIR        env WEBDAV_PORT (default: a free port)
#        WEBDAV_TLS=1: serve HTTPS with a certificate for 127.0.0.1 signed by a throwaway CA; prints WEBDAV_CA
#        (the CA's PEM file: clients trust it through SSL_CERT_FILE) and WEBDAV_SCHEME=https.
# Needs: rclone (Debian's 1.60 works; .ci/servers installs it); openssl for WEBDAV_TLS=1.
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
SCHEME=http
tls=()
if [ "${WEBDAV_TLS:-0}" = 1 ]; then
  SCHEME=https
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
      -keyout "$DIR/ca.key" -out "$DIR/ca.pem" -subj "/CN=cairn test CA" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout "$DIR/key.pem" -out "$DIR/leaf.csr" -subj "/CN=$HOST" 2>/dev/null
  printf 'subjectAltName=IP:%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$HOST" > "$DIR/leaf.ext"
  openssl x509 -req -in "$DIR/leaf.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial -days 2 \
      -extfile "$DIR/leaf.ext" -out "$DIR/cert.pem" 2>/dev/null
  tls=(--cert "$DIR/cert.pem" --key "$DIR/key.pem")
fi
: > "$DIR/rclone.conf"
RCLONE_CONFIG="$DIR/rclone.conf" nohup rclone serve webdav "$DIR/data" "${tls[@]}" \
    --addr "$HOST:$PORT" --user "$USER_NAME" --pass "$PASS" \
    --log-file "$DIR/rclone.log" --log-level NOTICE </dev/null >/dev/null 2>&1 &
echo $! > "$DIR/rclone.pid"
trap 'kill "$(cat "$DIR/rclone.pid")" 2>/dev/null || true' EXIT
wait_port "$HOST" "$PORT" "$DIR/rclone.pid" "$DIR/rclone.log"
cacert=()
[ "$SCHEME" = https ] && cacert=(--cacert "$DIR/ca.pem")
code=$(curl -s "${cacert[@]}" -o /dev/null -w '%{http_code}' "$SCHEME://$HOST:$PORT/")
[ "$code" = 401 ] || { log "a request without credentials got $code, not 401"; exit 1; }
code=$(curl -s "${cacert[@]}" -o /dev/null -w '%{http_code}' -u "$USER_NAME:$PASS" -X PROPFIND -H 'Depth: 0' \
    "$SCHEME://$HOST:$PORT/")
[ "$code" = 207 ] || { log "PROPFIND with credentials got $code, not 207"; exit 1; }
trap - EXIT
cat <<EOT
export WEBDAV_STATE_DIR='$DIR'
export WEBDAV_HOST='$HOST'
export WEBDAV_PORT='$PORT'
export WEBDAV_USER='$USER_NAME'
export WEBDAV_PASS='$PASS'
export WEBDAV_SCHEME='$SCHEME'
EOT
[ "$SCHEME" = https ] && echo "export WEBDAV_CA='$DIR/ca.pem'"
exit 0
