//! The recorder: the one owner of every histogram and counter. It consumes
//! engine events and keeps, by intended start time, the whole run, each
//! window an SLO or report needs, and a per-second series. Memory is bounded
//! whatever the run's length: finished seconds are sealed into compressed form.

use hdrhistogram::Histogram;

use super::histogram::{self, LatencySummary, new_histogram, record};
use super::record::{Event, FailureKind, Outcome, WorkflowRecord};
use crate::scenario::Subset;

/// A time window by intended start, in µs after the run's zero: `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSpec {
    pub label: String,
    pub from_us: u64,
    pub to_us: u64,
    /// Only the workflows this subset served (canary runs); `None`: every workflow.
    pub subset: Option<Subset>,
}

impl WindowSpec {
    fn contains(&self, t_us: u64) -> bool {
        t_us >= self.from_us && t_us < self.to_us
    }

    /// Whether a workflow served by `served` belongs in the window.
    fn admits(&self, served: Option<Subset>) -> bool {
        self.subset.is_none() || self.subset == served
    }

    pub fn len_s(&self) -> f64 {
        self.to_us.saturating_sub(self.from_us) as f64 / 1e6
    }
}

/// Counts over a window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Workflows whose first request was sent within the window (by actual time).
    pub started_actual: u64,
    /// Workflows intended to start in the window that were issued.
    pub started: u64,
    pub dropped: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub abandoned: u64,
    /// Failures by kind, indexed by `FailureKind::index`.
    pub failures_by_kind: [u64; FailureKind::COUNT],
}

impl Counts {
    /// failed / (succeeded + failed), None when neither happened.
    pub fn failure_rate(&self) -> Option<f64> {
        failure_rate(self.succeeded, self.failed)
    }
}

/// Everything recorded for one window.
#[derive(Debug, Clone)]
pub struct WindowStats {
    pub spec: WindowSpec,
    /// Latency of succeeded workflows, µs, from the intended start.
    pub workflow: Histogram<u64>,
    /// Latency of succeeded steps, µs, one histogram per step.
    pub steps: Vec<Histogram<u64>>,
    pub counts: Counts,
}

impl WindowStats {
    fn new(spec: WindowSpec, steps: usize) -> WindowStats {
        WindowStats {
            spec,
            workflow: new_histogram(),
            steps: (0..steps).map(|_| new_histogram()).collect(),
            counts: Counts::default(),
        }
    }

    fn add(&mut self, r: &WorkflowRecord) {
        let c = &mut self.counts;
        c.started += 1;
        match r.outcome {
            Outcome::Succeeded => {
                c.succeeded += 1;
                record(&mut self.workflow, r.latency_us());
            }
            Outcome::Failed { kind, .. } => {
                c.failed += 1;
                c.failures_by_kind[kind.index()] += 1;
            }
            Outcome::Abandoned => c.abandoned += 1,
        }
        for s in r.steps.iter().filter(|s| s.ok) {
            if let Some(h) = self.steps.get_mut(s.step as usize) {
                record(h, s.latency_us);
            }
        }
    }
}

/// One second of the time series.
#[derive(Debug, Clone, Default)]
pub struct Second {
    /// Workflows whose first request was sent in this second.
    pub started: u64,
    /// By intended start in this second:
    pub succeeded: u64,
    pub failed: u64,
    pub dropped: u64,
    pub failures_by_kind: [u64; FailureKind::COUNT],
    /// By intended start in this second, workflows each subset served (canary runs),
    /// indexed by `Subset::index`.
    pub served: [u64; 2],
    open: Option<Box<Histogram<u64>>>,
    sealed: Option<Sealed>,
}

#[derive(Debug, Clone)]
struct Sealed {
    encoded: String,
    summary: LatencySummary,
}

impl Second {
    fn histogram_mut(&mut self) -> &mut Histogram<u64> {
        if self.open.is_none() {
            let h = match self.sealed.take() {
                Some(s) => histogram::decode(&s.encoded).unwrap_or_else(|_| new_histogram()),
                None => new_histogram(),
            };
            self.open = Some(Box::new(h));
        }
        self.open.as_mut().expect("just set")
    }

