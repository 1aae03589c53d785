//! Lognormal latency distributions given by their median and 99th percentile.
//!
//! A leaf that imports nothing of the crate: the scenario format checks
//! `platform.local` latencies with it, and the reference agent draws from it.

use std::time::Duration;

use rand::Rng;
use rand_distr::{Distribution, LogNormal};

/// z-score of the 99th percentile of the standard normal distribution.
const Z_P99: f64 = 2.326_347_874_040_841;

/// A lognormal latency: `ln(latency_s) ~ Normal(mu, sigma)` with `mu = ln(median)` and
/// `sigma = ln(p99 / median) / z_0.99`, so the configured median and p99 are exact.
#[derive(Debug, Clone, Copy)]
pub struct LogNormalLatency {
    /// Median latency.
    pub median: Duration,
    /// 99th-percentile latency.
    pub p99: Duration,
    distribution: Option<LogNormal<f64>>,
}

impl LogNormalLatency {
    /// Errors (as a message for the p99 flag) when `p99 < median`.
    /// A zero median means "no latency": every draw is zero.
    pub fn new(median: Duration, p99: Duration) -> Result<Self, String> {
        if p99 < median {
            return Err(format!(
                "p99 {} is below the median {}; the p99 must be >= the median",
                humantime::format_duration(p99),
                humantime::format_duration(median)
            ));
        }
        let distribution = if median.is_zero() {
            None
        } else {
            let (mu, sigma) = Self::parameters(median, p99);
            Some(LogNormal::new(mu, sigma).map_err(|e| e.to_string())?)
        };
        Ok(Self {
            median,
            p99,
            distribution,
        })
    }

    /// `(mu, sigma)` of the underlying normal distribution, in ln-seconds.
    pub fn parameters(median: Duration, p99: Duration) -> (f64, f64) {
        let median_s = median.as_secs_f64();
        let mu = median_s.ln();
        let sigma = (p99.as_secs_f64() / median_s).ln() / Z_P99;
        (mu, sigma)
    }

    /// One latency draw.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        match &self.distribution {
            None => Duration::ZERO,
            // Clamp to an hour so a wild draw (or a huge p99) cannot overflow Duration.
            Some(d) => Duration::from_secs_f64(d.sample(rng).min(3600.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    fn quantile(sorted: &[f64], q: f64) -> f64 {
        sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
    }

    #[test]
    fn draws_match_configured_median_and_p99() {
        let latency =
            LogNormalLatency::new(Duration::from_millis(200), Duration::from_secs(1)).unwrap();
        let mut rng = SmallRng::seed_from_u64(7);
        let mut draws: Vec<f64> = (0..20_000)
            .map(|_| latency.sample(&mut rng).as_secs_f64())
            .collect();
        draws.sort_by(f64::total_cmp);
        let median = quantile(&draws, 0.5);
        let p99 = quantile(&draws, 0.99);
        // Standard errors at n = 20k are ~1% (median) and ~4% (p99); allow a few of them.
        assert!((median - 0.2).abs() / 0.2 < 0.05, "median {median}");
        assert!((p99 - 1.0).abs() / 1.0 < 0.12, "p99 {p99}");
    }

    #[test]
    fn parameters_follow_the_formula() {
        let (mu, sigma) =
            LogNormalLatency::parameters(Duration::from_millis(50), Duration::from_millis(200));
        assert!((mu - 0.05f64.ln()).abs() < 1e-12);
        assert!((sigma - 4f64.ln() / 2.326).abs() < 1e-3);
    }

    #[test]
    fn equal_median_and_p99_is_constant_and_zero_is_zero() {
        let mut rng = SmallRng::seed_from_u64(1);
        let fixed =
            LogNormalLatency::new(Duration::from_millis(5), Duration::from_millis(5)).unwrap();
        let d = fixed.sample(&mut rng);
        assert!((d.as_secs_f64() - 0.005).abs() < 1e-9, "{d:?}");
        let zero = LogNormalLatency::new(Duration::ZERO, Duration::ZERO).unwrap();
        assert_eq!(zero.sample(&mut rng), Duration::ZERO);
    }

    #[test]
    fn p99_below_median_is_refused() {
        assert!(LogNormalLatency::new(Duration::from_secs(1), Duration::from_millis(1)).is_err());
    }
}
