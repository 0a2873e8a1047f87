# Shared helpers of the test-server scripts (sourced, not run).

log() { echo "$(basename "$0"): $*" >&2; }
rnd() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# A TCP port on 127.0.0.1 that nothing listens on (random, so that parallel users of one machine
# do not collide on fixed ports).
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$(( 20000 + $(od -An -tu2 -N2 /dev/urandom | tr -d ' ') % 40000 ))
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
