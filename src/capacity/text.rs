//! Plain-text pieces every capacity format shares: the one-line answer and why a step
//! failed.

use std::fmt::Write as _;

use super::model::{CapacityReport, StepReport};
use super::search::Conclusion;
use crate::report::format;
use crate::scenario::Unit;

fn rate(v: f64) -> String {
    format::value(v, Unit::PerSecond)
}

/// The one-line answer: the capacity and what bound it.
pub fn headline(r: &CapacityReport) -> String {
    if let Some(why) = &r.stopped {
        let held = r.capacity_per_s.map_or(String::new(), |c| {
            format!(" (the highest rate held before: {})", rate(c))
        });
        return format!("capacity: not concluded{held}: the search stopped: {why}");
    }
    let mut out = match (r.conclusion, r.capacity_per_s) {
        (Conclusion::FromFails, _) | (_, None) => {
            format!(
                "capacity: none found: even {} fails",
                rate(r.settings.from_per_s)
            )
        }
        (Conclusion::AtLeastTo { .. }, Some(c)) => {
            format!(
                "capacity: at least {} (--to; every rate tried held)",
                rate(c)
            )
        }
        (_, Some(c)) => format!("capacity: {}", rate(c)),
    };
    if let Some(a) = r.achieved_at_capacity_per_s {
        let _ = write!(out, " (achieved {})", rate(a));
    }
    if let Some(b) = &r.bound_by {
        let observed = b
            .observed
            .map_or("no data".into(), |v| format::value(v, b.unit));
        let _ = write!(
            out,
            ", bound by \"{}\" ({} {} against {} at {})",
            b.slo,
            b.metric,
            observed,
            format::value(b.threshold, b.unit),
            rate(b.failed_at_per_s)
        );
    }
    if let Conclusion::StepLimit { .. } = r.conclusion {
        out.push_str(" — step budget exhausted, precision not reached");
    }
    out
}

/// The failing SLOs of a step with observed vs threshold.
pub fn why(s: &StepReport) -> String {
    s.slos
        .iter()
        .filter(|x| !x.holds())
        .map(|x| {
            format!(
                "{}: {} (threshold {})",
                x.name,
                format::observed(x),
                format::threshold(x)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
