//! `--platform local`, the embedded default platform: N reference agent replicas on
//! loopback ports behind an in-process least-connections balancer, scaled by an emulated
//! HorizontalPodAutoscaler that reads the same `stack/` manifest as the cluster, with
//! Istio-style faults and mesh metrics. An emulator, and every report says so.
//!
//! Files: `pool` (replica set, least-connections pick, id affinity), `replicas` (start,
//! readiness, drain), `autoscaler` (the HPA loop), `balancer` (the proxy), `split` (a
//! canary run's route between the stable and canary subsets), `fault_filter`
//! (`FaultInjector`), `mesh_metrics` (`istio_*` series), `server` (accept loop),
//! `replica_log` (bounded replica samples), `settings` (checks and the agent configuration).

mod autoscaler;
mod balancer;
mod fault_filter;
mod mesh_metrics;
mod pool;
mod replicas;
mod split;

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
use crate::scenario::{Canary, LocalPlatform};
use crate::target::{AutoscalerClock, ReplicaObserver, ReplicaSample, Target, TrafficSplit};

pub use self::fault_filter::LocalFaults;
pub use self::mesh_metrics::{DESTINATION_WORKLOAD, ISTIO_DURATION_BUCKETS_MS};
pub use self::split::Split;

/// How long open balancer and metrics connections may finish after `down` begins.
const SERVER_GRACE: Duration = Duration::from_secs(1);
/// Upper bound on `down` as a whole.
const DOWN_TIMEOUT: Duration = Duration::from_secs(15);
/// Keeps the fault draws apart from the replicas' draws under one seed.
const FAULT_SEED_SALT: u64 = 0xFA17_5EED;
/// Keeps the canary replicas' draws apart from the stable ones'.
const CANARY_SEED_SALT: u64 = 0xCA4A_4700;
/// Keeps the weighted route's draws apart from the others.
const SPLIT_SEED_SALT: u64 = 0x5B11_7000;

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
    /// The only deployment, or a canary run's stable one (the HPA's, observed for reports).
    replicas: Arc<Replicas>,
    /// Every deployment: `replicas`, then the canary's when there is one.
    subsets: Vec<Arc<Replicas>>,
    split: Arc<Split>,
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
    up_with_canary(opts, None).await
}

/// `up`, and with a canary two deployments: the stable subset (`platform.local`, the HPA
/// unless its `autoscale: false`) and the canary subset (its own replicas, fixed unless
/// its `autoscale: true`), each as the canary section's `local` says, each replica
/// answering with its subset's version; the balancer routes between them by weight (0
/// until the run's first step) and header, as Istio does.
pub async fn up_with_canary(
    opts: LocalOptions,
    canary: Option<&Canary>,
) -> Result<LocalPlatformHandle, PlatformError> {
    let checked = settings::check(&opts)?;
    let mut deployments = vec![Deployment {
        template: checked.agent_template.clone(),
        initial: checked.initial_replicas,
        autoscale: opts.settings.autoscale,
    }];
    if let Some(c) = canary {
        let [stable, canary] = settings::subsets(
            c,
            &opts.settings,
            &checked.hpa,
            &checked.agent_template,
            checked.initial_replicas,
        )?;
        deployments = [stable, canary]
            .into_iter()
            .map(|s| Deployment {
                template: s.template,
                initial: s.initial_replicas,
                autoscale: s.autoscale,
            })
            .collect();
    }
    let first = Arc::new(Replicas::new(
        deployments[0].template.clone(),
        checked.startup_delay,
        checked.seed,
    ));
    let mut sets = vec![first.clone()];
    if let Some(d) = deployments.get(1) {
        sets.push(Arc::new(
            first.sibling(d.template.clone(), checked.seed ^ CANARY_SEED_SALT),
        ));
    }
    let header = canary.map(|c| c.header.clone()).unwrap_or_default();
    match start(
        &opts,
        checked.hpa,
        &deployments,
        &sets,
        header,
        checked.seed,
    )
    .await
    {
        Ok(handle) => Ok(handle),
        Err(e) => {
            first.stop.cancel();
            for set in &sets {
                set.shutdown_all().await;
            }
            Err(e)
        }
    }
}

