//! The checked settings of a capacity search, and their defaults.

use std::path::PathBuf;
use std::time::Duration;

use super::search::SearchSettings;
use crate::platform::Choice;
use crate::scenario::Scenario;

/// `--to` when not given: this many times `--from`.
pub const DEFAULT_TO_FACTOR: f64 = 100.0;
/// Coarsest and finest `--precision` accepted.
pub const PRECISION_RANGE: (f64, f64) = (0.005, 0.5);
/// Warm-up default on a platform that autoscales: several HPA sync periods (15 s each)
/// plus a replica's start-up, so the replica count can settle before the measurement.
pub const AUTOSCALE_WARMUP: &str = "60s";
/// Warm-up default elsewhere.
pub const WARMUP: &str = "5s";

/// The checked configuration of a capacity search.
#[derive(Debug, Clone)]
pub struct CapacityConfig {
    pub scenario: Scenario,
    pub search: SearchSettings,
    pub warmup: Duration,
    pub step: Duration,
    pub time_scale: f64,
    /// Poisson seed of the first step (see `StepShape::seed`).
    pub seed: u64,
    /// Where the system under test comes from.
    pub platform: Choice,
    pub out: Option<PathBuf>,
    pub quiet: bool,
    pub json: bool,
    /// Where the search is recorded (`--history`), with its labels.
    pub history: crate::history::Settings,
    /// `--generators N`: each step's load from N generator processes.
    pub generators: Option<StepGenerators>,
}

/// The generators of every step: processes of `exe` run with `args` (`generate --scenario
/// FILE`, the time scale, seed, step length and warm-up), to which each step adds
/// `--capacity-step INDEX:RATE`, its shard, target and listen address.
#[derive(Debug, Clone)]
pub struct StepGenerators {
    pub count: u32,
    pub exe: std::path::PathBuf,
    pub args: Vec<String>,
}
