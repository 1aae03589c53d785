//! The shared test cluster of `scripts/cluster.sh`: a real Kubernetes control plane
//! (kube-apiserver, etcd, controller-manager, scheduler, metrics-server) with KWOK
//! nodes, on 127.0.0.1. scripts/test.sh starts it, exports its kubeconfig as
//! `SLO_CHECK_TEST_KUBECONFIG` and stops it when the suite ends; without it, the
//! cluster tests skip with a note, and fail instead under `SLO_CHECK_REQUIRE_CLUSTER`
//! (which scripts/test.sh sets, so CI never skips them).
//!
//! Tests share the one cluster, each in namespaces of its own (`Namespace`), with its
//! own copy of `stack/` deploying into that namespace (`ClusterStack`).

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::Value;

use super::stack::{StackCopy, TEST_REDIS_PASSWORD};

/// Hard limit on any slo-check child run against the cluster.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

/// `--generators N` placement for the test cluster: the generator pods on the process
/// node (real processes), each asking a small CPU request, as the process node's 2
/// allocatable CPUs are shared by the cluster tests running beside it (their agents must
/// still schedule).
pub const GENERATORS_ON_THE_PROCESS_NODE: [&str; 6] = [
    "--generator-node-selector",
    "slo-check.io/process-node=true",
    "--generator-toleration",
    "slo-check.io/process",
    "--generator-cpu",
    "10m",
];

/// The cluster: its kubeconfig and the kubectl to talk to it with.
pub struct Cluster {
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
}

/// The shared cluster, or `None` (skip, with the reason printed) when none was started
/// and `SLO_CHECK_REQUIRE_CLUSTER` is unset.
pub fn get() -> Option<&'static Cluster> {
    static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| {
            let required = std::env::var_os("SLO_CHECK_REQUIRE_CLUSTER").is_some();
            let Some(kubeconfig) = std::env::var_os("SLO_CHECK_TEST_KUBECONFIG") else {
                assert!(
                    !required,
                    "SLO_CHECK_REQUIRE_CLUSTER is set but SLO_CHECK_TEST_KUBECONFIG is not: start the test cluster with `export SLO_CHECK_TEST_KUBECONFIG=\"$(scripts/cluster.sh up)\"`"
                );
                eprintln!(
                    "skipped: no test cluster (export SLO_CHECK_TEST_KUBECONFIG=\"$(scripts/cluster.sh up)\" to run the cluster tests)"
                );
                return None;
            };
            let kubectl = super::stack::kubectl()?;
            let cluster = Cluster {
                kubeconfig: PathBuf::from(kubeconfig),
                kubectl,
            };
            let version = cluster.kubectl(&["version", "-o", "json"]);
            assert!(
                version.status.success(),
                "the test cluster does not answer (is `scripts/cluster.sh status` healthy?): {}",
                String::from_utf8_lossy(&version.stderr)
            );
            Some(cluster)
        })
        .as_ref()
        .inspect(|c| c.keep_volumes_armed())
}

