//! The commands layer: one file per subcommand. Only this layer knows clap's
//! structs, builds tokio runtimes and turns outcomes into exit codes; it builds
//! the library's configuration (a `platform::Choice`, a `RunConfig`) from the flags.

pub mod agent;
mod capacity;
mod generate;
mod history;
mod plan;
mod report;
mod run;
mod scenarios;
mod stack;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, PlatformKind, ScenarioArgs, TargetArgs};
use crate::exit::{self, Ending, Failure};
use crate::plan::{Plan, PlanOptions};
use crate::platform::Choice;
use crate::platform::kube::KubeRequest;
use crate::scenario::{self, Scenario};

/// Parse the command line, run the command, exit with its code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Some(Command::Validate(args)) => scenarios::validate(&args),
        Some(Command::List(args)) => scenarios::list(&args),
        Some(Command::Schema) => scenarios::schema(),
        Some(Command::Agent(args)) => agent::run(args),
        Some(Command::Plan(args)) => plan::run(&args),
        Some(Command::Run(args)) => run::run(&args),
        Some(Command::Report(args)) => report::run(&args),
        Some(Command::Capacity(args)) => capacity::run(&args),
        Some(Command::History(args)) => history::run(&args),
        Some(Command::Stack(args)) => stack::run(&args),
        Some(Command::Generate(args)) => generate::run(&args),
        None => run::run(&cli.run),
    };
    ExitCode::from(code)
}

/// The scenario `--scenario` names, loaded and validated.
fn load_scenario(args: &ScenarioArgs) -> Result<Scenario, String> {
    let name = args.scenario.as_deref().ok_or(
        "--scenario NAME is required (try `slo-check list` to see the scenarios, or `slo-check --help`)",
    )?;
    let file = scenario::resolve(name, &args.dir.scenarios_dir)?;
    scenario::load(&file).map_err(|e| e.to_string())
}

/// The plan of the scenario `--scenario` names, with `--time-scale` and `--seed`.
fn load_plan(args: &ScenarioArgs) -> Result<Plan, String> {
    Plan::new(
        load_scenario(args)?,
        PlanOptions {
            time_scale: args.time_scale,
            seed: args.seed,
        },
    )
}

/// The platform the target flags choose; flag combinations that cannot work together
/// are usage errors.
fn platform_choice(flags: &TargetArgs) -> Result<Choice, String> {
    flags.check()?;
    Ok(match flags.platform {
        PlatformKind::Local => Choice::Local,
        PlatformKind::Url => Choice::Url(flags.target_url.clone()),
        PlatformKind::Kube => Choice::Kube(KubeRequest {
            target_url: flags.target_url.clone(),
            keep: flags.keep,
            allow_faults: flags.allow_faults,
            ..kube_request(&flags.kube)
        }),
    })
}

/// Which cluster, namespace and stack the kube flags name.
fn kube_request(k: &crate::cli::KubeArgs) -> KubeRequest {
    KubeRequest {
        context: k.context.clone(),
        namespace: k.namespace.clone(),
        stack: k.stack.clone(),
        overlay: k.overlay.clone(),
        rollout_timeout: k.rollout_timeout.clone(),
        ingress: k.ingress.clone(),
        ..KubeRequest::default()
    }
}

/// Print what ended a command and give its exit code.
fn conclude(result: Result<Ending, Failure>) -> u8 {
    match result {
        Ok(ending) => {
            for problem in &ending.problems {
                eprintln!("error: {problem}");
            }
            ending.code()
        }
        Err(failure) => {
            eprintln!("error: {failure}");
            failure.class.code()
        }
    }
}

/// A usage error: printed, exit 2.
fn usage(message: &str) -> u8 {
    eprintln!("error: {message}");
    exit::USAGE
}
