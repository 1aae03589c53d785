//! Misbehaving targets, each a server on loopback: connection refused, reset in
//! the middle of a response, accepts and never answers, garbage instead of HTTP,
//! a body of hundreds of megabytes, a byte a second. Every run ends on time
//! (schedule + request timeout + a small margin, measured from outside the
//! process too), every failure is counted under its kind, and memory stays
//! bounded (peak RSS of the child, from /proc/<pid>/status VmHWM).

use crate::support;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::common::{Server, closed_port, count, failures};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KINDS: [&str; 7] = [
    "connect",
    "timeout",
    "status",
    "overloaded",
    "expectation",
    "poll_timeout",
    "other",
];

/// Workflows per run: 10/s for 1 s.
const N: u64 = 10;
const SCHEDULE: Duration = Duration::from_secs(1);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// Start-up, report writing and scheduling noise on a shared 2-core machine.
const MARGIN: Duration = Duration::from_millis(2500);

fn scenario(load_extra: &str) -> String {
    format!(
        "name: misbehaving\nworkflow:\n  - name: get\n    request: {{ method: GET, path: /x }}\n\
load: {{ arrival: constant, stages: [{{ for: 1s, rate: 10 }}], request_timeout: 1s{load_extra} }}\n\
slos: [{{ name: errors, metric: failure_rate, max: 1% }}]\n"
    )
}

/// A finished run with its wall-clock time and the child's peak resident set.
struct Measured {
    code: i32,
    wall: Duration,
    peak_rss_kb: u64,
    stderr: String,
    report: Value,
}

/// Run the real binary against `url`, sampling its VmHWM every 10 ms; killed after 30 s.
fn run(url: &str, yaml: &str, extra: &[&str]) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.yaml");
    std::fs::write(&file, yaml).unwrap();
    let out = dir.path().join("out");
    let err_path = dir.path().join("stderr");
    let start = Instant::now();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("slo-check"))
        .env_remove("GITHUB_STEP_SUMMARY")
        .arg("run")
        .arg("--scenario")
        .arg(&file)
        .args(["--platform", "url", "--target-url", url, "--quiet", "--out"])
        .arg(&out)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_rss_kb = 0;
    let status = loop {
        // VmHWM is the peak so far: the last read before exit is (almost) the run's peak.
        if let Some(kb) = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|s| vm_hwm_kb(&s))
        {
            peak_rss_kb = peak_rss_kb.max(kb);
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("slo-check did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = start.elapsed();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let report = std::fs::read_to_string(out.join("run.json"))
        .map(|t| serde_json::from_str(&t).expect("run.json is JSON"))
        .unwrap_or_else(|e| panic!("no run.json ({e}); status {status:?}; stderr:\n{stderr}"));
    Measured {
        code: status.code().unwrap_or(-1),
        wall,
        peak_rss_kb,
        stderr,
        report,
    }
}

fn vm_hwm_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

impl Measured {
    /// Every workflow failed with `kind`, no other kind counted, and the run ended on time.
    fn all_failed_as(&self, kind: &str) -> &Self {
        let r = &self.report;
        assert_eq!(count(r, "scheduled"), N);
        assert_eq!(count(r, "started"), N);
        assert_eq!(count(r, "succeeded"), 0);
        assert_eq!(count(r, "failed"), N, "{}", r["counts"]);
        for k in KINDS {
            let want = if k == kind { N } else { 0 };
            assert_eq!(
                failures(r, k),
                want,
                "failures_by_kind.{k}: {}; stderr:\n{}",
                r["counts"]["failures_by_kind"],
                self.stderr
            );
        }
        self.on_time()
    }

    /// The load phase within schedule + request timeout (+ 0.5 s), the process within
    /// that + `MARGIN`.
    fn on_time(&self) -> &Self {
        let d = self.report["duration_s"].as_f64().unwrap();
        let bound = (SCHEDULE + REQUEST_TIMEOUT).as_secs_f64() + 0.5;
        assert!(d <= bound, "load phase took {d} s (bound {bound} s)");
        assert!(
            self.wall <= SCHEDULE + REQUEST_TIMEOUT + MARGIN,
            "the process took {:?}",
            self.wall
        );
        self
    }

    fn code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "stderr:\n{}", self.stderr);
        self
    }
}

