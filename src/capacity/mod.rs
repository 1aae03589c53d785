//! `slo-check capacity`: the highest arrival rate at which every applicable SLO of a
//! scenario still holds. One platform stays up for the whole search; each candidate rate
//! is a synthetic one-rate plan (warm-up, then the measured step) run by the same load
//! phase as `slo-check run` (`phase::execute_plan`), and judged on the measured step alone.
//! The rates come from `search` (exponential growth, bisection, confirmation).
//!
//! Files: `config` (the checked settings), `search` (the pure algorithm), `step` (one rate
//! held and judged), `model` (capacity.json), `output` (files and terminal), `chart`
//! (latency vs throughput), `html`, `markdown`, `text` (what they share).

pub mod chart;
pub mod config;
pub mod html;
pub mod markdown;
pub mod model;
pub mod output;
pub mod search;
pub mod step;
pub mod text;

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use self::config::CapacityConfig;
use self::model::{BoundBy, CapacityReport, NotApplicable, Settings, StepReport};
use self::search::{Conclusion, Search};
use self::step::{StepShape, run_step};
use crate::exit::{Ending, Failure};
use crate::phase::PhaseOptions;
use crate::platform::{self, Choice};
use crate::report::model::PlatformInfo;
use crate::target::Target;

/// After an interrupt, how long in-flight workflows of the current step may still finish.
const GRACE: Duration = Duration::from_secs(5);

/// What the loop over steps ended with.
struct Searched {
    search: Search,
    steps: Vec<StepReport>,
    interrupted: bool,
    /// An infrastructure failure that stopped the search.
    infra: Option<String>,
}

/// Run the search on a platform brought up for it (a failure to bring it up, or a
/// scenario no step can be planned from, is the `Err`); the reports are written.
pub async fn run(cfg: CapacityConfig) -> Result<Ending, Failure> {
    let (shape, not_applicable) = shape_of(
        &cfg.scenario,
        (cfg.warmup, cfg.step, cfg.time_scale, cfg.seed),
    );
    let first = shape
        .plan(cfg.search.from_per_s, 1)
        .map_err(Failure::usage)?;
    let up = platform::up(
        &cfg.platform,
        &first,
        cfg.quiet,
        tokio_util::sync::CancellationToken::new(),
    );
    let (target, deployed) = up.await.map_err(|e| Failure {
        class: e.class(),
        message: e.to_string(),
    })?;
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let wall = Instant::now();
    if !cfg.quiet {
        eprintln!("{}", output::preamble(&cfg, &target.description));
    }
    let searched = search_steps(&cfg, &shape, &target).await;
    let left_behind = deployed.down().await;
    let report = build_report(
        &cfg,
        &target,
        (started_at, wall.elapsed().as_secs_f64()),
        not_applicable,
        &searched,
    );
    let mut ending = Ending {
        passed: report.found(),
        problems: Vec::new(),
        interrupted: searched.interrupted,
    };
    if let Err(e) = output::finish(&report, cfg.out.as_deref(), cfg.quiet, cfg.json) {
        ending.problems.push(e);
    }
    if let Some(location) = &cfg.history.location {
        let rec = history_record(&report, &cfg.history.labels, cfg.out.as_deref());
        match crate::history::with_store(location, |s| s.insert(&rec)) {
            Ok(id) if !cfg.quiet => eprintln!("history: recorded as run {id} in {location}"),
            Ok(_) => {}
            Err(e) => ending
                .problems
                .push(format!("{e}; the search was not recorded")),
        }
    }
    ending.problems.extend(searched.infra.clone());
    ending.problems.extend(left_behind);
    Ok(ending)
}

