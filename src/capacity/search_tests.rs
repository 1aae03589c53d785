//! Unit tests of the search with fake evaluators: no load, no clock.

use super::*;

fn settings(from: f64, to: f64, precision: f64) -> SearchSettings {
    SearchSettings {
        from_per_s: from,
        to_per_s: to,
        precision,
        growth: 2.0,
        max_steps: 30,
        confirm: true,
    }
}

/// Drive the search with `passes`; returns the conclusion and every proposal made.
fn drive(s: SearchSettings, mut passes: impl FnMut(f64) -> bool) -> (Conclusion, Vec<Proposal>) {
    let mut search = Search::new(s);
    let mut tried = Vec::new();
    while let Some(p) = search.next() {
        tried.push(p);
        search.record(p.rate_per_s, passes(p.rate_per_s));
    }
    (search.conclusion(), tried)
}

#[test]
fn exponential_phase_doubles_from_the_first_rate_until_a_failure() {
    let (_, tried) = drive(settings(10.0, 1000.0, 0.05), |r| r <= 100.0);
    let exp: Vec<f64> = tried
        .iter()
        .filter(|p| p.phase == Phase::Exponential)
        .map(|p| p.rate_per_s)
        .collect();
    assert_eq!(exp, vec![10.0, 20.0, 40.0, 80.0, 160.0]);
    assert_eq!(tried[5].phase, Phase::Bisection);
    // Geometric midpoint of 80 and 160, rounded to 4 significant digits.
    assert_eq!(tried[5].rate_per_s, 113.1);
}

#[test]
fn bisection_converges_to_the_requested_relative_precision() {
    for precision in [0.01, 0.05, 0.2] {
        let (c, tried) = drive(settings(10.0, 1000.0, precision), |r| r <= 123.0);
        let Conclusion::Found {
            capacity_per_s,
            next_failing_per_s,
        } = c
        else {
            panic!("{c:?}");
        };
        assert!(capacity_per_s <= 123.0 && next_failing_per_s > 123.0);
        assert!((next_failing_per_s - capacity_per_s) / capacity_per_s <= precision);
        assert!(capacity_per_s >= 123.0 / (1.0 + precision));
        // The last step confirms the result.
        let last = tried.last().unwrap();
        assert_eq!(last.phase, Phase::Confirmation);
        assert_eq!(last.rate_per_s, capacity_per_s);
    }
}

#[test]
fn finer_precision_takes_more_steps_but_few() {
    let steps = |p| drive(settings(10.0, 1000.0, p), |r| r <= 123.0).1.len();
    let (coarse, fine) = (steps(0.2), steps(0.01));
    assert!(coarse < fine, "{coarse} {fine}");
    // 4 doublings + 1 failure, log2(ln 2 / ln 1.01) ≈ 6 bisections, 1 confirmation.
    assert!(fine <= 13, "{fine}");
}

#[test]
fn from_failing_concludes_at_once_with_no_capacity() {
    let (c, tried) = drive(settings(50.0, 5000.0, 0.05), |_| false);
    assert_eq!(c, Conclusion::FromFails);
    assert_eq!(c.capacity_per_s(), None);
    assert_eq!(tried.len(), 1);
}

#[test]
fn to_passing_stops_at_to_without_exceeding_it() {
    let (c, tried) = drive(settings(10.0, 50.0, 0.05), |_| true);
    assert_eq!(
        c,
        Conclusion::AtLeastTo {
            capacity_per_s: 50.0
        }
    );
    let rates: Vec<f64> = tried.iter().map(|p| p.rate_per_s).collect();
    assert_eq!(rates, vec![10.0, 20.0, 40.0, 50.0]);
}

#[test]
fn proposals_stay_inside_the_open_interval_of_the_bisection() {
    let mut search = Search::new(settings(10.0, 1000.0, 0.001));
    let mut lo = 0.0f64;
    let mut hi = f64::INFINITY;
    while let Some(p) = search.next() {
        if p.phase == Phase::Bisection {
            assert!(p.rate_per_s > lo && p.rate_per_s < hi, "{p:?} {lo} {hi}");
        }
        let ok = p.rate_per_s <= 77.7;
        if ok {
            lo = lo.max(p.rate_per_s);
        } else {
            hi = hi.min(p.rate_per_s);
        }
        search.record(p.rate_per_s, ok);
    }
    assert_eq!(search.contradictions(), 0);
}

