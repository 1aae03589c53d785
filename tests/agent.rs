//! The reference agent service against real servers on 127.0.0.1 (port 0), and the
//! `slo-check agent` binary's exit codes.

use std::time::Duration;

use crate::support::agent::{Http, KillOnDrop, TEST_BOUND, ms, quick_config, start};
use hyper::{Method, StatusCode};
use serde_json::json;
use slo_check::agent::{AgentConfig, CpuMode, LogNormalLatency};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

#[tokio::test]
async fn submitted_workflow_runs_to_completion() {
    timeout(TEST_BOUND, async {
        let handle = start(quick_config()).await;
        let http = Http::new(&handle);
        let id = http.submit(json!({"task": "summarize"})).await;
        let view = http.wait_finished(&id).await;
        assert_eq!(view["status"], "completed", "{view}");
        assert_eq!(view["steps_done"], 3, "{view}");
        assert_eq!(view["workflow_type"], "default");
        assert!(view["duration_ms"].as_u64().is_some(), "{view}");
        assert_eq!(handle.active_workflows(), 0);
        handle.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn fail_ratio_one_fails_every_workflow() {
    timeout(TEST_BOUND, async {
        let handle = start(AgentConfig {
            fail_ratio: 1.0,
            ..quick_config()
        })
        .await;
        let http = Http::new(&handle);
        let id = http.submit(json!({"workflow_type": "rag"})).await;
        let view = http.wait_finished(&id).await;
        assert_eq!(view["status"], "failed", "{view}");
        let (_, text) = http.call(Method::GET, "/metrics", None).await;
        assert!(
            text.contains(r#"workflow_executions_total{workflow_type="rag",status="failed"} 1"#),
            "{text}"
        );
        handle.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn over_max_concurrent_workflows_answers_503() {
    timeout(TEST_BOUND, async {
        let slow = LogNormalLatency::new(Duration::from_secs(30), Duration::from_secs(30)).unwrap();
        let handle = start(AgentConfig {
            max_concurrent_workflows: 2,
            llm_latency: slow,
            ..quick_config()
        })
        .await;
        let http = Http::new(&handle);
        http.submit(json!({})).await;
        http.submit(json!({})).await;
        let (status, answer) = http
            .json(Method::POST, "/api/v1/workflows", Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("max_concurrent_workflows")
        );
        assert_eq!(handle.active_workflows(), 2);
        // Shutdown ends the 30 s workflows rather than waiting for them.
        handle.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn unknown_workflow_and_unknown_path_are_404() {
    timeout(TEST_BOUND, async {
        let handle = start(quick_config()).await;
        let http = Http::new(&handle);
        let (status, answer) = http.json(Method::GET, "/api/v1/workflows/nope", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(answer["error"].is_string());
        let (status, _) = http.json(Method::GET, "/nope", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = http
            .json(Method::POST, "/api/v1/workflows", Some(json!([1])))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = http.json(Method::DELETE, "/health", None).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        handle.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn ready_only_after_startup_delay_and_unready_while_draining() {
    timeout(TEST_BOUND, async {
        let handle = start(AgentConfig {
            startup_delay: ms(300),
            ..quick_config()
        })
        .await;
        let http = Http::new(&handle);
        let (status, _) = http.call(Method::GET, "/ready", None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!handle.is_ready());
        let (status, body) = http.json(Method::GET, "/health", None).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
        while http.call(Method::GET, "/ready", None).await.0 != StatusCode::OK {
            sleep(ms(20)).await;
        }
        assert!(handle.is_ready());
        handle.set_ready(false);
        assert_eq!(
            http.call(Method::GET, "/ready", None).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let (_, text) = http.call(Method::GET, "/metrics", None).await;
        assert!(text.contains("\nagent_ready 0\n"), "{text}");
        handle.set_ready(true);
        assert_eq!(
            http.call(Method::GET, "/ready", None).await.0,
            StatusCode::OK
        );
        handle.shutdown().await;
    })
    .await
    .unwrap();
}

/// `(name, labels, value)` of every sample line; panics on a line that does not parse.
fn parse_exposition(text: &str) -> Vec<(String, String, f64)> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect(line);
            let value: f64 = value.parse().expect(line);
            match series.split_once('{') {
                Some((name, labels)) => {
                    let labels = labels.strip_suffix('}').expect(line);
                    (name.to_owned(), labels.to_owned(), value)
                }
                None => (series.to_owned(), String::new(), value),
            }
        })
        .collect()
}

#[tokio::test]
async fn metrics_expose_every_series_with_template_labels() {
    timeout(TEST_BOUND, async {
        let handle = start(quick_config()).await;
        let http = Http::new(&handle);
        let id = http.submit(json!({"workflow_type": "summarize"})).await;
        http.wait_finished(&id).await;
        http.call(Method::GET, "/health", None).await;
        http.call(Method::GET, "/nope", None).await;
        let (status, text) = http.call(Method::GET, "/metrics", None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!text.contains(&id), "raw ids must not become labels");
        let samples = parse_exposition(&text);
        // Label order is the encoder's business (`le` comes first); compare as sets.
        let norm = |labels: &str| {
            let mut pairs: Vec<&str> = labels.split(',').collect();
            pairs.sort_unstable();
            pairs.join(",")
        };
        let find = |name: &str, labels: &str| {
            samples
                .iter()
                .find(|(n, l, _)| n == name && norm(l) == norm(labels))
                .map(|(_, _, v)| *v)
                .unwrap_or_else(|| panic!("no {name}{{{labels}}} in\n{text}"))
        };
        let get_id = r#"method="GET",endpoint="/api/v1/workflows/{id}""#;
        assert!(
            find(
                "http_requests_total",
                &format!(r#"{get_id},status_code="200""#)
            ) >= 1.0
        );
        assert_eq!(
            find(
                "http_requests_total",
                r#"method="POST",endpoint="/api/v1/workflows",status_code="202""#
            ),
            1.0
        );
        assert_eq!(
            find(
                "http_requests_total",
                r#"method="GET",endpoint="/health",status_code="200""#
            ),
            1.0
        );
        assert!(find("http_request_duration_seconds_count", get_id) >= 1.0);
        for le in [
            "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0",
            "+Inf",
        ] {
            find(
                "http_request_duration_seconds_bucket",
                &format!(r#"{get_id},le="{le}""#),
            );
        }
        let summarize = r#"workflow_type="summarize""#;
        assert_eq!(
            find(
                "workflow_executions_total",
                &format!(r#"{summarize},status="completed""#)
            ),
            1.0
        );
        assert_eq!(find("workflow_duration_seconds_count", summarize), 1.0);
        for le in [
            "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "30.0", "60.0", "120.0", "+Inf",
        ] {
            find(
                "workflow_duration_seconds_bucket",
                &format!(r#"{summarize},le="{le}""#),
            );
        }
        assert_eq!(find("active_workflows", ""), 0.0);
        assert_eq!(find("agent_ready", ""), 1.0);
        let utilisation = find("agent_cpu_utilisation_ratio", "");
        assert!((0.0..=1.0).contains(&utilisation), "{utilisation}");
        handle.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn half_a_core_saturates_and_queues_work() {
    timeout(TEST_BOUND, async {
        // 50 ms of core-time on 0.5 cores holds the single server 100 ms; no other latency.
        let handle = start(AgentConfig {
            cores: 0.5,
            cpu_per_workflow: ms(50),
            llm_calls: 0,
            tool_calls: 0,
            utilisation_window: Duration::from_secs(1),
            ..quick_config()
        })
        .await;
        let http = Http::new(&handle);
        assert!(handle.cpu_utilisation() < 0.01);

        let alone = http.wait_finished(&http.submit(json!({})).await).await;
        let alone_ms = alone["duration_ms"].as_u64().unwrap();
        assert!(alone_ms >= 100, "{alone}");

        // Ten at once: one second of server time, so most of them wait in the queue.
        sleep(Duration::from_secs(1)).await;
        let mut ids = Vec::new();
        for _ in 0..10 {
            ids.push(http.submit(json!({})).await);
        }
        sleep(ms(800)).await;
        let busy = handle.cpu_utilisation();
        assert!(busy > 0.5, "utilisation under load {busy}");
        let mut slowest_ms = 0;
        for id in &ids {
            let view = http.wait_finished(id).await;
            slowest_ms = slowest_ms.max(view["duration_ms"].as_u64().unwrap());
        }
        assert!(
            slowest_ms >= 3 * alone_ms.max(100),
            "queued {slowest_ms} ms vs alone {alone_ms} ms"
        );

        sleep(ms(1200)).await;
        let idle = handle.cpu_utilisation();
        assert!(idle < 0.05, "utilisation when idle {idle}");
        handle.shutdown().await;
    })
    .await
    .unwrap();
}

/// User plus system CPU time of this whole test process so far.
fn process_cpu_time() -> Duration {
    // SAFETY: `usage` is a valid, writable rusage for getrusage to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage failed");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burn_mode_spends_the_workflows_cpu_time_for_real() {
    timeout(Duration::from_secs(30), async {
        const WORKFLOWS: u32 = 12;
        let work = ms(50);
        let handle = start(AgentConfig {
            cpu_mode: CpuMode::Burn,
            cores: 2.0,
            cpu_per_workflow: work,
            llm_calls: 0,
            tool_calls: 0,
            utilisation_window: Duration::from_secs(5),
            ..quick_config()
        })
        .await;
        let http = Http::new(&handle);
        let before = process_cpu_time();
        let mut ids = Vec::new();
        for _ in 0..WORKFLOWS {
            ids.push(http.submit(json!({})).await);
        }
        for id in &ids {
            assert_eq!(http.wait_finished(id).await["status"], "completed");
        }
        let used = process_cpu_time() - before;
        // Each burn spins until its thread has used `work` of CPU time, so the process used
        // at least WORKFLOWS × work (other tests running alongside only add to it). A
        // lower bound on CPU time, never on wall-clock speed.
        let expected = work * WORKFLOWS;
        assert!(
            used >= expected.mul_f64(0.9),
            "{WORKFLOWS} workflows × {work:?} burnt only {used:?} of process CPU time"
        );
        let utilisation = handle.cpu_utilisation();
        assert!(
            utilisation > 0.0,
            "the burns must show as utilisation: {utilisation}"
        );
        handle.shutdown().await;
    })
    .await
    .unwrap();
}

async fn read_response(stream: &mut TcpStream) -> String {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed early");
        buffer.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buffer).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.parse().unwrap())
                })
                .unwrap();
            if body.len() >= length {
                return text;
            }
        }
    }
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection_and_shutdown_is_bounded() {
    timeout(TEST_BOUND, async {
        let handle = start(quick_config()).await;
        let addr = handle.addr();
        let mut stream = TcpStream::connect(addr).await.unwrap();
        for _ in 0..3 {
            stream
                .write_all(b"GET /health HTTP/1.1\r\nHost: agent\r\n\r\n")
                .await
                .unwrap();
            let answer = read_response(&mut stream).await;
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        }
        // An idle keep-alive connection must not hold shutdown up.
        let started = Instant::now();
        handle.shutdown().await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(TcpStream::connect(addr).await.is_err());
    })
    .await
    .unwrap();
}

#[test]
fn non_loopback_listen_without_the_flag_exits_2_naming_it() {
    let output = assert_cmd::Command::cargo_bin("slo-check")
        .unwrap()
        .args(["agent", "--listen", "0.0.0.0:0"])
        .timeout(Duration::from_secs(9))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--listen") && stderr.contains("--allow-non-loopback"),
        "{stderr}"
    );
}

#[test]
fn taken_port_exits_3_naming_the_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = assert_cmd::Command::cargo_bin("slo-check")
        .unwrap()
        .args(["agent", "--listen", &addr])
        .timeout(Duration::from_secs(9))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--listen"), "{stderr}");
}

#[test]
fn sigterm_shuts_the_cli_down_cleanly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("slo-check"))
        .args(["agent", "--listen", &format!("127.0.0.1:{port}")])
        .env("AGENT_SEED", "1")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "agent never listened");
        std::thread::sleep(ms(20));
    }
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    while child.0.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "agent ignored SIGTERM"
        );
        std::thread::sleep(ms(20));
    }
    assert_eq!(child.0.wait().unwrap().code(), Some(0));
}
