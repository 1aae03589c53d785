//! The seams between the platform and the stages that drive and observe it: the
//! `Target` a platform hands back, and the traits behind it (fault injector, replica
//! observer, scrape targets, the gateway's counters, the canary's traffic split, a
//! distributed run's generator launcher). A leaf: `prom`, `fault_timeline`, `autoscale` and `run` depend
//! on it, not on `platform`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

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
    /// The counters of the proxy the traffic enters the mesh through (the ingress
    /// gateway's Envoy), when the platform drives traffic through one.
    pub gateway: Option<Arc<dyn GatewayCounters>>,
    /// Shifts traffic between the stable and canary subsets, when the platform runs both
    /// and can route between them (a canary run).
    pub split: Option<Arc<dyn TrafficSplit>>,
    /// Starts a distributed run's generators where the platform runs them (the pods of a
    /// Job on a cluster), when the run asked for several.
    pub generators: Option<Distributed>,
}

/// A distributed run (`--generators N`): how many generators, and what starts them.
#[derive(Clone)]
pub struct Distributed {
    pub count: u32,
    pub launcher: Arc<dyn GeneratorLauncher>,
}

/// Starts a distributed run's generators (`--generators N`): processes on this machine, or
/// the pods of a Kubernetes Indexed Job. Each serves the control API of
/// `phase::remote::wire` once it listens.
pub trait GeneratorLauncher: Send + Sync {
    /// Start generator `index` of `count`, driving `target_url`; returns once it listens
    /// (or with why it could not start).
    fn launch(
        &self,
        index: u32,
        count: u32,
        target_url: &str,
    ) -> BoxFuture<'_, Result<Box<dyn LaunchedGenerator>, String>>;
    /// What the generators run as, for reports (e.g. `processes on this machine`).
    fn describe(&self) -> String;
    /// Release what the launches made together (a Job), once every generator is stopped.
    fn finish(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// One generator that was started.
pub trait LaunchedGenerator: Send + Sync {
    /// Where its control API answers (loopback, or the local end of a port-forward).
    fn addr(&self) -> SocketAddr;
    /// What it runs as, for reports (e.g. `pid 4242`, `pod slo-check-gen-1-x7k2p`).
    fn describe(&self) -> String;
    /// Why it is gone (it exited, its pod failed), if it is.
    fn gone(&self) -> Option<String>;
    /// Stop it if it still runs, and release what it holds (a process is reaped, a
    /// port-forward closed).
    fn stop(&self) -> BoxFuture<'_, ()>;
}

/// Sets the canary subset's share of the traffic, as Istio's weighted route does (a
/// request matching the canary's header route goes to the canary whatever the weight).
pub trait TrafficSplit: Send + Sync {
    /// Sends `percent` % of the weighted traffic to the canary subset, the rest to stable;
    /// returns once the control plane took the change.
    fn set_canary_weight(&self, percent: u8) -> BoxFuture<'_, anyhow::Result<()>>;
    /// What carries the change, for reports (e.g. `VirtualService mcp-agents/mcp-agent-vs`).
    fn describe(&self) -> String;
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

/// Applies and reverts Istio-style faults. Both calls return once the control plane
/// took the change, and say whether the data plane was then seen to hold it.
pub trait FaultInjector: Send + Sync {
    fn apply<'a>(&'a self, fault: &'a Fault) -> BoxFuture<'a, anyhow::Result<FaultChange>>;
    fn revert<'a>(&'a self, fault: &'a Fault) -> BoxFuture<'a, anyhow::Result<FaultChange>>;
}

/// One fault change (an apply or a revert) as the platform saw it take effect.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultChange {
    /// When the control plane took the change: the API server answered the patch (kube),
    /// or the embedded balancer switched its filter (local).
    pub accepted_at: Instant,
    /// Whether, and how long after `accepted_at`, the proxies carrying the run's traffic
    /// were seen to hold it.
    pub data_plane: DataPlane,
}

impl FaultChange {
    /// A change the control plane took now, with nobody looking at the data plane.
    pub fn unobserved_now() -> FaultChange {
        FaultChange {
            accepted_at: Instant::now(),
            data_plane: DataPlane::NotObserved,
        }
    }
}

/// What the data plane was seen to do with a fault change.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum DataPlane {
    /// Nobody looked: the platform cannot see its proxies (a URL target, a gateway whose
    /// Envoy admin does not answer), or it is an emulation whose filter is the control
    /// plane itself (the embedded platform), so there is no propagation to measure.
    #[default]
    NotObserved,
    /// Every proxy looked at held the change this long after `accepted_at`.
    SeenAfter {
        /// From `accepted_at` to the poll that found the last proxy holding it.
        after: Duration,
        /// Where it was seen, e.g. `Envoy config_dump of 2 gateway pods`.
        seen_in: String,
    },
    /// The proxies answered, but not all held the change within `bound`.
    NotSeenWithin {
        /// How long after `accepted_at` the platform looked.
        bound: Duration,
        /// Where it looked, as in `SeenAfter`.
        seen_in: String,
        /// What the last look found instead, e.g. which pod held which fault.
        last: String,
    },
}

/// The gateway's counters, read now (cumulative since each proxy started).
pub trait GatewayCounters: Send + Sync {
    /// The counters summed over the gateway's ready pods, or why they cannot be read.
    fn read(&self) -> BoxFuture<'_, Result<GatewayReading, String>>;
}

/// One reading of the gateway's counters.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayReading {
    /// Where the numbers come from, e.g. `Envoy admin /stats of 2 pod(s)`.
    pub source: String,
    /// The pods read, sorted: a difference is only meaningful over the same pods.
    pub pods: Vec<String>,
    /// The counters, summed over `pods`.
    pub counts: GatewayCounts,
}

