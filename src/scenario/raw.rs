//! The scenario file as written: plain serde types with `deny_unknown_fields`,
//! locations kept (`Spanned`) where validation needs to point back at the YAML.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::units::{Dur, Percent, Quantity};

/// A load-test scenario: what to run, how hard, what may break, what must hold.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    /// Short name; reports go to reports/<name>/.
    pub name: String,
    /// One line saying what the scenario checks.
    #[serde(default)]
    pub description: Option<String>,
    /// Names of the platform objects the scenario acts on (Kubernetes platform).
    #[serde(default)]
    pub platform: Option<RawPlatformRefs>,
    /// Prometheus to query for PromQL SLOs (overridden by --prometheus).
    #[serde(default)]
    pub prometheus: Option<RawPrometheus>,
    /// The steps of one workflow, run in order for every arrival.
    #[schemars(with = "Vec<RawStep>")]
    pub workflow: Vec<Spanned<RawStep>>,
    /// The arrival schedule (open model).
    #[schemars(with = "RawLoad")]
    pub load: Spanned<RawLoad>,
    /// Istio-style faults injected during time windows.
    #[serde(default)]
    #[schemars(with = "Vec<RawFault>")]
    pub faults: Vec<Spanned<RawFault>>,
    /// The service-level objectives the verdict is made of.
    #[serde(default)]
    #[schemars(with = "Vec<RawSlo>")]
    pub slos: Vec<Spanned<RawSlo>>,
    /// Built-in checks (on by default).
    #[serde(default)]
    pub checks: RawChecks,
    /// Progressive delivery: shift traffic to a canary subset step by step, judge each
    /// step by its analysis SLOs, and roll back on a failing step.
    #[serde(default)]
    #[schemars(with = "Option<RawCanary>")]
    pub canary: Option<Spanned<RawCanary>>,
}

/// A canary rollout under load: two subsets of the agent (as in the DestinationRule),
/// the traffic steps, the analysis SLOs judged at the end of every step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCanary {
    /// The stable subset: `{ version: stable }`.
    pub stable: RawSubset,
    /// The canary subset: `{ version: canary, local: {...} }`.
    pub canary: RawSubset,
    /// Requests carrying all of these headers (exact values) always go to the canary,
    /// as an Istio `match: [{ headers: ... }]` route before the weighted one.
    #[serde(default)]
    pub header: BTreeMap<String, String>,
    /// The traffic steps: the canary's weight in percent (rising, 0 to 100) and how long it holds.
    #[schemars(with = "Vec<RawCanaryStep>")]
    pub steps: Vec<Spanned<RawCanaryStep>>,
    /// SLOs judged at the end of every step over the canary subset's workflows that
    /// started in the step (`metric:` latency.*, step.<name>.latency.* or failure_rate).
    #[serde(default)]
    #[schemars(with = "Vec<RawSlo>")]
    pub analysis: Vec<Spanned<RawSlo>>,
    /// What a failing step does: `rollback` (weight 0 at once, the rest skipped; default)
    /// or `continue`.
    #[serde(default)]
    pub on_failure: Option<RawOnFailure>,
}

/// One subset of the agent: the `version` label its pods carry (and that its replicas
/// report in the `x-agent-version` response header).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSubset {
    /// The subset's `version` label, as in the DestinationRule.
    pub version: String,
    /// Embedded platform only: how this subset's agent replicas differ from
    /// `platform.local` (default: identical).
    #[serde(default)]
    #[schemars(with = "Option<RawSubsetLocal>")]
    pub local: Option<Spanned<RawSubsetLocal>>,
}

/// How a subset's replicas differ from `platform.local` on the embedded platform.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSubsetLocal {
    /// Fraction of this subset's workflows that end `failed`: `3%` or `0.03` (default: `platform.local.fail_ratio`).
    #[serde(default)]
    pub failure_rate: Option<Quantity>,
    /// Multiplies this subset's LLM and tool-call latencies (median and p99; default 1).
    #[serde(default)]
    pub latency_factor: Option<f64>,
    /// Replicas of this subset (default: the stable subset's initial replicas).
    #[serde(default)]
    pub replicas: Option<u32>,
    /// Run an emulated HPA for this subset too (default: true for stable, false for canary).
    #[serde(default)]
    pub autoscale: Option<bool>,
}

