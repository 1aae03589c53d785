//! The seams between the platform and the stages that drive and observe it: the
//! `Target` a platform hands back, and the traits behind it (fault injector, replica
//! observer, scrape targets). A leaf: `prom`, `fault_timeline`, `autoscale` and `run` depend
//! on it, not on `platform`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use tokio::time::Instant;

use crate::scenario::Fault;

/// A boxed future, so the I/O seams below can be trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the run drives and observes.
#[derive(Clone)]
pub struct Target {
    /// Base URL the workflows' paths are appended to, e.g. `http://127.0.0.1:8080`.
    pub base_url: String,
    /// One line for reports: what the target is.
    pub description: String,
    /// True when the platform is an emulation (the embedded platform); reports say so.
    pub emulated: bool,
    /// Injects the scenario's faults, when the platform can.
    pub faults: Option<Arc<dyn FaultInjector>>,
    /// Observes replicas (desired/current/ready), when the platform has them.
    pub replicas: Option<Arc<dyn ReplicaObserver>>,
    /// What a Prometheus should scrape (written to `--prometheus-sd-file`), when known.
    pub scrape: Option<Arc<dyn ScrapeTargets>>,
}

/// The platform's metrics endpoints, by Prometheus job name (e.g. `agent`, `mesh`). Asked
/// again while the run lasts, since replicas come and go.
pub trait ScrapeTargets: Send + Sync {
    fn scrape_targets(&self) -> Vec<(String, SocketAddr)>;
}

/// A fixed list of scrape targets.
#[derive(Debug, Clone)]
pub struct StaticTargets(pub Vec<(String, SocketAddr)>);

impl ScrapeTargets for StaticTargets {
    fn scrape_targets(&self) -> Vec<(String, SocketAddr)> {
        self.0.clone()
    }
}

/// Applies and reverts Istio-style faults.
pub trait FaultInjector: Send + Sync {
    fn apply<'a>(&'a self, fault: &'a Fault) -> BoxFuture<'a, anyhow::Result<()>>;
    fn revert<'a>(&'a self, fault: &'a Fault) -> BoxFuture<'a, anyhow::Result<()>>;
}

/// One observation of the replica counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaSample {
    pub at: Instant,
    /// Replicas the autoscaler wants.
    pub desired: u32,
    /// Replicas that exist (started, ready or not).
    pub current: u32,
    /// Replicas that are ready and receive traffic.
    pub ready: u32,
}

/// Which clock the autoscaler behind a replica timeline runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoscalerClock {
    /// Scenario time: its periods are multiplied by `--time-scale` (the embedded one).
    Scenario,
    /// Real time whatever `--time-scale` says (a cluster's HPA controller).
    Real,
}

/// Reports the replica timeline observed so far.
pub trait ReplicaObserver: Send + Sync {
    fn timeline(&self) -> Vec<ReplicaSample>;
    fn clock(&self) -> AutoscalerClock;
}
