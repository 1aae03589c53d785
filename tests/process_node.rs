//! The test cluster's process node (examples/process-node/, started by
//! `scripts/cluster.sh up`): pods bound to `kwok-process-node-0` are local processes,
//! each in a network namespace of its own on 198.18.0.0/24, behind the real API
//! server's EndpointSlices, port-forward, logs and metrics API. Traffic goes only to
//! loopback and to those namespaces, which the cluster script made.

use std::io::{BufRead, Write};
use std::time::Duration;

use serde_json::Value;

use crate::support::cluster::{self, Namespace, eventually};
use crate::support::prom::{PromServer, http_get, kubernetes_sd_binary, short_rules};

/// `GET PATH` on `addr` (HTTP/1.1, `Connection: close`): the status code, or `None`
/// when nothing answers within 3 s.
fn http_status(addr: &str, path: &str) -> Option<u16> {
    let sock: std::net::SocketAddr = addr.parse().expect("an address");
    assert!(
        sock.ip().is_loopback() || addr.starts_with("198.18.0."),
        "test traffic goes to loopback or the process node's namespaces only: {addr}"
    );
    let mut s = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    // The status line only: a port-forward may keep the connection open after the body.
    let mut line = String::new();
    std::io::BufReader::new(s).read_line(&mut line).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn manifest(ns: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: {ns}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: agent, namespace: {ns}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: agent}}}}
  template:
    metadata: {{labels: {{app: agent}}}}
    spec:
      nodeSelector: {{slo-check.io/process-node: "true"}}
      tolerations: [{{key: slo-check.io/process, operator: Exists, effect: NoSchedule}}]
      terminationGracePeriodSeconds: 5
      containers:
      - name: agent
        image: slo-check:dev
        args: [agent, --listen, "0.0.0.0:8080", --allow-non-loopback]
        envFrom: [{{configMapRef: {{name: agent-config}}}}]
        env: [{{name: AGENT_SHUTDOWN_GRACE, valueFrom: {{configMapKeyRef: {{name: agent-config, key: GRACE}}}}}}]
        ports: [{{name: http, containerPort: 8080}}]
        readinessProbe: {{httpGet: {{path: /ready, port: http}}, periodSeconds: 1}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: agent-config, namespace: {ns}}}
data: {{AGENT_STARTUP_DELAY: 2s, GRACE: 1s}}
---
apiVersion: v1
kind: Service
metadata: {{name: agent, namespace: {ns}}}
spec:
  selector: {{app: agent}}
  ports: [{{port: 80, targetPort: http}}]
"#
    )
}