impl Cluster {
    /// `kubectl --kubeconfig <cluster> ARGS`, run to completion.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        std::process::Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl")
    }

    /// `kubectl ARGS`, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl get ARGS -o json`, parsed.
    pub fn get(&self, args: &[&str]) -> Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.ok(&all)).expect("kubectl prints JSON")
    }

    /// Whether `kubectl get ARGS` finds the object.
    pub fn exists(&self, args: &[&str]) -> bool {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        self.kubectl(&all).status.success()
    }

    /// Re-arm the cluster's volumes every 2 s for as long as this test process lives
    /// (started once). A test's namespace is deleted without waiting, so its Redis
    /// claim, and with it the volume's `Released` state, goes only after the test has
    /// ended: re-arming only when the next stack is made left the suite's last stacks
    /// with no `Available` volume, their Redis `Pending` and their agents never Ready.
    fn keep_volumes_armed(&'static self) {
        static STARTED: OnceLock<()> = OnceLock::new();
        STARTED.get_or_init(|| {
            std::thread::spawn(move || {
                loop {
                    self.rearm_volumes();
                    std::thread::sleep(Duration::from_secs(2));
                }
            });
        });
    }

    /// What the namespace holds, for a test that timed out waiting on it: its pods,
    /// HPA, claims and latest events, the volumes, and the process node's log about it.
    pub fn explain(&self, ns: &str) -> String {
        let mut out = String::new();
        for args in [
            vec!["-n", ns, "get", "pods,hpa,pvc", "-o", "wide"],
            vec!["get", "pv"],
            vec!["-n", ns, "get", "events", "--sort-by=.lastTimestamp"],
        ] {
            let o = self.kubectl(&args);
            let text = String::from_utf8_lossy(&o.stdout);
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            out.push_str(&format!(
                "$ kubectl {}\n{}\n",
                args.join(" "),
                tail.join("\n")
            ));
        }
        let log = self
            .kubeconfig
            .parent()
            .map(|d| d.join("logs/process-node.log"))
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        let about: Vec<&str> = log.lines().filter(|l| l.contains(ns)).collect();
        out.push_str(&format!(
            "process node log, lines naming {ns} (last 30):\n{}\n",
            about[about.len().saturating_sub(30)..].join("\n")
        ));
        out
    }

    /// Volumes of the test cluster whose claim went with an earlier test's namespace
    /// are `Released`; make them `Available` again, as `scripts/cluster.sh up` does.
    pub fn rearm_volumes(&self) {
        let pvs = self.get(&[
            "pv",
            "-l",
            "app.kubernetes.io/part-of=slo-check-test-cluster",
        ]);
        for pv in pvs["items"].as_array().into_iter().flatten() {
            if pv["status"]["phase"] == "Released" {
                let name = pv["metadata"]["name"].as_str().unwrap_or_default();
                // Another test may have re-armed it first: no assertion on the outcome.
                let _ = self.kubectl(&[
                    "patch",
                    "pv",
                    name,
                    "--type=json",
                    "-p=[{\"op\":\"remove\",\"path\":\"/spec/claimRef\"}]",
                ]);
            }
        }
    }
}

/// A namespace name of this test process's own; deleted (without waiting) when dropped.
pub struct Namespace {
    pub name: String,
    cluster: &'static Cluster,
}

impl Namespace {
    /// A fresh, not yet created name: `t-<what>-<pid>-<n>`.
    pub fn new(cluster: &'static Cluster, what: &str) -> Namespace {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        Namespace {
            name: format!("t-{what}-{}-{n}", std::process::id()),
            cluster,
        }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self.cluster.kubectl(&[
            "delete",
            "namespace",
            &self.name,
            "--ignore-not-found",
            "--wait=false",
        ]);
    }
}

/// A copy of `stack/` whose overlays deploy into the test's namespace, and the
/// commands that run slo-check with it against the cluster.
pub struct ClusterStack {
    pub cluster: &'static Cluster,
    pub ns: Namespace,
    copy: StackCopy,
    pub dir: tempfile::TempDir,
    /// The ingress gateway the test uses, held until the stack is dropped.
    gateway: Option<GatewayHold>,
}

/// The shared gateway's lock: one test at a time routes through it.
fn shared_gateway() -> &'static tokio::sync::Mutex<()> {
    static LOCK: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(()))
}

/// An ingress gateway a test uses: the shared one, locked, or one of its own, deleted
/// when dropped.
enum GatewayHold {
    Shared {
        _lock: tokio::sync::MutexGuard<'static, ()>,
    },
    Own {
        cluster: &'static Cluster,
        name: String,
    },
}

impl Drop for GatewayHold {
    fn drop(&mut self) {
        if let GatewayHold::Own { cluster, name } = self {
            let _ = cluster.kubectl(&[
                "-n",
                "istio-system",
                "delete",
                "deployment,service",
                name,
                "--ignore-not-found",
                "--wait=false",
            ]);
        }
    }
}

impl ClusterStack {
    /// On the shared cluster (`None`: skipped, see `get`).
    pub fn new(what: &str) -> Option<ClusterStack> {
        Some(ClusterStack::on(get()?, what))
    }

    /// On the shared cluster, its Gateway selecting the cluster's own ingress gateway
    /// (`istio-system/istio=ingressgateway`, slo-check's default `--ingress`), which
    /// this test holds alone until the stack is dropped (`None`: skipped).
    pub async fn on_shared_gateway(what: &str) -> Option<ClusterStack> {
        let cluster = get()?;
        let hold = shared_gateway().lock().await;
        let mut s = ClusterStack::select(cluster, what, |_| "ingressgateway".into());
        s.gateway = Some(GatewayHold::Shared { _lock: hold });
        Some(s)
    }

