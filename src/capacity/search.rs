//! The capacity search, free of I/O: it proposes rates and takes verdicts. Exponential
//! growth from `--from` until a rate fails (or `--to` passes), then bisection (geometric
//! midpoint) between the highest passing and the lowest failing rate until they are within
//! `--precision` of each other, then one confirmation run of the highest passing rate.
//!
//! The search assumes "passes" is monotone in the rate. Measurements are noisy, so it does
//! not trust it blindly: a confirmation that fails moves the failing bound down to that rate
//! and resumes bisection below it, and every contradiction (a pass above a failure, a
//! failure at or below a pass) is counted and reported. The step budget bounds it all.

use serde::{Deserialize, Serialize};

/// Proposed rates are rounded to this many significant digits (readable numbers), unless
/// rounding would leave the open interval being bisected.
const SIGNIFICANT_DIGITS: i32 = 4;

/// What the search needs to know.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchSettings {
    /// First rate tried, workflow starts per second (> 0).
    pub from_per_s: f64,
    /// Highest rate tried (>= from).
    pub to_per_s: f64,
    /// Stop when (lowest failing − highest passing) / highest passing is at most this (> 0).
    pub precision: f64,
    /// Factor between rates of the exponential phase (> 1).
    pub growth: f64,
    /// Most steps (rates held) in all.
    pub max_steps: usize,
    /// Re-run the result once before concluding.
    pub confirm: bool,
}

/// Why a step was run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Exponential,
    Bisection,
    Confirmation,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Exponential => "exponential",
            Phase::Bisection => "bisection",
            Phase::Confirmation => "confirmation",
        }
    }
}

/// The next rate to hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Proposal {
    pub rate_per_s: f64,
    pub phase: Phase,
}

/// How the search ended.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Conclusion {
    /// The highest passing rate, within `precision` of the lowest failing one.
    Found {
        capacity_per_s: f64,
        next_failing_per_s: f64,
    },
    /// `--to` itself passes: the capacity is at least that.
    AtLeastTo { capacity_per_s: f64 },
    /// Even `--from` fails.
    FromFails,
    /// The step budget ran out before the precision was reached.
    StepLimit {
        capacity_per_s: Option<f64>,
        next_failing_per_s: Option<f64>,
    },
}

impl Conclusion {
    /// The capacity found, if any.
    pub fn capacity_per_s(&self) -> Option<f64> {
        match *self {
            Conclusion::Found { capacity_per_s, .. } | Conclusion::AtLeastTo { capacity_per_s } => {
                Some(capacity_per_s)
            }
            Conclusion::StepLimit { capacity_per_s, .. } => capacity_per_s,
            Conclusion::FromFails => None,
        }
    }

    /// The lowest failing rate above the capacity, if one was seen.
    pub fn next_failing_per_s(&self) -> Option<f64> {
        match *self {
            Conclusion::Found {
                next_failing_per_s, ..
            } => Some(next_failing_per_s),
            Conclusion::StepLimit {
                next_failing_per_s, ..
            } => next_failing_per_s,
            _ => None,
        }
    }
}

/// The search's state: every verdict so far.
#[derive(Debug, Clone)]
pub struct Search {
    settings: SearchSettings,
    /// (rate, passed) in the order recorded.
    verdicts: Vec<(f64, bool)>,
    /// Highest passing rate below `hi`.
    lo: Option<f64>,
    /// Lowest failing rate.
    hi: Option<f64>,
    /// The rate a confirmation run passed at, if any.
    confirmed: Option<f64>,
    contradictions: usize,
}

impl Search {
    pub fn new(settings: SearchSettings) -> Search {
        Search {
            settings,
            verdicts: Vec::new(),
            lo: None,
            hi: None,
            confirmed: None,
            contradictions: 0,
        }
    }

