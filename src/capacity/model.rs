//! The capacity report: one view model (`CapacityReport`, written as capacity.json) that
//! capacity.md, capacity.html, the chart and the terminal table are all rendered from.

use serde::{Deserialize, Serialize};

use super::search::{Conclusion, Phase};
use crate::report::model::PlatformInfo;
use crate::slo::SloResult;

/// Version of capacity.json; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything a capacity search found (capacity.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityReport {
    /// `1`.
    pub schema_version: u32,
    /// Scenario name.
    pub scenario: String,
    /// Scenario description.
    pub description: String,
    /// File the scenario was read from.
    pub scenario_file: String,
    /// slo-check's version.
    pub tool_version: String,
    /// What was driven.
    pub platform: PlatformInfo,
    /// UTC RFC 3339 start of the search.
    pub started_at: String,
    /// Wall-clock length of the whole search, seconds.
    pub duration_s: f64,
    /// `--time-scale` (multiplies warm-up and step lengths).
    pub time_scale: f64,
    /// `constant` or `poisson`.
    pub arrival: String,
    /// Poisson seed of step 1 (`--seed`, else the scenario's, else random); step n draws
    /// from a seed derived from it and n. Null for constant arrivals.
    pub seed: Option<u64>,
    /// The search's settings.
    pub settings: Settings,
    /// How the search ended, with the capacity (`outcome`: `found`, `at_least_to`,
    /// `from_fails`, `step_limit`).
    pub conclusion: Conclusion,
    /// The highest rate at which every applicable SLO held, starts per second.
    pub capacity_per_s: Option<f64>,
    /// Start rate achieved in the capacity step, per second.
    pub achieved_at_capacity_per_s: Option<f64>,
    /// The SLO that bound the capacity: the first one that failed at the next higher rate.
    pub bound_by: Option<BoundBy>,
    /// Names of the SLOs evaluated at each step (the built-in check included).
    pub slos_evaluated: Vec<String>,
    /// SLOs of the scenario that a capacity step cannot evaluate, and why.
    pub not_applicable: Vec<NotApplicable>,
    /// Verdicts that contradicted "a higher rate never passes where a lower one failed".
    pub contradictions: usize,
    /// True when the search was stopped by SIGINT/SIGTERM.
    pub interrupted: bool,
    /// Why the search stopped before it concluded, on an infrastructure failure (the target
    /// unreachable, a generator lost): the conclusion covers only the steps before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Remarks a reader needs (faults not injected, autoscaler not settled, ...).
    pub notes: Vec<String>,
    /// Every step, in the order run.
    pub steps: Vec<StepReport>,
}

/// The search's settings, resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// First rate, per second.
    pub from_per_s: f64,
    /// Highest rate tried, per second.
    pub to_per_s: f64,
    /// Relative precision of the result (0.05 = 5 %).
    pub precision: f64,
    /// Scenario time each rate is held and measured, seconds.
    pub step_s: f64,
    /// Scenario time each rate is held before the measured step, seconds.
    pub warmup_s: f64,
    /// Most steps in all.
    pub max_steps: usize,
    /// Each step's load came from this many generators (`--generators N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generators: Option<u32>,
}

/// The SLO that set the capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoundBy {
    /// The SLO's name.
    pub slo: String,
    /// Its metric (`latency.p95`, `failure_rate`, `load_delivered`, ...).
    pub metric: String,
    /// The rate at which it failed, per second.
    pub failed_at_per_s: f64,
    /// What it observed there, in `unit`.
    pub observed: Option<f64>,
    /// Its threshold, in `unit`.
    pub threshold: f64,
    /// `ms`, `ratio`, `per_s`, ...
    pub unit: crate::scenario::Unit,
}

/// An SLO a capacity step does not evaluate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotApplicable {
    pub name: String,
    pub metric: String,
    /// Why it is skipped.
    pub why: String,
}

/// One rate held for one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// 1-based, in the order run.
    pub index: usize,
    /// Why it ran.
    pub phase: Phase,
    /// Scheduled start rate, per second.
    pub target_rate_per_s: f64,
    /// Starts actually sent within the measured step, per second.
    pub achieved_rate_per_s: f64,
    /// Every applicable SLO held.
    pub passed: bool,
    /// Workflow latency over the measured step (succeeded workflows), ms.
    pub latency_ms: Percentiles,
    /// failed / (succeeded + failed) in the step; null when nothing finished.
    pub failure_rate: Option<f64>,
    /// Workflows by intended start within the step.
    pub counts: StepCounts,
    /// Replica counts at the step's end, when the platform observes them.
    pub replicas: Option<StepReplicas>,
    /// Wall-clock length of the step (warm-up, step and draining), seconds.
    pub duration_s: f64,
    /// Names of the SLOs that did not hold.
    pub failed_slos: Vec<String>,
    /// Every SLO evaluated over the step's window.
    pub slos: Vec<SloResult>,
}

/// p50/p95/p99 in ms; null without a succeeded workflow.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// Counts over a measured step.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct StepCounts {
    pub scheduled: u64,
    pub started: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub dropped: u64,
}

/// Replicas over a measured step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepReplicas {
    /// Ready replicas at the step's end.
    pub ready: u32,
    /// Desired replicas at the step's end.
    pub desired: u32,
    /// Fewest and most ready replicas during the measured step.
    pub min_ready: u32,
    pub max_ready: u32,
    /// The autoscaler had settled: desired == ready at the step's end and no change of
    /// desired replicas during the measured step.
    pub settled: bool,
}

impl CapacityReport {
    /// The exit code: 0 a capacity was found, 1 even `--from` fails.
    pub fn found(&self) -> bool {
        self.capacity_per_s.is_some()
    }

    /// The steps sorted by target rate: the latency-vs-throughput curve.
    pub fn curve(&self) -> Vec<&StepReport> {
        let mut v: Vec<&StepReport> = self.steps.iter().collect();
        v.sort_by(|a, b| a.target_rate_per_s.total_cmp(&b.target_rate_per_s));
        v
    }

    /// The last step run at the capacity rate that passed.
    pub fn capacity_step(&self) -> Option<&StepReport> {
        let cap = self.capacity_per_s?;
        self.steps
            .iter()
            .rev()
            .find(|s| s.passed && s.target_rate_per_s == cap)
    }
}
