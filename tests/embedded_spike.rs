//! The main job end to end: `slo-check --scenario spike` on the embedded
//! platform (time-scaled), with autoscaling, the abort fault and the verdict.

use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;

#[test]
fn spike_on_the_embedded_platform_scales_out_injects_aborts_and_passes() {
    let (code, report, stderr, out) = scenario_run("spike", "0.1");
    assert_eq!(
        code,
        Some(0),
        "stderr: {stderr}\nslos: {:#}",
        report["slos"]
    );

    assert_eq!(report["platform"]["kind"], "local");
    assert_eq!(report["platform"]["emulated"], true);
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["counts"]["dropped"], 0);

    // The HPA scaled out: ready replicas rose above the manifest's minimum of 2.
    let peak = report["hpa"]["peak_replicas"].as_u64().unwrap();
    assert!(peak > 2, "peak replicas {peak}");
    let scale_up = report["hpa"]["scale_up_seconds"]
        .as_f64()
        .or(report["hpa"]["scale_up_s"].as_f64())
        .unwrap();
    assert!(scale_up > 0.0 && scale_up <= 90.0, "scale-up {scale_up} s");
    let replicas = report["replicas"].as_array().unwrap();
    assert!(
        replicas.iter().any(|r| r["desired"].as_u64() > Some(2)),
        "{replicas:?}"
    );

    // The abort fault answered some requests with 503 inside its window, none before it.
    let windows = report["windows"].as_array().unwrap();
    let window = |label: &str| {
        windows
            .iter()
            .find(|w| w["label"] == label)
            .unwrap_or_else(|| panic!("no window {label}"))
    };
    let in_fault = window("fault aborts")["counts"]["failures_by_kind"]["status"]
        .as_u64()
        .unwrap();
    assert!(in_fault > 0, "no injected aborts were seen");
    assert_eq!(window("stage 1 (baseline)")["counts"]["failed"], 0);

    // Every human-facing report says the platform was emulated.
    let summary = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    assert!(summary.contains("Emulated platform"), "{summary}");
}

/// `slo-check --scenario NAME --time-scale SCALE` from scenarios/ on the embedded
/// platform: (exit code, run.json, stderr, the report directory).
fn scenario_run(name: &str, scale: &str) -> (Option<i32>, Value, String, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    let run = Command::cargo_bin("slo-check")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "--scenario",
            name,
            "--time-scale",
            scale,
            "--quiet",
            "--out",
        ])
        .arg(out.path())
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("run.json")).unwrap()).unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    (run.status.code(), report, stderr, out)
}

/// The scenarios that prove a platform's faults, on the embedded one: every SLO of
/// theirs holds, and the windows show the fault where it was asked and nowhere else.
#[test]
fn the_fault_scenarios_hold_on_the_embedded_platform() {
    let (code, abort, stderr, abort_dir) = scenario_run("fault-abort", "0.5");
    assert_eq!(code, Some(0), "{stderr}\n{:#}", abort["slos"]);
    let window = |r: &Value, label: &str| -> Value {
        r["windows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["label"] == label)
            .cloned()
            .unwrap_or_else(|| panic!("no window {label}: {:#}", r["windows"]))
    };
    let aborts = window(&abort, "fault aborts");
    let rate = aborts["counts"]["failure_rate"].as_f64().unwrap();
    assert!((0.06..=0.14).contains(&rate), "{aborts:#}");
    assert_eq!(abort["counts"]["failed"], aborts["counts"]["failed"]);

    let (code, delay, stderr, delay_dir) = scenario_run("fault-delay", "0.5");
    assert_eq!(code, Some(0), "{stderr}\n{:#}", delay["slos"]);
    let delays = window(&delay, "fault delays");
    assert!(
        delays["latency_ms"]["p90"].as_f64() >= Some(500.0),
        "{delays:#}"
    );
    let whole = &delay["workflow"]["latency_ms"];
    assert!(whole["p50"].as_f64() < Some(100.0), "{whole:#}");

    // Recovery: the balancer drops a fault at once. An abort is judged on failures:
    // back from the second holding the revert or the next, never before. A delay is
    // judged on p95, which other tests on the same cores can push past the pre-fault
    // envelope for a while: never recovered before the revert.
    for (run, dir, strict) in [(&abort, &abort_dir, true), (&delay, &delay_dir, false)] {
        let f = &run["faults"][0];
        let r = &f["recovery"];
        let reverted = f["reverted_at_s"].as_f64().expect("reverted");
        assert_eq!(r["hold_seconds"], 3, "{f:#}");
        assert!(r["baseline_seconds"].as_u64() >= Some(3), "{f:#}");
        let summary = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
        match r["recovered_at_s"].as_f64() {
            Some(at) => {
                let after = r["recovery_seconds"].as_f64().unwrap();
                assert!(at >= reverted.floor(), "{f:#}");
                assert!(!strict || after <= 1.0, "{f:#}");
                assert!(summary.contains("s after the revert"), "{summary}");
            }
            None => {
                assert!(!strict, "the abort's run did not recover: {f:#}");
                assert!(r["not_recovered_by_s"].as_f64().is_some(), "{f:#}");
            }
        }
    }
    assert!(abort["faults"][0]["recovery"]["baseline_p95_ms"].is_null());
    assert!(delay["faults"][0]["recovery"]["baseline_failure_rate"].is_null());
}