    /// On `cluster`: the shared one or an `OwnCluster`'s. The stack's Gateway selects
    /// `istio=gw-<namespace>`, a gateway of the test's own (`own_gateway`), so tests
    /// that run at once never share the routes of one gateway.
    pub fn on(cluster: &'static Cluster, what: &str) -> ClusterStack {
        ClusterStack::select(cluster, what, |ns| format!("gw-{ns}"))
    }

    fn select(
        cluster: &'static Cluster,
        what: &str,
        gateway_label: impl Fn(&str) -> String,
    ) -> ClusterStack {
        cluster.rearm_volumes();
        let ns = Namespace::new(cluster, what);
        let copy = StackCopy::bare();
        let istio = copy.stack.join("base/istio.yaml");
        let text = std::fs::read_to_string(&istio).expect("read the stack's istio.yaml");
        assert!(text.contains("istio: ingressgateway"), "{text}");
        let text = text.replace(
            "istio: ingressgateway",
            &format!("istio: {}", gateway_label(&ns.name)),
        );
        std::fs::write(&istio, text).expect("write the copy's istio.yaml");
        // The tests' own overlay (tests/overlays/process): the stack on the process node.
        super::stack::copy_tree(
            &super::stack::root().join("tests/overlays/process"),
            &copy.stack.join("overlays/process"),
        );
        for overlay in ["kind", "gpu", "process"] {
            let path = copy
                .stack
                .join("overlays")
                .join(overlay)
                .join("kustomization.yaml");
            let mut text = std::fs::read_to_string(&path).expect("read the overlay");
            text.push_str(&format!("namespace: {}\n", ns.name));
            std::fs::write(&path, text).expect("write the overlay");
        }
        ClusterStack {
            cluster,
            ns,
            copy,
            dir: tempfile::tempdir().expect("temp dir"),
            gateway: None,
        }
    }

    /// Start the test's own ingress gateway (scripts/cluster/istio-gateway.yaml as
    /// `istio-system/gw-<namespace>`: Envoy on the process node, configured by the mesh
    /// controller), wait until it is Ready, and keep it until the stack is dropped. The
    /// `--ingress` that reaches it. Once started, later calls return the same one.
    pub fn own_gateway(&mut self) -> String {
        let name = format!("gw-{}", self.ns.name);
        if matches!(&self.gateway, Some(GatewayHold::Own { .. })) {
            return format!("istio-system/istio={name}:8080");
        }
        let manifest = std::fs::read_to_string(
            super::stack::root().join("scripts/cluster/istio-gateway.yaml"),
        )
        .expect("read scripts/cluster/istio-gateway.yaml")
        .replace("istio-ingressgateway", &name)
        .replace("istio: ingressgateway", &format!("istio: {name}"));
        let file = self.dir.path().join("gateway.yaml");
        std::fs::write(&file, manifest).expect("write the gateway manifest");
        self.cluster
            .ok(&["apply", "--server-side", "-f", file.to_str().unwrap()]);
        self.gateway = Some(GatewayHold::Own {
            cluster: self.cluster,
            name: name.clone(),
        });
        self.cluster.ok(&[
            "-n",
            "istio-system",
            "rollout",
            "status",
            &format!("deployment/{name}"),
            "--timeout=120s",
        ]);
        format!("istio-system/istio={name}:8080")
    }

