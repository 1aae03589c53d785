//! `slos`: metric and PromQL SLOs (source, bound, threshold in the metric's unit) and
//! every SLO's window; alert SLOs are checked in `alert`.

use std::collections::HashSet;
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use super::{Ctx, alert, metric::parse_metric, promql::check_variables};
use crate::scenario::model::{
    Bound, Fault, Load, Metric, Slo, SloSource, Step, Subset, Unit, WindowRef,
};
use crate::scenario::raw::{RawSlo, RawWindow, StageRef};
use crate::units::{Quantity, format_duration, parse_duration, parse_ratio};

/// What an SLO may refer to: the validated steps, stages and faults.
pub(super) struct Refs<'a> {
    pub(super) steps: &'a [Step],
    pub(super) load: &'a Load,
    pub(super) faults: &'a [Fault],
    /// End of the schedule: the sum of the stage durations.
    pub(super) schedule_end: Duration,
    /// Whether the scenario has a `canary:` section (so `subset:` means something).
    pub(super) has_canary: bool,
}

/// The SLOs with no error; an SLO with any error is left out (the errors are in `cx`).
pub(super) fn validate_slos(cx: &mut Ctx, raw: &[Spanned<RawSlo>], refs: &Refs) -> Vec<Slo> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (i, s) in raw.iter().enumerate() {
        let loc = Some(s.referenced);
        let s = &s.value;
        let path = format!("slos[{i}]");
        let before = cx.errors.len();
        if !seen.insert(s.name.clone()) {
            cx.err(
                loc,
                format!("{path}.name"),
                format!("two SLOs are named `{}`; SLO names must be unique", s.name),
            );
        }
        let slo = if alert::is_alert(s) {
            if s.subset.is_some() {
                cx.err(loc, format!("{path}.subset"), "an alert has no subset: `subset` goes with latency.*, step.<name>.latency.* or failure_rate");
            }
            let window = slo_window(cx, loc, &path, s, refs);
            alert::validate_alert(cx, loc, &path, s, window)
        } else {
            metric_slo(cx, loc, &path, s, refs)
        };
        if let Some(slo) = slo {
            if cx.errors.len() == before {
                out.push(slo);
            }
        }
    }
    out
}

/// A `metric` or `promql` SLO; `None` when its source is unusable.
fn metric_slo(
    cx: &mut Ctx,
    loc: Option<Location>,
    path: &str,
    s: &RawSlo,
    refs: &Refs,
) -> Option<Slo> {
    let source = slo_source(cx, loc, path, s, refs.steps);
    let (bound, q) = match (&s.max, &s.min) {
        (Some(q), None) => (Bound::Max, Some(q)),
        (None, Some(q)) => (Bound::Min, Some(q)),
        (Some(_), Some(_)) => {
            cx.err(
                loc,
                path,
                "give either `max` or `min`, not both (write two SLOs for a range)",
            );
            (Bound::Max, None)
        }
        (None, None) => {
            cx.err(
                loc,
                path,
                "an SLO needs a threshold: `max: ...` or `min: ...`",
            );
            (Bound::Max, None)
        }
    };
    let unit = match &source {
        Some(SloSource::Metric(m)) => Some(m.unit()),
        Some(SloSource::PromQl(_)) => Some(Unit::Number),
        Some(SloSource::Alert(_)) => Some(Unit::Seconds),
        None => None,
    };
    let threshold = match (unit, q) {
        (Some(unit), Some(q)) => match parse_threshold(unit, q) {
            Ok(v) => v,
            Err(e) => {
                cx.err(
                    loc,
                    format!("{path}.{}", if bound == Bound::Max { "max" } else { "min" }),
                    e,
                );
                0.0
            }
        },
        _ => 0.0,
    };
    let window = slo_window(cx, loc, path, s, refs);
    let subset = s
        .subset
        .as_deref()
        .and_then(|name| slo_subset(cx, loc, path, name, source.as_ref(), refs));
    Some(Slo {
        name: s.name.clone(),
        source: source?,
        bound,
        threshold,
        window,
        allow_unknown: s.allow_unknown,
        subset,
    })
}

/// `subset:` of an SLO: only with a `canary:` section, only `canary` or `stable`, only
/// for metrics a single workflow can be attributed to.
fn slo_subset(
    cx: &mut Ctx,
    loc: Option<Location>,
    path: &str,
    name: &str,
    source: Option<&SloSource>,
    refs: &Refs,
) -> Option<Subset> {
    let path = format!("{path}.subset");
    if !refs.has_canary {
        cx.err(
            loc,
            path,
            "`subset` needs a `canary:` section that names the subsets",
        );
        return None;
    }
    let Some(subset) = Subset::ALL.into_iter().find(|s| s.as_str() == name) else {
        cx.err(
            loc,
            path,
            format!("unknown subset `{name}`; use `canary` or `stable`"),
        );
        return None;
    };
    match source {
        Some(SloSource::Metric(Metric::Latency { .. } | Metric::FailureRate)) | None => {
            Some(subset)
        }
        Some(_) => {
            cx.err(loc, path, "a subset is known per workflow: `subset` goes with latency.*, step.<name>.latency.* or failure_rate");
            None
        }
    }
}

