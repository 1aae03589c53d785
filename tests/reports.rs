//! Reports: summary.md and junit.xml rendered from a fixed `RunReport` (exact
//! snapshots, no redaction needed), the shape of a real run.json (keys and
//! types, not values), and the serialized histograms decoding back.

use crate::support;
use crate::support::common::{Run, Server, respond};
use serde_json::{Value, json};
use slo_check::report::{RunReport, junit, markdown};

fn latency(p50: f64, count: u64) -> Value {
    json!({ "p50": p50, "p90": p50 * 2.0, "p95": p50 * 3.0, "p99": p50 * 4.0,
            "p999": p50 * 5.0, "max": p50 * 6.0, "mean": p50 * 1.5, "count": count })
}

fn no_latency() -> Value {
    json!({ "p50": null, "p90": null, "p95": null, "p99": null, "p999": null,
            "max": null, "mean": null, "count": 0 })
}

fn window(label: &str, from_s: f64, to_s: f64) -> Value {
    json!({ "label": label, "from_s": from_s, "to_s": to_s })
}

/// A report with one SLO of every outcome: pass, fail, unknown, unknown-but-allowed, built-in.
fn fixed_report() -> RunReport {
    let kinds = json!({ "connect": 0, "timeout": 2, "status": 5, "expectation": 0, "poll_timeout": 1, "other": 0 });
    let counts = json!({ "scheduled": 1000, "started": 1000, "dropped": 0, "succeeded": 992,
        "failed": 8, "abandoned": 0, "failures_by_kind": kinds, "failure_rate": 0.008 });
    let v = json!({
        "schema_version": 1,
        "tool_version": "0.1.0",
        "scenario": "agent-flow",
        "description": "Submit a workflow, poll until it completes.",
        "scenario_file": "scenarios/agent-flow.yaml",
        "platform": { "kind": "url", "description": "url http://127.0.0.1:8080",
                      "target_url": "http://127.0.0.1:8080", "emulated": false },
        "time_scale": 0.5,
        "arrival": "poisson",
        "seed": 7,
        "started_at": "2025-01-02T03:04:05Z",
        "duration_s": 20.25,
        "schedule_s": 20.0,
        "verdict": "fail",
        "interrupted": false,
        "slos": [
            { "name": "workflow p95", "metric": "latency.p95", "window": window("run", 0.0, 20.0),
              "bound": "max", "threshold": 2000.0, "observed": 312.5, "unit": "ms",
              "status": "pass", "allow_unknown": false, "builtin": false },
            { "name": "await p99 | hot", "metric": "step.await.latency.p99", "window": window("stage 2 (hot)", 10.0, 20.0),
              "bound": "max", "threshold": 500.0, "observed": 1250.0, "unit": "ms",
              "status": "fail", "allow_unknown": false, "builtin": false },
            { "name": "errors", "metric": "failure_rate", "window": window("5s–10s", 5.0, 10.0),
              "bound": "max", "threshold": 0.01, "observed": null, "unit": "ratio",
              "status": "unknown", "allow_unknown": false,
              "reason": "no workflow finished in the window", "builtin": false },
            { "name": "scale-up", "metric": "hpa.scale_up_seconds", "window": window("run", 0.0, 20.0),
              "bound": "max", "threshold": 90.0, "observed": null, "unit": "s",
              "status": "unknown", "allow_unknown": true,
              "reason": "the url platform has no replica observer", "builtin": false },
            { "name": "load delivered", "metric": "load_delivered", "window": window("run", 0.0, 20.0),
              "bound": "min", "threshold": 49.5, "observed": 50.0, "unit": "per_s",
              "status": "pass", "allow_unknown": false,
              "reason": "1000 of 1000 scheduled starts sent within the schedule, none dropped", "builtin": true }
        ],
        "workflow": { "latency_ms": latency(104.25, 992) },
        "steps": { "submit": { "latency_ms": latency(2.5, 995) }, "await": { "latency_ms": latency(100.5, 992) } },
        "counts": counts,
        "target_rate_per_s": 50.0,
        "achieved_rate_per_s": 50.0,
        "schedule_lag_ms": { "p50": 0.12, "p99": 0.9, "max": 3.4 },
        "windows": [ { "label": "stage 1", "from_s": 0.0, "to_s": 10.0, "counts": counts, "latency_ms": no_latency() } ],
        "timeseries": [],
        "histograms": { "workflow": "", "steps": {}, "per_second": [], "schedule_lag": "" }
    });
    serde_json::from_value(v).expect("the fixture is a valid RunReport")
}