    /// The address of a Ready pod of the gateway this stack's Gateway selects (its Envoy
    /// admin answers on port 15000 there).
    pub fn gateway_pod_ip(&self) -> String {
        let label = match &self.gateway {
            Some(GatewayHold::Own { name, .. }) => format!("istio={name}"),
            Some(GatewayHold::Shared { .. }) => "istio=ingressgateway".into(),
            None => panic!("no gateway: call own_gateway or on_shared_gateway first"),
        };
        let pods = self
            .cluster
            .get(&["-n", "istio-system", "pods", "-l", &label]);
        pods["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| {
                p["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
            .and_then(|p| p["status"]["podIP"].as_str())
            .unwrap_or_else(|| panic!("no Ready gateway pod labelled {label}: {pods}"))
            .to_string()
    }

    pub fn stack(&self) -> &Path {
        &self.copy.stack
    }

    /// `slo-check ARGS --stack <copy> --namespace <ns>` against the cluster (not started).
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_slo-check"));
        cmd.args(args)
            .arg("--stack")
            .arg(&self.copy.stack)
            .arg("--namespace")
            .arg(&self.ns.name)
            .env("KUBECONFIG", &self.cluster.kubeconfig)
            .env("SLO_CHECK_KUBECTL", &self.cluster.kubectl)
            .env("REDIS_PASSWORD", TEST_REDIS_PASSWORD)
            .env_remove("GITHUB_STEP_SUMMARY")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Run to completion: (exit code, stdout, stderr).
    pub async fn run(&self, args: &[&str]) -> (Option<i32>, String, String) {
        finish(self.command(args).spawn().expect("spawn slo-check")).await
    }

    /// `kubectl -n <ns> get ARGS -o json`.
    pub fn get(&self, args: &[&str]) -> Value {
        let mut all = vec!["-n", self.ns.name.as_str()];
        all.extend_from_slice(args);
        self.cluster.get(&all)
    }
}

/// Wait for a child with the hard deadline: (exit code, stdout, stderr).
pub async fn finish(child: tokio::process::Child) -> (Option<i32>, String, String) {
    finish_within(child, CHILD_TIMEOUT).await
}

/// Wait for a child for at most `limit`: (exit code, stdout, stderr).
pub async fn finish_within(
    child: tokio::process::Child,
    limit: Duration,
) -> (Option<i32>, String, String) {
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("slo-check finishes within {limit:?}"))
        .expect("slo-check runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Poll `check` every 200 ms until it gives a value, for at most `limit`.
pub async fn eventually<T>(what: &str, limit: Duration, check: impl FnMut() -> Option<T>) -> T {
    eventually_or(what, limit, check, String::new).await
}

/// `eventually`, whose timeout also prints `explain()` (such as `Cluster::explain`).
pub async fn eventually_or<T>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> Option<T>,
    explain: impl FnOnce() -> String,
) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {limit:?}: {what}\n{}", explain());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `scripts/cluster.sh VERB` for the cluster called `name`: (success, stdout, stderr).
fn cluster_script(name: &str, verb: &str) -> (bool, String, String) {
    let out =
        std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/cluster.sh"))
            .arg(verb)
            .env("SLO_CHECK_CLUSTER_NAME", name)
            // The shared cluster has the machine's one process node.
            .env("SLO_CHECK_PROCESS_NODE", "0")
            .stdin(Stdio::null())
            .output()
            .expect("run scripts/cluster.sh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `scripts/cluster.sh down` for a cluster when dropped, on every path.
struct DownOnDrop(&'static str);

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        let (ok, _, stderr) = cluster_script(self.0, "down");
        if !ok {
            eprintln!("scripts/cluster.sh down ({}) failed: {stderr}", self.0);
        }
    }
}

/// A second cluster, for a test that stops its components (the shared one stays up for
/// the others): `scripts/cluster.sh up` under its own name, `down` when dropped.
/// Started only where the shared cluster is; scripts/test.sh also stops it on exit.
pub struct OwnCluster {
    pub cluster: &'static Cluster,
    name: &'static str,
    _down: DownOnDrop,
}

impl OwnCluster {
    pub fn up(name: &'static str) -> Option<OwnCluster> {
        let shared = get()?;
        let down = DownOnDrop(name);
        let (ok, stdout, stderr) = cluster_script(name, "up");
        assert!(
            ok,
            "scripts/cluster.sh up for the cluster {name} failed: {stderr}"
        );
        let kubeconfig = PathBuf::from(stdout.lines().last().expect("up prints the kubeconfig"));
        let cluster = Box::leak(Box::new(Cluster {
            kubeconfig,
            kubectl: shared.kubectl.clone(),
        }));
        Some(OwnCluster {
            cluster,
            name,
            _down: down,
        })
    }

    /// SIGKILL one component (`kube-apiserver`, ...), as a crash would: by the pid
    /// file kwokctl keeps beside the kubeconfig.
    pub fn kill(&self, component: &str) {
        let dir = self
            .cluster
            .kubeconfig
            .parent()
            .expect("the cluster's directory");
        let pid_file = dir.join("pids").join(format!("{component}.pid"));
        let pid = std::fs::read_to_string(&pid_file)
            .unwrap_or_else(|e| panic!("read {}: {e}", pid_file.display()));
        super::common::signal(pid.trim().parse().expect("a pid"), "-KILL");
    }

    /// Start what is not running again, the cluster's state kept (`scripts/cluster.sh
    /// up` on a cluster that exists); its stderr.
    pub fn revive(&self) -> String {
        let (ok, _, stderr) = cluster_script(self.name, "up");
        assert!(ok, "scripts/cluster.sh up ({}) failed: {stderr}", self.name);
        stderr
    }
}
