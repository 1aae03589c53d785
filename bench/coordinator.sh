#!/bin/bash
# The CPU a distributed run's coordinator spends per record, against one process issuing
# the same load (docs/distributed.md, "Sizing N"):
#   bench/coordinator.sh RATE GENERATORS     # GENERATORS 0: one process, no generators
# A one-request workflow at RATE/s for 10 s against the stall server (no stall) on
# loopback; the coordinator's utime + stime from /proc/PID/stat (10 ms ticks), sampled
# every 50 ms until it exits. Needs `cargo build --release --examples --bins`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/target/release
rate=${1:?RATE}
generators=${2:?GENERATORS}
work=$(mktemp -d)
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
"$bin/examples/stall_server" --listen 127.0.0.1:0 --stall 0ms > "$work/server.out" 2>&1 &
server=$!
for _ in $(seq 50); do
    grep -q "listening on" "$work/server.out" && break
    sleep 0.1
done
addr=$(grep -o "listening on .*" "$work/server.out" | awk '{print $3}')
cat > "$work/s.yaml" <<YAML
name: coordinator
workflow:
  - name: get
    request: { method: GET, path: /x }
load: { arrival: constant, stages: [{ for: 10s, rate: $rate }], max_in_flight: 100000 }
slos:
  - { name: p95, metric: latency.p95, max: 1s }
YAML
flags=()
[ "$generators" -gt 0 ] && flags=(--generators "$generators")
"$bin/slo-check" run --scenario "$work/s.yaml" --platform url --target-url "http://$addr" \
    --quiet --history off --out "$work/out" "${flags[@]}" > /dev/null 2>&1 &
pid=$!
ticks=0
while kill -0 "$pid" 2>/dev/null; do
    t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || true)
    [ -n "$t" ] && ticks=$t
    sleep 0.05
done
code=0
wait "$pid" || code=$?
started=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['counts']['started'])" "$work/out/run.json")
python3 - "$rate" "$generators" "$code" "$started" "$ticks" <<'PY'
import sys
rate, gens, code, started, ticks = sys.argv[1:]
cpu = int(float(ticks)) / 100
print(f"rate {rate}/s, generators {gens}: exit {code}, {started} started, "
      f"coordinator CPU {cpu:.2f} s, {cpu * 1e6 / int(started):.2f} µs per workflow")
PY
