//! Table-style tests of the replica calculation, modelled on upstream's
//! `horizontal_test.go`; every expectation is worked out by hand in comments.

use super::*;
use crate::autoscale::manifest::ScalingPolicy;
use DecisionReason::*;

fn spec(min_replicas: u32, max_replicas: u32) -> HpaSpec {
    HpaSpec {
        name: "test".into(),
        namespace: None,
        target_kind: "Deployment".into(),
        target_name: "app".into(),
        min_replicas,
        max_replicas,
        target_cpu_utilisation_percent: 70,
        scale_up: ScalingRules::default_scale_up(),
        scale_down: ScalingRules::default_scale_down(),
    }
}

fn rules(select_policy: SelectPolicy, window_s: u64, policies: &[ScalingPolicy]) -> ScalingRules {
    ScalingRules {
        stabilisation_window: s(window_s),
        select_policy,
        policies: policies.to_vec(),
    }
}

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn all(replicas: u32, utilisation: f64) -> Vec<PodSample> {
    PodSample::all_ready(&vec![utilisation; replicas as usize])
}

/// (desired, raw, reason) of one fresh sync at t=0.
fn once(spec: HpaSpec, current: u32, utilisation: f64) -> (u32, u32, DecisionReason) {
    let d = Autoscaler::new(spec).reconcile(s(0), current, &all(current, utilisation));
    (d.desired_replicas, d.raw_recommendation, d.reason)
}

#[test]
fn tolerance_band_is_inclusive_at_both_edges() {
    // 63/70 = 0.9 and 77/70 = 1.1 are inside (1 ± 0.1), as upstream's isWithin.
    for u in [0.63, 0.70, 0.75, 0.77] {
        assert_eq!(
            once(spec(1, 10), 4, u),
            (4, 4, WithinTolerance),
            "utilisation {u}"
        );
    }
    // 78/70 × 4 = 4.46 → 5.
    assert_eq!(once(spec(1, 10), 4, 0.78), (5, 5, ScaleUp));
    // 62/70 × 4 = 3.54 → 4: outside the band, yet no change.
    assert_eq!(once(spec(1, 10), 4, 0.62), (4, 4, NoChange));
}

#[test]
fn utilisation_is_truncated_to_whole_percent_before_tolerance() {
    // 0.779 is 779 m → 77 % → ratio 1.1 → within, although 0.779/0.7 > 1.1.
    assert_eq!(once(spec(1, 10), 2, 0.779), (2, 2, WithinTolerance));
    // 0.2994 is 300 m, rounded up as Quantity.MilliValue; (300 + 489) × 100 / 2000 = 39.
    assert_eq!(
        utilisation_percent(&[millicores(0.2994), millicores(0.4881)]),
        39
    );
    assert_eq!([millicores(0.779), millicores(0.0011)], [779, 2]);
    assert_eq!(
        [millicores(f64::NAN), millicores(-1.0), millicores(1.0)],
        [0, 0, 1000]
    );
}

#[test]
fn scale_up_is_ceil_of_ratio_times_ready_replicas() {
    // 100/70 × 3 = 4.29 → 5; policies allow 7.
    assert_eq!(once(spec(1, 10), 3, 1.0), (5, 5, ScaleUp));
}

use PodSample::{Missing, Ready, Unready};

#[test]
fn unready_pods_count_as_idle_on_a_scale_up_and_can_hold_the_count() {
    // 5 pods, 2 ready at 140 %: ratio 2 calls for a scale-up, so the 3 unready ones
    // count at 0 %: 2800 m of 5000 m = 56 %, ratio 0.8, the other way: 5 stays
    // (a replay of ready pods alone would have said ceil(2 × 2) = 4).
    let pods = [Ready(1.4), Ready(1.4), Unready, Unready, Unready];
    let d = Autoscaler::new(spec(1, 10)).reconcile(s(0), 5, &pods);
    assert_eq!(
        (d.desired_replicas, d.reason, d.utilisation_percent),
        (5, HeldByUnsampledPods, Some(140))
    );
    // 2 ready at 300 %, 4 unready: 6000 m of 6000 m = 100 %, ratio 1.43 → ceil(8.57) = 9.
    let pods = [Ready(3.0), Ready(3.0), Unready, Unready, Unready, Unready];
    let d = Autoscaler::new(spec(1, 10)).reconcile(s(0), 6, &pods);
    assert_eq!((d.desired_replicas, d.raw_recommendation), (9, 9));
    // Scaling down, unready pods are left out: 2 at 14 % → ceil(0.2 × 2) = 1.
    let pods = [Ready(0.14), Ready(0.14), Unready];
    let d = Autoscaler::new(spec(1, 10)).reconcile(s(0), 3, &pods);
    assert_eq!(d.raw_recommendation, 1);
}