/// One traffic step of a canary rollout.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCanaryStep {
    /// The canary's share of the traffic, in percent (0 to 100, rising from step to step).
    pub weight: i64,
    /// How long the step holds before it is judged (scaled by --time-scale).
    #[serde(default, rename = "for")]
    pub duration: Option<Dur>,
}

/// What a failing canary step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename = "OnFailure", rename_all = "lowercase")]
pub enum RawOnFailure {
    /// Send every request to stable at once and skip the remaining steps.
    Rollback,
    /// Record the failure and go on to the next step.
    Continue,
}

/// Kubernetes object names of the platform under test.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPlatformRefs {
    /// Namespace holding the objects.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The agent Deployment.
    #[serde(default)]
    pub deployment: Option<String>,
    /// The HorizontalPodAutoscaler watched for scale-up timing.
    #[serde(default)]
    pub hpa: Option<String>,
    /// The Service the load is sent to.
    #[serde(default)]
    pub service: Option<String>,
    /// The Istio VirtualService patched to inject faults.
    #[serde(default)]
    pub virtual_service: Option<String>,
    /// Settings of the embedded platform (`--platform local`): replicas, autoscaling and the
    /// simulated agent service. Ignored by the other platforms.
    #[serde(default)]
    #[schemars(with = "Option<RawLocalPlatform>")]
    pub local: Option<Spanned<RawLocalPlatform>>,
}

/// The embedded platform: agent replicas on loopback behind a least-connections balancer,
/// scaled by an emulated HorizontalPodAutoscaler.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLocalPlatform {
    /// Replicas at start (default: the HPA's minReplicas); with autoscaling it must lie within the HPA's minReplicas..=maxReplicas.
    #[serde(default)]
    pub replicas: Option<u32>,
    /// Run the emulated HPA (default true); false keeps `replicas` fixed.
    #[serde(default)]
    pub autoscale: Option<bool>,
    /// The autoscaling/v2 HorizontalPodAutoscaler manifest to emulate, relative to the current directory (default stack/base/hpa.yaml).
    #[serde(default)]
    pub hpa: Option<String>,
    /// How long a new replica takes to become ready and receive traffic (default 5s; shrinks with --time-scale).
    #[serde(default)]
    pub startup_delay: Option<Dur>,
    /// CPU capacity of each replica in cores, may be fractional (default 1); also its CPU request, so utilisation is a fraction of it.
    #[serde(default)]
    pub cores: Option<f64>,
    /// CPU work of one workflow in core-time (default 20ms).
    #[serde(default)]
    pub cpu_per_workflow: Option<Dur>,
    /// LLM calls per workflow (default 2).
    #[serde(default)]
    pub llm_calls: Option<u32>,
    /// Median latency of one LLM call, lognormal (default 200ms).
    #[serde(default)]
    pub llm_median: Option<Dur>,
    /// 99th-percentile latency of one LLM call, at least llm_median (default 1s).
    #[serde(default)]
    pub llm_p99: Option<Dur>,
    /// Tool calls per workflow (default 1).
    #[serde(default)]
    pub tool_calls: Option<u32>,
    /// Median latency of one tool call, lognormal (default 50ms).
    #[serde(default)]
    pub tool_median: Option<Dur>,
    /// 99th-percentile latency of one tool call, at least tool_median (default 200ms).
    #[serde(default)]
    pub tool_p99: Option<Dur>,
    /// Most workflows active at once per replica; a submission beyond it answers 503 (default 100).
    #[serde(default)]
    pub max_concurrent_workflows: Option<u64>,
    /// Fraction of workflows that end `failed`: `1%` or `0.01` (default 0).
    #[serde(default)]
    pub fail_ratio: Option<Quantity>,
    /// Seed of the replicas' latency and failure draws and of fault decisions (default: random).
    #[serde(default)]
    pub seed: Option<u64>,
}

