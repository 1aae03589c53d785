//! The test cluster's process node (examples/process-node/, started by
//! `scripts/cluster.sh up`): pods bound to `kwok-process-node-0` are local processes,
//! each in a network namespace of its own on 198.18.0.0/24, behind the real API
//! server's EndpointSlices, port-forward, logs and metrics API. Traffic goes only to
//! loopback and to those namespaces, which the cluster script made.

use std::io::{BufRead, Write};
use std::time::Duration;

use serde_json::Value;

use crate::support::cluster::{self, Namespace, eventually};

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