#[test]
fn a_monotone_evaluator_gives_no_contradictions_and_every_pass_is_below_every_failure() {
    let mut search = Search::new(settings(3.0, 10_000.0, 0.02));
    let mut seen = Vec::new();
    while let Some(p) = search.next() {
        let ok = p.rate_per_s < 432.1;
        seen.push((p.rate_per_s, ok));
        search.record(p.rate_per_s, ok);
    }
    assert_eq!(search.contradictions(), 0);
    let max_pass = seen.iter().filter(|s| s.1).map(|s| s.0).fold(0.0, f64::max);
    let min_fail = seen
        .iter()
        .filter(|s| !s.1)
        .map(|s| s.0)
        .fold(f64::MAX, f64::min);
    assert!(max_pass < min_fail);
    assert_eq!(search.conclusion().capacity_per_s(), Some(max_pass));
}

#[test]
fn a_failed_confirmation_moves_the_bound_down_and_resumes_bisection() {
    // Passes everything up to 100 the first time each rate is tried; the first rate tried
    // twice (the confirmation) fails: noise at the edge.
    let mut count = std::collections::HashMap::new();
    let (c, tried) = drive(settings(10.0, 1000.0, 0.05), |r| {
        let n = count.entry(r.to_bits()).or_insert(0);
        *n += 1;
        r <= 100.0 && *n == 1 || r <= 90.0
    });
    let first_confirm = tried
        .iter()
        .position(|p| p.phase == Phase::Confirmation)
        .unwrap();
    assert!(tried[first_confirm].rate_per_s > 90.0);
    assert!(
        tried[first_confirm + 1..]
            .iter()
            .any(|p| p.phase == Phase::Bisection)
    );
    let cap = c.capacity_per_s().unwrap();
    assert!(matches!(c, Conclusion::Found { .. }), "{c:?}");
    assert!((90.0 / 1.05..=90.0).contains(&cap), "{cap}");
}

#[test]
fn a_noisy_evaluator_still_ends_near_the_true_capacity_within_the_budget() {
    // A deterministic pseudo-random evaluator: within 3 % of the true capacity (200/s), the
    // verdict is a coin toss; outside, it is right.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut coin = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state & 1 == 0
    };
    for _ in 0..50 {
        let s = settings(10.0, 2000.0, 0.05);
        let (c, tried) = drive(s, |r| {
            if (r - 200.0).abs() / 200.0 <= 0.03 {
                coin()
            } else {
                r < 200.0
            }
        });
        assert!(tried.len() <= s.max_steps);
        let cap = c.capacity_per_s().expect("10/s always passes");
        assert!((200.0 / 1.03 / 1.05..=206.0).contains(&cap), "{cap} {c:?}");
    }
}

#[test]
fn the_step_budget_bounds_the_search_and_reports_the_bracket() {
    let s = SearchSettings {
        max_steps: 6,
        ..settings(1.0, 10_000.0, 0.01)
    };
    let (c, tried) = drive(s, |r| r < 1234.0);
    assert_eq!(tried.len(), 6);
    assert_eq!(
        c,
        Conclusion::StepLimit {
            capacity_per_s: Some(32.0),
            next_failing_per_s: None
        }
    );
}

#[test]
fn without_confirmation_the_search_ends_when_the_bracket_is_narrow() {
    let s = SearchSettings {
        confirm: false,
        ..settings(10.0, 1000.0, 0.05)
    };
    let (c, tried) = drive(s, |r| r <= 123.0);
    assert!(tried.iter().all(|p| p.phase != Phase::Confirmation));
    assert!(matches!(c, Conclusion::Found { .. }));
}

#[test]
fn rounding_keeps_four_significant_digits_inside_the_interval() {
    assert_eq!(round_within(113.137_085, 80.0, 160.0), 113.1);
    assert_eq!(round_within(0.123_456, 0.1, 0.2), 0.1235);
    // Would land on the bound: kept exact.
    assert_eq!(round_within(100.0001, 100.0, 100.0002), 100.0001);
}
