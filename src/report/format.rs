//! How values read in every human-facing format: units, thresholds, statuses.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::model::{FaultReport, GatewayReport, RecoveryReport};
use crate::scenario::{Bound, Unit};
use crate::slo::{SloResult, Status};
use crate::stats::record::FailureKind;

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

/// One line per applied fault: when the control plane took it and its revert, and how
/// long the data plane took to hold each where the platform looked; `None` for a fault
/// never applied.
pub fn fault_line(f: &FaultReport) -> Option<String> {
    let applied = f.applied_at_s?;
    let reverted = f.reverted_at_s.map_or_else(
        || "never confirmed reverted".into(),
        |r| format!("{r:.2} s"),
    );
    let mut line = format!(
        "fault `{}`: {applied:.2} s to {reverted} (control plane)",
        f.name
    );
    match &f.data_plane {
        None => line.push_str("; data plane not observed"),
        Some(d) => {
            let later = |after: Option<f64>, within: Option<f64>| match (after, within) {
                (Some(a), _) => format!("{} later", ms(Some(a * 1000.0))),
                (None, Some(w)) => format!("not seen within {w:.1} s"),
                (None, None) => "not observed".into(),
            };
            let _ = write!(
                line,
                "; {}: applied {}, reverted {}",
                d.seen_in,
                later(d.applied_after_s, d.applied_not_seen_within_s),
                later(d.reverted_after_s, d.reverted_not_seen_within_s)
            );
        }
    }
    if let Some(r) = &f.recovery {
        let _ = write!(line, "; {}", recovery(r));
    }
    Some(line)
}

/// A fault's recovery, e.g. `recovered 1.40 s after the revert (from 47 s: ≤ 0.00 %
/// failures and p95 ≤ 12.3 ms, the worst of 14 s before the first fault)`.
pub fn recovery(r: &RecoveryReport) -> String {
    if let Some(why) = &r.unmeasured {
        return format!("recovery not measured: {why}");
    }
    let mut bounds = Vec::new();
    if let Some(rate) = r.baseline_failure_rate {
        bounds.push(format!("≤ {:.2} % failures", rate * 100.0));
    }
    if r.baseline_p95_ms.is_some() {
        bounds.push(format!("p95 ≤ {}", ms(r.baseline_p95_ms)));
    }
    let envelope = format!(
        "{} for {} s, the worst of {} s before the first fault",
        bounds.join(" and "),
        r.hold_seconds,
        r.baseline_seconds.unwrap_or(0),
    );
    match (r.recovery_seconds, r.recovered_at_s, r.not_recovered_by_s) {
        (Some(after), Some(at), _) => {
            format!("recovered {after:.2} s after the revert (from {at:.0} s: {envelope})")
        }
        (_, _, Some(by)) => format!("not recovered by {by:.0} s ({envelope})"),
        _ => "recovery not measured".into(),
    }
}

/// The failures by kind that happened, e.g. ` (status 40, overloaded 3)`; empty when
/// none did.
pub fn failure_kinds(by_kind: &BTreeMap<String, u64>) -> String {
    let kinds: Vec<String> = by_kind
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    if kinds.is_empty() {
        String::new()
    } else {
        format!(" ({})", kinds.join(", "))
    }
}

/// The gateway's counters for the load beside the client's own counts: its injected
/// aborts against the workflows that failed on a status, its circuit-breaker
/// overflows against those the client saw marked `x-envoy-overloaded`. Why not, when
/// unread. (The caller names the source, `GatewayReport::source`.)
pub fn gateway_line(g: &GatewayReport, client_failures: &BTreeMap<String, u64>) -> String {
    let client = |k: FailureKind| client_failures.get(k.as_str()).copied().unwrap_or(0);
    let (status, overloaded) = (client(FailureKind::Status), client(FailureKind::Overloaded));
    if let Some(why) = &g.unavailable {
        return format!("counters not read: {why}");
    }
    let n = |v: Option<u64>| v.map_or_else(|| "?".to_string(), |v| v.to_string());
    let unknown = [
        g.aborts_injected,
        g.delays_injected,
        g.downstream_rq,
        g.downstream_rq_5xx,
        g.upstream_rq_pending_overflow,
        g.upstream_rq_active_overflow,
        g.outlier_ejections_enforced,
    ]
    .iter()
    .any(Option::is_none);
    let overflows = match (
        g.upstream_rq_pending_overflow,
        g.upstream_rq_active_overflow,
    ) {
        (Some(0), Some(0)) => "0 circuit-breaker overflows".to_string(),
        (Some(p), Some(a)) => {
            format!(
                "{} circuit-breaker overflows ({p} waiting, {a} in flight)",
                p + a
            )
        }
        (p, a) => format!(
            "{} waiting + {} in flight circuit-breaker overflows",
            n(p),
            n(a)
        ),
    };
    let ejected_at = if g.ejections.is_empty() {
        String::new()
    } else {
        let at: Vec<String> = g
            .ejections
            .iter()
            .map(|e| format!("{} by {:.1} s", e.ejected, e.seen_at_s))
            .collect();
        format!(" ({})", at.join(", "))
    };
    format!(
        "{} aborts injected, {} delays; {} requests, {} 5xx, {overflows}, {} outlier ejections{ejected_at}; client saw {status} status failures, {overloaded} overloaded{}",
        n(g.aborts_injected),
        n(g.delays_injected),
        n(g.downstream_rq),
        n(g.downstream_rq_5xx),
        n(g.outlier_ejections_enforced),
        if unknown {
            " (?: a counter the proxy does not export)"
        } else {
            ""
        }
    )
}

/// A distributed run's generators in one line: how many completed, the clock offsets'
/// largest size and bound, and each lost one with why.
/// `3 generators, 3 completed; clock offsets ≤ 0.05 ms (± 0.31 ms)`.
pub fn generators_line(gens: &[super::model::GeneratorReport]) -> Option<String> {
    if gens.is_empty() {
        return None;
    }
    let lost: Vec<String> = gens
        .iter()
        .filter_map(|g| {
            Some(format!(
                "generator {} ({}) lost: {}",
                g.shard,
                g.runs_as,
                g.lost.as_ref()?
            ))
        })
        .collect();
    let largest = |f: fn(&super::model::GeneratorReport) -> Option<f64>| {
        gens.iter()
            .filter_map(f)
            .map(f64::abs)
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
    };
    let mut line = format!(
        "{} generator{}, {} completed",
        gens.len(),
        if gens.len() == 1 { "" } else { "s" },
        gens.len() - lost.len()
    );
    if let (Some(offset), Some(bound)) = (
        largest(|g| g.clock_offset_ms),
        largest(|g| g.clock_bound_ms),
    ) {
        line.push_str(&format!(
            "; clock offsets ≤ {offset:.2} ms (± {bound:.2} ms)"
        ));
    }
    for l in lost {
        line.push_str("; ");
        line.push_str(&l);
    }
    Some(line)
}
