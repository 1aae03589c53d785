//! Every failure kind, each from a server that misbehaves in one way, and
//! each run ending on time however the server behaves.

use crate::support;
use std::time::Duration;

use crate::support::common::{Run, Server, closed_port, count, failures, json, respond};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KINDS: [&str; 6] = [
    "connect",
    "timeout",
    "status",
    "expectation",
    "poll_timeout",
    "other",
];

/// One GET step at 10/s for 1 s, a 200 ms request timeout, and a failure-rate SLO.
fn one_step(step_extra: &str, load_extra: &str) -> String {
    format!(
        r#"name: failing
workflow:
  - name: get
    request: {{ method: GET, path: /x }}
{step_extra}load: {{ arrival: constant, stages: [{{ for: 1s, rate: 10 }}], request_timeout: 200ms{load_extra} }}
slos: [{{ name: errors, metric: failure_rate, max: 1% }}]
"#
    )
}

/// Assert every workflow failed with `kind` and no other kind was counted.
fn all_failed_as(r: &Value, kind: &str) {
    let n = count(r, "scheduled");
    assert_eq!(n, 10);
    assert_eq!(count(r, "started"), n);
    assert_eq!(count(r, "succeeded"), 0);
    assert_eq!(count(r, "failed"), n);
    for k in KINDS {
        let want = if k == kind { n } else { 0 };
        assert_eq!(
            failures(r, k),
            want,
            "failures_by_kind.{k}: {}",
            r["counts"]["failures_by_kind"]
        );
    }
    assert_eq!(r["counts"]["failure_rate"], 1.0);
    assert_eq!(
        r["workflow"]["latency_ms"]["count"], 0,
        "failures have no latency"
    );
    assert_eq!(r["verdict"], "fail");
}

/// The load phase ends within the schedule plus the longest a workflow may take (plus slack).
fn ended_on_time(r: &Value, longest_s: f64) {
    let d = r["duration_s"].as_f64().unwrap();
    let sched = r["schedule_s"].as_f64().unwrap();
    assert!(
        d <= sched + longest_s + 1.0,
        "the run took {d} s for a {sched} s schedule"
    );
}

/// A server that accepts connections and never answers (reads and discards).
fn silent() -> Server {
    Server::tcp(|mut s| async move {
        let mut buf = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            if n == 0 {
                break;
            }
        }
    })
}

#[test]
fn connection_refused_is_connect_and_exit_3() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let run = Run::new(&one_step("", ""), &url).exec();
    run.expect_code(3);
    assert!(run.stderr.contains("could not connect"), "{}", run.stderr);
    let r = run.report();
    all_failed_as(&r, "connect");
}

#[test]
fn http_500_is_status_and_exit_1() {
    let server = Server::http(|_| async { respond(500, "boom") });
    let run = Run::new(&one_step("", ""), &server.url()).exec();
    run.expect_code(1);
    let r = run.report();
    all_failed_as(&r, "status");
    assert_eq!(support::common::slo(&r, "errors")["status"], "fail");
}

#[test]
fn unexpected_status_is_status_even_when_2xx() {
    let server = Server::http(|_| async { respond(200, "ok") });
    let run = Run::new(
        &one_step("    expect: { status: [201] }\n", ""),
        &server.url(),
    )
    .exec();
    run.expect_code(1);
    all_failed_as(&run.report(), "status");
}

#[test]
fn silent_server_is_timeout_and_the_run_ends_on_time() {
    let server = silent();
    let run = Run::new(&one_step("", ""), &server.url()).exec();
    run.expect_code(1);
    let r = run.report();
    all_failed_as(&r, "timeout");
    ended_on_time(&r, 0.2);
}

#[test]
fn headers_then_a_stalled_body_is_timeout() {
    let server = Server::tcp(|mut s| async move {
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).await;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly-a-little")
            .await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let run = Run::new(&one_step("", ""), &server.url()).exec();
    run.expect_code(1);
    let r = run.report();
    all_failed_as(&r, "timeout");
    ended_on_time(&r, 0.2);
}

#[test]
fn missing_capture_is_expectation() {
    let server = Server::http(|_| async { json(200, json!({ "not_id": 1 })) });
    let run = Run::new(&one_step("    capture: { id: /id }\n", ""), &server.url()).exec();
    run.expect_code(1);
    all_failed_as(&run.report(), "expectation");
}

#[test]
fn non_json_body_with_capture_is_expectation() {
    let server = Server::http(|_| async { respond(200, "<html>hello</html>") });
    let run = Run::new(&one_step("    capture: { id: /id }\n", ""), &server.url()).exec();
    run.expect_code(1);
    all_failed_as(&run.report(), "expectation");
}

#[test]
fn poll_that_never_completes_is_poll_timeout() {
    let server = Server::http(|_| async { json(200, json!({ "status": "running" })) });
    let step = "    poll: { until: { pointer: /status, equals: completed }, every: 50ms, timeout: 300ms }\n";
    let run = Run::new(&one_step(step, ""), &server.url()).exec();
    run.expect_code(1);
    let r = run.report();
    all_failed_as(&r, "poll_timeout");
    ended_on_time(&r, 0.3);
}

#[test]
fn poll_whose_request_hangs_past_the_poll_timeout_is_poll_timeout() {
    // request_timeout (5 s) is longer than the poll's timeout (300 ms): the poll's
    // own deadline ends the hanging request.
    let server = silent();
    let step = "    poll: { until: { pointer: /status, equals: completed }, every: 50ms, timeout: 300ms }\n";
    let yaml = one_step(step, "").replace("request_timeout: 200ms", "request_timeout: 5s");
    let run = Run::new(&yaml, &server.url()).exec();
    run.expect_code(1);
    let r = run.report();
    all_failed_as(&r, "poll_timeout");
    ended_on_time(&r, 0.3);
}

#[test]
fn body_over_max_response_bytes_is_other() {
    let server = Server::http(|_| async { respond(200, vec![b'x'; 10_000]) });
    let run = Run::new(&one_step("", ", max_response_bytes: 1000"), &server.url()).exec();
    run.expect_code(1);
    all_failed_as(&run.report(), "other");
}

#[test]
fn body_over_max_response_bytes_without_content_length_is_other() {
    // Chunked: the limit must hold while streaming, not only against a declared length.
    let server = Server::tcp(|mut s| async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let chunk = "x".repeat(4000);
            let mut resp = String::from("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
            for _ in 0..3 {
                resp.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
            }
            resp.push_str("0\r\n\r\n");
            if s.write_all(resp.as_bytes()).await.is_err() {
                break;
            }
        }
    });
    let run = Run::new(&one_step("", ", max_response_bytes: 1000"), &server.url()).exec();
    run.expect_code(1);
    all_failed_as(&run.report(), "other");
}

#[test]
fn garbage_instead_of_http_is_other() {
    // A peer that answers, but not in HTTP: a protocol error, not a connection failure.
    let server = Server::tcp(|mut s| async move {
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).await;
        let _ = s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n").await;
        let _ = s.shutdown().await;
    });
    let run = Run::new(&one_step("", ""), &server.url()).exec();
    run.expect_code(1);
    all_failed_as(&run.report(), "other");
}

#[test]
fn connection_closed_without_a_response_is_connect() {
    // Accepted, then closed before any byte: the target is not really serving.
    let server = Server::tcp(|mut s| async move {
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).await;
        drop(s);
    });
    let run = Run::new(&one_step("", ""), &server.url()).exec();
    let r = run.report();
    all_failed_as(&r, "connect");
    run.expect_code(3);
}
