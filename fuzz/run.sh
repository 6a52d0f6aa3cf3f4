#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: ./fuzz/run.sh [seconds, default 60].
# Needs `cargo install cargo-fuzz` and a nightly toolchain (libFuzzer with
# AddressSanitizer). Corpora stay in fuzz/corpus (not committed); a crash
# lands in fuzz/artifacts/<target>/ with the input that caused it.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
for target in compressed_decode encrypted_decode typed_decode; do
    echo "== $target ($secs s)"
    cargo +nightly fuzz run "$target" -- -max_total_time="$secs" -print_final_stats=1
done
