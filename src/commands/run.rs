//! `slo-check run` (and `slo-check --scenario NAME`): the flags checked into a
//! `RunConfig`, one run, its ending as the exit code (0 pass, 1 an SLO failed or a
//! regression, 2 bad input, 3 infrastructure — the history too —, 130 interrupted).

use crate::cli::RunArgs;
use crate::exit;
use crate::history;
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
    let history_baseline = args
        .baseline
        .baseline
        .as_deref()
        .is_some_and(|b| b == std::path::Path::new("history"));
    let history = history_settings(args, history_baseline)?;
    Ok(RunConfig {
        history,
        prometheus,
        plan,
        platform,
        out: args.out.clone(),
        quiet: args.quiet,
        json: args.json,
        grace,
        baseline: Baseline::from_args(
            args.baseline
                .baseline
                .as_deref()
                .filter(|_| !history_baseline),
            &args.baseline.max_regression,
        )?,
    })
}

/// `--history`, `--label`, `--baseline history`, `--fail-on-regression`.
fn history_settings(args: &RunArgs, detect: bool) -> Result<history::Settings, String> {
    let location = history::resolve(args.history.history.as_deref(), args.out.is_none())?;
    if detect && location.is_none() {
        return Err(
            "--baseline history needs a history to read: give --history URL (with --out there is no default; `off` records none)".into(),
        );
    }
    if args.fail_on_regression && !detect {
        return Err(
            "--fail-on-regression applies to --baseline history (a --baseline OLD.json regression always exits 1)".into(),
        );
    }
    let max_regression =
        crate::report::baseline::parse_max_regression(&args.baseline.max_regression)?;
    Ok(history::Settings {
        location,
        labels: history::parse_labels(&args.history.labels)?,
        detect: detect.then_some(max_regression),
        fail_on_regression: args.fail_on_regression,
    })
}
