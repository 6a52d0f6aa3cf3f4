#!/usr/bin/env bash
# Runs every fuzz target for a bounded time and fails on the first crash:
#
#   ./fuzz/run.sh [seconds per target]     # default: $FUZZ_SECONDS, else 60
#   FUZZ_SECONDS=600 ./fuzz/run.sh         # a longer run
#
# cargo-fuzz (installed here if missing) builds with nightly-only flags
# (-Zsanitizer=address); RUSTC_BOOTSTRAP=1 lets the machine's stable
# toolchain accept them, so no nightly toolchain is needed. Corpora grow in
# fuzz/corpus/<target>/ (not committed: libFuzzer rebuilds one in seconds
# from the targets' own seeds); a crash lands in fuzz/artifacts/<target>/
# with the input that caused it, and `cargo fuzz run <target> <file>`
# replays it.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-${FUZZ_SECONDS:-60}}
export RUSTC_BOOTSTRAP=1
export PATH="$HOME/.cargo/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --version 0.13.2 --locked
fi
cargo fuzz build -O
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in $(cargo fuzz list); do
    echo "== $target ($secs s)"
    if cargo fuzz run -O "$target" -- -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
        grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$log"
    else
        # libFuzzer prints the crashing input (and its base64) at the end.
        tail -n 80 "$log"
        echo "fuzz target $target failed: the input is in fuzz/artifacts/$target/"
        exit 1
    fi
done
