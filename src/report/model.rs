//! `RunReport`: the one view model every output is rendered from, and the
//! versioned run.json contract CI users parse (see docs/reports.md, "run.json").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::autoscale::figures::HpaFigures;
use crate::plan::Plan;
use crate::scenario::Unit;
use crate::slo::{SloResult, Verdict};
use crate::stats::histogram::{self, LatencySummary};
use crate::stats::recorder::failures_by_kind;
use crate::stats::{Counts, RunStats};
use crate::target::{GatewayCounts, GatewayReading};

/// Version of the run.json schema. Bump on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything a run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// run.json schema version.
    pub schema_version: u32,
    /// slo-check's version.
    pub tool_version: String,
    /// Scenario name.
    pub scenario: String,
    /// Scenario description.
    pub description: String,
    /// Scenario file.
    pub scenario_file: String,
    /// Where the system under test ran.
    pub platform: PlatformInfo,
    /// Factor applied to every schedule duration.
    pub time_scale: f64,
    /// `constant` or `poisson`.
    pub arrival: String,
    /// Seed of the Poisson schedule (null for constant arrivals).
    pub seed: Option<u64>,
    /// UTC start, RFC 3339.
    pub started_at: String,
    /// Wall-clock length of the load phase (schedule plus draining), seconds.
    pub duration_s: f64,
    /// Planned length of the schedule, seconds.
    pub schedule_s: f64,
    /// `pass` when every SLO holds.
    pub verdict: Verdict,
    /// True when SIGINT/SIGTERM stopped the run early (partial report).
    pub interrupted: bool,
    /// Every SLO and built-in check.
    pub slos: Vec<SloResult>,
    /// Workflow latency over the whole run (succeeded workflows, from intended start).
    pub workflow: LatencyBlock,
    /// Per-step latency over the whole run, by step name.
    pub steps: BTreeMap<String, LatencyBlock>,
    /// Counts over the whole run.
    pub counts: CountsReport,
    /// Mean configured start rate of the schedule.
    pub target_rate_per_s: f64,
    /// Starts actually sent during the schedule, per second.
    pub achieved_rate_per_s: f64,
    /// Actual minus intended send time of each workflow's first request.
    pub schedule_lag_ms: LagReport,
    /// Stages, faults and SLO windows with their own counts and latency.
    pub windows: Vec<WindowReport>,
    /// One entry per second of the run.
    pub timeseries: Vec<TimePoint>,
    /// Replica counts over time (empty when the platform has no replicas to observe).
    #[serde(default)]
    pub replicas: Vec<ReplicaPoint>,
    /// HPA timing derived from `replicas` (null when there is no replica timeline).
    #[serde(default)]
    pub hpa: Option<HpaFigures>,
    /// Fault windows as planned, with what was applied.
    #[serde(default)]
    pub faults: Vec<FaultReport>,
    /// Serialized HdrHistograms (base64 of V2+DEFLATE, µs) for re-analysis and merging.
    pub histograms: Histograms,
    /// Comparison with an earlier run (`--baseline`); absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineReport>,
    /// Regression detection against the run history (`--baseline history`); absent
    /// without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<super::trend::HistoryReport>,
    /// Client vs server (Prometheus) comparisons; empty when Prometheus was not queried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cross_check: Vec<crate::prom::CrossCheckItem>,
    /// What the gateway's proxy counted during the load; absent when the platform has
    /// no gateway to read (`url`, `local`, a kube run with --target-url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayReport>,
    /// The canary rollout, step by step (scenarios with a `canary:` section).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<super::canary::CanaryReport>,
    /// The run's test id: the `testid` label of its live metrics (`--testid`; by default
    /// `<scenario>-<start time>`). Absent in runs made before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub testid: Option<String>,
    /// The live metrics exported during the run (`--metrics-listen`, `--remote-write`):
    /// where, how many pushes failed, whether the final values got there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_metrics: Option<crate::live::LiveReport>,
    /// A distributed run's generators (`--generators N`); absent when slo-check issued the
    /// load itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generators: Vec<GeneratorReport>,
}