#[test]
fn pods_without_a_sample_count_as_busy_on_a_scale_down_and_idle_on_a_scale_up() {
    // 9 pods, 6 sampled at 8 %, 3 without a sample: scaling down, those count at 100 %:
    // (6 × 80 + 3 × 1000) × 100 / 9000 = 38 %, ratio 0.54 → ceil(4.89) = 5, not 2.
    let mut pods = vec![Ready(0.08); 6];
    pods.extend([Missing; 3]);
    let d = Autoscaler::new(spec(1, 10)).reconcile(s(0), 9, &pods);
    assert_eq!((d.raw_recommendation, d.utilisation_percent), (5, Some(8)));
    // 6 pods, 2 sampled at 100 %, 4 without: scaling up, those count at 0 %: 33 %,
    // the other way, so 6 stays.
    let mut pods = vec![Ready(1.0); 2];
    pods.extend([Missing; 4]);
    let d = Autoscaler::new(spec(1, 10)).reconcile(s(0), 6, &pods);
    assert_eq!((d.desired_replicas, d.reason), (6, HeldByUnsampledPods));
    // 4 sampled at 300 %, 2 without: 12000 m of 6000 m = 200 %, ratio 2.86 → 18 → 10.
    let mut pods = vec![Ready(3.0); 4];
    pods.extend([Missing; 2]);
    let d = Autoscaler::new(spec(1, 10)).reconcile(s(0), 6, &pods);
    assert_eq!((d.raw_recommendation, d.desired_replicas), (18, 10));
    // Within tolerance once the missing pods count: 5 at 60 % and 1 without a sample,
    // scaling down: (3000 + 1000) × 100 / 6000 = 66 %, ratio 0.94: 6 stays.
    let mut pods = vec![Ready(0.6); 5];
    pods.push(Missing);
    let d = Autoscaler::new(spec(1, 10)).reconcile(s(0), 6, &pods);
    assert_eq!((d.desired_replicas, d.reason), (6, HeldByUnsampledPods));
}

#[test]
fn pods_with_no_sample_at_all_give_no_metric() {
    let d = Autoscaler::new(spec(1, 10)).reconcile(s(0), 3, &[Missing, Unready, Missing]);
    assert_eq!((d.desired_replicas, d.reason), (3, NoMetrics));
}

#[test]
fn no_metrics_keeps_replicas_and_records_nothing() {
    let mut hpa = Autoscaler::new(spec(1, 10));
    let d = hpa.reconcile(s(0), 3, &[]);
    assert_eq!(
        (d.desired_replicas, d.reason, d.utilisation_percent),
        (3, NoMetrics, None)
    );
    assert!(hpa.recommendations.is_empty());
}

#[test]
fn select_max_takes_the_larger_of_percent_and_pods() {
    // From 2: Percent 100 → 4, Pods 4 → 6. From 10: 20 vs 14.
    assert_eq!(once(spec(1, 100), 2, 3.0).0, 6);
    assert_eq!(once(spec(1, 100), 10, 3.0), (20, 43, LimitedByPolicy));
}

#[test]
fn select_min_takes_the_smaller_of_percent_and_pods() {
    let mut min_spec = spec(1, 100);
    min_spec.scale_up.select_policy = SelectPolicy::Min;
    assert_eq!(once(min_spec.clone(), 2, 3.0), (4, 9, LimitedByPolicy));
    assert_eq!(once(min_spec, 10, 3.0), (14, 43, LimitedByPolicy));
}

