//! One run, end to end: platform up → load phase (engine, recorder, faults, signals)
//! → Prometheus → SLO verdict → `RunReport` → reports, with the platform taken down on
//! every path. What the exit code depends on comes back as an `Ending`.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::autoscale::figures::{HpaFigures, first_rate_increase, hpa_metrics};
use crate::exit::{Ending, Failure};
use crate::phase::{self, PhaseOptions, signals};
use crate::plan::Plan;
use crate::platform::{self, Choice};
use crate::report::model::{GatewayReport, PlatformInfo, ReplicaPoint, RunMeta};
use crate::report::{self, RunReport};
use crate::slo;
use crate::stats::record::FailureKind;
use crate::target::AutoscalerClock;
use crate::target::{GatewayReading, Target};

mod history;

/// One run, checked: all the run needs to know.
pub struct RunConfig {
    pub plan: Plan,
    /// Where the system under test comes from.
    pub platform: Choice,
    /// Write the reports here instead of `reports/<scenario>/<UTC time>/`.
    pub out: Option<PathBuf>,
    /// No progress line, no verdict table.
    pub quiet: bool,
    /// Print run.json to stdout (the table goes to stderr).
    pub json: bool,
    /// After an interrupt, how long in-flight workflows may still finish.
    pub grace: Duration,
    /// An earlier run to compare with.
    pub baseline: Option<report::baseline::Baseline>,
    pub prometheus: crate::prom::PromSettings,
    /// Where the run is recorded, and whether it is judged against its history.
    pub history: crate::history::Settings,
    /// The run's test id, and where its live metrics go.
    pub live: crate::live::Settings,
    /// Issue the load from several generators (`--generators N`).
    pub generators: Option<crate::phase::remote::Distributed>,
}

/// Run `cfg`: the platform comes up (a failure to bring it up is the `Err`), the load
/// runs, the reports are written and the platform goes down again.
pub async fn run(cfg: RunConfig) -> Result<Ending, Failure> {
    // An unwritable report location is found before the load, not after it.
    let out = match &cfg.out {
        Some(dir) => dir.clone(),
        None => report::scenario_dir(&cfg.plan.scenario.name),
    };
    if let Err(e) = report::check_writable(&out) {
        let what = if cfg.out.is_some() {
            "--out"
        } else {
            "the default report directory"
        };
        return Err(Failure::usage(format!(
            "{what}: {e}; give --out a directory you can write to"
        )));
    }
    // Signals are watched from before the platform comes up until the run ends: an
    // interrupt during `up` still takes the platform down; one after the load marks the
    // run interrupted.
    // A --metrics-listen that cannot be bound, or a --remote-write that does not take a
    // first push, is refused before anything is deployed.
    let (exporter, feed) = if cfg.live.exports() {
        let steps = cfg.plan.scenario.workflow.iter().map(|s| s.name.clone());
        let started = crate::live::Exporter::start(
            &cfg.live,
            &cfg.plan.scenario.name,
            steps.collect(),
            cfg.quiet,
        );
        let (e, f) = started.await?;
        (Some(e), Some(f))
    } else {
        (None, None)
    };
    let (control, interrupted, watcher) = signals::watch_interrupts(cfg.grace);
    if let Some(warning) = crate::prom::unanswered(&cfg.prometheus).await {
        eprintln!("warning: {warning}");
    }
    let up = platform::up(
        &cfg.platform,
        &cfg.plan,
        cfg.quiet,
        control.stop_starts.clone(),
    );
    let (target, deployed) = match up.await {
        Ok(t) => t,
        Err(e) => {
            watcher.abort();
            return Err(Failure {
                class: e.class(),
                message: e.to_string(),
            });
        }
    };
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let sd_file = crate::prom::prepare(&cfg.prometheus, &target).await;
    let wall = Instant::now();
    let opts = PhaseOptions {
        quiet: cfg.quiet,
        grace: cfg.grace,
        generators: cfg.generators.clone().or_else(|| target.generators.clone()),
    };
    let gateway_start = read_gateway(&target).await;
    let ejections = watch_ejections(&target, &gateway_start);
    let outcome = phase::execute_plan(&cfg.plan, &target, opts, control, feed).await;
    let duration_s = wall.elapsed().as_secs_f64();
    let (live, live_problem) = match exporter {
        Some(e) => {
            let (report, problem) = e.finish().await;
            (Some(report), problem)
        }
        None => (None, None),
    };
    // Envoy's counters are cumulative since it started: the load's are the difference.
    let gateway = match gateway_start {
        Some(start) => {
            let mut report = read_gateway(&target)
                .await
                .map(|end| GatewayReport::between(&start, &end));
            if let (Some(r), Some(watch)) = (report.as_mut(), ejections) {
                r.ejections = watch.finish(outcome.zero).await;
            }
            report
        }
        None => None,
    };
    // Before the platform goes down: its metrics must still be scraped while we wait.
    let prom =
        crate::prom::evaluate(&cfg.prometheus, &cfg.plan, &outcome.stats, outcome.zero).await;
    drop(sd_file);
    let (replicas, hpa) = replica_report(&cfg.plan, &target, outcome.zero);
    let left_behind = deployed.down().await;
    let ext = slo::External {
        hpa,
        hpa_missing: if target.replicas.is_some() {
            "the schedule never raises the rate, so there is no scale-up to time".into()
        } else {
            format!(
                "the {} platform has no replica observer",
                cfg.platform.name()
            )
        },
        interrupted: outcome.interrupted || interrupted.load(Ordering::SeqCst),
        prometheus: prom.observations,
        lost_generators: outcome
            .generators
            .iter()
            .filter_map(crate::report::model::GeneratorReport::lost_line)
            .collect(),
    };
    let results = slo::evaluate(&cfg.plan, &outcome.stats, &ext);
    let meta = RunMeta {
        platform: PlatformInfo {
            kind: cfg.platform.name().into(),
            description: target.description.clone(),
            target_url: target.base_url.clone(),
            emulated: target.emulated,
        },
        started_at: started_at.clone(),
        duration_s,
        interrupted: ext.interrupted,
        replicas,
        hpa,
        faults_injected: target.faults.is_some(),
        fault_activity: outcome.fault_activity,
        gateway,
        canary: outcome.canary,
        testid: cfg.live.testid.clone(),
        live,
        generators: outcome.generators,
    };
    let mut report = RunReport::build(&cfg.plan, &outcome.stats, results, meta);
    report.cross_check = prom.cross_check;
    let mut ending = finish(&cfg, &report, &started_at, &target);
    // After the reports: a remote write whose final push failed is a problem (exit 3).
    ending.problems.extend(live_problem);
    ending.problems.extend(left_behind);
    watcher.abort();
    Ok(ending)
}