/// A generator's part in the run (run.json `generators[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorReport {
    pub index: u32,
    /// `index/count`: it issued the starts whose sequence number is `index` modulo `count`.
    pub shard: String,
    /// What it ran as (`pid 4242`, `pod …`).
    pub runs_as: String,
    /// Why its starts are missing from the run (it never started, died, or stopped
    /// answering); none when it completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<String>,
    /// Its clock minus the coordinator's, ms (NTP's estimate from the status round trip
    /// with the shortest delay), and that estimate's error bound (half the round trip).
    pub clock_offset_ms: Option<f64>,
    pub clock_bound_ms: Option<f64>,
    /// Starts it issued and dropped, and the records the coordinator received from it.
    pub started: u64,
    pub dropped: u64,
    pub records: u64,
}

impl GeneratorReport {
    /// `generator I/N (RUNS AS): WHY` when it was lost.
    pub fn lost_line(&self) -> Option<String> {
        let why = self.lost.as_ref()?;
        Some(format!(
            "generator {} ({}): {why}",
            self.shard, self.runs_as
        ))
    }
}

/// The platform a run used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformInfo {
    /// `url`, `local` or `kube`.
    pub kind: String,
    /// What the target was.
    pub description: String,
    /// Base URL the load was sent to.
    pub target_url: String,
    /// True when the platform was emulated (the embedded platform).
    pub emulated: bool,
}

/// A latency summary in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyBlock {
    pub latency_ms: LatencySummary,
}

/// Counts (run.json `counts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountsReport {
    /// Starts in the schedule.
    pub scheduled: u64,
    /// Starts issued.
    pub started: u64,
    /// Starts not issued because `max_in_flight` workflows were running.
    pub dropped: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// In flight when an interrupt's grace period ended (never counted as success or failure).
    pub abandoned: u64,
    /// Failures by kind: connect, timeout, status, overloaded, expectation, poll_timeout, other.
    pub failures_by_kind: BTreeMap<String, u64>,
    /// failed / (succeeded + failed); null when nothing finished.
    pub failure_rate: Option<f64>,
}

impl CountsReport {
    fn new(scheduled: u64, c: &Counts) -> CountsReport {
        CountsReport {
            scheduled,
            started: c.started,
            dropped: c.dropped,
            succeeded: c.succeeded,
            failed: c.failed,
            abandoned: c.abandoned,
            failures_by_kind: failures_by_kind(&c.failures_by_kind)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            failure_rate: c.failure_rate(),
        }
    }
}

/// Schedule lag percentiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LagReport {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
    /// The run's `load.pacing_slack`, ms: lag up to it is by design (starts batched
    /// into one wake-up), past it the load worker fell behind. 0 in runs made before
    /// the setting existed.
    #[serde(default)]
    pub pacing_slack_ms: f64,
}

/// A window's own numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowReport {
    pub label: String,
    pub from_s: f64,
    pub to_s: f64,
    pub counts: CountsReport,
    pub latency_ms: LatencySummary,
}

/// One second of the run (run.json `timeseries[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimePoint {
    /// Second since the run's zero.
    pub t_s: u64,
    /// Configured start rate at the middle of the second.
    pub target_rate_per_s: f64,
    /// Workflows whose first request was sent in this second.
    pub started: u64,
    /// Of the workflows intended to start in this second: succeeded, failed, dropped.
    pub succeeded: u64,
    pub failed: u64,
    pub dropped: u64,
    /// Failures by kind (only kinds that occurred).
    pub failures_by_kind: BTreeMap<String, u64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// One observation of the replica counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaPoint {
    /// Seconds after the run's zero (negative: before the load started).
    pub t_s: f64,
    pub desired: u32,
    pub current: u32,
    pub ready: u32,
}

/// A fault window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultReport {
    pub name: String,
    /// Planned window, seconds after the run's zero.
    pub from_s: f64,
    pub to_s: f64,
    /// Abort percentage (Istio's 0..100) and status, when the fault aborts.
    pub abort_percent: Option<f64>,
    pub abort_status: Option<u16>,
    /// Delay percentage and length in ms, when the fault delays.
    pub delay_percent: Option<f64>,
    pub delay_ms: Option<f64>,
    /// Whether the platform could inject it.
    pub injected: bool,
    /// When the injector applied it, seconds after the run's zero (absent: never applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_at_s: Option<f64>,
    /// When the injector confirmed its revert (absent when never applied, or when the
    /// revert failed: a fault left in place, which the terminal reports as an error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverted_at_s: Option<f64>,
    /// How long the data plane took to hold the apply and the revert (absent when the
    /// platform did not look).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_plane: Option<DataPlaneReport>,
    /// How long after the revert the run was back within its pre-fault envelope
    /// (absent in run.json files written before it was measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoveryReport>,
}

