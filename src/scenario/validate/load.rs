//! `load`: the arrival schedule (stages, rates, ramps) and the load engine's limits,
//! with their defaults.

use std::collections::HashSet;
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use super::Ctx;
use crate::scenario::model::{Arrival, Load, Stage};
use crate::scenario::raw::{RawArrival, RawLoad, RawStage};
use crate::units::format_duration;

const DEFAULT_MAX_IN_FLIGHT: u64 = 10_000;
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_RESPONSE_BYTES: u64 = 1 << 20;
/// Starts due within this long of a load worker's last wake-up wait for the next one
/// (see `Load::pacing_slack`): at 20 000/s a quarter of the wake-ups, for at most 0.2 ms of lag.
const DEFAULT_PACING_SLACK: Duration = Duration::from_micros(200);
/// More than this would change the schedule a scenario asks for, not just batch it.
const MAX_PACING_SLACK: Duration = Duration::from_millis(10);

pub(super) fn validate_load(cx: &mut Ctx, raw: &Spanned<RawLoad>) -> Load {
    let loc = Some(raw.referenced);
    let raw = &raw.value;
    if raw.stages.is_empty() {
        cx.err(
            loc,
            "load.stages",
            "no stages; add at least one, e.g. `- { for: 30s, rate: 10 }`",
        );
    }
    if raw.seed.is_some() && raw.arrival == RawArrival::Constant {
        cx.err(
            loc,
            "load.seed",
            "a seed only applies to `arrival: poisson`; remove it or switch to poisson",
        );
    }
    let stages = validate_stages(cx, &raw.stages);
    check_stage_set(cx, loc, &stages);
    let max_in_flight = raw.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
    if max_in_flight == 0 {
        cx.err(loc, "load.max_in_flight", "must be at least 1");
    }
    let request_timeout = raw.request_timeout.map_or(DEFAULT_REQUEST_TIMEOUT, |d| d.0);
    if request_timeout.is_zero() {
        cx.err(
            loc,
            "load.request_timeout",
            "must be longer than 0s, e.g. 10s",
        );
    }
    let max_response_bytes = raw.max_response_bytes.unwrap_or(DEFAULT_MAX_RESPONSE_BYTES);
    if max_response_bytes == 0 {
        cx.err(loc, "load.max_response_bytes", "must be at least 1");
    }
    let pacing_slack = raw.pacing_slack.map_or(DEFAULT_PACING_SLACK, |d| d.0);
    if pacing_slack > MAX_PACING_SLACK {
        cx.err(
            loc,
            "load.pacing_slack",
            format!(
                "{} would hold starts back too long; use at most {}, e.g. 0.2ms",
                format_duration(pacing_slack),
                format_duration(MAX_PACING_SLACK)
            ),
        );
    }
    Load {
        arrival: arrival(raw.arrival),
        seed: raw.seed,
        stages,
        max_in_flight,
        request_timeout,
        max_response_bytes,
        pacing_slack,
    }
}

fn arrival(raw: RawArrival) -> Arrival {
    match raw {
        RawArrival::Constant => Arrival::Constant,
        RawArrival::Poisson => Arrival::Poisson,
    }
}

/// Each stage with its start and end rate; a ramp starts at the previous stage's end.
fn validate_stages(cx: &mut Ctx, raw: &[Spanned<RawStage>]) -> Vec<Stage> {
    let mut stages = Vec::new();
    let mut prev_rate = 0.0;
    for (i, s) in raw.iter().enumerate() {
        let path = format!("load.stages[{i}]");
        let sloc = Some(s.referenced);
        let s = &s.value;
        if s.duration.0.is_zero() {
            cx.err(
                sloc,
                format!("{path}.for"),
                "a stage must last longer than 0s",
            );
        }
        let (start, end) = stage_rates(cx, sloc, &path, s, prev_rate);
        prev_rate = end;
        stages.push(Stage {
            name: s.name.clone(),
            duration: s.duration.0,
            start_rate_per_s: start,
            end_rate_per_s: end,
        });
    }
    stages
}

/// `(start, end)` rate of one stage: `rate` holds, `ramp_to` ramps from `prev_rate`.
fn stage_rates(
    cx: &mut Ctx,
    sloc: Option<Location>,
    path: &str,
    s: &RawStage,
    prev_rate: f64,
) -> (f64, f64) {
    match (s.rate, s.ramp_to) {
        (Some(r), None) => {
            if !(r.is_finite() && r > 0.0) {
                cx.err(
                    sloc,
                    format!("{path}.rate"),
                    format!("rate `{r}` must be a positive number of workflow starts per second"),
                );
            }
            (r, r)
        }
        (None, Some(r)) => {
            if !(r.is_finite() && r >= 0.0) {
                cx.err(
                    sloc,
                    format!("{path}.ramp_to"),
                    format!("ramp_to `{r}` must be a number of starts per second, 0 or more"),
                );
            }
            (prev_rate, r)
        }
        (Some(_), Some(_)) => {
            cx.err(
                sloc,
                path,
                "give either `rate` (hold) or `ramp_to` (linear ramp), not both",
            );
            (0.0, 0.0)
        }
        (None, None) => {
            cx.err(
                sloc,
                path,
                "a stage needs `rate` (hold) or `ramp_to` (linear ramp from the previous rate)",
            );
            (0.0, 0.0)
        }
    }
}

/// Checks across the stages: they schedule at least one start (reported only when
/// nothing else is wrong), and their names are unique.
fn check_stage_set(cx: &mut Ctx, loc: Option<Location>, stages: &[Stage]) {
    let expected: f64 = stages
        .iter()
        .map(|s| (s.start_rate_per_s + s.end_rate_per_s) / 2.0 * s.duration.as_secs_f64())
        .sum();
    if !stages.is_empty() && expected.is_finite() && expected < 1.0 && cx.errors.is_empty() {
        cx.err(
            loc,
            "load.stages",
            "the stages schedule no workflow start at all; raise a rate or a duration",
        );
    }
    let names: Vec<_> = stages.iter().filter_map(|s| s.name.as_deref()).collect();
    if let Some(dup) = first_duplicate(&names) {
        cx.err(
            loc,
            "load.stages",
            format!("two stages are named `{dup}`; stage names must be unique"),
        );
    }
}

fn first_duplicate<'a>(names: &[&'a str]) -> Option<&'a str> {
    let mut seen = HashSet::new();
    names.iter().copied().find(|n| !seen.insert(*n))
}
