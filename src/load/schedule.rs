//! The arrival schedule: intended workflow start offsets from the stages, as a
//! lazy iterator (O(1) memory however long the run). Constant arrivals sit at
//! Λ⁻¹(k); Poisson arrivals at Λ⁻¹(E₁+…+Eₖ) with unit exponential gaps (time
//! rescaling), where Λ is the integral of the piecewise-linear rate.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::scenario::{Arrival, Stage};

/// One stage in plan time (already time-scaled).
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Offset of the stage's start from the run's start, seconds.
    pub start_s: f64,
    pub duration_s: f64,
    pub start_rate_per_s: f64,
    pub end_rate_per_s: f64,
    /// Λ at the stage's start (expected starts before it).
    pub lambda_start: f64,
}

impl Segment {
    /// Expected number of starts within the stage.
    pub fn lambda(&self) -> f64 {
        (self.start_rate_per_s + self.end_rate_per_s) / 2.0 * self.duration_s
    }

    /// Offset within the stage at which Λ has grown by `dl` (0 ≤ dl ≤ lambda()).
    fn invert(&self, dl: f64) -> f64 {
        if dl <= 0.0 {
            return 0.0;
        }
        let r0 = self.start_rate_per_s;
        let a = (self.end_rate_per_s - r0) / (2.0 * self.duration_s);
        if a.abs() < 1e-12 {
            return if r0 > 0.0 { dl / r0 } else { self.duration_s };
        }
        // Solve a t² + r0 t − dl = 0 in the numerically stable form.
        let disc = (r0 * r0 + 4.0 * a * dl).max(0.0);
        let denom = r0 + disc.sqrt();
        if denom <= 0.0 {
            self.duration_s
        } else {
            (2.0 * dl / denom).min(self.duration_s)
        }
    }
}

/// The whole schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub arrival: Arrival,
    /// Seed used for Poisson arrivals.
    pub seed: u64,
    pub segments: Vec<Segment>,
}

impl Schedule {
    /// Build from stages; `time_scale` multiplies every stage's duration.
    pub fn new(arrival: Arrival, seed: u64, stages: &[Stage], time_scale: f64) -> Schedule {
        let mut segments = Vec::with_capacity(stages.len());
        let (mut t, mut lambda) = (0.0, 0.0);
        for s in stages {
            let seg = Segment {
                start_s: t,
                duration_s: s.duration.as_secs_f64() * time_scale,
                start_rate_per_s: s.start_rate_per_s,
                end_rate_per_s: s.end_rate_per_s,
                lambda_start: lambda,
            };
            t += seg.duration_s;
            lambda += seg.lambda();
            segments.push(seg);
        }
        Schedule {
            arrival,
            seed,
            segments,
        }
    }

    /// Total length of the schedule.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration_s())
    }

    pub fn duration_s(&self) -> f64 {
        self.segments
            .last()
            .map_or(0.0, |s| s.start_s + s.duration_s)
    }

    /// Expected number of starts (exact for constant arrivals, the mean for Poisson).
    pub fn expected_starts(&self) -> f64 {
        self.segments.iter().map(Segment::lambda).sum()
    }

    /// Mean configured start rate over the schedule.
    pub fn mean_rate_per_s(&self) -> f64 {
        let d = self.duration_s();
        if d > 0.0 {
            self.expected_starts() / d
        } else {
            0.0
        }
    }

    /// Configured rate at offset `t_s`.
    pub fn rate_at(&self, t_s: f64) -> f64 {
        for s in &self.segments {
            if t_s < s.start_s + s.duration_s {
                let f = ((t_s - s.start_s) / s.duration_s).clamp(0.0, 1.0);
                return s.start_rate_per_s + (s.end_rate_per_s - s.start_rate_per_s) * f;
            }
        }
        0.0
    }

    /// Intended start offsets, in order.
    pub fn iter(&self) -> Starts<'_> {
        Starts {
            schedule: self,
            seg: 0,
            next_lambda: 0.0,
            rng: Pcg64Mcg::seed_from_u64(self.seed),
            first: true,
        }
    }
}

/// Which starts of the schedule one generator issues when several share it (`--generators
/// N`): shard `index` of `count` owns the starts whose sequence number is `index` modulo
/// `count`. Every generator iterates the same schedule (same stages, seed, time scale) from
/// the same instant, so the shards together are exactly the one-generator schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The whole schedule: one generator.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`; None unless `index < count`.
    pub fn new(index: u32, count: u32) -> Option<Shard> {
        (index < count).then_some(Shard { index, count })
    }

    /// Worker `w` of `workers` within this shard: the sequence numbers it issues are
    /// `skip, skip + step, skip + 2·step, …` (the shard's own starts, dealt to its
    /// workers in turn).
    pub fn worker_starts(self, w: usize, workers: usize) -> (usize, usize) {
        let count = self.count.max(1) as usize;
        (self.index as usize + w * count, count * workers.max(1))
    }
}

/// Iterator over intended start offsets (seconds from the run's start).
pub struct Starts<'a> {
    schedule: &'a Schedule,
    seg: usize,
    next_lambda: f64,
    rng: Pcg64Mcg,
    first: bool,
}

