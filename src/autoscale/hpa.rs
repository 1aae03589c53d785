//! The HorizontalPodAutoscaler v2 replica calculation, as the Kubernetes
//! controller does it (`pkg/controller/podautoscaler/horizontal.go` and
//! `replica_calculator.go`), for one CPU `averageUtilization` target.
//!
//! One [`Autoscaler::reconcile`] is one controller sync:
//!
//! 1. Replicas outside `[min, max]` are moved to the nearest bound, with no
//!    metric read (the controller's `Current number of replicas above
//!    Spec.MaxReplicas` path); zero replicas means scaling is disabled.
//! 2. Utilisation: each ready replica's usage is a whole number of
//!    millicores of a 1000 m request, and the total is turned into a whole
//!    percent by integer division (`GetResourceUtilizationRatio`). The ratio
//!    to the target is kept if within the 0.1 tolerance
//!    (`(1 − 0.1) ≤ ratio ≤ (1 + 0.1)`), else the raw recommendation is
//!    `ceil(ratio × ready replicas)`.
//! 3. Stabilisation (`stabilizeRecommendationWithBehaviors`): the current
//!    count is raised to the lowest recommendation of the scale-up window and
//!    lowered to the highest of the scale-down window.
//! 4. Rate limits (`convertDesiredReplicasWithBehaviorRate`): each policy
//!    allows a change relative to the replicas at the start of its period
//!    (current minus the scale events inside the period); `selectPolicy`
//!    picks among them; the result is clamped to `[min, max]`.
//!
//! Simplifications, all because the emulator knows each replica exactly:
//! only ready replicas are passed in, so the controller's treatment of
//! unready pods (counted as 0 % when scaling up) and of pods without metrics
//! is not modelled. When the manifest has no `behavior`, the controller
//! takes a legacy path (scale up at most max(2 × current, 4) per sync, the
//! 300 s downscale window); this module instead applies the API's default
//! `behavior`, which allows the same at a 15 s sync period.
//! Time is passed in (time since start), never read from a clock.

use std::cmp::Ordering;
use std::time::Duration;

use super::manifest::{HpaSpec, PolicyKind, ScalingRules, SelectPolicy};

/// The controller's default `--horizontal-pod-autoscaler-sync-period`.
pub const SYNC_PERIOD: Duration = Duration::from_secs(15);
/// The controller's default `--horizontal-pod-autoscaler-tolerance`.
pub const TOLERANCE: f64 = 0.1;
/// CPU request each replica's utilisation is a fraction of, in millicores;
/// sets the granularity at which usage is rounded, as metrics-server reports.
const REQUEST_MILLICORES: u64 = 1000;
/// Utilisations above this (100 000 %) are treated as this, to keep sums finite.
const MAX_UTILISATION: f64 = 1000.0;

/// How often the controller reconciles: [`SYNC_PERIOD`].
pub const fn sync_period() -> Duration {
    SYNC_PERIOD
}

/// The outcome of one sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The replica count to scale to (may equal the current count).
    pub desired_replicas: u32,
    /// The metric's recommendation before stabilisation, rate limits and
    /// clamping (the current count when within tolerance, or when no metric
    /// was read).
    pub raw_recommendation: u32,
    /// The measured CPU utilisation in whole percent of the request, if read.
    pub utilisation_percent: Option<u32>,
    /// Why `desired_replicas` is what it is.
    pub reason: DecisionReason,
}

/// Why a [`Decision`] came out as it did; the first step that changed the
/// recommendation wins, in the order the controller applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionReason {
    /// The target has zero replicas: autoscaling is off, as in the controller.
    ScalingDisabled,
    /// More replicas than `maxReplicas`: scale to the maximum.
    AboveMax,
    /// Fewer replicas than `minReplicas`: scale to the minimum.
    BelowMin,
    /// No ready replica reported a utilisation; nothing changes.
    NoMetrics,
    /// The usage ratio is within the tolerance of 1.
    WithinTolerance,
    /// Outside the tolerance, but the recommendation equals the current count.
    NoChange,
    /// Scale up to the recommendation, unlimited.
    ScaleUp,
    /// Scale down to the recommendation, unlimited.
    ScaleDown,
    /// A stabilisation window kept the count from following the recommendation.
    LimitedByStabilisation,
    /// A scaling policy limited the change within its period.
    LimitedByPolicy,
    /// `selectPolicy: Disabled` forbids scaling in this direction.
    DirectionDisabled,
    /// The recommendation was below `minReplicas`.
    ClampedMin,
    /// The recommendation was above `maxReplicas`.
    ClampedMax,
}