#[test]
fn summary_md_snapshot() {
    insta::assert_snapshot!("summary_md", markdown::render(&fixed_report()));
}

#[test]
fn junit_xml_snapshot() {
    insta::assert_snapshot!("junit_xml", junit::render(&fixed_report()).unwrap());
}

#[test]
fn interrupted_emulated_summary_snapshot() {
    let mut r = fixed_report();
    r.interrupted = true;
    r.platform.emulated = true;
    r.platform.kind = "local".into();
    r.platform.description = "3 reference agent replicas on loopback".into();
    r.counts.abandoned = 4;
    insta::assert_snapshot!("summary_md_interrupted_emulated", markdown::render(&r));
}

/// A kube run through the gateway: one fault seen in Envoy, one whose revert was not,
/// and the gateway's counters beside the client's status failures.
fn kube_report() -> RunReport {
    let mut v = serde_json::to_value(fixed_report()).unwrap();
    v["platform"] = json!({ "kind": "kube", "description": "Kubernetes current context",
        "target_url": "http://127.0.0.1:40000", "emulated": false });
    let fault = |name: &str, data_plane: Value| {
        json!({ "name": name, "from_s": 5.0, "to_s": 10.0, "abort_percent": 50.0,
            "abort_status": 503, "delay_percent": null, "delay_ms": null, "injected": true,
            "applied_at_s": 5.013, "reverted_at_s": 10.021, "data_plane": data_plane })
    };
    let seen_in = "Envoy config_dump of 1 gateway pod";
    v["faults"] = json!([
        fault(
            "aborts",
            json!({ "applied_after_s": 0.041, "reverted_after_s": 0.038, "seen_in": seen_in })
        ),
        fault(
            "stuck",
            json!({ "applied_after_s": 0.052, "reverted_after_s": null,
            "reverted_not_seen_within_s": 5.0, "seen_in": seen_in })
        ),
        json!({ "name": "late", "from_s": 30.0, "to_s": 40.0, "abort_percent": 1.5,
            "abort_status": 500, "delay_percent": null, "delay_ms": null, "injected": true }),
    ]);
    v["gateway"] = json!({ "source": "Envoy admin /stats of 1 gateway pod",
        "aborts_injected": 4, "delays_injected": 0, "downstream_rq": 2000,
        "downstream_rq_5xx": 4, "upstream_rq_pending_overflow": 0,
        "upstream_rq_active_overflow": 0, "outlier_ejections_enforced": null });
    serde_json::from_value(v).expect("a valid RunReport")
}

#[test]
fn kube_faults_and_gateway_summary_snapshot() {
    insta::assert_snapshot!("summary_md_kube_gateway", markdown::render(&kube_report()));
}

