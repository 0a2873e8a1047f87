#!/usr/bin/env bash
# Stops the test servers up.sh started under STATE_DIR (by the pids it recorded).
DIR="${1:?usage: down.sh STATE_DIR}"
for f in "$DIR"/s3/server.pid "$DIR"/sftp/sshd.pid "$DIR"/webdav/rclone.pid "$DIR"/gcs/emulator.pid \
         "$DIR"/azure/azurite.pid; do
  [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
done
exit 0