#[derive(Debug, Clone, Copy)]
struct Recommendation {
    at: Duration,
    replicas: u32,
}

#[derive(Debug, Clone, Copy)]
struct ScaleEvent {
    at: Duration,
    change: u32,
    outdated: bool,
}

/// One HPA's controller state: the spec plus the recommendation and scale
/// event histories that stabilisation and rate limits look back on.
#[derive(Debug, Clone)]
pub struct Autoscaler {
    spec: HpaSpec,
    recommendations: Vec<Recommendation>,
    scale_up_events: Vec<ScaleEvent>,
    scale_down_events: Vec<ScaleEvent>,
}

impl Autoscaler {
    /// A fresh autoscaler with no history.
    pub fn new(spec: HpaSpec) -> Self {
        Self {
            spec,
            recommendations: Vec::new(),
            scale_up_events: Vec::new(),
            scale_down_events: Vec::new(),
        }
    }

    /// The spec this autoscaler follows.
    pub fn spec(&self) -> &HpaSpec {
        &self.spec
    }

    /// One controller sync at `now` (time since start) for a target with
    /// `current_replicas`, of which the ready ones report
    /// `ready_utilisations` as fractions of their CPU request (0.7 = 70 %).
    /// A change is recorded as a scale event, as the controller records a
    /// successful scale; the caller is expected to apply it.
    pub fn reconcile(
        &mut self,
        now: Duration,
        current_replicas: u32,
        ready_utilisations: &[f64],
    ) -> Decision {
        let (min, max) = (self.spec.min_replicas, self.spec.max_replicas);
        let decision = if current_replicas == 0 {
            fixed(0, None, DecisionReason::ScalingDisabled)
        } else if current_replicas > max {
            fixed(max, None, DecisionReason::AboveMax)
        } else if current_replicas < min {
            fixed(min, None, DecisionReason::BelowMin)
        } else {
            match utilisation_percent(ready_utilisations) {
                None => fixed(current_replicas, None, DecisionReason::NoMetrics),
                Some(percent) => {
                    let ready = ready_utilisations.len() as u32;
                    self.recommend(now, current_replicas, ready, percent)
                }
            }
        };
        if decision.desired_replicas != current_replicas && current_replicas != 0 {
            self.store_scale_event(now, current_replicas, decision.desired_replicas);
        }
        decision
    }

    fn recommend(&mut self, now: Duration, current: u32, ready: u32, percent: u32) -> Decision {
        let ratio = f64::from(percent) / f64::from(self.spec.target_cpu_utilisation_percent);
        // Same comparisons as upstream `Tolerances.isWithin`: (1 − t) ≤ r ≤ (1 + t).
        let within = ((1.0 - TOLERANCE)..=(1.0 + TOLERANCE)).contains(&ratio);
        let raw = if within {
            current
        } else {
            // Saturating: an absurd ratio still ends at maxReplicas.
            (ratio * f64::from(ready)).ceil() as u32
        };
        let stabilised = self.stabilise(now, current, raw);
        let (desired, limit) = self.limit_rate(now, current, stabilised);
        let reason = match limit {
            Some(limit) => limit,
            None if stabilised != raw => DecisionReason::LimitedByStabilisation,
            None if within => DecisionReason::WithinTolerance,
            None => match desired.cmp(&current) {
                Ordering::Greater => DecisionReason::ScaleUp,
                Ordering::Less => DecisionReason::ScaleDown,
                Ordering::Equal => DecisionReason::NoChange,
            },
        };
        Decision {
            desired_replicas: desired,
            raw_recommendation: raw,
            utilisation_percent: Some(percent),
            reason,
        }
    }