/// How often the gateway's counters are read during the load, for its ejections.
const EJECTION_READ_EVERY: Duration = Duration::from_secs(1);

/// The gateway's outlier ejections, read every `EJECTION_READ_EVERY` during the load.
struct EjectionWatch {
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<Vec<(Instant, u64)>>,
}

/// Starts reading the gateway's ejection counter, when there is a gateway whose first
/// reading exports it: each reading that shows it risen keeps when and by how much.
fn watch_ejections(
    target: &Target,
    start: &Option<Result<GatewayReading, String>>,
) -> Option<EjectionWatch> {
    let gateway = target.gateway.clone()?;
    let Some(Ok(first)) = start else { return None };
    let mut last = first.counts.outlier_ejections_enforced?;
    let pods = first.pods.clone();
    let stop = tokio_util::sync::CancellationToken::new();
    let token = stop.clone();
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut tick = tokio::time::interval(EJECTION_READ_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = token.cancelled() => return seen,
                _ = tick.tick() => {}
            }
            // A reading in progress when the load ends is abandoned, not waited for.
            let read = tokio::select! {
                _ = token.cancelled() => return seen,
                r = tokio::time::timeout(GATEWAY_READ_TIMEOUT, gateway.read()) => r,
            };
            // Only the same pods' counters compare; others are left to the end's reading.
            if let Ok(Ok(r)) = read
                && r.pods == pods
                && let Some(now) = r.counts.outlier_ejections_enforced
            {
                if now > last {
                    seen.push((Instant::now(), now - last));
                }
                last = now;
            }
        }
    });
    Some(EjectionWatch { stop, task })
}

impl EjectionWatch {
    /// Stops the readings: each rise, in seconds after the run's `zero`.
    async fn finish(self, zero: Instant) -> Vec<crate::report::model::EjectionReport> {
        self.stop.cancel();
        let seen = self.task.await.unwrap_or_default();
        seen.into_iter()
            .map(|(at, ejected)| crate::report::model::EjectionReport {
                seen_at_s: at.saturating_duration_since(zero).as_secs_f64(),
                ejected,
            })
            .collect()
    }
}

