#!/bin/bash
# Schedule lag p99 at a fixed rate, repeated, alone and beside a CPU hog on the client's
# core (issue 22 item 5: where multi-millisecond lag comes from):
#   bench/lag.sh [RATE] [RUNS]      # default 20000/s, 5 runs of 10 s each way
# nginx (one worker, `return 200`) pinned to core 0, slo-check to core 1; the hog is a
# busy shell loop pinned to core 1 at the same priority (then slo-check at nice -10,
# which needs root). Prints each run's lag p99, and
# the hypervisor's steal over each run from /proc/stat. Needs nginx, python3 and
# `cargo build --release`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
exe=${SLO_CHECK_EXE:-$root/target/release/slo-check}
rate=${1:-20000}
runs=${2:-5}
work=$(mktemp -d)
pids=()
nginx_pid=""
cleanup() {
    for p in "${pids[@]}" $nginx_pid; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
. "$root/bench/common.sh"
start_nginx "$work"
one_get_scenario "$work/s.yaml" "$rate" 10
steal() { awk '/^cpu /{print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
one() {
    local label=$1 nice=${2:-0} before after
    before=$(steal)
    env -u SLO_CHECK_HISTORY taskset -c 1 nice -n "$nice" "$exe" run --scenario "$work/s.yaml" --platform url \
        --target-url "http://127.0.0.1:$port" --quiet --json --out "$work/out" > "$work/run.json" || true
    after=$(steal)
    python3 - "$label" "$before" "$after" "$work/run.json" <<'PY'
import json, sys
label, before, after, path = sys.argv[1:]
s0, t0 = map(int, before.split()); s1, t1 = map(int, after.split())
r = json.load(open(path))
lag = r["schedule_lag_ms"]
print(f"{label}: lag p99 {lag['p99']} ms, max {lag.get('max')} ms; dropped {r['counts']['dropped']}; "
      f"steal {100 * (s1 - s0) / max(t1 - t0, 1):.2f} %")
PY
}
for i in $(seq "$runs"); do one "alone $i"; done
(taskset -c 1 bash -c 'while :; do :; done') &
pids+=($!)
for i in $(seq "$runs"); do one "beside a hog on its core $i"; done
for i in $(seq "$runs"); do one "beside the hog, slo-check at nice -10, $i" -10; done