    fn seal(&mut self) {
        if let Some(h) = self.open.take() {
            self.sealed = Some(Sealed {
                encoded: histogram::encode(&h),
                summary: LatencySummary::of(&h),
            });
        }
    }

    /// failed / (succeeded + failed) of the workflows intended to start in this second,
    /// None when none finished.
    pub fn failure_rate(&self) -> Option<f64> {
        failure_rate(self.succeeded, self.failed)
    }

    /// Workflow latency summary of the second (succeeded workflows).
    pub fn summary(&self) -> LatencySummary {
        match (&self.open, &self.sealed) {
            (Some(h), _) => LatencySummary::of(h),
            (None, Some(s)) => s.summary.clone(),
            (None, None) => LatencySummary::default(),
        }
    }

    /// The second's histogram, base64 V2+DEFLATE (empty string when no workflow succeeded).
    pub fn encoded(&self) -> String {
        match (&self.open, &self.sealed) {
            (Some(h), _) => histogram::encode(h),
            (None, Some(s)) => s.encoded.clone(),
            (None, None) => String::new(),
        }
    }
}

/// failed / (succeeded + failed), None when neither happened.
fn failure_rate(succeeded: u64, failed: u64) -> Option<f64> {
    let done = succeeded + failed;
    (done > 0).then(|| failed as f64 / done as f64)
}

/// The aggregator's state.
pub struct Recorder {
    windows: Vec<WindowStats>,
    seconds: Vec<Second>,
    lag: Histogram<u64>,
    /// Seconds ending this long before "now" can no longer receive records.
    seal_after_us: u64,
}

/// What the recorder hands on at the end of a run.
#[derive(Debug, Clone)]
pub struct RunStats {
    /// In the order given to `Recorder::new`; the first is the whole run.
    pub windows: Vec<WindowStats>,
    pub seconds: Vec<Second>,
    /// Schedule lag (actual minus intended send time of the first request), µs.
    pub lag: Histogram<u64>,
}

impl Recorder {
    /// `windows[0]` should be the whole run. `max_workflow_us` bounds how long
    /// a workflow can take, so older seconds can be sealed.
    pub fn new(windows: Vec<WindowSpec>, steps: usize, max_workflow_us: u64) -> Recorder {
        Recorder {
            windows: windows
                .into_iter()
                .map(|w| WindowStats::new(w, steps))
                .collect(),
            seconds: Vec::new(),
            lag: new_histogram(),
            seal_after_us: max_workflow_us + 2_000_000,
        }
    }

    fn second(&mut self, t_us: u64) -> &mut Second {
        let idx = (t_us / 1_000_000) as usize;
        if self.seconds.len() <= idx {
            self.seconds.resize_with(idx + 1, Second::default);
        }
        &mut self.seconds[idx]
    }

    pub fn add(&mut self, event: &Event) {
        match event {
            Event::Dropped { intended_us } => {
                // A dropped start was never served: it belongs to no subset.
                for w in self
                    .windows
                    .iter_mut()
                    .filter(|w| w.spec.contains(*intended_us) && w.spec.subset.is_none())
                {
                    w.counts.dropped += 1;
                }
                self.second(*intended_us).dropped += 1;
            }
            Event::Workflow(r) => self.add_workflow(r),
        }
    }

    fn add_workflow(&mut self, r: &WorkflowRecord) {
        let actual_us = r.intended_us + r.lag_us;
        if r.outcome != Outcome::Abandoned || !r.steps.is_empty() {
            record(&mut self.lag, r.lag_us);
        }
        for w in self.windows.iter_mut().filter(|w| w.spec.admits(r.subset)) {
            if w.spec.contains(r.intended_us) {
                w.add(r);
            }
            if w.spec.contains(actual_us) {
                w.counts.started_actual += 1;
            }
        }
        self.second(actual_us).started += 1;
        let sec = self.second(r.intended_us);
        if let Some(s) = r.subset {
            sec.served[s.index()] += 1;
        }
        match r.outcome {
            Outcome::Succeeded => {
                sec.succeeded += 1;
                record(sec.histogram_mut(), r.latency_us());
            }
            Outcome::Failed { kind, .. } => {
                sec.failed += 1;
                sec.failures_by_kind[kind.index()] += 1;
            }
            Outcome::Abandoned => {}
        }
    }

