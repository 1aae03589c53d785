//! `--platform kube` and `slo-check stack ...` end to end: the real binary, with the
//! real kube client, against the API-server double in `tests/support/kube_double/` over HTTP on
//! loopback. Traffic goes through the double's port-forward to a test server standing
//! in for the Istio ingress gateway. The stack is rendered from this repository's
//! `stack/` with `kubectl kustomize` (tests skip with a note when there is no kubectl,
//! and fail instead under `SLO_CHECK_REQUIRE_KUBECTL`, as scripts/test.sh sets).
//!
//! Every child process has a hard deadline; nothing leaves loopback.

use crate::support;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::support::common::{fault_scenario, signal};
use crate::support::envoy_admin::{FakeEnvoyAdmin, RealEnvoy, istio_to_envoy};
use crate::support::kube_double::{ApiServerDouble, DoubleOptions, Failure};
use crate::support::stack::{StackCopy, TEST_REDIS_PASSWORD};
use serde_json::Value;
use tempfile::TempDir;

/// Hard limit on any child.
const CHILD_TIMEOUT: Duration = Duration::from_secs(90);

const NS: &str = "mcp-agents";
const VS: &str = "mcp-agent-vs";

/// One test's world: the double, a kubeconfig for it, a stack copy, a scratch dir.
struct World {
    double: ApiServerDouble,
    dir: TempDir,
    kubeconfig: PathBuf,
    stack: StackCopy,
    kubectl: PathBuf,
    _gateway: Option<support::common::Server>,
}

impl World {
    /// `None` (skip) when there is no kubectl to render the stack with.
    async fn start(mut options: DoubleOptions, with_gateway: bool) -> Option<World> {
        let kubectl = support::stack::kubectl()?;
        let gateway = with_gateway.then(|| {
            support::common::Server::http(|_req| async { support::common::respond(200, "ok") })
        });
        if let Some(g) = &gateway {
            options.istio_gateway = Some(g.addr);
        }
        let double = ApiServerDouble::start(options).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = double.write_kubeconfig(dir.path());
        Some(World {
            double,
            dir,
            kubeconfig,
            stack: StackCopy::bare(),
            kubectl,
            _gateway: gateway,
        })
    }

    /// `slo-check ARGS` against the double (not yet started).
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_slo-check"));
        cmd.args(args)
            .arg("--context")
            .arg("double")
            .arg("--stack")
            .arg(&self.stack.stack)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("SLO_CHECK_KUBECTL", &self.kubectl)
            .env("REDIS_PASSWORD", TEST_REDIS_PASSWORD)
            .env_remove("GITHUB_STEP_SUMMARY")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Run to completion: (status, stdout, stderr).
    async fn run(&self, args: &[&str]) -> (ExitStatus, String, String) {
        finish(self.command(args).spawn().expect("spawn slo-check")).await
    }

