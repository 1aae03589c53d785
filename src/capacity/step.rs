//! One step of the search: a synthetic plan that holds one rate (a warm-up stage, then the
//! measured stage), run by `phase::execute_plan` on the platform that stays up across steps,
//! and the scenario's applicable SLOs evaluated over the measured stage alone.

use std::time::Duration;

use tokio::time::Instant;

use super::model::{NotApplicable, Percentiles, StepCounts, StepReplicas, StepReport};
use super::search::Phase;
use crate::phase::{PhaseOptions, execute_plan_with_signals};
use crate::plan::{Plan, PlanOptions};
use crate::scenario::{Metric, Scenario, Slo, SloSource, Stage, WindowRef};
use crate::slo::{self, SloResult};
use crate::stats::WindowStats;
use crate::stats::histogram::percentile_ms;
use crate::stats::record::FailureKind;
use crate::target::{ReplicaSample, Target};

/// How every step is shaped.
#[derive(Debug, Clone)]
pub struct StepShape {
    /// The scenario with its SLOs narrowed to the applicable ones (windows still as written).
    pub scenario: Scenario,
    /// Held before the measured step, scenario time (zero: no warm-up).
    pub warmup: Duration,
    /// Held and measured, scenario time.
    pub step: Duration,
    pub time_scale: f64,
    /// Poisson seed of step 1; step n uses a seed derived from it and n, so a confirmation
    /// run is an independent draw, and the same seed repeats the whole search.
    pub seed: u64,
}

/// What one step produced.
pub struct StepRun {
    pub report: StepReport,
    /// SIGINT/SIGTERM arrived during the step.
    pub interrupted: bool,
    /// Every workflow of the step failed to connect: the target is not there.
    pub unreachable: bool,
}

/// Split the scenario's SLOs into those a step can evaluate and those it cannot (with why).
pub fn applicable_slos(sc: &Scenario) -> (Vec<Slo>, Vec<NotApplicable>) {
    let mut keep = Vec::new();
    let mut skip = Vec::new();
    for slo in &sc.slos {
        let why = match (&slo.source, &slo.window) {
            (SloSource::PromQl(_) | SloSource::Alert(_), _) => Some(
                "Prometheus SLOs are not queried per step in a capacity search; check them with `slo-check run`",
            ),
            (
                SloSource::Metric(
                    Metric::HpaScaleUpSeconds
                    | Metric::HpaDecisionSeconds
                    | Metric::HpaPeakReplicas,
                ),
                _,
            ) => Some(
                "hpa.* metrics time a reaction to a rate change; a capacity step holds one rate (replicas are reported per step instead)",
            ),
            (_, WindowRef::Run) => None,
            (_, _) => Some(
                "window-bound (stage, fault or time range of the scenario's own schedule); a capacity step has only its own window",
            ),
        };
        match why {
            None => keep.push(slo.clone()),
            Some(why) => skip.push(NotApplicable {
                name: slo.name.clone(),
                metric: match &slo.source {
                    SloSource::Metric(m) => m.name(&sc.workflow),
                    SloSource::PromQl(_) => "promql".into(),
                    SloSource::Alert(a) => format!("alert: {}", a.alert),
                },
                why: why.into(),
            }),
        }
    }
    (keep, skip)
}