    /// Seal the seconds that can no longer change, given the time now (µs after zero).
    pub fn seal_before(&mut self, now_us: u64) {
        let limit = now_us.saturating_sub(self.seal_after_us) / 1_000_000;
        for s in self.seconds.iter_mut().take(limit as usize) {
            s.seal();
        }
    }

    /// Window `i` (in `Recorder::new`'s order) so far.
    pub fn window(&self, i: usize) -> &WindowStats {
        &self.windows[i]
    }

    /// The whole-run window so far (for the progress line).
    pub fn run_window(&self) -> &WindowStats {
        &self.windows[0]
    }

    pub fn finish(self) -> RunStats {
        RunStats {
            windows: self.windows,
            seconds: self.seconds,
            lag: self.lag,
        }
    }
}

/// Failures by kind as (name, count) pairs, every kind present.
pub fn failures_by_kind(counts: &[u64; FailureKind::COUNT]) -> Vec<(&'static str, u64)> {
    FailureKind::ALL
        .iter()
        .map(|k| (k.as_str(), counts[k.index()]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::record::StepSample;

    fn wf(intended_us: u64, latency_us: u64, outcome: Outcome) -> Event {
        Event::Workflow(WorkflowRecord {
            seq: 0,
            intended_us,
            lag_us: 100,
            end_us: intended_us + latency_us,
            outcome,
            steps: vec![StepSample {
                step: 0,
                latency_us,
                ok: outcome == Outcome::Succeeded,
            }],
            subset: None,
        })
    }

    #[test]
    fn windows_count_by_intended_start() {
        let spec = |label: &str, from, to| WindowSpec {
            label: label.into(),
            from_us: from,
            to_us: to,
            subset: None,
        };
        let mut r = Recorder::new(
            vec![
                spec("run", 0, 10_000_000),
                spec("late", 5_000_000, 10_000_000),
            ],
            1,
            1_000_000,
        );
        r.add(&wf(1_000_000, 9_000_000, Outcome::Succeeded)); // ends late, counts early
        r.add(&wf(
            6_000_000,
            1_000,
            Outcome::Failed {
                kind: FailureKind::Status,
                step: 0,
            },
        ));
        r.add(&Event::Dropped {
            intended_us: 7_000_000,
        });
        let s = r.finish();
        assert_eq!(s.windows[0].counts.succeeded, 1);
        assert_eq!(s.windows[0].counts.failed, 1);
        assert_eq!(s.windows[1].counts.succeeded, 0);
        assert_eq!(s.windows[1].counts.failed, 1);
        assert_eq!(s.windows[1].counts.dropped, 1);
        assert_eq!(
            s.windows[1].counts.failures_by_kind[FailureKind::Status.index()],
            1
        );
        assert_eq!(s.windows[0].counts.failure_rate(), Some(0.5));
        assert_eq!(s.seconds[1].succeeded, 1);
        assert_eq!(s.seconds[6].failed, 1);
    }

    #[test]
    fn sealed_seconds_keep_their_numbers_and_reopen_for_late_records() {
        let mut r = Recorder::new(
            vec![WindowSpec {
                label: "run".into(),
                from_us: 0,
                to_us: u64::MAX,
                subset: None,
            }],
            1,
            0,
        );
        r.add(&wf(100, 5_000, Outcome::Succeeded));
        r.seal_before(10_000_000);
        assert!(r.seconds[0].open.is_none());
        assert_eq!(r.seconds[0].summary().count, 1);
        r.add(&wf(200, 7_000, Outcome::Succeeded));
        assert_eq!(r.seconds[0].summary().count, 2);
    }
}
