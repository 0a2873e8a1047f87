#!/usr/bin/env bash
# Starts a local S3 server on 127.0.0.1 with SigV4 enforced, creates a bucket, proves that a wrong
# secret and an unsigned request are refused, and prints `export S3_...=` lines for the tests.
#
# S3_IMPL=s3s-fs (default): s3s-fs (a Rust S3 server, crates.io) on files under STATE_DIR. Run it
# again on the same STATE_DIR (with the printed S3_PORT, S3_ACCESS_KEY and S3_SECRET_KEY in the
# environment) to restart the same server on the same data. It has no Object Lock (501).
# S3_IMPL=moto: moto's server (PyPI moto[s3] 5.2.5, in ~/.cache/cairn-servers/moto-venv), which
# implements S3 Object Lock; the bucket is created with object lock enabled (and so versioning).
# Its state is in memory (a restart starts empty). moto checks no signature by default, and with
# its IAM emulation on (INITIAL_NO_AUTH_ACTION_COUNT) it refuses OpenDAL's correctly signed
# ListObjectsV2 whose prefix holds a `/` (SignatureDoesNotMatch: it canonicalizes the query
# differently), so it runs without authentication; s3s-fs is the server that enforces SigV4. What
# moto does and does not implement of Object Lock: format-spec §13.7.
#
# Usage: start-s3.sh STATE_DIR
#   env S3_IMPL (s3s-fs or moto), S3_PORT (default: a free port), S3_BUCKET (default cairn-test),
#       S3_ACCESS_KEY / S3_SECRET_KEY (default: random; moto accepts any),
#       S3_ENV_PREFIX (default S3: the names of the printed variables, e.g. S3LOCK_ENDPOINT)
# Needs s3s-fs on PATH or in ~/.cargo/bin, or moto's venv (.ci/servers installs both), and curl >= 7.75.
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
IMPL="${S3_IMPL:-s3s-fs}"
PFX="${S3_ENV_PREFIX:-S3}"
case "$IMPL" in
  s3s-fs)
    BIN="$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")"
    [ -x "$BIN" ] || { log "s3s-fs is not installed (run .ci/servers)"; exit 1; } ;;
  moto)
    BIN="$HOME/.cache/cairn-servers/moto-venv/bin/moto_server"
    [ -x "$BIN" ] || { log "moto is not installed (run .ci/servers)"; exit 1; } ;;
  *) log "S3_IMPL=$IMPL: use s3s-fs or moto"; exit 1 ;;
esac

port_unused "$HOST" "$PORT"
rm -f "$DIR/server.pid"
trap 'if [ -f "$DIR/server.pid" ]; then kill "$(cat "$DIR/server.pid")" 2>/dev/null || true; fi' EXIT
if [ "$IMPL" = s3s-fs ]; then
  nohup "$BIN" --host "$HOST" --port "$PORT" --access-key "$AK" --secret-key "$SK" "$DIR/data" \
      </dev/null >>"$DIR/server.log" 2>&1 &
else
  nohup "$BIN" -H "$HOST" -p "$PORT" </dev/null >>"$DIR/server.log" 2>&1 &
fi
echo $! > "$DIR/server.pid"
wait_port "$HOST" "$PORT" "$DIR/server.pid" "$DIR/server.log"

# s3curl AK SK [curl args...]: a SigV4-signed request; prints the HTTP status.
s3curl() {
  local ak="$1" sk="$2"; shift 2
  # curl does not send x-amz-content-sha256 itself; these bodies are empty.
  curl -s -o "$DIR/last-response" -w '%{http_code}' --aws-sigv4 "aws:amz:$REGION:s3" --user "$ak:$sk" \
       -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" "$@"
}
lock=()
if [ "$IMPL" = moto ]; then lock=(-H "x-amz-bucket-object-lock-enabled: true"); fi
code=$(s3curl "$AK" "$SK" -X PUT "${lock[@]}" "$EP/$BUCKET")
case "$code" in 200|409) ;; *) log "CreateBucket answered $code"; cat "$DIR/last-response" >&2; exit 1;; esac
if [ "$IMPL" = s3s-fs ]; then
  code=$(s3curl "$AK" "wrong$SK" "$EP/$BUCKET?list-type=2")
  case "$code" in 401|403) ;; *) log "a wrong secret got $code: authentication is not enforced"; exit 1;; esac
  code=$(curl -s -o /dev/null -w '%{http_code}' "$EP/$BUCKET?list-type=2")
  case "$code" in 401|403|500) ;; *) log "an unsigned request got $code: authentication is not enforced"; exit 1;; esac
fi
code=$(s3curl "$AK" "$SK" "$EP/$BUCKET?list-type=2")
[ "$code" = 200 ] || { log "signed ListObjectsV2 answered $code"; exit 1; }
if [ "$IMPL" = moto ]; then
  code=$(s3curl "$AK" "$SK" "$EP/$BUCKET?object-lock=")
  grep -q '<ObjectLockEnabled>Enabled</ObjectLockEnabled>' "$DIR/last-response" \
    || { log "the bucket has no object lock ($code)"; cat "$DIR/last-response" >&2; exit 1; }
fi

trap - EXIT
cat <<EOT
export ${PFX}_STATE_DIR='$DIR'
export ${PFX}_ENDPOINT='$EP'
export ${PFX}_PORT='$PORT'
export ${PFX}_REGION='$REGION'
export ${PFX}_BUCKET='$BUCKET'
export ${PFX}_ACCESS_KEY='$AK'
export ${PFX}_SECRET_KEY='$SK'
EOT
