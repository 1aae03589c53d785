//! Dispatch: runs the parsed command and maps its outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, ListArgs, ValidateArgs};
use crate::scenario;

/// Exit codes are part of the product.
pub mod exit {
    /// Every SLO holds.
    pub const PASS: u8 = 0;
    /// An SLO failed (or a regression was found).
    pub const FAIL: u8 = 1;
    /// Bad input or usage.
    pub const USAGE: u8 = 2;
    /// Infrastructure error: the target could not be reached, a report could not be written.
    pub const INFRA: u8 = 3;
    /// Interrupted by SIGINT/SIGTERM; a partial report was written.
    pub const INTERRUPTED: u8 = 130;
}

/// Run a command's async body on a multi-thread runtime and return its exit code (3 when
/// no runtime can be started).
pub fn block_on(body: impl std::future::Future<Output = u8>) -> u8 {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(body),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            exit::INFRA
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Some(Command::Validate(args)) => validate(&args),
        Some(Command::List(args)) => list(&args),
        Some(Command::Schema) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&scenario::json_schema()).unwrap_or_default()
            );
            exit::PASS
        }
        Some(Command::Agent(args)) => return run_agent(args),
        Some(Command::Plan(args)) => show_plan(&args),
        Some(Command::Run(args)) => crate::run::run(&args),
        Some(Command::Report(args)) => crate::report::command::run(&args),
        Some(Command::Capacity(args)) => crate::capacity::run(&args),
        Some(Command::Stack(args)) => crate::platform::kube::stack::command(&args),
        None => crate::run::run(&cli.run),
    };
    ExitCode::from(code)
}

/// `slo-check agent`: 0 after a clean shutdown, 2 on bad flags, 3 if --listen cannot be bound.
fn run_agent(args: crate::agent::AgentArgs) -> ExitCode {
    let result = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(crate::agent::run_cli(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            crate::agent::exit_code(&error)
        }
    }
}

fn validate(args: &ValidateArgs) -> u8 {
    let paths = if args.paths.is_empty() {
        vec![args.dir.scenarios_dir.clone()]
    } else {
        args.paths.clone()
    };
    let mut files = Vec::new();
    for p in &paths {
        if p.is_dir() {
            match scenario::list_files(p) {
                Ok(found) if found.is_empty() => {
                    eprintln!(
                        "error: {}: no .yaml or .yml files in this directory",
                        p.display()
                    );
                    return exit::USAGE;
                }
                Ok(found) => files.extend(found),
                Err(e) => {
                    eprintln!("error: {}: cannot read directory: {e}", p.display());
                    return exit::USAGE;
                }
            }
        } else {
            files.push(p.clone());
        }
    }
    let mut bad = 0;
    for f in &files {
        match scenario::load(f) {
            Ok(s) => println!(
                "ok    {} ({}: {} steps, {} SLOs)",
                f.display(),
                s.name,
                s.workflow.len(),
                s.slos.len()
            ),
            Err(errors) => {
                bad += 1;
                for e in &errors.0 {
                    eprintln!("error: {e}");
                }
            }
        }
    }
    if bad > 0 {
        eprintln!("{bad} of {} scenario files are invalid", files.len());
        exit::USAGE
    } else {
        exit::PASS
    }
}

fn list(args: &ListArgs) -> u8 {
    let files = match scenario::list_files(&args.dir.scenarios_dir) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "error: --scenarios-dir {}: {e}",
                args.dir.scenarios_dir.display()
            );
            return exit::USAGE;
        }
    };
    let mut rows = Vec::new();
    for f in &files {
        match scenario::load(f) {
            Ok(s) => rows.push((s.name, s.description)),
            Err(_) => rows.push((
                f.file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                "(invalid: run `slo-check validate` for details)".into(),
            )),
        }
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    for (name, desc) in rows {
        println!("{name:width$}  {desc}");
    }
    exit::PASS
}

/// `slo-check plan`: what a run would do, without doing it.
fn show_plan(args: &crate::cli::PlanArgs) -> u8 {
    use crate::plan::{Plan, PlanOptions};
    use crate::units::format_duration;
    let built = args
        .scenario
        .scenario
        .as_deref()
        .ok_or_else(|| "--scenario NAME is required".to_string())
        .and_then(|name| scenario::resolve(name, &args.scenario.dir.scenarios_dir))
        .and_then(|file| scenario::load(&file).map_err(|e| e.to_string()))
        .and_then(|sc| {
            Plan::new(
                sc,
                PlanOptions {
                    time_scale: args.scenario.time_scale,
                    seed: args.scenario.seed,
                },
            )
        });
    let plan = match built {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let sc = &plan.scenario;
    println!("scenario   {} ({})", sc.name, sc.source.display());
    println!(
        "arrival    {:?}{}; time scale {}",
        sc.load.arrival,
        if sc.load.arrival == scenario::Arrival::Poisson {
            format!(" (seed {})", plan.schedule.seed)
        } else {
            String::new()
        },
        plan.time_scale
    );
    println!(
        "schedule   {} starts over {} (mean {:.2}/s); max in flight {}; pacing slack {}",
        plan.scheduled,
        format_duration(plan.schedule.duration()),
        plan.schedule.mean_rate_per_s(),
        sc.load.max_in_flight,
        format_duration(sc.load.pacing_slack)
    );
    for (i, seg) in plan.schedule.segments.iter().enumerate() {
        println!(
            "  stage {}  {:>8} → {:>8}  rate {} → {}/s",
            i + 1,
            format_duration(std::time::Duration::from_secs_f64(seg.start_s)),
            format_duration(std::time::Duration::from_secs_f64(
                seg.start_s + seg.duration_s
            )),
            seg.start_rate_per_s,
            seg.end_rate_per_s
        );
    }
    for (f, (from, to)) in sc.faults.iter().zip(&plan.fault_windows) {
        println!(
            "fault      {}: {} → {}",
            f.name,
            format_duration(*from),
            format_duration(*to)
        );
    }
    for (slo, w) in sc.slos.iter().zip(&plan.slo_windows) {
        println!("slo        {} over {}", slo.name, plan.windows[*w].label);
    }
    if args.starts {
        for t in plan.schedule.iter() {
            println!("{t:.6}");
        }
    }
    exit::PASS
}
