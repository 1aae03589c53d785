//! The load phase of one plan against a target that is up: the engine, the recorder
//! (on a thread of its own), the fault timeline and the interrupt watch, until every
//! workflow has ended. Shared by `run` (one plan) and `capacity` (one plan per step on
//! a platform that stays up); the platform is neither brought up nor taken down here.

mod aggregate;
pub mod canary;
pub mod remote;
pub mod signals;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc::unbounded_channel;
use tokio::time::Instant;

use crate::load::engine::{self, Control, Issued, Live, Pacing};
use crate::load::schedule::Shard;
use crate::plan::Plan;
use crate::report::terminal::Progress;
use crate::stats::{Recorder, RunStats};
use crate::target::Target;
use crate::workflow::WorkflowRunner;
use crate::workflow::http::{Endpoint, HttpClient};

/// What the load phase produced.
pub struct PhaseOutcome {
    pub stats: RunStats,
    pub interrupted: bool,
    /// The run's zero: intended start offsets count from here.
    pub zero: Instant,
    /// What the fault timeline applied and reverted, per scenario fault.
    pub fault_activity: Vec<crate::fault_timeline::FaultActivity>,
    /// What the canary controller did, when the plan has a canary and the target can
    /// route between its subsets.
    pub canary: Option<crate::report::canary::CanaryActivity>,
    /// A distributed run's generators (empty when this process issued the load).
    pub generators: Vec<crate::report::model::GeneratorReport>,
}

/// How `execute_plan` behaves around the load.
#[derive(Clone)]
pub struct PhaseOptions {
    /// No progress line, no fault log.
    pub quiet: bool,
    /// After an interrupt, how long in-flight workflows may still finish.
    pub grace: Duration,
    /// Issue the load from several generators (`--generators N`) instead of this process.
    pub generators: Option<remote::Distributed>,
}

/// The workflow runner of `plan` against `base_url` (an `http://host:port` URL).
pub fn runner(plan: &Plan, base_url: &str) -> Result<WorkflowRunner, String> {
    let load = &plan.scenario.load;
    let endpoint = Endpoint::of(base_url)
        .ok_or_else(|| format!("{base_url} is not an http://HOST:PORT URL"))?;
    let client = HttpClient::new(
        endpoint,
        load.max_in_flight as usize,
        load.max_response_bytes,
    );
    let mut runner = WorkflowRunner::new(
        client,
        plan.scenario.workflow.clone(),
        plan.scenario.capture_names.len(),
        plan.env_values.clone(),
        load.request_timeout,
    );
    if let Some(c) = &plan.scenario.canary {
        runner = runner.with_versions(c.versions.clone());
    }
    Ok(runner)
}

/// The load phase of one plan with its own interrupt handling (`slo-check capacity`
/// runs one plan per step on a platform that stays up).
pub async fn execute_plan_with_signals(
    plan: &Plan,
    target: &Target,
    opts: PhaseOptions,
) -> PhaseOutcome {
    let (control, interrupted, signals) = signals::watch_interrupts(opts.grace);
    let mut outcome = execute_plan(plan, target, opts, control, None).await;
    signals.abort();
    outcome.interrupted |= interrupted.load(Ordering::SeqCst);
    outcome
}

