//! How values read in every human-facing format: units, thresholds, statuses.

use crate::scenario::{Bound, Unit};
use crate::slo::{SloResult, Status};

/// A value in its unit, for people: `3.21 ms`, `1.20 s`, `0.50 %`, `499.9/s`.
pub fn value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Ms if v >= 1000.0 => format!("{:.2} s", v / 1000.0),
        Unit::Ms if v >= 100.0 => format!("{v:.0} ms"),
        Unit::Ms if v >= 10.0 => format!("{v:.1} ms"),
        Unit::Ms => format!("{v:.2} ms"),
        Unit::Seconds => format!("{v:.1} s"),
        Unit::Ratio => format!("{:.2} %", v * 100.0),
        Unit::Count => format!("{v:.0}"),
        Unit::PerSecond => format!("{v:.1}/s"),
        Unit::Number => format!("{v:.4}"),
    }
}

/// `≤ 300 ms` or `≥ 95.0/s`.
pub fn threshold(r: &SloResult) -> String {
    let op = match r.bound {
        Bound::Max => "≤",
        Bound::Min => "≥",
    };
    format!("{op} {}", value(r.threshold, r.unit))
}

/// The observed value, or `no data`.
pub fn observed(r: &SloResult) -> String {
    r.observed
        .map_or_else(|| "no data".into(), |v| value(v, r.unit))
}

/// `PASS`, `FAIL`, `UNKNOWN` (or `UNKNOWN (allowed)`).
pub fn status(r: &SloResult) -> &'static str {
    match (r.status, r.allow_unknown) {
        (Status::Pass, _) => "PASS",
        (Status::Fail, _) => "FAIL",
        (Status::Unknown, true) => "UNKNOWN (allowed)",
        (Status::Unknown, false) => "UNKNOWN",
    }
}

/// Milliseconds or `-`.
pub fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| value(v, Unit::Ms))
}
