//! `slo-check run` (and `slo-check --scenario NAME`): the flags checked into a
//! `RunConfig`, one run, its ending as the exit code (0 pass, 1 an SLO failed or a
//! regression, 2 bad input, 3 infrastructure, 130 interrupted).

use crate::cli::RunArgs;
use crate::exit;
use crate::report::baseline::Baseline;
use crate::run::{self, RunConfig};

/// Run the command.
pub fn run(args: &RunArgs) -> u8 {
    match configure(args) {
        Ok(cfg) => exit::block_on(async { super::conclude(run::run(cfg).await) }),
        Err(e) => super::usage(&e),
    }
}

/// Resolve the scenario and flags into a `RunConfig`; errors are usage errors.
fn configure(args: &RunArgs) -> Result<RunConfig, String> {
    let mut plan = super::load_plan(&args.scenario)?;
    if let Some(bytes) = args.max_response_bytes {
        plan.scenario.load.max_response_bytes = bytes;
    }
    let grace = crate::units::parse_duration(&args.grace).map_err(|e| format!("--grace: {e}"))?;
    let platform = super::platform_choice(&args.target)?;
    let prometheus = crate::prom::PromSettings::resolve(
        args.prometheus.as_deref(),
        args.prometheus_sd_file.clone(),
        &plan,
        args.quiet,
    )?;
    Ok(RunConfig {
        prometheus,
        plan,
        platform,
        out: args.out.clone(),
        quiet: args.quiet,
        json: args.json,
        grace,
        baseline: Baseline::from_args(
            args.baseline.baseline.as_deref(),
            &args.baseline.max_regression,
        )?,
    })
}
