#!/usr/bin/env bash
# Starts s3s-fs (a Rust S3 server, crates.io) on 127.0.0.1 with SigV4 enforced, creates a bucket,
# proves that a wrong secret and an unsigned request are refused, and prints `export S3_...=`
# lines for the tests. Run it again on the same STATE_DIR (with the printed S3_PORT, S3_ACCESS_KEY
# and S3_SECRET_KEY in the environment) to restart the same server on the same data.
#
# Usage: start-s3.sh STATE_DIR
#   env S3_PORT (default: a free port), S3_BUCKET (default cairn-test),
#       S3_ACCESS_KEY / S3_SECRET_KEY (default: random)
# Needs s3s-fs on PATH or in ~/.cargo/bin (.ci/servers installs it) and curl >= 7.75.
# Stop: kill "$(cat STATE_DIR/server.pid)"  (or scripts/servers/down.sh)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
DIR="${1:?usage: start-s3.sh STATE_DIR}"
mkdir -p "$DIR/data"
DIR="$(cd "$DIR" && pwd)"
HOST=127.0.0.1
PORT="${S3_PORT:-$(free_port)}"
BUCKET="${S3_BUCKET:-cairn-test}"
REGION=us-east-1
EP="http://$HOST:$PORT"
AK="${S3_ACCESS_KEY:-AK$(rnd 9)}"
SK="${S3_SECRET_KEY:-$(rnd 20)}"
BIN="$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")"
[ -x "$BIN" ] || { log "s3s-fs is not installed (run .ci/servers)"; exit 1; }

port_unused "$HOST" "$PORT"
rm -f "$DIR/server.pid"
trap 'if [ -f "$DIR/server.pid" ]; then kill "$(cat "$DIR/server.pid")" 2>/dev/null || true; fi' EXIT
nohup "$BIN" --host "$HOST" --port "$PORT" --access-key "$AK" --secret-key "$SK" "$DIR/data" \
    </dev/null >>"$DIR/server.log" 2>&1 &
echo $! > "$DIR/server.pid"
wait_port "$HOST" "$PORT" "$DIR/server.pid" "$DIR/server.log"

# s3curl AK SK [curl args...]: a SigV4-signed request; prints the HTTP status.
s3curl() {
  local ak="$1" sk="$2"; shift 2
  # curl does not send x-amz-content-sha256 itself; these bodies are empty.
  curl -s -o "$DIR/last-response" -w '%{http_code}' --aws-sigv4 "aws:amz:$REGION:s3" --user "$ak:$sk" \
       -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" "$@"
}
code=$(s3curl "$AK" "$SK" -X PUT "$EP/$BUCKET")
case "$code" in 200|409) ;; *) log "CreateBucket answered $code"; cat "$DIR/last-response" >&2; exit 1;; esac
code=$(s3curl "$AK" "wrong$SK" "$EP/$BUCKET?list-type=2")
case "$code" in 401|403) ;; *) log "a wrong secret got $code: authentication is not enforced"; exit 1;; esac
code=$(curl -s -o /dev/null -w '%{http_code}' "$EP/$BUCKET?list-type=2")
case "$code" in 401|403|500) ;; *) log "an unsigned request got $code: authentication is not enforced"; exit 1;; esac
code=$(s3curl "$AK" "$SK" "$EP/$BUCKET?list-type=2")
[ "$code" = 200 ] || { log "signed ListObjectsV2 answered $code"; exit 1; }

trap - EXIT
cat <<EOT
export S3_STATE_DIR='$DIR'
export S3_ENDPOINT='$EP'
export S3_PORT='$PORT'
export S3_REGION='$REGION'
export S3_BUCKET='$BUCKET'
export S3_ACCESS_KEY='$AK'
export S3_SECRET_KEY='$SK'
EOT
