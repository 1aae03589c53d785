#!/usr/bin/env bash
# Fuzz scenario parsing and validation for a bounded time (not run in CI).
# Usage: scripts/fuzz.sh [SECONDS]   (default 300)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-300}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p fuzz/corpus/scenario
cp scenarios/*.yaml fuzz/corpus/scenario/ 2>/dev/null || true
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them.
RUSTC_BOOTSTRAP=1 cargo fuzz run scenario fuzz/corpus/scenario -- \
    -max_total_time="$secs" -max_len=4096 -timeout=5 -rss_limit_mb=2048
