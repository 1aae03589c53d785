//! Alert-verification SLOs: read `ALERTS{alertname=...,alertstate="firing"}` with a
//! range query over the run and check that the alert fired within `fires_within` of the
//! window's start and stopped within `resolves_within` of its end (both scaled by
//! `--time-scale`, like the window). While a deadline has not passed and the answer is
//! not settled, the range is queried again every second.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::SloObservation;
use super::clock::RunClock;
use super::source::MetricsSource;
use crate::scenario::AlertCheck;
use crate::stats::WindowSpec;

/// Most points a range query asks for (Prometheus refuses more than 11,000).
const MAX_POINTS: f64 = 10_000.0;

/// When the alert fired and resolved, against the deadlines (run.json `slos[].alert`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertTiming {
    /// The alert's name.
    pub alert: String,
    /// Seconds from the window's start until the alert was first seen firing; null: never.
    pub fired_after_s: Option<f64>,
    /// Deadline for firing, seconds (time-scaled).
    pub fires_within_s: f64,
    /// Seconds from the window's end until the alert stopped firing (0 when it stopped
    /// before the end); null when it never fired or still fires.
    pub resolved_after_s: Option<f64>,
    /// Deadline for resolving, seconds (time-scaled); null: not checked.
    pub resolves_within_s: Option<f64>,
    /// The alert was already firing before the window started.
    pub already_firing: bool,
    /// The alert was still firing at the last evaluation.
    pub still_firing: bool,
    /// Both deadlines held.
    pub holds: bool,
}

impl AlertTiming {
    /// One sentence for reports.
    pub fn summary(&self) -> String {
        let fired = match self.fired_after_s {
            Some(s) => format!(
                "fired {s:.1}s after the window's start (allowed {:.1}s)",
                self.fires_within_s
            ),
            None => format!(
                "never fired (allowed {:.1}s after the window's start): check the rule's expression, `for:` and Prometheus's evaluation interval",
                self.fires_within_s
            ),
        };
        let resolved = match (
            self.fired_after_s,
            self.resolved_after_s,
            self.resolves_within_s,
        ) {
            (None, _, _) => String::new(),
            (Some(_), Some(s), Some(w)) => {
                format!("; resolved {s:.1}s after the window's end (allowed {w:.1}s)")
            }
            (Some(_), Some(s), None) => format!("; resolved {s:.1}s after the window's end"),
            (Some(_), None, Some(w)) => {
                format!("; still firing {w:.1}s after the window's end (allowed {w:.1}s)")
            }
            (Some(_), None, None) => "; still firing (resolution not checked)".into(),
        };
        let before = if self.already_firing {
            " (it was already firing before the window started)"
        } else {
            ""
        };
        format!("{} {fired}{resolved}{before}", self.alert)
    }
}

/// The question asked of one range of samples.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// Window start and end, unix seconds.
    pub win_start: f64,
    pub win_end: f64,
    /// Scaled deadlines, seconds.
    pub fires_within: f64,
    pub resolves_within: Option<f64>,
}

/// Judges the firing timestamps (unix seconds, sorted, one per evaluated step) seen up
/// to `last_eval`. Returns the timing and whether more data could change it.
pub fn judge(
    alert: &str,
    firing: &[f64],
    step: f64,
    last_eval: f64,
    d: Deadlines,
) -> (AlertTiming, bool) {
    let already_firing = firing.iter().any(|t| *t < d.win_start);
    let fired_at = firing.iter().copied().find(|t| *t >= d.win_start);
    let last = firing.last().copied();
    let still_firing = last.is_some_and(|t| t + step > last_eval + 1e-6);
    let fired_after = fired_at.map(|t| t - d.win_start);
    let resolved_after = match (fired_at, last) {
        (Some(_), Some(t)) if !still_firing => Some((t + step - d.win_end).max(0.0)),
        _ => None,
    };
    let fires_ok = fired_after.is_some_and(|s| s <= d.fires_within + 1e-6);
    let resolves_ok = match d.resolves_within {
        None => true,
        Some(w) => resolved_after.is_some_and(|s| s <= w + 1e-6),
    };
    let holds = fires_ok && resolves_ok;
    let settled = if fired_at.is_none() {
        last_eval >= d.win_start + d.fires_within
    } else if !fires_ok || d.resolves_within.is_none() {
        true
    } else {
        resolved_after.is_some() || last_eval >= d.win_end + d.resolves_within.unwrap_or(0.0)
    };
    let timing = AlertTiming {
        alert: alert.to_string(),
        fired_after_s: fired_after,
        fires_within_s: d.fires_within,
        resolved_after_s: resolved_after,
        resolves_within_s: d.resolves_within,
        already_firing,
        still_firing,
        holds,
    };
    (timing, settled)
}

