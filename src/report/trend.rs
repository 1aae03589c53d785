//! The history section of a run (run.json `history`, with `--baseline history`): for
//! each metric, its series over the earlier runs of the scenario and whether this run
//! starts a change point for the worse. Found by `history::regress`; every format
//! renders it from here.

use serde::{Deserialize, Serialize};

use super::model::Worse;
use crate::scenario::Unit;

/// Regression detection against the run history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryReport {
    /// The store read (password hidden).
    pub store: String,
    /// How many earlier runs of this scenario (same platform and time scale) were compared.
    pub runs: usize,
    /// "E-divisive means with a Student t-test (Hunter)".
    pub method: String,
    /// A split counts when its t-test's p-value is below this.
    pub max_pvalue: f64,
    /// …and the mean moved for the worse by more than this fraction (`--max-regression`).
    pub min_effect: f64,
    /// One entry per metric compared.
    pub metrics: Vec<MetricTrend>,
    /// How many metrics regressed.
    pub regressions: usize,
    /// Why nothing could be judged (too few runs), or other remarks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One metric's series and verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricTrend {
    /// `workflow p95`, `failure rate`, `achieved rate`, `SLO <name>`.
    pub name: String,
    pub unit: Unit,
    pub worse: Worse,
    /// This run's value (null: no data).
    pub current: Option<f64>,
    /// The earlier runs' values, oldest first, then this run's (runs without a value
    /// are left out).
    pub series: Vec<f64>,
    /// The newest change point, if any: index into `series` of its first value.
    pub change_at: Option<usize>,
    /// Mean of the segment before the newest change point (or of the whole series).
    pub before_mean: Option<f64>,
    /// Mean of the segment from the newest change point on.
    pub after_mean: Option<f64>,
    /// Relative change of `after_mean` against `before_mean`.
    pub change: Option<f64>,
    /// The change point's p-value.
    pub pvalue: Option<f64>,
    /// This run is in a new segment (at most two runs old), changed for the worse
    /// beyond the floor.
    pub regression: bool,
}

impl HistoryReport {
    /// One line for the terminal and summary.md: what was compared and what regressed.
    pub fn summary_line(&self) -> String {
        let mut line = format!(
            "history ({}, {} earlier run{}): ",
            self.store,
            self.runs,
            if self.runs == 1 { "" } else { "s" }
        );
        let regressed: Vec<String> = self
            .metrics
            .iter()
            .filter(|m| m.regression)
            .map(MetricTrend::text)
            .collect();
        if regressed.is_empty() {
            line.push_str(&format!("no regression in {} metrics", self.metrics.len()));
        } else {
            line.push_str(&format!(
                "{} regression{}: {}",
                regressed.len(),
                if regressed.len() == 1 { "" } else { "s" },
                regressed.join("; ")
            ));
        }
        for note in &self.notes {
            line.push_str(&format!(" ({note})"));
        }
        line
    }
}

impl MetricTrend {
    /// `workflow p95 812 ms → 975 ms (+20.1 %, change point 1 run ago, p = 2.1e-6)`.
    pub fn text(&self) -> String {
        let v =
            |x: Option<f64>| x.map_or("n/a".to_string(), |x| super::format::value(x, self.unit));
        let mut t = format!(
            "{} {} → {}",
            self.name,
            v(self.before_mean),
            v(self.after_mean.or(self.current)),
        );
        if let Some(c) = self.change {
            t.push_str(&format!(" ({:+.1} %", c * 100.0));
            if let (Some(at), Some(p)) = (self.change_at, self.pvalue) {
                let ago = self.series.len().saturating_sub(at + 1);
                t.push_str(&format!(
                    ", change point {}, p = {p:.1e}",
                    match ago {
                        0 => "at this run".to_string(),
                        1 => "1 run ago".to_string(),
                        n => format!("{n} runs ago"),
                    }
                ));
            }
            t.push(')');
        }
        t
    }
}
