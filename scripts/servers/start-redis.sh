#!/usr/bin/env bash
# Starts a throwaway Redis server (Debian's redis-server, no config file read) under STATE_DIR: 127.0.0.1 on a free
# TCP port, RDB snapshots in STATE_DIR/data, no AOF, no password (protected mode keeps it to loopback). As root, it
# runs as an unprivileged account (lib.sh: db_user). Prints `export CAIRN_TEST_REDIS_...=` lines for the tests
# (tests/support/servers.rs).
#
# Usage: start-redis.sh STATE_DIR      env CAIRN_TEST_REDIS_PORT (default: a free port), CAIRN_DB_USER
# Needs: redis-server and redis-tools (redis-cli, redis-check-rdb; .ci/servers installs them).
# Measured on a busy 2-core machine: ~0.3 s.
# Stop: kill "$(cat STATE_DIR/redis.pid)"  (or scripts/servers/down.sh)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
DIR="${1:?usage: start-redis.sh STATE_DIR}"
mkdir -p "$DIR/data"
DIR="$(cd "$DIR" && pwd)"
HOST=127.0.0.1
PORT="${CAIRN_TEST_REDIS_PORT:-$(free_port)}"
for t in redis-server redis-cli redis-check-rdb; do
  command -v "$t" >/dev/null \
    || { log "$t is missing (apt-get install redis-server redis-tools; .ci/servers does)"; exit 1; }
done

port_unused "$HOST" "$PORT"
own_dir "$DIR"
rm -f "$DIR/redis.pid"
trap 'if [ -f "$DIR/redis.pid" ]; then kill "$(cat "$DIR/redis.pid")" 2>/dev/null || true; fi' EXIT
db_prefix
nohup "${DB_RUN[@]}" "$(command -v redis-server)" --bind "$HOST" --port "$PORT" --dir "$DIR/data" \
    --dbfilename dump.rdb --appendonly no --save '' --daemonize no --logfile '' \
    </dev/null >>"$DIR/redis.log" 2>&1 &
echo $! > "$DIR/redis.pid"
wait_port "$HOST" "$PORT" "$DIR/redis.pid" "$DIR/redis.log"
for _ in $(seq 1 100); do
  [ "$(redis-cli -h "$HOST" -p "$PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.1
done
[ "$(redis-cli -h "$HOST" -p "$PORT" ping)" = PONG ] \
  || { log "the server does not answer PING; its log:"; cat "$DIR/redis.log" >&2; exit 1; }

trap - EXIT
cat <<EOT
export CAIRN_TEST_REDIS_STATE_DIR='$DIR'
export CAIRN_TEST_REDIS_HOST='$HOST'
export CAIRN_TEST_REDIS_PORT='$PORT'
EOT
