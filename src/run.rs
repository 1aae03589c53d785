//! One run, end to end: plan → platform → load + recorder + faults + signals →
//! SLO verdict → reports → exit code. Cleanup (fault revert, platform down)
//! happens on every path.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::time::Instant;

use crate::app::exit;
use crate::autoscale::timeline::{first_rate_increase, hpa_metrics};
use crate::cli::TargetArgs;
use crate::cli::{PlatformKind, RunArgs};
use crate::load::engine::{self, Control, Issued, Live, Pacing};
use crate::plan::{Plan, PlanOptions};
use crate::platform::kube::KubeSettings;
use crate::platform::local::LocalOptions;
use crate::platform::{self, PlatformError, Running, Target};
use crate::report::model::{HpaReport, PlatformInfo, ReplicaPoint, RunMeta};
use crate::report::terminal::{Progress, Snapshot};
use crate::report::{self, RunReport};
use crate::scenario;
use crate::slo;
use crate::stats::record::{Event, FailureKind};
use crate::stats::{Recorder, RunStats};
use crate::workflow::WorkflowRunner;
use crate::workflow::http::{Endpoint, HttpClient};
use tokio_util::sync::CancellationToken;

/// Options of one run, checked.
pub struct RunConfig {
    pub plan: Plan,
    pub platform: PlatformKind,
    /// Where the system under test comes from, as the flags say.
    pub target: TargetArgs,
    pub out: Option<PathBuf>,
    pub quiet: bool,
    pub json: bool,
    pub grace: Duration,
    pub baseline: Option<report::baseline::Baseline>,
    pub prometheus: crate::prom::PromSettings,
}

/// Resolve the scenario and flags into a `RunConfig`; errors are usage errors.
pub fn configure(args: &RunArgs) -> Result<RunConfig, String> {
    let name = args.scenario.scenario.as_deref().ok_or(
        "--scenario NAME is required (try `slo-check list` to see the scenarios, or `slo-check --help`)",
    )?;
    let file = scenario::resolve(name, &args.scenario.dir.scenarios_dir)?;
    let sc = scenario::load(&file).map_err(|e| e.to_string())?;
    let mut plan = Plan::new(
        sc,
        PlanOptions {
            time_scale: args.scenario.time_scale,
            seed: args.scenario.seed,
        },
    )?;
    if let Some(bytes) = args.max_response_bytes {
        plan.scenario.load.max_response_bytes = bytes;
    }
    let grace = crate::units::parse_duration(&args.grace).map_err(|e| format!("--grace: {e}"))?;
    args.target.check()?;
    let prometheus = crate::prom::PromSettings::resolve(
        args.prometheus.as_deref(),
        args.prometheus_sd_file.clone(),
        &plan,
        args.quiet,
    )?;
    Ok(RunConfig {
        prometheus,
        plan,
        platform: args.target.platform,
        target: args.target.clone(),
        out: args.out.clone(),
        quiet: args.quiet,
        json: args.json,
        grace,
        baseline: report::baseline::Baseline::from_args(
            args.baseline.baseline.as_deref(),
            &args.baseline.max_regression,
        )?,
    })
}

/// Run and return the exit code.
pub fn run(args: &RunArgs) -> u8 {
    let cfg = match configure(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    crate::app::block_on(run_async(cfg))
}

async fn run_async(cfg: RunConfig) -> u8 {
    // Signals are watched from before the platform comes up until the process exits: an
    // interrupt during `up` still takes the platform down and writes an empty partial
    // report; one after the load marks the run interrupted. Never the default action,
    // which would skip fault reverts and cleanup.
    let (control, interrupted, signals) = watch_interrupts(cfg.grace);
    let up = platform_up(
        &cfg.target,
        &cfg.plan,
        cfg.prometheus.url.as_deref(),
        cfg.quiet,
        control.stop_starts.clone(),
    );
    let (target, running) = match up.await {
        Ok(t) => t,
        Err(e) => return e.report(),
    };
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let sd_file = crate::prom::prepare(&cfg.prometheus, &target).await;
    let wall = Instant::now();
    let outcome = execute(&cfg, &target, control).await;
    let duration_s = wall.elapsed().as_secs_f64();
    // Before the platform goes down: its metrics must still be scraped while we wait.
    let prom =
        crate::prom::evaluate(&cfg.prometheus, &cfg.plan, &outcome.stats, outcome.zero).await;
    drop(sd_file);
    let (replicas, hpa) = replica_report(&cfg.plan, &target, outcome.zero);
    running.down().await;
    let ext = slo::External {
        hpa: hpa.as_ref().map(|h| slo::HpaValues {
            decision_s: h.decision_s,
            scale_up_s: h.scale_up_s,
            peak_replicas: Some(f64::from(h.peak_replicas)),
        }),
        hpa_missing: if target.replicas.is_some() {
            "the schedule never raises the rate, so there is no scale-up to time".into()
        } else {
            format!(
                "the {} platform has no replica observer",
                platform_name(cfg.platform)
            )
        },
        interrupted: outcome.interrupted || interrupted.load(Ordering::SeqCst),
        prometheus: prom.observations,
    };
    let results = slo::evaluate(&cfg.plan, &outcome.stats, &ext);
    let meta = RunMeta {
        platform: PlatformInfo {
            kind: platform_name(cfg.platform).into(),
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
    };
    let mut report = RunReport::build(&cfg.plan, &outcome.stats, results, meta);
    report.cross_check = prom.cross_check;
    let code = finish(&cfg, &report, &started_at, &target);
    signals.abort();
    code
}

/// The replica timeline relative to the run's zero, and the HPA figures (in
/// scenario seconds, so they compare with thresholds whatever the time scale).
fn replica_report(
    plan: &Plan,
    target: &Target,
    zero: Instant,
) -> (Vec<ReplicaPoint>, Option<HpaReport>) {
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
        let metrics = hpa_metrics(&samples, zero + m).in_scenario_time(plan.time_scale);
        HpaReport {
            marker_s: Some(m.as_secs_f64()),
            decision_s: metrics.decision_s,
            scale_up_s: metrics.scale_up_s,
            peak_replicas: metrics.peak_replicas,
        }
    });
    (points, hpa)
}

