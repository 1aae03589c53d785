//! HdrHistogram helpers: one shape for every latency histogram (µs, 3
//! significant digits), summaries in milliseconds, and the compact
//! base64(V2+DEFLATE) form stored in run.json.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::Serialize;

/// Highest latency recorded exactly: one hour, in µs. Larger values saturate.
pub const MAX_US: u64 = 3_600_000_000;

/// A new latency histogram in µs with 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("static histogram bounds are valid")
}

/// Record a latency in µs (0 is recorded as 1 µs, the lowest trackable value).
pub fn record(h: &mut Histogram<u64>, us: u64) {
    h.saturating_record(us.max(1));
}

/// Percentile (0..100) in milliseconds, or None when empty.
pub fn percentile_ms(h: &Histogram<u64>, pct: f64) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(pct / 100.0) as f64 / 1000.0)
}

/// A latency summary in milliseconds (the run.json `latency_ms` object).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct LatencySummary {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub count: u64,
}

impl LatencySummary {
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        let empty = h.is_empty();
        LatencySummary {
            p50: percentile_ms(h, 50.0),
            p90: percentile_ms(h, 90.0),
            p95: percentile_ms(h, 95.0),
            p99: percentile_ms(h, 99.0),
            p999: percentile_ms(h, 99.9),
            max: (!empty).then(|| h.max() as f64 / 1000.0),
            mean: (!empty).then(|| h.mean() / 1000.0),
            count: h.len(),
        }
    }
}

/// Serialize as base64 of HdrHistogram's V2+DEFLATE encoding.
pub fn encode(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    // Writing into a Vec cannot fail for a well-formed histogram.
    let _ = V2DeflateSerializer::new().serialize(h, &mut buf);
    B64.encode(buf)
}

/// Decode what `encode` produced.
pub fn decode(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = B64.decode(text).map_err(|e| format!("not base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("not an HdrHistogram: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips() {
        let mut h = new_histogram();
        for v in [1, 10, 1000, 123_456, 9_999_999] {
            record(&mut h, v);
        }
        let back = decode(&encode(&h)).unwrap();
        assert_eq!(back.len(), 5);
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
        assert_eq!(back.max(), h.max());
    }

    #[test]
    fn summary_is_in_milliseconds() {
        let mut h = new_histogram();
        for v in 1..=1000u64 {
            record(&mut h, v * 1000);
        }
        let s = LatencySummary::of(&h);
        assert_eq!(s.count, 1000);
        assert!((s.p50.unwrap() - 500.0).abs() < 0.5);
        assert!((s.p99.unwrap() - 990.0).abs() < 1.0);
    }
}
