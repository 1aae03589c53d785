//! `summary.md`: the verdict, the SLO table and the headline numbers, for a
//! person or `$GITHUB_STEP_SUMMARY`.

use std::fmt::Write as _;

use super::baseline::{self, BaselineReport};
use super::format;
use super::model::RunReport;
use super::trend::HistoryReport;
use crate::slo::Verdict;

/// The whole summary.md of `r`.
pub fn render(r: &RunReport) -> String {
    let mut out = String::new();
    let verdict = match (r.verdict, r.interrupted) {
        (_, true) => "INTERRUPTED (partial report)",
        (Verdict::Pass, false) => "PASS",
        (Verdict::Fail, false) => "FAIL",
    };
    let mut regressions = match r.regressions() {
        0 => String::new(),
        1 => ", 1 regression against the baseline".into(),
        n => format!(", {n} regressions against the baseline"),
    };
    match r.history_regressions() {
        0 => {}
        1 => regressions.push_str(", 1 regression against the history"),
        n => regressions.push_str(&format!(", {n} regressions against the history")),
    }
    let _ = writeln!(
        out,
        "# slo-check: {} — {verdict}{regressions}\n",
        r.scenario
    );
    if !r.description.is_empty() {
        let _ = writeln!(out, "{}\n", r.description);
    }
    if r.platform.emulated {
        let _ = writeln!(
            out,
            "> **Emulated platform.** {} — replicas, autoscaling and faults are emulated on one machine.\n",
            r.platform.description
        );
    }
    out.push_str(
        "| SLO | metric | window | observed | threshold | status |\n|---|---|---|---|---|---|\n",
    );
    for s in &r.slos {
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} | {} | **{}** |",
            cell(&s.name),
            cell(&s.metric),
            cell(&s.window.label),
            format::observed(s),
            format::threshold(s),
            format::status(s)
        );
    }
    let notes: Vec<_> = r
        .slos
        .iter()
        .filter(|s| !s.holds() || s.observed.is_none())
        .collect();
    if !notes.is_empty() {
        out.push('\n');
        for s in notes {
            if let Some(reason) = &s.reason {
                let _ = writeln!(out, "- **{}**: {}", cell(&s.name), reason);
            }
        }
    }
    if let Some(c) = &r.canary {
        let _ = writeln!(
            out,
            "\n## Canary: {} → {}\n\n**{}**\n\nEach step is judged at its end on the canary's workflows of the step that had ended by then; the figures below count every workflow started in the step, by the version that served it.\n\n{}",
            cell(&c.versions.stable),
            cell(&c.versions.canary),
            cell(&c.outcome_line()),
            c.table(true)
        );
    }
    if let Some(b) = &r.baseline {
        baseline_section(&mut out, b);
    }
    if let Some(h) = &r.history {
        history_section(&mut out, h);
    }
    load_section(&mut out, r);
    mesh_section(&mut out, r);
    if let Some(note) = r.hpa_clock_note() {
        let _ = writeln!(out, "\n**Autoscaling**: {note}.");
    }
    latency_section(&mut out, r);
    out.push_str(&crate::prom::report::markdown(&r.cross_check));
    let _ = writeln!(
        out,
        "\n<sub>{} · target {} · time scale {} · arrival {}{} · started {} · {:.1} s · slo-check {}</sub>",
        r.platform.kind,
        r.platform.target_url,
        r.time_scale,
        r.arrival,
        r.seed.map(|s| format!(" (seed {s})")).unwrap_or_default(),
        r.started_at,
        r.duration_s,
        r.tool_version
    );
    out
}

/// Scheduled, started and dropped starts, rates and lag; workflows by outcome.
fn load_section(out: &mut String, r: &RunReport) {
    let c = &r.counts;
    let _ = writeln!(
        out,
        "\n**Load**: {} scheduled, {} started, {} dropped; target {:.1}/s, achieved {:.1}/s; schedule lag p50 {}, p99 {} (pacing slack {}).",
        c.scheduled,
        c.started,
        c.dropped,
        r.target_rate_per_s,
        r.achieved_rate_per_s,
        format::ms(r.schedule_lag_ms.p50),
        format::ms(r.schedule_lag_ms.p99),
        format::ms(Some(r.schedule_lag_ms.pacing_slack_ms))
    );
    let _ = writeln!(
        out,
        "\n**Workflows**: {} succeeded, {} failed{}{}.",
        c.succeeded,
        c.failed,
        format::failure_kinds(&c.failures_by_kind),
        if c.abandoned > 0 {
            format!(", {} abandoned at interrupt", c.abandoned)
        } else {
            String::new()
        }
    );
}

