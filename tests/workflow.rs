//! A submit → poll workflow against a fake agent API on loopback: captures,
//! `${seq}`, `${env:NAME}`, poll ticks, and how a poll ends (completed,
//! `fail_if`).

use crate::support;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use crate::support::common::{Run, Server, count, failures, json, respond};
use serde_json::{Value, json};

/// How a workflow's status evolves under polling.
#[derive(Clone, Copy)]
enum Ending {
    /// `running` for the first K polls, then `completed`.
    CompletedAfter(u32),
    /// `running` for the first K polls, then `failed`.
    FailedAfter(u32),
}

#[derive(Default)]
struct Seen {
    next_id: u64,
    /// JSON bodies of the submits.
    bodies: Vec<Value>,
    /// `authorization` header of the submits.
    auth: Vec<String>,
    /// Polls per workflow id.
    polls: BTreeMap<String, u32>,
    /// GETs for ids that were never issued.
    unknown: Vec<String>,
}

fn agent(ending: Ending) -> (Server, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    let server = Server::http(move |req| {
        let mut st = s.lock().unwrap();
        let resp = if req.method == "POST" && req.path == "/api/v1/workflows" {
            let id = st.next_id.to_string();
            st.next_id += 1;
            st.bodies
                .push(serde_json::from_slice(&req.body).unwrap_or(Value::Null));
            let auth = req
                .headers
                .get("authorization")
                .map(|v| v.to_str().unwrap_or("").to_string())
                .unwrap_or_default();
            st.auth.push(auth);
            st.polls.insert(id.clone(), 0);
            json(202, json!({ "id": id, "status": "running" }))
        } else if let Some(id) = req.path.strip_prefix("/api/v1/workflows/") {
            match st.polls.get_mut(id) {
                Some(n) => {
                    *n += 1;
                    let (k, last) = match ending {
                        Ending::CompletedAfter(k) => (k, "completed"),
                        Ending::FailedAfter(k) => (k, "failed"),
                    };
                    let status = if *n <= k { "running" } else { last };
                    json(200, json!({ "id": id, "status": status }))
                }
                None => {
                    st.unknown.push(id.to_string());
                    respond(404, "no such workflow")
                }
            }
        } else {
            respond(404, "not found")
        };
        async move { resp }
    });
    (server, seen)
}

fn scenario(poll_extra: &str, slos: &str) -> String {
    format!(
        r#"name: agent-flow
description: submit, then poll until done
workflow:
  - name: submit
    request:
      method: POST
      path: /api/v1/workflows
      headers: {{ authorization: "Bearer ${{env:TOKEN}}" }}
      json: {{ task: summarize, n: "${{seq}}", nested: {{ label: "wf-${{seq}}" }} }}
    expect: {{ status: [202] }}
    capture: {{ id: /id }}
  - name: await
    request: {{ method: GET, path: "/api/v1/workflows/${{id}}" }}
    poll: {{ until: {{ pointer: /status, equals: completed }}{poll_extra}, every: 50ms, timeout: 2s }}
load: {{ arrival: constant, stages: [{{ for: 1s, rate: 20 }}], request_timeout: 2s }}
slos: {slos}
"#
    )
}

const POLLS_BEFORE_DONE: u32 = 2;