/// Bring the platform up for `plan` (also used by `slo-check capacity`, which keeps one
/// platform up across its steps). `cancel` (an interrupt) stops a slow bring-up.
pub async fn platform_up(
    flags: &TargetArgs,
    plan: &Plan,
    prometheus: Option<&str>,
    quiet: bool,
    cancel: CancellationToken,
) -> Result<(Target, Running), PlatformError> {
    match flags.platform {
        PlatformKind::Url => Ok((
            platform::url::target(flags.target_url.as_deref())?,
            Running::Nothing,
        )),
        PlatformKind::Local => {
            let opts = LocalOptions::in_current_dir(
                plan.scenario.platform.local.clone(),
                plan.time_scale,
            )?;
            let handle = platform::local::up(opts).await?;
            Ok((handle.target(), Running::Local(Box::new(handle))))
        }
        PlatformKind::Kube => {
            let mut settings = KubeSettings::resolve(&flags.kube, &plan.scenario.platform, quiet)?;
            settings.target_url = flags.target_url.clone();
            settings.forward_ingress = flags.target_url.is_none();
            settings.keep = flags.keep;
            settings.allow_faults = flags.allow_faults;
            settings.wants_faults = !plan.scenario.faults.is_empty();
            settings.prometheus = prometheus.map(str::to_string);
            let handle = platform::kube::up(settings, cancel).await?;
            Ok((handle.target(), Running::Kube(Box::new(handle))))
        }
    }
}

pub fn platform_name(kind: PlatformKind) -> &'static str {
    match kind {
        PlatformKind::Local => "local",
        PlatformKind::Url => "url",
        PlatformKind::Kube => "kube",
    }
}

/// What the load phase produced.
pub struct Outcome {
    pub stats: RunStats,
    pub interrupted: bool,
    /// The run's zero: intended start offsets count from here.
    pub zero: Instant,
    /// What the fault timeline applied and reverted, per scenario fault.
    pub fault_activity: Vec<crate::faults::FaultActivity>,
}

/// How `execute_plan` behaves around the load.
#[derive(Debug, Clone, Copy)]
pub struct ExecOptions {
    /// No progress line, no fault log.
    pub quiet: bool,
    /// After an interrupt, how long in-flight workflows may still finish.
    pub grace: Duration,
}

async fn execute(cfg: &RunConfig, target: &Target, control: Control) -> Outcome {
    let opts = ExecOptions {
        quiet: cfg.quiet,
        grace: cfg.grace,
    };
    execute_plan(&cfg.plan, target, opts, control).await
}

/// The load phase of one plan with its own interrupt handling (`slo-check capacity`
/// runs one plan per step on a platform that stays up).
pub async fn execute_plan_with_signals(plan: &Plan, target: &Target, opts: ExecOptions) -> Outcome {
    let (control, interrupted, signals) = watch_interrupts(opts.grace);
    let mut outcome = execute_plan(plan, target, opts, control).await;
    signals.abort();
    outcome.interrupted |= interrupted.load(Ordering::SeqCst);
    outcome
}

