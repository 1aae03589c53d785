//! Invalid input: malformed scenarios exit 2 with a located message that says
//! what is wrong (never a panic), and bad flag combinations exit 2 naming the flag.

use crate::support::common::slo_check;
use predicates::prelude::PredicateBooleanExt;

/// A valid scenario; each case below breaks it in one place.
const BASE: &str = r#"name: base
description: a valid two-step scenario
workflow:
  - name: submit
    request: { method: POST, path: /api, headers: { x-test: "1" }, json: { a: 1 } }
    expect: { status: [202] }
    capture: { id: /id }
  - name: await
    request: { method: GET, path: "/api/${id}" }
    poll: { until: { pointer: /status, equals: done }, every: 100ms, timeout: 1s }
load:
  arrival: constant
  stages:
    - { for: 10s, rate: 5 }
    - { for: 5s, ramp_to: 10 }
  max_in_flight: 100
faults:
  - { name: aborts, start: 2s, for: 3s, abort: { percentage: 10, http_status: 503 } }
slos:
  - { name: p95, metric: latency.p95, max: 1s }
"#;

/// `BASE` with `from` (which must occur exactly once) replaced by `to`.
fn edit(from: &str, to: &str) -> String {
    assert_eq!(
        BASE.matches(from).count(),
        1,
        "`{from}` is not unique in BASE"
    );
    BASE.replace(from, to)
}

/// The problem is the whole file: no line or field to point at.
const WHOLE_FILE: &str = "(whole file)";

/// (case name, file contents, a field path or word the message must contain, a hint word).
fn cases() -> Vec<(&'static str, Vec<u8>, &'static str, &'static str)> {
    let s = |t: String| t.into_bytes();
    vec![
        ("yaml_syntax", s(edit("name: base", "name: [base")), "", "expected"),
        ("tab_indent", s(edit("  arrival: constant", "\tarrival: constant")), "", "tab"),
        ("wrong_type", s(edit("max_in_flight: 100", "max_in_flight: lots")), "", "whole number"),
        ("unknown_top_field", s(edit("description:", "descripton:")), "", "unknown field"),
        ("unknown_step_field", s(edit("    expect:", "    expects:")), "", "unknown field"),
        ("missing_load", s(BASE[..BASE.find("load:").unwrap()].to_string()), "", "load"),
        ("missing_step_name", s(edit("  - name: submit\n", "  - \n")), "", "name"),
        ("zero_rate", s(edit("rate: 5", "rate: 0")), "load.stages[0].rate", "rate"),
        ("negative_rate", s(edit("rate: 5", "rate: -5")), "load.stages[0].rate", "rate"),
        ("bad_duration_unit", s(edit("for: 10s", "for: 10x")), "", "10x"),
        ("duration_without_unit", s(edit("for: 10s", "for: 10")), "", "unit"),
        ("percentage_over_100", s(edit("percentage: 10", "percentage: 150")), "", "100"),
        ("failure_rate_over_100", s(edit("metric: latency.p95, max: 1s", "metric: failure_rate, max: 150%")), "slos[0]", "100"),
        ("unknown_metric", s(edit("latency.p95", "error_rate")), "slos[0].metric", "error_rate"),
        ("bad_percentile", s(edit("latency.p95", "latency.p95x")), "slos[0].metric", "p95x"),
        ("unknown_step_in_metric", s(edit("latency.p95", "step.nope.latency.p95")), "slos[0].metric", "nope"),
        ("window_stage_out_of_range", s(edit("max: 1s }", "max: 1s, window: { stage: 3 } }")), "slos[0].window", "stage"),
        ("window_stage_unknown_name", s(edit("max: 1s }", "max: 1s, window: { stage: hot } }")), "slos[0].window", "hot"),
        ("window_unknown_fault", s(edit("max: 1s }", "max: 1s, window: { fault: nope } }")), "slos[0].window", "nope"),
        ("promql_window_in_brackets", s(edit("metric: latency.p95, max: 1s", "promql: 'sum(rate(x[${window}]))', max: 1")), "slos[0].promql", "already includes the brackets"),
        ("promql_unknown_grafana_variable", s(edit("metric: latency.p95, max: 1s", "promql: 'sum(rate(x[$__rate_interval]))', max: 1")), "slos[0].promql", "$__range"),
        ("window_from_after_to", s(edit("max: 1s }", "max: 1s, window: { from: 5s, to: 2s } }")), "slos[0].window", "from"),
        ("capture_used_before_set", s(edit("path: /api,", "path: \"/api/${id}\",")), "workflow[0].request.path", "id"),
        ("unknown_template", s(edit("\"/api/${id}\"", "\"/api/${nope}\"")), "workflow[1].request.path", "nope"),
        ("duplicate_step_names", s(edit("name: await", "name: submit")), "workflow[1].name", "submit"),
        ("duplicate_slo_names", s(edit("max: 1s }\n", "max: 1s }\n  - { name: p95, metric: latency.p99, max: 2s }\n")), "slos[1].name", "p95"),
        ("empty_file", Vec::new(), WHOLE_FILE, "empty"),
        ("binary_garbage", vec![0xff, 0xfe, 0x00, 0x9c, 0x12, 0x80, 0xc3, 0x28, 0x00, 0x01], WHOLE_FILE, "UTF-8"),
        ("rate_and_ramp_to", s(edit("rate: 5 }", "rate: 5, ramp_to: 8 }")), "load.stages[0]", "ramp_to"),
        ("neither_rate_nor_ramp_to", s(edit("{ for: 10s, rate: 5 }", "{ for: 10s }")), "load.stages[0]", "rate"),
        ("no_stages", s(edit("    - { for: 10s, rate: 5 }\n    - { for: 5s, ramp_to: 10 }\n", "    []\n")), "load.stages", "stage"),
        ("poll_timeout_below_every", s(edit("timeout: 1s", "timeout: 50ms")), "workflow[1].poll.timeout", "every"),
        ("bad_header_name", s(edit("x-test: \"1\"", "\"bad header\": \"1\"")), "workflow[0].request.headers", "header"),
        ("bad_method", s(edit("method: POST", "method: FETCH")), "workflow[0].request.method", "FETCH"),
        ("path_without_slash", s(edit("path: /api,", "path: api,")), "workflow[0].request.path", "/"),
        ("json_and_body", s(edit("json: { a: 1 }", "json: { a: 1 }, body: x")), "workflow[0].request", "body"),
        ("bad_status_code", s(edit("status: [202]", "status: [999]")), "workflow[0].expect.status", "999"),
        ("bad_json_pointer", s(edit("capture: { id: /id }", "capture: { id: id }")), "workflow[0].capture", "pointer"),
        ("max_in_flight_zero", s(edit("max_in_flight: 100", "max_in_flight: 0")), "load.max_in_flight", "at least"),
        ("content_length_header", s(edit("x-test: \"1\"", "content-length: \"9\"")), "workflow[0].request.headers.content-length", "body"),
        ("pacing_slack_too_long", s(edit("max_in_flight: 100", "max_in_flight: 100\n  pacing_slack: 50ms")), "load.pacing_slack", "at most"),
        ("unknown_arrival", s(edit("arrival: constant", "arrival: uniform")), "", "uniform"),
        ("slo_max_and_min", s(edit("max: 1s }", "max: 1s, min: 1ms }")), "slos[0]", "max"),
        ("slo_without_bound", s(edit("metric: latency.p95, max: 1s", "metric: latency.p95")), "slos[0]", "max"),
        ("latency_threshold_without_unit", s(edit("metric: latency.p95, max: 1s", "metric: latency.p95, max: 300")), "slos[0].max", "ms"),
        ("fault_after_schedule", s(edit("start: 2s", "start: 60s")), "faults[0].start", "schedule"),
        ("fault_without_action", s(edit(", abort: { percentage: 10, http_status: 503 }", "")), "faults[0]", "abort"),
        (
            "empty_workflow",
            s("name: e\nworkflow: []\nload: { arrival: constant, stages: [{ for: 1s, rate: 1 }] }\n".into()),
            "workflow",
            "step",
        ),
    ]
}