/// Counters of the gateway; `None`: the proxy does not export it (e.g. not in Istio's
/// stats inclusion list), never a zero that looks measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GatewayCounts {
    /// Requests the fault filter answered with an abort (`fault.aborts_injected`).
    pub aborts_injected: Option<u64>,
    /// Requests the fault filter delayed (`fault.delays_injected`).
    pub delays_injected: Option<u64>,
    /// Requests the listener received (`downstream_rq_total`).
    pub downstream_rq: Option<u64>,
    /// Of those, answered 5xx, aborts included (`downstream_rq_5xx`).
    pub downstream_rq_5xx: Option<u64>,
    /// Requests refused by the service cluster's circuit breaker because too many were
    /// waiting for a connection (`upstream_rq_pending_overflow`: Istio's
    /// `http1MaxPendingRequests`).
    pub upstream_rq_pending_overflow: Option<u64>,
    /// Requests refused by the service cluster's circuit breaker because too many were
    /// in flight (`upstream_rq_active_overflow`, counted apart since Envoy 1.3x:
    /// Istio's `http2MaxRequests`).
    pub upstream_rq_active_overflow: Option<u64>,
    /// Endpoints ejected by outlier detection (`outlier_detection.ejections_enforced_total`).
    pub outlier_ejections_enforced: Option<u64>,
}

impl GatewayReading {
    /// What was counted between `earlier` and `self`; `Err` says why there is no
    /// difference to take (other pods, or a counter that went backwards).
    pub fn since(&self, earlier: &GatewayReading) -> Result<GatewayCounts, String> {
        if self.pods != earlier.pods {
            return Err(format!(
                "the gateway's pods changed during the run ({} at the start, {} at the end), and a new pod's counters start at zero",
                earlier.pods.join(", "),
                self.pods.join(", ")
            ));
        }
        self.counts.since(&earlier.counts)
    }
}

impl GatewayCounts {
    /// What was counted between `earlier` and `self` (two readings of the same pods);
    /// `Err` when a counter went backwards (a proxy restarted in between).
    pub fn since(&self, earlier: &GatewayCounts) -> Result<GatewayCounts, String> {
        let diff = |name: &str, now: Option<u64>, then: Option<u64>| match (now, then) {
            (Some(n), Some(t)) => n.checked_sub(t).map(Some).ok_or_else(|| {
                format!("{name} went down from {t} to {n}: a proxy restarted during the run")
            }),
            _ => Ok(None),
        };
        Ok(GatewayCounts {
            aborts_injected: diff(
                "aborts_injected",
                self.aborts_injected,
                earlier.aborts_injected,
            )?,
            delays_injected: diff(
                "delays_injected",
                self.delays_injected,
                earlier.delays_injected,
            )?,
            downstream_rq: diff("downstream_rq", self.downstream_rq, earlier.downstream_rq)?,
            downstream_rq_5xx: diff(
                "downstream_rq_5xx",
                self.downstream_rq_5xx,
                earlier.downstream_rq_5xx,
            )?,
            upstream_rq_pending_overflow: diff(
                "upstream_rq_pending_overflow",
                self.upstream_rq_pending_overflow,
                earlier.upstream_rq_pending_overflow,
            )?,
            upstream_rq_active_overflow: diff(
                "upstream_rq_active_overflow",
                self.upstream_rq_active_overflow,
                earlier.upstream_rq_active_overflow,
            )?,
            outlier_ejections_enforced: diff(
                "outlier_ejections_enforced",
                self.outlier_ejections_enforced,
                earlier.outlier_ejections_enforced,
            )?,
        })
    }
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