/// A fault's recovery (`crate::recovery`): after its revert, the first of
/// `hold_seconds` consecutive seconds whose failure rate and p95 lie within the worst
/// second before the first fault. Resolution: one second (the per-second series).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryReport {
    /// From the revert (`reverted_at_s`) to `recovered_at_s`; null when not recovered
    /// or not measured.
    pub recovery_seconds: Option<f64>,
    /// Start of the first clean second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered_at_s: Option<f64>,
    /// Set when no clean run of seconds followed before the last second with load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_recovered_by_s: Option<f64>,
    /// Why it could not be measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmeasured: Option<String>,
    /// The envelope: seconds before the first fault, and of their worst failure rate and
    /// p95 those the recovery is judged on (an abort's the failure rate, a delay's the
    /// p95, both for a fault that does both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_failure_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_p95_ms: Option<f64>,
    /// Consecutive clean seconds required.
    pub hold_seconds: u64,
}

impl RecoveryReport {
    pub fn of(r: &crate::recovery::Recovery, judged: crate::recovery::Judged) -> RecoveryReport {
        use crate::recovery::{HOLD_SECONDS, Recovery};
        let mut out = RecoveryReport {
            recovery_seconds: None,
            recovered_at_s: None,
            not_recovered_by_s: None,
            unmeasured: None,
            baseline_seconds: None,
            baseline_failure_rate: None,
            baseline_p95_ms: None,
            hold_seconds: HOLD_SECONDS as u64,
        };
        let envelope = match r {
            Recovery::Recovered {
                at,
                after,
                envelope,
            } => {
                out.recovery_seconds = Some(after.as_secs_f64());
                out.recovered_at_s = Some(at.as_secs_f64());
                envelope
            }
            Recovery::NotRecovered { until, envelope } => {
                out.not_recovered_by_s = Some(until.as_secs_f64());
                envelope
            }
            Recovery::Unmeasured(why) => {
                out.unmeasured = Some(why.clone());
                return out;
            }
        };
        out.baseline_seconds = Some(envelope.seconds as u64);
        out.baseline_failure_rate = judged.failure_rate.then_some(envelope.failure_rate);
        out.baseline_p95_ms = envelope.p95_ms.filter(|_| judged.p95);
        out
    }
}

/// A fault's propagation to the data plane, in seconds after the control plane took
/// each change (`applied_at_s`, `reverted_at_s`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataPlaneReport {
    /// Until every proxy looked at held the fault; null when it was not seen (then
    /// `applied_not_seen_within_s` is set) or not looked for.
    pub applied_after_s: Option<f64>,
    /// Set when the proxies did not show the fault within this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_not_seen_within_s: Option<f64>,
    /// Until every proxy looked at held the revert; null as for `applied_after_s`.
    pub reverted_after_s: Option<f64>,
    /// Set when the proxies did not show the revert within this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverted_not_seen_within_s: Option<f64>,
    /// Where it was looked for, e.g. `Envoy config_dump of 1 gateway pod`.
    pub seen_in: String,
}

impl DataPlaneReport {
    /// The report of one fault's activity; `None` when neither change was looked for.
    pub fn of(a: &crate::fault_timeline::FaultActivity) -> Option<DataPlaneReport> {
        use crate::target::DataPlane;
        let part = |d: &DataPlane| match d {
            DataPlane::NotObserved => (None, None, None),
            DataPlane::SeenAfter { after, seen_in } => {
                (Some(after.as_secs_f64()), None, Some(seen_in.clone()))
            }
            DataPlane::NotSeenWithin { bound, seen_in, .. } => {
                (None, Some(bound.as_secs_f64()), Some(seen_in.clone()))
            }
        };
        let (applied_after_s, applied_not_seen_within_s, applied_in) = part(&a.applied_data_plane);
        let (reverted_after_s, reverted_not_seen_within_s, reverted_in) =
            part(&a.reverted_data_plane);
        Some(DataPlaneReport {
            applied_after_s,
            applied_not_seen_within_s,
            reverted_after_s,
            reverted_not_seen_within_s,
            seen_in: applied_in.or(reverted_in)?,
        })
    }
}