#[test]
fn the_verdict_table_says_each_faults_propagation_and_the_gateways_counts() {
    let table = slo_check::report::terminal::verdict_table(&kube_report(), None);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines.contains(&"fault `aborts`: 5.01 s to 10.02 s (control plane); Envoy config_dump of 1 gateway pod: applied 41.0 ms later, reverted 38.0 ms later"),
        "{table}"
    );
    assert!(
        lines.contains(&"fault `stuck`: 5.01 s to 10.02 s (control plane); Envoy config_dump of 1 gateway pod: applied 52.0 ms later, reverted not seen within 5.0 s"),
        "{table}"
    );
    assert!(!table.contains("fault `late`"), "never applied: {table}");
    assert!(
        table.contains("gateway (Envoy admin /stats of 1 gateway pod): 4 aborts injected, 0 delays; 2000 requests, 4 5xx, 0 circuit-breaker overflows, ? outlier ejections; client saw 5 status failures, 0 overloaded (?: a counter the proxy does not export)"),
        "{table}"
    );
    let mut unread = kube_report();
    let g = unread.gateway.as_mut().unwrap();
    g.unavailable = Some("not read at the load's start: pod x: refused".into());
    g.aborts_injected = None;
    let table = slo_check::report::terminal::verdict_table(&unread, None);
    assert!(
        table.contains("gateway (Envoy admin /stats of 1 gateway pod): counters not read: not read at the load's start: pod x: refused\n"),
        "{table}"
    );
    // run.json: additive, and absent where nothing was looked at.
    let json = serde_json::to_value(kube_report()).unwrap();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["faults"][0]["data_plane"]["applied_after_s"], 0.041);
    assert!(json["faults"][2].get("data_plane").is_none());
    assert!(
        serde_json::to_value(fixed_report())
            .unwrap()
            .get("gateway")
            .is_none()
    );
}

/// Keys and JSON types of `v`; an array is shown by its first element.
fn shape(v: &Value) -> Value {
    match v {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("bool"),
        Value::Number(_) => json!("number"),
        Value::String(_) => json!("string"),
        Value::Array(a) => Value::Array(a.first().map(shape).into_iter().collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
    }
}

fn shape_run() -> support::common::Finished {
    let server = Server::http(|_| async { respond(200, "{\"id\": \"1\"}") });
    let yaml = r#"name: shape
description: the run.json shape
workflow:
  - name: first
    request: { method: GET, path: /a }
    capture: { id: /id }
  - name: second
    request: { method: GET, path: "/b/${id}" }
load: { arrival: constant, stages: [{ for: 1s, rate: 10 }, { for: 1s, rate: 10 }] }
slos:
  - { name: p95, metric: latency.p95, max: 5s }
  - { name: stage 2 p99, metric: step.second.latency.p99, max: 5s, window: { stage: 2 } }
  - { name: errors, metric: failure_rate, max: 1%, window: { from: 0s, to: 1s } }
"#;
    let run = Run::new(yaml, &server.url()).exec();
    run.expect_code(0);
    run
}

#[test]
fn run_json_shape_snapshot_and_histograms_decode() {
    let run = shape_run();
    let r = run.report();
    insta::assert_json_snapshot!("run_json_shape", shape(&r));

    // The serialized histograms are real HdrHistograms holding the run's samples.
    let decode = |v: &Value| slo_check::stats::histogram::decode(v.as_str().unwrap()).unwrap();
    let wf = decode(&r["histograms"]["workflow"]);
    assert_eq!(wf.len(), 20);
    assert_eq!(r["workflow"]["latency_ms"]["count"], 20);
    let p50_ms = wf.value_at_quantile(0.5) as f64 / 1000.0;
    assert_eq!(r["workflow"]["latency_ms"]["p50"].as_f64(), Some(p50_ms));
    assert_eq!(decode(&r["histograms"]["steps"]["second"]).len(), 20);
    let per_second: u64 = r["histograms"]["per_second"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s.as_str().unwrap().is_empty())
        .map(|s| decode(s).len())
        .sum();
    assert_eq!(per_second, 20);
    assert_eq!(decode(&r["histograms"]["schedule_lag"]).len(), 20);

    // summary.md and junit.xml of the same run agree with run.json.
    let md = run.file("summary.md");
    assert!(md.starts_with("# slo-check: shape — PASS"), "{md}");
    assert!(md.contains("20 scheduled, 20 started, 0 dropped"), "{md}");
    let junit = run.file("junit.xml");
    assert!(
        junit.contains("tests=\"4\"") && junit.contains("failures=\"0\""),
        "{junit}"
    );
}