#[test]
fn every_malformed_scenario_exits_2_with_a_located_message() {
    let dir = tempfile::tempdir().unwrap();
    let located = regex_like_line_col;
    let mut problems = Vec::new();
    let all = cases();
    assert!(all.len() >= 25);
    for (name, contents, field, hint) in &all {
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, contents).unwrap();
        let out = slo_check().arg("validate").arg(&file).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lower = stderr.to_lowercase();
        let mut why = Vec::new();
        if out.status.code() != Some(2) {
            why.push(format!("exit {:?}", out.status.code()));
        }
        if stderr.contains("panicked") {
            why.push("panicked".into());
        }
        if !stderr.contains(&format!("{name}.yaml")) {
            why.push("does not name the file".into());
        }
        if *field != WHOLE_FILE
            && !located(&stderr)
            && (field.is_empty() || !stderr.contains(field))
        {
            why.push("neither :line:col nor the field path".into());
        }
        if !field.is_empty() && *field != WHOLE_FILE && !stderr.contains(field) {
            why.push(format!("does not name the field `{field}`"));
        }
        if !lower.contains(&hint.to_lowercase()) {
            why.push(format!("does not mention `{hint}`"));
        }
        if std::env::var_os("SHOW_MESSAGES").is_some() {
            eprintln!("{name}: {}", stderr.lines().next().unwrap_or(""));
        }
        if !why.is_empty() {
            problems.push(format!(
                "{name}: {}\n    stderr: {}",
                why.join("; "),
                stderr.trim()
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} cases:\n{}",
        problems.len(),
        all.len(),
        problems.join("\n")
    );
}

/// Whether `s` holds `file.yaml:LINE:COL`.
fn regex_like_line_col(s: &str) -> bool {
    s.split(".yaml:").skip(1).any(|rest| {
        let mut parts = rest.splitn(3, ':');
        let line = parts.next().unwrap_or("");
        let col = parts.next().unwrap_or("");
        !line.is_empty()
            && line.chars().all(|c| c.is_ascii_digit())
            && !col.is_empty()
            && col.chars().all(|c| c.is_ascii_digit())
    })
}

#[test]
fn the_valid_base_validates() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("base.yaml");
    std::fs::write(&file, BASE).unwrap();
    slo_check()
        .arg("validate")
        .arg(&file)
        .assert()
        .code(0)
        .stdout(predicates::str::contains("ok"));
}

