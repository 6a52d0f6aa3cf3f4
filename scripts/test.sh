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

# PostgreSQL (127.0.0.1:5432, trust auth, user postgres, database test) and
# MariaDB (127.0.0.1:3306, root without a password, database test): the
# machine's own services. Started with its start commands when they are not
# answering, never stopped (other users share them); tests/sql.rs fails
# under CI=true if either is still unreachable. STORESTACK_POSTGRES_URL /
# STORESTACK_MYSQL_URL point the tests elsewhere.
wait_for() { # what, probe command...
    local what=$1
    shift
    for _ in $(seq 100); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "== $what did not come up; the SQL tests will say so" >&2
}
if [ -z "${STORESTACK_POSTGRES_URL:-}" ] && command -v pg_isready >/dev/null \
    && ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "== starting PostgreSQL (service postgresql start)"
    service postgresql start || true
    wait_for PostgreSQL pg_isready -q -h 127.0.0.1 -p 5432
fi
if [ -z "${STORESTACK_MYSQL_URL:-}" ] && command -v mysqladmin >/dev/null \
    && ! mysqladmin -h 127.0.0.1 -P 3306 -u root ping >/dev/null 2>&1; then
    echo "== starting MariaDB (service mariadb start)"
    service mariadb start || true
    wait_for MariaDB mysqladmin -h 127.0.0.1 -P 3306 -u root ping
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
