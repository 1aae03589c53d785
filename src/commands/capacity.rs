//! `slo-check capacity`: the flags checked into a `CapacityConfig` (errors name the
//! flag and say what would be right), the search, and its ending as the exit code
//! (0 a capacity was found, 1 none, 2 bad input, 3 infrastructure, 130 interrupted).

use std::time::Duration;

use crate::capacity::config::{
    AUTOSCALE_WARMUP, CapacityConfig, DEFAULT_TO_FACTOR, PRECISION_RANGE, StepGenerators, WARMUP,
};
use crate::capacity::search::SearchSettings;
use crate::cli::{CapacityArgs, PlatformKind};
use crate::exit;
use crate::scenario::Scenario;
use crate::units::{Quantity, parse_duration, parse_ratio};

/// Run the command.
pub fn run(args: &CapacityArgs) -> u8 {
    match configure(args) {
        Ok(cfg) => exit::block_on(async { super::conclude(crate::capacity::run(cfg).await) }),
        Err(e) => super::usage(&e),
    }
}

/// Check the flags against the scenario; every error is a usage error (exit 2).
fn configure(args: &CapacityArgs) -> Result<CapacityConfig, String> {
    let sc = super::load_scenario(&args.scenario)?;
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
            .unwrap_or(if autoscales { AUTOSCALE_WARMUP } else { WARMUP });
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
    let platform = super::platform_choice(&args.target)?;
    let seed = args
        .scenario
        .seed
        .or(sc.load.seed)
        .unwrap_or_else(clock_seed);
    let generators = match args.generators {
        None => None,
        Some(_) if args.target.platform == PlatformKind::Kube => {
            return Err(
                "--generators: capacity runs its generators as processes on this machine (--platform local or url); on --platform kube, check the rates you want with `run --generators N`".into(),
            );
        }
        Some(count) => {
            let source = std::fs::canonicalize(&sc.source).map_err(|e| {
                format!(
                    "--generators: the scenario file {}: {e}",
                    sc.source.display()
                )
            })?;
            let exe = std::env::current_exe().map_err(|e| {
                format!("--generators: cannot find this executable to start them: {e}")
            })?;
            Some(StepGenerators {
                count,
                exe,
                args: vec![
                    "generate".into(),
                    "--scenario".into(),
                    source.display().to_string(),
                    "--time-scale".into(),
                    ts.to_string(),
                    "--seed".into(),
                    seed.to_string(),
                    "--step-for".into(),
                    args.step_for.clone(),
                    "--warmup".into(),
                    warmup_text.to_string(),
                ],
            })
        }
    };
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
        seed,
        generators,
        platform,
        out: args.out.clone(),
        quiet: args.quiet,
        json: args.json,
        scenario: sc,
        history: crate::history::Settings {
            location: crate::history::resolve(args.history.history.as_deref(), args.out.is_none())?,
            labels: crate::history::parse_labels(&args.history.labels)?,
            ..Default::default()
        },
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
