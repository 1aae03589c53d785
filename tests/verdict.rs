//! SLO outcomes and exit codes: pass, fail (with junit.xml saying why),
//! unknown with and without `allow_unknown`, windows that see only their part
//! of the run, `--json`, and the built-in load-delivered check.

use std::time::Duration;

use crate::support::common::{Run, Server, count, get_scenario, respond, slo};

const LOAD_1S: &str = "{ arrival: constant, stages: [{ for: 1s, rate: 20 }] }";

fn slow(ms: u64) -> Server {
    Server::http(move |_| async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        respond(200, "ok")
    })
}

fn fast() -> Server {
    Server::http(|_| async { respond(200, "ok") })
}

/// `<testcase ... name="NAME" ...>` up to its closing tag.
fn testcase<'a>(junit: &'a str, name: &str) -> &'a str {
    let start = junit
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("no testcase {name} in\n{junit}"));
    let rest = &junit[start..];
    let end = rest
        .find("</testcase>")
        .or_else(|| rest.find("/>"))
        .unwrap();
    &rest[..end]
}

#[test]
fn passing_slo_exits_0() {
    let server = fast();
    let yaml = get_scenario(
        "/",
        LOAD_1S,
        "[{ name: p95, metric: latency.p95, max: 2s }, { name: errors, metric: failure_rate, max: 1% }]",
    );
    let run = Run::new(&yaml, &server.url()).exec();
    run.expect_code(0);
    let r = run.report();
    assert_eq!(r["verdict"], "pass");
    assert_eq!(r["interrupted"], false);
    assert_eq!(slo(&r, "p95")["status"], "pass");
    assert_eq!(slo(&r, "p95")["threshold"], 2000.0);
    assert_eq!(slo(&r, "p95")["unit"], "ms");
    assert_eq!(slo(&r, "errors")["observed"], 0.0);
    // The built-in check is there, and passed.
    let builtin = slo(&r, "load delivered");
    assert_eq!(builtin["builtin"], true);
    assert_eq!(builtin["status"], "pass");
    let junit = run.file("junit.xml");
    assert!(!junit.contains("<failure"), "{junit}");
    assert!(junit.contains("tests=\"3\""), "{junit}");
    assert!(run.file("summary.md").contains("PASS"));
}

#[test]
fn failing_slo_exits_1_and_junit_says_observed_vs_threshold() {
    let server = slow(30);
    let yaml = get_scenario(
        "/",
        LOAD_1S,
        "[{ name: tight p95, metric: latency.p95, max: 5ms }, { name: loose p95, metric: latency.p95, max: 10s }]",
    );
    let run = Run::new(&yaml, &server.url()).exec();
    run.expect_code(1);
    let r = run.report();
    assert_eq!(r["verdict"], "fail");
    let tight = slo(&r, "tight p95");
    assert_eq!(tight["status"], "fail");
    assert!(tight["observed"].as_f64().unwrap() >= 30.0);
    assert_eq!(slo(&r, "loose p95")["status"], "pass");
    let junit = run.file("junit.xml");
    let case = testcase(&junit, "tight p95");
    assert!(case.contains("<failure"), "{case}");
    assert!(case.contains("observed"), "{case}");
    assert!(case.contains("threshold ≤ 5.00 ms"), "{case}");
    assert!(!testcase(&junit, "loose p95").contains("<failure"));
    assert_eq!(junit.matches("<failure").count(), 1, "{junit}");
    assert!(run.file("summary.md").contains("FAIL"));
}

/// Step `first` always fails (500), so step `second` never succeeds: its SLO has no data.
fn unknown_scenario(allow: bool) -> String {
    format!(
        r#"name: unknown
workflow:
  - name: first
    request: {{ method: GET, path: /fail }}
  - name: second
    request: {{ method: GET, path: /ok }}
load: {LOAD_1S}
slos: [{{ name: second p99, metric: step.second.latency.p99, max: 1s, allow_unknown: {allow} }}]
"#
    )
}