/// The Ready pods' (name, IP).
fn ready_pods(c: &cluster::Cluster, ns: &str) -> Vec<(String, String)> {
    let pods = c.get(&["-n", ns, "pods"]);
    pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| {
            p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .map(|p| {
            (
                p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                p["status"]["podIP"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

fn endpoint_ips(c: &cluster::Cluster, ns: &str) -> Vec<String> {
    let slices = c.get(&[
        "-n",
        ns,
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=agent",
    ]);
    let mut ips: Vec<String> = slices["items"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["conditions"]["ready"] == true)
        .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    ips.sort();
    ips
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_on_the_process_node_are_processes_behind_their_service() {
    let Some(c) = cluster::get() else {
        return;
    };
    let ns = Namespace::new(c, "pn");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), manifest(&ns.name)).unwrap();
    c.ok(&["apply", "-f", file.path().to_str().unwrap()]);

    // Ready from their own readinessProbe, on addresses of their own, as endpoints.
    let pods = eventually(
        "2 Ready pods on the process node",
        Duration::from_secs(60),
        || {
            let pods = ready_pods(c, &ns.name);
            (pods.len() == 2).then_some(pods)
        },
    )
    .await;
    let mut ips: Vec<String> = pods.iter().map(|(_, ip)| ip.clone()).collect();
    ips.sort();
    assert!(ips.iter().all(|ip| ip.starts_with("198.18.0.")), "{ips:?}");
    assert_ne!(ips[0], ips[1]);
    eventually(
        "the EndpointSlice lists both",
        Duration::from_secs(30),
        || (endpoint_ips(c, &ns.name) == ips).then_some(()),
    )
    .await;
    // The endpoints are real listeners.
    for ip in &ips {
        assert_eq!(
            http_status(&format!("{ip}:8080"), "/health"),
            Some(200),
            "{ip}"
        );
    }

    // `kubectl logs` shows the process's output (KWOK serving the controller's log file).
    let (pod, ip) = &pods[0];
    let logs = c.ok(&["-n", &ns.name, "logs", pod]);
    assert!(logs.contains("serving on http://0.0.0.0:8080"), "{logs}");

    // `kubectl port-forward` through the real API server reaches the pod.
    let local = crate::support::common::closed_port();
    let mut forward = std::process::Command::new(&c.kubectl)
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args([
            "-n",
            &ns.name,
            "port-forward",
            &format!("pod/{pod}"),
            &format!("{local}:8080"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kubectl port-forward");
    let through = eventually("port-forward answers", Duration::from_secs(20), || {
        http_status(&format!("127.0.0.1:{local}"), "/health")
    })
    .await;
    let _ = forward.kill();
    let _ = forward.wait();
    assert_eq!(through, 200);

    // The metrics API reports the process's real memory (the floor written before the
    // first sample is 1 MiB; the agent's resident set is several).
    let memory_ki = eventually(
        "pod metrics with real memory",
        Duration::from_secs(90),
        || {
            let out = c.kubectl(&[
                "get",
                "--raw",
                &format!(
                    "/apis/metrics.k8s.io/v1beta1/namespaces/{}/pods/{pod}",
                    ns.name
                ),
            ]);
            let m: Value = serde_json::from_slice(&out.stdout).ok()?;
            let mem = m["containers"][0]["usage"]["memory"]
                .as_str()?
                .strip_suffix("Ki")?;
            let ki: u64 = mem.parse().ok()?;
            (ki > 2048).then_some(ki)
        },
    )
    .await;
    assert!(memory_ki < 512 * 1024, "{memory_ki} Ki");

    // Deleted: SIGTERM within the grace period, the listener gone, the pod removed, and
    // the ReplicaSet's replacement Ready on a new address.
    c.ok(&[
        "-n",
        &ns.name,
        "delete",
        "pod",
        pod,
        "--wait=true",
        "--timeout=30s",
    ]);
    assert_eq!(http_status(&format!("{ip}:8080"), "/health"), None);
    let renewed = eventually("a replacement is Ready", Duration::from_secs(60), || {
        let now = ready_pods(c, &ns.name);
        (now.len() == 2 && now.iter().all(|(n, _)| n != pod)).then_some(now)
    })
    .await;
    for (_, ip) in &renewed {
        assert_eq!(http_status(&format!("{ip}:8080"), "/health"), Some(200));
    }
}

/// `slo-check run --scenario SCENARIO --platform kube` with the stack on the process node
/// (tests/overlays/process), traffic port-forwarded to the agent pods, reports in
/// `<test dir>/out`, plus `extra` (not started).
fn run_on_process_node(
    s: &cluster::ClusterStack,
    scenario: &str,
    extra: &[&str],
) -> tokio::process::Command {
    run_on_overlay(s, "process", scenario, extra)
}

/// `run_on_process_node` with another overlay of the stack copy (one built on `process`).
fn run_on_overlay(
    s: &cluster::ClusterStack,
    overlay: &str,
    scenario: &str,
    extra: &[&str],
) -> tokio::process::Command {
    let ingress = format!("{}/app.kubernetes.io/name=mcp-agent:8080", s.ns.name);
    let mut args = vec!["--overlay", overlay, "--ingress", &ingress];
    args.extend_from_slice(extra);
    run_on_stack(s, scenario, &args)
}

/// `slo-check run --scenario SCENARIO --platform kube --out <test dir>/out` plus `extra`.
fn run_on_stack(
    s: &cluster::ClusterStack,
    scenario: &str,
    extra: &[&str],
) -> tokio::process::Command {
    let out = s.dir.path().join("out");
    let mut args = vec![
        "run",
        "--scenario",
        scenario,
        "--platform",
        "kube",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    s.command(&args)
}

/// The run.json that `run_on_process_node` wrote.
fn run_json(s: &cluster::ClusterStack) -> Value {
    let path = s.dir.path().join("out/run.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The main job, `slo-check --scenario spike --platform kube`, on the test cluster: the
/// stack (tests/overlays/process) with the agent and Redis as processes, traffic through
/// the real API server's port-forward to the cluster's ingress gateway (the default
/// `--ingress`: Envoy, configured from the stack's Gateway, VirtualService and
/// DestinationRule), which executes the scenario's abort fault, and the real HPA
/// controller scaling the Deployment on the agents' real CPU usage as metrics-server
/// reports it. At half time scale; the controller keeps its real periods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spike_is_scaled_by_the_real_hpa_controller_on_real_cpu() {
    let Some(s) = cluster::ClusterStack::on_shared_gateway("spike").await else {
        return;
    };
    let ns = s.ns.name.clone();
    let scenarios = crate::support::stack::root().join("scenarios");
    let cpu = crate::support::cpu::CpuLedger::start();
    let child = run_on_stack(
        &s,
        "spike",
        &[
            "--overlay",
            "process",
            "--allow-faults",
            "--time-scale",
            "0.5",
            "--scenarios-dir",
            scenarios.to_str().unwrap(),
        ],
    )
    .spawn()
    .expect("spawn slo-check");

    // The controller's own record of what it did, read while the namespace exists.
    let c = s.cluster;
    let watching = ns.clone();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let running = done.clone();
    let rescales = tokio::task::spawn_blocking(move || {
        let mut seen: Vec<String> = Vec::new();
        while !running.load(std::sync::atomic::Ordering::Relaxed) {
            let events = c.kubectl(&[
                "-n",
                &watching,
                "get",
                "events",
                "--field-selector",
                "reason=SuccessfulRescale",
                "-o",
                "json",
            ]);
            if let Ok(v) = serde_json::from_slice::<Value>(&events.stdout) {
                for e in v["items"].as_array().into_iter().flatten() {
                    let line = format!(
                        "{}: {}",
                        e["source"]["component"].as_str().unwrap_or_default(),
                        e["message"].as_str().unwrap_or_default()
                    );
                    if !seen.contains(&line) {
                        seen.push(line);
                    }
                }
            }
            std::thread::sleep(Duration::from_secs(2));
        }
        seen
    });
    // Deploy, 97.5 s of load at half time scale, tear down.
    let (code, stdout, stderr) = cluster::finish_within(child, Duration::from_secs(420)).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let rescales = rescales.await.unwrap();
    eprintln!("{}", cpu.table());
    // A verdict (pass 0 or fail 1), not an infrastructure failure.
    assert!(
        matches!(code, Some(0) | Some(1)),
        "exit {code:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // Traffic enters at the gateway the stack's Gateway selects: no warning.
    assert!(
        !stderr.contains("skips the mesh's gateway"),
        "stderr:\n{stderr}"
    );

    let run = run_json(&s);
    assert_eq!(run["platform"]["kind"], "kube");
    assert_eq!(run["platform"]["emulated"], false);
    assert!(
        run["counts"]["succeeded"].as_u64().unwrap() > 1000,
        "{}",
        run["counts"]
    );
    // Envoy meets this traffic, so the fault is patched in, and Envoy executed it.
    assert_eq!(run["faults"][0]["injected"], true, "{}", run["faults"]);
    assert!(
        run["counts"]["failures_by_kind"]["status"].as_u64() > Some(0),
        "the 1 % aborts: {}",
        run["counts"]
    );

    // The real controller scaled out on CPU: its events say so, and the replica timeline
    // (watched from the HPA and the Deployment) shows the new pods Ready.
    assert!(
        rescales
            .iter()
            .any(|r| r.starts_with("horizontal-pod-autoscaler: New size:")
                && r.contains("cpu resource utilization (percentage of request) above target")),
        "no CPU rescale by the HPA controller: {rescales:?}\nstderr:\n{stderr}"
    );
    let hpa = &run["hpa"];
    assert_eq!(hpa["real_time"], true, "{hpa}");
    let decision = hpa["decision_s"].as_f64().expect("a scale-up decision");
    let ready = hpa["scale_up_s"].as_f64().expect("more replicas ready");
    assert!(decision > 0.0 && ready >= decision, "{hpa}");
    assert!(hpa["peak_replicas"].as_u64().unwrap() >= 3, "{hpa}");
    let replicas = run["replicas"].as_array().unwrap();
    assert!(
        replicas.iter().any(|p| p["desired"].as_u64() > Some(2)),
        "{replicas:?}"
    );
    let report = std::fs::read_to_string(s.dir.path().join("out/summary.md")).unwrap();
    assert!(
        report.contains("the hpa.* figures are real seconds"),
        "{report}"
    );

    // Torn down: the namespace slo-check made goes, and with it every agent process.
    eventually("the namespace is gone", Duration::from_secs(120), || {
        (!c.exists(&["namespace", &ns])).then_some(())
    })
    .await;
}

/// The pids of the processes in the network namespace of the pod at `ip` (198.18.0.N
/// is `slck-N`, made by the process node).
fn pids_of_pod(ip: &str) -> Vec<i32> {
    let slot = ip.rsplit('.').next().expect("an IPv4 address");
    let out = std::process::Command::new("ip")
        .args(["netns", "pids", &format!("slck-{slot}")])
        .output()
        .expect("ip netns pids");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn signal(pids: &[i32], sig: libc::c_int) {
    for pid in pids {
        // SAFETY: kill(2) on a pid read from the pod's own network namespace.
        unsafe {
            libc::kill(*pid, sig);
        }
    }
}

const STEADY_ON_THE_CLUSTER: &str = r#"name: steady-on-the-cluster
description: A steady 20 workflows/s on the process node while an agent is SIGKILLed and Redis is frozen.
platform: { deployment: mcp-agent, hpa: mcp-agent-hpa, service: mcp-agent-service, virtual_service: mcp-agent-vs }
workflow:
  - name: submit
    request: { method: POST, path: /api/v1/workflows, json: { task: summarize } }
    expect: { status: [200, 202] }
    capture: { id: /id }
  - name: await
    request: { method: GET, path: "/api/v1/workflows/${id}" }
    poll: { until: { pointer: /status, equals: completed }, every: 250ms, timeout: 30s }
load:
  arrival: poisson
  seed: 42
  stages:
    - { for: 60s, rate: 20 }
  request_timeout: 5s
slos:
  - { name: failures, metric: failure_rate, max: 50% }
"#;

/// Real failures on the process node: an agent's process SIGKILLed mid-run is restarted
/// in its pod, as the kubelet restarts a container (`restartCount` 1), and the pod is
/// not Ready until its probe passes again; Redis frozen (SIGSTOP) for 10 s makes every
/// agent answer /ready 503, so ready replicas fall to 0 and workflows fail, by kind,
/// until it runs again. The run completes and its replica timeline shows both dips.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_agent_and_a_frozen_redis_show_in_the_replicas_and_the_failures() {
    let Some(s) = cluster::ClusterStack::new("failures") else {
        return;
    };
    let ns = s.ns.name.clone();
    let scenario = s.dir.path().join("steady-on-the-cluster.yaml");
    std::fs::write(&scenario, STEADY_ON_THE_CLUSTER).unwrap();
    let child = run_on_process_node(&s, scenario.to_str().unwrap(), &[])
        .spawn()
        .expect("spawn slo-check");
    let c = s.cluster;
    // Once the load runs (two agents Ready), kill one agent, then freeze Redis. The
    // deploy and rollout share two cores with the cluster tests beside this one: up to
    // 240 s (the run's own bound below is 300 s).
    let pods = cluster::eventually_or(
        "2 agents Ready",
        Duration::from_secs(240),
        || {
            let pods: Vec<(String, String)> = ready_pods(c, &ns)
                .into_iter()
                .filter(|(n, _)| n.starts_with("mcp-agent-"))
                .collect();
            (pods.len() == 2).then_some(pods)
        },
        || c.explain(&ns),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    let (victim, victim_ip) = &pods[0];
    let agent = pids_of_pod(victim_ip);
    assert!(!agent.is_empty(), "no process for {victim} at {victim_ip}");
    signal(&agent, libc::SIGKILL);
    eventually(
        "the killed agent restarted",
        Duration::from_secs(30),
        || {
            let pod = s.get(&["pod", victim]);
            (pod["status"]["containerStatuses"][0]["restartCount"].as_u64() >= Some(1))
                .then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let redis_ip = s.get(&["pod", "redis-0"])["status"]["podIP"]
        .as_str()
        .expect("Redis has an address")
        .to_string();
    let redis = pids_of_pod(&redis_ip);
    assert!(!redis.is_empty(), "no Redis process at {redis_ip}");
    signal(&redis, libc::SIGSTOP);
    tokio::time::sleep(Duration::from_secs(10)).await;
    signal(&redis, libc::SIGCONT);

    let (code, _, stderr) = cluster::finish_within(child, Duration::from_secs(300)).await;
    assert!(
        matches!(code, Some(0) | Some(1)),
        "exit {code:?}\nstderr:\n{stderr}"
    );
    let run = run_json(&s);
    let counts = &run["counts"];
    let failed = counts["failed"].as_u64().unwrap();
    assert!(
        failed > 0,
        "Redis frozen for 10 s and no workflow failed: {counts}"
    );
    let by_kind: u64 = counts["failures_by_kind"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(by_kind, failed, "{counts}");
    assert!(counts["succeeded"].as_u64().unwrap() > 500, "{counts}");
    // The replica timeline: 2 ready, a dip (the killed agent), 0 (Redis frozen), 2 again.
    let ready: Vec<u64> = run["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["t_s"].as_f64() > Some(0.0))
        .filter_map(|p| p["ready"].as_u64())
        .collect();
    println!("ready replicas over the run: {ready:?}; counts: {counts}");
    let first_two = ready.iter().position(|r| *r == 2).expect("2 ready");
    let zero = ready[first_two..]
        .iter()
        .position(|r| *r == 0)
        .map(|i| i + first_two)
        .unwrap_or_else(|| panic!("ready never fell to 0 with Redis frozen: {ready:?}"));
    assert!(
        ready[first_two..zero].contains(&1),
        "the killed agent's dip is missing: {ready:?}"
    );
    assert_eq!(ready.last(), Some(&2), "not back to 2 ready: {ready:?}");
}

/// A scenario for `the_stacks_prometheus_rules_slos_and_cross_check_run_on_the_cluster`:
/// submits and one status read (both compared with the agent's own histogram), a PromQL
/// SLO on the agent's server-side p95 and an alert SLO on the seeds' rule for failing
/// workflows, which the test's overlay makes the agents fail.
const PROM_ON_THE_CLUSTER: &str = r#"name: prom-on-the-cluster
description: 10 workflows/s on the process node, scraped by a Prometheus that discovers the pods through the API server.
platform: { deployment: mcp-agent, hpa: mcp-agent-hpa, service: mcp-agent-service, virtual_service: mcp-agent-vs }
prometheus: { settle: 5s }
workflow:
  - name: submit
    request: { method: POST, path: /api/v1/workflows, json: { task: summarize } }
    expect: { status: [202] }
    capture: { id: /id }
  - name: status
    request: { method: GET, path: "/api/v1/workflows/${id}" }
    expect: { status: [200] }
load:
  arrival: constant
  stages:
    - { for: 40s, rate: 10 }
  request_timeout: 5s
slos:
  - { name: server submit p95, max: 1,
      promql: 'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{endpoint="/api/v1/workflows",method="POST"}${window})))' }
  - { name: failing workflows alert, alert: HighWorkflowFailureRate, fires_within: 30s }
"#;

/// The stack on the process node with a share of its workflows failing: a further
/// test-only overlay over tests/overlays/process (the user's stack/ is not touched).
fn failing_overlay(s: &cluster::ClusterStack) -> &'static str {
    let dir = s.stack().join("overlays/prom-failing");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../process]\nnamespace: {}\nconfigMapGenerator:\n  - name: mcp-agent-config\n    behavior: merge\n    literals: [AGENT_FAIL_RATIO=0.3]\n",
            s.ns.name
        ),
    )
    .unwrap();
    "prom-failing"
}

/// Prometheus's active targets in namespace `ns` once at least `n` are up: (scrape
/// URL, labels).
fn up_targets(prom: &PromServer, ns: &str, n: usize) -> Option<Vec<(String, Value)>> {
    let (_, body) = http_get(prom.addr, "/api/v1/targets?state=active")?;
    let v: Value = serde_json::from_str(&body).ok()?;
    let targets: Vec<&Value> = v["data"]["activeTargets"]
        .as_array()?
        .iter()
        .filter(|t| t["labels"]["namespace"] == ns)
        .collect();
    (targets.len() >= n && targets.iter().all(|t| t["health"] == "up")).then(|| {
        targets
            .iter()
            .map(|t| {
                (
                    t["scrapeUrl"].as_str().unwrap_or_default().to_string(),
                    t["labels"].clone(),
                )
            })
            .collect()
    })
}

/// The seeds' Prometheus setup on a cluster run: `slo-check stack scrape-config` turns the
/// stack's ServiceMonitor into `kubernetes_sd_configs` jobs against the real API server;
/// Debian's Prometheus, with those jobs (1 s scrapes) and the seeds' rules (short
/// windows), discovers and scrapes the agent pods on the process node, and nothing else
/// in the namespace; the run's PromQL SLO, its alert SLO (the agents fail 30 % of
/// workflows, so `HighWorkflowFailureRate` fires) and the client/server cross-check are
/// evaluated against it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stacks_prometheus_rules_slos_and_cross_check_run_on_the_cluster() {
    let Some(s) = cluster::ClusterStack::new("prom") else {
        return;
    };
    let Some(prometheus) = kubernetes_sd_binary("prometheus") else {
        return;
    };
    let ns = s.ns.name.clone();
    let overlay = failing_overlay(&s);
    let (code, config, stderr) = s
        .run(&[
            "stack",
            "scrape-config",
            "--overlay",
            overlay,
            "--scrape-interval",
            "1s",
        ])
        .await;
    assert_eq!(code, Some(0), "stack scrape-config: {stderr}");
    let kubeconfig = s.cluster.kubeconfig.display().to_string();
    assert!(
        config.contains(&format!("kubeconfig_file: {kubeconfig} (from KUBECONFIG)"))
            && config.contains("role: endpointslice")
            && config.contains("scrape_interval: 1s"),
        "{config}"
    );
    let rules = short_rules(s.dir.path());
    let prom = PromServer::with_scrape_configs(&prometheus, &config, Some(&rules));

    let scenario = s.dir.path().join("prom-on-the-cluster.yaml");
    std::fs::write(&scenario, PROM_ON_THE_CLUSTER).unwrap();
    let child = run_on_overlay(
        &s,
        overlay,
        scenario.to_str().unwrap(),
        &["--prometheus", &prom.url],
    )
    .spawn()
    .expect("spawn slo-check");

    // Discovered through the API server's EndpointSlices and scraped at the pods' own
    // addresses: the two agents, with the operator's target labels; Redis's Service,
    // which the ServiceMonitor does not select, is not a target.
    // (Prometheus scrapes an endpoint before it is Ready, as the operator's jobs do: wait
    // for both.)
    let (targets, agents) = eventually(
        "Prometheus scrapes the agent pods, and both are Ready",
        Duration::from_secs(120),
        || {
            let targets = up_targets(&prom, &ns, 2)?;
            let agents: Vec<(String, String)> = ready_pods(s.cluster, &ns)
                .into_iter()
                .filter(|(n, _)| n.starts_with("mcp-agent-"))
                .collect();
            (agents.len() >= 2).then_some((targets, agents))
        },
    )
    .await;
    println!("targets: {targets:?}; agent pods: {agents:?}");
    assert_eq!(targets.len(), agents.len(), "{targets:?} vs {agents:?}");
    for (url, labels) in &targets {
        let (pod, ip) = agents
            .iter()
            .find(|(pod, _)| labels["pod"] == pod.as_str())
            .unwrap_or_else(|| panic!("{labels} is no agent pod of {agents:?}"));
        assert!(ip.starts_with("198.18.0."), "{pod} at {ip}");
        assert_eq!(url, &format!("http://{ip}:8080/metrics"), "{labels}");
        for (label, value) in [
            ("service", "mcp-agent-service"),
            ("job", "mcp-agent-service"),
            ("container", "agent"),
            ("endpoint", "http"),
        ] {
            assert_eq!(labels[label], value, "{labels}");
        }
    }

    // What the agents counted, as Prometheus scraped it: the test's own look, for the
    // messages below.
    let (code, stdout, stderr) = cluster::finish_within(child, Duration::from_secs(300)).await;
    let counted = http_get(
        prom.addr,
        "/api/v1/query?query=sum%20by%20(status)%20(max_over_time(workflow_executions_total%5B10m%5D))",
    )
    .map(|(_, body)| body)
    .unwrap_or_default();
    println!("workflows the agents counted: {counted}");
    let run = run_json(&s);
    let summary = std::fs::read_to_string(s.dir.path().join("out/summary.md")).unwrap();
    println!("{summary}");
    assert_eq!(
        code,
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}\nPrometheus:\n{}",
        prom.log()
    );
    let slo = |name: &str| {
        run["slos"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no SLO {name}"))
    };
    let p95 = slo("server submit p95");
    assert_eq!(p95["status"], "pass", "{p95:#}");
    let observed = p95["observed"].as_f64().unwrap();
    assert!(observed > 0.0 && observed < 1.0, "{p95:#}");
    let alert = slo("failing workflows alert");
    assert_eq!(alert["status"], "pass", "{alert:#}");
    let fired = alert["alert"]["fired_after_s"].as_f64().expect("fired");
    assert!((0.0..=30.0).contains(&fired), "{alert:#}");
    assert_eq!(alert["alert"]["already_firing"], false, "{alert:#}");
    // The agents failed workflows the client never saw fail (it reads each once, while
    // it runs), and no request failed: the server's 5xx count agrees with the client.
    assert!(
        run["counts"]["succeeded"].as_u64().unwrap() > 300,
        "{}",
        run["counts"]
    );
    let cc = run["cross_check"].as_array().expect("cross_check rows");
    let row = |what: &str, source: &str| {
        cc.iter()
            .find(|c| c["what"] == what && c["server_source"] == source)
            .unwrap_or_else(|| panic!("no cross-check row {what} ({source}) in {cc:#?}"))
    };
    let failures = row("failure rate", "agent");
    assert_eq!(failures["status"], "agree", "{failures:#}");
    assert_eq!(failures["server"].as_f64(), Some(0.0), "{failures:#}");
    // Latency: the server measured each request, and never more than the client saw
    // (the client's time also holds the API server's port-forward, which a busy
    // two-core machine can slow by tens of milliseconds: then the row says
    // "disagree", with the client above, and that is the truth, not a fault).
    for step in ["step submit p95", "step status p95"] {
        let r = row(step, "agent");
        let server = r["server"].as_f64().unwrap_or_default();
        assert!(server > 0.0, "{r:#}");
        let client = r["client"].as_f64().expect("the client's value");
        let tolerance = r["tolerance"].as_f64().expect("a tolerance");
        assert!(
            r["status"] == "agree" || server <= client + tolerance,
            "the server measured more than the client saw: {r:#}"
        );
    }
}
