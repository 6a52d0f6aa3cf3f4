#!/usr/bin/env bash
# Runs every test of the workspace. Starts (and installs, if missing) what the
# tests need, and stops what it started on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --all-targets "$@"
cargo test --workspace --doc
