//! SLO evaluation: observed values from the recorder's windows (and, where the
//! platform has them, the replica timeline), compared with each threshold; the
//! built-in load-delivered check; the verdict.

use serde::{Deserialize, Serialize};

use crate::autoscale::figures::HpaFigures;
use crate::plan::Plan;
use crate::scenario::{Bound, LatencyStat, Metric, Slo, SloSource, Unit};
use crate::stats::histogram::percentile_ms;
use crate::stats::{RunStats, WindowStats};

/// Largest relative gap between achieved and scheduled start rate the
/// load-delivered check accepts.
pub const RATE_TOLERANCE: f64 = 0.01;

/// An SLO's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Unknown,
}

/// The run's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
}

/// Values from outside the client's own measurements.
#[derive(Debug, Clone, Default)]
pub struct External {
    /// PromQL and alert SLO observations from Prometheus, by SLO index (see `crate::prom`).
    pub prometheus: crate::prom::PromObservations,
    /// HPA timing from the replica timeline, when the platform has one.
    pub hpa: Option<crate::autoscale::figures::HpaFigures>,
    /// Why there is no HPA data (shown as the reason of an unknown).
    pub hpa_missing: String,
    /// The run was stopped early by an interrupt.
    pub interrupted: bool,
    /// A distributed run's generators whose starts are missing, one line each (they fail
    /// the load-delivered check, whether or not the scenario turned it off).
    pub lost_generators: Vec<String>,
}

/// The window an SLO was evaluated over (run.json `window`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowInfo {
    /// `run`, `stage 2`, `fault aborts`, or `10s–30s`.
    pub label: String,
    /// Start, seconds after the run's zero (plan time).
    pub from_s: f64,
    /// End, seconds after the run's zero (plan time).
    pub to_s: f64,
}

/// One evaluated SLO (run.json `slos[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloResult {
    pub name: String,
    /// The metric name, or `promql: <expr>`, or `load_delivered` for the built-in check.
    pub metric: String,
    pub window: WindowInfo,
    /// `max` or `min`.
    pub bound: Bound,
    /// Threshold in `unit`.
    pub threshold: f64,
    /// Observed value in `unit`; null when there was no data.
    pub observed: Option<f64>,
    /// `ms`, `s`, `ratio`, `count`, `per_s` or `number`.
    pub unit: Unit,
    pub status: Status,
    /// Whether an unknown status passes.
    pub allow_unknown: bool,
    /// Why the status is unknown, or details of a built-in check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// True for checks slo-check adds itself.
    #[serde(default)]
    pub builtin: bool,
    /// PromQL and alert SLOs: the query as sent to Prometheus (`${window}` expanded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Alert SLOs: when the alert fired and resolved, against the deadlines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<crate::prom::AlertTiming>,
}

impl SloResult {
    /// Whether this result lets the run pass.
    pub fn holds(&self) -> bool {
        match self.status {
            Status::Pass => true,
            Status::Fail => false,
            Status::Unknown => self.allow_unknown,
        }
    }
}

/// Evaluate every SLO of the plan, then the built-in checks.
pub fn evaluate(plan: &Plan, stats: &RunStats, ext: &External) -> Vec<SloResult> {
    let mut out: Vec<SloResult> = plan
        .scenario
        .slos
        .iter()
        .zip(&plan.slo_windows)
        .enumerate()
        .map(|(i, (slo, w))| evaluate_one(plan, i, slo, &stats.windows[*w], ext))
        .collect();
    if plan.scenario.check_load_delivered || !ext.lost_generators.is_empty() {
        let mut check = load_delivered(plan, &stats.windows[0], plan.scheduled, ext.interrupted);
        if !ext.lost_generators.is_empty() {
            check.status = Status::Fail;
            check.reason = Some(format!(
                "{} of {} scheduled starts were sent; {} generator{} lost, so the load was not delivered: {}",
                stats.windows[0].counts.started,
                plan.scheduled,
                ext.lost_generators.len(),
                if ext.lost_generators.len() == 1 {
                    " was"
                } else {
                    "s were"
                },
                ext.lost_generators.join("; ")
            ));
        }
        out.push(check);
    }
    out
}