fn half_broken() -> Server {
    Server::http(|req| async move {
        if req.path == "/fail" {
            respond(500, "no")
        } else {
            respond(200, "ok")
        }
    })
}

#[test]
fn unknown_fails_by_default() {
    let server = half_broken();
    let run = Run::new(&unknown_scenario(false), &server.url()).exec();
    run.expect_code(1);
    let r = run.report();
    let s = slo(&r, "second p99");
    assert_eq!(s["status"], "unknown");
    assert!(s["observed"].is_null());
    assert!(s["reason"].as_str().unwrap().contains("no step succeeded"));
    assert_eq!(r["steps"]["second"]["latency_ms"]["count"], 0);
    let junit = run.file("junit.xml");
    assert!(
        testcase(&junit, "second p99").contains("<failure"),
        "{junit}"
    );
}

#[test]
fn unknown_passes_when_allowed() {
    let server = half_broken();
    let run = Run::new(&unknown_scenario(true), &server.url()).exec();
    run.expect_code(0);
    let r = run.report();
    assert_eq!(slo(&r, "second p99")["status"], "unknown");
    assert_eq!(r["verdict"], "pass");
    let junit = run.file("junit.xml");
    let case = testcase(&junit, "second p99");
    assert!(!case.contains("<failure"), "{case}");
    assert!(case.contains("<skipped"), "{case}");
}

#[test]
fn windows_evaluate_only_their_part_of_the_run() {
    // Slow only for the workflows of the second stage: the path carries ${seq},
    // and stage 1 holds seq 0..19 (1 s at 20/s). Deterministic, unlike a clock.
    let server = Server::http(|req| async move {
        let seq: u64 = req.path.trim_start_matches("/s/").parse().unwrap_or(0);
        if seq >= 20 {
            tokio::time::sleep(Duration::from_millis(80)).await;
        }
        respond(200, "ok")
    });
    let yaml = get_scenario(
        "/s/${seq}",
        "{ arrival: constant, stages: [{ for: 1s, rate: 20 }, { name: hot, for: 1s, rate: 20 }] }",
        r#"
  - { name: stage 1, metric: latency.p95, max: 40ms, window: { stage: 1 } }
  - { name: stage 2, metric: latency.p95, max: 40ms, window: { stage: 2 } }
  - { name: stage hot, metric: latency.p95, max: 40ms, window: { stage: hot } }
  - { name: first second, metric: latency.p95, max: 40ms, window: { from: 0s, to: 1s } }
  - { name: last second, metric: latency.p95, max: 40ms, window: { from: 1s, to: 2s } }
  - { name: from 1s, metric: latency.max, max: 40ms, window: { from: 1s } }
  - { name: stage 2 floor, metric: latency.p50, min: 80ms, window: { stage: 2 } }"#,
    );
    let run = Run::new(&yaml, &server.url()).exec();
    run.expect_code(1);
    let r = run.report();
    for (name, status) in [
        ("stage 1", "pass"),
        ("stage 2", "fail"),
        ("stage hot", "fail"),
        ("first second", "pass"),
        ("last second", "fail"),
        ("from 1s", "fail"),
        ("stage 2 floor", "pass"),
    ] {
        assert_eq!(slo(&r, name)["status"], status, "{name}: {}", slo(&r, name));
    }
    let w = &slo(&r, "stage 2")["window"];
    assert_eq!(
        (w["from_s"].as_f64(), w["to_s"].as_f64()),
        (Some(1.0), Some(2.0))
    );
    let w = &slo(&r, "first second")["window"];
    assert_eq!(
        (w["from_s"].as_f64(), w["to_s"].as_f64()),
        (Some(0.0), Some(1.0))
    );
    // Stage windows hold their own counts: 20 workflows each.
    let windows = r["windows"].as_array().unwrap();
    let stage = |label: &str| {
        windows
            .iter()
            .find(|w| w["label"].as_str().unwrap().starts_with(label))
            .unwrap_or_else(|| panic!("no window {label}: {windows:?}"))
    };
    assert_eq!(stage("stage 1")["counts"]["succeeded"], 20);
    assert_eq!(stage("stage 2")["counts"]["succeeded"], 20);
}

