//! Secrets: a value from `${env:API_TOKEN}`, used in a header, the URL path and
//! a JSON body, never appears in any output — stdout, stderr, run.json,
//! summary.md, junit.xml, report.html, every .svg, and whatever else the run
//! writes — whether the run passes, fails, cannot connect, or the scenario is
//! invalid. The test server checks the value really was sent.

use crate::support;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::support::common::{Req, Run, Server, closed_port, count, json, respond, slo_check};
use serde_json::json;

/// Distinctive, URL- and header-safe.
const TOKEN: &str = "tok-Zq7Xw3Kp9Lm2Vb8N";

const SCENARIO: &str = r#"name: secrets
workflow:
  - name: submit
    request:
      method: POST
      path: "/api/${env:API_TOKEN}/workflows"
      headers: { authorization: "Bearer ${env:API_TOKEN}", x-api-key: "${env:API_TOKEN}" }
      json: { task: summarize, token: "${env:API_TOKEN}", n: "${seq}" }
    expect: { status: [200, 202] }
    capture: { id: /id }
  - name: await
    request:
      method: GET
      path: "/api/${env:API_TOKEN}/workflows/${id}"
      headers: { authorization: "Bearer ${env:API_TOKEN}" }
    poll: { until: { pointer: /status, equals: completed }, every: 20ms, timeout: 500ms }
load: { arrival: constant, stages: [{ for: 1s, rate: 10 }], request_timeout: 500ms }
slos:
  - { name: p95, metric: latency.p95, max: 1s }
  - { name: errors, metric: failure_rate, max: 1% }