/// An analysis SLO of a canary step: a per-workflow client metric with a threshold and
/// no window or subset of its own (a step's window, the canary subset).
pub(super) fn analysis_slo(
    cx: &mut Ctx,
    loc: Option<Location>,
    path: &str,
    s: &RawSlo,
    refs: &Refs,
) -> Option<Slo> {
    let before = cx.errors.len();
    if s.window.is_some() || s.subset.is_some() {
        cx.err(loc, path, "an analysis SLO is judged over each step's canary workflows: remove `window` and `subset`");
    }
    if s.promql.is_some() || alert::is_alert(s) {
        cx.err(loc, path, "an analysis SLO is a client metric (`metric:` latency.p95, step.<name>.latency.p99 or failure_rate), judged live at each step's end");
        return None;
    }
    let slo = metric_slo(cx, loc, path, s, refs)?;
    if !matches!(
        slo.source,
        SloSource::Metric(Metric::Latency { .. } | Metric::FailureRate)
    ) {
        cx.err(loc, format!("{path}.metric"), "an analysis SLO needs a per-workflow metric: latency.*, step.<name>.latency.* or failure_rate");
    }
    (cx.errors.len() == before).then_some(slo)
}

/// What the SLO measures: exactly one of `metric` and `promql`.
fn slo_source(
    cx: &mut Ctx,
    loc: Option<Location>,
    path: &str,
    s: &RawSlo,
    steps: &[Step],
) -> Option<SloSource> {
    match (&s.metric, &s.promql) {
        (Some(m), None) => match parse_metric(m, steps) {
            Ok(m) => Some(SloSource::Metric(m)),
            Err(e) => {
                cx.err(loc, format!("{path}.metric"), e);
                None
            }
        },
        (None, Some(q)) if !q.trim().is_empty() => {
            let problems = check_variables(q);
            for p in &problems {
                cx.err(loc, format!("{path}.promql"), p.clone());
            }
            problems.is_empty().then(|| SloSource::PromQl(q.clone()))
        }
        (None, Some(_)) => {
            cx.err(
                loc,
                format!("{path}.promql"),
                "the PromQL expression is empty",
            );
            None
        }
        (Some(_), Some(_)) => {
            cx.err(loc, path, "give either `metric` or `promql`, not both");
            None
        }
        (None, None) => {
            cx.err(
                loc,
                path,
                "an SLO needs `metric` (e.g. latency.p95) or `promql`",
            );
            None
        }
    }
}

/// An SLO's window (the whole run unless `window` says otherwise).
fn slo_window(
    cx: &mut Ctx,
    loc: Option<Location>,
    path: &str,
    s: &RawSlo,
    refs: &Refs,
) -> WindowRef {
    match &s.window {
        None => WindowRef::Run,
        Some(w) => match parse_window(w, refs.load, refs.faults, refs.schedule_end) {
            Ok(w) => w,
            Err(e) => {
                cx.err(loc, format!("{path}.window"), e);
                WindowRef::Run
            }
        },
    }
}

fn parse_threshold(unit: Unit, q: &Quantity) -> Result<f64, String> {
    match unit {
        Unit::Ms | Unit::Seconds => {
            let Quantity::Text(t) = q else {
                return Err(format!(
                    "`{q}` has no unit; write a duration like {q}ms or {q}s"
                ));
            };
            let d = parse_duration(t)?;
            Ok(if unit == Unit::Ms {
                d.as_secs_f64() * 1000.0
            } else {
                d.as_secs_f64()
            })
        }
        Unit::Ratio => parse_ratio(q),
        Unit::Count => match q {
            Quantity::Number(n) if n.is_finite() && *n >= 0.0 && n.fract() == 0.0 => Ok(*n),
            _ => Err(format!(
                "`{q}` is not a count; write a whole number such as 0"
            )),
        },
        Unit::PerSecond | Unit::Number => match q {
            Quantity::Number(n) if n.is_finite() && (unit == Unit::Number || *n >= 0.0) => Ok(*n),
            _ => Err(format!(
                "`{q}` is not a number{}",
                if unit == Unit::PerSecond {
                    " of starts per second, e.g. 95"
                } else {
                    ""
                }
            )),
        },
    }
}

fn parse_window(
    w: &RawWindow,
    load: &Load,
    faults: &[Fault],
    end: Duration,
) -> Result<WindowRef, String> {
    let forms = [
        w.from.is_some() || w.to.is_some(),
        w.stage.is_some(),
        w.fault.is_some(),
    ];
    if forms.iter().filter(|f| **f).count() != 1 {
        return Err(
            "a window is one of `{ from: 10s, to: 30s }`, `{ stage: 2 }` or `{ fault: NAME }`"
                .into(),
        );
    }
    if let Some(stage) = &w.stage {
        let idx = match stage {
            StageRef::Number(n) if *n >= 1 && (*n as usize) <= load.stages.len() => {
                (*n - 1) as usize
            }
            StageRef::Number(n) => {
                return Err(format!(
                    "stage {n} does not exist; the schedule has stages 1 to {}",
                    load.stages.len()
                ));
            }
            StageRef::Name(name) => load
                .stages
                .iter()
                .position(|s| s.name.as_deref() == Some(name))
                .ok_or_else(|| format!("no stage is named `{name}`"))?,
        };
        return Ok(WindowRef::Stage(idx));
    }
    if let Some(name) = &w.fault {
        let idx = faults.iter().position(|f| &f.name == name).ok_or_else(|| {
            let known: Vec<_> = faults.iter().map(|f| f.name.as_str()).collect();
            format!(
                "no fault is named `{name}` (faults: {})",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            )
        })?;
        return Ok(WindowRef::Fault(idx));
    }
    let from = w.from.map_or(Duration::ZERO, |d| d.0);
    let to = w.to.map(|d| d.0);
    if let Some(to) = to {
        if to <= from {
            return Err(format!(
                "`to` ({}) must be after `from` ({})",
                format_duration(to),
                format_duration(from)
            ));
        }
    }
    if from >= end && !end.is_zero() {
        return Err(format!(
            "`from` ({}) is at or after the end of the schedule ({})",
            format_duration(from),
            format_duration(end)
        ));
    }
    Ok(WindowRef::Range { from, to })
}