#[test]
fn json_flag_prints_run_json_on_stdout() {
    let server = fast();
    let yaml = get_scenario(
        "/",
        LOAD_1S,
        "[{ name: p95, metric: latency.p95, max: 2s }]",
    );
    let run = Run::new(&yaml, &server.url()).arg("--json").exec();
    run.expect_code(0);
    let printed: serde_json::Value =
        serde_json::from_str(&run.stdout).expect("stdout is exactly one JSON document");
    assert_eq!(printed, run.report());
    assert_eq!(printed["schema_version"], 1);
}

#[test]
fn json_flag_without_quiet_keeps_stdout_clean() {
    let server = fast();
    let yaml = get_scenario(
        "/",
        LOAD_1S,
        "[{ name: p95, metric: latency.p95, max: 2s }]",
    );
    let run = Run::new(&yaml, &server.url()).arg("--json").loud().exec();
    run.expect_code(0);
    let printed: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", run.stdout));
    assert_eq!(printed["verdict"], "pass");
}

fn overloaded(checks: &str) -> String {
    // 20/s against a 300 ms server with room for one workflow: most starts are dropped.
    format!(
        "{}checks: {checks}\n",
        get_scenario(
            "/",
            "{ arrival: constant, stages: [{ for: 1s, rate: 20 }], max_in_flight: 1 }",
            "[{ name: p95, metric: latency.p95, max: 10s }]",
        )
    )
}

#[test]
fn load_delivered_check_fails_a_run_with_dropped_starts() {
    let server = slow(300);
    let run = Run::new(&overloaded("{ load_delivered: true }"), &server.url()).exec();
    run.expect_code(1);
    let r = run.report();
    let dropped = count(&r, "dropped");
    assert!(dropped > 0);
    assert_eq!(count(&r, "started") + dropped, count(&r, "scheduled"));
    assert_eq!(slo(&r, "p95")["status"], "pass");
    let check = slo(&r, "load delivered");
    assert_eq!(check["status"], "fail");
    assert!(
        check["reason"].as_str().unwrap().contains("dropped"),
        "{check}"
    );
    assert!(testcase(&run.file("junit.xml"), "load delivered").contains("<failure"));
}

#[test]
fn load_delivered_check_can_be_turned_off() {
    let server = slow(300);
    let run = Run::new(&overloaded("{ load_delivered: false }"), &server.url()).exec();
    run.expect_code(0);
    let r = run.report();
    assert!(count(&r, "dropped") > 0);
    assert!(
        r["slos"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["builtin"] != true),
        "{}",
        r["slos"]
    );
}

#[test]
fn dropped_and_achieved_rate_are_metrics() {
    let server = fast();
    let yaml = get_scenario(
        "/",
        LOAD_1S,
        "[{ name: none dropped, metric: dropped, max: 0 }, { name: rate, metric: achieved_rate, min: 19 }, { name: too fast, metric: achieved_rate, min: 25 }]",
    );
    let run = Run::new(&yaml, &server.url()).exec();
    run.expect_code(1);
    let r = run.report();
    assert_eq!(slo(&r, "none dropped")["status"], "pass");
    assert_eq!(slo(&r, "rate")["status"], "pass");
    assert_eq!(slo(&r, "too fast")["status"], "fail");
}

/// run.json documents `slos[].unit` as `ms`, `s`, `ratio`, `count`, `per_s` or
/// `number`; serde once wrote the enum's variant names (`seconds`, `per_second`).
#[test]
fn slo_units_are_spelled_as_documented() {
    let server = fast();
    let yaml = get_scenario(
        "/",
        LOAD_1S,
        "[{ name: rate, metric: achieved_rate, min: 1 }, { name: p95, metric: latency.p95, max: 2s }]",
    );
    let run = Run::new(&yaml, &server.url()).exec();
    let r = run.report();
    assert_eq!(slo(&r, "p95")["unit"], "ms");
    assert_eq!(slo(&r, "rate")["unit"], "per_s");
}