/// Evaluates one alert SLO, waiting (bounded by its deadlines plus `settle`) for the
/// answer to settle.
pub async fn evaluate(
    source: &dyn MetricsSource,
    check: &AlertCheck,
    window: &WindowSpec,
    clock: &RunClock,
    settle: Duration,
    time_scale: f64,
) -> SloObservation {
    let query = format!(
        "count(ALERTS{{alertname=\"{}\",alertstate=\"firing\"}})",
        check.alert
    );
    let d = Deadlines {
        win_start: clock.unix_s(window.from_us),
        win_end: clock.unix_s(window.to_us),
        fires_within: check.fires_within.mul_f64(time_scale).as_secs_f64(),
        resolves_within: check
            .resolves_within
            .map(|r| r.mul_f64(time_scale).as_secs_f64()),
    };
    let deadline = match d.resolves_within {
        Some(r) => d.win_end + r,
        None => d.win_start + d.fires_within,
    }
    .max(d.win_start + d.fires_within)
        + settle.as_secs_f64();
    let start = (clock.zero_unix_s.min(d.win_start) - 1.0).floor() as i64;
    loop {
        let end = clock.now_unix_s();
        let step = ((end - start) as f64 / MAX_POINTS).ceil().max(1.0);
        let series = match source.range(&query, start, end, step).await {
            Ok(s) => s,
            Err(e) => {
                return SloObservation {
                    query: Some(query),
                    value: Err(e),
                    alert: None,
                };
            }
        };
        let mut firing: Vec<f64> = series
            .iter()
            .flat_map(|s| s.samples.iter())
            .filter(|(_, v)| v.is_finite() && *v > 0.0)
            .map(|(t, _)| *t)
            .collect();
        firing.sort_by(f64::total_cmp);
        firing.dedup();
        let (timing, settled) = judge(&check.alert, &firing, step, end as f64, d);
        if settled || end as f64 >= deadline {
            return SloObservation {
                query: Some(query),
                value: timing.fired_after_s.ok_or_else(|| timing.summary()),
                alert: Some(timing),
            };
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Deadlines = Deadlines {
        win_start: 100.0,
        win_end: 130.0,
        fires_within: 10.0,
        resolves_within: Some(20.0),
    };

    fn range(from: u32, to: u32) -> Vec<f64> {
        (from..=to).map(f64::from).collect()
    }

    #[test]
    fn fires_and_resolves_in_time() {
        let (t, settled) = judge("A", &range(106, 140), 1.0, 160.0, D);
        assert!(settled && t.holds, "{t:?}");
        assert_eq!(t.fired_after_s, Some(6.0));
        assert_eq!(t.resolved_after_s, Some(11.0));
        assert!(t.summary().contains("fired 6.0s"), "{}", t.summary());
    }

    #[test]
    fn fires_late() {
        let (t, settled) = judge("A", &range(115, 140), 1.0, 160.0, D);
        assert!(settled && !t.holds);
        assert_eq!(t.fired_after_s, Some(15.0));
    }

    #[test]
    fn never_fires_is_undecided_until_the_deadline() {
        let (t, settled) = judge("A", &[], 1.0, 105.0, D);
        assert!(!settled && !t.holds);
        let (t, settled) = judge("A", &[], 1.0, 111.0, D);
        assert!(settled && !t.holds);
        assert!(t.summary().contains("never fired"));
    }

    #[test]
    fn still_firing_waits_then_fails() {
        let (t, settled) = judge("A", &range(105, 140), 1.0, 140.0, D);
        assert!(!settled && t.still_firing && !t.holds);
        let (t, settled) = judge("A", &range(105, 151), 1.0, 151.0, D);
        assert!(settled && !t.holds);
        assert!(t.summary().contains("still firing"), "{}", t.summary());
    }

    #[test]
    fn resolves_late() {
        let (t, settled) = judge("A", &range(105, 155), 1.0, 170.0, D);
        assert!(settled && !t.holds);
        assert_eq!(t.resolved_after_s, Some(26.0));
    }

    #[test]
    fn already_firing_is_reported() {
        let mut f = range(90, 95);
        f.extend(range(104, 135));
        let (t, _) = judge("A", &f, 1.0, 170.0, D);
        assert!(t.already_firing && t.holds);
        assert!(t.summary().contains("already firing"));
    }
}