"#;

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The token appears nowhere in `text` (also not in an escaped JSON/HTML form,
/// which keeps this alphabet unchanged).
fn clean(what: &str, text: &[u8]) {
    let needle = TOKEN.as_bytes();
    assert!(
        !text.windows(needle.len()).any(|w| w == needle),
        "the secret leaked into {what}"
    );
}

/// Check stdout, stderr and every file the run wrote; returns the names checked.
fn assert_no_leak(run: &support::common::Finished) -> Vec<String> {
    clean("stdout", run.stdout.as_bytes());
    clean("stderr", run.stderr.as_bytes());
    let mut names = Vec::new();
    if run.out.is_dir() {
        for f in files(&run.out) {
            let bytes = std::fs::read(&f).unwrap();
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            clean(&name, &bytes);
            names.push(name);
        }
    }
    names.sort();
    names
}

/// A server that checks the token in header, path and body, and answers like the
/// agent (`fail` makes every submit a 500 after the check).
fn agent(fail: bool, seen: Arc<AtomicU64>) -> Server {
    Server::http(move |req: Req| {
        let seen = seen.clone();
        async move {
            let prefix = format!("/api/{TOKEN}/workflows");
            let auth = req
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            if !req.path.starts_with(&prefix) || auth != format!("Bearer {TOKEN}") {
                return respond(400, "token missing");
            }
            if req.method == hyper::Method::POST {
                let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
                let key = req.headers.get("x-api-key").and_then(|v| v.to_str().ok());
                if body["token"] != TOKEN || key != Some(TOKEN) {
                    return respond(400, "token missing");
                }
                seen.fetch_add(1, Ordering::Relaxed);
                if fail {
                    // A server that echoes the secret back must not make it leak either.
                    return respond(500, format!("bad token {TOKEN}"));
                }
                return json(202, json!({ "id": "w1", "status": "running" }));
            }
            json(200, json!({ "status": "completed", "echo": TOKEN }))
        }
    })
}

fn secret_run(target: &str) -> Run {
    Run::new(SCENARIO, target)
        .env("API_TOKEN", TOKEN)
        .loud()
        .arg("--json")
}

#[test]
fn a_passing_run_never_shows_the_secret() {
    let seen = Arc::new(AtomicU64::new(0));
    let server = agent(false, seen.clone());
    let run = secret_run(&server.url()).exec();
    run.expect_code(0);
    assert_eq!(count(&run.report(), "succeeded"), 10);
    assert_eq!(seen.load(Ordering::Relaxed), 10, "the token was sent");
    let names = assert_no_leak(&run);
    for f in ["run.json", "summary.md", "junit.xml", "report.html"] {
        assert!(names.iter().any(|n| n == f), "{f} not written: {names:?}");
    }
    assert!(
        names.iter().filter(|n| n.ends_with(".svg")).count() >= 3,
        "{names:?}"
    );
    // The template, not the value, is what reports may show.
    assert!(!run.stdout.is_empty());
}

#[test]
fn a_failing_run_never_shows_the_secret() {
    let seen = Arc::new(AtomicU64::new(0));
    let server = agent(true, seen.clone());
    let run = secret_run(&server.url()).exec();
    run.expect_code(1);
    assert_eq!(support::common::failures(&run.report(), "status"), 10);
    assert_eq!(seen.load(Ordering::Relaxed), 10);
    assert_no_leak(&run);
}

#[test]
fn a_run_that_cannot_connect_never_shows_the_secret() {
    let run = secret_run(&format!("http://127.0.0.1:{}", closed_port())).exec();
    run.expect_code(3);
    assert!(run.stderr.contains("could not connect"), "{}", run.stderr);
    assert_no_leak(&run);
}

#[test]
fn an_interrupted_run_never_shows_the_secret() {
    // A poll that never completes, stopped by SIGINT: the partial report too.
    let server = Server::http(|req: Req| async move {
        if req.method == hyper::Method::POST {
            json(202, json!({ "id": "w1" }))
        } else {
            json(200, json!({ "status": "running" }))
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.yaml");
    std::fs::write(
        &file,
        SCENARIO.replace("for: 1s, rate: 10", "for: 20s, rate: 10"),
    )
    .unwrap();
    let out = dir.path().join("out");
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("slo-check"))
        .env("API_TOKEN", TOKEN)
        .env_remove("GITHUB_STEP_SUMMARY")
        .arg("run")
        .arg("--scenario")
        .arg(&file)
        .args(["--platform", "url", "--target-url", &server.url(), "--json"])
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    // wait_with_output drains the pipes; the child is bounded by its grace (5 s) and poll timeout.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("slo-check stops after SIGINT")
        .unwrap();
    assert_eq!(output.status.code(), Some(130));
    let run = support::common::Finished {
        _dir: dir,
        out,
        code: 130,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert_eq!(run.report()["interrupted"], true);
    assert_no_leak(&run);
}

#[test]
fn errors_about_the_scenario_never_show_the_secret() {
    // Invalid: an unknown metric and a capture used before it is set, in a file that
    // uses the secret; the error messages quote the file.
    let bad = SCENARIO
        .replace("metric: latency.p95", "metric: latency.p42")
        .replace("${seq}", "${later}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, &bad).unwrap();
    for args in [
        vec![
            "run",
            "--scenario",
            file.to_str().unwrap(),
            "--platform",
            "url",
            "--target-url",
            "http://127.0.0.1:9",
        ],
        vec!["validate", file.to_str().unwrap()],
        vec!["plan", "--scenario", file.to_str().unwrap()],
    ] {
        let out = slo_check()
            .args(&args)
            .env("API_TOKEN", TOKEN)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("bad.yaml:"), "{args:?}: {stderr}");
        clean("stderr", &out.stderr);
        clean("stdout", &out.stdout);
    }
    // A valid scenario through `plan --starts` (which prints the plan in full).
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, SCENARIO).unwrap();
    let out = slo_check()
        .args(["plan", "--starts", "--scenario", good.to_str().unwrap()])
        .env("API_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    clean("plan stdout", &out.stdout);
    clean("plan stderr", &out.stderr);
}

#[test]
fn a_secret_that_cannot_be_a_header_fails_the_request_without_showing_it() {
    // A newline makes the header value invalid: the request fails as `expectation`,
    // and neither value nor half of it is printed.
    let server = Server::http(|_| async { respond(200, "{}") });
    let bad_token = format!("{TOKEN}\nX-Injected: 1");
    let run = Run::new(SCENARIO, &server.url())
        .env("API_TOKEN", &bad_token)
        .loud()
        .arg("--json")
        .exec();
    run.expect_code(1);
    assert_eq!(support::common::failures(&run.report(), "expectation"), 10);
    assert_no_leak(&run);
}
