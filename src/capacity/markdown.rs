//! capacity.md: the capacity, what bound it, and the curve as a Markdown table (fits a CI
//! step summary).

use std::fmt::Write as _;

use super::model::CapacityReport;
use super::text::headline;
use super::text::why;
use crate::report::format;
use crate::scenario::Unit;

pub fn render(r: &CapacityReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Capacity: {}\n", r.scenario);
    let _ = writeln!(out, "**{}**\n", headline(r));
    let s = &r.settings;
    let _ = writeln!(
        out,
        "{} steps in {:.0} s on {} ({}); rates from {}/s up to {}/s, precision {:.1} %; each rate {} s warm-up + {} s measured (time scale {}).\n",
        r.steps.len(),
        r.duration_s,
        r.platform.kind,
        if r.platform.emulated {
            "emulated"
        } else {
            "real"
        },
        s.from_per_s,
        s.to_per_s,
        s.precision * 100.0,
        s.warmup_s,
        s.step_s,
        r.time_scale
    );
    out.push_str("| rate | achieved | p50 | p95 | p99 | failed | replicas | verdict | step |\n");
    out.push_str("|---:|---:|---:|---:|---:|---:|---:|---|---|\n");
    for st in r.curve() {
        let verdict = if st.passed {
            "held".to_string()
        } else {
            format!("failed: {}", why(st))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} ({}) |",
            format::value(st.target_rate_per_s, Unit::PerSecond),
            format::value(st.achieved_rate_per_s, Unit::PerSecond),
            format::ms(st.latency_ms.p50),
            format::ms(st.latency_ms.p95),
            format::ms(st.latency_ms.p99),
            st.failure_rate
                .map_or_else(|| "-".into(), |v| format::value(v, Unit::Ratio)),
            st.replicas.map_or_else(
                || "-".into(),
                |p| if p.settled {
                    p.ready.to_string()
                } else {
                    format!("{} (unsettled)", p.ready)
                }
            ),
            verdict.replace('|', "\\|"),
            st.index,
            st.phase.as_str()
        );
    }
    if !r.slos_evaluated.is_empty() {
        let _ = writeln!(
            out,
            "\nSLOs evaluated per step: {}.",
            r.slos_evaluated.join(", ")
        );
    }
    for n in &r.not_applicable {
        let _ = writeln!(
            out,
            "\n- not applicable: **{}** (`{}`): {}",
            n.name, n.metric, n.why
        );
    }
    for n in &r.notes {
        let _ = writeln!(out, "\n- note: {n}");
    }
    out
}