    /// The next rate to hold, or `None` when the search is over.
    pub fn next(&self) -> Option<Proposal> {
        if self.verdicts.len() >= self.settings.max_steps {
            return None;
        }
        let s = &self.settings;
        let propose = |rate_per_s, phase| Some(Proposal { rate_per_s, phase });
        match (self.lo, self.hi) {
            (None, None) => propose(s.from_per_s, Phase::Exponential),
            (None, Some(_)) => None,
            (Some(lo), None) if lo >= s.to_per_s => None,
            (Some(lo), None) => propose(
                round_within(lo * s.growth, lo, f64::INFINITY).min(s.to_per_s),
                Phase::Exponential,
            ),
            (Some(lo), Some(hi)) if (hi - lo) / lo <= s.precision => {
                if s.confirm && self.confirmed != Some(lo) {
                    propose(lo, Phase::Confirmation)
                } else {
                    None
                }
            }
            (Some(lo), Some(hi)) => {
                propose(round_within((lo * hi).sqrt(), lo, hi), Phase::Bisection)
            }
        }
    }

    /// Take the verdict of a step held at `rate_per_s`.
    pub fn record(&mut self, rate_per_s: f64, passed: bool) {
        let confirming = self.lo == Some(rate_per_s)
            && self
                .hi
                .is_some_and(|hi| (hi - rate_per_s) / rate_per_s <= self.settings.precision);
        self.verdicts.push((rate_per_s, passed));
        if passed {
            if self.hi.is_some_and(|hi| rate_per_s >= hi) {
                // Noise: a pass above a failure. Trust the failure (the conservative side).
                self.contradictions += 1;
                return;
            }
            if confirming {
                self.confirmed = Some(rate_per_s);
            }
            self.lo = Some(self.lo.map_or(rate_per_s, |lo| lo.max(rate_per_s)));
            return;
        }
        if self.lo.is_some_and(|lo| rate_per_s <= lo) {
            self.contradictions += 1;
        }
        let hi = self.hi.map_or(rate_per_s, |hi| hi.min(rate_per_s));
        self.hi = Some(hi);
        // The highest rate that passed below the new failing bound, with no failure at or
        // below it; None when even the lowest passing rate has now failed too.
        let lowest_fail = self
            .verdicts
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(r, _)| *r)
            .fold(f64::INFINITY, f64::min);
        self.lo = self
            .verdicts
            .iter()
            .filter(|(r, ok)| *ok && *r < lowest_fail)
            .map(|(r, _)| *r)
            .reduce(f64::max);
        if self.confirmed.is_some_and(|c| c >= hi) {
            self.confirmed = None;
        }
    }

    /// How the search ended (or where it stands, if asked early).
    pub fn conclusion(&self) -> Conclusion {
        let s = &self.settings;
        match (self.lo, self.hi) {
            (None, _) => Conclusion::FromFails,
            (Some(lo), None) if lo >= s.to_per_s => Conclusion::AtLeastTo { capacity_per_s: lo },
            (Some(lo), Some(hi))
                if (hi - lo) / lo <= s.precision && (!s.confirm || self.confirmed == Some(lo)) =>
            {
                Conclusion::Found {
                    capacity_per_s: lo,
                    next_failing_per_s: hi,
                }
            }
            (lo, hi) => Conclusion::StepLimit {
                capacity_per_s: lo,
                next_failing_per_s: hi,
            },
        }
    }

    /// Verdicts that contradicted the monotone assumption (a pass above a failure, or a
    /// failure at or below a pass).
    pub fn contradictions(&self) -> usize {
        self.contradictions
    }

    /// Steps recorded so far.
    pub fn steps(&self) -> usize {
        self.verdicts.len()
    }

    /// Most steps the search can take with these settings (for the up-front time bound).
    pub fn max_steps(&self) -> usize {
        self.settings.max_steps
    }
}

/// `x` rounded to `SIGNIFICANT_DIGITS`, if that stays strictly inside `(lo, hi)`; else `x`.
fn round_within(x: f64, lo: f64, hi: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(SIGNIFICANT_DIGITS - 1 - x.log10().floor() as i32);
    let r = (x * scale).round() / scale;
    if r > lo && r < hi { r } else { x }
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
