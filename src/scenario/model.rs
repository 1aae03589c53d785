//! The validated scenario: every value checked, every unit resolved, every
//! template parsed. This is what `plan` and the later stages see.

use std::path::PathBuf;
use std::time::Duration;

use hyper::Method;
use hyper::header::HeaderName;

use super::template::{JsonTemplate, Template};

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Scenario name (reports go to reports/<name>/).
    pub name: String,
    /// One-line description.
    pub description: String,
    /// File the scenario was read from.
    pub source: PathBuf,
    /// Kubernetes object names (defaults filled in).
    pub platform: PlatformRefs,
    /// Prometheus base URL from the scenario, if any.
    pub prometheus_url: Option<String>,
    /// `prometheus.settle`: wait before querying Prometheus (None: the default).
    pub prometheus_settle: Option<Duration>,
    /// Workflow steps in order.
    pub workflow: Vec<Step>,
    /// Names of the capture slots, in slot order.
    pub capture_names: Vec<String>,
    /// Environment variables the templates use, in slot order.
    pub env_names: Vec<String>,
    /// The arrival schedule and its limits.
    pub load: Load,
    /// Faults with their windows.
    pub faults: Vec<Fault>,
    /// The SLOs.
    pub slos: Vec<Slo>,
    /// Whether the built-in load-delivered check runs.
    pub check_load_delivered: bool,
    /// The `canary:` section: a progressive rollout judged step by step.
    pub canary: Option<Canary>,
}

/// A subset of the agent (a DestinationRule subset): which version served a workflow.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Subset {
    Stable,
    Canary,
}

impl Subset {
    /// Both subsets, stable first.
    pub const ALL: [Subset; 2] = [Subset::Stable, Subset::Canary];

    pub fn as_str(self) -> &'static str {
        match self {
            Subset::Stable => "stable",
            Subset::Canary => "canary",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// The response header in which an agent replica names its version (its subset's
/// `version` label); workflows are attributed to a subset by it.
pub const VERSION_HEADER: &str = "x-agent-version";

/// A validated `canary:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Canary {
    /// The `version` label of each subset, indexed by `Subset::index`.
    pub versions: [String; 2],
    /// Embedded platform: how each subset's replicas differ from `platform.local`.
    pub local: [SubsetLocal; 2],
    /// Requests with all these headers (name, exact value) always go to the canary.
    pub header: Vec<(HeaderName, String)>,
    /// The traffic steps, in order.
    pub steps: Vec<CanaryStep>,
    /// Judged at the end of every step over the canary's workflows of the step (window `Run`
    /// as written; `plan` gives each step its window).
    pub analysis: Vec<Slo>,
    pub on_failure: OnFailure,
    /// Line and column of the `canary:` key, for errors found later (e.g. a platform that
    /// cannot route).
    pub line_col: Option<(u64, u64)>,
}

impl Canary {
    /// The subset whose pods carry `version`, if any.
    pub fn subset_of(&self, version: &str) -> Option<Subset> {
        Subset::ALL
            .into_iter()
            .find(|s| self.versions[s.index()] == version)
    }

    /// End of the last step, in scenario time.
    pub fn end(&self) -> Duration {
        self.steps.iter().map(|s| s.duration).sum()
    }
}

/// How one subset's replicas differ from `platform.local` (embedded platform).
#[derive(Debug, Clone, PartialEq)]
pub struct SubsetLocal {
    /// Fraction of workflows that fail; `None`: `platform.local.fail_ratio`.
    pub fail_ratio: Option<f64>,
    /// Multiplies the LLM and tool-call latencies (> 0).
    pub latency_factor: f64,
    /// Replicas; `None`: the stable subset's initial replicas.
    pub replicas: Option<u32>,
    /// Whether an emulated HPA scales this subset.
    pub autoscale: bool,
}

/// One traffic step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CanaryStep {
    /// The canary's share of the weighted traffic, percent.
    pub weight: u8,
    /// How long the step holds, scenario time.
    pub duration: Duration,
}

/// What a failing step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    Rollback,
    Continue,
}

/// Kubernetes object names of the platform under test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformRefs {
    pub namespace: String,
    pub deployment: String,
    pub hpa: String,
    pub service: String,
    pub virtual_service: String,
    /// Settings of the embedded platform (`platform.local`, defaults filled in).
    pub local: LocalPlatform,
}

impl Default for PlatformRefs {
    fn default() -> Self {
        PlatformRefs {
            namespace: "mcp-agents".into(),
            deployment: "mcp-agent".into(),
            hpa: "mcp-agent-hpa".into(),
            service: "mcp-agent-service".into(),
            virtual_service: "mcp-agent-vs".into(),
            local: LocalPlatform::default(),
        }
    }
}

