#!/usr/bin/env bash
# slo-check against wrk, oha and hey on one loopback target: installs what is
# missing, builds, then bench/bench.py measures and prints a table of ratios.
#
#   bench/run.sh                 # full run: ~15 min including the 10-minute soak
#   bench/run.sh --soak 0        # everything but the soak (~3 min)
#   bench/run.sh --quick         # CI smoke (~30 s): tiny runs, no soak, installs nothing,
#                                # skips peers that are not installed
# Other flags (--duration, --rate, --search-duration, --stall-duration, --out) go to
# bench/bench.py. Loopback only; every process it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
for a in "$@"; do [ "$a" = --quick ] && quick=1; done

if [ "$quick" = 0 ]; then
    missing=()
    for t in nginx wrk hey; do command -v "$t" >/dev/null || missing+=("$t"); done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "== installing ${missing[*]} from Debian" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"
    fi
    if ! command -v oha >/dev/null; then
        echo "== installing oha (cargo install oha --locked; several minutes)" >&2
        cargo install oha --locked
    fi
fi

echo "== building slo-check and the stall server (release)" >&2
cargo build --release --quiet --bin slo-check --example stall_server

exec python3 bench/bench.py "$@"
