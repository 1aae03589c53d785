//! The kube platform against a real control plane: `slo-check stack` and
//! `--platform kube` on the shared test cluster of `scripts/cluster.sh` (real API
//! server with its admission, defaulting, quota and CRD schemas; real controllers and
//! scheduler; nodes and pods simulated by KWOK, so no container runs and no Service
//! carries traffic). Each test works in a namespace of its own.
//!
//! Traffic in the fault tests goes to a test server on loopback (`--target-url`),
//! while the faults are patched into, and restored in, the real VirtualService.

use std::time::Duration;

use serde_json::Value;

use crate::support::cluster::{ClusterStack, OwnCluster, eventually, finish};
use crate::support::common::{self, fault_scenario, signal};

const VS: &str = "mcp-agent-vs";
const FAULT_ANNOTATION: &str = "slo-check.io/fault-original";

macro_rules! stack {
    ($what:expr) => {
        match ClusterStack::new($what) {
            Some(s) => s,
            None => return,
        }
    };
}

/// Every `managedFields` entry's manager for an object.
fn managers(object: &Value) -> Vec<String> {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["manager"].as_str().map(str::to_string))
        .collect()
}

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_up_status_and_down_on_a_real_control_plane() {
    let s = stack!("kind");
    let (code, _, stderr) = s.run(&["stack", "up"]).await;
    assert_eq!(code, Some(0), "stack up failed: {stderr}");

    // Every object the real API server accepted is owned by the slo-check field manager.
    for (kind, name) in [
        ("deployment", "mcp-agent"),
        ("statefulset", "redis"),
        ("service", "mcp-agent-service"),
        ("hpa", "mcp-agent-hpa"),
        ("pdb", "mcp-agent-pdb"),
        ("resourcequota", "mcp-agents-quota"),
        ("virtualservices.networking.istio.io", VS),
        ("destinationrules.networking.istio.io", "mcp-agent-dr"),
        ("servicemonitors.monitoring.coreos.com", "mcp-agent"),
        ("prometheusrules.monitoring.coreos.com", "mcp-agent-alerts"),
    ] {
        let object = s.get(&[kind, name, "--show-managed-fields"]);
        assert!(
            managers(&object).iter().any(|m| m == "slo-check"),
            "{kind}/{name} managers: {:?}",
            managers(&object)
        );
    }
    // Defaulting by the real API server: fields the stack never set.
    let deployment = s.get(&["deployment", "mcp-agent"]);
    assert_eq!(
        deployment["spec"]["strategy"]["type"], "RollingUpdate",
        "{deployment:#}"
    );
    assert!(deployment["spec"]["revisionHistoryLimit"].is_number());

    // The real controllers made a ReplicaSet, the scheduler put its pods on KWOK nodes,
    // and they are Ready.
    let sets = s.get(&["replicasets"]);
    let set = sets["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|rs| rs["metadata"]["ownerReferences"][0]["name"] == "mcp-agent")
        .unwrap_or_else(|| panic!("no ReplicaSet owned by the Deployment: {sets:#}"));
    let set_name = set["metadata"]["name"].as_str().unwrap().to_string();
    let pods = s.get(&["pods"]);
    let agents: Vec<&Value> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["ownerReferences"][0]["name"] == set_name.as_str())
        .collect();
    assert!(!agents.is_empty(), "no agent pods: {pods:#}");
    for pod in &agents {
        assert!(ready(pod), "{pod:#}");
        let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
        assert!(node.starts_with("kwok-node-"), "scheduled on {node:?}");
    }
    // The StatefulSet's pod has its claim bound by the real PV controller.
    let redis = s.get(&["pod", "redis-0"]);
    assert!(ready(&redis), "{redis:#}");
    let claim = s.get(&["pvc", "data-redis-0"]);
    assert_eq!(claim["status"]["phase"], "Bound", "{claim:#}");
    // The disruption controller gave the PDB a status.
    let pdb = s.get(&["pdb", "mcp-agent-pdb"]);
    assert!(
        pdb["status"]["observedGeneration"].as_i64() >= Some(1),
        "{pdb:#}"
    );

    let (code, stdout, stderr) = s.run(&["stack", "status"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("Deployment") && stdout.contains("ready"),
        "{stdout}"
    );
    assert!(stdout.contains("no slo-check fault"), "{stdout}");

    // Teardown waits for the namespace's real finalization: gone when `down` returns.
    let (code, _, stderr) = s.run(&["stack", "down"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        !s.cluster.exists(&["namespace", &s.ns.name]),
        "namespace {} still there after down: {stderr}",
        s.ns.name
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_that_existed_before_is_kept() {
    let s = stack!("kept");
    s.cluster.ok(&["create", "namespace", &s.ns.name]);
    let (code, _, stderr) = s.run(&["stack", "up"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = s.run(&["stack", "down"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("left in place"), "{stderr}");
    let ns = s.cluster.get(&["namespace", &s.ns.name]);
    assert_eq!(ns["status"]["phase"], "Active", "{ns:#}");
    assert!(
        !s.cluster
            .exists(&["-n", &s.ns.name, "deployment", "mcp-agent"]),
        "the stack's objects are deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gpu_overlay_lands_on_the_gpu_node_and_the_quota_refuses_more() {
    let s = stack!("gpu");
    let (code, _, stderr) = s.run(&["stack", "up", "--overlay", "gpu"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    // nodeSelector and the toleration, honoured by the real scheduler.
    let pods = s.get(&["pods", "-l", "app=mcp-agent"]);
    let items = pods["items"].as_array().unwrap();
    assert!(!items.is_empty(), "{pods:#}");
    for pod in items {
        assert_eq!(pod["spec"]["nodeName"], "kwok-gpu-node-0", "{pod:#}");
    }
    // Past the quota's requests.nvidia.com/gpu (10), real admission refuses pods, and
    // `stack status` shows them with the API server's reason.
    s.cluster.ok(&[
        "-n",
        &s.ns.name,
        "scale",
        "deployment",
        "mcp-agent",
        "--replicas",
        "12",
    ]);
    let status = eventually(
        "stack status names the quota",
        Duration::from_secs(30),
        || {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_slo-check"))
                .args([
                    "stack",
                    "status",
                    "--overlay",
                    "gpu",
                    "--namespace",
                    &s.ns.name,
                ])
                .arg("--stack")
                .arg(s.stack())
                .env("KUBECONFIG", &s.cluster.kubeconfig)
                .env("SLO_CHECK_KUBECTL", &s.cluster.kubectl)
                .env("REDIS_PASSWORD", "unused-for-status")
                .output()
                .expect("run slo-check");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            (text.contains("exceeded quota") && text.contains("requests.nvidia.com/gpu"))
                .then_some(text)
        },
    )
    .await;
    assert!(
        status.contains("used up: requests.nvidia.com/gpu 10/10"),
        "{status}"
    );
    // The GPU node has 4 GPUs: the scheduler leaves the rest pending, and says why.
    assert!(
        status.contains("pending") && status.contains("Insufficient nvidia.com/gpu"),
        "{status}"
    );
    let (code, _, stderr) = s.run(&["stack", "down", "--overlay", "gpu"]).await;
    assert_eq!(code, Some(0), "{stderr}");
}

/// The stack deployed with `--keep`-style `stack up`, a scenario file, and a loopback
/// server standing in for the service (the cluster's pods carry no traffic).
struct FaultRun {
    s: ClusterStack,
    server: common::Server,
    scenario: String,
}

impl FaultRun {
    async fn new(what: &str, for_s: u32, fault_end_s: u32) -> Option<FaultRun> {
        Some(FaultRun::on(ClusterStack::new(what)?, for_s, fault_end_s).await)
    }

    async fn on(s: ClusterStack, for_s: u32, fault_end_s: u32) -> FaultRun {
        let (code, _, stderr) = s.run(&["stack", "up"]).await;
        assert_eq!(code, Some(0), "{stderr}");
        let server = common::Server::http(|_req| async { common::respond(200, "ok") });
        let scenario = s.dir.path().join("fault.yaml");
        std::fs::write(&scenario, fault_scenario(for_s, fault_end_s)).unwrap();
        FaultRun {
            s,
            server,
            scenario: scenario.display().to_string(),
        }
    }

    fn command(&self, extra: &[&str]) -> tokio::process::Command {
        let out = self.s.dir.path().join("out");
        let mut args = vec![
            "run",
            "--platform",
            "kube",
            "--scenario",
            &self.scenario,
            "--allow-faults",
            "--keep",
            "--quiet",
            "--grace",
            "1s",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let mut cmd = self.s.command(&args);
        cmd.arg("--target-url").arg(self.server.url());
        cmd
    }

    fn vs(&self) -> Value {
        self.s.get(&["virtualservices.networking.istio.io", VS])
    }

    /// Wait (bounded) until the live VirtualService holds slo-check's fault.
    async fn wait_for_fault(&self) -> Value {
        eventually(
            "the fault is in the VirtualService",
            Duration::from_secs(60),
            || {
                let vs = self.vs();
                (!vs["spec"]["http"][0]["fault"].is_null()).then_some(vs)
            },
        )
        .await
    }

    /// The VirtualService before the run, and the run (with its pid), once the
    /// fault is in the VirtualService.
    async fn start_in_the_fault_window(&self) -> (Value, tokio::process::Child, u32) {
        let original = self.vs();
        let child = self.command(&[]).spawn().expect("spawn");
        let pid = child.id().expect("pid");
        self.wait_for_fault().await;
        (original, child, pid)
    }

    fn assert_restored(&self, original: &Value) {
        let vs = self.vs();
        assert_eq!(vs["spec"], original["spec"], "route not restored");
        assert!(
            vs["metadata"]["annotations"][FAULT_ANNOTATION].is_null(),
            "{vs:#}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_is_patched_into_the_real_virtual_service_and_restored() {
    let Some(f) = FaultRun::new("fault", 4, 3).await else {
        return;
    };
    let original = f.vs();
    let child = f.command(&[]).spawn().expect("spawn");
    let patched = f.wait_for_fault().await;
    // The real API server (Istio's structural CRD schema) accepted the JSON patch.
    assert_eq!(
        patched["spec"]["http"][0]["fault"]["abort"]["httpStatus"], 503,
        "{patched:#}"
    );
    assert_eq!(
        patched["spec"]["http"][0]["fault"]["abort"]["percentage"]["value"], 50.0,
        "{patched:#}"
    );
    let patched_fields = f.s.get(&[
        "virtualservices.networking.istio.io",
        VS,
        "--show-managed-fields",
    ]);
    assert!(
        managers(&patched_fields).iter().any(|m| m == "slo-check"),
        "{patched_fields:#}"
    );
    let (code, _, stderr) = finish(child).await;
    assert_eq!(code, Some(0), "{stderr}");
    f.assert_restored(&original);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_writer_keeps_its_change() {
    let Some(f) = FaultRun::new("writer", 5, 4).await else {
        return;
    };
    let child = f.command(&[]).spawn().expect("spawn");
    f.wait_for_fault().await;
    // Another writer changes the same VirtualService inside the fault window: the
    // revert's patch, guarded by the resourceVersion it read, must not undo it.
    f.s.cluster.ok(&[
        "-n",
        &f.s.ns.name,
        "patch",
        "virtualservices.networking.istio.io",
        VS,
        "--type=json",
        "-p=[{\"op\":\"add\",\"path\":\"/spec/http/0/timeout\",\"value\":\"7s\"}]",
    ]);
    let (code, _, stderr) = finish(child).await;
    assert_eq!(code, Some(0), "{stderr}");
    let vs = f.vs();
    assert_eq!(vs["spec"]["http"][0]["timeout"], "7s", "{vs:#}");
    assert!(vs["spec"]["http"][0]["fault"].is_null(), "{vs:#}");
    assert!(vs["metadata"]["annotations"][FAULT_ANNOTATION].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_inside_the_fault_window_restores_the_real_route() {
    let Some(f) = FaultRun::new("sigint", 30, 29).await else {
        return;
    };
    let (original, child, pid) = f.start_in_the_fault_window().await;
    signal(pid, "-INT");
    let (code, _, stderr) = finish(child).await;
    assert_eq!(code, Some(130), "{stderr}");
    f.assert_restored(&original);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_sigkill_stack_clean_restores_the_real_route() {
    let Some(f) = FaultRun::new("sigkill", 30, 29).await else {
        return;
    };
    let (original, child, pid) = f.start_in_the_fault_window().await;
    signal(pid, "-KILL");
    let _ = finish(child).await;
    let left = f.vs();
    assert!(
        !left["metadata"]["annotations"][FAULT_ANNOTATION].is_null(),
        "a SIGKILL leaves the fault and its record: {left:#}"
    );
    let (code, stdout, stderr) = f.s.run(&["stack", "status"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("HOLDS A FAULT LEFT BY slo-check"),
        "{stdout}"
    );
    let (code, _, stderr) = f.s.run(&["stack", "clean"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    f.assert_restored(&original);
}

/// kube-apiserver killed inside a fault window, on a cluster of the test's own. Back
/// before the revert's patience (`fault_timeline::REVERT_PATIENCE`, 60 s) runs out:
/// the revert is retried until it lands, and said to be late. Down for longer: exit 3,
/// naming `stack clean`, which restores the route once the server is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_outage_in_the_fault_window_is_waited_out_or_named() {
    let Some(own) = OwnCluster::up("slo-check-outage") else {
        return;
    };

    // The fault ends at 5 s; the server is gone from ~1.5 s to ~10 s.
    let f = FaultRun::on(ClusterStack::on(own.cluster, "outage"), 20, 5).await;
    let (original, child, _) = f.start_in_the_fault_window().await;
    own.kill("kube-apiserver");
    tokio::time::sleep(Duration::from_secs(7)).await;
    let revived = own.revive();
    assert!(revived.contains("not running: kube-apiserver"), "{revived}");
    let (code, _, stderr) = finish(child).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("fault `aborts` could not be reverted")
            && stderr.contains("retrying for up to 1m"),
        "{stderr}"
    );
    assert!(
        stderr.contains("fault `aborts` was reverted") && stderr.contains("late, at attempt"),
        "{stderr}"
    );
    f.assert_restored(&original);

    // Down for good (past the patience): the run says what is left and how to undo it.
    let f = FaultRun::on(ClusterStack::on(own.cluster, "outage-long"), 6, 3).await;
    let (original, child, _) = f.start_in_the_fault_window().await;
    own.kill("kube-apiserver");
    let (code, _, stderr) = finish(child).await;
    assert_eq!(code, Some(3), "{stderr}");
    // Given up once, at the window's end, not again when the schedule stops.
    assert_eq!(
        stderr
            .matches("fault `aborts` could not be reverted within 1m")
            .count(),
        1,
        "{stderr}"
    );
    let clean = format!("slo-check stack clean --namespace {}", f.s.ns.name);
    assert!(stderr.contains(&clean), "{stderr}");
    own.revive();
    let (code, _, stderr) = f.s.run(&["stack", "clean"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    f.assert_restored(&original);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_ingress_gateway_pod_the_run_names_it_and_how_to_install_it() {
    let Some(cluster) = crate::support::cluster::get() else {
        return;
    };
    // Nothing is applied when a prerequisite is missing, so a fresh namespace stays empty.
    let s = ClusterStack::new("prereq").expect("cluster");
    let scenario = s.dir.path().join("plain.yaml");
    std::fs::write(
        &scenario,
        "name: plain\nworkflow:\n  - name: get\n    request: { method: GET, path: / }\nload:\n  arrival: constant\n  stages:\n    - { for: 1s, rate: 5 }\nslos:\n  - { name: errors, metric: failure_rate, max: 100% }\n",
    )
    .unwrap();
    // The test cluster has an ingress gateway (Envoy on the process node): this run
    // names a gateway label no pod carries.
    let (code, _, stderr) = s
        .run(&[
            "run",
            "--platform",
            "kube",
            "--scenario",
            scenario.to_str().unwrap(),
            "--ingress",
            "istio-system/istio=no-such-gateway:8080",
            "--quiet",
        ])
        .await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("istio=no-such-gateway") && stderr.contains("istio-system"),
        "{stderr}"
    );
    assert!(
        !cluster.exists(&["-n", &s.ns.name, "deployment", "mcp-agent"]),
        "nothing applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fault_patch_is_refused_by_the_real_server_once_the_object_changed() {
    use slo_check::platform::kube::vs_faults::{inject_patch, istio_fault};
    let s = stack!("guard");
    let (code, _, stderr) = s.run(&["stack", "up"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let vs = s.get(&["virtualservices.networking.istio.io", VS]);
    let routes = vs["spec"]["http"].as_array().unwrap().len();
    let original = vec![Value::Null; routes];
    let abort = slo_check::scenario::Fault {
        name: "aborts".into(),
        start: Duration::ZERO,
        duration: Duration::from_secs(1),
        delay: None,
        abort: Some(slo_check::scenario::Abort {
            percent: 50.0,
            http_status: 503,
        }),
    };
    let fault = istio_fault(&[abort]);
    let patch = serde_json::to_string(&inject_patch(&vs, &original, &fault)).unwrap();
    // Someone else writes first: the patch built from the old read must not apply.
    s.cluster.ok(&[
        "-n",
        &s.ns.name,
        "label",
        "virtualservices.networking.istio.io",
        VS,
        "touched=yes",
    ]);
    let stale = s.cluster.kubectl(&[
        "-n",
        &s.ns.name,
        "patch",
        "virtualservices.networking.istio.io",
        VS,
        "--type=json",
        "-p",
        &patch,
    ]);
    assert!(!stale.status.success(), "a stale patch applied");
    let why = String::from_utf8_lossy(&stale.stderr);
    // 422: the `test` of the resourceVersion failed (kubectl words it as invalid).
    assert!(why.contains("invalid"), "{why}");
    assert!(
        s.get(&["virtualservices.networking.istio.io", VS])["spec"]["http"][0]["fault"].is_null()
    );
    // The same patch built from a fresh read applies.
    let fresh = s.get(&["virtualservices.networking.istio.io", VS]);
    let patch = serde_json::to_string(&inject_patch(&fresh, &original, &fault)).unwrap();
    s.cluster.ok(&[
        "-n",
        &s.ns.name,
        "patch",
        "virtualservices.networking.istio.io",
        VS,
        "--type=json",
        "-p",
        &patch,
    ]);
}

/// A kubeconfig for `sa` in `ns` of the test cluster: the cluster's server and CA, a
/// token from the TokenRequest API.
fn service_account_kubeconfig(s: &ClusterStack, sa: &str) -> std::path::PathBuf {
    let admin: Value = serde_json::from_str(
        &s.cluster
            .ok(&["config", "view", "--raw", "--minify", "-o", "json"]),
    )
    .unwrap();
    let cluster = &admin["clusters"][0]["cluster"];
    let token = s.cluster.ok(&["-n", &s.ns.name, "create", "token", sa]);
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "test", "cluster": {
            "server": cluster["server"],
            "certificate-authority": cluster["certificate-authority"],
        }}],
        "users": [{ "name": sa, "user": { "token": token.trim() } }],
        "contexts": [{ "name": "sa", "context": { "cluster": "test", "user": sa } }],
        "current-context": "sa",
    });
    let path = s.dir.path().join("sa-kubeconfig.json");
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

/// Removes the test's cluster-wide RBAC objects, whatever happens.
struct ClusterRbac<'a>(&'a ClusterStack, String);

impl Drop for ClusterRbac<'_> {
    fn drop(&mut self) {
        let c = self.0.cluster;
        let _ = c.kubectl(&[
            "delete",
            "clusterrolebinding",
            &self.1,
            "--ignore-not-found",
        ]);
        let _ = c.kubectl(&["delete", "clusterrole", &self.1, "--ignore-not-found"]);
        let _ = c.kubectl(&[
            "-n",
            "istio-system",
            "delete",
            "rolebinding,role",
            &self.1,
            "--ignore-not-found",
        ]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_with_exactly_the_printed_role_runs_and_one_verb_less_is_named() {
    let s = stack!("rbac");
    let ns = s.ns.name.clone();
    s.cluster.ok(&["create", "namespace", &ns]);
    s.cluster
        .ok(&["label", "namespace", &ns, "slo-check.io/faults=allowed"]);
    // What slo-check says it needs, under a name of this test's own.
    let (code, rbac, stderr) = s.run(&["stack", "permissions"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let name = format!("slo-check-{ns}");
    let rbac = rbac.replace("name: slo-check\n", &format!("name: {name}\n"));
    let _cleanup = ClusterRbac(&s, name.clone());
    let apply = |text: &str| {
        let file = s.dir.path().join("rbac.yaml");
        std::fs::write(&file, text).unwrap();
        s.cluster.ok(&["apply", "-f", file.to_str().unwrap()]);
    };
    apply(&rbac);
    s.cluster
        .ok(&["-n", &ns, "create", "serviceaccount", "runner"]);
    let subject = format!("--serviceaccount={ns}:runner");
    for binding_ns in [ns.as_str(), "istio-system"] {
        s.cluster.ok(&[
            "-n",
            binding_ns,
            "create",
            "rolebinding",
            &name,
            "--role",
            &name,
            &subject,
        ]);
    }
    s.cluster.ok(&[
        "create",
        "clusterrolebinding",
        &name,
        "--clusterrole",
        &name,
        &subject,
    ]);
    let kubeconfig = service_account_kubeconfig(&s, "runner");
    let as_runner = |args: &[&str]| {
        let mut cmd = s.command(args);
        cmd.env("KUBECONFIG", &kubeconfig);
        cmd
    };

    // One verb less: named with its resource before anything is applied; exit 3.
    let without = rbac.replacen(
        "    resources: [\"poddisruptionbudgets\"]\n    verbs: [\"create\", \"delete\", \"get\", \"patch\"]",
        "    resources: [\"poddisruptionbudgets\"]\n    verbs: [\"create\", \"delete\", \"get\"]",
        1,
    );
    assert_ne!(
        without, rbac,
        "the printed Role holds the PDB's verbs:\n{rbac}"
    );
    apply(&without);
    let (code, _, stderr) = finish(as_runner(&["stack", "up"]).spawn().unwrap()).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "patch poddisruptionbudgets.policy in namespace {ns}"
        )),
        "{stderr}"
    );
    assert!(
        !s.cluster.exists(&["-n", &ns, "deployment", "mcp-agent"]),
        "nothing half-applied"
    );

    // Exactly the printed permissions: up, a run with a fault, down.
    apply(&rbac);
    let (code, _, stderr) = finish(as_runner(&["stack", "up"]).spawn().unwrap()).await;
    assert_eq!(code, Some(0), "{stderr}");
    let server = common::Server::http(|_req| async { common::respond(200, "ok") });
    let scenario = s.dir.path().join("fault.yaml");
    std::fs::write(&scenario, fault_scenario(3, 2)).unwrap();
    let (code, _, stderr) = finish(
        as_runner(&[
            "run",
            "--platform",
            "kube",
            "--scenario",
            scenario.to_str().unwrap(),
            "--quiet",
            "--out",
            s.dir.path().join("out").to_str().unwrap(),
            "--target-url",
            &server.url(),
        ])
        .spawn()
        .unwrap(),
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        !s.cluster.exists(&["-n", &ns, "deployment", "mcp-agent"]),
        "the run deleted the stack"
    );
}
