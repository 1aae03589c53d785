//! Autoscaling figures read off a replica timeline: how long after the load rose the
//! autoscaler decided to scale (`decision_s`), how long until more replicas were ready
//! (`scale_up_s`), and the peak. Pure functions over recorded samples, so any platform's
//! observer (embedded or Kubernetes) is analysed the same way.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use tokio::time::Instant;

use crate::scenario::Stage;
use crate::target::ReplicaSample;

/// Autoscaling figures of one run (run.json `hpa`), in seconds of the samples' clock
/// (real time) as `hpa_metrics` computes them; [`HpaFigures::in_scenario_time`] gives
/// scenario seconds, the unit of reports and thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HpaFigures {
    /// When the load first rose, seconds after the run's zero (set by the run).
    pub marker_s: Option<f64>,
    /// From the marker to the first sample whose `desired` exceeds the desired count at the
    /// marker; `None` if the autoscaler never asked for more.
    pub decision_s: Option<f64>,
    /// From the marker to the first sample whose `ready` exceeds the ready count at the
    /// marker; `None` if no replica was added.
    pub scale_up_s: Option<f64>,
    /// Most ready replicas in any sample (0 without samples).
    pub peak_replicas: u32,
    /// From the marker to the first sample with `peak_replicas` ready, when the peak lies
    /// above the ready count at the marker; `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_peak_s: Option<f64>,
    /// The durations are real seconds, not scenario seconds: the autoscaler (a
    /// cluster's HPA controller) runs in real time whatever the time scale.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub real_time: bool,
}

impl HpaFigures {
    /// The same figures in scenario seconds: real seconds divided by `time_scale` (> 0).
    pub fn in_scenario_time(self, time_scale: f64) -> HpaFigures {
        let scale = |v: Option<f64>| v.map(|s| s / time_scale);
        HpaFigures {
            marker_s: self.marker_s,
            decision_s: scale(self.decision_s),
            scale_up_s: scale(self.scale_up_s),
            peak_replicas: self.peak_replicas,
            time_to_peak_s: scale(self.time_to_peak_s),
            real_time: false,
        }
    }
}

/// Figures of `samples` (in time order) relative to `marker`, normally the first rate
/// increase. The counts "at the marker" are those of the last sample at or before it (the
/// first sample if all are later). Only samples strictly after the marker can count as a rise.
pub fn hpa_metrics(samples: &[ReplicaSample], marker: Instant) -> HpaFigures {
    let peak_replicas = samples.iter().map(|s| s.ready).max().unwrap_or(0);
    let Some(first) = samples.first() else {
        return HpaFigures {
            marker_s: None,
            decision_s: None,
            scale_up_s: None,
            peak_replicas,
            time_to_peak_s: None,
            real_time: false,
        };
    };
    let at_marker = samples
        .iter()
        .take_while(|s| s.at <= marker)
        .last()
        .unwrap_or(first);
    let after = || samples.iter().filter(|s| s.at > marker);
    let since = |s: &ReplicaSample| s.at.duration_since(marker).as_secs_f64();
    let decision_s = after().find(|s| s.desired > at_marker.desired).map(since);
    let scale_up_s = after().find(|s| s.ready > at_marker.ready).map(since);
    let time_to_peak_s = if peak_replicas > at_marker.ready {
        after().find(|s| s.ready == peak_replicas).map(since)
    } else {
        None
    };
    HpaFigures {
        marker_s: None,
        decision_s,
        scale_up_s,
        peak_replicas,
        time_to_peak_s,
        real_time: false,
    }
}