/// A line per applied fault (control plane and data plane), and the gateway's counters.
fn mesh_section(out: &mut String, r: &RunReport) {
    let faults: Vec<String> = r.faults.iter().filter_map(format::fault_line).collect();
    if !faults.is_empty() {
        out.push_str("\n**Faults**:\n\n");
        for line in faults {
            let _ = writeln!(out, "- {line}");
        }
    }
    if let Some(g) = &r.gateway {
        let line = format::gateway_line(g, &r.counts.failures_by_kind);
        let _ = writeln!(out, "\n**Gateway** ({}): {line}.", g.source);
    }
    if let Some(line) = format::generators_line(&r.generators) {
        let _ = writeln!(out, "\n**Load** from {line}.");
    }
}

/// Workflow and step latency percentiles, from intended start.
fn latency_section(out: &mut String, r: &RunReport) {
    out.push_str("\n| latency (from intended start) | p50 | p90 | p95 | p99 | p99.9 | max | count |\n|---|---|---|---|---|---|---|---|\n");
    let mut row = |name: &str, l: &crate::stats::histogram::LatencySummary| {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(name),
            format::ms(l.p50),
            format::ms(l.p90),
            format::ms(l.p95),
            format::ms(l.p99),
            format::ms(l.p999),
            format::ms(l.max),
            l.count
        );
    };
    row("workflow", &r.workflow.latency_ms);
    for (name, s) in &r.steps {
        row(&format!("step {name}"), &s.latency_ms);
    }
}

/// Deltas against the baseline; regressions in bold.
fn baseline_section(out: &mut String, b: &BaselineReport) {
    let _ = writeln!(
        out,
        "\n## Compared with the baseline\n\nBaseline `{}` ({}, started {}). A change for the worse beyond {:.1} % is a regression: **{} regression{}**.\n",
        b.file,
        cell(&b.scenario),
        b.started_at,
        b.max_regression * 100.0,
        b.regressions,
        if b.regressions == 1 { "" } else { "s" }
    );
    for n in &b.notes {
        let _ = writeln!(out, "> {n}\n");
    }
    out.push_str("| measure | baseline | this run | change | |\n|---|---|---|---|---|\n");
    for d in &b.deltas {
        let v = |x: Option<f64>| x.map_or_else(|| "no data".into(), |v| format::value(v, d.unit));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            cell(&d.name),
            v(d.baseline),
            v(d.current),
            baseline::change_text(d),
            if d.regression { "**REGRESSION**" } else { "" }
        );
    }
}

/// Each metric against the run history; regressions in bold.
fn history_section(out: &mut String, h: &HistoryReport) {
    let _ = writeln!(
        out,
        "\n## Compared with the history\n\n{} earlier comparable runs in `{}`. {}: a change point (p < {}) that this run is part of, for the worse by more than {:.1} %, is a regression: **{} regression{}**.\n",
        h.runs,
        h.store,
        h.method,
        h.max_pvalue,
        h.min_effect * 100.0,
        h.regressions,
        if h.regressions == 1 { "" } else { "s" }
    );
    for n in &h.notes {
        let _ = writeln!(out, "> {n}\n");
    }
    out.push_str("| measure | before | this run | change point | |\n|---|---|---|---|---|\n");
    for m in &h.metrics {
        let v = |x: Option<f64>| x.map_or_else(|| "no data".into(), |v| format::value(v, m.unit));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            cell(&m.name),
            v(m.before_mean),
            v(m.current),
            if m.change_at.is_some() {
                cell(&m.text())
            } else {
                "none".into()
            },
            if m.regression { "**REGRESSION**" } else { "" }
        );
    }
}

/// Keep table cells on one line and free of column separators.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
