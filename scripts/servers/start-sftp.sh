#!/usr/bin/env bash
# Starts a private OpenSSH sshd (SFTP subsystem, key login only) on 127.0.0.1 with a fresh host key
# and a fresh client key, adds the host key to ~/.ssh/known_hosts (so cairn's strict host-key
# check passes; the stale entry for the same [host]:port is removed first), checks that a
# keyless login is refused, and prints `export SFTP_...=` lines for the tests.
#
# Usage: start-sftp.sh STATE_DIR          env SFTP_PORT (default: a free port)
# Needs: openssh-server and openssh-client (cairn's sftp backend runs the `ssh` binary).
# Stop: kill "$(cat STATE_DIR/sshd.pid)"  (or scripts/servers/down.sh)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
DIR="${1:?usage: start-sftp.sh STATE_DIR}"
mkdir -p "$DIR/data"
DIR="$(cd "$DIR" && pwd)"
HOST=127.0.0.1
PORT="${SFTP_PORT:-$(free_port)}"
USER_NAME="$(id -un)"
[ -x /usr/sbin/sshd ] || { log "sshd is missing (apt-get install openssh-server; .ci/servers does)"; exit 1; }
command -v ssh >/dev/null || { log "ssh is missing (apt-get install openssh-client)"; exit 1; }

port_unused "$HOST" "$PORT"
[ -f "$DIR/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$DIR/host_ed25519"
[ -f "$DIR/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$DIR/client_ed25519"
cp "$DIR/client_ed25519.pub" "$DIR/authorized_keys"
chmod 600 "$DIR/authorized_keys" "$DIR/client_ed25519" "$DIR/host_ed25519"
if [ "$(id -u)" = 0 ]; then mkdir -p /run/sshd && chmod 755 /run/sshd; fi

cat > "$DIR/sshd_config" <<EOT
Port $PORT
ListenAddress $HOST
HostKey $DIR/host_ed25519
PidFile $DIR/sshd.pid
AuthorizedKeysFile $DIR/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers $USER_NAME
UsePAM no
StrictModes no
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
MaxStartups 100:30:200
MaxSessions 100
LogLevel ERROR
Subsystem sftp internal-sftp
EOT
/usr/sbin/sshd -t -f "$DIR/sshd_config"
/usr/sbin/sshd -f "$DIR/sshd_config" -E "$DIR/sshd.log"
trap 'kill "$(cat "$DIR/sshd.pid" 2>/dev/null)" 2>/dev/null || true' EXIT
wait_port "$HOST" "$PORT" "$DIR/sshd.pid" "$DIR/sshd.log"

echo "[$HOST]:$PORT $(cut -d' ' -f1,2 "$DIR/host_ed25519.pub")" > "$DIR/known_hosts"
mkdir -p "$HOME/.ssh" && chmod 700 "$HOME/.ssh"
ssh-keygen -q -R "[$HOST]:$PORT" >/dev/null 2>&1 || true
cat "$DIR/known_hosts" >> "$HOME/.ssh/known_hosts"

ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes \
    -i "$DIR/client_ed25519" -p "$PORT" "$USER_NAME@$HOST" true
if ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o PubkeyAuthentication=no \
       -p "$PORT" "$USER_NAME@$HOST" true 2>/dev/null; then
  log "a login without a key succeeded: authentication is not enforced"; exit 1
fi
trap - EXIT
cat <<EOT
export SFTP_STATE_DIR='$DIR'
export SFTP_HOST='$HOST'
export SFTP_PORT='$PORT'
export SFTP_USER='$USER_NAME'
export SFTP_KEY='$DIR/client_ed25519'
export SFTP_ROOT='$DIR/data'
EOT