/// One deployment of agent replicas: the only one, or a canary run's stable or canary.
struct Deployment {
    template: crate::agent::AgentConfig,
    initial: u32,
    autoscale: bool,
}

async fn start(
    opts: &LocalOptions,
    hpa: HpaSpec,
    deployments: &[Deployment],
    sets: &[Arc<Replicas>],
    header: Vec<(hyper::header::HeaderName, String)>,
    seed: u64,
) -> Result<LocalPlatformHandle, PlatformError> {
    for (d, replicas) in deployments.iter().zip(sets) {
        replicas.pool.set_desired(d.initial);
        for _ in 0..d.initial {
            replicas.start(Start::Initial).await?;
        }
        replicas.pool.record();
    }
    let replicas = sets[0].clone();
    let faults = Arc::new(LocalFaults::new(seed ^ FAULT_SEED_SALT));
    let metrics = Arc::new(MeshMetrics::new());
    let split = Arc::new(match sets {
        [stable, canary] => Split::canary(
            stable.pool.clone(),
            canary.pool.clone(),
            header,
            seed ^ SPLIT_SEED_SALT,
        ),
        _ => Split::single(replicas.pool.clone()),
    });
    let balancer = Arc::new(Balancer::new(
        split.clone(),
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
    for (d, set) in deployments.iter().zip(sets) {
        if d.autoscale {
            let autoscaler = Autoscaler::new(hpa.clone());
            replicas
                .tasks
                .spawn(autoscaler::run(set.clone(), autoscaler, opts.time_scale));
        }
    }
    let mut description = settings::describe(&opts.settings, &hpa, deployments[0].initial);
    if let [_, canary] = deployments {
        description.push_str(&format!(
            "; a canary subset of {} replicas ({}) routed by weight",
            canary.initial,
            if canary.autoscale {
                "with its own HPA"
            } else {
                "fixed"
            }
        ));
    }
    Ok(LocalPlatformHandle {
        replicas,
        subsets: sets.to_vec(),
        split,
        faults,
        balancer_addr,
        metrics_addr,
        description,
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
                pools: self.subsets.iter().map(|s| s.pool.clone()).collect(),
                metrics_addr: self.metrics_addr,
            })),
            gateway: None,
            split: (self.subsets.len() > 1).then(|| self.split.clone() as Arc<dyn TrafficSplit>),
            generators: None,
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

    /// Addresses of the replicas running now, of every subset (each serves the agent's `/metrics`).
    pub fn replica_addrs(&self) -> Vec<SocketAddr> {
        self.subsets.iter().flat_map(|s| s.pool.addrs()).collect()
    }

    /// The route between the subsets (a canary run's weight and header match).
    pub fn split(&self) -> Arc<Split> {
        self.split.clone()
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
        self.split.close();
        self.replicas.stop.cancel();
        let replicas = self.replicas.clone();
        let subsets = self.subsets.clone();
        let _ = tokio::time::timeout(DOWN_TIMEOUT, async move {
            for set in &subsets {
                set.shutdown_all().await;
            }
            replicas.tasks.close();
            replicas.tasks.wait().await;
        })
        .await;
    }
}

/// Scrape targets of the embedded platform: every replica (job `agent`), then the mesh
/// metrics listener (job `mesh`), read afresh on each call.
struct LocalScrape {
    pools: Vec<Arc<pool::Pool>>,
    metrics_addr: SocketAddr,
}

impl crate::target::ScrapeTargets for LocalScrape {
    fn scrape_targets(&self) -> Vec<(String, SocketAddr)> {
        let mut targets: Vec<_> = self
            .pools
            .iter()
            .flat_map(|p| p.addrs())
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
        self.split.close();
        self.replicas.stop.cancel();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let subsets = self.subsets.clone();
            runtime.spawn(async move {
                for set in &subsets {
                    set.shutdown_all().await;
                }
            });
        }
    }
}