/// The history's record of a search (kind `capacity`): the capacity found and the rate
/// achieved at it are its observations; capacity.json without its steps is the summary.
fn history_record(
    report: &CapacityReport,
    labels: &std::collections::BTreeMap<String, String>,
    out: Option<&std::path::Path>,
) -> crate::history::Record {
    use crate::history::Observation;
    use crate::report::model::Worse;
    use crate::scenario::Unit;
    let per_s = |name: &str, value| Observation {
        name: name.into(),
        unit: Unit::PerSecond,
        worse: Worse::Lower,
        value,
    };
    let mut summary = serde_json::to_value(report).unwrap_or_default();
    if let Some(map) = summary.as_object_mut() {
        map.remove("steps");
    }
    crate::history::Record {
        kind: "capacity".into(),
        scenario: report.scenario.clone(),
        started_at: report.started_at.clone(),
        tool_version: report.tool_version.clone(),
        verdict: if report.found() { "found" } else { "not found" }.into(),
        platform: report.platform.kind.clone(),
        time_scale: report.time_scale,
        duration_s: report.duration_s,
        report_dir: out.map(|d| d.display().to_string()),
        labels: labels.clone(),
        observations: vec![
            per_s("capacity", report.capacity_per_s),
            per_s("achieved at capacity", report.achieved_at_capacity_per_s),
        ],
        summary: summary.to_string(),
        histograms: "{}".into(),
    }
}

/// The generators of step `index` at `rate_per_s`: they plan the same step as
/// `StepShape::plan` does here (`step_plan`).
fn step_generators(
    g: &config::StepGenerators,
    index: usize,
    rate_per_s: f64,
) -> crate::phase::remote::Distributed {
    let mut args = g.args.clone();
    args.extend(["--capacity-step".into(), format!("{index}:{rate_per_s}")]);
    crate::phase::remote::Distributed {
        count: g.count,
        launcher: std::sync::Arc::new(crate::phase::remote::process::ProcessLauncher {
            exe: g.exe.clone(),
            args,
        }),
    }
}

/// The plan of step `index` at `rate_per_s` of a search over `scenario`, as the coordinator
/// makes it: what a generator of `capacity --generators N` runs (`slo-check generate
/// --capacity-step`), so its schedule is the coordinator's.
pub fn step_plan(
    scenario: &crate::scenario::Scenario,
    timing: (Duration, Duration, f64, u64),
    (index, rate_per_s): (usize, f64),
) -> Result<crate::plan::Plan, String> {
    shape_of(scenario, timing).0.plan(rate_per_s, index)
}

/// Every step's shape, with (warm-up, step, time scale, seed): the scenario narrowed to
/// the SLOs a step can judge, and those it cannot.
fn shape_of(
    scenario: &crate::scenario::Scenario,
    (warmup, step, time_scale, seed): (Duration, Duration, f64, u64),
) -> (StepShape, Vec<NotApplicable>) {
    let (applicable, not_applicable) = step::applicable_slos(scenario);
    let mut scenario = scenario.clone();
    scenario.slos = applicable;
    let shape = StepShape {
        scenario,
        warmup,
        step,
        time_scale,
        seed,
    };
    (shape, not_applicable)
}

/// Hold the rates the search proposes until it concludes, is interrupted, or the target
/// turns out to be unreachable.
async fn search_steps(cfg: &CapacityConfig, shape: &StepShape, target: &Target) -> Searched {
    let mut out = Searched {
        search: Search::new(cfg.search),
        steps: Vec::new(),
        interrupted: false,
        infra: None,
    };
    while let Some(p) = out.search.next() {
        let index = out.steps.len() + 1;
        let exec = PhaseOptions {
            quiet: cfg.quiet,
            grace: GRACE,
            generators: cfg
                .generators
                .as_ref()
                .map(|g| step_generators(g, index, p.rate_per_s)),
        };
        let run = match run_step(shape, (index, p.phase, p.rate_per_s), target, exec).await {
            Ok(r) => r,
            Err(e) => {
                out.infra = Some(e);
                break;
            }
        };
        if !cfg.quiet {
            eprintln!("{}", output::step_line(&run.report));
        }
        out.steps.push(run.report);
        if run.interrupted {
            out.interrupted = true;
            break;
        }
        if run.unreachable {
            out.infra = Some(format!(
                "could not connect to {} at all in step {index}: is the service running and the URL right?",
                target.base_url
            ));
            break;
        }
        out.search.record(p.rate_per_s, out.steps[index - 1].passed);
    }
    out
}

