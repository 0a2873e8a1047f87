#!/usr/bin/env bash
# Starts the S3 server with Object Lock (moto) for the object-lock tests: start-s3.sh with S3_IMPL=moto, printing
# `export S3LOCK_...=` lines (S3LOCK_ENDPOINT, S3LOCK_BUCKET, S3LOCK_ACCESS_KEY, ...).
# Usage: start-s3lock.sh STATE_DIR
set -euo pipefail
S3_IMPL=moto S3_ENV_PREFIX=S3LOCK exec "$(dirname "$0")/start-s3.sh" "$@"