impl StepShape {
    /// The plan that holds `rate_per_s`: stage 1 warm-up (if any), then the measured stage,
    /// with every applicable SLO over the measured stage and no faults.
    pub fn plan(&self, rate_per_s: f64, index: usize) -> Result<Plan, String> {
        let mut sc = self.scenario.clone();
        let stage = |name: &str, duration| Stage {
            name: Some(name.into()),
            duration,
            start_rate_per_s: rate_per_s,
            end_rate_per_s: rate_per_s,
        };
        sc.load.stages = Vec::new();
        if !self.warmup.is_zero() {
            sc.load.stages.push(stage("warm-up", self.warmup));
        }
        sc.load.stages.push(stage("step", self.step));
        let measured = sc.load.stages.len() - 1;
        sc.faults.clear();
        for slo in &mut sc.slos {
            slo.window = WindowRef::Stage(measured);
        }
        // The built-in check is added over the measured stage by `run_step`.
        sc.check_load_delivered = false;
        Plan::new(
            sc,
            PlanOptions {
                time_scale: self.time_scale,
                seed: Some(
                    self.seed
                        .wrapping_add((index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                ),
            },
        )
        .map_err(|e| format!("at {rate_per_s}/s: {e}; lengthen --step-for"))
    }
}

/// Hold `rate_per_s` for one step on `target` and judge it.
pub async fn run_step(
    shape: &StepShape,
    (index, phase, rate_per_s): (usize, Phase, f64),
    target: &Target,
    exec: PhaseOptions,
) -> Result<StepRun, String> {
    let plan = shape.plan(rate_per_s, index)?;
    let wall = Instant::now();
    let outcome = execute_plan_with_signals(&plan, target, exec).await;
    let duration_s = wall.elapsed().as_secs_f64();
    // A lost generator says nothing about the target's capacity: the search stops.
    let lost: Vec<String> = outcome
        .generators
        .iter()
        .filter_map(crate::report::model::GeneratorReport::lost_line)
        .collect();
    if !lost.is_empty() && !outcome.interrupted {
        return Err(format!(
            "step {index} ({rate_per_s}/s): its load was not delivered: {}",
            lost.join("; ")
        ));
    }
    // Windows: [0] the run, then one per stage; the measured stage is the last.
    let measured_idx = plan.schedule.segments.len();
    let ext = slo::External {
        hpa_missing: "not evaluated in a capacity step".into(),
        interrupted: outcome.interrupted,
        ..Default::default()
    };
    let mut results = slo::evaluate(&plan, &outcome.stats, &ext);
    let w = &outcome.stats.windows[measured_idx];
    let scheduled = scheduled_in(&plan, w);
    if shape.scenario.check_load_delivered {
        results.push(slo::load_delivered(
            &plan,
            w,
            scheduled,
            outcome.interrupted,
        ));
    }
    let window_real = |us: u64| outcome.zero + Duration::from_micros(us);
    let replicas = target.replicas.as_ref().and_then(|o| {
        replicas_over(
            &o.timeline(),
            window_real(w.spec.from_us),
            window_real(w.spec.to_us),
        )
    });
    let unreachable = all_failed_to_connect(w);
    Ok(StepRun {
        report: step_report(
            (index, phase, rate_per_s),
            w,
            scheduled,
            results,
            replicas,
            duration_s,
        ),
        interrupted: outcome.interrupted,
        unreachable,
    })
}

/// Starts the plan schedules within `w`.
fn scheduled_in(plan: &Plan, w: &WindowStats) -> u64 {
    let (from, to) = (w.spec.from_us as f64 / 1e6, w.spec.to_us as f64 / 1e6);
    plan.schedule
        .iter()
        .filter(|t| *t >= from && *t < to)
        .count() as u64
}

fn all_failed_to_connect(w: &WindowStats) -> bool {
    let c = &w.counts;
    c.succeeded == 0 && c.failed > 0 && c.failures_by_kind[FailureKind::Connect.index()] == c.failed
}

fn step_report(
    (index, phase, rate_per_s): (usize, Phase, f64),
    w: &WindowStats,
    scheduled: u64,
    slos: Vec<SloResult>,
    replicas: Option<StepReplicas>,
    duration_s: f64,
) -> StepReport {
    let len = w.spec.len_s();
    let c = &w.counts;
    StepReport {
        index,
        phase,
        target_rate_per_s: rate_per_s,
        achieved_rate_per_s: if len > 0.0 {
            c.started_actual as f64 / len
        } else {
            0.0
        },
        passed: slos.iter().all(SloResult::holds),
        latency_ms: Percentiles {
            p50: percentile_ms(&w.workflow, 50.0),
            p95: percentile_ms(&w.workflow, 95.0),
            p99: percentile_ms(&w.workflow, 99.0),
        },
        failure_rate: c.failure_rate(),
        counts: StepCounts {
            scheduled,
            started: c.started,
            succeeded: c.succeeded,
            failed: c.failed,
            dropped: c.dropped,
        },
        replicas,
        duration_s,
        failed_slos: slos
            .iter()
            .filter(|s| !s.holds())
            .map(|s| s.name.clone())
            .collect(),
        slos,
    }
}

/// Replica counts over `[from, to]` from a timeline of changes (the state at a time is
/// that of the last sample at or before it).
pub fn replicas_over(
    samples: &[ReplicaSample],
    from: Instant,
    to: Instant,
) -> Option<StepReplicas> {
    let at = |t: Instant| samples.iter().rev().find(|s| s.at <= t).or(samples.first());
    let (start, end) = (at(from)?, at(to)?);
    let inside: Vec<&ReplicaSample> = samples
        .iter()
        .filter(|s| s.at > from && s.at <= to)
        .chain([start])
        .collect();
    let min_ready = inside.iter().map(|s| s.ready).min().unwrap_or(end.ready);
    let max_ready = inside.iter().map(|s| s.ready).max().unwrap_or(end.ready);
    let desired_changed = inside.iter().any(|s| s.desired != end.desired);
    Some(StepReplicas {
        ready: end.ready,
        desired: end.desired,
        min_ready,
        max_ready,
        settled: end.desired == end.ready && end.current == end.ready && !desired_changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t0: Instant, secs: u64, desired: u32, ready: u32) -> ReplicaSample {
        ReplicaSample {
            at: t0 + Duration::from_secs(secs),
            desired,
            current: desired.max(ready),
            ready,
        }
    }

    #[test]
    fn a_steady_replica_count_is_settled() {
        let t0 = Instant::now();
        let s = [sample(t0, 0, 2, 2), sample(t0, 30, 2, 2)];
        let r = replicas_over(
            &s,
            t0 + Duration::from_secs(10),
            t0 + Duration::from_secs(20),
        );
        let r = r.unwrap();
        assert!(r.settled);
        assert_eq!((r.ready, r.min_ready, r.max_ready), (2, 2, 2));
    }

    #[test]
    fn scaling_during_the_step_or_pending_replicas_are_not_settled() {
        let t0 = Instant::now();
        let s = [
            sample(t0, 0, 2, 2),
            sample(t0, 15, 4, 2),
            sample(t0, 18, 4, 4),
        ];
        let secs = |n| t0 + Duration::from_secs(n);
        let r = replicas_over(&s, secs(10), secs(20)).unwrap();
        assert!(!r.settled, "desired changed within the step");
        assert_eq!((r.min_ready, r.max_ready, r.ready), (2, 4, 4));
        let r = replicas_over(&s, secs(16), secs(17)).unwrap();
        assert!(!r.settled, "desired 4, ready 2 at the end");
        let r = replicas_over(&s, secs(19), secs(25)).unwrap();
        assert!(r.settled);
    }

    #[test]
    fn no_samples_no_replicas() {
        let t0 = Instant::now();
        assert_eq!(replicas_over(&[], t0, t0), None);
    }
}