#[test]
fn validate_reports_every_bad_file_of_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.yaml"), BASE).unwrap();
    std::fs::write(dir.path().join("bad1.yaml"), edit("rate: 5", "rate: 0")).unwrap();
    std::fs::write(dir.path().join("bad2.yaml"), edit("latency.p95", "nope")).unwrap();
    let out = slo_check()
        .arg("validate")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad1.yaml") && stderr.contains("bad2.yaml"),
        "{stderr}"
    );
    assert!(stderr.contains("2 of 3"), "{stderr}");
}

/// A scenarios dir with two valid scenarios, for flag tests.
fn scenarios_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("alpha.yaml"),
        BASE.replace("name: base", "name: alpha"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("beta.yaml"),
        BASE.replace("name: base", "name: beta"),
    )
    .unwrap();
    dir
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let dir = scenarios_dir();
    let d = dir.path().to_str().unwrap();
    let url = "http://127.0.0.1:9"; // never contacted: every case fails before the run.
    let base = [
        "run",
        "--scenarios-dir",
        d,
        "--scenario",
        "alpha",
        "--quiet",
    ];
    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (vec!["--platform", "url"], &["--target-url"]),
        (
            vec![
                "--platform",
                "url",
                "--target-url",
                url,
                "--time-scale",
                "0",
            ],
            &["--time-scale"],
        ),
        (
            vec!["--platform", "url", "--target-url", url, "--time-scale=-1"],
            &["--time-scale"],
        ),
        (
            vec![
                "--platform",
                "url",
                "--target-url",
                url,
                "--time-scale",
                "-1",
            ],
            &["-1"],
        ),
        (
            vec![
                "--platform",
                "url",
                "--target-url",
                url,
                "--time-scale",
                "fast",
            ],
            &["--time-scale"],
        ),
        (
            vec!["--platform", "url", "--target-url", "ftp://x"],
            &["--target-url", "http://"],
        ),
        (
            vec!["--platform", "url", "--target-url", "127.0.0.1:8080"],
            &["--target-url"],
        ),
        (
            vec![
                "--platform",
                "url",
                "--target-url",
                "http://127.0.0.1:1/api",
            ],
            &["--target-url", "path"],
        ),
        (
            vec!["--platform", "url", "--target-url", url, "--grace", "5"],
            &["--grace"],
        ),
        (
            vec!["--target-url", url],
            &["--target-url", "--platform url"],
        ),
        (vec!["--platform", "cloud"], &["--platform"]),
    ];
    let mut problems = Vec::new();
    for (extra, wants) in &cases {
        let out = slo_check().args(base).args(extra).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let ok = out.status.code() == Some(2)
            && wants.iter().all(|w| stderr.contains(w))
            && !stderr.contains("panicked");
        if !ok {
            problems.push(format!(
                "{extra:?}: exit {:?}: {}",
                out.status.code(),
                stderr.trim()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn unknown_scenario_name_lists_the_known_ones() {
    let dir = scenarios_dir();
    let out = slo_check()
        .args([
            "--scenarios-dir",
            dir.path().to_str().unwrap(),
            "--scenario",
            "gamma",
        ])
        .args([
            "--platform",
            "url",
            "--target-url",
            "http://127.0.0.1:9",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("gamma"), "{stderr}");
    assert!(
        stderr.contains("alpha") && stderr.contains("beta"),
        "{stderr}"
    );
}

#[test]
fn list_and_schema() {
    let dir = scenarios_dir();
    slo_check()
        .args(["list", "--scenarios-dir", dir.path().to_str().unwrap()])
        .assert()
        .code(0)
        .stdout(
            predicates::str::contains("alpha")
                .and(predicates::str::contains("a valid two-step scenario")),
        );
    let out = slo_check().arg("schema").output().unwrap();
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("schema is JSON");
    assert!(schema["properties"]["workflow"].is_object(), "{schema}");
    assert!(schema["properties"]["load"].is_object() || schema.to_string().contains("stages"));
}
