//! Regression detection against the history: for p50, p95, p99, failure rate, achieved
//! rate and every SLO's value, the series of the scenario's earlier comparable runs plus
//! this one goes through `stats::changepoint`; a regression is a change point for the
//! worse that this run is part of (the new segment is at most `RECENT` runs long), whose
//! means differ by more than the effect-size floor. Interrupted runs are left out of the
//! series (their values cover part of a schedule), and an interrupted run is not judged.
//! Pure: the runs come in, the `HistoryReport` goes out.

use super::{StoredRun, record};
use crate::report::RunReport;
use crate::report::baseline::RATIO_FLOOR;
use crate::report::model::Worse;
use crate::report::trend::{HistoryReport, MetricTrend};
use crate::scenario::Unit;
use crate::stats::changepoint;

/// Hunter's default significance: a split counts when p < 0.001.
pub const MAX_PVALUE: f64 = 0.001;
/// A change point is this run's when the new segment has at most this many runs: the run
/// that makes a shift detectable and the next one report it; after that it is the new
/// normal (and `slo-check history` still shows it).
pub const RECENT: usize = 2;
/// Fewer earlier runs than this, and nothing is judged.
pub const MIN_RUNS: usize = 5;
/// How many earlier runs are read.
pub const WINDOW: usize = 50;

/// The metrics judged, by observation name (SLOs are added per run).
const METRICS: [&str; 5] = [
    "workflow p50",
    "workflow p95",
    "workflow p99",
    "failure rate",
    "achieved rate",
];

/// Judge `current` against `earlier` (oldest first, comparable runs only).
pub fn detect(
    current: &RunReport,
    earlier: &[StoredRun],
    store: &str,
    min_effect: f64,
) -> HistoryReport {
    let now = record::observations(current);
    let judged = now
        .iter()
        .filter(|o| METRICS.contains(&o.name.as_str()) || o.name.starts_with("SLO "));
    let mut notes = Vec::new();
    let (earlier, left_out) = comparable(earlier);
    if left_out > 0 {
        notes.push(format!(
            "{left_out} interrupted earlier run{} left out",
            if left_out == 1 { "" } else { "s" }
        ));
    }
    if current.interrupted {
        notes.push(
            "this run was interrupted: its values cover part of the schedule, so it is not judged"
                .into(),
        );
    }
    if earlier.len() < MIN_RUNS {
        notes.push(format!(
            "{} earlier comparable run{} in the history; at least {MIN_RUNS} are needed to judge a change",
            earlier.len(),
            if earlier.len() == 1 { "" } else { "s" }
        ));
    }
    let metrics: Vec<MetricTrend> = judged
        .map(|o| {
            let mut series: Vec<f64> = earlier.iter().filter_map(|r| r.value(&o.name)).collect();
            let enough = series.len() >= MIN_RUNS && !current.interrupted;
            series.extend(o.value);
            trend(
                &o.name, o.unit, o.worse, o.value, series, enough, min_effect,
            )
        })
        .collect();
    HistoryReport {
        store: store.to_string(),
        runs: earlier.len(),
        method: "E-divisive means (Matteson & James 2014) with a Student t-test, as in Hunter / Apache Otava".into(),
        max_pvalue: MAX_PVALUE,
        min_effect,
        regressions: metrics.iter().filter(|m| m.regression).count(),
        metrics,
        notes,
    }
}

/// The earlier runs a run is judged against: those not interrupted; and how many were.
fn comparable(earlier: &[StoredRun]) -> (Vec<&StoredRun>, usize) {
    let kept: Vec<&StoredRun> = earlier.iter().filter(|r| !r.interrupted).collect();
    let left_out = earlier.len() - kept.len();
    (kept, left_out)
}