/// The load phase of `plan` against `target`: engine, recorder and faults, until every
/// workflow has ended; `control` stops it early. The platform stays up.
pub async fn execute_plan(
    plan: &Plan,
    target: &Target,
    opts: ExecOptions,
    control: Control,
) -> Outcome {
    let load = &plan.scenario.load;
    // Every platform hands back an `http://host:port` base URL (`--target-url` is checked
    // in platform::url), so this cannot fail on user input.
    let endpoint = Endpoint::of(&target.base_url).expect("platforms give http:// base URLs");
    let client = HttpClient::new(
        endpoint,
        load.max_in_flight as usize,
        load.max_response_bytes,
    );
    let runner = Arc::new(WorkflowRunner::new(
        client,
        plan.scenario.workflow.clone(),
        plan.scenario.capture_names.len(),
        plan.env_values.clone(),
        load.request_timeout,
    ));
    let live = Arc::new(Live::default());
    let (tx, rx) = unbounded_channel();
    // A short lead time so the first starts are not late because of set-up work.
    let zero = Instant::now() + Duration::from_millis(20);
    let recorder = Recorder::new(
        plan.windows.clone(),
        plan.scenario.workflow.len(),
        plan.max_workflow.as_micros() as u64,
    );
    let progress = Progress::new(plan.schedule.duration(), !opts.quiet);
    let aggregator = behind_the_load(aggregate(
        rx,
        recorder,
        zero,
        progress,
        live.clone(),
        plan.clone(),
    ));
    let faults = tokio::spawn(crate::faults::run_timeline(
        target.faults.clone(),
        plan.scenario.faults.clone(),
        plan.fault_windows.clone(),
        zero,
        control.stop_starts.clone(),
    ));
    let issued = engine::drive(
        &plan.schedule,
        Pacing {
            max_in_flight: load.max_in_flight,
            slack: load.pacing_slack,
        },
        runner,
        tx,
        live,
        control.clone(),
        zero,
    )
    .await;
    // The schedule is over (or stopped): faults end with it, whatever their windows say.
    control.stop_starts.cancel();
    let timeline = faults.await.unwrap_or_default();
    for line in &timeline.log {
        // A fault that could not be applied or reverted is shown even with --quiet.
        if !opts.quiet || line.starts_with("error:") {
            eprintln!("{line}");
        }
    }
    let stats = aggregator.await;
    Outcome {
        stats,
        interrupted: issued == Issued::Stopped,
        zero,
        fault_activity: timeline.activity,
    }
}

/// Start watching SIGINT/SIGTERM: the control the load obeys, whether a signal
/// came, and the watcher task (abort it when done). The listeners are registered
/// here, synchronously, so no signal slips in before the task first runs.
fn watch_interrupts(grace: Duration) -> (Control, Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    let control = Control::default();
    let interrupted = Arc::new(AtomicBool::new(false));
    let streams = Signals::register();
    let task = tokio::spawn(watch_signals(
        streams,
        control.clone(),
        grace,
        interrupted.clone(),
    ));
    (control, interrupted, task)
}

/// SIGINT and SIGTERM listeners (none when they cannot be installed).
struct Signals(Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>);

impl Signals {
    fn register() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(int), Ok(term)) => Signals(Some((int, term))),
            _ => Signals(None),
        }
    }
}

