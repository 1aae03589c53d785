//! The reference agent service (`slo-check agent`): the platform's HTTP API backed by
//! simulated workflows (their CPU work simulated or really burnt, their state in memory
//! or in Redis), served on a loopback port by the CLI or in-process by the
//! embedded platform (one `start` per replica).
//!
//! Endpoints: `POST /api/v1/workflows` (202, or 503 over the concurrency limit),
//! `GET /api/v1/workflows/{id}`, `GET /health`, `GET /ready`, `GET /metrics`
//! (OpenMetrics text via prometheus-client). Files: `config` (`AgentConfig`),
//! `cpu` (capacity, queueing, burning, utilisation),
//! `store` (`WorkflowStore` and its bounded in-memory implementation), `redis_store`
//! (the Redis implementation), `simulation` (one simulated workflow),
//! `metrics`, `http` (handlers), `state` (shared), `server` (accept loop, `AgentHandle`).

mod config;
mod cpu;
mod http;
mod metrics;
mod redis_store;
mod server;
mod simulation;
mod state;
mod store;

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;

pub use config::{AgentConfig, random_u64};
pub use cpu::{CpuMode, CpuModel};
// Re-exported for the tests and the embedded platform, which name it as `agent::LogNormalLatency`.
pub use crate::distributions::LogNormalLatency;
pub use metrics::{HTTP_DURATION_BUCKETS_S, MAX_WORKFLOW_TYPES, WORKFLOW_DURATION_BUCKETS_S};
pub use redis_store::{RedisStore, RedisUrl};
pub use server::AgentHandle;
pub use store::{
    MemoryStore, StoreError, StoreFuture, WorkflowStatus, WorkflowStore, WorkflowView,
};

/// Why `serve` could not serve (both are infrastructure failures).
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The --listen address could not be bound.
    #[error("--listen: cannot bind {addr}: {source}; choose a free port, or 0 for any")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The replica could not start (its store, its listener).
    #[error("{0:#}")]
    Start(anyhow::Error),
}

/// Starts one replica serving `listener` (bind it to a loopback port; port 0 is fine).
/// The replica is ready after `config.startup_delay`.
pub async fn start(listener: TcpListener, config: AgentConfig) -> anyhow::Result<AgentHandle> {
    let state = state::AgentState::new(config)?;
    server::spawn(listener, state).context("reading the listener's local address")
}

/// Binds `config.listen`, serves until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn serve(config: AgentConfig) -> Result<(), AgentError> {
    let addr = config.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| AgentError::Bind { addr, source })?;
    match &config.redis_url {
        Some(url) => eprintln!(
            "slo-check agent: workflow state in Redis at {url} (shared by replicas; calls \
             bounded by {:?}); not ready until Redis answers",
            config.redis_timeout
        ),
        None => eprintln!(
            "slo-check agent: workflow state in memory (this replica only; set --redis-url \
             or REDIS_URL to share it)"
        ),
    }
    eprintln!(
        "slo-check agent: CPU work {:?} per workflow, {}",
        config.cpu_per_workflow,
        match config.cpu_mode {
            CpuMode::Simulated => format!("simulated on {} emulated cores", config.cores),
            CpuMode::Burn => format!(
                "burnt on {} real thread(s) (--cores {})",
                config.cores.ceil(),
                config.cores
            ),
        }
    );
    let handle = start(listener, config).await.map_err(AgentError::Start)?;
    eprintln!("slo-check agent: serving on http://{}", handle.addr());
    shutdown_signal().await;
    eprintln!("slo-check agent: shutting down");
    handle.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