impl Starts<'_> {
    fn advance(&mut self) {
        let step = match self.schedule.arrival {
            Arrival::Constant => 1.0,
            // 1 − U lies in (0, 1], so the logarithm is finite.
            Arrival::Poisson => -(1.0 - self.rng.random::<f64>()).ln(),
        };
        if self.first && self.schedule.arrival == Arrival::Constant {
            // The first constant start is at t = 0.
            self.first = false;
            return;
        }
        self.first = false;
        self.next_lambda += step;
    }
}

impl Iterator for Starts<'_> {
    type Item = f64;

    fn next(&mut self) -> Option<f64> {
        self.advance();
        let segs = &self.schedule.segments;
        while self.seg < segs.len() {
            let s = &segs[self.seg];
            let dl = self.next_lambda - s.lambda_start;
            if dl < s.lambda() {
                let t = s.start_s + s.invert(dl);
                if t < s.start_s + s.duration_s {
                    return Some(t);
                }
            }
            self.seg += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every sequence number is issued by exactly one worker of exactly one shard, for
    /// any number of shards and workers per shard.
    #[test]
    fn shards_and_their_workers_partition_the_schedule() {
        for count in 1..=5u32 {
            for workers in 1..=4usize {
                let mut owner = vec![None; 500];
                for index in 0..count {
                    let shard = Shard::new(index, count).unwrap();
                    for w in 0..workers {
                        let (skip, step) = shard.worker_starts(w, workers);
                        for seq in (skip..owner.len()).step_by(step) {
                            assert_eq!(owner[seq], None, "{seq} issued twice ({count}×{workers})");
                            assert_eq!(seq as u32 % count, index, "{seq} outside shard {index}");
                            owner[seq] = Some((index, w));
                        }
                    }
                }
                assert!(
                    owner.iter().all(Option::is_some),
                    "{count}×{workers}: {owner:?}"
                );
            }
        }
        assert_eq!(Shard::new(3, 3), None);
        assert_eq!(Shard::WHOLE.worker_starts(1, 2), (1, 2));
    }

    fn stage(secs: f64, r0: f64, r1: f64) -> Stage {
        Stage {
            name: None,
            duration: Duration::from_secs_f64(secs),
            start_rate_per_s: r0,
            end_rate_per_s: r1,
        }
    }

    #[test]
    fn constant_schedule_is_evenly_spaced_with_exact_count() {
        let s = Schedule::new(Arrival::Constant, 0, &[stage(2.0, 500.0, 500.0)], 1.0);
        let starts: Vec<f64> = s.iter().collect();
        assert_eq!(starts.len(), 1000);
        assert_eq!(starts[0], 0.0);
        assert!((starts[1] - 0.002).abs() < 1e-12);
        assert!((starts[999] - 1.998).abs() < 1e-9);
    }

    #[test]
    fn linear_ramp_has_the_area_under_the_rate_as_count() {
        // 0 → 100/s over 10 s: 500 starts, denser at the end.
        let s = Schedule::new(Arrival::Constant, 0, &[stage(10.0, 0.0, 100.0)], 1.0);
        let starts: Vec<f64> = s.iter().collect();
        assert_eq!(starts.len(), 500);
        let first_half = starts.iter().filter(|t| **t < 5.0).count();
        assert_eq!(first_half, 125); // Λ(5) = 100/10 * 25 / 2
        assert!(starts.windows(2).all(|w| w[1] >= w[0]));
    }

    #[test]
    fn time_scale_shrinks_durations_not_rates() {
        let s = Schedule::new(Arrival::Constant, 0, &[stage(10.0, 50.0, 50.0)], 0.1);
        assert_eq!(s.iter().count(), 50);
        assert!((s.duration_s() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn poisson_is_reproducible_for_a_seed_and_has_the_right_mean() {
        let stages = [stage(100.0, 200.0, 200.0)];
        let a: Vec<f64> = Schedule::new(Arrival::Poisson, 7, &stages, 1.0)
            .iter()
            .collect();
        let b: Vec<f64> = Schedule::new(Arrival::Poisson, 7, &stages, 1.0)
            .iter()
            .collect();
        let c: Vec<f64> = Schedule::new(Arrival::Poisson, 8, &stages, 1.0)
            .iter()
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        // 20 000 expected; 4 standard deviations is ±566.
        assert!((a.len() as f64 - 20_000.0).abs() < 566.0, "{}", a.len());
        let mean_gap = a.last().unwrap() / a.len() as f64;
        assert!((mean_gap - 0.005).abs() < 0.005 * 0.03, "{mean_gap}");
    }

    #[test]
    fn ramps_continue_from_the_previous_rate() {
        let s = Schedule::new(
            Arrival::Constant,
            0,
            &[stage(1.0, 10.0, 10.0), stage(1.0, 10.0, 30.0)],
            1.0,
        );
        assert_eq!(s.iter().count(), 30);
        assert_eq!(s.rate_at(1.5), 20.0);
    }
}