fn build_report(
    cfg: &CapacityConfig,
    target: &Target,
    (started_at, duration_s): (String, f64),
    not_applicable: Vec<NotApplicable>,
    s: &Searched,
) -> CapacityReport {
    let conclusion = s.search.conclusion();
    let capacity_per_s = conclusion.capacity_per_s();
    let bound_by = conclusion
        .next_failing_per_s()
        .and_then(|r| bound_by(&s.steps, r));
    let sc = &cfg.scenario;
    let mut report = CapacityReport {
        schema_version: model::SCHEMA_VERSION,
        scenario: sc.name.clone(),
        description: sc.description.clone(),
        scenario_file: sc.source.display().to_string(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        platform: PlatformInfo {
            kind: cfg.platform.name().into(),
            description: target.description.clone(),
            target_url: target.base_url.clone(),
            emulated: target.emulated,
        },
        started_at,
        duration_s,
        time_scale: cfg.time_scale,
        arrival: format!("{:?}", sc.load.arrival).to_lowercase(),
        seed: (sc.load.arrival == crate::scenario::Arrival::Poisson).then_some(cfg.seed),
        settings: Settings {
            from_per_s: cfg.search.from_per_s,
            to_per_s: cfg.search.to_per_s,
            precision: cfg.search.precision,
            step_s: cfg.step.as_secs_f64(),
            warmup_s: cfg.warmup.as_secs_f64(),
            max_steps: cfg.search.max_steps,
            generators: cfg.generators.as_ref().map(|g| g.count),
        },
        conclusion,
        capacity_per_s,
        achieved_at_capacity_per_s: None,
        bound_by,
        slos_evaluated: s
            .steps
            .first()
            .map(|st| st.slos.iter().map(|r| r.name.clone()).collect())
            .unwrap_or_default(),
        not_applicable,
        contradictions: s.search.contradictions(),
        interrupted: s.interrupted,
        stopped: s.infra.clone(),
        notes: Vec::new(),
        steps: s.steps.clone(),
    };
    report.achieved_at_capacity_per_s = report.capacity_step().map(|st| st.achieved_rate_per_s);
    report.notes = notes(cfg, &report);
    report
}

/// The first SLO (in scenario order, the built-in check last) that failed in the last
/// failing step at `rate_per_s`.
fn bound_by(steps: &[StepReport], rate_per_s: f64) -> Option<BoundBy> {
    let step = steps
        .iter()
        .rev()
        .find(|s| !s.passed && s.target_rate_per_s == rate_per_s)?;
    let slo = step.slos.iter().find(|r| !r.holds())?;
    Some(BoundBy {
        slo: slo.name.clone(),
        metric: slo.metric.clone(),
        failed_at_per_s: rate_per_s,
        observed: slo.observed,
        threshold: slo.threshold,
        unit: slo.unit,
    })
}

fn notes(cfg: &CapacityConfig, r: &CapacityReport) -> Vec<String> {
    let mut notes = Vec::new();
    match r.conclusion {
        _ if r.stopped.is_some() => {}
        Conclusion::AtLeastTo { .. } => notes.push(format!(
            "every rate up to --to {}/s held: the capacity is at least that; raise --to to find the limit",
            r.settings.to_per_s
        )),
        Conclusion::FromFails => notes.push(format!(
            "even --from {}/s does not hold; lower --from",
            r.settings.from_per_s
        )),
        Conclusion::StepLimit { .. } if !r.interrupted => notes.push(format!(
            "the step budget (--max-steps {}) ran out before the precision was reached",
            r.settings.max_steps
        )),
        _ => {}
    }
    let faults = cfg.scenario.faults.len();
    if faults > 0 {
        notes.push(format!(
            "the scenario's {faults} fault(s) are not injected during a capacity search"
        ));
    }
    if r.contradictions > 0 {
        notes.push(format!(
            "{} verdict(s) contradicted monotonicity (a rate passed above one that failed, or failed at or below one that passed): the system is noisy near its limit; longer --step-for steadies it",
            r.contradictions
        ));
    }
    for s in &r.steps {
        if let Some(rep) = s.replicas.filter(|rep| !rep.settled) {
            notes.push(format!(
                "step {} ({}/s): the replica count had not settled by the step's end (desired {}, ready {}, ready ranged {}–{} in the step); lengthen --warmup",
                s.index, s.target_rate_per_s, rep.desired, rep.ready, rep.min_ready, rep.max_ready
            ));
        }
    }
    if matches!(cfg.platform, Choice::Local) && cfg.scenario.platform.local.autoscale {
        notes.push(
            "the embedded platform autoscales and stays up across steps: replicas carry over from one step to the next (scale-down is slow by design)".into(),
        );
    }
    notes
}
