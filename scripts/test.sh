#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this).
# Installs what the tests need first; every step is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== slo-check: format, lint, tests"
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
# Release mode: the load tests drive hundreds of workflows per second through the
# embedded platform, which an unoptimised build on two cores cannot keep up with.
cargo test --release --locked