/// What the gateway's proxy counted between the load's start and end (run.json
/// `gateway`): differences of its cumulative counters, summed over its pods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayReport {
    /// Where the numbers come from, e.g. `Envoy admin /stats of 2 gateway pods`.
    pub source: String,
    /// Why there are no numbers (the counters could not be read at the start or the
    /// end, the pods changed, a proxy restarted); absent when there are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// Requests the fault filter aborted (null: not exported, or `unavailable`).
    #[serde(default)]
    pub aborts_injected: Option<u64>,
    /// Requests the fault filter delayed.
    #[serde(default)]
    pub delays_injected: Option<u64>,
    /// Requests the gateway's listener received.
    #[serde(default)]
    pub downstream_rq: Option<u64>,
    /// Of those, answered 5xx (injected aborts included).
    #[serde(default)]
    pub downstream_rq_5xx: Option<u64>,
    /// Requests the circuit breaker of the service's cluster refused: too many waiting
    /// for a connection.
    #[serde(default)]
    pub upstream_rq_pending_overflow: Option<u64>,
    /// Requests the circuit breaker of the service's cluster refused: too many in flight.
    #[serde(default)]
    pub upstream_rq_active_overflow: Option<u64>,
    /// Endpoints of the service ejected by outlier detection.
    #[serde(default)]
    pub outlier_ejections_enforced: Option<u64>,
    /// When ejections happened: seconds after the run's zero of each reading (one a
    /// second during the load) whose `outlier_ejections_enforced` had risen, and by how
    /// many. Resolution: the reading interval; empty when none rose or none was read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ejections: Vec<EjectionReport>,
}

/// Outlier ejections first seen by one reading of the gateway's counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EjectionReport {
    /// When the reading was answered, seconds after the run's zero.
    pub seen_at_s: f64,
    /// How many more ejections than at the previous reading.
    pub ejected: u64,
}

impl GatewayReport {
    /// The difference between the readings at the load's start and end, or why there is none.
    pub fn between(
        start: &Result<GatewayReading, String>,
        end: &Result<GatewayReading, String>,
    ) -> GatewayReport {
        let counted = match (start, end) {
            (Ok(s), Ok(e)) => e.since(s).map(|c| (e.source.clone(), c)),
            (Err(why), _) => Err(format!("not read at the load's start: {why}")),
            (_, Err(why)) => Err(format!("not read at the load's end: {why}")),
        };
        let source = match (start, end) {
            (_, Ok(e)) => e.source.clone(),
            (Ok(s), _) => s.source.clone(),
            _ => "the gateway's proxy".to_string(),
        };
        let (unavailable, c) = match counted {
            Ok((_, c)) => (None, c),
            Err(why) => (Some(why), GatewayCounts::default()),
        };
        GatewayReport {
            source,
            unavailable,
            aborts_injected: c.aborts_injected,
            delays_injected: c.delays_injected,
            downstream_rq: c.downstream_rq,
            downstream_rq_5xx: c.downstream_rq_5xx,
            upstream_rq_pending_overflow: c.upstream_rq_pending_overflow,
            upstream_rq_active_overflow: c.upstream_rq_active_overflow,
            outlier_ejections_enforced: c.outlier_ejections_enforced,
            ejections: Vec::new(),
        }
    }
}

/// Serialized histograms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histograms {
    /// Workflow latency, whole run.
    pub workflow: String,
    /// Step latency by step name, whole run.
    pub steps: BTreeMap<String, String>,
    /// Workflow latency per second (by intended start); "" for a second with no success.
    pub per_second: Vec<String>,
    /// Schedule lag.
    pub schedule_lag: String,
}