fn window_info(w: &WindowStats) -> WindowInfo {
    WindowInfo {
        label: w.spec.label.clone(),
        from_s: w.spec.from_us as f64 / 1e6,
        to_s: w.spec.to_us as f64 / 1e6,
    }
}

fn evaluate_one(plan: &Plan, i: usize, slo: &Slo, w: &WindowStats, ext: &External) -> SloResult {
    let prom = ext.prometheus.get(i);
    let (metric, unit, observed) = match &slo.source {
        SloSource::Metric(m) => (
            m.name(&plan.scenario.workflow),
            m.unit(),
            observe(m, w, ext),
        ),
        SloSource::PromQl(q) => (format!("promql: {q}"), Unit::Number, prom.value.clone()),
        SloSource::Alert(a) => (
            format!("alert: {}", a.alert),
            Unit::Seconds,
            prom.value.clone(),
        ),
    };
    let (observed, mut reason) = match observed {
        Ok(v) => (Some(v), None),
        Err(why) => (None, Some(why)),
    };
    let alert = prom
        .alert
        .clone()
        .filter(|_| matches!(slo.source, SloSource::Alert(_)));
    let threshold = match (&slo.source, &alert) {
        (SloSource::Alert(_), Some(a)) => a.fires_within_s,
        _ => slo.threshold,
    };
    // An alert SLO is judged on its timing: "never fired" is a fail, not an unknown.
    let status = match (observed, &alert) {
        (_, Some(a)) => {
            reason = Some(a.summary());
            if a.holds { Status::Pass } else { Status::Fail }
        }
        (None, None) => Status::Unknown,
        (Some(v), None) => {
            let ok = match slo.bound {
                Bound::Max => v <= slo.threshold,
                Bound::Min => v >= slo.threshold,
            };
            if ok { Status::Pass } else { Status::Fail }
        }
    };
    SloResult {
        name: slo.name.clone(),
        metric,
        window: window_info(w),
        bound: slo.bound,
        threshold,
        observed,
        unit,
        status,
        allow_unknown: slo.allow_unknown,
        reason,
        builtin: false,
        query: prom
            .query
            .clone()
            .filter(|_| !matches!(slo.source, SloSource::Metric(_))),
        alert,
    }
}

fn observe(m: &Metric, w: &WindowStats, ext: &External) -> Result<f64, String> {
    let hpa = |pick: fn(&HpaFigures) -> Option<f64>, what: &str| match &ext.hpa {
        Some(v) => pick(v).ok_or_else(|| format!("no {what} was observed in the run")),
        None => Err(ext.hpa_missing.clone()),
    };
    match m {
        Metric::Latency { step, stat } => {
            let h = match step {
                Some(i) => &w.steps[*i],
                None => &w.workflow,
            };
            if h.is_empty() {
                return Err(format!(
                    "no {} succeeded in the window",
                    if step.is_some() { "step" } else { "workflow" }
                ));
            }
            Ok(match stat {
                LatencyStat::Percentile(p) => percentile_ms(h, *p).unwrap_or_default(),
                LatencyStat::Max => h.max() as f64 / 1000.0,
                LatencyStat::Mean => h.mean() / 1000.0,
            })
        }
        Metric::FailureRate => w
            .counts
            .failure_rate()
            .ok_or_else(|| "no workflow finished in the window".to_string()),
        Metric::Dropped => Ok(w.counts.dropped as f64),
        Metric::AchievedRate => {
            let len = w.spec.len_s();
            if len > 0.0 {
                Ok(w.counts.started_actual as f64 / len)
            } else {
                Err("the window is empty".into())
            }
        }
        Metric::HpaScaleUpSeconds => hpa(|v| v.scale_up_s, "scale-up (ready replicas never rose)"),
        Metric::HpaDecisionSeconds => hpa(
            |v| v.decision_s,
            "scale-up decision (desired replicas never rose)",
        ),
        Metric::HpaPeakReplicas => hpa(|v| Some(f64::from(v.peak_replicas)), "replica count"),
    }
}