/// When the load first rises, from the start of the run in real time (stage durations
/// multiplied by `time_scale`): the start of the first upward ramp, or of the first stage
/// whose rate is above the first stage's start rate. `None` if the load never rises.
/// A first stage that ramps up from 0 counts, at 0.
pub fn first_rate_increase(stages: &[Stage], time_scale: f64) -> Option<Duration> {
    let base = stages.first()?.start_rate_per_s;
    let mut start = Duration::ZERO;
    for stage in stages {
        if stage.end_rate_per_s > stage.start_rate_per_s || stage.start_rate_per_s > base {
            return Some(start.mul_f64(time_scale));
        }
        start += stage.duration;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeline(t0: Instant, rows: &[(u64, u32, u32, u32)]) -> Vec<ReplicaSample> {
        rows.iter()
            .map(|&(ms, desired, current, ready)| ReplicaSample {
                at: t0 + Duration::from_millis(ms),
                desired,
                current,
                ready,
            })
            .collect()
    }

    fn stage(secs: u64, start: f64, end: f64) -> Stage {
        Stage {
            name: None,
            duration: Duration::from_secs(secs),
            start_rate_per_s: start,
            end_rate_per_s: end,
        }
    }

    #[test]
    fn scale_up_decision_and_peak_are_measured_from_the_marker() {
        let t0 = Instant::now();
        let samples = timeline(
            t0,
            &[
                (0, 2, 2, 2),
                (15_000, 2, 2, 2),
                (30_000, 4, 4, 2),
                (35_000, 4, 4, 3),
                (36_000, 4, 4, 4),
                (45_000, 8, 8, 4),
                (52_000, 8, 8, 8),
                (60_000, 8, 8, 8),
            ],
        );
        let m = hpa_metrics(&samples, t0 + Duration::from_secs(20));
        assert_eq!(m.decision_s, Some(10.0));
        assert_eq!(m.scale_up_s, Some(15.0));
        assert_eq!(m.peak_replicas, 8);
        assert_eq!(m.time_to_peak_s, Some(32.0));
        let scenario = m.in_scenario_time(0.5);
        assert_eq!(scenario.scale_up_s, Some(30.0));
        assert_eq!(scenario.peak_replicas, 8);
    }

    #[test]
    fn counts_at_the_marker_come_from_the_last_sample_before_it() {
        let t0 = Instant::now();
        // Already scaled to 3 before the marker: only a rise above 3 counts.
        let samples = timeline(t0, &[(0, 2, 2, 2), (1_000, 3, 3, 3), (9_000, 4, 4, 4)]);
        let m = hpa_metrics(&samples, t0 + Duration::from_secs(5));
        assert_eq!(m.scale_up_s, Some(4.0));
        assert_eq!(m.decision_s, Some(4.0));
        // A sample exactly at the marker is "at", not "after".
        let m = hpa_metrics(&samples, t0 + Duration::from_secs(1));
        assert_eq!(m.scale_up_s, Some(8.0));
    }

    #[test]
    fn no_rise_means_none_and_an_empty_timeline_is_all_none() {
        let t0 = Instant::now();
        let samples = timeline(t0, &[(0, 5, 5, 5), (10_000, 5, 5, 4), (20_000, 3, 3, 3)]);
        let m = hpa_metrics(&samples, t0 + Duration::from_secs(1));
        assert_eq!(
            m,
            HpaFigures {
                marker_s: None,
                decision_s: None,
                scale_up_s: None,
                peak_replicas: 5,
                time_to_peak_s: None,
                real_time: false,
            }
        );
        let m = hpa_metrics(&[], t0);
        assert_eq!(m.peak_replicas, 0);
        assert_eq!(m.scale_up_s, None);
    }

    #[test]
    fn a_marker_before_every_sample_uses_the_first_sample() {
        let t0 = Instant::now();
        let samples = timeline(t0, &[(1_000, 2, 2, 1), (3_000, 2, 2, 2)]);
        let m = hpa_metrics(&samples, t0);
        assert_eq!(m.scale_up_s, Some(3.0));
        assert_eq!(m.decision_s, None);
    }

    #[test]
    fn first_rate_increase_finds_steps_and_ramps() {
        let spike = [stage(60, 20.0, 20.0), stage(15, 20.0, 200.0)];
        assert_eq!(
            first_rate_increase(&spike, 1.0),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            first_rate_increase(&spike, 0.1),
            Some(Duration::from_secs(6))
        );
        let step = [
            stage(10, 5.0, 5.0),
            stage(10, 3.0, 3.0),
            stage(10, 8.0, 8.0),
        ];
        assert_eq!(
            first_rate_increase(&step, 1.0),
            Some(Duration::from_secs(20))
        );
        let flat = [stage(10, 5.0, 5.0), stage(10, 5.0, 0.0)];
        assert_eq!(first_rate_increase(&flat, 1.0), None);
        assert_eq!(
            first_rate_increase(&[stage(10, 0.0, 50.0)], 1.0),
            Some(Duration::ZERO)
        );
        assert_eq!(first_rate_increase(&[], 1.0), None);
    }
}