#[test]
fn select_min_on_scale_down_removes_the_fewest() {
    let mut down = spec(1, 100);
    down.scale_down = rules(
        SelectPolicy::Min,
        0,
        &[
            ScalingPolicy::percent(50, s(60)),
            ScalingPolicy::pods(2, s(60)),
        ],
    );
    // From 10: Percent → 5, Pods → 8; Min change → 8.
    assert_eq!(once(down.clone(), 10, 0.07), (8, 1, LimitedByPolicy));
    down.scale_down.select_policy = SelectPolicy::Max;
    assert_eq!(once(down, 10, 0.07), (5, 1, LimitedByPolicy));
}

#[test]
fn disabled_select_policy_forbids_that_direction_only() {
    let mut no_up = spec(1, 10);
    no_up.scale_up.select_policy = SelectPolicy::Disabled;
    assert_eq!(once(no_up.clone(), 3, 3.0), (3, 13, DirectionDisabled));
    no_up.scale_down.stabilisation_window = Duration::ZERO;
    assert_eq!(once(no_up, 3, 0.35), (2, 2, ScaleDown));

    let mut no_down = spec(1, 10);
    no_down.scale_down = rules(SelectPolicy::Disabled, 0, &[ScalingPolicy::pods(1, s(15))]);
    assert_eq!(once(no_down, 4, 0.1), (4, 1, DirectionDisabled));
}

#[test]
fn scale_down_stabilisation_holds_the_max_for_300s_then_falls() {
    let mut hpa = Autoscaler::new(spec(1, 10));
    let d = hpa.reconcile(s(0), 4, &all(4, 0.7));
    assert_eq!((d.desired_replicas, d.reason), (4, WithinTolerance));
    // 35/70 × 4 = 2, but the 4 recorded at t=0 counts while t < 300.
    for t in (15..300).step_by(15) {
        let d = hpa.reconcile(s(t), 4, &all(4, 0.35));
        assert_eq!(
            (d.desired_replicas, d.raw_recommendation, d.reason),
            (4, 2, LimitedByStabilisation),
            "t={t}"
        );
    }
    let d = hpa.reconcile(s(300), 4, &all(4, 0.35));
    assert_eq!((d.desired_replicas, d.reason), (2, ScaleDown));
}

#[test]
fn scale_up_stabilisation_takes_the_min_of_its_window() {
    let mut slow_up = spec(1, 10);
    slow_up.scale_up.stabilisation_window = s(60);
    let mut hpa = Autoscaler::new(slow_up);
    assert_eq!(hpa.reconcile(s(0), 2, &all(2, 0.7)).reason, WithinTolerance);
    let d = hpa.reconcile(s(15), 2, &all(2, 1.4));
    assert_eq!(
        (d.desired_replicas, d.raw_recommendation, d.reason),
        (2, 4, LimitedByStabilisation)
    );
    // The 2 recorded at t=0 leaves the window at t=60.
    assert_eq!(hpa.reconcile(s(45), 2, &all(2, 1.4)).desired_replicas, 2);
    assert_eq!(hpa.reconcile(s(60), 2, &all(2, 1.4)).desired_replicas, 4);
}

#[test]
fn scale_up_by_percent_doubles_once_per_period() {
    let mut doubling = spec(1, 20);
    doubling.scale_up = rules(SelectPolicy::Max, 0, &[ScalingPolicy::percent(100, s(15))]);
    let mut hpa = Autoscaler::new(doubling);
    let mut current = 2;
    let mut seen = vec![];
    for t in [0, 15, 30] {
        current = hpa
            .reconcile(s(t), current, &all(current, 3.0))
            .desired_replicas;
        seen.push(current);
    }
    assert_eq!(seen, [4, 8, 16]);
    // Off-cycle at t=35: the +8 at t=30 is inside the period; start was 8.
    let d = hpa.reconcile(s(35), 16, &all(16, 3.0));
    assert_eq!((d.desired_replicas, d.reason), (16, LimitedByPolicy));
    // At t=45 the period starts at 16, and 32 is clamped to 20.
    let d = hpa.reconcile(s(45), 16, &all(16, 3.0));
    assert_eq!((d.desired_replicas, d.reason), (20, ClampedMax));
}