/// One metric's verdict over `series` (this run last, when it has a value).
pub fn trend(
    name: &str,
    unit: Unit,
    worse: Worse,
    current: Option<f64>,
    series: Vec<f64>,
    enough: bool,
    min_effect: f64,
) -> MetricTrend {
    let newest = changepoint::change_points(&series, MAX_PVALUE).pop();
    let (before, after) = match &newest {
        Some(c) => (Some(c.before_mean), Some(c.after_mean)),
        None if !series.is_empty() => (Some(changepoint::mean(&series)), None),
        None => (None, None),
    };
    let change = match (before, after) {
        (Some(b), Some(a)) if b != 0.0 => Some((a - b) / b.abs()),
        _ => None,
    };
    let regression = enough
        && current.is_some()
        && newest.as_ref().is_some_and(|c| {
            let by = match worse {
                Worse::Higher => c.after_mean - c.before_mean,
                Worse::Lower => c.before_mean - c.after_mean,
            };
            let floor = if unit == Unit::Ratio {
                RATIO_FLOOR
            } else {
                0.0
            };
            series.len() - c.at <= RECENT && by > (min_effect * c.before_mean.abs()).max(floor)
        });
    MetricTrend {
        name: name.to_string(),
        unit,
        worse,
        current,
        change_at: newest.as_ref().map(|c| c.at),
        before_mean: before,
        after_mean: after,
        change,
        pvalue: newest.as_ref().map(|c| c.pvalue),
        series,
        regression,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noisy(level: f64, noise: f64, n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed ^ 0x9e37_79b9_7f4a_7c15;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (s >> 11) as f64 / (1u64 << 53) as f64;
                level * (1.0 + noise * (2.0 * u - 1.0))
            })
            .collect()
    }

    fn stored(id: i64, p95: f64, interrupted: bool) -> StoredRun {
        StoredRun {
            id,
            kind: "run".into(),
            scenario: "s".into(),
            started_at: String::new(),
            verdict: "pass".into(),
            platform: "url".into(),
            time_scale: 1.0,
            tool_version: String::new(),
            report_dir: None,
            labels: Default::default(),
            observations: vec![crate::history::Observation {
                name: "workflow p95".into(),
                unit: Unit::Ms,
                worse: Worse::Higher,
                value: Some(p95),
            }],
            interrupted,
        }
    }

    /// An interrupted run's p95 (here a short run's, far off) is not part of the series.
    #[test]
    fn interrupted_runs_are_left_out_of_the_series() {
        let runs: Vec<StoredRun> = (0..8)
            .map(|i| stored(i, if i % 3 == 1 { 900.0 } else { 40.0 }, i % 3 == 1))
            .collect();
        let (kept, left_out) = comparable(&runs);
        assert_eq!(left_out, 3);
        let series: Vec<f64> = kept
            .iter()
            .filter_map(|r| r.value("workflow p95"))
            .collect();
        assert_eq!(series, vec![40.0; 5]);
        assert_eq!(
            kept.iter().map(|r| r.id).collect::<Vec<_>>(),
            [0, 2, 3, 5, 6]
        );
    }

    fn judge(series: &[f64]) -> MetricTrend {
        let current = series.last().copied();
        trend(
            "workflow p95",
            Unit::Ms,
            Worse::Higher,
            current,
            series.to_vec(),
            series.len() > MIN_RUNS,
            0.10,
        )
    }

    /// Twenty runs of an unchanged target (±5 % noise): no run is flagged, over many
    /// synthetic histories.
    #[test]
    fn twenty_unchanged_runs_flag_nothing() {
        for seed in 0..200 {
            let xs = noisy(800.0, 0.05, 20, seed);
            for n in MIN_RUNS + 1..=xs.len() {
                let t = judge(&xs[..n]);
                assert!(!t.regression, "seed {seed}, run {n}: {t:?}");
            }
        }
    }

    /// A 20 % step in p95 after twenty runs is flagged by the first or second run after it.
    #[test]
    fn a_twenty_percent_p95_step_is_flagged_within_two_runs() {
        for seed in 0..200 {
            let mut xs = noisy(800.0, 0.05, 20, seed);
            xs.extend(noisy(960.0, 0.05, 2, seed + 1000));
            let first = judge(&xs[..21]).regression;
            let second = judge(&xs[..22]);
            assert!(first || second.regression, "seed {seed}: {second:?}");
            assert_eq!(second.change_at, Some(20), "seed {seed}: {second:?}");
        }
    }

    /// An improvement is a change point, not a regression; a step three runs old is the
    /// new normal.
    #[test]
    fn improvements_and_old_steps_are_not_regressions() {
        let mut xs = noisy(800.0, 0.05, 20, 3);
        xs.extend(noisy(600.0, 0.05, 2, 4));
        let t = judge(&xs);
        assert_eq!(t.change_at, Some(20));
        assert!(!t.regression, "{t:?}");
        let mut xs = noisy(800.0, 0.05, 20, 5);
        xs.extend(noisy(960.0, 0.05, 3, 6));
        assert!(!judge(&xs).regression);
    }

    /// A step below the effect-size floor is not a regression, however significant.
    #[test]
    fn a_step_below_the_floor_is_not_a_regression() {
        let mut xs = vec![800.0; 20];
        xs.extend([840.0, 840.0]);
        let t = judge(&xs);
        assert_eq!(t.change_at, Some(20));
        assert!(!t.regression, "{t:?}");
    }
}
