#!/usr/bin/env bash
# slo-check against wrk, oha, hey and vegeta on one loopback target: installs what
# is missing, builds, then bench/bench.py measures and prints a table of ratios.
#
#   bench/run.sh                 # full run: ~15 min including the 10-minute soak
#   bench/run.sh --soak 0        # everything but the soak (~5 min)
#   bench/run.sh --quick         # CI smoke (~1 min): tiny runs, no soak, installs nothing,
#                                # skips peers that are not installed
# Other flags (--duration, --rate, --search-duration, --stall-duration, --out) go to
# bench/bench.py. Loopback only; every process it starts is stopped on exit.
#
# vegeta (Go) is built into a cache outside the tree, with its own module and build
# caches: ${SLO_CHECK_CACHE:-~/.cache/slo-check}/bench/. k6 is not used: it is
# under the AGPL, which the project's module list rules out (bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

VEGETA_VERSION=v12.13.0
bench_cache="${SLO_CHECK_CACHE:-$HOME/.cache/slo-check}/bench"
vegeta_bin="$bench_cache/vegeta-$VEGETA_VERSION/bin"

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
    if [ ! -x "$vegeta_bin/vegeta" ]; then
        if command -v go >/dev/null; then
            echo "== installing vegeta $VEGETA_VERSION into $vegeta_bin (go install; a few minutes)" >&2
            mkdir -p "$vegeta_bin"
            # Two shared cores: -p 1. The build cache is not needed once it is built.
            GOBIN="$vegeta_bin" GOMODCACHE="$bench_cache/go/mod" GOCACHE="$bench_cache/go/build" \
                GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
                go install -p 1 -trimpath "github.com/tsenart/vegeta/v12@$VEGETA_VERSION"
            GOCACHE="$bench_cache/go/build" go clean -cache >/dev/null 2>&1 || true
        else
            echo "== no 'go' on PATH: vegeta cannot be installed; its measurements are skipped" >&2
        fi
    fi
fi
# Whether installed now or before (also in --quick, which installs nothing).
if [ -x "$vegeta_bin/vegeta" ]; then
    export PATH="$vegeta_bin:$PATH"
fi

echo "== building slo-check and the stall server (release)" >&2
cargo build --release --quiet --bin slo-check --example stall_server

exec python3 bench/bench.py "$@"