/// Where Prometheus is, and how long to let it scrape once more before querying.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPrometheus {
    /// Base URL, e.g. http://127.0.0.1:9090 (overridden by --prometheus).
    #[serde(default)]
    pub url: Option<String>,
    /// Wait this long after the load before querying, so one more scrape and rule evaluation
    /// see the run's last requests: at least the scrape interval plus the evaluation
    /// interval (default 15s; not scaled by --time-scale).
    #[serde(default)]
    pub settle: Option<Dur>,
}

/// One HTTP step of a workflow.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// Step name, unique in the workflow; used in `step.<name>.latency.p95`.
    pub name: String,
    /// The request to send; `${capture}`, `${seq}` and `${env:NAME}` expand in path, headers and body.
    pub request: RawRequest,
    /// What the response must look like to count as success.
    #[serde(default)]
    pub expect: Option<RawExpect>,
    /// Values to capture from the JSON response: `{ name: /json/pointer }`.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
    /// Repeat the request until a condition holds.
    #[serde(default)]
    pub poll: Option<RawPoll>,
}

/// An HTTP request.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRequest {
    /// GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS.
    pub method: String,
    /// Path (and query) appended to the target's base URL; starts with `/`.
    pub path: String,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body (sets content-type: application/json).
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub json: Option<serde_json::Value>,
    /// A raw text body.
    #[serde(default)]
    pub body: Option<String>,
}

/// Success conditions for a response.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    /// Accepted status codes (default: any 2xx).
    #[serde(default)]
    pub status: Vec<u16>,
}

/// Poll a request until a JSON field has a value.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPoll {
    /// Stop polling when the response's JSON at `pointer` equals `equals`.
    pub until: RawCondition,
    /// Give up (a failure of kind `expectation`) when this condition holds.
    #[serde(default)]
    pub fail_if: Option<RawCondition>,
    /// Interval between poll ticks (ticks are fixed; a slow response does not shift them).
    pub every: Dur,
    /// Give up after this long (a failure of kind `poll_timeout`).
    pub timeout: Dur,
}

/// A JSON pointer and the value it must hold.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCondition {
    /// RFC 6901 JSON pointer, e.g. /status.
    pub pointer: String,
    /// The value (string, number, bool or null) to compare with.
    #[schemars(with = "serde_json::Value")]
    pub equals: serde_json::Value,
}

/// The arrival schedule.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLoad {
    /// `constant` (evenly spaced starts) or `poisson` (exponential gaps).
    pub arrival: RawArrival,
    /// Seed for the Poisson schedule: same seed, same schedule (default: random, recorded in run.json).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Stages run one after another.
    #[schemars(with = "Vec<RawStage>")]
    pub stages: Vec<Spanned<RawStage>>,
    /// Most workflows in flight at once; a start beyond it is counted as dropped (default 10000).
    #[serde(default)]
    pub max_in_flight: Option<u64>,
    /// Per-request timeout (default 10s); a timed-out request is a failure of kind `timeout`.
    #[serde(default)]
    pub request_timeout: Option<Dur>,
    /// Most bytes of a response body read (default 1 MiB); a larger body is a failure of kind `other`.
    #[serde(default)]
    pub max_response_bytes: Option<u64>,
    /// How late a start may be issued so that starts due close together share one
    /// wake-up of the load worker (default 0.2ms; 0s wakes for every start). The lag
    /// is recorded and counted in latency, which runs from the intended start.
    #[serde(default)]
    pub pacing_slack: Option<Dur>,
}

/// How workflow starts are spaced.
// Named `Arrival` in serde's messages and the JSON Schema, like the validated
// `model::Arrival` that validation turns it into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename = "Arrival", rename_all = "lowercase")]
pub enum RawArrival {
    /// Evenly spaced at the stage's rate.
    Constant,
    /// A Poisson process with the stage's rate.
    Poisson,
}

