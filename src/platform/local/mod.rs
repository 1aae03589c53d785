//! `--platform local`, the embedded default platform: N reference agent replicas on
//! loopback ports behind an in-process least-connections balancer, scaled by an emulated
//! HorizontalPodAutoscaler that reads the same `stack/` manifest as the cluster, with
//! Istio-style faults and mesh metrics. An emulator, and every report says so.
//!
//! Files: `pool` (replica set, least-connections pick, id affinity), `replicas` (start,
//! readiness, drain), `autoscaler` (the HPA loop), `balancer` (the proxy), `fault_filter`
//! (`FaultInjector`), `mesh_metrics` (`istio_*` series), `server` (accept loop),
//! `replica_log` (bounded replica samples), `settings` (checks and the agent configuration).

mod autoscaler;
mod balancer;
mod fault_filter;
mod mesh_metrics;
mod pool;
mod replicas;

mod replica_log;
mod settings;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use self::balancer::Balancer;
use self::mesh_metrics::MeshMetrics;
use self::replicas::{Replicas, Start};
use super::PlatformError;
use crate::autoscale::hpa::Autoscaler;
use crate::autoscale::manifest::HpaSpec;
use crate::scenario::LocalPlatform;
use crate::target::{AutoscalerClock, ReplicaObserver, ReplicaSample, Target};

pub use self::fault_filter::LocalFaults;
pub use self::mesh_metrics::{DESTINATION_WORKLOAD, ISTIO_DURATION_BUCKETS_MS};

/// How long open balancer and metrics connections may finish after `down` begins.
const SERVER_GRACE: Duration = Duration::from_secs(1);
/// Upper bound on `down` as a whole.
const DOWN_TIMEOUT: Duration = Duration::from_secs(15);
/// Keeps the fault draws apart from the replicas' draws under one seed.
const FAULT_SEED_SALT: u64 = 0xFA17_5EED;

/// What `up` needs.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// The scenario's `platform.local` block (defaults filled in).
    pub settings: LocalPlatform,
    /// `--time-scale`: real time per scenario time (> 0; 0.1 runs ten times faster).
    /// Start-up delay, HPA sync period and windows, and the utilisation window shrink with it;
    /// latencies and fault delays do not.
    pub time_scale: f64,
    /// Where a relative `settings.hpa` path resolves: normally the current directory.
    pub base_dir: PathBuf,
}

impl LocalOptions {
    /// Options whose relative HPA path resolves against the current directory.
    pub fn in_current_dir(settings: LocalPlatform, time_scale: f64) -> Result<Self, PlatformError> {
        let base_dir = std::env::current_dir()
            .map_err(|e| PlatformError::Infra(format!("cannot read the current directory: {e}")))?;
        Ok(Self {
            settings,
            time_scale,
            base_dir,
        })
    }
}

/// The running embedded platform. `down` stops it; dropping it stops it in the background.
#[derive(Debug)]
pub struct LocalPlatformHandle {
    replicas: Arc<Replicas>,
    faults: Arc<LocalFaults>,
    balancer_addr: SocketAddr,
    metrics_addr: SocketAddr,
    description: String,
    hpa: HpaSpec,
}

/// Brings the platform up: loads the HPA manifest, starts the initial replicas (ready when
/// this returns, as a completed rollout), the balancer, the metrics listener and, unless
/// `autoscale: false`, the autoscaler. Usage errors name the `platform.local` field.
pub async fn up(opts: LocalOptions) -> Result<LocalPlatformHandle, PlatformError> {
    let checked = settings::check(&opts)?;
    let replicas = Arc::new(Replicas::new(
        checked.agent_template,
        checked.startup_delay,
        checked.seed,
    ));
    match start(
        &opts,
        checked.hpa,
        checked.initial_replicas,
        checked.seed,
        &replicas,
    )
    .await
    {
        Ok(handle) => Ok(handle),
        Err(e) => {
            replicas.stop.cancel();
            replicas.shutdown_all().await;
            Err(e)
        }
    }
}

