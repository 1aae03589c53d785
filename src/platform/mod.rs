//! Platforms bring the system under test up, hand back a `Target`, and take it
//! down: `url` (an endpoint that is already running), `local` (the embedded
//! platform) and `kube` (a Kubernetes cluster).

pub mod kube;
pub mod local;
pub mod url;

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

/// Reports the replica timeline observed so far.
pub trait ReplicaObserver: Send + Sync {
    fn timeline(&self) -> Vec<ReplicaSample>;
}

/// A platform-level failure: the system under test could not be brought up or reached.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// Bad flags or settings (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Infrastructure failure (exit 3).
    #[error("{0}")]
    Infra(String),
    /// A signal arrived while the platform was coming up (exit 130).
    #[error("{0}")]
    Interrupted(String),
}

/// A platform that is up, to be taken down after the run.
pub enum Running {
    /// Nothing to take down (`url`).
    Nothing,
    Local(Box<local::LocalPlatformHandle>),
    Kube(Box<kube::KubePlatformHandle>),
}

impl Running {
    /// Take the platform down (faults restored, replicas stopped, the stack deleted
    /// unless kept).
    pub async fn down(self) {
        match self {
            Running::Nothing => {}
            Running::Local(handle) => handle.down().await,
            Running::Kube(handle) => handle.down().await,
        }
    }
}

impl PlatformError {
    /// Print the error and return its exit code: 2 for usage, 3 for infrastructure.
    pub fn report(&self) -> u8 {
        eprintln!("error: {self}");
        match self {
            PlatformError::Usage(_) => crate::app::exit::USAGE,
            PlatformError::Infra(_) => crate::app::exit::INFRA,
            PlatformError::Interrupted(_) => crate::app::exit::INTERRUPTED,
        }
    }
}