/// First SIGINT/SIGTERM: stop new starts (the fault timeline reverts active faults
/// on the same token), give in-flight workflows `grace`. Grace over, or a second
/// signal: abandon them. Later signals are ignored: cleanup and reports finish.
async fn watch_signals(
    signals: Signals,
    control: Control,
    grace: Duration,
    interrupted: Arc<AtomicBool>,
) {
    let Signals(Some((mut int, mut term))) = signals else {
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    interrupted.store(true, Ordering::SeqCst);
    control.stop_starts.cancel();
    eprintln!(
        "\ninterrupted: no new starts; waiting up to {} for in-flight workflows (interrupt again to stop now)",
        crate::units::format_duration(grace)
    );
    tokio::select! {
        _ = tokio::time::sleep(grace) => {}
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    control.abandon.cancel();
}

/// How much lower than the load workers the recorder's thread runs (`nice`).
const RECORDER_NICE: libc::c_int = 10;

/// Run the recorder on a thread of its own, at a lower priority than the load
/// workers: where they share a core, the scheduler then lets a worker issue its
/// starts before the recorder files the last batch of records (a few hundred
/// at a time, and a compressed histogram per second), rather than preempting
/// it with hundreds of microseconds of lag. Records wait in the channel
/// meanwhile.
fn behind_the_load<T, F>(aggregate: F) -> impl std::future::Future<Output = T>
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + Send + 'static,
{
    fn take<F>(slot: &std::sync::Mutex<Option<F>>) -> Option<F> {
        slot.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let slot = Arc::new(std::sync::Mutex::new(Some(aggregate)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build();
    let on_thread = runtime.ok().and_then(|rt| {
        let theirs = slot.clone();
        std::thread::Builder::new()
            .name("slo-check-recorder".into())
            .spawn(move || {
                // SAFETY: plain syscall; on Linux `who = 0` is the calling thread
                // only. Lowering one's own priority needs no privilege; a failure
                // leaves it where it was.
                unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, RECORDER_NICE) };
                if let Some(aggregate) = take(&theirs) {
                    let _ = tx.send(rt.block_on(aggregate));
                }
            })
            .ok()
    });
    // No runtime or no thread: a task on the current runtime, as before.
    let fallback = match on_thread {
        Some(_) => None,
        None => take(&slot).map(tokio::spawn),
    };
    async move {
        match fallback {
            Some(task) => task.await.expect("the aggregator does not panic"),
            None => rx.await.expect("the recorder's thread does not panic"),
        }
    }
}

/// The one owner of the recorder: consumes events until every workflow has
/// ended, updating the progress line on a tick.
async fn aggregate(
    mut rx: UnboundedReceiver<Vec<Event>>,
    mut rec: Recorder,
    zero: Instant,
    progress: Progress,
    live: Arc<Live>,
    plan: Plan,
) -> RunStats {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut started_history: std::collections::VecDeque<(Instant, u64)> = Default::default();
    let total = plan.schedule.duration();
    loop {
        tokio::select! {
            biased;
            _ = tick.tick() => {
                let now = Instant::now();
                let elapsed = now.saturating_duration_since(zero);
                rec.seal_before(elapsed.as_micros() as u64);
                let started = live.started.load(Ordering::Relaxed);
                started_history.push_back((now, started));
                while started_history.len() > 6 {
                    started_history.pop_front();
                }
                let rate = match (started_history.front(), started_history.back()) {
                    (Some((t0, s0)), Some((t1, s1))) if t1 > t0 => (s1 - s0) as f64 / (*t1 - *t0).as_secs_f64(),
                    _ => 0.0,
                };
                let run = rec.run_window();
                progress.update(&Snapshot {
                    elapsed,
                    total,
                    target_rate_per_s: plan.schedule.rate_at(elapsed.as_secs_f64()),
                    achieved_rate_per_s: rate,
                    in_flight: live.in_flight.load(Ordering::Relaxed),
                    p95_ms: crate::stats::histogram::percentile_ms(&run.workflow, 95.0),
                    failed: run.counts.failed,
                    finished: run.counts.succeeded + run.counts.failed,
                    dropped: live.dropped.load(Ordering::Relaxed),
                    draining: elapsed > total,
                });
            }
            ev = rx.recv() => match ev {
                Some(batch) => batch.iter().for_each(|ev| rec.add(ev)),
                None => break,
            },
        }
    }
    progress.finish();
    rec.finish()
}

/// Write reports, print the verdict, choose the exit code.
fn finish(cfg: &RunConfig, report: &RunReport, started_at: &str, target: &Target) -> u8 {
    let compared = cfg.baseline.as_ref().map(|b| b.apply(report));
    let report = compared.as_ref().unwrap_or(report);
    let dir = cfg
        .out
        .clone()
        .unwrap_or_else(|| report_dir(&report.scenario, started_at));
    let mut code = if report.verdict == slo::Verdict::Pass && report.regressions() == 0 {
        exit::PASS
    } else {
        exit::FAIL
    };
    let written = report::write_all(report, &dir);
    if cfg.json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        );
    }
    if !cfg.quiet {
        let table =
            report::terminal::verdict_table(report, written.as_ref().ok().map(|_| dir.as_path()));
        if cfg.json {
            eprint!("{table}")
        } else {
            print!("{table}")
        }
    }
    if let Err(e) = report::append_step_summary(report) {
        eprintln!("warning: {e}");
    }
    if let Some(why) = unreachable(report, target) {
        eprintln!("error: {why}");
        code = exit::INFRA;
    }
    if let Err(e) = written {
        eprintln!("error: {e}");
        code = exit::INFRA;
    }
    if report.interrupted {
        code = exit::INTERRUPTED;
    }
    code
}

/// `reports/<scenario>/<UTC time>/`, the time without colons so any filesystem takes it.
pub fn report_dir(scenario: &str, started_at: &str) -> PathBuf {
    Path::new("reports")
        .join(scenario)
        .join(started_at.replace(':', ""))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn nice() -> libc::c_int {
        // SAFETY: plain syscall about the calling thread.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
    }

    #[tokio::test]
    async fn the_recorder_runs_on_a_thread_of_its_own_behind_the_load() {
        let here = nice();
        let (name, there) = behind_the_load(async {
            let name = std::thread::current().name().map(str::to_string);
            (name, nice())
        })
        .await;
        assert_eq!(name.as_deref(), Some("slo-check-recorder"));
        assert_eq!(there, (here + RECORDER_NICE).min(19));
        assert_eq!(nice(), here, "the caller's thread keeps its priority");
    }
}