/// The load phase of `plan` against `target`: engine, recorder and faults, until every
/// workflow has ended; `control` stops it early; `metrics` is fed live. The platform
/// stays up.
pub async fn execute_plan(
    plan: &Plan,
    target: &Target,
    opts: PhaseOptions,
    control: Control,
    metrics: Option<crate::live::Feed>,
) -> PhaseOutcome {
    let load = &plan.scenario.load;
    // A distributed run: every generator launched and checked before the run's zero.
    let fleet = match &opts.generators {
        Some(d) => {
            let fingerprint = remote::fingerprint(plan);
            let stop = &control.stop_starts;
            let fleet = remote::launch(d, &fingerprint, &target.base_url, stop).await;
            if !opts.quiet {
                eprintln!(
                    "generators: {} of {} ready ({})",
                    fleet.ready(),
                    d.count,
                    d.launcher.describe()
                );
            }
            for line in fleet.lost() {
                eprintln!("error: {line}");
            }
            Some(fleet)
        }
        None => None,
    };
    let live = Arc::new(Live::default());
    let board = remote::Board::default();
    let (tx, rx) = unbounded_channel();
    // A short lead time so the first starts are not late because of set-up work (for
    // generators elsewhere, time for the start to reach each of them).
    let lead = if fleet.is_some() { 500 } else { 20 };
    let zero = Instant::now() + Duration::from_millis(lead);
    let recorder = Recorder::new(
        plan.windows.clone(),
        plan.scenario.workflow.len(),
        plan.max_workflow.as_micros() as u64,
    );
    let progress = Progress::new(plan.schedule.duration(), !opts.quiet);
    // A canary: the controller sets the first weight now, before the load starts, and
    // judges each step from the aggregator's snapshot at its end.
    let mut feed = None;
    let controller = match (&plan.scenario.canary, &plan.canary, &target.split) {
        (Some(c), Some(steps), Some(split)) => {
            let (tx, snapshots) = unbounded_channel();
            feed = Some(aggregate::StepFeed {
                steps: steps.steps.iter().map(|s| (s.to, s.windows)).collect(),
                tx,
            });
            let controller = canary::Controller {
                split: split.clone(),
                canary: c.clone(),
                plan: steps.clone(),
                workflow: plan.scenario.workflow.clone(),
                zero,
            };
            Some(tokio::spawn(controller.run(snapshots)))
        }
        _ => None,
    };
    let aggregator = aggregate::behind_the_load(aggregate::aggregate(
        rx,
        recorder,
        zero,
        aggregate::Consumers {
            progress,
            metrics,
            board: board.clone(),
        },
        live.clone(),
        plan.clone(),
        feed,
    ));
    let faults = tokio::spawn(crate::fault_timeline::run_timeline(
        target.faults.clone(),
        plan.scenario.faults.clone(),
        plan.fault_windows.clone(),
        zero,
        control.stop_starts.clone(),
    ));
    let (issued, generators) = match fleet {
        Some(fleet) => {
            let (issued, rest) = fleet.drive(zero, tx, live, board, control.clone()).await;
            (issued, Some(rest))
        }
        None => {
            // Every platform hands back an `http://host:port` base URL (`--target-url` is
            // checked in platform::url), so this cannot fail on user input.
            let runner =
                Arc::new(runner(plan, &target.base_url).expect("platforms give http:// base URLs"));
            let pacing = Pacing {
                max_in_flight: load.max_in_flight,
                slack: load.pacing_slack,
                shard: Shard::WHOLE,
            };
            let issued = engine::drive(
                &plan.schedule,
                pacing,
                runner,
                tx,
                live,
                control.clone(),
                zero,
            )
            .await;
            (issued, None)
        }
    };
    // The schedule is over (or stopped): faults end with it, whatever their windows say.
    control.stop_starts.cancel();
    let timeline = faults.await.unwrap_or_default();
    for line in &timeline.log {
        // A fault that could not be applied or reverted, or was reverted late, is shown
        // even with --quiet.
        if !opts.quiet || line.starts_with("error:") || line.starts_with("warning:") {
            eprintln!("{line}");
        }
    }
    let stats = aggregator.await;
    let generators = match generators {
        Some(rest) => rest.await.unwrap_or_default(),
        None => Vec::new(),
    };
    let canary = match controller {
        Some(task) => task.await.ok(),
        None => None,
    };
    for line in canary.iter().flat_map(|c| &c.errors) {
        eprintln!("{line}");
    }
    PhaseOutcome {
        canary,
        stats,
        interrupted: issued == Issued::Stopped,
        zero,
        fault_activity: timeline.activity,
        generators,
    }
}
