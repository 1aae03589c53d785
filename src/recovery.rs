//! A fault's recovery time: how long after its revert the run was back within the
//! envelope it showed before any fault, read from the per-second series (run.json
//! `faults[].recovery`). Pure: seconds and fault times in, a `Recovery` out.

use std::time::Duration;

use crate::stats::recorder::Second;

/// Consecutive seconds that must all lie within the envelope for the run to count as
/// recovered: one clean second can be luck at a few percent of failures.
pub const HOLD_SECONDS: usize = 3;
/// Fewest seconds with finished workflows before the first fault for an envelope.
pub const MIN_BASELINE_SECONDS: usize = 3;

/// What the run showed before its first fault: the worst second's failure rate and p95.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Envelope {
    /// Seconds it was taken from.
    pub seconds: usize,
    /// Highest per-second failure rate (0..1).
    pub failure_rate: f64,
    /// Highest per-second p95 of succeeded workflows, ms (`None`: none succeeded).
    pub p95_ms: Option<f64>,
}

/// One fault's recovery.
#[derive(Debug, Clone, PartialEq)]
pub enum Recovery {
    /// Back within `envelope` from `at` (the start of the first of `HOLD_SECONDS` clean
    /// seconds, from the second holding the revert on), `after` the revert (zero when
    /// that second was clean as a whole).
    Recovered {
        at: Duration,
        after: Duration,
        envelope: Envelope,
    },
    /// No run of `HOLD_SECONDS` clean seconds between the revert and the last second
    /// with finished workflows (`until`).
    NotRecovered { until: Duration, envelope: Envelope },
    /// Not measurable, and why (never applied or reverted, no baseline before the first
    /// fault).
    Unmeasured(String),
}

/// The envelope of the seconds wholly before `first_fault` (the earliest apply of any
/// fault): those with at least one finished workflow.
pub fn envelope(seconds: &[Second], first_fault: Duration) -> Option<Envelope> {
    let whole = first_fault.as_secs() as usize; // seconds [0, whole) end before it
    let mut env = Envelope {
        seconds: 0,
        failure_rate: 0.0,
        p95_ms: None,
    };
    for s in seconds.iter().take(whole) {
        let Some(rate) = s.failure_rate() else {
            continue;
        };
        env.seconds += 1;
        env.failure_rate = env.failure_rate.max(rate);
        if let Some(p95) = s.summary().p95 {
            env.p95_ms = Some(env.p95_ms.map_or(p95, |m: f64| m.max(p95)));
        }
    }
    (env.seconds >= MIN_BASELINE_SECONDS).then_some(env)
}

/// What a fault disturbs, so what its recovery is judged on: an abort the failure rate,
/// a delay the latency, both for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judged {
    pub failure_rate: bool,
    pub p95: bool,
}

