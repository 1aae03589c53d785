//! PromQL SLOs, alert SLOs and the client/server cross-check against a real Prometheus
//! (Debian's package, started per test on a free loopback port) scraping real agents
//! driven by a real `slo-check run`. Every run and wait is bounded; Prometheus and the
//! platform stop when the test ends.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::prom::{PromServer, free_port, short_rules};
use serde_json::Value;
use slo_check::platform::local::{self, LocalOptions};
use slo_check::prom::{Prometheus, sd};
use slo_check::scenario::{Abort, Fault, LocalPlatform};
use slo_check::target::FaultInjector;

/// Upper bound on one `slo-check run` in these tests.
const RUN_LIMIT: Duration = Duration::from_secs(90);

fn slo_check() -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("slo-check"));
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// Waits for the run (killing it past `RUN_LIMIT`) without blocking the async runtime.
async fn finish(mut child: Child) -> (i32, String) {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            return (status.code().unwrap_or(-1), err);
        }
        if start.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("slo-check run did not finish within {RUN_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn run_json(out: &Path) -> Value {
    let text = std::fs::read_to_string(out.join("run.json")).expect("run.json written");
    serde_json::from_str(&text).expect("run.json parses")
}

fn slo<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no SLO {name} in {run:#}"))
}

async fn agent() -> (slo_check::agent::AgentHandle, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = slo_check::agent::start(listener, slo_check::agent::AgentConfig::default())
        .await
        .unwrap();
    let addr = handle.addr();
    (handle, addr)
}

