//! State shared by the server, the workflow tasks and the `AgentHandle`: readiness,
//! admission under the concurrency limit, ids, the store (memory or Redis), the CPU model
//! and the metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use tokio::sync::watch;
use tokio::time::Instant;

use super::config::{AgentConfig, random_u64};
use super::cpu::CpuModel;
use super::metrics::AgentMetrics;
use super::redis_store::RedisStore;
use super::store::{MemoryStore, WorkflowStore};

#[derive(Debug)]
pub(crate) struct AgentState {
    pub config: AgentConfig,
    pub store: Arc<dyn WorkflowStore>,
    pub metrics: AgentMetrics,
    pub cpu: CpuModel,
    /// `config.version` as a header value, checked once.
    pub version_header: Option<hyper::header::HeaderValue>,
    active: AtomicUsize,
    next_seq: AtomicU64,
    /// Random per replica, so ids from several replicas never collide.
    id_prefix: u32,
    ready_flag: AtomicBool,
    ready_at: Instant,
    /// Flips to `true` when the replica stops; running workflows end then.
    stopping: watch::Sender<bool>,
}

/// A workflow counted as active; dropping it releases the slot.
#[derive(Debug)]
pub(crate) struct ActiveSlot {
    state: Arc<AgentState>,
    /// 0-based submission number on this replica; seeds the workflow's draws.
    pub seq: u64,
}

impl Drop for ActiveSlot {
    fn drop(&mut self) {
        self.state.active.fetch_sub(1, Ordering::AcqRel);
        self.state.metrics.active_workflows.dec();
    }
}

impl AgentState {
    /// The shared state of a new replica; with `config.redis_url`, its store is Redis
    /// (checked in the background until the replica stops). Call inside a tokio runtime.
    pub fn new(config: AgentConfig) -> anyhow::Result<Arc<Self>> {
        let (stopping, _) = watch::channel(false);
        let store: Arc<dyn WorkflowStore> = match &config.redis_url {
            Some(url) => {
                let redis = Arc::new(RedisStore::new(
                    url,
                    config.redis_timeout,
                    config.finished_retention,
                )?);
                tokio::spawn(redis.clone().check_health(stopping.subscribe()));
                redis
            }
            None => Arc::new(MemoryStore::new(
                config.finished_retention,
                config.max_finished_workflows,
            )),
        };
        let cpu = CpuModel::new(config.cores, config.utilisation_window, config.cpu_mode);
        let state = Arc::new(Self {
            ready_at: Instant::now() + config.startup_delay,
            store,
            metrics: AgentMetrics::new(),
            cpu,
            version_header: config
                .version
                .as_deref()
                .and_then(|v| hyper::header::HeaderValue::from_str(v).ok()),
            active: AtomicUsize::new(0),
            next_seq: AtomicU64::new(0),
            id_prefix: random_u64() as u32,
            ready_flag: AtomicBool::new(true),
            stopping,
            config,
        });
        state.refresh_gauges();
        Ok(state)
    }

    /// Ready once the start-up delay has passed, unless marked unready (draining) or the
    /// workflow store is unavailable (Redis unreachable).
    pub fn is_ready(&self) -> bool {
        self.ready_flag.load(Ordering::Acquire)
            && Instant::now() >= self.ready_at
            && self.store.is_available()
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready_flag.store(ready, Ordering::Release);
        self.metrics.ready.set(i64::from(self.is_ready()));
    }

    pub fn active_workflows(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Admits one workflow unless `max_concurrent_workflows` are already active.
    pub fn try_admit(self: &Arc<Self>) -> Option<ActiveSlot> {
        let limit = self.config.max_concurrent_workflows;
        self.active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()?;
        self.metrics.active_workflows.inc();
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        Some(ActiveSlot {
            state: self.clone(),
            seq,
        })
    }

    pub fn workflow_id(&self, seq: u64) -> String {
        format!("{:08x}-{seq}", self.id_prefix)
    }

    /// Updates the gauges that are computed, not counted (called before each scrape).
    pub fn refresh_gauges(&self) {
        self.metrics.cpu_utilisation.set(self.cpu.utilisation());
        self.metrics.ready.set(i64::from(self.is_ready()));
    }

    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Resolves once the replica is stopping.
    pub async fn stopped(&self) {
        let mut rx = self.stopping.subscribe();
        // Err only if the sender is gone, which means stopped as well.
        let _ = rx.wait_for(|stopping| *stopping).await;
    }
}
