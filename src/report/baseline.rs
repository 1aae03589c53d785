//! Comparison with an earlier run (`--baseline OLD.json`): per-SLO and
//! per-percentile deltas, and which of them are regressions beyond
//! `--max-regression`. The result lives in run.json's `baseline` object and
//! every format renders it from there.

use std::path::{Path, PathBuf};

use super::model::RunReport;
pub use super::model::{BaselineReport, Delta, Worse};
use crate::scenario::{Bound, Unit};

/// Default of `--max-regression`, as the flag is written.
pub const DEFAULT_MAX_REGRESSION: &str = "10%";
/// A failure rate (or other ratio) must also grow by this much, absolutely
/// (0.1 percentage points), to regress: 0 % → 0.01 % is noise, not a regression.
pub const RATIO_FLOOR: f64 = 0.001;

/// A loaded baseline and the threshold to compare with.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub file: PathBuf,
    pub report: RunReport,
    pub max_regression: f64,
}

impl Baseline {
    /// From `--baseline` and `--max-regression`; errors name the flag or file.
    pub fn from_args(
        file: Option<&Path>,
        max_regression: &str,
    ) -> Result<Option<Baseline>, String> {
        let max_regression = parse_max_regression(max_regression)?;
        let Some(file) = file else { return Ok(None) };
        let report = super::input::read(file).map_err(|e| format!("--baseline {e}"))?;
        Ok(Some(Baseline {
            file: file.to_path_buf(),
            report,
            max_regression,
        }))
    }

    /// `current` with its `baseline` comparison filled in.
    pub fn apply(&self, current: &RunReport) -> RunReport {
        let mut out = current.clone();
        out.baseline = Some(compare(
            current,
            &self.report,
            &self.file,
            self.max_regression,
        ));
        out
    }
}

/// `10%` or `10` (percent) → 0.10.
pub fn parse_max_regression(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let n = t.strip_suffix('%').unwrap_or(t).trim();
    match n.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v / 100.0),
        _ => Err(format!(
            "--max-regression {text:?}: expected a percentage like 10% (a change for the worse beyond it is a regression)"
        )),
    }
}

/// Compare `current` with `base`.
pub fn compare(
    current: &RunReport,
    base: &RunReport,
    file: &Path,
    max_regression: f64,
) -> BaselineReport {
    let (c, b) = (&current.workflow.latency_ms, &base.workflow.latency_ms);
    let mut deltas: Vec<Delta> = [
        ("p50", c.p50, b.p50),
        ("p90", c.p90, b.p90),
        ("p95", c.p95, b.p95),
        ("p99", c.p99, b.p99),
        ("p99.9", c.p999, b.p999),
    ]
    .into_iter()
    .map(|(p, now, then)| {
        delta(
            format!("workflow {p}"),
            Unit::Ms,
            Worse::Higher,
            then,
            now,
            max_regression,
        )
    })
    .collect();
    deltas.push(delta(
        "failure rate".into(),
        Unit::Ratio,
        Worse::Higher,
        base.counts.failure_rate,
        current.counts.failure_rate,
        max_regression,
    ));
    deltas.push(delta(
        "achieved rate".into(),
        Unit::PerSecond,
        Worse::Lower,
        Some(base.achieved_rate_per_s),
        Some(current.achieved_rate_per_s),
        max_regression,
    ));
    for s in &current.slos {
        let then = base
            .slos
            .iter()
            .find(|o| o.name == s.name)
            .and_then(|o| o.observed);
        let worse = match s.bound {
            Bound::Max => Worse::Higher,
            Bound::Min => Worse::Lower,
        };
        deltas.push(delta(
            format!("SLO {}", s.name),
            s.unit,
            worse,
            then,
            s.observed,
            max_regression,
        ));
    }
    let mut notes = Vec::new();
    if base.scenario != current.scenario {
        notes.push(format!(
            "the baseline ran scenario {:?}, this run {:?}: the numbers may not be comparable",
            base.scenario, current.scenario
        ));
    }
    if (base.time_scale - current.time_scale).abs() > f64::EPSILON {
        notes.push(format!(
            "the baseline ran at time scale {}, this run at {}",
            base.time_scale, current.time_scale
        ));
    }
    BaselineReport {
        file: file.display().to_string(),
        scenario: base.scenario.clone(),
        started_at: base.started_at.clone(),
        tool_version: base.tool_version.clone(),
        max_regression,
        regressions: deltas.iter().filter(|d| d.regression).count(),
        deltas,
        notes,
    }
}

fn delta(
    name: String,
    unit: Unit,
    worse: Worse,
    baseline: Option<f64>,
    current: Option<f64>,
    max: f64,
) -> Delta {
    let change = match (baseline, current) {
        (Some(b), Some(c)) if b != 0.0 => Some((c - b) / b.abs()),
        _ => None,
    };
    let regression = match (baseline, current) {
        (Some(b), Some(c)) => {
            let by = match worse {
                Worse::Higher => c - b,
                Worse::Lower => b - c,
            };
            let floor = if unit == Unit::Ratio {
                RATIO_FLOOR
            } else {
                0.0
            };
            by > (max * b.abs()).max(floor)
        }
        // Data the baseline had and this run lost (e.g. nothing succeeded) is worse.
        (Some(_), None) => true,
        _ => false,
    };
    Delta {
        name,
        unit,
        worse,
        baseline,
        current,
        change,
        regression,
    }
}

/// `+12.3 %`, `−4.0 %`, or `n/a`.
pub fn change_text(d: &Delta) -> String {
    match d.change {
        Some(c) => format!("{:+.1} %", c * 100.0),
        None if d.baseline == Some(0.0) && d.current.is_some_and(|v| v != 0.0) => "new".into(),
        None => "n/a".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_regression_takes_percentages() {
        assert_eq!(parse_max_regression("10%").unwrap(), 0.10);
        assert_eq!(parse_max_regression("2.5").unwrap(), 0.025);
        assert!(
            parse_max_regression("ten")
                .unwrap_err()
                .contains("--max-regression")
        );
        assert!(parse_max_regression("-1%").is_err());
    }

    #[test]
    fn direction_and_threshold_decide_a_regression() {
        let d =
            |unit, worse, b, c| delta("x".into(), unit, worse, Some(b), Some(c), 0.10).regression;
        assert!(d(Unit::Ms, Worse::Higher, 100.0, 111.0));
        assert!(!d(Unit::Ms, Worse::Higher, 100.0, 109.0));
        assert!(!d(Unit::Ms, Worse::Higher, 100.0, 50.0));
        assert!(d(Unit::PerSecond, Worse::Lower, 100.0, 89.0));
        assert!(!d(Unit::PerSecond, Worse::Lower, 100.0, 150.0));
        assert!(
            !d(Unit::Ratio, Worse::Higher, 0.0, 0.0005),
            "below the ratio floor"
        );
        assert!(d(Unit::Ratio, Worse::Higher, 0.0, 0.005));
        assert!(d(Unit::Count, Worse::Higher, 0.0, 3.0));
    }
}