/// Facts about the run that are not statistics.
pub struct RunMeta {
    pub platform: PlatformInfo,
    pub started_at: String,
    pub duration_s: f64,
    pub interrupted: bool,
    pub replicas: Vec<ReplicaPoint>,
    pub hpa: Option<HpaFigures>,
    /// Whether the platform could inject faults.
    pub faults_injected: bool,
    /// What the fault timeline did, per scenario fault (empty: nothing recorded).
    pub fault_activity: Vec<crate::fault_timeline::FaultActivity>,
    /// What the gateway counted during the load (`None`: no gateway to read).
    pub gateway: Option<GatewayReport>,
    /// What the canary controller did (`None`: no canary, or no platform to route).
    pub canary: Option<super::canary::CanaryActivity>,
    /// The run's test id (the `testid` label of its live metrics).
    pub testid: String,
    /// What the live metrics exporter did (`None`: nothing was exported).
    pub live: Option<crate::live::LiveReport>,
    /// A distributed run's generators (empty: slo-check issued the load itself).
    pub generators: Vec<GeneratorReport>,
}

impl RunReport {
    pub fn build(plan: &Plan, stats: &RunStats, slos: Vec<SloResult>, meta: RunMeta) -> RunReport {
        let sc = &plan.scenario;
        let run = &stats.windows[0];
        let len = run.spec.len_s();
        let step_map = |f: &dyn Fn(usize) -> String| -> BTreeMap<String, String> {
            sc.workflow
                .iter()
                .enumerate()
                .map(|(i, s)| (s.name.clone(), f(i)))
                .collect()
        };
        let steps = sc
            .workflow
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    s.name.clone(),
                    LatencyBlock {
                        latency_ms: LatencySummary::of(&run.steps[i]),
                    },
                )
            })
            .collect();
        let lag = |p: f64| histogram::percentile_ms(&stats.lag, p);
        let canary = meta
            .canary
            .as_ref()
            .and_then(|a| super::canary::CanaryReport::build(plan, stats, a));
        // A rolled-back (or unfinished, or failing) rollout fails the run like an SLO.
        let verdict = match &canary {
            Some(c) if !c.holds() => Verdict::Fail,
            _ => crate::slo::verdict(&slos),
        };
        let faults = fault_reports(plan, &meta, stats);
        RunReport {
            schema_version: SCHEMA_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            scenario: sc.name.clone(),
            description: sc.description.clone(),
            scenario_file: sc.source.display().to_string(),
            platform: meta.platform,
            time_scale: plan.time_scale,
            arrival: format!("{:?}", sc.load.arrival).to_lowercase(),
            seed: (sc.load.arrival == crate::scenario::Arrival::Poisson)
                .then_some(plan.schedule.seed),
            started_at: meta.started_at,
            duration_s: meta.duration_s,
            schedule_s: len,
            verdict,
            interrupted: meta.interrupted,
            slos,
            workflow: LatencyBlock {
                latency_ms: LatencySummary::of(&run.workflow),
            },
            steps,
            counts: CountsReport::new(plan.scheduled, &run.counts),
            target_rate_per_s: plan.schedule.mean_rate_per_s(),
            achieved_rate_per_s: if len > 0.0 {
                run.counts.started_actual as f64 / len
            } else {
                0.0
            },
            schedule_lag_ms: LagReport {
                p50: lag(50.0),
                p99: lag(99.0),
                max: (!stats.lag.is_empty()).then(|| stats.lag.max() as f64 / 1000.0),
                pacing_slack_ms: plan.scenario.load.pacing_slack.as_secs_f64() * 1e3,
            },
            windows: window_reports(stats),
            timeseries: timeseries(plan, stats),
            replicas: meta.replicas,
            hpa: meta.hpa,
            faults,
            histograms: Histograms {
                workflow: histogram::encode(&run.workflow),
                steps: step_map(&|i| histogram::encode(&run.steps[i])),
                per_second: stats.seconds.iter().map(|s| s.encoded()).collect(),
                schedule_lag: histogram::encode(&stats.lag),
            },
            baseline: None,
            history: None,
            cross_check: Vec::new(),
            gateway: meta.gateway,
            canary,
            testid: Some(meta.testid),
            live_metrics: meta.live,
            generators: meta.generators,
        }
    }
}

