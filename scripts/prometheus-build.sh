#!/usr/bin/env bash
# Builds upstream Prometheus (and promtool) from its Go module into a cache outside the
# work tree, for the tests that need Kubernetes service discovery: Debian's package has
# none (removed "due to the insane amount of dependencies in their client library",
# /usr/share/doc/prometheus/NEWS.Debian.gz, 1.5.0+ds-1), so kubernetes_sd_configs is
# an unknown field there. Builds only when a binary is missing; prints the bin
# directory last. Two cores are shared with other work: -p 2.
set -euo pipefail
PROMETHEUS_VERSION=v0.316.0  # the Go module's version of Prometheus 3.16.0
cache="${SLO_CHECK_CACHE:-$HOME/.cache/slo-check}/prometheus"
bin="$cache/$PROMETHEUS_VERSION/bin"
log() { echo "== prometheus-build: $*" >&2; }
if [ -x "$bin/prometheus" ] && [ -x "$bin/promtool" ]; then
    log "up to date: $bin"
    echo "$bin"
    exit 0
fi
command -v go >/dev/null || { echo "prometheus-build: FAILED: no 'go' on PATH" >&2; exit 1; }
mkdir -p "$bin"
# Modules the cluster's build already fetched are read from its cache (read-only), the
# rest from the proxy; this build's own module and build caches stay under $cache.
export GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" GOBIN="$bin"
export GOPROXY="file://${SLO_CHECK_CACHE:-$HOME/.cache/slo-check}/cluster/go/mod/cache/download,${GOPROXY:-https://proxy.golang.org}"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
t0=$(date +%s)
log "github.com/prometheus/prometheus $PROMETHEUS_VERSION: go install (cold: many minutes)"
go install -p 2 -trimpath \
    "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION" \
    "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION"
log "built in $(($(date +%s) - t0)) s"
# A successful build's Go build cache is not needed again.
go clean -cache >/dev/null 2>&1 || true
echo "$bin"
