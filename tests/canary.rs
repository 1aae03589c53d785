//! Canary rollouts on the embedded platform (issue 20): the real binary, stable and
//! canary replicas behind the balancer's route, workflows attributed by the version
//! each answer names. A fast agent keeps every run a few seconds long.

use serde_json::Value;

use crate::support::common::slo_check;

/// A scenario with a fast agent (workflows end in tens of milliseconds, so a step's
/// analysis sees nearly all of its workflows) and the given request headers, load and
/// canary section.
fn scenario(headers: &str, seconds: u32, canary: &str) -> String {
    format!(
        r#"name: canary-test
platform:
  local: {{ replicas: 2, autoscale: false, cores: 4, cpu_per_workflow: 1ms, llm_calls: 1, llm_median: 5ms, llm_p99: 10ms, tool_calls: 0, seed: 5 }}
workflow:
  - name: submit
    request: {{ method: POST, path: /api/v1/workflows, json: {{ task: t }}, headers: {{ {headers} }} }}
    expect: {{ status: [202] }}
    capture: {{ id: /id }}
  - name: await
    request: {{ method: GET, path: "/api/v1/workflows/${{id}}" }}
    poll:
      until: {{ pointer: /status, equals: completed }}
      fail_if: {{ pointer: /status, equals: failed }}
      every: 10ms
      timeout: 5s
load:
  arrival: constant
  stages: [{{ for: {seconds}s, rate: 200 }}]
{canary}"#
    )
}

/// Runs `yaml` on the embedded platform: (exit code, run.json, stderr).
fn run(yaml: &str) -> (i32, Value, String) {
    let (code, report, stderr, _) = run_with_files(yaml);
    (code, report, stderr)
}

/// `run`, and the other report files by name (summary.md, junit.xml, report.html).
fn run_with_files(yaml: &str) -> (i32, Value, String, Vec<(String, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("canary.yaml");
    std::fs::write(&file, yaml).unwrap();
    let out = dir.path().join("out");
    let output = slo_check()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "--quiet", "--scenario"])
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = std::fs::read(out.join("run.json"))
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or_else(|e| panic!("no run.json ({e}): {stderr}"));
    let files = ["summary.md", "junit.xml", "report.html"]
        .iter()
        .map(|f| {
            (
                f.to_string(),
                std::fs::read_to_string(out.join(f)).unwrap_or_default(),
            )
        })
        .collect();
    (output.status.code().unwrap_or(-1), report, stderr, files)
}

fn served(step: &Value, subset: &str) -> u64 {
    step["subsets"][subset]["workflows"].as_u64().unwrap()
}

#[test]
fn the_weight_split_is_observed_within_a_binomial_bound() {
    let yaml = scenario(
        "",
        4,
        r#"canary:
  stable: { version: v1 }
  canary: { version: v2 }
  steps: [{ weight: 30, for: 4s }]
  analysis: [{ name: canary errors, metric: failure_rate, max: 1% }]
slos:
  - { name: canary only, metric: failure_rate, max: 1%, subset: canary }
"#,
    );
    let (code, report, stderr) = run(&yaml);
    assert_eq!(code, 0, "{stderr}\n{:#}", report["canary"]);
    let c = &report["canary"];
    assert_eq!(c["outcome"], "promoted");
    let step = &c["steps"][0];
    let (stable, canary) = (served(step, "stable"), served(step, "canary"));
    let n = (stable + canary) as f64;
    assert!(n >= 700.0, "{stable} + {canary} workflows attributed");
    // Every workflow was attributed: none failed, none lacks a version.
    assert_eq!(
        stable + canary,
        report["counts"]["succeeded"].as_u64().unwrap()
    );
    // 4 sigma of a binomial(n, 0.3) around n × 0.3.
    let sigma = (n * 0.3 * 0.7).sqrt();
    assert!(
        (canary as f64 - n * 0.3).abs() < 4.0 * sigma,
        "canary served {canary} of {n}"
    );
    let slo = &report["slos"][0];
    assert_eq!(slo["window"]["label"], "run, canary");
    assert_eq!(slo["status"], "pass");
}

#[test]
fn the_header_match_always_reaches_the_canary() {
    let yaml = scenario(
        r#"canary-user: "true""#,
        2,
        r#"canary:
  stable: { version: v1 }
  canary: { version: v2 }
  header: { canary-user: "true" }
  steps: [{ weight: 10, for: 2s }]
  analysis: [{ name: canary errors, metric: failure_rate, max: 1% }]
"#,
    );
    let (code, report, stderr) = run(&yaml);
    assert_eq!(code, 0, "{stderr}");
    let step = &report["canary"]["steps"][0];
    assert_eq!(served(step, "stable"), 0, "{step:#}");
    assert_eq!(
        served(step, "canary"),
        report["counts"]["succeeded"].as_u64().unwrap()
    );
    assert!(served(step, "canary") > 300);
}

