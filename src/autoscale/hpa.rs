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
//!    millicores of a 1000 m request, rounded up, and the total is turned into a whole
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
//! Pods are passed in as the controller groups them (`groupPods`), each a
//! [`PodSample`]: ready with a CPU sample, ready without one yet (a new pod
//! metrics-server has not sampled twice), or unready (starting, not Ready, or
//! sampled before one metric window had passed since it turned Ready). As in
//! `calcPlainMetricReplicas`, the utilisation is that of the sampled pods; if
//! pods are missing or unready, the ratio is computed again with missing pods
//! at 100 % of their request on a scale-down and 0 % on a scale-up, and
//! unready pods at 0 % on a scale-up, and the count stays where it is if that
//! second ratio is within tolerance or points the other way.
//!
//! Simplification: when the manifest has no `behavior`, the controller
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

/// One pod at a sync, as the controller groups it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PodSample {
    /// Ready, with a CPU sample: usage as a fraction of its request (0.7 = 70 %).
    Ready(f64),
    /// Running, but the metrics API has no sample for it yet.
    Missing,
    /// Starting or not Ready, or sampled before one metric window had passed
    /// since it turned Ready: its sample, if any, is not used.
    Unready,
}

impl PodSample {
    /// Every pod ready, with these utilisations.
    pub fn all_ready(utilisations: &[f64]) -> Vec<PodSample> {
        utilisations.iter().map(|u| PodSample::Ready(*u)).collect()
    }
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
    /// Pods without a usable sample, counted at their fallback usage, make the
    /// change too small or point it the other way: the count stays.
    HeldByUnsampledPods,
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
    /// `current_replicas`, whose pods the metrics pipeline shows as `pods`.
    /// A change is recorded as a scale event, as the controller records a
    /// successful scale; the caller is expected to apply it.
    pub fn reconcile(
        &mut self,
        now: Duration,
        current_replicas: u32,
        pods: &[PodSample],
    ) -> Decision {
        let (min, max) = (self.spec.min_replicas, self.spec.max_replicas);
        let decision = if current_replicas == 0 {
            fixed(0, None, DecisionReason::ScalingDisabled)
        } else if current_replicas > max {
            fixed(max, None, DecisionReason::AboveMax)
        } else if current_replicas < min {
            fixed(min, None, DecisionReason::BelowMin)
        } else {
            let target = self.spec.target_cpu_utilisation_percent;
            match metric_recommendation(current_replicas, pods, target) {
                None => fixed(current_replicas, None, DecisionReason::NoMetrics),
                Some(metric) => self.recommend(now, current_replicas, metric),
            }
        };
        if decision.desired_replicas != current_replicas && current_replicas != 0 {
            self.store_scale_event(now, current_replicas, decision.desired_replicas);
        }
        decision
    }

    fn recommend(&mut self, now: Duration, current: u32, metric: Metric) -> Decision {
        let Metric { raw, percent, held } = metric;
        let stabilised = self.stabilise(now, current, raw);
        let (desired, limit) = self.limit_rate(now, current, stabilised);
        let reason = match (limit, held) {
            (Some(limit), _) => limit,
            (None, _) if stabilised != raw => DecisionReason::LimitedByStabilisation,
            (None, Some(held)) => held,
            (None, None) => match desired.cmp(&current) {
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

/// The metric's side of one sync: the raw recommendation, the sampled pods'
/// utilisation, and whether the count stays for want of a large enough change.
#[derive(Debug, Clone, Copy)]
struct Metric {
    raw: u32,
    percent: u32,
    held: Option<DecisionReason>,
}

/// `calcPlainMetricReplicas` for a CPU utilisation target: `None` when no pod
/// has a usable sample (the controller then leaves the count alone).
fn metric_recommendation(current: u32, pods: &[PodSample], target_percent: u32) -> Option<Metric> {
    let mut used: Vec<u64> = pods
        .iter()
        .filter_map(|p| match p {
            PodSample::Ready(u) => Some(millicores(*u)),
            _ => None,
        })
        .collect();
    if used.is_empty() {
        return None;
    }
    let ready = used.len() as u32;
    let count = |kind: PodSample| pods.iter().filter(|p| **p == kind).count();
    let (missing, unready) = (count(PodSample::Missing), count(PodSample::Unready));
    let target = f64::from(target_percent);
    let percent = utilisation_percent(&used);
    let ratio = f64::from(percent) / target;
    let keep = |reason| Metric {
        raw: current,
        percent,
        held: Some(reason),
    };
    let scale_up_with_unready = unready > 0 && ratio > 1.0;
    if !scale_up_with_unready && missing == 0 {
        if within_tolerance(ratio) {
            return Some(keep(DecisionReason::WithinTolerance));
        }
        return Some(Metric {
            raw: ceil_count(ratio * f64::from(ready)),
            percent,
            held: None,
        });
    }
    // Missing pods at 100 % of their request (or the target, if higher) on a
    // scale-down and at 0 % on a scale-up; unready ones at 0 % on a scale-up.
    if ratio < 1.0 {
        let fallback = REQUEST_MILLICORES * u64::from(target_percent.max(100)) / 100;
        used.extend(std::iter::repeat_n(fallback, missing));
    } else if ratio > 1.0 {
        used.extend(std::iter::repeat_n(0, missing));
    }
    if scale_up_with_unready {
        used.extend(std::iter::repeat_n(0, unready));
    }
    let new_ratio = f64::from(utilisation_percent(&used)) / target;
    let flips = (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0);
    let raw = ceil_count(new_ratio * used.len() as f64);
    let reverses = (new_ratio < 1.0 && raw > current) || (new_ratio > 1.0 && raw < current);
    if within_tolerance(new_ratio) || flips || reverses {
        return Some(keep(DecisionReason::HeldByUnsampledPods));
    }
    Some(Metric {
        raw,
        percent,
        held: None,
    })
}

/// Same comparisons as upstream `Tolerances.isWithin`: (1 − t) ≤ r ≤ (1 + t).
fn within_tolerance(ratio: f64) -> bool {
    ((1.0 - TOLERANCE)..=(1.0 + TOLERANCE)).contains(&ratio)
}

/// `ceil`, saturating: an absurd ratio still ends at maxReplicas.
fn ceil_count(replicas: f64) -> u32 {
    replicas.ceil() as u32
}

/// A utilisation as whole millicores of the request, rounded up, as the
/// controller reads usage (`Quantity.MilliValue`, a ceiling). Negative or NaN
/// utilisations count as 0.
fn millicores(utilisation: f64) -> u64 {
    let u = if utilisation.is_nan() {
        0.0
    } else {
        utilisation.clamp(0.0, MAX_UTILISATION)
    };
    // Less a trace, so that 0.779 (779.000…01 in binary) stays 779 m.
    (u * REQUEST_MILLICORES as f64 - 1e-6).ceil().max(0.0) as u64
}

/// Mean utilisation in whole percent, as `GetResourceUtilizationRatio` computes
/// it: `total × 100 / requests` with integer division, one request per pod.
fn utilisation_percent(used_millicores: &[u64]) -> u32 {
    let requested = REQUEST_MILLICORES * used_millicores.len().max(1) as u64;
    let total: u64 = used_millicores.iter().sum();
    u32::try_from(total * 100 / requested).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