#[test]
fn scale_up_by_pods_counts_every_event_in_a_long_period() {
    let mut four_a_minute = spec(1, 20);
    four_a_minute.scale_up = rules(SelectPolicy::Max, 0, &[ScalingPolicy::pods(4, s(60))]);
    let mut hpa = Autoscaler::new(four_a_minute);
    assert_eq!(hpa.reconcile(s(0), 2, &all(2, 3.0)).desired_replicas, 6);
    for t in [15, 30, 45] {
        let d = hpa.reconcile(s(t), 6, &all(6, 3.0));
        assert_eq!(
            (d.desired_replicas, d.reason),
            (6, LimitedByPolicy),
            "t={t}"
        );
    }
    assert_eq!(hpa.reconcile(s(60), 6, &all(6, 3.0)).desired_replicas, 10);
}

#[test]
fn scale_down_by_percent_truncates_and_waits_for_the_period() {
    let mut halving = spec(2, 10);
    halving.scale_down = rules(SelectPolicy::Min, 0, &[ScalingPolicy::percent(50, s(60))]);
    let mut hpa = Autoscaler::new(halving);
    let d = hpa.reconcile(s(0), 9, &all(9, 0.05));
    // 9 × 0.5 = 4.5 → 4.
    assert_eq!(
        (d.desired_replicas, d.raw_recommendation, d.reason),
        (4, 1, LimitedByPolicy)
    );
    let d = hpa.reconcile(s(15), 4, &all(4, 0.05));
    assert_eq!((d.desired_replicas, d.reason), (4, LimitedByPolicy));
    // Period over: 4 × 0.5 = 2 = minReplicas.
    let d = hpa.reconcile(s(60), 4, &all(4, 0.05));
    assert_eq!((d.desired_replicas, d.reason), (2, ClampedMin));
}

#[test]
fn scale_events_in_both_directions_shift_the_period_start() {
    let mut either = spec(1, 20);
    either.scale_up = rules(SelectPolicy::Max, 0, &[ScalingPolicy::pods(2, s(60))]);
    either.scale_down = rules(SelectPolicy::Max, 0, &[ScalingPolicy::pods(1, s(15))]);
    let mut hpa = Autoscaler::new(either);
    assert_eq!(hpa.reconcile(s(0), 4, &all(4, 0.35)).desired_replicas, 3);
    // Start = 3 + 1 removed = 4; +2 → 6.
    assert_eq!(hpa.reconcile(s(20), 3, &all(3, 3.0)).desired_replicas, 6);
}

#[test]
fn recommendation_is_clamped_to_min_and_max() {
    assert_eq!(once(spec(1, 10), 8, 3.0), (10, 35, ClampedMax));
    let mut quick_down = spec(3, 10);
    quick_down.scale_down.stabilisation_window = Duration::ZERO;
    assert_eq!(once(quick_down, 4, 0.1), (3, 1, ClampedMin));
}

#[test]
fn replicas_outside_bounds_move_to_them_without_metrics() {
    assert_eq!(once(spec(2, 10), 12, 0.7), (10, 10, AboveMax));
    assert_eq!(once(spec(2, 10), 1, 0.7), (2, 2, BelowMin));
    assert_eq!(once(spec(2, 10), 0, 0.7), (0, 0, ScalingDisabled));
}

#[test]
fn sync_period_is_the_controller_default() {
    assert_eq!(sync_period(), s(15));
}

#[test]
fn histories_stay_bounded_over_a_long_run() {
    let mut hpa = Autoscaler::new(spec(1, 10));
    let mut current = 2;
    for i in 0..2000u64 {
        let u = if (i / 40) % 2 == 0 { 3.0 } else { 0.1 };
        current = hpa
            .reconcile(s(i * 15), current, &all(current, u))
            .desired_replicas;
    }
    // 300 s window / 15 s sync = 20 records, plus the slot being replaced.
    assert!(
        hpa.recommendations.len() <= 22,
        "{}",
        hpa.recommendations.len()
    );
    assert!(hpa.scale_up_events.len() <= 3 && hpa.scale_down_events.len() <= 3);
}
