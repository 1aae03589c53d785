//! The agent's Redis-backed workflow store against a real `redis-server` that each test
//! starts on a free loopback port (with a password, so AUTH is exercised): replicas share
//! workflow state, keys expire, Redis going away means 503 and not-ready within a bound
//! (and coming back means ready again), and the password never shows in logs or --help.
//!
//! Needs Debian's `redis-server` (scripts/test.sh installs it and sets
//! `SLO_CHECK_REQUIRE_REDIS=1`); elsewhere, without it, each test prints `SKIPPED:` and passes.

use std::io::Write;
use std::net::TcpStream as StdTcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::agent::{Http, KillOnDrop, ms, quick_config, start};
use hyper::{Method, StatusCode};
use serde_json::json;
use slo_check::agent::{AgentConfig, AgentHandle, RedisUrl};
use tokio::time::{Instant, sleep, timeout};

const PASSWORD: &str = "test-only-redis-pw";
/// Every test body runs under this bound.
const TEST_BOUND: Duration = Duration::from_secs(30);

/// `redis-server` on PATH; `None` (and a printed reason) only when there is none and
/// `SLO_CHECK_REQUIRE_REDIS` is unset.
fn redis_server_binary() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("redis-server"))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("SLO_CHECK_REQUIRE_REDIS").is_none(),
            "SLO_CHECK_REQUIRE_REDIS is set but no redis-server is on PATH; \
             scripts/test.sh installs Debian's redis-server"
        );
        // The stderr handle, not eprintln!, which the harness shows only on failure.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED (tests/agent_redis.rs): no redis-server on PATH; install it \
             (apt-get install redis-server, as scripts/test.sh does)"
        );
    }
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` on 127.0.0.1, without persistence, killed when dropped.
struct RedisServer {
    binary: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<KillOnDrop>,
}

impl RedisServer {
    fn start() -> Option<RedisServer> {
        let mut server = RedisServer {
            binary: redis_server_binary()?,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        server.restart();
        Some(server)
    }

    /// Starts (again) on the same port, and waits until it accepts connections.
    fn restart(&mut self) {
        let child = Command::new(&self.binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--requirepass",
                PASSWORD,
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(KillOnDrop(child));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while StdTcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server never listened on {}",
                self.port
            );
            std::thread::sleep(ms(20));
        }
    }

    fn stop(&mut self) {
        drop(self.child.take());
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the server: connections stay open, but
    /// nothing answers, the case only a timeout catches.
    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").0.id();
        let sent = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    fn url_with(&self, password: &str) -> String {
        format!("redis://:{password}@127.0.0.1:{}/0", self.port)
    }

    fn url(&self) -> String {
        self.url_with(PASSWORD)
    }

    /// A direct connection, to look at keys as the agent left them.
    async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

fn redis_config(server: &RedisServer) -> AgentConfig {
    AgentConfig {
        redis_url: Some(RedisUrl::parse(&server.url()).unwrap()),
        redis_timeout: ms(300),
        ..quick_config()
    }
}

/// Polls `/ready` until it answers `want`; returns how long that took.
async fn wait_ready(http: &Http, want: StatusCode, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (status, body) = http.call(Method::GET, "/ready", None).await;
        if status == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "/ready still {status} {body} after {within:?}, want {want}"
        );
        sleep(ms(25)).await;
    }
}

async fn ready_replica(config: AgentConfig) -> (AgentHandle, Http) {
    let handle = start(config).await;
    let http = Http::new(&handle);
    wait_ready(&http, StatusCode::OK, Duration::from_secs(5)).await;
    (handle, http)
}

#[tokio::test]
async fn a_workflow_posted_to_one_replica_is_polled_to_completion_on_another() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    timeout(TEST_BOUND, async {
        let config = AgentConfig {
            finished_retention: Duration::from_secs(1),
            ..redis_config(&server)
        };
        let (a, http_a) = ready_replica(config.clone()).await;
        let (b, http_b) = ready_replica(config).await;
        let id = http_a.submit(json!({"workflow_type": "rag"})).await;

        // B never saw the POST; it reads what A writes.
        let mut redis = server.connection().await;
        let key = format!("slo-check:workflow:{id}");
        let running_ttl_ms: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap();
        assert!(
            running_ttl_ms > 0,
            "a running workflow's key must expire too"
        );
        let view = http_b.wait_finished(&id).await;
        assert_eq!(view["status"], "completed", "{view}");
        assert_eq!(view["steps_done"], 3, "{view}");
        assert_eq!(view["workflow_type"], "rag");
        assert_eq!(http_a.wait_finished(&id).await, view);
        let finished_ttl_ms: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap();
        assert!(
            (1..=1000).contains(&finished_ttl_ms),
            "a finished workflow's key expires after --finished-retention: {finished_ttl_ms} ms"
        );

        // Past the retention the key is gone, on every replica.
        sleep(Duration::from_millis(1100)).await;
        for http in [&http_a, &http_b] {
            let (status, _) = http
                .json(Method::GET, &format!("/api/v1/workflows/{id}"), None)
                .await;
            assert_eq!(status, StatusCode::NOT_FOUND);
        }
        let (status, _) = http_b
            .json(Method::GET, "/api/v1/workflows/never-posted", None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        a.shutdown().await;
        b.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn redis_down_means_503_and_not_ready_within_a_bound_and_back_means_ready() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    timeout(TEST_BOUND, async {
        let (handle, http) = ready_replica(redis_config(&server)).await;
        let id = http.submit(json!({})).await;
        http.wait_finished(&id).await;

        server.stop();
        let started = Instant::now();
        let (status, answer) = http
            .json(Method::GET, &format!("/api/v1/workflows/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(message.contains("Redis"), "{message}");
        let (status, answer) = http
            .json(Method::POST, "/api/v1/workflows", Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
        assert!(answer["error"].as_str().unwrap().contains("Redis"));
        // Two calls, each bounded by --redis-timeout (300 ms) plus slack.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        wait_ready(
            &http,
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(3),
        )
        .await;
        let (_, body) = http.json(Method::GET, "/ready", None).await;
        assert_eq!(body["reason"], "workflow store unavailable");
        let (_, text) = http.call(Method::GET, "/metrics", None).await;
        assert!(text.contains("\nagent_ready 0\n"), "{text}");
        assert!(
            text.contains(r#"endpoint="/api/v1/workflows/{id}",status_code="503"} 1"#),
            "{text}"
        );

        server.restart();
        wait_ready(&http, StatusCode::OK, Duration::from_secs(10)).await;
        let id = http.submit(json!({})).await;
        assert_eq!(http.wait_finished(&id).await["status"], "completed");
        handle.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_redis_that_stops_answering_times_out_into_503() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    timeout(TEST_BOUND, async {
        let (handle, http) = ready_replica(redis_config(&server)).await;
        server.signal("-STOP");
        let started = Instant::now();
        let (status, answer) = http
            .json(Method::GET, "/api/v1/workflows/some-id", None)
            .await;
        let waited = started.elapsed();
        server.signal("-CONT");
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(message.contains("did not answer within 300ms"), "{message}");
        // Bounded by --redis-timeout (300 ms), not by Redis.
        assert!(waited >= ms(250) && waited < ms(1500), "{waited:?}");
        wait_ready(&http, StatusCode::OK, Duration::from_secs(10)).await;
        handle.shutdown().await;
    })
    .await
    .unwrap();
}

/// Runs `slo-check agent` on a free port with `REDIS_URL`; returns it and its port.
fn spawn_cli(redis_url: &str) -> (KillOnDrop, u16) {
    let port = free_port();
    let child = Command::new(assert_cmd::cargo::cargo_bin("slo-check"))
        .args(["agent", "--listen", &format!("127.0.0.1:{port}")])
        .env("REDIS_URL", redis_url)
        .env("AGENT_REDIS_TIMEOUT", "300ms")
        .env("AGENT_SEED", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let child = KillOnDrop(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    while StdTcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "agent never listened");
        std::thread::sleep(ms(20));
    }
    (child, port)
}

/// SIGTERMs the agent and returns what it wrote to stderr.
fn stop_cli(mut child: KillOnDrop) -> String {
    let killed = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let stderr = child.0.stderr.take().unwrap();
    let output = std::io::read_to_string(stderr).unwrap();
    assert_eq!(child.0.wait().unwrap().code(), Some(0), "{output}");
    output
}

#[tokio::test]
async fn the_cli_says_where_state_lives_and_never_shows_the_password() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    timeout(TEST_BOUND, async {
        // A wrong password: served, but never ready.
        let wrong = "wrong-pw-not-logged";
        let (child, port) = spawn_cli(&server.url_with(wrong));
        let http = Http::to(([127, 0, 0, 1], port).into());
        sleep(Duration::from_millis(1500)).await;
        let (status, body) = http.json(Method::GET, "/ready", None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        let log = stop_cli(child);
        assert!(log.contains("is unreachable"), "{log}");
        assert!(!log.contains(wrong), "the password was logged:\n{log}");

        let (child, port) = spawn_cli(&server.url());
        let http = Http::to(([127, 0, 0, 1], port).into());
        wait_ready(&http, StatusCode::OK, Duration::from_secs(5)).await;
        let log = stop_cli(child);
        let shown = format!(
            "workflow state in Redis at redis://:***@127.0.0.1:{}/0",
            server.port
        );
        assert!(log.contains(&shown), "{log}");
        assert!(log.contains("is reachable"), "{log}");
        assert!(!log.contains(PASSWORD), "the password was logged:\n{log}");
    })
    .await
    .unwrap();
}

#[test]
fn help_documents_redis_url_without_showing_its_value() {
    let output = assert_cmd::Command::cargo_bin("slo-check")
        .unwrap()
        .args(["agent", "--help"])
        .env("REDIS_URL", "redis://:help-pw-not-shown@redis:6379/0")
        .timeout(Duration::from_secs(9))
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(
        help.contains("--redis-url") && help.contains("REDIS_URL"),
        "{help}"
    );
    assert!(
        help.contains("--cpu-mode") && help.contains("AGENT_CPU_MODE"),
        "{help}"
    );
    assert!(!help.contains("help-pw-not-shown"), "{help}");
}
