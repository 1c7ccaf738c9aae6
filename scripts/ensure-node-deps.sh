#!/bin/sh
# Make sure node_modules matches package-lock.json (the CDK CLI and asl-validator, both pinned).
# Idempotent and quiet: npm ci runs only when node_modules is missing or older than the lock
# (npm writes node_modules/.package-lock.json on every install, so it is the stamp).
set -eu

cd "$(dirname "$0")/.."
STAMP=node_modules/.package-lock.json

if [ -f "$STAMP" ] && [ ! package-lock.json -nt "$STAMP" ] && [ -x node_modules/.bin/asl-validator ]; then
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "ensure-node-deps: npm is missing; install Node.js 20 or newer (docs/deploy.md)" >&2
    exit 1
fi

npm ci --no-audit --no-fund --loglevel=error
