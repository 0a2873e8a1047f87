#!/usr/bin/env bash
# Starts a throwaway MariaDB server (Debian's mariadb-server: mariadb-install-db + mariadbd, no config file read)
# under STATE_DIR with its own data dir, listening on 127.0.0.1 on a free TCP port and on STATE_DIR/run/mysqld.sock.
# Its `root@localhost` account has no password (a test server on loopback that holds nothing); clients connect
# through the socket. As root, the server is created and run as an unprivileged account (lib.sh: db_user). Prints
# `export CAIRN_TEST_MYSQL_...=` lines for the tests (tests/support/servers.rs).
#
# Usage: start-mariadb.sh STATE_DIR      env CAIRN_TEST_MYSQL_PORT (default: a free port), CAIRN_DB_USER
# Needs: mariadb-server and mariadb-client (.ci/servers installs them).
# Measured on a busy 2-core machine: 3.5-5.5 s, all but ~0.3 s of it mariadb-install-db.
# Stop: kill "$(cat STATE_DIR/mariadbd.pid)"  (or scripts/servers/down.sh)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
DIR="${1:?usage: start-mariadb.sh STATE_DIR}"
mkdir -p "$DIR/run"
DIR="$(cd "$DIR" && pwd)"
HOST=127.0.0.1
PORT="${CAIRN_TEST_MYSQL_PORT:-$(free_port)}"
SOCK="$DIR/run/mysqld.sock"
for t in mariadbd mariadb-install-db mariadb mariadb-dump mariadb-check; do
  command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] \
    || { log "$t is missing (apt-get install mariadb-server mariadb-client; .ci/servers does)"; exit 1; }
done
SERVER="$(command -v mariadbd || echo /usr/sbin/mariadbd)"

port_unused "$HOST" "$PORT"
own_dir "$DIR"
if [ ! -d "$DIR/data/mysql" ]; then
  as_db_user mariadb-install-db --no-defaults --datadir="$DIR/data" --auth-root-authentication-method=normal \
      --skip-test-db --skip-name-resolve >"$DIR/install-db.log" 2>&1 \
    || { log "mariadb-install-db failed; its log:"; cat "$DIR/install-db.log" >&2; exit 1; }
fi
rm -f "$DIR/mariadbd.pid"
trap 'if [ -f "$DIR/mariadbd.pid" ]; then kill "$(cat "$DIR/mariadbd.pid")" 2>/dev/null || true; fi' EXIT
db_prefix
nohup "${DB_RUN[@]}" "$SERVER" \
    --no-defaults --datadir="$DIR/data" --socket="$SOCK" --port="$PORT" --bind-address="$HOST" \
    --pid-file="$DIR/run/mariadbd.pid" --log-error="$DIR/mariadbd.log" --skip-name-resolve --skip-log-bin \
    --innodb-buffer-pool-size=32M --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 \
    </dev/null >>"$DIR/mariadbd.log" 2>&1 &
echo $! > "$DIR/mariadbd.pid"
wait_port "$HOST" "$PORT" "$DIR/mariadbd.pid" "$DIR/mariadbd.log"
for _ in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ "$(mariadb --no-defaults --socket="$SOCK" -uroot -N -e 'select 1')" = 1 ] \
  || { log "the server does not answer on $SOCK; its log:"; cat "$DIR/mariadbd.log" >&2; exit 1; }

trap - EXIT
cat <<EOT
export CAIRN_TEST_MYSQL_STATE_DIR='$DIR'
export CAIRN_TEST_MYSQL_SOCKET='$SOCK'
export CAIRN_TEST_MYSQL_HOST='$HOST'
export CAIRN_TEST_MYSQL_PORT='$PORT'
export CAIRN_TEST_MYSQL_USER='root'
EOT