/// The recovery after a fault reverted at `reverted_at`, against the run's envelope
/// before `first_fault`. A second is clean when it had finished workflows and, as
/// `judged` says, its failure rate is at most the envelope's and its p95 at most the
/// envelope's (a second with succeeded workflows is clean on p95 only if the envelope
/// had a p95 too). Judging only what the fault disturbs keeps a latency blip on a busy
/// machine from delaying an abort's recovery.
pub fn recovery(
    seconds: &[Second],
    first_fault: Option<Duration>,
    reverted_at: Option<Duration>,
    judged: Judged,
) -> Recovery {
    let (Some(first), Some(reverted)) = (first_fault, reverted_at) else {
        return Recovery::Unmeasured("the fault was not applied and reverted".into());
    };
    let Some(env) = envelope(seconds, first) else {
        return Recovery::Unmeasured(format!(
            "fewer than {MIN_BASELINE_SECONDS} seconds of load before the first fault to compare with"
        ));
    };
    let clean = |s: &Second| {
        let Some(rate) = s.failure_rate() else {
            return false;
        };
        let p95_ok = match (s.summary().p95, env.p95_ms) {
            (Some(p), Some(max)) => p <= max,
            (Some(_), None) => false,
            (None, _) => true,
        };
        (!judged.failure_rate || rate <= env.failure_rate) && (!judged.p95 || p95_ok)
    };
    // From the second that holds the revert: at one-second resolution, a revert just
    // after a second's start (the embedded platform's, to the microsecond) is that
    // second's; a second that also held the fault must still be clean as a whole.
    let from = reverted.as_secs() as usize;
    let last = seconds
        .iter()
        .rposition(|s| s.failure_rate().is_some())
        .unwrap_or(0);
    let mut run = 0;
    for (i, s) in seconds.iter().enumerate().skip(from) {
        run = if clean(s) { run + 1 } else { 0 };
        if run == HOLD_SECONDS {
            let at = Duration::from_secs((i + 1 - HOLD_SECONDS) as u64);
            return Recovery::Recovered {
                at,
                after: at.saturating_sub(reverted),
                envelope: env,
            };
        }
    }
    Recovery::NotRecovered {
        until: Duration::from_secs(last as u64 + 1),
        envelope: env,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::record::{Event, FailureKind, Outcome, WorkflowRecord};
    use crate::stats::{Recorder, WindowSpec};

    /// Seconds of 20 workflows each: `failures[i]` of them fail, the others take
    /// `latency_ms[i]`.
    fn series(failures: &[u64], latency_ms: &[u64]) -> Vec<Second> {
        let whole = WindowSpec {
            label: "run".into(),
            from_us: 0,
            to_us: 1_000_000_000,
            subset: None,
        };
        let mut r = Recorder::new(vec![whole], 1, 1_000_000);
        for (i, (&f, &l)) in failures.iter().zip(latency_ms).enumerate() {
            for k in 0..20u64 {
                let intended_us = i as u64 * 1_000_000 + k * 1000;
                let outcome = if k < f {
                    Outcome::Failed {
                        kind: FailureKind::Status,
                        step: 0,
                    }
                } else {
                    Outcome::Succeeded
                };
                r.add(&Event::Workflow(WorkflowRecord {
                    seq: 0,
                    intended_us,
                    lag_us: 0,
                    end_us: intended_us + l * 1000,
                    outcome,
                    steps: Vec::new(),
                    subset: None,
                }));
            }
        }
        r.finish().seconds
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    const BOTH: Judged = Judged {
        failure_rate: true,
        p95: true,
    };

    #[test]
    fn recovered_at_the_first_of_three_clean_seconds_after_the_revert() {
        // Baseline 0..5 (≤ 1 failure in 20, p95 100 ms), fault 5..10, a slow tail.
        let f = [0, 1, 0, 0, 0, 5, 5, 5, 5, 5, 3, 0, 1, 0, 0, 0];
        let l = [
            100, 90, 100, 80, 100, 100, 100, 100, 100, 100, 100, 300, 100, 100, 100, 100,
        ];
        let s = series(&f, &l);
        match recovery(&s, Some(secs(5.0)), Some(secs(9.6)), BOTH) {
            Recovery::Recovered {
                at,
                after,
                envelope,
            } => {
                // 9: the fault's; 10: 3 failures; 11: too slow; 12, 13, 14 clean.
                assert_eq!(at, secs(12.0));
                assert!((after.as_secs_f64() - 2.4).abs() < 1e-9);
                assert_eq!(envelope.seconds, 5);
                assert_eq!(envelope.failure_rate, 0.05);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_clean_second_holding_the_revert_counts_as_recovered_at_once() {
        let s = series(&[0, 0, 0, 4, 0, 0, 0, 0], &[100; 8]);
        let Recovery::Recovered { at, after, .. } =
            recovery(&s, Some(secs(3.0)), Some(secs(4.0001)), BOTH)
        else {
            panic!("recovered")
        };
        assert_eq!((at, after), (secs(4.0), Duration::ZERO));
    }

    #[test]
    fn an_abort_is_judged_on_failures_and_a_delay_on_latency() {
        // Failures stop at 5, a slow second at 6.
        let s = series(
            &[0, 0, 0, 5, 5, 0, 0, 0, 0, 0],
            &[100, 100, 100, 100, 100, 100, 400, 100, 100, 100],
        );
        let at = |judged| match recovery(&s, Some(secs(3.0)), Some(secs(5.0)), judged) {
            Recovery::Recovered { at, .. } => at,
            other => panic!("{other:?}"),
        };
        let abort = Judged {
            failure_rate: true,
            p95: false,
        };
        let delay = Judged {
            failure_rate: false,
            p95: true,
        };
        assert_eq!(at(abort), secs(5.0));
        assert_eq!(at(delay), secs(7.0));
        assert_eq!(at(BOTH), secs(7.0));
    }

    #[test]
    fn a_run_that_never_settles_is_not_recovered_and_says_until_when() {
        let f = [0, 0, 0, 5, 5, 2, 0, 2];
        let s = series(&f, &[100; 8]);
        assert_eq!(
            recovery(&s, Some(secs(3.0)), Some(secs(5.0)), BOTH),
            Recovery::NotRecovered {
                until: secs(8.0),
                envelope: Envelope {
                    seconds: 3,
                    failure_rate: 0.0,
                    p95_ms: s[0].summary().p95,
                },
            }
        );
    }

    #[test]
    fn no_baseline_or_no_revert_is_unmeasured_with_a_reason() {
        let s = series(&[0, 0, 0, 0], &[100; 4]);
        let Recovery::Unmeasured(why) = recovery(&s, Some(secs(2.0)), Some(secs(3.0)), BOTH) else {
            panic!("two baseline seconds are not enough")
        };
        assert!(why.contains("fewer than 3 seconds"), "{why}");
        assert!(matches!(
            recovery(&s, None, None, BOTH),
            Recovery::Unmeasured(_)
        ));
    }
}