    /// A scenario file in the scratch dir.
    fn scenario(&self, yaml: &str) -> String {
        let path = self.dir.path().join("kube.yaml");
        std::fs::write(&path, yaml).expect("write scenario");
        path.display().to_string()
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn vs(&self) -> Option<Value> {
        self.double
            .get_object("networking.istio.io/v1", "virtualservices", Some(NS), VS)
    }

    fn namespace(&self) -> Option<Value> {
        self.double.get_object("v1", "namespaces", None, NS)
    }

    /// Wait (bounded) until the VirtualService holds a fault; returns it. If the child
    /// ends first or the wait is over, fails with the child's output.
    async fn wait_for_fault(&self, child: &mut tokio::process::Child) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(vs) = self.vs()
                && !vs["spec"]["http"][0]["fault"].is_null()
            {
                return vs;
            }
            let ended = matches!(child.try_wait(), Ok(Some(_)));
            if ended || tokio::time::Instant::now() > deadline {
                let _ = child.start_kill();
                let mut stderr = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use tokio::io::AsyncReadExt;
                    let _ = e.read_to_string(&mut stderr).await;
                }
                panic!("no fault was injected (child ended: {ended}); its stderr:\n{stderr}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn finish(child: tokio::process::Child) -> (ExitStatus, String, String) {
    let out = tokio::time::timeout(CHILD_TIMEOUT, child.wait_with_output())
        .await
        .expect("slo-check finishes within its deadline")
        .expect("slo-check runs");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The VirtualService as the stack renders it.
fn rendered_vs(world: &World) -> Value {
    let objects = StackCopy::with_secrets().render(&world.kubectl, "kind");
    support::stack::find(&objects, "VirtualService", VS).clone()
}

/// Fields of the live object that the stack set (ignores server-set metadata).
fn same_spec(live: &Value, rendered: &Value) -> bool {
    live["spec"] == rendered["spec"]
}

fn assert_valid(vs: &Value) {
    if let Err(errors) = support::stack::validate(vs) {
        panic!(
            "the patched VirtualService fails the Istio CRD schema:\n{}",
            errors.join("\n")
        );
    }
}

macro_rules! world {
    ($options:expr, $gateway:expr) => {
        match World::start($options, $gateway).await {
            Some(w) => w,
            None => return,
        }
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_up_status_and_down() {
    let world = world!(DoubleOptions::default(), false);
    let (status, _, stderr) = world.run(&["stack", "up"]).await;
    assert!(status.success(), "stack up failed: {stderr}");
    assert!(
        stderr.contains("applied") && stderr.contains("field manager slo-check"),
        "{stderr}"
    );

    // Every rendered object is there, applied server-side by slo-check.
    let rendered = StackCopy::with_secrets().render(&world.kubectl, "kind");
    let live = world.double.objects();
    for object in &rendered {
        let found = live.iter().any(|l| {
            l["kind"] == object["kind"] && l["metadata"]["name"] == object["metadata"]["name"]
        });
        assert!(
            found,
            "{} was not applied",
            support::stack::describe(object)
        );
    }
    let applies: Vec<_> = world
        .double
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(applies.len(), rendered.len(), "one apply per object");
    for r in &applies {
        assert_eq!(
            r.content_type.as_deref(),
            Some("application/apply-patch+yaml"),
            "{}",
            r.path
        );
        assert_eq!(
            r.param("fieldManager").as_deref(),
            Some("slo-check"),
            "{}",
            r.path
        );
        assert_eq!(r.param("force").as_deref(), Some("true"), "{}", r.path);
    }
    let ns = world.namespace().expect("namespace created");
    assert_eq!(
        ns["metadata"]["annotations"]["slo-check.io/created-by"],
        "slo-check"
    );

    let (status, stdout, stderr) = world.run(&["stack", "status"]).await;
    assert!(status.success(), "stack status failed: {stderr}");
    assert!(
        stdout.contains("Deployment") && stdout.contains("2/2 ready"),
        "{stdout}"
    );
    assert!(stdout.contains("no slo-check fault"), "{stdout}");

    let (status, _, stderr) = world.run(&["stack", "down"]).await;
    assert!(status.success(), "stack down failed: {stderr}");
    assert!(
        world.namespace().is_none(),
        "namespace deleted (slo-check created it)"
    );
    let left: Vec<_> = world
        .double
        .objects()
        .into_iter()
        .filter(|o| o["metadata"]["namespace"] == NS)
        .collect();
    assert!(left.is_empty(), "objects left: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_that_was_there_before_is_not_deleted() {
    let world = world!(DoubleOptions::default(), false);
    world.double.create_namespace(NS, &[("team", "perf")]);
    let (status, _, stderr) = world.run(&["stack", "up"]).await;
    assert!(status.success(), "{stderr}");
    let (status, _, stderr) = world.run(&["stack", "down"]).await;
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("left in place"), "{stderr}");
    assert!(world.namespace().is_some());
    assert!(
        world
            .double
            .get_object("apps/v1", "deployments", Some(NS), "mcp-agent")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_prerequisites_are_named_with_how_to_install_them() {
    let options = DoubleOptions {
        istio: false,
        metrics: false,
        ..DoubleOptions::default()
    };
    let world = world!(options, false);
    let (status, _, stderr) = world.run(&["stack", "up"]).await;
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("networking.istio.io") && stderr.contains("istioctl install"),
        "{stderr}"
    );
    assert!(
        stderr.contains("metrics.k8s.io") && stderr.contains("metrics-server"),
        "{stderr}"
    );
    assert!(!stderr.contains("monitoring.coreos.com"), "{stderr}");
    let patched = world.double.requests().iter().any(|r| r.method == "PATCH");
    assert!(
        !patched,
        "nothing is applied when a prerequisite is missing"
    );

    // A run also needs the ingress gateway to port-forward to.
    let world = world!(DoubleOptions::default(), false);
    let scenario = world.scenario(&fault_scenario(2, 2));
    let (status, _, stderr) = world
        .run(&[
            "run",
            "--platform",
            "kube",
            "--scenario",
            &scenario,
            "--allow-faults",
            "--quiet",
        ])
        .await;
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("istio=ingressgateway") && stderr.contains("--target-url"),
        "{stderr}"
    );

    for (failure, says) in [
        (Failure::Unavailable, "cannot reach the Kubernetes API"),
        (Failure::Unauthorized, "refused the credentials"),
    ] {
        let world = world!(
            DoubleOptions {
                failure: Some(failure),
                ..DoubleOptions::default()
            },
            false
        );
        let (status, _, stderr) = world.run(&["stack", "up"]).await;
        assert_eq!(status.code(), Some(3), "{stderr}");
        assert!(stderr.contains(says), "{failure:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_refused_without_the_opt_in() {
    let world = world!(DoubleOptions::default(), true);
    world.double.create_namespace(NS, &[]);
    let scenario = world.scenario(&fault_scenario(2, 2));
    let (status, _, stderr) = world
        .run(&[
            "run",
            "--platform",
            "kube",
            "--scenario",
            &scenario,
            "--quiet",
        ])
        .await;
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("slo-check.io/faults=allowed") && stderr.contains("--allow-faults"),
        "{stderr}"
    );
    assert!(
        !world.double.requests().iter().any(|r| r.method == "PATCH"),
        "nothing applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_patches_the_fault_in_and_restores_it_and_watches_the_hpa() {
    let options = DoubleOptions {
        // Offsets from the HPA's creation: the run observes the last two changes.
        hpa_script: vec![
            (Duration::ZERO, 2),
            (Duration::from_millis(2500), 4),
            (Duration::from_millis(4000), 6),
        ],
        ..DoubleOptions::default()
    };
    let world = world!(options, true);
    world
        .double
        .create_namespace(NS, &[("slo-check.io/faults", "allowed")]);
    let scenario = world.scenario(&fault_scenario(6, 3));
    let out = world.out();
    let mut child = world
        .command(&[
            "run",
            "--platform",
            "kube",
            "--scenario",
            &scenario,
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ])
        .spawn()
        .expect("spawn");
    let patched = world.wait_for_fault(&mut child).await;
    let (status, _, stderr) = finish(child).await;
    assert_eq!(status.code(), Some(0), "{stderr}");

    // The fault went in by JSON patch, as Istio's schema allows, and came out again.
    assert_eq!(
        patched["spec"]["http"][0]["fault"]["abort"]["httpStatus"],
        503
    );
    assert_eq!(
        patched["spec"]["http"][0]["fault"]["abort"]["percentage"]["value"],
        50.0
    );
    assert!(!patched["metadata"]["annotations"]["slo-check.io/fault-original"].is_null());
    assert_valid(&patched);
    let json_patches = world
        .double
        .requests()
        .into_iter()
        .filter(|r| r.content_type.as_deref() == Some("application/json-patch+json"))
        .count();
    assert_eq!(json_patches, 2, "one patch to inject, one to restore");

    // Traffic went through the port-forward, and the report says when the fault was live.
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).expect("run.json"))
            .expect("JSON");
    assert!(
        report["counts"]["succeeded"].as_u64().unwrap() > 50,
        "{}",
        report["counts"]
    );
    assert_eq!(report["platform"]["kind"], "kube");
    assert_eq!(report["platform"]["emulated"], false);
    let fault = &report["faults"][0];
    assert!(
        fault["applied_at_s"].as_f64().is_some() && fault["reverted_at_s"].as_f64().is_some(),
        "{fault}"
    );

    // The replica timeline is the double's status history, seen through the watch API.
    let observed: Vec<u64> = dedup(
        report["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["desired"].as_u64().unwrap()),
    );
    let written: Vec<u64> = dedup(
        world
            .double
            .hpa_history()
            .iter()
            .filter_map(|r| r.status["desiredReplicas"].as_u64()),
    );
    assert!(
        written.ends_with(&[2, 4, 6]),
        "the double's script: {written:?}"
    );
    assert!(
        written.ends_with(&observed),
        "observed {observed:?} is not the tail of {written:?}"
    );
    assert!(observed.ends_with(&[2, 4, 6]), "observed {observed:?}");
    let last = report["replicas"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["current"].as_u64(), last["ready"].as_u64()),
        (Some(6), Some(6)),
        "{last}"
    );
    let watched = world.double.requests().iter().any(|r| {
        r.path.ends_with("/horizontalpodautoscalers") && r.param("watch").as_deref() == Some("true")
    });
    assert!(watched, "the HPA is watched, not polled");

    // Torn down (no --keep), and the VirtualService never outlives the run with a fault.
    assert!(world.vs().is_none());
    assert!(
        world.namespace().is_some(),
        "the namespace was the user's (labelled), so it stays"
    );
}

/// The gateway's Envoy as the test plays it: every other request aborted with 503 while
/// the fault is held (`aborting`), each counted as Envoy counts them.
struct PlayedGateway {
    aborting: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    aborts: Arc<AtomicU64>,
    server: support::common::Server,
}

impl PlayedGateway {
    fn start() -> PlayedGateway {
        let aborting = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let aborts = Arc::new(AtomicU64::new(0));
        let (on, n, a) = (aborting.clone(), requests.clone(), aborts.clone());
        let server = support::common::Server::http(move |_req| {
            let seen = n.fetch_add(1, Ordering::SeqCst);
            let abort = on.load(Ordering::SeqCst) && seen % 2 == 0;
            if abort {
                a.fetch_add(1, Ordering::SeqCst);
            }
            async move {
                if abort {
                    support::common::respond(503, "fault filter abort")
                } else {
                    support::common::respond(200, "ok")
                }
            }
        });
        PlayedGateway {
            aborting,
            requests,
            aborts,
            server,
        }
    }

    /// `/stats` as Envoy's admin renders the counters.
    fn stats(&self) -> impl Fn() -> String + Send + 'static {
        let (n, a) = (self.requests.clone(), self.aborts.clone());
        move || {
            let (n, a) = (n.load(Ordering::SeqCst), a.load(Ordering::SeqCst));
            format!(
                "http.outbound_0.0.0.0_8080.downstream_rq_5xx: {a}\nhttp.outbound_0.0.0.0_8080.downstream_rq_total: {n}\nhttp.outbound_0.0.0.0_8080.fault.aborts_injected: {a}\nhttp.outbound_0.0.0.0_8080.fault.delays_injected: 0\n"
            )
        }
    }
}

/// Play istiod: each change of the VirtualService reaches the fake Envoy `lag` later.
async fn push_late(world: &World, admin: &FakeEnvoyAdmin, gateway: &PlayedGateway, lag: Duration) {
    let mut last: Option<Vec<Value>> = None;
    let mut due: std::collections::VecDeque<(tokio::time::Instant, Vec<Value>)> =
        Default::default();
    loop {
        if let Some(vs) = world.vs() {
            let faults: Vec<Value> = vs["spec"]["http"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| istio_to_envoy(&r["fault"]))
                .collect();
            if last.as_ref() != Some(&faults) {
                due.push_back((tokio::time::Instant::now() + lag, faults.clone()));
                last = Some(faults);
            }
        }
        while due
            .front()
            .is_some_and(|(at, _)| *at <= tokio::time::Instant::now())
        {
            let (_, faults) = due.pop_front().unwrap();
            gateway
                .aborting
                .store(faults.iter().any(|f| !f.is_null()), Ordering::SeqCst);
            admin.hold(faults);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_times_the_faults_propagation_to_envoy_and_its_counts() {
    let gateway = PlayedGateway::start();
    let admin = FakeEnvoyAdmin::start(NS, VS, &["agent"]);
    admin.stats_from(gateway.stats());
    let options = DoubleOptions {
        istio_gateway: Some(gateway.server.addr),
        istio_gateway_admin: Some(admin.server.addr),
        ..DoubleOptions::default()
    };
    let world = world!(options, false);
    world
        .double
        .create_namespace(NS, &[("slo-check.io/faults", "allowed")]);
    let scenario = world.scenario(&fault_scenario(5, 3));
    let out = world.out();
    let child = world
        .command(&[
            "run",
            "--platform",
            "kube",
            "--scenario",
            &scenario,
            "--out",
            out.to_str().unwrap(),
        ])
        .spawn()
        .expect("spawn");
    let lag = Duration::from_millis(250);
    let (status, stdout, stderr) = tokio::select! {
        done = finish(child) => done,
        _ = push_late(&world, &admin, &gateway, lag) => unreachable!(),
    };
    assert_eq!(status.code(), Some(0), "{stderr}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).expect("run.json"))
            .expect("JSON");

    // Timed from the API server's acceptance; Envoy held each change `lag` later.
    let fault = &report["faults"][0];
    let d = &fault["data_plane"];
    assert_eq!(
        d["seen_in"], "Envoy config_dump of 1 gateway pod",
        "{fault}"
    );
    for key in ["applied_after_s", "reverted_after_s"] {
        let after = d[key].as_f64().unwrap_or(-1.0);
        assert!((0.25..2.0).contains(&after), "{key}: {fault}");
    }
    assert!(d.get("applied_not_seen_within_s").is_none(), "{fault}");
    let applied = fault["applied_at_s"].as_f64().unwrap();
    assert!((1.0..1.5).contains(&applied), "{fault}");

    // The gateway's counters over the load, beside the client's count.
    let g = &report["gateway"];
    let status_failures = report["counts"]["failures_by_kind"]["status"]
        .as_u64()
        .unwrap();
    assert!(status_failures > 0, "{}", report["counts"]);
    assert_eq!(g["source"], "Envoy admin /stats of 1 gateway pod", "{g}");
    assert_eq!(g["aborts_injected"].as_u64(), Some(status_failures), "{g}");
    assert_eq!(
        g["downstream_rq"].as_u64(),
        Some(gateway.requests.load(Ordering::SeqCst)),
        "{g}"
    );
    assert!(
        g["upstream_rq_pending_overflow"].is_null(),
        "not exported: {g}"
    );
    assert!(
        stdout.contains(&format!(
            "gateway (Envoy admin /stats of 1 gateway pod): {status_failures} aborts injected, 0 delays;"
        )) && stdout.contains("fault `aborts`: "),
        "{stdout}"
    );
}

/// Play istiod for a real Envoy: each change of the VirtualService is pushed as it comes.
async fn push_to(world: &World, envoy: &RealEnvoy) {
    let mut last: Option<Vec<Value>> = None;
    loop {
        if let Some(vs) = world.vs() {
            let faults: Vec<Value> = vs["spec"]["http"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| istio_to_envoy(&r["fault"]))
                .collect();
            if last.as_ref() != Some(&faults) {
                envoy.push(&faults);
                last = Some(faults);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A real Envoy executes the fault (`$SLO_CHECK_ENVOY_BIN`; skipped without it): run.json
/// times its arrival in Envoy's config_dump, and Envoy's own count of the aborts it
/// injected is the client's count of status failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_envoy_executes_the_fault_and_counts_what_the_client_saw() {
    let upstream =
        support::common::Server::http(|_req| async { support::common::respond(200, "ok") });
    let Some(envoy) = RealEnvoy::start(NS, VS, upstream.addr).await else {
        return;
    };
    let options = DoubleOptions {
        istio_gateway: Some(envoy.listener),
        istio_gateway_admin: Some(envoy.admin),
        ..DoubleOptions::default()
    };
    let world = world!(options, false);
    world
        .double
        .create_namespace(NS, &[("slo-check.io/faults", "allowed")]);
    let scenario = world.scenario(&fault_scenario(5, 3));
    let out = world.out();
    let child = world
        .command(&[
            "run",
            "--platform",
            "kube",
            "--scenario",
            &scenario,
            "--out",
            out.to_str().unwrap(),
        ])
        .spawn()
        .expect("spawn");
    let (status, stdout, stderr) = tokio::select! {
        done = finish(child) => done,
        _ = push_to(&world, &envoy) => unreachable!(),
    };
    assert_eq!(status.code(), Some(0), "{stderr}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).expect("run.json"))
            .expect("JSON");
    let d = &report["faults"][0]["data_plane"];
    assert_eq!(
        d["seen_in"], "Envoy config_dump of 1 gateway pod",
        "{report}"
    );
    for key in ["applied_after_s", "reverted_after_s"] {
        let after = d[key].as_f64().unwrap_or(-1.0);
        assert!((0.0..2.0).contains(&after), "{key}: {d}");
    }
    let g = &report["gateway"];
    let status_failures = report["counts"]["failures_by_kind"]["status"]
        .as_u64()
        .unwrap();
    assert!(
        status_failures > 0,
        "50 % of 2 s at 20/s: {}",
        report["counts"]
    );
    assert_eq!(g["aborts_injected"].as_u64(), Some(status_failures), "{g}");
    assert_eq!(
        g["downstream_rq_5xx"].as_u64(),
        Some(status_failures),
        "{g}"
    );
    assert_eq!(g["delays_injected"].as_u64(), Some(0), "{g}");
    assert_eq!(g["upstream_rq_pending_overflow"].as_u64(), Some(0), "{g}");
    assert_eq!(g["outlier_ejections_enforced"].as_u64(), Some(0), "{g}");
    assert!(
        g["downstream_rq"].as_u64().unwrap() >= report["counts"]["started"].as_u64().unwrap(),
        "{g}"
    );
    assert!(
        stdout.contains(&format!(
            "gateway (Envoy admin /stats of 1 gateway pod): {status_failures} aborts injected, 0 delays;"
        )),
        "{stdout}"
    );
}

fn dedup(values: impl Iterator<Item = u64>) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    for v in values {
        if out.last() != Some(&v) {
            out.push(v);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_inside_the_fault_window_restores_the_route() {
    let world = world!(DoubleOptions::default(), true);
    let scenario = world.scenario(&fault_scenario(30, 29));
    let out = world.out();
    let mut child = world
        .command(&[
            "run",
            "--platform",
            "kube",
            "--scenario",
            &scenario,
            "--allow-faults",
            "--keep",
            "--quiet",
            "--grace",
            "1s",
            "--out",
            out.to_str().unwrap(),
        ])
        .spawn()
        .expect("spawn");
    let pid = child.id().expect("pid");
    world.wait_for_fault(&mut child).await;
    signal(pid, "-INT");
    let (status, _, stderr) = finish(child).await;
    assert_eq!(status.code(), Some(130), "{stderr}");
    let vs = world.vs().expect("kept (--keep)");
    assert!(
        same_spec(&vs, &rendered_vs(&world)),
        "route not restored: {}",
        vs["spec"]
    );
    assert!(
        vs["metadata"]["annotations"]["slo-check.io/fault-original"].is_null(),
        "{vs}"
    );
    assert!(
        out.join("run.json").is_file(),
        "a partial report is written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_sigkill_stack_clean_and_the_next_run_remove_the_leftover() {
    let world = world!(DoubleOptions::default(), true);
    let scenario = world.scenario(&fault_scenario(30, 29));
    let args = [
        "run",
        "--platform",
        "kube",
        "--scenario",
        &scenario,
        "--allow-faults",
        "--keep",
        "--quiet",
    ];
    for cleaner in ["stack clean", "next run"] {
        let mut child = world.command(&args).spawn().expect("spawn");
        let pid = child.id().expect("pid");
        world.wait_for_fault(&mut child).await;
        signal(pid, "-KILL");
        let (status, _, _) = finish(child).await;
        assert_eq!(status.code(), None, "killed");
        let left = world.vs().expect("VirtualService");
        assert!(
            !left["spec"]["http"][0]["fault"].is_null(),
            "a SIGKILL leaves the fault"
        );

        let (status, stdout, _) = world.run(&["stack", "status"]).await;
        assert!(
            status.success() && stdout.contains("HOLDS A FAULT"),
            "{stdout}"
        );

        let (status, stderr) = if cleaner == "stack clean" {
            let (status, _, stderr) = world.run(&["stack", "clean"]).await;
            (status, stderr)
        } else {
            // A run with no faults: it cleans up at its start, then runs normally.
            let quiet = world.scenario(&support::common::get_scenario(
                "/",
                "{ arrival: constant, stages: [{ for: 1s, rate: 5 }] }",
                "[{ name: errors, metric: failure_rate, max: 100% }]",
            ));
            let (status, _, stderr) = world
                .run(&[
                    "run",
                    "--platform",
                    "kube",
                    "--scenario",
                    &quiet,
                    "--keep",
                    "--out",
                    "o2",
                ])
                .await;
            (status, stderr)
        };
        assert!(status.success(), "{cleaner}: {stderr}");
        assert!(
            stderr.contains("restored VirtualService"),
            "{cleaner}: {stderr}"
        );
        let vs = world.vs().expect("VirtualService");
        assert!(
            same_spec(&vs, &rendered_vs(&world)),
            "{cleaner}: not restored: {}",
            vs["spec"]
        );
        assert!(vs["metadata"]["annotations"]["slo-check.io/fault-original"].is_null());
    }
}

#[test]
fn kube_flags_are_refused_on_other_platforms() {
    for flag in [
        ["--keep"].as_slice(),
        &["--allow-faults"],
        &["--context", "x"],
        &["--overlay", "gpu"],
    ] {
        let out = support::common::slo_check()
            .args(["--scenario", "smoke"])
            .args(flag)
            .current_dir(support::stack::root())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(flag[0]) && stderr.contains("--platform kube"),
            "{stderr}"
        );
    }
}