/// The embedded platform's settings (`platform.local`), validated, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalPlatform {
    /// Replicas at start; `None` means the HPA's minReplicas.
    pub replicas: Option<u32>,
    /// Whether the emulated HPA runs; false keeps the replica count fixed.
    pub autoscale: bool,
    /// The HPA manifest, as written (relative paths resolve against the current directory).
    pub hpa: PathBuf,
    /// Time from a replica's start until it is ready, in scenario time.
    pub startup_delay: Duration,
    /// CPU capacity of each replica in cores (> 0).
    pub cores: f64,
    /// CPU work per workflow, in core-time.
    pub cpu_per_workflow: Duration,
    /// LLM calls per workflow.
    pub llm_calls: u32,
    /// Median latency of one LLM call.
    pub llm_median: Duration,
    /// 99th-percentile latency of one LLM call (>= `llm_median`).
    pub llm_p99: Duration,
    /// Tool calls per workflow.
    pub tool_calls: u32,
    /// Median latency of one tool call.
    pub tool_median: Duration,
    /// 99th-percentile latency of one tool call (>= `tool_median`).
    pub tool_p99: Duration,
    /// Active-workflow limit per replica (>= 1).
    pub max_concurrent_workflows: usize,
    /// Fraction of workflows that fail, in 0..=1.
    pub fail_ratio: f64,
    /// Seed of all random draws of the platform; `None` means random.
    pub seed: Option<u64>,
}

/// Validation never lets a NaN through (`cores` and `fail_ratio` are range-checked), so
/// equality is reflexive.
impl Eq for LocalPlatform {}

/// Validation range-checks `latency_factor` and `fail_ratio`.
impl Eq for SubsetLocal {}

impl Default for LocalPlatform {
    fn default() -> Self {
        LocalPlatform {
            replicas: None,
            autoscale: true,
            hpa: PathBuf::from(DEFAULT_HPA_MANIFEST),
            startup_delay: Duration::from_secs(5),
            cores: 1.0,
            cpu_per_workflow: Duration::from_millis(20),
            llm_calls: 2,
            llm_median: Duration::from_millis(200),
            llm_p99: Duration::from_secs(1),
            tool_calls: 1,
            tool_median: Duration::from_millis(50),
            tool_p99: Duration::from_millis(200),
            max_concurrent_workflows: 100,
            fail_ratio: 0.0,
            seed: None,
        }
    }
}

/// Where the embedded platform finds its HPA manifest unless `platform.local.hpa` says otherwise.
pub const DEFAULT_HPA_MANIFEST: &str = "stack/base/hpa.yaml";
/// Most replicas the embedded platform runs (each is a loopback server in this process).
pub const MAX_LOCAL_REPLICAS: u32 = 100;

/// One validated workflow step.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub method: Method,
    pub path: Template,
    pub headers: Vec<(HeaderName, Template)>,
    pub body: Body,
    /// Accepted statuses; empty means any 2xx.
    pub expect_status: Vec<u16>,
    /// (capture slot, JSON pointer) pairs.
    pub captures: Vec<(usize, String)>,
    pub poll: Option<Poll>,
}

impl Step {
    /// Whether the response body must be parsed as JSON.
    pub fn needs_json(&self) -> bool {
        !self.captures.is_empty() || self.poll.is_some()
    }
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    Empty,
    Text(Template),
    /// JSON with templated strings; `literal` is the serialized body when nothing is templated.
    Json {
        template: JsonTemplate,
        literal: Option<bytes::Bytes>,
    },
}

/// Polling settings.
#[derive(Debug, Clone)]
pub struct Poll {
    pub until: Condition,
    pub fail_if: Option<Condition>,
    pub every: Duration,
    pub timeout: Duration,
}

/// A JSON pointer and the value it must hold.
#[derive(Debug, Clone)]
pub struct Condition {
    pub pointer: String,
    pub equals: serde_json::Value,
}

/// The validated load block.
#[derive(Debug, Clone)]
pub struct Load {
    pub arrival: Arrival,
    pub seed: Option<u64>,
    pub stages: Vec<Stage>,
    pub max_in_flight: u64,
    pub request_timeout: Duration,
    pub max_response_bytes: u64,
    /// A load worker wakes at most once per this long while starts are due more
    /// often, issuing every start due by then (each later by at most this much).
    pub pacing_slack: Duration,
}

/// How workflow starts are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Evenly spaced at the stage's rate.
    Constant,
    /// A Poisson process with the stage's rate.
    Poisson,
}

/// A stage with its start and end rate (equal unless it ramps).
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub name: Option<String>,
    pub duration: Duration,
    pub start_rate_per_s: f64,
    pub end_rate_per_s: f64,
}

