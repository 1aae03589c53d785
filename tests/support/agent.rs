//! Shared by the agent's tests (tests/agent.rs, tests/agent_redis.rs): quick agent
//! settings, in-process replicas on 127.0.0.1:0, a small JSON client, and a child-process
//! guard.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use slo_check::agent::{self, AgentConfig, AgentHandle, LogNormalLatency};
use tokio::net::TcpListener;
use tokio::time::sleep;

/// Every test body runs under this bound.
pub const TEST_BOUND: Duration = Duration::from_secs(9);

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Short, quiet, deterministic defaults: small latencies, no CPU work, fixed seed.
pub fn quick_config() -> AgentConfig {
    AgentConfig {
        seed: 7,
        llm_calls: 2,
        llm_latency: LogNormalLatency::new(ms(5), ms(20)).unwrap(),
        tool_calls: 1,
        tool_latency: LogNormalLatency::new(ms(1), ms(5)).unwrap(),
        cpu_per_workflow: ms(1),
        shutdown_grace: Duration::from_secs(2),
        ..AgentConfig::default()
    }
}

pub async fn start(config: AgentConfig) -> AgentHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    agent::start(listener, config).await.unwrap()
}

pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Http {
    pub fn new(handle: &AgentHandle) -> Self {
        Self::to(handle.addr())
    }

    pub fn to(addr: SocketAddr) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: format!("http://{addr}"),
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, String) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let response = self.client.request(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    pub async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, text) = self.call(method, path, body).await;
        (status, serde_json::from_str(&text).unwrap())
    }

    pub async fn submit(&self, body: Value) -> String {
        let (status, answer) = self
            .json(Method::POST, "/api/v1/workflows", Some(body))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        assert_eq!(answer["status"], "running");
        answer["id"].as_str().unwrap().to_owned()
    }

    /// Polls the workflow until it is no longer running.
    pub async fn wait_finished(&self, id: &str) -> Value {
        loop {
            let (status, view) = self
                .json(Method::GET, &format!("/api/v1/workflows/{id}"), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{view}");
            if view["status"] != "running" {
                return view;
            }
            sleep(ms(10)).await;
        }
    }
}

/// Kills the child agent if a test assertion fails before it exits.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
