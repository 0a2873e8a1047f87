#!/usr/bin/env bash
# Stops the test servers up.sh started under STATE_DIR (by the pids they recorded).
DIR="${1:?usage: down.sh STATE_DIR}"
for f in "$DIR"/s3/server.pid "$DIR"/s3lock/server.pid "$DIR"/sftp/sshd.pid "$DIR"/webdav/rclone.pid "$DIR"/gcs/emulator.pid \
         "$DIR"/azure/azurite.pid "$DIR"/mariadb/mariadbd.pid "$DIR"/redis/redis.pid; do
  [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
done
# PostgreSQL: SIGINT is its fast shutdown (SIGTERM would wait for every client to disconnect).
f="$DIR/postgres/data/postmaster.pid"
[ -f "$f" ] && kill -INT "$(head -n1 "$f")" 2>/dev/null
exit 0
