//! `faults`: Istio delay and abort faults, each with its window on the schedule.

use std::collections::HashSet;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::Ctx;
use crate::scenario::model::{Abort, Delay, Fault};
use crate::scenario::raw::RawFault;
use crate::units::format_duration;

pub(super) fn validate_faults(
    cx: &mut Ctx,
    raw: &[Spanned<RawFault>],
    schedule_end: Duration,
) -> Vec<Fault> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (i, f) in raw.iter().enumerate() {
        let loc = Some(f.referenced);
        let f = &f.value;
        let path = format!("faults[{i}]");
        if !seen.insert(f.name.clone()) {
            cx.err(
                loc,
                format!("{path}.name"),
                format!(
                    "two faults are named `{}`; fault names must be unique",
                    f.name
                ),
            );
        }
        if f.duration.0.is_zero() {
            cx.err(
                loc,
                format!("{path}.for"),
                "a fault must last longer than 0s",
            );
        }
        if f.start.0 >= schedule_end && !schedule_end.is_zero() {
            cx.err(
                loc,
                format!("{path}.start"),
                format!(
                    "the fault starts at {}, when the schedule ({}) has already ended",
                    format_duration(f.start.0),
                    format_duration(schedule_end)
                ),
            );
        }
        if f.delay.is_none() && f.abort.is_none() {
            cx.err(loc, path.clone(), "a fault needs `delay: { percentage, fixed_delay }` or `abort: { percentage, http_status }` (or both)");
        }
        if let Some(d) = &f.delay {
            if d.fixed_delay.0.is_zero() {
                cx.err(
                    loc,
                    format!("{path}.delay.fixed_delay"),
                    "must be longer than 0s",
                );
            }
        }
        if let Some(a) = &f.abort {
            if !(200..=599).contains(&a.http_status) {
                cx.err(
                    loc,
                    format!("{path}.abort.http_status"),
                    format!(
                        "`{}` is not an HTTP status Istio can return (200 to 599)",
                        a.http_status
                    ),
                );
            }
        }
        out.push(Fault {
            name: f.name.clone(),
            start: f.start.0,
            duration: f.duration.0,
            delay: f.delay.as_ref().map(|d| Delay {
                percent: d.percentage.0,
                fixed_delay: d.fixed_delay.0,
            }),
            abort: f.abort.as_ref().map(|a| Abort {
                percent: a.percentage.0,
                http_status: a.http_status,
            }),
        });
    }
    out
}