/// One point per second of the run.
fn timeseries(plan: &Plan, stats: &RunStats) -> Vec<TimePoint> {
    stats
        .seconds
        .iter()
        .enumerate()
        .map(|(t, s)| {
            let summary = s.summary();
            TimePoint {
                t_s: t as u64,
                target_rate_per_s: plan.schedule.rate_at(t as f64 + 0.5),
                started: s.started,
                succeeded: s.succeeded,
                failed: s.failed,
                dropped: s.dropped,
                failures_by_kind: failures_by_kind(&s.failures_by_kind)
                    .into_iter()
                    .filter(|(_, v)| *v > 0)
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                p50_ms: summary.p50,
                p95_ms: summary.p95,
                p99_ms: summary.p99,
            }
        })
        .collect()
}

/// The stage, fault and SLO windows (every window but the whole run).
fn window_reports(stats: &RunStats) -> Vec<WindowReport> {
    stats.windows[1..]
        .iter()
        .map(|w| WindowReport {
            label: w.spec.label.clone(),
            from_s: w.spec.from_us as f64 / 1e6,
            to_s: w.spec.to_us as f64 / 1e6,
            counts: CountsReport::new(w.counts.started + w.counts.dropped, &w.counts),
            latency_ms: LatencySummary::of(&w.workflow),
        })
        .collect()
}

/// The scenario's faults as planned, with what the timeline did.
fn fault_reports(plan: &Plan, meta: &RunMeta, stats: &RunStats) -> Vec<FaultReport> {
    let activity = |i: usize| meta.fault_activity.get(i);
    let first_fault = meta
        .fault_activity
        .iter()
        .filter_map(|a| a.applied_at)
        .min();
    plan.scenario
        .faults
        .iter()
        .zip(&plan.fault_windows)
        .enumerate()
        .map(|(i, (f, (from, to)))| FaultReport {
            name: f.name.clone(),
            from_s: from.as_secs_f64(),
            to_s: to.as_secs_f64(),
            abort_percent: f.abort.as_ref().map(|a| a.percent),
            abort_status: f.abort.as_ref().map(|a| a.http_status),
            delay_percent: f.delay.as_ref().map(|d| d.percent),
            delay_ms: f
                .delay
                .as_ref()
                .map(|d| d.fixed_delay.as_secs_f64() * 1000.0),
            injected: meta.faults_injected,
            applied_at_s: activity(i)
                .and_then(|a| a.applied_at)
                .map(|d| d.as_secs_f64()),
            reverted_at_s: activity(i)
                .and_then(|a| a.reverted_at)
                .map(|d| d.as_secs_f64()),
            data_plane: activity(i).and_then(DataPlaneReport::of),
            recovery: activity(i)
                .and_then(|a| a.applied_at.and(a.reverted_at))
                .map(|reverted| {
                    let judged = crate::recovery::Judged {
                        failure_rate: f.abort.is_some(),
                        p95: f.delay.is_some(),
                    };
                    RecoveryReport::of(
                        &crate::recovery::recovery(
                            &stats.seconds,
                            first_fault,
                            Some(reverted),
                            judged,
                        ),
                        judged,
                    )
                }),
        })
        .collect()
}

/// The comparison (run.json `baseline`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineReport {
    /// The baseline run.json, as given on the command line.
    pub file: String,
    /// The baseline's scenario.
    pub scenario: String,
    /// The baseline's UTC start.
    pub started_at: String,
    /// slo-check version that produced the baseline.
    pub tool_version: String,
    /// Largest relative change for the worse that is not a regression (0.1 = 10 %).
    pub max_regression: f64,
    /// Every compared measure: workflow latency percentiles, failure rate,
    /// achieved rate, then each SLO by name.
    pub deltas: Vec<Delta>,
    /// How many deltas are regressions.
    pub regressions: usize,
    /// Caveats, e.g. the baseline ran another scenario.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Which direction is worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Worse {
    Higher,
    Lower,
}

