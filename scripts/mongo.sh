#!/usr/bin/env bash
# The MongoDB-compatible test server (secantusd-rs, see README "MongoDB
# backend"): install it if missing, start it on a free loopback port, stop it.
#
#   scripts/mongo.sh install          # only installs what is missing
#   eval "$(scripts/mongo.sh start)"  # exports STORESTACK_MONGODB_URL and STORESTACK_MONGO_DIR
#   scripts/mongo.sh stop             # stops the server of $STORESTACK_MONGO_DIR, removes its data
#
# `start` prints shell `export` lines on stdout and everything else on stderr.
set -euo pipefail

SECANTUS_VERSION=0.5.3-beta.196
export PATH="$HOME/.cargo/bin:$PATH"

log() { echo "mongo.sh: $*" >&2; }

install() {
    if command -v secantusd-rs >/dev/null 2>&1; then
        log "secantusd-rs is installed ($(command -v secantusd-rs))"
        return
    fi
    if ! command -v cmake >/dev/null 2>&1; then
        log "installing cmake (apt-get)"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq cmake >&2
    fi
    local build_log
    build_log=$(mktemp "${TMPDIR:-/tmp}/secantus-install.XXXXXX.log")
    log "building secantusd-rs $SECANTUS_VERSION (about 7 minutes, once per machine); log: $build_log"
    local started=$SECONDS
    if ! cargo install secantus-mdb --version "$SECANTUS_VERSION" \
        --ignore-rust-version --locked >"$build_log" 2>&1; then
        log "cargo install failed; last lines of $build_log:"
        tail -n 60 "$build_log" >&2
        exit 1
    fi
    log "installed secantusd-rs in $((SECONDS - started)) s"
}

start() {
    command -v secantusd-rs >/dev/null 2>&1 || {
        log "secantusd-rs is not installed: run scripts/mongo.sh install"
        exit 1
    }
    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/storestack-mongo.XXXXXX")
    mkdir "$dir/data"
    : >"$dir/server.log" # exists before the background job opens it
    # setsid: the server outlives this script and ignores the caller's ^C
    # process group; `stop` ends it by pid.
    setsid secantusd-rs --host 127.0.0.1 --port 0 --storage-path "$dir/data" \
        --log-file-max 1MB --cache-size 256M \
        >"$dir/server.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$dir/pid"
    # Whatever makes this function fail from here on, leave nothing behind.
    trap 'kill -KILL '"$pid"' 2>/dev/null || true; rm -rf '"'$dir'" EXIT
    local port=""
    for _ in $(seq 1 300); do
        port=$(sed -n 's/.*listening on [0-9.]*:\([0-9][0-9]*\).*/\1/p' "$dir/server.log" | head -n 1 || true)
        [ -n "$port" ] && break
        if ! kill -0 "$pid" 2>/dev/null; then
            log "secantusd-rs exited during startup:"
            tail -n 30 "$dir/server.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    if [ -z "$port" ]; then
        log "secantusd-rs did not report listening within 30 s:"
        tail -n 30 "$dir/server.log" >&2
        exit 1
    fi
    trap - EXIT
    echo "$port" >"$dir/port"
    local url="mongodb://127.0.0.1:$port/?directConnection=true"
    echo "$url" >"$dir/url"
    log "secantusd-rs (pid $pid) listening on 127.0.0.1:$port, data in $dir"
    echo "export STORESTACK_MONGODB_URL='$url'"
    echo "export STORESTACK_MONGO_DIR='$dir'"
}

stop() {
    local dir=${1:-${STORESTACK_MONGO_DIR:-}}
    if [ -z "$dir" ] || [ ! -f "$dir/pid" ]; then
        log "nothing to stop (no STORESTACK_MONGO_DIR or pid file)"
        return
    fi
    local pid
    pid=$(cat "$dir/pid")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        # A clean shutdown takes about 2 s; do not wait forever.
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "secantusd-rs (pid $pid) ignored SIGTERM; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -rf "$dir"
    log "stopped secantusd-rs (pid $pid)"
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop "${2:-}" ;;
    *)
        echo "usage: $0 install|start|stop [DIR]" >&2
        exit 2
        ;;
esac