/// Waits until Prometheus has scraped every target in the sd file.
async fn wait_up(prom: &PromServer, targets: &[(String, SocketAddr)]) {
    let client = Prometheus::new(&prom.url).unwrap();
    sd::wait_scraped(&client, targets, Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", prom.log()));
}

fn write_scenario(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("scenario.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

const SUBMIT: &str = r#"workflow:
  - name: submit
    request: { method: POST, path: /api/v1/workflows, json: { task: summarize } }
    expect: { status: [202] }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promql_slos_pass_fail_and_unknown_and_the_cross_check_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let (_agent, addr) = agent().await;
    let sd_file = dir.path().join("targets.json");
    let targets = vec![("agent".to_string(), addr)];
    sd::write(&sd_file, &targets).unwrap();
    let prom = PromServer::start(&sd_file, None);
    wait_up(&prom, &targets).await;
    let scenario = write_scenario(
        dir.path(),
        &format!(
            r#"name: promql
prometheus: {{ settle: 3s }}
{SUBMIT}load:
  arrival: constant
  stages: [ {{ for: 4s, rate: 20 }} ]
slos:
  - {{ name: submits seen, promql: 'sum(increase(http_requests_total{{endpoint="/api/v1/workflows",status_code="202"}}${{window}}))', min: 40 }}
  - {{ name: submits seen as in Grafana, promql: 'sum(increase(http_requests_total{{endpoint="/api/v1/workflows",status_code="202"}}[$__range])) / $__range_s', min: 10 }}
  - {{ name: too many submits, promql: 'sum(increase(http_requests_total{{endpoint="/api/v1/workflows"}}${{window}}))', max: 10 }}
  - {{ name: no such metric, promql: 'sum(no_such_metric_total)', max: 1 }}
  - {{ name: bad query, promql: 'sum(rate(http_requests_total[', max: 1 }}
"#
        ),
    );
    let out = dir.path().join("out");
    let child = slo_check()
        .args(["run", "-q", "--platform", "url", "--target-url"])
        .arg(format!("http://{addr}"))
        .arg("--scenario")
        .arg(&scenario)
        .args(["--prometheus", &prom.url, "--out"])
        .arg(&out)
        .spawn()
        .unwrap();
    let (code, stderr) = finish(child).await;
    assert_eq!(code, 1, "an SLO fails, so exit 1: {stderr}");
    let run = run_json(&out);

    let pass = slo(&run, "submits seen");
    assert_eq!(pass["status"], "pass", "{pass:#}");
    let observed = pass["observed"].as_f64().unwrap();
    // 80 submits; increase() extrapolates from 1s scrapes, so allow a wide margin.
    assert!(
        (40.0..=120.0).contains(&observed),
        "about 80 submits expected, saw {observed}"
    );
    let query = pass["query"].as_str().unwrap();
    assert!(
        query.contains("status_code=\"202\"}[4s]"),
        "window expanded: {query}"
    );

    // Grafana's `$__range` is the same window without brackets; `$__range_s` its seconds.
    let grafana = slo(&run, "submits seen as in Grafana");
    assert_eq!(grafana["status"], "pass", "{grafana:#}");
    let query = grafana["query"].as_str().unwrap();
    assert!(query.ends_with("}[4s])) / 4"), "range expanded: {query}");
    let per_s = grafana["observed"].as_f64().unwrap();
    assert!(
        (per_s - observed / 4.0).abs() < 1e-9,
        "the same increase over the same range, per second: {per_s} vs {observed}"
    );

    let fail = slo(&run, "too many submits");
    assert_eq!(fail["status"], "fail", "{fail:#}");

    let empty = slo(&run, "no such metric");
    assert_eq!(empty["status"], "unknown", "{empty:#}");
    assert!(
        empty["reason"].as_str().unwrap().contains("no data"),
        "{empty:#}"
    );

    let bad = slo(&run, "bad query");
    assert_eq!(bad["status"], "unknown", "{bad:#}");
    let reason = bad["reason"].as_str().unwrap();
    assert!(
        reason.contains("rejected the query") && reason.contains("bad_data"),
        "{reason}"
    );

    // The cross-check: the submit step's p95 agrees with the agent's histogram within the
    // bucket width, and no workflow failed on either side.
    let cc = run["cross_check"]
        .as_array()
        .expect("cross_check in run.json");
    let p95 = cc
        .iter()
        .find(|c| c["what"] == "step submit p95")
        .expect("p95 item");
    assert_eq!(p95["status"], "agree", "{p95:#}");
    assert!(p95["server"].as_f64().unwrap() > 0.0, "{p95:#}");
    let failures = cc
        .iter()
        .find(|c| c["what"] == "failure rate" && c["server_source"] == "agent")
        .expect("failure item");
    assert_eq!(failures["status"], "agree", "{failures:#}");
    assert_eq!(failures["server"].as_f64(), Some(0.0));
    let mesh = cc.iter().find(|c| c["server_source"] == "mesh").unwrap();
    assert_eq!(
        mesh["status"], "no_data",
        "no mesh in front of a bare agent: {mesh:#}"
    );
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("Client vs server"), "{summary}");
    eprintln!("{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_down_is_unknown_and_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let (_agent, addr) = agent().await;
    let dead = format!("http://127.0.0.1:{}", free_port());
    let scenario = write_scenario(
        dir.path(),
        &format!(
            r#"name: promdown
prometheus: {{ settle: 1s }}
{SUBMIT}load:
  arrival: constant
  stages: [ {{ for: 1s, rate: 10 }} ]
slos:
  - {{ name: server errors, promql: 'sum(rate(http_requests_total{{status_code=~"5.."}}${{window}}))', max: 1 }}
  - {{ name: alert, alert: HighErrorRate, fires_within: 1s }}
"#
        ),
    );
    let out = dir.path().join("out");
    let sd_file = dir.path().join("sd/targets.json");
    let child = slo_check()
        .args(["run", "--platform", "url", "--target-url"])
        .arg(format!("http://{addr}"))
        .arg("--scenario")
        .arg(&scenario)
        .args(["--prometheus", &dead, "--out"])
        .arg(&out)
        .arg("--prometheus-sd-file")
        .arg(&sd_file)
        .spawn()
        .unwrap();
    let (code, stderr) = finish(child).await;
    assert_ne!(code, 0, "never a pass without Prometheus: {stderr}");
    assert_eq!(code, 1, "{stderr}");
    // Said before any load is spent, on every platform alike.
    assert!(
        stderr.contains(&format!("warning: Prometheus at {dead} does not answer")),
        "{stderr}"
    );
    let run = run_json(&out);
    for name in ["server errors", "alert"] {
        let s = slo(&run, name);
        assert_eq!(s["status"], "unknown", "{s:#}");
        let reason = s["reason"].as_str().unwrap();
        assert!(
            reason.contains(&dead) && reason.contains("could not be queried"),
            "{reason}"
        );
    }
    assert!(
        run.get("cross_check").is_none(),
        "no cross-check without Prometheus"
    );
    // The file_sd file names the url platform's target.
    let sd: Value = serde_json::from_str(&std::fs::read_to_string(&sd_file).unwrap()).unwrap();
    assert_eq!(
        sd,
        serde_json::json!([{"targets": [addr.to_string()], "labels": {"job": "target"}}])
    );
}

/// The embedded platform in this process (replicas, balancer, mesh metrics, Istio-style
/// faults); the load comes from a real `slo-check run --platform url` against its
/// balancer, and the test applies the abort fault on the scenario's schedule, since the
/// url platform cannot inject faults itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_fault_fires_and_resolves_the_error_rate_alert() {
    let dir = tempfile::tempdir().unwrap();
    let platform = local::up(LocalOptions {
        settings: LocalPlatform {
            replicas: Some(2),
            autoscale: false,
            startup_delay: Duration::from_millis(100),
            cpu_per_workflow: Duration::from_millis(1),
            llm_median: Duration::from_millis(2),
            llm_p99: Duration::from_millis(5),
            tool_median: Duration::from_millis(1),
            tool_p99: Duration::from_millis(2),
            seed: Some(5),
            ..LocalPlatform::default()
        },
        time_scale: 1.0,
        base_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    })
    .await
    .expect("the embedded platform comes up");
    let sd_file = dir.path().join("targets.json");
    let writer = sd::SdWriter::start(sd_file.clone(), &platform.target()).unwrap();
    let targets = writer.current();
    assert_eq!(targets.len(), 3, "two replicas and the mesh: {targets:?}");
    let rules = short_rules(dir.path());
    let prom = PromServer::start(&sd_file, Some(&rules));
    wait_up(&prom, &targets).await;

    let (start, length) = (Duration::from_secs(4), Duration::from_secs(8));
    let scenario = write_scenario(
        dir.path(),
        &format!(
            r#"name: aborts
prometheus: {{ settle: 2s }}
{SUBMIT}load:
  arrival: constant
  stages: [ {{ for: 24s, rate: 20 }} ]
faults:
  - {{ name: aborts, start: 4s, for: 8s, abort: {{ percentage: 50, http_status: 503 }} }}
slos:
  - {{ name: error-rate alert, alert: HighErrorRate, fires_within: 8s, resolves_within: 12s, window: {{ fault: aborts }} }}
  - {{ name: latency alert stays quiet, alert: HighP95Latency, fires_within: 8s, allow_unknown: false }}
"#
        ),
    );
    let out = dir.path().join("out");
    let child = slo_check()
        .args(["run", "-q", "--platform", "url", "--target-url"])
        .arg(platform.target().base_url)
        .arg("--scenario")
        .arg(&scenario)
        .args(["--prometheus", &prom.url, "--out"])
        .arg(&out)
        .spawn()
        .unwrap();
    let fault = Fault {
        name: "aborts".into(),
        start,
        duration: length,
        delay: None,
        abort: Some(Abort {
            percent: 50.0,
            http_status: 503,
        }),
    };
    let faults = platform.faults();
    tokio::time::sleep(start).await;
    faults.apply(&fault).await.unwrap();
    tokio::time::sleep(length).await;
    faults.revert(&fault).await.unwrap();
    let (code, stderr) = finish(child).await;
    let run = run_json(&out);
    let alert = slo(&run, "error-rate alert");
    assert_eq!(alert["status"], "pass", "{alert:#}\n{stderr}");
    let timing = &alert["alert"];
    let fired = timing["fired_after_s"].as_f64().unwrap();
    let resolved = timing["resolved_after_s"].as_f64().unwrap();
    assert!(fired <= 8.0 && resolved <= 12.0, "{timing:#}");
    assert!(
        alert["query"]
            .as_str()
            .unwrap()
            .contains("ALERTS{alertname=\"HighErrorRate\"")
    );
    // HighP95Latency never fires on a fast platform: that SLO fails (never fired), so
    // the run fails; an alert that does not fire is a fail, not an unknown.
    let quiet = slo(&run, "latency alert stays quiet");
    assert_eq!(quiet["status"], "fail", "{quiet:#}");
    assert!(quiet["reason"].as_str().unwrap().contains("never fired"));
    assert_eq!(code, 1, "{stderr}");

    // The cross-check explains the aborts: the mesh counted them, the agent never saw them.
    let cc = run["cross_check"].as_array().unwrap();
    let by = |source: &str| {
        cc.iter()
            .find(|c| c["what"] == "failure rate" && c["server_source"] == source)
            .unwrap()
            .clone()
    };
    let (mesh, agent) = (by("mesh"), by("agent"));
    assert_eq!(mesh["status"], "agree", "{mesh:#}");
    assert_eq!(agent["status"], "disagree", "{agent:#}");
    assert!(
        agent["note"]
            .as_str()
            .unwrap()
            .contains("aborts are answered by the mesh"),
        "{agent:#}"
    );
    eprintln!(
        "alert: {}\ncross-check: {}",
        alert["reason"],
        serde_json::to_string_pretty(cc).unwrap()
    );
    drop(writer);
    platform.down().await;
}
