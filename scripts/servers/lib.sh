# Shared helpers of the test-server scripts (sourced, not run).

log() { echo "$(basename "$0"): $*" >&2; }
rnd() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# A TCP port on 127.0.0.1 that nothing listens on (random, so that parallel users of one machine
# do not collide on fixed ports).
free_port() {
  # Below the kernel's ephemeral range when there is room (20000 up to its start, 32768 by default): a port there is
  # never taken by an outgoing connection, or one in TIME_WAIT, between this check and the server's bind. A
  # PostgreSQL start failed that way once.
  local p lo=20000 span=40000 eph
  eph=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 0)
  if [ "${eph:-0}" -gt $((lo + 2000)) ]; then span=$((eph - lo)); fi
  for _ in $(seq 1 50); do
    p=$(( lo + $(od -An -tu2 -N2 /dev/urandom | tr -d ' ') % span ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  log "no free port found"; return 1
}

# wait_port HOST PORT PIDFILE LOGFILE: until something listens (30 s at most).
wait_port() {
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    if [ -f "$3" ] && ! kill -0 "$(cat "$3")" 2>/dev/null; then
      log "server exited early; its log:"; cat "$4" >&2; return 1
    fi
    sleep 0.1
  done
  log "nothing listens on $1:$2 after 30 s"; return 1
}

# port_unused HOST PORT: fails (with a message) when something already listens there.
port_unused() {
  if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then log "port $1:$2 is already in use"; return 1; fi
}

# The database servers (PostgreSQL refuses to run as root; MariaDB and Redis should not) run as an unprivileged
# account when these scripts run as root: CAIRN_DB_USER if set, else `cairn-db` (.ci/servers creates it), else
# `nobody`. As any other user they run as that user.
is_root() { [ "$(id -u)" = 0 ]; }
db_user() {
  if [ -n "${CAIRN_DB_USER:-}" ]; then echo "$CAIRN_DB_USER"
  elif id -u cairn-db >/dev/null 2>&1; then echo cairn-db
  else echo nobody; fi
}
# db_prefix: sets DB_RUN to the command prefix that runs a program as db_user when root (else as is), in a clean
# environment but for PATH and LANG. Every part of it execs, so `"${DB_RUN[@]}" CMD &` makes $! the pid of CMD.
db_prefix() {
  if is_root; then
    local u; u="$(db_user)"
    DB_RUN=(env -i PATH="$PATH" HOME=/nonexistent LANG=C.UTF-8
            setpriv --reuid="$u" --regid="$(id -g "$u")" --clear-groups --no-new-privs --)
  else
    DB_RUN=(env -i PATH="$PATH" HOME="$HOME" LANG=C.UTF-8)
  fi
}
# as_db_user CMD...: runs CMD through db_prefix.
as_db_user() { db_prefix; "${DB_RUN[@]}" "$@"; }
# own_dir DIR: when root, gives DIR (and what is in it) to db_user, and makes every directory above it traversable
# (o+x, not listable) so that the unprivileged server can reach it, e.g. under a `mktemp -d` state dir (mode 700).
own_dir() {
  is_root || return 0
  local u d; u="$(db_user)"
  chown -R "$u:$(id -g "$u")" "$1"
  d="$(dirname "$1")"
  while [ "$d" != / ]; do
    if ! setpriv --reuid="$u" --regid="$(id -g "$u")" --clear-groups -- test -x "$d"; then chmod o+x "$d"; fi
    d="$(dirname "$d")"
  done
}
# wait_pidfile PIDFILE SECONDS: until PIDFILE exists and names a live process.
wait_pidfile() {
  for _ in $(seq 1 $(( $2 * 10 ))); do
    if [ -s "$1" ] && kill -0 "$(head -n1 "$1")" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}