    /// Records `raw` and returns the current count moved into the band
    /// [lowest recent in the scale-up window, highest recent in the
    /// scale-down window]. A record exactly one window old is outside it.
    fn stabilise(&mut self, now: Duration, current: u32, raw: u32) -> u32 {
        let up_window = self.spec.scale_up.stabilisation_window;
        let down_window = self.spec.scale_down.stabilisation_window;
        let (mut up, mut down) = (raw, raw);
        let mut outdated = None;
        for (i, rec) in self.recommendations.iter().enumerate() {
            if rec.at + up_window > now {
                up = up.min(rec.replicas);
            }
            if rec.at + down_window > now {
                down = down.max(rec.replicas);
            }
            if rec.at + up_window < now && rec.at + down_window < now {
                outdated = Some(i);
            }
        }
        // Reuse the slot of an outdated record, as the controller does, so
        // the history stays bounded by the windows over the sync period.
        let record = Recommendation {
            at: now,
            replicas: raw,
        };
        match outdated {
            Some(i) => self.recommendations[i] = record,
            None => self.recommendations.push(record),
        }
        current.max(up).min(down)
    }

    /// Applies the direction's policies and `[min, max]`; returns the count
    /// and, if it differs from `desired`, which limit applied.
    fn limit_rate(
        &self,
        now: Duration,
        current: u32,
        desired: u32,
    ) -> (u32, Option<DecisionReason>) {
        let (min, max) = (self.spec.min_replicas, self.spec.max_replicas);
        let rules = match desired.cmp(&current) {
            Ordering::Greater => &self.spec.scale_up,
            Ordering::Less => &self.spec.scale_down,
            Ordering::Equal => return (desired, None),
        };
        let disabled = rules.select_policy == SelectPolicy::Disabled;
        let policy_reason = if disabled {
            DecisionReason::DirectionDisabled
        } else {
            DecisionReason::LimitedByPolicy
        };
        let limit = self.policy_limit(now, current, rules, desired > current);
        let limited = if desired > current {
            let limit = u32::try_from(limit.max(i64::from(current))).unwrap_or(u32::MAX);
            let (allowed, reason) = if max > limit {
                (limit, policy_reason)
            } else {
                (max, DecisionReason::ClampedMax)
            };
            (desired > allowed).then_some((allowed, reason))
        } else {
            let limit = u32::try_from(limit.clamp(0, i64::from(current))).unwrap_or(0);
            let (allowed, reason) = if min < limit {
                (limit, policy_reason)
            } else {
                (min, DecisionReason::ClampedMin)
            };
            (desired < allowed).then_some((allowed, reason))
        };
        match limited {
            Some((allowed, reason)) => (allowed, Some(reason)),
            None => (desired, None),
        }
    }

    /// The furthest count the policies allow (`calculateScaleUpLimitWithScalingRules`
    /// and `calculateScaleDownLimitWithBehaviors`), as a signed count.
    fn policy_limit(&self, now: Duration, current: u32, rules: &ScalingRules, up: bool) -> i64 {
        let current = i64::from(current);
        // "Max" means the largest change: the highest count up, the lowest down.
        let take_highest = match rules.select_policy {
            SelectPolicy::Disabled => return current,
            SelectPolicy::Max => up,
            SelectPolicy::Min => !up,
        };
        let proposals = rules.policies.iter().map(|policy| {
            let added = changes_within(&self.scale_up_events, policy.period, now);
            let removed = changes_within(&self.scale_down_events, policy.period, now);
            let start = current - added + removed;
            let value = i64::from(policy.value);
            match (policy.kind, up) {
                (PolicyKind::Pods, true) => start + value,
                (PolicyKind::Pods, false) => start - value,
                // Rounded up so that a small percentage can still add a pod.
                (PolicyKind::Percent, true) => {
                    (start as f64 * (1.0 + value as f64 / 100.0)).ceil() as i64
                }
                // Truncated, as the controller's int32 conversion does.
                (PolicyKind::Percent, false) => {
                    (start as f64 * (1.0 - value as f64 / 100.0)) as i64
                }
            }
        });
        let chosen = if take_highest {
            proposals.max()
        } else {
            proposals.min()
        };
        chosen.unwrap_or(current)
    }