/// Read the request head (up to the blank line, or 64 KiB).
async fn read_head(s: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65536 {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[test]
fn connection_refused_is_connect() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let m = run(&url, &scenario(""), &[]);
    m.code(3).all_failed_as("connect");
    assert!(m.stderr.contains("could not connect"), "{}", m.stderr);
}

#[test]
fn reset_in_the_middle_of_a_response_is_connect() {
    // Headers and 100 of 1000 body bytes, then RST (SO_LINGER 0, then close).
    let server = Server::tcp(|mut s| async move {
        read_head(&mut s).await;
        let mut resp = b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n".to_vec();
        resp.extend_from_slice(&[b'x'; 100]);
        let _ = s.write_all(&resp).await;
        let _ = s.flush().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let _ = s.set_zero_linger();
        drop(s);
    });
    let m = run(&server.url(), &scenario(""), &[]);
    // Every workflow lost its connection: the target is not serving (exit 3).
    m.code(3).all_failed_as("connect");
}

#[test]
fn reset_in_the_middle_of_a_chunked_response_is_connect() {
    let server = Server::tcp(|mut s| async move {
        read_head(&mut s).await;
        let _ = s
            .write_all(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n",
            )
            .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let _ = s.set_zero_linger();
        drop(s);
    });
    run(&server.url(), &scenario(""), &[])
        .code(3)
        .all_failed_as("connect");
}

#[test]
fn accepts_and_never_answers_is_timeout() {
    let server = Server::tcp(|mut s| async move {
        read_head(&mut s).await;
        tokio::time::sleep(Duration::from_secs(20)).await;
    });
    run(&server.url(), &scenario(""), &[])
        .code(1)
        .all_failed_as("timeout");
}

#[test]
fn garbage_instead_of_http_is_other() {
    let server = Server::tcp(|mut s| async move {
        read_head(&mut s).await;
        let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
        let _ = s.write_all(&garbage).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    });
    run(&server.url(), &scenario(""), &[])
        .code(1)
        .all_failed_as("other");
}

/// A 503 is a `status` failure, unless Envoy marked it as its own circuit breaker's
/// refusal (`x-envoy-overloaded`): then it is `overloaded`.
#[test]
fn envoys_overflow_503_is_overloaded_and_a_plain_503_status() {
    for (header, kind) in [
        ("x-envoy-overloaded: true\r\n", "overloaded"),
        ("", "status"),
    ] {
        let server = Server::tcp(move |mut s| async move {
            read_head(&mut s).await;
            let answer = format!(
                "HTTP/1.1 503 Service Unavailable\r\n{header}content-length: 0\r\nconnection: close\r\n\r\n"
            );
            let _ = s.write_all(answer.as_bytes()).await;
        });
        run(&server.url(), &scenario(""), &[])
            .code(1)
            .all_failed_as(kind);
    }
}

/// Each connection would get a 500 MB chunked body, written as fast as the client reads.
fn endless_body() -> Server {
    Server::tcp(|mut s| async move {
        read_head(&mut s).await;
        if s.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
        let chunk = vec![b'z'; 64 * 1024];
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(&chunk);
        framed.extend_from_slice(b"\r\n");
        // 500 MB in 64 KiB chunks; stops as soon as the client hangs up.
        for _ in 0..(500 * 1024 * 1024 / chunk.len()) {
            if s.write_all(&framed).await.is_err() {
                return;
            }
        }
        let _ = s.write_all(b"0\r\n\r\n").await;
    })
}

/// Well under what reading one 500 MB body, let alone ten, would need.
const RSS_BOUND_KB: u64 = 200 * 1024;

#[test]
fn a_body_of_500_mb_stops_at_max_response_bytes_as_other_in_bounded_memory() {
    let server = endless_body();
    // The scenario's cap: 4 MiB.
    let m = run(
        &server.url(),
        &scenario(", max_response_bytes: 4194304"),
        &[],
    );
    m.code(1).all_failed_as("other");
    assert!(
        m.peak_rss_kb > 0 && m.peak_rss_kb < RSS_BOUND_KB,
        "peak RSS {} KiB",
        m.peak_rss_kb
    );
    eprintln!("peak RSS with a 4 MiB cap: {} KiB", m.peak_rss_kb);
}

#[test]
fn max_response_bytes_flag_overrides_the_scenario() {
    let server = endless_body();
    // The scenario allows 400 MB; the flag caps at 64 KiB.
    let m = run(
        &server.url(),
        &scenario(", max_response_bytes: 400000000"),
        &["--max-response-bytes", "65536"],
    );
    m.code(1).all_failed_as("other");
    assert!(
        m.peak_rss_kb < RSS_BOUND_KB,
        "peak RSS {} KiB",
        m.peak_rss_kb
    );
    // And a body under the flag's cap passes.
    let small = Server::http(|_| async { support::common::respond(200, vec![b'a'; 1000]) });
    let m = run(
        &small.url(),
        &scenario(""),
        &["--max-response-bytes", "1000"],
    );
    m.code(0);
    assert_eq!(count(&m.report, "succeeded"), N);
}

#[test]
fn a_byte_a_second_is_timeout() {
    // The status line, one byte a second: the request timeout (1 s) must fire
    // however steadily bytes keep coming.
    let server = Server::tcp(|mut s| async move {
        read_head(&mut s).await;
        for b in b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok" {
            if s.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    run(&server.url(), &scenario(""), &[])
        .code(1)
        .all_failed_as("timeout");
}

#[test]
fn a_body_at_a_byte_a_second_is_timeout() {
    let server = Server::tcp(|mut s| async move {
        read_head(&mut s).await;
        if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
        for _ in 0..100 {
            if s.write_all(b"x").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    run(&server.url(), &scenario(""), &[])
        .code(1)
        .all_failed_as("timeout");
}