#[test]
fn submit_then_poll_with_capture_seq_and_env() {
    let (server, seen) = agent(Ending::CompletedAfter(POLLS_BEFORE_DONE));
    let yaml = scenario(
        "",
        "[{ name: await p99, metric: step.await.latency.p99, max: 2s }, { name: errors, metric: failure_rate, max: 0 }]",
    );
    let run = Run::new(&yaml, &server.url())
        .env("TOKEN", "s3cret-token")
        .exec();
    run.expect_code(0);
    let r = run.report();
    assert_eq!(r["verdict"], "pass");
    let n = count(&r, "scheduled");
    assert_eq!(n, 20);
    assert_eq!(count(&r, "succeeded"), n);

    let st = seen.lock().unwrap();
    // One submit per workflow, ${seq} rendered 0..n-1 (each once) in the JSON body.
    assert_eq!(st.bodies.len() as u64, n);
    let seqs: BTreeSet<String> = st
        .bodies
        .iter()
        .map(|b| {
            assert_eq!(b["task"], "summarize");
            let n = b["n"].as_str().expect("n is a string").to_string();
            assert_eq!(b["nested"]["label"], format!("wf-{n}"));
            n
        })
        .collect();
    let want: BTreeSet<String> = (0..n).map(|i| i.to_string()).collect();
    assert_eq!(seqs, want);
    // ${env:TOKEN} came from the child's environment.
    assert!(
        st.auth.iter().all(|a| a == "Bearer s3cret-token"),
        "{:?}",
        st.auth
    );
    // The captured id went into every poll; each workflow polled until completed, no more.
    assert!(st.unknown.is_empty(), "polled unknown ids {:?}", st.unknown);
    assert_eq!(st.polls.len() as u64, n);
    for (id, polls) in &st.polls {
        assert_eq!(*polls, POLLS_BEFORE_DONE + 1, "workflow {id}");
    }
    // The secret is never written to a report.
    for f in ["run.json", "summary.md", "junit.xml"] {
        assert!(!run.file(f).contains("s3cret"), "{f} leaks the token");
    }

    // Both steps have latency; the poll step ends on its third tick (2 × 50 ms).
    let submit = &r["steps"]["submit"]["latency_ms"];
    let wait = &r["steps"]["await"]["latency_ms"];
    assert_eq!(submit["count"], n);
    assert_eq!(wait["count"], n);
    let p50 = wait["p50"].as_f64().unwrap();
    assert!(
        p50 >= 100.0,
        "await p50 {p50} ms: completion comes on the tick at 100 ms"
    );
    // The workflow latency covers both steps.
    let wf = r["workflow"]["latency_ms"]["p50"].as_f64().unwrap();
    assert!(wf >= p50, "workflow p50 {wf} < await p50 {p50}");
}

#[test]
fn fail_if_ends_the_poll_as_an_expectation_failure() {
    let (server, seen) = agent(Ending::FailedAfter(1));
    let yaml = scenario(
        ", fail_if: { pointer: /status, equals: failed }",
        "[{ name: errors, metric: failure_rate, max: 1% }]",
    );
    let run = Run::new(&yaml, &server.url()).env("TOKEN", "t").exec();
    run.expect_code(1);
    let r = run.report();
    let n = count(&r, "scheduled");
    assert_eq!(count(&r, "failed"), n);
    assert_eq!(failures(&r, "expectation"), n);
    assert_eq!(failures(&r, "poll_timeout"), 0);
    // Polling stopped at the first `failed` (second poll), well before the 2 s timeout.
    let st = seen.lock().unwrap();
    assert!(st.polls.values().all(|p| *p == 2), "{:?}", st.polls);
    assert_eq!(support::common::slo(&r, "errors")["status"], "fail");
}

#[test]
fn missing_env_var_is_a_usage_error_naming_it() {
    let (server, seen) = agent(Ending::CompletedAfter(0));
    let run = Run::new(&scenario("", "[]"), &server.url())
        .env("TOKEN", "")
        .exec();
    // An empty value is still a value.
    run.expect_code(0);
    let mut cmd = support::common::slo_check();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.yaml");
    std::fs::write(&file, scenario("", "[]")).unwrap();
    cmd.arg("run")
        .arg("--scenario")
        .arg(&file)
        .args([
            "--platform",
            "url",
            "--target-url",
            &server.url(),
            "--quiet",
        ])
        .arg("--out")
        .arg(dir.path().join("out"))
        .env_remove("TOKEN");
    cmd.assert()
        .code(2)
        .stderr(predicates::str::contains("TOKEN"));
    // Nothing was sent.
    assert_eq!(seen.lock().unwrap().bodies.len(), 20);
}
