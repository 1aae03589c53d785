//! Properties of the arrival schedule for any valid stages: starts are
//! monotone, inside the schedule, and their count matches the rate integral
//! (exactly for constant arrivals, within statistical bounds for Poisson).

use std::time::Duration;

use proptest::prelude::*;
use slo_check::load::schedule::Schedule;
use slo_check::scenario::{Arrival, Stage};

/// Stages of 0.1–5 s at 0.5–400 starts/s, holding or ramping (ramps may go to 0).
fn stages() -> impl Strategy<Value = Vec<Stage>> {
    prop::collection::vec(
        (0.1f64..5.0, 0.5f64..400.0, any::<bool>(), 0.0f64..400.0),
        1..5,
    )
    .prop_map(|raw| {
        let mut prev = 0.0;
        raw.into_iter()
            .map(|(secs, rate, ramp, ramp_to)| {
                let (start, end) = if ramp { (prev, ramp_to) } else { (rate, rate) };
                prev = end;
                Stage {
                    name: None,
                    duration: Duration::from_secs_f64(secs),
                    start_rate_per_s: start,
                    end_rate_per_s: end,
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn constant_starts_are_monotone_bounded_and_counted_exactly(stages in stages(), scale in 0.1f64..2.0) {
        let s = Schedule::new(Arrival::Constant, 0, &stages, scale);
        let starts: Vec<f64> = s.iter().collect();
        let end = s.duration_s();
        prop_assert!(starts.windows(2).all(|w| w[1] >= w[0]), "not monotone");
        prop_assert!(starts.iter().all(|t| *t >= 0.0 && *t < end + 1e-9), "outside the schedule");
        // Starts sit at Λ⁻¹(0), Λ⁻¹(1), ...: ceil(Λ) of them, give or take one for rounding at the edges.
        let expected = s.expected_starts();
        prop_assert!((starts.len() as f64 - expected.ceil()).abs() <= 1.0 + expected * 1e-9,
            "{} starts for Λ = {expected}", starts.len());
    }

    #[test]
    fn poisson_counts_stay_within_six_sigma(stages in stages(), seed in any::<u64>()) {
        let s = Schedule::new(Arrival::Poisson, seed, &stages, 1.0);
        let starts: Vec<f64> = s.iter().collect();
        let expected = s.expected_starts();
        prop_assert!(starts.windows(2).all(|w| w[1] >= w[0]));
        prop_assert!(starts.iter().all(|t| *t >= 0.0 && *t < s.duration_s() + 1e-9));
        let sigma = expected.sqrt().max(1.0);
        prop_assert!((starts.len() as f64 - expected).abs() <= 6.0 * sigma + 1.0,
            "{} starts, expected {expected}", starts.len());
        // Same seed, same schedule.
        let again: Vec<f64> = s.iter().collect();
        prop_assert_eq!(starts, again);
    }
}
