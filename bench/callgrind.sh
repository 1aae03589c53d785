#!/bin/bash
# User-space instructions per request (bench/README.md, "Where the CPU goes"):
#   bench/callgrind.sh [RATE]      # default 5000/s
# slo-check under `valgrind --tool=callgrind`, pinned to one core, runs the bench's
# one-GET scenario at RATE/s for 2 s and again for 4 s against Debian's nginx (one
# worker, `return 200`) pinned to the other; the difference in instructions (callgrind's
# `summary`) over the difference in requests started cancels start-up and reports.
# Instruction counts do not depend on what else the machine does. Needs valgrind, nginx
# and `cargo build --release`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
exe=${SLO_CHECK_EXE:-$root/target/release/slo-check}
rate=${1:-5000}
for tool in valgrind nginx taskset python3; do
    command -v "$tool" > /dev/null || { echo "bench/callgrind.sh: $tool is not installed" >&2; exit 2; }
done
work=$(mktemp -d)
nginx_pid=""
cleanup() {
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
. "$root/bench/common.sh"
start_nginx "$work"
measure() {
    local secs=$1
    one_get_scenario "$work/s$secs.yaml" "$rate" "$secs"
    env -u SLO_CHECK_HISTORY taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$work/cg$secs.out" \
        "$exe" run --scenario "$work/s$secs.yaml" --platform url \
        --target-url "http://127.0.0.1:$port" --quiet --out "$work/o$secs" \
        > /dev/null 2> "$work/vg$secs.err" || true
    local ir started
    ir=$(grep -m1 '^summary:' "$work/cg$secs.out" | awk '{print $2}')
    started=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['counts']['started'])" "$work/o$secs/run.json")
    echo "$ir $started"
}
read -r ir2 n2 < <(measure 2)
read -r ir4 n4 < <(measure 4)
what=${SLO_CHECK_EXE:+$SLO_CHECK_EXE}
what=${what:-commit $(git -C "$root" rev-parse --short HEAD)}
python3 - "$ir2" "$n2" "$ir4" "$n4" "$rate" "$what" <<'PY'
import sys
ir2, n2, ir4, n4, rate, what = sys.argv[1:]
ir2, n2, ir4, n4 = int(ir2), int(n2), int(ir4), int(n4)
print(f"{what}, {rate}/s: 2 s run {ir2} instructions, {n2} started; "
      f"4 s run {ir4}, {n4} started; {(ir4 - ir2) / (n4 - n2):.0f} user-space instructions per request")
PY
