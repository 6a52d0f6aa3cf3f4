#!/usr/bin/env bash
# Runs every test of the workspace. Starts (and installs, if missing) what the
# tests need, and stops what it started on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

# MongoDB: a secantusd-rs on a free port, unless a server is given.
if [ -z "${STORESTACK_MONGODB_URL:-}" ]; then
    scripts/mongo.sh install
    mongo_env=$(scripts/mongo.sh start) # a failed start stops the script here
    eval "$mongo_env"
    trap 'scripts/mongo.sh stop' EXIT
fi

cargo test --workspace --all-targets "$@"
cargo test --workspace --doc
