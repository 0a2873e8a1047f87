#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server (Debian's postgresql package: initdb + pg_ctl) under STATE_DIR, listening on
# 127.0.0.1 on a free TCP port and on a unix socket in STATE_DIR/run, with `trust` authentication for the superuser
# `postgres` (a test server: it holds nothing, listens on loopback only, and fsync is off). PostgreSQL refuses to
# run as root: as root, the cluster is created and run as an unprivileged account (lib.sh: db_user). Prints
# `export CAIRN_TEST_PG_...=` lines for the tests (tests/support/servers.rs).
#
# Usage: start-postgres.sh STATE_DIR      env CAIRN_TEST_PG_PORT (default: a free port), CAIRN_DB_USER
# Needs: postgresql (server binaries under /usr/lib/postgresql/VERSION/bin) and postgresql-client
# (.ci/servers installs them). Measured on a busy 2-core machine: 2-3 s, most of it initdb.
# Stop: kill -INT "$(head -n1 STATE_DIR/data/postmaster.pid)"  (or scripts/servers/down.sh)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
DIR="${1:?usage: start-postgres.sh STATE_DIR}"
mkdir -p "$DIR/run"
DIR="$(cd "$DIR" && pwd)"
HOST=127.0.0.1
PORT="${CAIRN_TEST_PG_PORT:-$(free_port)}"
BIN="${CAIRN_TEST_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}"
[ -n "$BIN" ] && [ -x "$BIN/initdb" ] && [ -x "$BIN/pg_ctl" ] \
  || { log "PostgreSQL's server binaries are missing (apt-get install postgresql; .ci/servers does)"; exit 1; }
for t in pg_dump pg_dumpall pg_restore psql; do
  [ -x "$BIN/$t" ] || { log "$BIN/$t is missing (apt-get install postgresql-client)"; exit 1; }
done

port_unused "$HOST" "$PORT"
own_dir "$DIR"
if [ ! -f "$DIR/data/PG_VERSION" ]; then
  as_db_user "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust --encoding=UTF8 --locale=C --no-sync \
      >"$DIR/initdb.log" 2>&1 || { log "initdb failed; its log:"; cat "$DIR/initdb.log" >&2; exit 1; }
fi
stop() {
  if [ -f "$DIR/data/postmaster.pid" ]; then kill -INT "$(head -n1 "$DIR/data/postmaster.pid")" 2>/dev/null || true; fi
}
trap stop EXIT
opts="-c listen_addresses=$HOST -c port=$PORT -c unix_socket_directories=$DIR/run -c fsync=off"
opts="$opts -c synchronous_commit=off -c full_page_writes=off -c max_connections=50 -c shared_buffers=16MB"
as_db_user "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -o "$opts" -w -t 30 start >/dev/null \
  || { log "pg_ctl start failed; the server log:"; cat "$DIR/postgres.log" >&2; exit 1; }
wait_port "$HOST" "$PORT" "$DIR/data/postmaster.pid" "$DIR/postgres.log"
# Both ways in answer: TCP and the socket.
[ "$("$BIN/psql" -h "$HOST" -p "$PORT" -U postgres -d postgres -Atc 'select 1')" = 1 ]
[ "$("$BIN/psql" -h "$DIR/run" -p "$PORT" -U postgres -d postgres -Atc 'select 1')" = 1 ]

trap - EXIT
cat <<EOT
export CAIRN_TEST_PG_STATE_DIR='$DIR'
export CAIRN_TEST_PG_BIN='$BIN'
export CAIRN_TEST_PG_HOST='$HOST'
export CAIRN_TEST_PG_SOCKET_DIR='$DIR/run'
export CAIRN_TEST_PG_PORT='$PORT'
export CAIRN_TEST_PG_USER='postgres'
EOT
