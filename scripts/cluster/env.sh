# Shared by scripts/cluster-build.sh and scripts/cluster.sh (sourced, not run).
# The versions of the test cluster's parts, and where their builds are cached:
# outside the work tree, keyed by those versions, so a warm machine rebuilds nothing
# and `rm -rf "$SLO_CHECK_CLUSTER_CACHE"` makes the next build truly cold (the Go
# module and build caches live there too).

K8S_VERSION=v1.36.3            # kube-apiserver, kube-controller-manager, kube-scheduler
K8S_STAGING_VERSION=v0.36.3    # k8s.io/{api,apiserver,client-go,...} published for it
ETCD_VERSION=v3.6.16           # go.etcd.io/etcd/server/v3 (etcdmain.Main)
KWOK_VERSION=v0.8.0            # sigs.k8s.io/kwok: kwok (controller) and kwokctl
METRICS_SERVER_VERSION=v0.8.0  # sigs.k8s.io/metrics-server

SLO_CHECK_CLUSTER_CACHE="${SLO_CHECK_CACHE:-$HOME/.cache/slo-check}/cluster"
SLO_CHECK_CLUSTER_GO_VERSION="$(go env GOVERSION 2>/dev/null || echo nogo)"
SLO_CHECK_CLUSTER_KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_ms-${METRICS_SERVER_VERSION}_${SLO_CHECK_CLUSTER_GO_VERSION}"
SLO_CHECK_CLUSTER_BIN="$SLO_CHECK_CLUSTER_CACHE/$SLO_CHECK_CLUSTER_KEY/bin"
SLO_CHECK_CLUSTER_STAMP="$SLO_CHECK_CLUSTER_CACHE/$SLO_CHECK_CLUSTER_KEY/stamp"
SLO_CHECK_CLUSTER_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok kwokctl metrics-server)

# The stamp a complete build writes last; a warm `up` checks it and the binaries.
slo_check_cluster_stamp_text() {
    printf 'k8s=%s staging=%s etcd=%s kwok=%s metrics-server=%s go=%s\n' \
        "$K8S_VERSION" "$K8S_STAGING_VERSION" "$ETCD_VERSION" "$KWOK_VERSION" \
        "$METRICS_SERVER_VERSION" "$SLO_CHECK_CLUSTER_GO_VERSION"
}

slo_check_cluster_built() {
    local b
    [ -f "$SLO_CHECK_CLUSTER_STAMP" ] || return 1
    [ "$(cat "$SLO_CHECK_CLUSTER_STAMP")" = "$(slo_check_cluster_stamp_text)" ] || return 1
    for b in "${SLO_CHECK_CLUSTER_BINARIES[@]}"; do
        [ -x "$SLO_CHECK_CLUSTER_BIN/$b" ] || return 1
    done
}
