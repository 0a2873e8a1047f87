#!/usr/bin/env bash
# Starts every test server (S3, S3 with Object Lock (moto), SFTP, WebDAV, GCS and Azure emulators; the PostgreSQL, MariaDB and Redis servers of
# docs/databases.md's tests) under STATE_DIR and prints their `export` lines, plus CAIRN_TEST_SERVERS=required. A
# server that does not start fails this script (exit 1) after the ones already started are stopped. Timings go to
# stderr.
# Usage: eval "$(scripts/servers/up.sh STATE_DIR)"; ...; scripts/servers/down.sh STATE_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
DIR="${1:?usage: up.sh STATE_DIR}"
mkdir -p "$DIR"
trap '"$here/down.sh" "$DIR"' ERR
servers=(s3 s3lock sftp webdav gcs azure postgres mariadb redis)
for s in "${servers[@]}"; do
  t0=$(date +%s%3N)
  "$here/start-$s.sh" "$DIR/$s" > "$DIR/$s.env"
  echo "servers: $s up in $(( $(date +%s%3N) - t0 )) ms" >&2
done
for s in "${servers[@]}"; do cat "$DIR/$s.env"; done
echo "export CAIRN_TEST_SERVERS=required"