/// A client-metric SLO judged over one window (a canary step's analysis): no Prometheus,
/// no replica timeline.
pub fn judge(slo: &Slo, w: &WindowStats, workflow: &[crate::scenario::Step]) -> SloResult {
    let ext = External {
        hpa_missing: "a canary step's analysis has no replica timeline".into(),
        ..External::default()
    };
    let (metric, unit, observed) = match &slo.source {
        SloSource::Metric(m) => (m.name(workflow), m.unit(), observe(m, w, &ext)),
        SloSource::PromQl(q) => (
            format!("promql: {q}"),
            Unit::Number,
            Err("PromQL is not judged per step".into()),
        ),
        SloSource::Alert(a) => (
            format!("alert: {}", a.alert),
            Unit::Seconds,
            Err("alerts are not judged per step".into()),
        ),
    };
    let (observed, reason) = match observed {
        Ok(v) => (Some(v), None),
        Err(why) => (None, Some(why)),
    };
    let status = match observed {
        None => Status::Unknown,
        Some(v) if holds(slo.bound, v, slo.threshold) => Status::Pass,
        Some(_) => Status::Fail,
    };
    SloResult {
        name: slo.name.clone(),
        metric,
        window: window_info(w),
        bound: slo.bound,
        threshold: slo.threshold,
        observed,
        unit,
        status,
        allow_unknown: slo.allow_unknown,
        reason,
        builtin: false,
        query: None,
        alert: None,
    }
}

fn holds(bound: Bound, v: f64, threshold: f64) -> bool {
    match bound {
        Bound::Max => v <= threshold,
        Bound::Min => v >= threshold,
    }
}

/// The built-in check over `run` (the whole run, or one window holding `scheduled` starts):
/// nothing dropped, and the achieved start rate within 1 % of the schedule's.
pub fn load_delivered(
    plan: &Plan,
    run: &WindowStats,
    scheduled: u64,
    interrupted: bool,
) -> SloResult {
    let len = run.spec.len_s();
    let scheduled_rate = scheduled as f64 / len;
    let achieved = run.counts.started_actual as f64 / len;
    let gap = (achieved - scheduled_rate).abs() / scheduled_rate;
    let dropped = run.counts.dropped;
    let ok = dropped == 0 && gap <= RATE_TOLERANCE;
    let reason = if interrupted {
        format!(
            "the run was interrupted: {} of {scheduled} scheduled starts were sent",
            run.counts.started
        )
    } else if ok {
        format!(
            "{} of {scheduled} scheduled starts sent within the schedule, none dropped",
            run.counts.started_actual
        )
    } else if dropped > 0 {
        format!(
            "{dropped} starts were dropped (max_in_flight {} reached): the load was not delivered",
            plan.scenario.load.max_in_flight
        )
    } else {
        format!(
            "achieved {achieved:.2}/s against {scheduled_rate:.2}/s scheduled ({:.2} % off, at most {:.0} % allowed): the generator fell behind",
            gap * 100.0,
            RATE_TOLERANCE * 100.0
        )
    };
    SloResult {
        name: "load delivered".into(),
        metric: "load_delivered".into(),
        window: window_info(run),
        bound: Bound::Min,
        threshold: scheduled_rate * (1.0 - RATE_TOLERANCE),
        observed: Some(achieved),
        unit: Unit::PerSecond,
        status: if ok { Status::Pass } else { Status::Fail },
        allow_unknown: false,
        reason: Some(reason),
        builtin: true,
        query: None,
        alert: None,
    }
}

/// Pass when every result holds.
pub fn verdict(results: &[SloResult]) -> Verdict {
    if results.iter().all(SloResult::holds) {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
}
