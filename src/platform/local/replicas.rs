//! Replica life cycle on the embedded platform: start an agent on its own loopback port,
//! let it join the balancer once its start-up delay has passed, and on scale-down mark it
//! unready, take it out of rotation, drain it (bounded), then shut it down.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::pool::{Phase, Pool, Replica, lock};
use crate::agent::{self, AgentConfig};
use crate::platform::PlatformError;

/// Longest a scale-down waits for a replica's workflows and requests to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a draining replica is checked for idleness.
const DRAIN_POLL: Duration = Duration::from_millis(20);
/// How long a drained replica still answers for its own workflows, so clients polling a
/// workflow that just finished there can read its result (a terminating pod's grace).
const LINGER: Duration = Duration::from_secs(2);
/// Longest wait for a started replica to report ready after its start-up delay.
const READY_SLACK: Duration = Duration::from_secs(5);
/// Spreads replica seeds apart (the 64-bit golden ratio).
const SEED_STRIDE: u64 = 0x9E37_79B9_7F4A_7C15;

/// Why a replica starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    /// Part of the initial rollout: ready at once, recorded by `up` when complete.
    Initial,
    /// Added by a scale-up: joins the balancer after the start-up delay.
    ScaleUp,
}

/// Starts, scales and stops the agent replicas.
#[derive(Debug)]
pub(super) struct Replicas {
    pub pool: Arc<Pool>,
    /// Configuration of every replica except its seed and start-up delay.
    template: AgentConfig,
    /// Start-up delay of replicas added after `up`, already time-scaled.
    startup_delay: Duration,
    seed: u64,
    next_id: AtomicU64,
    /// Cancelled by `down`: ends the autoscaler, readiness waits, drains and servers.
    pub stop: CancellationToken,
    pub tasks: TaskTracker,
}

impl Replicas {
    /// The agents' CPU utilisation window (real time): also how long a new replica
    /// is ready before the autoscaler sees its CPU, as metrics-server's resolution
    /// delays a new pod's first sample.
    pub fn metric_window(&self) -> Duration {
        self.template.utilisation_window
    }

    pub fn new(template: AgentConfig, startup_delay: Duration, seed: u64) -> Self {
        Self {
            pool: Arc::new(Pool::default()),
            template,
            startup_delay,
            seed,
            next_id: AtomicU64::new(0),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }
    }

    /// Another set of replicas (a second subset) that stops with this one: same stop
    /// token and task tracker, its own pool, configuration and seeds.
    pub fn sibling(&self, template: AgentConfig, seed: u64) -> Self {
        Self {
            pool: Arc::new(Pool::default()),
            template,
            startup_delay: self.startup_delay,
            seed,
            next_id: AtomicU64::new(0),
            stop: self.stop.clone(),
            tasks: self.tasks.clone(),
        }
    }

    /// Starts one replica (see [`Start`]).
    pub async fn start(self: &Arc<Self>, why: Start) -> Result<(), PlatformError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| {
            PlatformError::Infra(format!("cannot bind a loopback port for replica {id}: {e}"))
        })?;
        let config = AgentConfig {
            seed: self.seed.wrapping_add(id.wrapping_mul(SEED_STRIDE)),
            startup_delay: if why == Start::Initial {
                Duration::ZERO
            } else {
                self.startup_delay
            },
            ..self.template.clone()
        };
        let agent = agent::start(listener, config)
            .await
            .map_err(|e| PlatformError::Infra(format!("cannot start replica {id}: {e:#}")))?;
        let replica = Arc::new(Replica::new(id, agent));
        if why == Start::Initial {
            self.pool.add_unrecorded(replica, Phase::Ready);
        } else {
            self.pool.add(replica.clone(), Phase::Starting);
            let this = self.clone();
            self.tasks
                .spawn(async move { this.join_when_ready(replica).await });
        }
        Ok(())
    }

    /// Moves a starting replica into rotation once its start-up delay has passed.
    async fn join_when_ready(&self, replica: Arc<Replica>) {
        let deadline = Instant::now() + self.startup_delay + READY_SLACK;
        tokio::select! {
            _ = self.stop.cancelled() => return,
            _ = tokio::time::sleep(self.startup_delay) => {}
        }
        while replica.with_agent(|a| a.is_ready()) == Some(false) && Instant::now() < deadline {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(1)) => {}
            }
        }
        if replica.with_agent(|a| a.is_ready()) == Some(true) {
            // False when it was chosen for scale-down meanwhile: then it stays out.
            self.pool
                .transition(replica.id, Phase::Starting, Phase::Ready);
        }
    }

    /// Scales to `desired`: starts replicas (they join when ready) or drains the least
    /// useful ones. A replica that cannot start is retried by the next call.
    pub async fn scale_to(self: &Arc<Self>, desired: u32) -> Result<(), PlatformError> {
        self.pool.set_desired(desired);
        let current = self.pool.current();
        if desired > current {
            for _ in current..desired {
                self.start(Start::ScaleUp).await?;
            }
        } else if desired < current {
            for replica in self.pool.choose_victims((current - desired) as usize) {
                let this = self.clone();
                self.tasks.spawn(async move { this.drain(replica).await });
            }
        } else {
            self.pool.record();
        }
        Ok(())
    }

    /// Takes a replica (already out of rotation) through drain, linger and shutdown.
    async fn drain(&self, replica: Arc<Replica>) {
        replica.with_agent(|a| a.set_ready(false));
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            let busy = replica.in_flight.load(Ordering::Acquire) > 0
                || replica.with_agent(|a| a.active_workflows()).unwrap_or(0) > 0;
            if !busy || Instant::now() >= deadline {
                break;
            }
            tokio::select! {
                _ = self.stop.cancelled() => break,
                _ = tokio::time::sleep(DRAIN_POLL) => {}
            }
        }
        tokio::select! {
            _ = self.stop.cancelled() => {}
            _ = tokio::time::sleep(LINGER) => {}
        }
        self.pool.remove(replica.id);
        stop_agent(&replica).await;
    }

    /// Shuts every replica down at once and waits for them.
    pub async fn shutdown_all(&self) {
        let mut stopping = JoinSet::new();
        for replica in self.pool.take_all() {
            stopping.spawn(async move { stop_agent(&replica).await });
        }
        while stopping.join_next().await.is_some() {}
    }
}

async fn stop_agent(replica: &Replica) {
    let agent = lock(&replica.agent).take();
    if let Some(agent) = agent {
        agent.shutdown().await;
    }
}