    /// Records a scale from `previous` to `new`, reusing the slot of an event
    /// older than the direction's longest policy period (`storeScaleEvent`).
    fn store_scale_event(&mut self, now: Duration, previous: u32, new: u32) {
        let (events, rules, change) = if new > previous {
            (
                &mut self.scale_up_events,
                &self.spec.scale_up,
                new - previous,
            )
        } else {
            (
                &mut self.scale_down_events,
                &self.spec.scale_down,
                previous - new,
            )
        };
        let longest = rules
            .policies
            .iter()
            .map(|p| p.period)
            .max()
            .unwrap_or_default();
        for event in events.iter_mut() {
            if event.at + longest < now {
                event.outdated = true;
            }
        }
        let event = ScaleEvent {
            at: now,
            change,
            outdated: false,
        };
        match events.iter().rposition(|e| e.outdated) {
            Some(i) => events[i] = event,
            None => events.push(event),
        }
    }
}

fn fixed(
    desired_replicas: u32,
    utilisation_percent: Option<u32>,
    reason: DecisionReason,
) -> Decision {
    Decision {
        desired_replicas,
        raw_recommendation: desired_replicas,
        utilisation_percent,
        reason,
    }
}

/// Replicas changed by events strictly inside `(now − period, now]`.
fn changes_within(events: &[ScaleEvent], period: Duration, now: Duration) -> i64 {
    events
        .iter()
        .filter(|e| e.at + period > now)
        .map(|e| i64::from(e.change))
        .sum()
}

/// Mean utilisation in whole percent, computed as the metrics pipeline does:
/// usage in whole millicores per replica, then `total × 100 / requests`
/// with integer division. `None` without any replica. Negative or NaN
/// utilisations count as 0.
fn utilisation_percent(ready_utilisations: &[f64]) -> Option<u32> {
    if ready_utilisations.is_empty() {
        return None;
    }
    let used_millicores: u64 = ready_utilisations
        .iter()
        .map(|u| {
            let u = if u.is_nan() {
                0.0
            } else {
                u.clamp(0.0, MAX_UTILISATION)
            };
            (u * REQUEST_MILLICORES as f64).round() as u64
        })
        .sum();
    let requested = REQUEST_MILLICORES * ready_utilisations.len() as u64;
    Some(u32::try_from(used_millicores * 100 / requested).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
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

    fn rules(
        select_policy: SelectPolicy,
        window_s: u64,
        policies: &[ScalingPolicy],
    ) -> ScalingRules {
        ScalingRules {
            stabilisation_window: s(window_s),
            select_policy,
            policies: policies.to_vec(),
        }
    }

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn all(replicas: u32, utilisation: f64) -> Vec<f64> {
        vec![utilisation; replicas as usize]
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
        assert_eq!(utilisation_percent(&[0.2994, 0.5]), Some(39));
        assert_eq!(utilisation_percent(&[f64::NAN, -1.0, 1.0]), Some(33));
        assert_eq!(utilisation_percent(&[]), None);
    }

    #[test]
    fn scale_up_is_ceil_of_ratio_times_ready_replicas() {
        // 100/70 × 3 = 4.29 → 5; policies allow 7.
        assert_eq!(once(spec(1, 10), 3, 1.0), (5, 5, ScaleUp));
        // Only ready replicas count: 5 replicas, 2 ready at 140 % → ceil(2 × 2) = 4.
        let d = Autoscaler::new(spec(1, 10)).reconcile(s(0), 5, &[1.4, 1.4]);
        assert_eq!(
            (d.desired_replicas, d.reason, d.utilisation_percent),
            (4, ScaleDown, Some(140))
        );
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
}