/// How long one reading of the gateway's counters may take.
const GATEWAY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The gateway's counters now (cumulative), or why not; `None` without a gateway.
async fn read_gateway(target: &Target) -> Option<Result<GatewayReading, String>> {
    let gateway = target.gateway.as_ref()?;
    Some(
        match tokio::time::timeout(GATEWAY_READ_TIMEOUT, gateway.read()).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "no answer within {}",
                crate::units::format_duration(GATEWAY_READ_TIMEOUT)
            )),
        },
    )
}

/// The replica timeline relative to the run's zero, and the HPA figures (in
/// scenario seconds, so they compare with thresholds whatever the time scale).
fn replica_report(
    plan: &Plan,
    target: &Target,
    zero: Instant,
) -> (Vec<ReplicaPoint>, Option<HpaFigures>) {
    let Some(observer) = &target.replicas else {
        return (Vec::new(), None);
    };
    let samples = observer.timeline();
    let rel = |at: Instant| {
        if at >= zero {
            at.duration_since(zero).as_secs_f64()
        } else {
            -zero.duration_since(at).as_secs_f64()
        }
    };
    let points = samples
        .iter()
        .map(|s| ReplicaPoint {
            t_s: rel(s.at),
            desired: s.desired,
            current: s.current,
            ready: s.ready,
        })
        .collect();
    let marker = first_rate_increase(&plan.scenario.load.stages, plan.time_scale);
    let hpa = marker.map(|m| {
        let figures = hpa_metrics(&samples, zero + m);
        HpaFigures {
            marker_s: Some(m.as_secs_f64()),
            ..match observer.clock() {
                AutoscalerClock::Scenario => figures.in_scenario_time(plan.time_scale),
                AutoscalerClock::Real => HpaFigures {
                    real_time: true,
                    ..figures
                },
            }
        }
    });
    (points, hpa)
}

/// Judge the run against its history, write reports, print the verdict, record the run;
/// what the exit code depends on.
fn finish(cfg: &RunConfig, report: &RunReport, started_at: &str, target: &Target) -> Ending {
    let mut report = match &cfg.baseline {
        Some(b) => b.apply(report),
        None => report.clone(),
    };
    let mut problems = Vec::new();
    match history::detect(&cfg.history, &report, "run") {
        Some(Ok(h)) => report.history = Some(h),
        Some(Err(e)) => problems.push(e),
        None => {}
    }
    let report = &report;
    let dir = cfg
        .out
        .clone()
        .unwrap_or_else(|| report::default_dir(&report.scenario, "", started_at));
    let history_failed = cfg.history.fail_on_regression && report.history_regressions() > 0;
    let mut ending = Ending {
        passed: report.verdict == slo::Verdict::Pass
            && report.regressions() == 0
            && !history_failed,
        problems,
        interrupted: report.interrupted,
    };
    let (written, problem) = report::write_or_fall_back(report, &dir, started_at);
    ending.problems.extend(problem);
    if cfg.json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        );
    }
    let mut table = report::terminal::verdict_table(report, written.as_deref());
    if let Some(location) = &cfg.history.location {
        match history::record(location, &cfg.history, report, written.as_deref()) {
            Ok(id) => table.push_str(&format!("history: recorded as run {id} in {location}\n")),
            Err(e) => ending.problems.push(e),
        }
    }
    if !cfg.quiet {
        if cfg.json {
            eprint!("{table}")
        } else {
            print!("{table}")
        }
    }
    if let Err(e) = report::append_step_summary(report) {
        eprintln!("warning: {e}");
    }
    ending.problems.extend(unreachable(report, target));
    ending
}

/// The target could not be reached at all: every workflow failed to connect.
fn unreachable(r: &RunReport, target: &Target) -> Option<String> {
    let c = &r.counts;
    let connect = c
        .failures_by_kind
        .get(FailureKind::Connect.as_str())
        .copied()
        .unwrap_or(0);
    (c.succeeded == 0 && c.failed > 0 && connect == c.failed).then(|| {
        format!(
            "could not connect to {} at all: all {} workflows failed with connection errors (refused, reset or closed early); is the service running and the URL right?",
            target.base_url, c.failed
        )
    })
}