/// One compared measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// `workflow p95`, `failure rate`, `achieved rate`, or `SLO <name>`.
    pub name: String,
    /// Unit of both values.
    pub unit: Unit,
    /// Which direction is worse.
    pub worse: Worse,
    /// The baseline's value (null: no data).
    pub baseline: Option<f64>,
    /// This run's value (null: no data).
    pub current: Option<f64>,
    /// (current − baseline) / baseline; null when a value is missing or the baseline is 0.
    pub change: Option<f64>,
    /// Worse than the baseline by more than `max_regression`.
    pub regression: bool,
}

impl RunReport {
    /// Said beside the HPA figures when they are real seconds of a run at another time
    /// scale: the schedule was compressed, the cluster's HPA controller was not.
    pub fn hpa_clock_note(&self) -> Option<String> {
        let h = self.hpa.as_ref()?;
        (h.real_time && (self.time_scale - 1.0).abs() > f64::EPSILON).then(|| {
            format!(
                "the hpa.* figures are real seconds: the cluster's HPA controller runs in real time, not at time scale {}",
                self.time_scale
            )
        })
    }

    /// Regressions found against the baseline (0 without one).
    pub fn regressions(&self) -> usize {
        self.baseline.as_ref().map_or(0, |b| b.regressions)
    }

    /// How many metrics regressed against the history (`--baseline history`).
    pub fn history_regressions(&self) -> usize {
        self.history.as_ref().map_or(0, |h| h.regressions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault_timeline::FaultActivity;
    use crate::target::DataPlane;
    use std::time::Duration;

    fn reading(pods: &[&str], aborts: u64, delays: Option<u64>) -> Result<GatewayReading, String> {
        Ok(GatewayReading {
            source: format!("Envoy admin /stats of {} gateway pods", pods.len()),
            pods: pods.iter().map(|p| p.to_string()).collect(),
            counts: GatewayCounts {
                aborts_injected: Some(aborts),
                delays_injected: delays,
                downstream_rq: Some(aborts * 10),
                ..GatewayCounts::default()
            },
        })
    }

    #[test]
    fn the_gateway_reports_the_difference_or_why_there_is_none() {
        let start = reading(&["a", "b"], 100, Some(3));
        let g = GatewayReport::between(&start, &reading(&["a", "b"], 312, Some(3)));
        assert_eq!(g.unavailable, None);
        assert_eq!(
            (g.aborts_injected, g.delays_injected, g.downstream_rq),
            (Some(212), Some(0), Some(2120))
        );
        // A counter the proxy does not export stays unknown, not 0.
        assert_eq!(g.upstream_rq_pending_overflow, None);
        let json = serde_json::to_value(&g).unwrap();
        assert!(
            json["upstream_rq_pending_overflow"].is_null() && json.get("unavailable").is_none()
        );

        for (end, why) in [
            (
                reading(&["a", "c"], 312, None),
                "pods changed during the run",
            ),
            (reading(&["a", "b"], 50, None), "went down from 100 to 50"),
            (
                Err("pod a: refused".into()),
                "not read at the load's end: pod a: refused",
            ),
        ] {
            let g = GatewayReport::between(&start, &end);
            let said = g.unavailable.unwrap_or_default();
            assert!(said.contains(why), "{said}");
            assert_eq!(g.aborts_injected, None, "no numbers that look measured");
        }
    }

    #[test]
    fn a_faults_data_plane_is_reported_only_where_looked_at() {
        let mut a = FaultActivity {
            applied_at: Some(Duration::from_secs(10)),
            reverted_at: Some(Duration::from_secs(20)),
            ..FaultActivity::default()
        };
        assert_eq!(DataPlaneReport::of(&a), None);
        a.applied_data_plane = DataPlane::SeenAfter {
            after: Duration::from_millis(41),
            seen_in: "Envoy config_dump of 1 gateway pod".into(),
        };
        a.reverted_data_plane = DataPlane::NotSeenWithin {
            bound: Duration::from_secs(5),
            seen_in: "Envoy config_dump of 1 gateway pod".into(),
            last: "route `agent` holds abort 503 at 50% instead of no fault".into(),
        };
        let json = serde_json::to_value(DataPlaneReport::of(&a).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"applied_after_s": 0.041, "reverted_after_s": null,
                "reverted_not_seen_within_s": 5.0, "seen_in": "Envoy config_dump of 1 gateway pod"})
        );
    }
}