#[test]
fn a_bad_canary_is_rolled_back_at_the_first_failing_step_and_gets_no_more_traffic() {
    // Step 1 sends it nothing (0 %, allowed to be unknown); step 2 (50 %) shows its
    // failures and must roll it back; steps 3 and 4 never run.
    let yaml = scenario(
        "",
        6,
        r#"canary:
  stable: { version: v1 }
  canary: { version: v2, local: { failure_rate: 40% } }
  steps:
    - { weight: 0, for: 1500ms }
    - { weight: 50, for: 1500ms }
    - { weight: 75, for: 1500ms }
    - { weight: 100, for: 1500ms }
  analysis: [{ name: canary errors, metric: failure_rate, max: 1%, allow_unknown: true }]
"#,
    );
    let (code, report, stderr, files) = run_with_files(&yaml);
    assert_eq!(code, 1, "{stderr}");
    let file = |name: &str| &files.iter().find(|f| f.0 == name).unwrap().1;
    assert!(
        file("summary.md").contains("**canary rolled_back at step 2 (50 %): step 2 (50 %) failed its analysis: canary errors"),
        "{}",
        file("summary.md")
    );
    assert!(file("summary.md").contains("| 3 | 75 % |"));
    assert!(file("report.html").contains("<h2>Canary: v1 → v2</h2>"));
    let junit = file("junit.xml");
    assert!(
        junit.contains(r#"testsuite name="slo-check canary-test canary" tests="4""#),
        "{junit}"
    );
    assert!(
        junit.contains(r#"testcase name="canary step 2 (50 %)""#),
        "{junit}"
    );
    assert!(junit.contains("canary-step-failed"), "{junit}");
    assert_eq!(report["verdict"], "fail");
    let c = &report["canary"];
    assert_eq!(c["outcome"], "rolled_back");
    assert_eq!(c["rolled_back_at_step"], 2);
    let verdicts: Vec<&str> = c["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["pass", "fail", "skipped", "skipped"]);
    assert!(
        c["reason"].as_str().unwrap().contains("canary errors"),
        "{c:#}"
    );
    // The weight went 0 → 50 → 0, the rollback at step 2's end.
    let weights: Vec<(f64, u64)> = c["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["at_s"].as_f64().unwrap(), w["weight"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        weights.iter().map(|w| w.1).collect::<Vec<_>>(),
        [0, 50, 0],
        "{weights:?}"
    );
    let rolled_back_at = weights[2].0;
    assert!(rolled_back_at >= 3.0, "{rolled_back_at}");
    // From the first whole second after the rollback, the canary served nothing.
    let per_second = c["served_per_second"].as_array().unwrap();
    let from = rolled_back_at.ceil() as usize;
    assert!(per_second.len() > from + 1, "{per_second:?}");
    for (t, s) in per_second.iter().enumerate().skip(from) {
        assert_eq!(s["canary"], 0, "second {t}: {s}");
        assert!(s["stable"].as_u64().unwrap() > 0 || t + 1 == per_second.len());
    }
    // And it had traffic before: second 2 lies in step 2 (1.5 s–3 s).
    assert!(
        per_second[2]["canary"].as_u64().unwrap() > 0,
        "{per_second:?}"
    );
}

#[test]
fn bad_canary_sections_and_platforms_that_cannot_route_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    let bad = scenario(
        "",
        10,
        r#"canary:
  stable: { version: v1 }
  canary: { version: v2 }
  steps:
    - { weight: 20, for: 2s }
    - { weight: 10, for: 2s }
    - { weight: 120, for: 2s }
    - { weight: 50 }
  analysis: [{ name: e, metric: failure_rate, max: 1% }]
slos:
  - { name: s, metric: latency.p95, max: 1s, subset: blue }
"#,
    );
    std::fs::write(&file, &bad).unwrap();
    let out = slo_check().arg("validate").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let f = file.display();
    for expected in [
        format!("{f}:24:7: canary.steps[1].weight: 10 does not rise above the previous step's 20"),
        format!("{f}:25:7: canary.steps[2].weight: 120 is outside 0–100"),
        format!("{f}:26:7: canary.steps[3].for: the step has no `for`"),
        format!("{f}:29:5: slos[0].subset: unknown subset `blue`"),
    ] {
        assert!(err.contains(&expected), "missing {expected}\n{err}");
    }
    let good = scenario(
        "",
        2,
        "canary:\n  stable: { version: v1 }\n  canary: { version: v2 }\n  steps: [{ weight: 10, for: 2s }]\n  analysis: [{ name: e, metric: failure_rate, max: 1% }]\n",
    );
    std::fs::write(&file, &good).unwrap();
    let out = slo_check()
        .args([
            "run",
            "--quiet",
            "--platform",
            "url",
            "--target-url",
            "http://127.0.0.1:9",
        ])
        .arg("--scenario")
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{f}:20:3: canary: the url platform cannot route")),
        "{err}"
    );
}

/// Workflows of one quick request all end before the schedule does, and so before the
/// last step: that step is still judged at its end, and the canary promoted.
#[test]
fn the_last_step_is_judged_when_every_workflow_ended_before_it() {
    let yaml = r#"name: canary-quick
platform:
  local: { replicas: 2, autoscale: false, cores: 4, cpu_per_workflow: 1ms, seed: 5 }
workflow:
  - name: submit
    request: { method: POST, path: /api/v1/workflows, json: { task: t } }
    expect: { status: [202] }
load:
  arrival: constant
  stages: [{ for: 2s, rate: 100 }]
canary:
  stable: { version: v1 }
  canary: { version: v2 }
  steps: [{ weight: 50, for: 1s }, { weight: 100, for: 1s }]
  analysis: [{ name: canary errors, metric: failure_rate, max: 1% }]
"#;
    let (code, report, stderr) = run(yaml);
    let c = &report["canary"];
    assert_eq!(code, 0, "{stderr}\n{c:#}");
    assert_eq!(c["outcome"], "promoted", "{c:#}");
    assert_eq!(c["steps"][1]["verdict"], "pass", "{c:#}");
}
