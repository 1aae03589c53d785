//! `slo-check capacity` flags: collected raw by clap, then checked into a `CapacityConfig`
//! whose errors name the flag and say what would be right.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::search::SearchSettings;
use crate::cli::{PlatformKind, ScenarioArgs};
use crate::scenario::{self, Scenario};
use crate::units::{Quantity, parse_duration, parse_ratio};

/// `--to` when not given: this many times `--from`.
pub const DEFAULT_TO_FACTOR: f64 = 100.0;
/// Coarsest and finest `--precision` accepted.
const PRECISION_RANGE: (f64, f64) = (0.005, 0.5);
/// Warm-up default on a platform that autoscales: several HPA sync periods (15 s each)
/// plus a replica's start-up, so the replica count can settle before the measurement.
const AUTOSCALE_WARMUP: &str = "60s";

#[derive(Debug, Clone, Args)]
pub struct CapacityArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// First rate tried, workflow starts per second (default: the scenario's first stage's rate).
    #[arg(long, value_name = "RATE")]
    pub from: Option<f64>,
    /// Highest rate tried, per second (default: 100 × --from).
    #[arg(long, value_name = "RATE")]
    pub to: Option<f64>,
    /// How long each rate is held and measured (scenario time; scaled by --time-scale).
    #[arg(long, value_name = "DURATION", default_value = "20s")]
    pub step_for: String,
    /// How long each rate is held before its measured step (default 5s; 60s when the
    /// embedded platform autoscales, so the replica count can settle).
    #[arg(long, value_name = "DURATION")]
    pub warmup: Option<String>,
    /// Relative precision of the result: stop when the lowest failing rate is within this
    /// of the highest passing one.
    #[arg(long, value_name = "PERCENT", default_value = "5%")]
    pub precision: String,
    /// Most steps (rates held) in all; bounds the search's total time.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub max_steps: usize,
    #[command(flatten)]
    pub target: crate::cli::TargetArgs,
    /// Write capacity.json, capacity.md, capacity.html and capacity.svg to DIR instead of
    /// reports/<scenario>/capacity-<UTC time>/.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print nothing but errors (no progress, no per-step lines, no summary).
    #[arg(short, long)]
    pub quiet: bool,
    /// Print capacity.json to stdout (per-step lines and the summary go to stderr).
    #[arg(long)]
    pub json: bool,
}

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
    pub platform: PlatformKind,
    /// Where the system under test comes from, as the flags say.
    pub target: crate::cli::TargetArgs,
    pub out: Option<PathBuf>,
    pub quiet: bool,
    pub json: bool,
}

/// Check the flags against the scenario; every error is a usage error (exit 2).
pub fn configure(args: &CapacityArgs) -> Result<CapacityConfig, String> {
    let name = args
        .scenario
        .scenario
        .as_deref()
        .ok_or("--scenario NAME is required (try `slo-check list` to see the scenarios)")?;
    let file = scenario::resolve(name, &args.scenario.dir.scenarios_dir)?;
    let sc = scenario::load(&file).map_err(|e| e.to_string())?;
    let ts = args.scenario.time_scale;
    if !(ts.is_finite() && ts > 0.0) {
        return Err(format!(
            "--time-scale {ts}: must be a positive number, e.g. 0.1 or 1"
        ));
    }
    let from = match args.from {
        Some(r) => rate("--from", r)?,
        None => first_rate(&sc)?,
    };
    let to = match args.to {
        Some(r) => rate("--to", r)?,
        None => from * DEFAULT_TO_FACTOR,
    };
    if to < from {
        return Err(format!("--to {to}: must be at least --from ({from}/s)"));
    }
    let step = duration("--step-for", &args.step_for)?;
    let autoscales = args.target.platform == PlatformKind::Local && sc.platform.local.autoscale;
    let warmup_text =
        args.warmup
            .as_deref()
            .unwrap_or(if autoscales { AUTOSCALE_WARMUP } else { "5s" });
    let warmup = parse_duration(warmup_text).map_err(|e| format!("--warmup: {e}"))?;
    if from * step.as_secs_f64() * ts < 2.0 {
        return Err(format!(
            "--step-for {}: at --from {from}/s a step would hold fewer than 2 workflow starts (with --time-scale {ts}); lengthen --step-for or raise --from",
            args.step_for
        ));
    }
    let precision = parse_ratio(&Quantity::Text(args.precision.clone()))
        .map_err(|e| format!("--precision: {e}"))?;
    let (lo, hi) = PRECISION_RANGE;
    if !(lo..=hi).contains(&precision) {
        return Err(format!(
            "--precision {}: must lie between {}% and {}% (relative to the capacity)",
            args.precision,
            lo * 100.0,
            hi * 100.0
        ));
    }
    if args.max_steps < 2 {
        return Err("--max-steps: must be at least 2 (one to pass, one to fail)".into());
    }
    args.target.check()?;
    Ok(CapacityConfig {
        search: SearchSettings {
            from_per_s: from,
            to_per_s: to,
            precision,
            growth: 2.0,
            max_steps: args.max_steps,
            confirm: true,
        },
        warmup,
        step,
        time_scale: ts,
        seed: args
            .scenario
            .seed
            .or(sc.load.seed)
            .unwrap_or_else(clock_seed),
        platform: args.target.platform,
        target: args.target.clone(),
        out: args.out.clone(),
        quiet: args.quiet,
        json: args.json,
        scenario: sc,
    })
}

/// A seed from the clock when neither --seed nor the scenario gives one (it is recorded).
fn clock_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ u64::from(std::process::id()).rotate_left(32)
}

fn rate(flag: &str, r: f64) -> Result<f64, String> {
    if r.is_finite() && r > 0.0 {
        Ok(r)
    } else {
        Err(format!(
            "{flag} {r}: must be a rate above 0, in workflow starts per second"
        ))
    }
}

fn duration(flag: &str, text: &str) -> Result<Duration, String> {
    let d = parse_duration(text).map_err(|e| format!("{flag}: {e}"))?;
    if d.is_zero() {
        return Err(format!("{flag} {text}: must be longer than 0, e.g. 20s"));
    }
    Ok(d)
}

/// The scenario's first stage's rate (its end rate if it ramps from 0).
fn first_rate(sc: &Scenario) -> Result<f64, String> {
    let first = sc
        .load
        .stages
        .first()
        .ok_or("the scenario has no load stage")?;
    let r = if first.start_rate_per_s > 0.0 {
        first.start_rate_per_s
    } else {
        first.end_rate_per_s
    };
    if r > 0.0 {
        Ok(r)
    } else {
        Err(format!(
            "{}: the first stage's rate is 0; give --from RATE",
            sc.source.display()
        ))
    }
}
