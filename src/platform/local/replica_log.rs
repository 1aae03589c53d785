//! The replica timeline the embedded platform records: one sample per HPA sync and per
//! change, in a bounded buffer (runs of identical counts are folded to their first and
//! last sample, and past `MAX_SAMPLES` the oldest are dropped).

use std::collections::VecDeque;

use crate::target::ReplicaSample;

/// Upper bound on stored samples; at one sync per 15 s of scenario time this is weeks.
pub(super) const MAX_SAMPLES: usize = 100_000;

/// Samples in time order.
#[derive(Debug, Default)]
pub(super) struct Timeline {
    samples: VecDeque<ReplicaSample>,
}

impl Timeline {
    /// Appends `sample`. When it repeats the counts of the last two samples, it replaces
    /// the last one instead: a flat stretch keeps its first and latest sample.
    pub fn push(&mut self, sample: ReplicaSample) {
        let same = |a: &ReplicaSample, b: &ReplicaSample| {
            (a.desired, a.current, a.ready) == (b.desired, b.current, b.ready)
        };
        let n = self.samples.len();
        if n >= 2 && same(&self.samples[n - 1], &sample) && same(&self.samples[n - 2], &sample) {
            self.samples[n - 1] = sample;
            return;
        }
        if n >= MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    pub fn to_vec(&self) -> Vec<ReplicaSample> {
        self.samples.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;

    #[test]
    fn flat_runs_fold_to_first_and_last_and_changes_stay() {
        let t0 = Instant::now();
        let s = |secs, ready| ReplicaSample {
            at: t0 + Duration::from_secs(secs),
            desired: 2,
            current: 2,
            ready,
        };
        let mut t = Timeline::default();
        for (secs, ready) in [(0, 1), (1, 2), (2, 2), (3, 2), (4, 2), (5, 1)] {
            t.push(s(secs, ready));
        }
        assert_eq!(t.to_vec(), vec![s(0, 1), s(1, 2), s(4, 2), s(5, 1)]);
    }

    #[test]
    fn the_buffer_is_bounded() {
        let t0 = Instant::now();
        let mut t = Timeline::default();
        for i in 0..(MAX_SAMPLES as u64 + 10) {
            t.push(ReplicaSample {
                at: t0 + Duration::from_millis(i),
                desired: (i % 2) as u32,
                current: 1,
                ready: 1,
            });
        }
        let v = t.to_vec();
        assert_eq!(v.len(), MAX_SAMPLES);
        assert_eq!(v[0].at, t0 + Duration::from_millis(10));
    }
}