/// A fault and its window.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub name: String,
    pub start: Duration,
    pub duration: Duration,
    pub delay: Option<Delay>,
    pub abort: Option<Abort>,
}

/// Istio's delay: a percentage of requests wait `fixed_delay` first.
#[derive(Debug, Clone, PartialEq)]
pub struct Delay {
    pub percent: f64,
    pub fixed_delay: Duration,
}

/// Istio's abort: a percentage of requests get `http_status`.
#[derive(Debug, Clone, PartialEq)]
pub struct Abort {
    pub percent: f64,
    pub http_status: u16,
}

/// A validated SLO.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    pub name: String,
    pub source: SloSource,
    pub bound: Bound,
    /// Threshold in the metric's unit (see `Metric::unit`).
    pub threshold: f64,
    pub window: WindowRef,
    pub allow_unknown: bool,
    /// Only the workflows this subset served (`subset:`); `None`: all of them.
    pub subset: Option<Subset>,
}

/// Where an SLO's observed value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum SloSource {
    Metric(Metric),
    PromQl(String),
    /// An alert that must fire (and resolve) in time, read from Prometheus's `ALERTS`.
    Alert(AlertCheck),
}

/// An alert-verification SLO (`alert`, `fires_within`, `resolves_within`), in scenario time.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertCheck {
    /// The alert's name (`alertname` label).
    pub alert: String,
    /// Must be firing within this long after the window's start.
    pub fires_within: Duration,
    /// Must have stopped firing within this long after the window's end (None: not checked).
    pub resolves_within: Option<Duration>,
}

/// Whether the observed value must stay below or above the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bound {
    Max,
    Min,
}

/// A client-side metric.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    /// Workflow latency (step None) or one step's latency.
    Latency {
        step: Option<usize>,
        stat: LatencyStat,
    },
    FailureRate,
    Dropped,
    AchievedRate,
    HpaScaleUpSeconds,
    HpaDecisionSeconds,
    HpaPeakReplicas,
}

/// A latency statistic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LatencyStat {
    /// Percentile in percent, e.g. 95.0 or 99.9.
    Percentile(f64),
    Max,
    Mean,
}

/// The unit of an observed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Ms,
    #[serde(rename = "s")]
    Seconds,
    Ratio,
    Count,
    #[serde(rename = "per_s")]
    PerSecond,
    Number,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Ms => "ms",
            Unit::Seconds => "s",
            Unit::Ratio => "ratio",
            Unit::Count => "count",
            Unit::PerSecond => "per_s",
            Unit::Number => "number",
        }
    }
}

impl Metric {
    /// Every metric that takes no step or statistic.
    pub const UNPARAMETERISED: [Metric; 6] = [
        Metric::FailureRate,
        Metric::Dropped,
        Metric::AchievedRate,
        Metric::HpaScaleUpSeconds,
        Metric::HpaDecisionSeconds,
        Metric::HpaPeakReplicas,
    ];

    /// The metric's name as the scenario spells it (`latency.p95`,
    /// `step.submit.latency.max`, `hpa.scale_up_seconds`); `workflow` names the steps.
    pub fn name(&self, workflow: &[Step]) -> String {
        match self {
            Metric::Latency { step, stat } => {
                let stat = match stat {
                    LatencyStat::Percentile(p) => format!("p{p}"),
                    LatencyStat::Max => "max".into(),
                    LatencyStat::Mean => "mean".into(),
                };
                match step {
                    Some(i) => format!("step.{}.latency.{stat}", workflow[*i].name),
                    None => format!("latency.{stat}"),
                }
            }
            Metric::FailureRate => "failure_rate".into(),
            Metric::Dropped => "dropped".into(),
            Metric::AchievedRate => "achieved_rate".into(),
            Metric::HpaScaleUpSeconds => "hpa.scale_up_seconds".into(),
            Metric::HpaDecisionSeconds => "hpa.decision_seconds".into(),
            Metric::HpaPeakReplicas => "hpa.peak_replicas".into(),
        }
    }

    /// The unit of the metric's values.
    pub fn unit(&self) -> Unit {
        match self {
            Metric::Latency { .. } => Unit::Ms,
            Metric::FailureRate => Unit::Ratio,
            Metric::Dropped | Metric::HpaPeakReplicas => Unit::Count,
            Metric::AchievedRate => Unit::PerSecond,
            Metric::HpaScaleUpSeconds | Metric::HpaDecisionSeconds => Unit::Seconds,
        }
    }
}

/// Which part of the run an SLO looks at, by intended start time.
#[derive(Debug, Clone, PartialEq)]
pub enum WindowRef {
    Run,
    Range {
        from: Duration,
        to: Option<Duration>,
    },
    Stage(usize),
    Fault(usize),
}