async fn start(
    opts: &LocalOptions,
    hpa: HpaSpec,
    initial: u32,
    seed: u64,
    replicas: &Arc<Replicas>,
) -> Result<LocalPlatformHandle, PlatformError> {
    replicas.pool.set_desired(initial);
    for _ in 0..initial {
        replicas.start(Start::Initial).await?;
    }
    replicas.pool.record();
    let faults = Arc::new(LocalFaults::new(seed ^ FAULT_SEED_SALT));
    let metrics = Arc::new(MeshMetrics::new());
    let balancer = Arc::new(Balancer::new(
        replicas.pool.clone(),
        faults.clone(),
        metrics.clone(),
    ));
    let balancer_listener = bind("balancer").await?;
    let metrics_listener = bind("mesh metrics").await?;
    let balancer_addr = local_addr(&balancer_listener)?;
    let metrics_addr = local_addr(&metrics_listener)?;
    replicas.tasks.spawn(crate::server::serve(
        balancer_listener,
        replicas.stop.clone(),
        SERVER_GRACE,
        move |request| balancer.clone().handle(request),
    ));
    replicas.tasks.spawn(crate::server::serve(
        metrics_listener,
        replicas.stop.clone(),
        SERVER_GRACE,
        move |request| {
            let response = metrics.respond(&request);
            async move { Ok::<_, std::convert::Infallible>(response) }
        },
    ));
    if opts.settings.autoscale {
        let autoscaler = Autoscaler::new(hpa.clone());
        let this = replicas.clone();
        replicas
            .tasks
            .spawn(autoscaler::run(this, autoscaler, opts.time_scale));
    }
    Ok(LocalPlatformHandle {
        replicas: replicas.clone(),
        faults,
        balancer_addr,
        metrics_addr,
        description: settings::describe(&opts.settings, &hpa, initial),
        hpa,
    })
}

async fn bind(what: &str) -> Result<TcpListener, PlatformError> {
    TcpListener::bind("127.0.0.1:0").await.map_err(|e| {
        PlatformError::Infra(format!("cannot bind a loopback port for the {what}: {e}"))
    })
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, PlatformError> {
    listener
        .local_addr()
        .map_err(|e| PlatformError::Infra(format!("cannot read a listener's address: {e}")))
}

impl LocalPlatformHandle {
    /// The target the run drives: the balancer, with fault injection and replica observation.
    pub fn target(&self) -> Target {
        Target {
            base_url: format!("http://{}", self.balancer_addr),
            description: self.description.clone(),
            emulated: true,
            faults: Some(self.faults.clone()),
            replicas: Some(self.replicas.pool.clone()),
            scrape: Some(Arc::new(LocalScrape {
                pool: self.replicas.pool.clone(),
                metrics_addr: self.metrics_addr,
            })),
            gateway: None,
        }
    }

    /// The balancer's address (what `target().base_url` points at).
    pub fn balancer_addr(&self) -> SocketAddr {
        self.balancer_addr
    }

    /// The mesh metrics listener (`GET /metrics`: `istio_requests_total`, ...).
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// Addresses of the replicas running now (each serves the agent's `/metrics`).
    pub fn replica_addrs(&self) -> Vec<SocketAddr> {
        self.replicas.pool.addrs()
    }

    /// What a Prometheus should scrape now: every replica, then the mesh metrics listener.
    pub fn scrape_targets(&self) -> Vec<SocketAddr> {
        let mut targets = self.replica_addrs();
        targets.push(self.metrics_addr);
        targets
    }

    /// The HPA spec the platform emulates.
    pub fn hpa(&self) -> &HpaSpec {
        &self.hpa
    }

    /// The fault injector (also in `target().faults`).
    pub fn faults(&self) -> Arc<LocalFaults> {
        self.faults.clone()
    }

    /// Stops the autoscaler, reverts every fault, closes the balancer and metrics
    /// listeners and shuts every replica down. Bounded in time; safe however far `up`
    /// or a scale-down had got.
    pub async fn down(self) {
        self.faults.close();
        self.replicas.stop.cancel();
        let replicas = self.replicas.clone();
        let _ = tokio::time::timeout(DOWN_TIMEOUT, async move {
            replicas.shutdown_all().await;
            replicas.tasks.close();
            replicas.tasks.wait().await;
        })
        .await;
    }
}

/// Scrape targets of the embedded platform: every replica (job `agent`), then the mesh
/// metrics listener (job `mesh`), read afresh on each call.
struct LocalScrape {
    pool: Arc<pool::Pool>,
    metrics_addr: SocketAddr,
}

impl crate::target::ScrapeTargets for LocalScrape {
    fn scrape_targets(&self) -> Vec<(String, SocketAddr)> {
        let mut targets: Vec<_> = self
            .pool
            .addrs()
            .into_iter()
            .map(|a| ("agent".to_string(), a))
            .collect();
        targets.push(("mesh".into(), self.metrics_addr));
        targets
    }
}

impl ReplicaObserver for LocalPlatformHandle {
    fn timeline(&self) -> Vec<ReplicaSample> {
        self.replicas.pool.timeline()
    }

    fn clock(&self) -> AutoscalerClock {
        self.replicas.pool.clock()
    }
}

impl Drop for LocalPlatformHandle {
    fn drop(&mut self) {
        // Servers, the autoscaler and drains stop on this token; the replicas are shut
        // down in the background, since a `Target` may still hold the pool.
        self.faults.close();
        self.replicas.stop.cancel();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let replicas = self.replicas.clone();
            runtime.spawn(async move { replicas.shutdown_all().await });
        }
    }
}
