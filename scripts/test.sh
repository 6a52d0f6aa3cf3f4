#!/usr/bin/env bash
# Runs every test of the workspace. Starts (and installs, if missing) what the
# tests need, and stops what it started on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

cleanup=()
on_exit() {
    local step
    for step in "${cleanup[@]}"; do eval "$step" || true; done
}
trap on_exit EXIT

# Redis: the conformance suite uses STORESTACK_REDIS_URL (default
# 127.0.0.1:6379); the cluster and outage tests start their own
# redis-server processes, so redis-server and redis-cli must be on PATH.
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    echo "== installing redis-server"
    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
fi
if [ -z "${STORESTACK_REDIS_URL:-}" ] && ! redis-cli -p 6379 ping >/dev/null 2>&1; then
    echo "== starting redis-server on 127.0.0.1:6379 for this run"
    redis_dir=$(mktemp -d)
    redis-server --port 6379 --bind 127.0.0.1 --dir "$redis_dir" --save "" \
        --appendonly no --daemonize no >"$redis_dir/redis.log" 2>&1 &
    redis_pid=$!
    cleanup+=('kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null; rm -rf "$redis_dir"')
    for _ in $(seq 100); do
        redis-cli -p 6379 ping >/dev/null 2>&1 && break
        sleep 0.1
    done
fi

# MongoDB: a secantusd-rs on a free port, unless a server is given.
if [ -z "${STORESTACK_MONGODB_URL:-}" ]; then
    scripts/mongo.sh install
    mongo_env=$(scripts/mongo.sh start) # a failed start stops the script here
    eval "$mongo_env"
    cleanup+=('scripts/mongo.sh stop')
fi

cargo test --workspace --all-targets "$@"
cargo test --workspace --doc
