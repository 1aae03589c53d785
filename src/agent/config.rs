//! The validated `AgentConfig`: all the library and server ever see (the commands layer
//! builds it from `slo-check agent`'s flags; the embedded platform from its settings).

use std::net::SocketAddr;
use std::time::Duration;

use super::cpu::CpuMode;
use super::redis_store::RedisUrl;
use crate::distributions::LogNormalLatency;

/// Validated agent configuration: all the library and server ever see.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Where `run_cli` binds (`start` takes an already bound listener instead).
    pub listen: SocketAddr,
    /// LLM calls per workflow.
    pub llm_calls: u32,
    /// Latency distribution of one LLM call.
    pub llm_latency: LogNormalLatency,
    /// Tool calls per workflow.
    pub tool_calls: u32,
    /// Latency distribution of one tool call.
    pub tool_latency: LogNormalLatency,
    /// CPU work per workflow, in core-time.
    pub cpu_per_workflow: Duration,
    /// CPU capacity in cores (> 0, may be fractional).
    pub cores: f64,
    /// Whether CPU work is simulated or burnt on real threads.
    pub cpu_mode: CpuMode,
    /// Window of the utilisation ratio.
    pub utilisation_window: Duration,
    /// Fraction of workflows that fail, in 0..=1.
    pub fail_ratio: f64,
    /// Active-workflow limit; above it POST answers 503.
    pub max_concurrent_workflows: usize,
    /// Unready for this long after start.
    pub startup_delay: Duration,
    /// Finished workflows are evicted after this long.
    pub finished_retention: Duration,
    /// At most this many finished workflows are kept (in memory).
    pub max_finished_workflows: usize,
    /// Where workflow state lives: Redis at this URL, or memory when `None`.
    pub redis_url: Option<RedisUrl>,
    /// Bound on each Redis call.
    pub redis_timeout: Duration,
    /// Bound on waiting for in-flight requests at shutdown.
    pub shutdown_grace: Duration,
    /// Seed of all random draws.
    pub seed: u64,
    /// The replica's version (its pod's `version` label): sent in every answer's
    /// `x-agent-version` header, so a client can tell which subset served it.
    pub version: Option<String>,
}

impl Default for AgentConfig {
    /// The flag defaults (listening on 127.0.0.1:8080), with a random seed. Built by hand,
    /// not through clap, so `AGENT_*` variables of the process do not leak in.
    fn default() -> Self {
        let latency = |median_ms, p99_ms| {
            LogNormalLatency::new(
                Duration::from_millis(median_ms),
                Duration::from_millis(p99_ms),
            )
            .expect("default latencies have p99 >= median")
        };
        AgentConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            llm_calls: 2,
            llm_latency: latency(200, 1000),
            tool_calls: 1,
            tool_latency: latency(50, 200),
            cpu_per_workflow: Duration::from_millis(20),
            cores: 1.0,
            cpu_mode: CpuMode::Simulated,
            utilisation_window: Duration::from_secs(15),
            fail_ratio: 0.0,
            max_concurrent_workflows: 100,
            startup_delay: Duration::ZERO,
            finished_retention: Duration::from_secs(300),
            max_finished_workflows: 10_000,
            redis_url: None,
            redis_timeout: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(5),
            seed: random_u64(),
            version: None,
        }
    }
}

/// A random seed without the `os_rng` feature: std's `RandomState` is OS-seeded.
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}
