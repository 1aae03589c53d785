//! `slo-check capacity` end to end, with the real binary: against the embedded platform
//! with a known capacity (2 replicas × 1 core / 20 ms of CPU work per workflow = 100
//! workflows/s), the exit codes (1 when even --from fails, 2 for bad flags, 3 when the
//! target cannot be reached), and the report files.
//!
//! Every child has a hard timeout; all traffic stays on 127.0.0.1.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Hard limit on a child process.
const CHILD_TIMEOUT: Duration = Duration::from_secs(90);

/// The theoretical ceiling of `KNOWN`: replicas × cores / cpu_per_workflow.
const CEILING_PER_S: f64 = 2.0 * 1.0 / 0.020;

/// A CPU-bound service: no LLM or tool calls, so the 20 ms of CPU work per workflow on
/// 2 × 1 core is the only bottleneck. Poisson arrivals make queueing show below the ceiling.
const KNOWN: &str = r#"
name: known-capacity
description: 2 replicas x 1 core, 20 ms CPU per workflow; ceiling 100 workflows/s.
platform:
  local: { replicas: 2, autoscale: false, cores: 1, cpu_per_workflow: 20ms,
           llm_calls: 0, tool_calls: 0, seed: 7 }
workflow:
  - name: submit
    request: { method: POST, path: /api/v1/workflows, json: { task: summarize } }
    expect: { status: [202] }
    capture: { id: /id }
  - name: await
    request: { method: GET, path: "/api/v1/workflows/${id}" }
    poll: { until: { pointer: /status, equals: completed }, every: 10ms, timeout: 10s }
load:
  arrival: poisson
  seed: 11
  stages: [ { for: 10s, rate: 30 } ]
slos:
  - { name: workflow p95, metric: latency.p95, max: 150ms }
  - { name: failures, metric: failure_rate, max: 1% }
  - { name: HPA reacts, metric: hpa.scale_up_seconds, max: 60s }
  - { name: late p99, metric: latency.p99, max: 1s, window: { stage: 1 } }
"#;

fn slo_check() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("slo-check").expect("binary builds");
    cmd.timeout(CHILD_TIMEOUT);
    cmd.env_remove("GITHUB_STEP_SUMMARY");
    cmd.env_remove("SLO_CHECK_HISTORY");
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