/// One stage of the schedule: hold a rate, or ramp linearly from the previous rate.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    /// Optional name, usable in `window: { stage: NAME }`.
    #[serde(default)]
    pub name: Option<String>,
    /// How long the stage lasts.
    #[serde(rename = "for")]
    pub duration: Dur,
    /// Workflow starts per second, held for the whole stage.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Rate at the end of a linear ramp from the previous stage's rate (0 before the first stage).
    #[serde(default)]
    pub ramp_to: Option<f64>,
}

/// An Istio HTTPFaultInjection applied during a window (delay first, then abort).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFault {
    /// Fault name, usable in `window: { fault: NAME }`.
    pub name: String,
    /// When the fault starts, from the beginning of the run.
    pub start: Dur,
    /// How long it lasts.
    #[serde(rename = "for")]
    pub duration: Dur,
    /// Delay a percentage of requests.
    #[serde(default)]
    pub delay: Option<RawDelay>,
    /// Abort a percentage of requests with an HTTP status.
    #[serde(default)]
    pub abort: Option<RawAbort>,
}

/// Istio's HTTPFaultInjection.Delay.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDelay {
    /// Percentage of requests delayed (0 to 100).
    pub percentage: Percent,
    /// How long they are delayed.
    pub fixed_delay: Dur,
}

/// Istio's HTTPFaultInjection.Abort.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAbort {
    /// Percentage of requests aborted (0 to 100).
    pub percentage: Percent,
    /// Status code returned to aborted requests.
    pub http_status: u16,
}

/// A service-level objective.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSlo {
    /// Name shown in reports and as the JUnit test case.
    pub name: String,
    /// A client metric: latency.pNN, step.<name>.latency.pNN, failure_rate, dropped, achieved_rate, hpa.scale_up_seconds, ...
    #[serde(default)]
    pub metric: Option<String>,
    /// A PromQL expression evaluated on Prometheus at the window's end; `${window}` expands to the window's length, e.g. `[90s]`.
    #[serde(default)]
    pub promql: Option<String>,
    /// An alert name: the SLO checks Prometheus's `ALERTS{alertname=...,alertstate="firing"}` (with `fires_within`, `resolves_within`; no max/min).
    #[serde(default)]
    pub alert: Option<String>,
    /// With `alert`: the alert must fire within this long after the window's start (scaled by --time-scale).
    #[serde(default)]
    pub fires_within: Option<Dur>,
    /// With `alert`: the alert must stop firing within this long after the window's end (scaled by --time-scale; default: not checked).
    #[serde(default)]
    pub resolves_within: Option<Dur>,
    /// The observed value must be at most this.
    #[serde(default)]
    pub max: Option<Quantity>,
    /// The observed value must be at least this.
    #[serde(default)]
    pub min: Option<Quantity>,
    /// Evaluate over part of the run (default: the whole run).
    #[serde(default)]
    pub window: Option<RawWindow>,
    /// Count "no data" as a pass (default false: unknown fails).
    #[serde(default)]
    pub allow_unknown: bool,
    /// With a `canary:` section: judge only the workflows served by this subset
    /// (`canary` or `stable`; latency and failure_rate metrics).
    #[serde(default)]
    pub subset: Option<String>,
}

/// Part of the run, by intended start time: `{from, to}`, `{stage}` or `{fault}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    /// Start of the window, from the beginning of the run.
    #[serde(default)]
    pub from: Option<Dur>,
    /// End of the window (default: end of the schedule).
    #[serde(default)]
    pub to: Option<Dur>,
    /// A stage by number (1 = first) or name.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub stage: Option<StageRef>,
    /// A fault's window, by the fault's name.
    #[serde(default)]
    pub fault: Option<String>,
}

/// A stage by 1-based number or by name.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StageRef {
    Number(u64),
    Name(String),
}

/// Built-in checks.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawChecks {
    /// Fail the run when the load was not delivered (a start dropped, or the achieved start rate more than 1 % off the schedule).
    #[serde(default = "yes")]
    pub load_delivered: bool,
}

impl Default for RawChecks {
    fn default() -> Self {
        RawChecks {
            load_delivered: true,
        }
    }
}

fn yes() -> bool {
    true
}