/// Write `yaml` into `dir` and run `capacity` on it with `args`; (exit code, stdout, stderr).
fn capacity(dir: &Path, yaml: &str, args: &[&str]) -> (i32, String, String) {
    let file = dir.join("scenario.yaml");
    std::fs::write(&file, yaml).expect("write scenario");
    let out = dir.join("out");
    let output = slo_check()
        .arg("capacity")
        .arg("--scenario")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .args(args)
        .output()
        .expect("runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn report(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("out/capacity.json")).expect("capacity.json");
    serde_json::from_str(&text).expect("capacity.json parses")
}

#[test]
fn finds_the_known_capacity_of_the_embedded_platform_and_names_the_binding_slo() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (code, stdout, stderr) = capacity(
        dir.path(),
        KNOWN,
        &[
            "--from",
            "30",
            "--to",
            "400",
            "--step-for",
            "3s",
            "--warmup",
            "1s",
            "--precision",
            "5%",
            "--max-steps",
            "12",
        ],
    );
    let took = started.elapsed();
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let r = report(dir.path());
    let cap = r["capacity_per_s"].as_f64().expect("a capacity");
    assert!(
        (0.7 * CEILING_PER_S..=CEILING_PER_S).contains(&cap),
        "capacity {cap}/s is not within 70–100 % of {CEILING_PER_S}/s\n{stdout}\n{stderr}"
    );
    assert_eq!(r["conclusion"]["outcome"], "found", "{stdout}");
    // The latency SLO binds: past ~90 % utilisation queueing pushes p95 over 150 ms long
    // before 1 % of workflows fail.
    assert_eq!(r["bound_by"]["slo"], "workflow p95", "{stdout}");
    assert_eq!(r["bound_by"]["metric"], "latency.p95");
    let next = r["conclusion"]["next_failing_per_s"].as_f64().unwrap();
    assert!((next - cap) / cap <= 0.05 + 1e-9, "{cap} {next}");
    // Window-bound and hpa.* SLOs are reported as not applicable, the rest evaluated.
    let skipped: Vec<&str> = r["not_applicable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["HPA reacts", "late p99"]);
    assert_eq!(
        r["slos_evaluated"],
        serde_json::json!(["workflow p95", "failures", "load delivered"])
    );
    // Every step has its percentiles, failure rate, achieved rate and replicas.
    let steps = r["steps"].as_array().unwrap();
    assert!(steps.len() >= 5 && steps.len() <= 12, "{}", steps.len());
    for s in steps {
        assert!(s["latency_ms"]["p95"].as_f64().is_some(), "{s}");
        assert!(s["failure_rate"].as_f64().is_some());
        assert!(s["achieved_rate_per_s"].as_f64().unwrap() > 0.0);
        assert_eq!(s["replicas"]["ready"], 2);
        assert_eq!(s["replicas"]["settled"], true);
    }
    // The files, and the knee on the chart.
    for f in [
        "capacity.json",
        "capacity.md",
        "capacity.html",
        "capacity.svg",
    ] {
        assert!(dir.path().join("out").join(f).is_file(), "{f}");
    }
    let html = std::fs::read_to_string(dir.path().join("out/capacity.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("Workflow latency vs throughput"));
    assert!(html.contains("bound by workflow p95"));
    assert!(!html.contains("<script") && !html.contains("http://fonts"));
    assert!(stdout.contains("capacity: "), "{stdout}");
    eprintln!("capacity {cap}/s (next failing {next}/s) in {took:?}\n{stdout}");
}

#[test]
fn exits_1_when_even_from_fails() {
    let dir = tempfile::tempdir().unwrap();
    // 20 ms of CPU work can never finish within 5 ms.
    let yaml = KNOWN.replace("max: 150ms", "max: 5ms");
    let store = format!("sqlite:{}", dir.path().join("h.sqlite").display());
    let (code, stdout, stderr) = capacity(
        dir.path(),
        &yaml,
        &[
            "--from",
            "20",
            "--step-for",
            "1s",
            "--warmup",
            "0s",
            "--history",
            &store,
            "--label",
            "commit=abc",
        ],
    );
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let r = report(dir.path());
    assert_eq!(r["conclusion"]["outcome"], "from_fails");
    // The search is in the history too, as a run of kind `capacity`.
    let listed = slo_check()
        .args(["history", "--json", "--history", &store])
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let run = &listed["runs"][0];
    assert_eq!(run["kind"], "capacity", "{listed:#}");
    assert_eq!(run["verdict"], "not found");
    assert_eq!(run["labels"]["commit"], "abc");
    assert_eq!(r["capacity_per_s"], Value::Null);
    assert_eq!(r["steps"].as_array().unwrap().len(), 1);
    assert!(
        stdout.contains("capacity: none found: even 20.0/s fails"),
        "{stdout}"
    );
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    for (args, flag) in [
        (&["--precision", "0%"][..], "--precision"),
        (&["--precision", "much"][..], "--precision"),
        (&["--from", "50", "--to", "10"][..], "--to"),
        (&["--from=-3"][..], "--from"),
        (&["--from", "0"][..], "--from"),
        (&["--step-for", "0s"][..], "--step-for"),
        (&["--step-for", "10"][..], "--step-for"),
        (&["--warmup", "soon"][..], "--warmup"),
        (&["--max-steps", "1"][..], "--max-steps"),
        (&["--time-scale", "0"][..], "--time-scale"),
        (&["--target-url", "http://127.0.0.1:1"][..], "--target-url"),
    ] {
        let (code, _, stderr) = capacity(dir.path(), KNOWN, args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
    }
}

#[test]
fn an_unreachable_target_is_an_infrastructure_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let (code, _, stderr) = capacity(
        dir.path(),
        KNOWN,
        &[
            "--platform",
            "url",
            "--target-url",
            &url,
            "--from",
            "10",
            "--step-for",
            "1s",
            "--warmup",
            "0s",
        ],
    );
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("could not connect"), "{stderr}");
}
