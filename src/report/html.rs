//! `report.html`: one self-contained page (inline CSS and SVG, nothing
//! fetched) with the verdict, the SLO table, the baseline comparison, the
//! charts and the facts of the run, rendered from `RunReport` alone.

use std::fmt::Write as _;

use super::baseline::{self, BaselineReport};
use super::charts::{Chart, Charts, palette};
use super::format;
use super::model::RunReport;
use super::trend::HistoryReport;
use crate::scenario::Unit;
use crate::slo::{SloResult, Status, Verdict};
use crate::stats::histogram::LatencySummary;

const STYLE: &str = include_str!("html.css");

/// The page, with `charts` (rendered from the same report) inlined.
pub fn render(r: &RunReport, charts: &Charts) -> String {
    let mut out = String::with_capacity(256 * 1024);
    let verdict = verdict_word(r);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>slo-check: {} — {verdict}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<main>\n",
        esc(&r.scenario)
    );
    banner(&mut out, r);
    slo_table(&mut out, &r.slos);
    if let Some(c) = &r.canary {
        canary_section(&mut out, c);
    }
    if let Some(b) = &r.baseline {
        baseline_section(&mut out, b);
    }
    if let Some(h) = &r.history {
        history_section(&mut out, h, charts.trend.as_ref());
    }
    chart_sections(&mut out, r, charts);
    run_facts(&mut out, r);
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn verdict_word(r: &RunReport) -> &'static str {
    match (r.interrupted, r.verdict) {
        (true, _) => "INTERRUPTED",
        (false, Verdict::Pass) => "PASS",
        (false, Verdict::Fail) => "FAIL",
    }
}

/// Escape text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn banner(out: &mut String, r: &RunReport) {
    let word = verdict_word(r);
    let class = if r.verdict == Verdict::Pass && !r.interrupted && r.regressions() == 0 {
        "pass"
    } else {
        "fail"
    };
    let held = r.slos.iter().filter(|s| s.holds()).count();
    let _ = write!(
        out,
        "<header class=\"banner {class}\">\n<div class=\"verdict\">{word}</div>\n<div class=\"headline\">\n\
         <h1>{}</h1>\n",
        esc(&r.scenario)
    );
    if !r.description.is_empty() {
        let _ = writeln!(out, "<p class=\"desc\">{}</p>", esc(&r.description));
    }
    let mut facts = format!("{held} of {} SLOs hold", r.slos.len());
    for (n, against) in [
        (r.regressions(), "the baseline"),
        (r.history_regressions(), "the history"),
    ] {
        if n > 0 {
            let _ = write!(
                facts,
                " · <strong>{n} regression{} against {against}</strong>",
                plural(n)
            );
        }
    }
    let _ = write!(
        facts,
        " · {} workflows started, {} failed · {} · {:.0} s",
        r.counts.started,
        r.counts.failed,
        esc(&r.started_at),
        r.duration_s
    );
    let _ = writeln!(out, "<p class=\"facts\">{facts}</p>\n</div>\n</header>");
    if r.interrupted {
        out.push_str("<p class=\"note warn\"><strong>Interrupted.</strong> The run was stopped early; this is a partial report.</p>\n");
    }
    if r.platform.emulated {
        let _ = writeln!(
            out,
            "<p class=\"note\"><strong>Emulated platform.</strong> {} — replicas, autoscaling and faults are emulated on one machine.</p>",
            esc(&r.platform.description)
        );
    }
    if let Some(line) = format::generators_line(&r.generators) {
        let lost = r.generators.iter().any(|g| g.lost.is_some());
        let _ = writeln!(
            out,
            "<p class=\"note{}\"><strong>Load</strong> from {}.</p>",
            if lost { " warn" } else { "" },
            esc(&line)
        );
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn pill(status: Status, allowed: bool) -> String {
    let (class, word) = match (status, allowed) {
        (Status::Pass, _) => ("pass", "pass"),
        (Status::Fail, _) => ("fail", "fail"),
        (Status::Unknown, true) => ("unknown", "unknown (allowed)"),
        (Status::Unknown, false) => ("fail", "unknown"),
    };
    format!("<span class=\"pill {class}\">{word}</span>")
}

/// The canary's outcome and its per-step table.
fn canary_section(out: &mut String, c: &super::canary::CanaryReport) {
    let _ = write!(
        out,
        "<section>\n<h2>Canary: {} → {}</h2>\n<p><strong>{}</strong></p>\n<p>Each step is judged at its end on the canary's workflows of the step that had ended by then; the table counts every workflow started in the step, by the version that served it.</p>\n<table class=\"slos\">\n<thead><tr>",
        esc(&c.versions.stable),
        esc(&c.versions.canary),
        esc(&c.outcome_line())
    );
    for h in super::canary::CanaryReport::HEAD {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in c.rows() {
        out.push_str("<tr>");
        for cell in &row {
            let _ = write!(out, "<td>{}</td>", esc(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn slo_table(out: &mut String, slos: &[SloResult]) {
    out.push_str(
        "<section>\n<h2>Service level objectives</h2>\n<table class=\"slos\">\n<thead><tr><th>status</th><th>SLO</th>\
         <th>metric</th><th>window</th><th class=\"num\">observed</th><th class=\"num\">threshold</th><th>why</th></tr></thead>\n<tbody>\n",
    );
    for s in slos {
        let metric = if s.metric.chars().count() > 60 {
            format!(
                "<span title=\"{}\">{}…</span>",
                esc(&s.metric),
                esc(&s.metric.chars().take(57).collect::<String>())
            )
        } else {
            esc(&s.metric)
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}{}</td><td><code>{metric}</code></td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"reason\">{}</td></tr>",
            pill(s.status, s.allow_unknown),
            esc(&s.name),
            if s.builtin {
                " <span class=\"tag\">built-in</span>"
            } else {
                ""
            },
            esc(&s.window.label),
            esc(&format::observed(s)),
            esc(&format::threshold(s)),
            esc(s.reason.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn baseline_section(out: &mut String, b: &BaselineReport) {
    let _ = write!(
        out,
        "<section>\n<h2>Compared with the baseline</h2>\n<p>Baseline <code>{}</code> ({}, started {}, slo-check {}). \
         A change for the worse beyond {:.1} % is a regression: <strong>{} regression{}</strong>.</p>\n",
        esc(&b.file),
        esc(&b.scenario),
        esc(&b.started_at),
        esc(&b.tool_version),
        b.max_regression * 100.0,
        b.regressions,
        plural(b.regressions)
    );
    for n in &b.notes {
        let _ = writeln!(out, "<p class=\"note warn\">{}</p>", esc(n));
    }
    out.push_str(
        "<table class=\"deltas\">\n<thead><tr><th>measure</th><th class=\"num\">baseline</th><th class=\"num\">this run</th>\
         <th class=\"num\">change</th><th>worse when</th><th></th></tr></thead>\n<tbody>\n",
    );
    for d in &b.deltas {
        let v = |x: Option<f64>| x.map_or_else(|| "no data".into(), |v| format::value(v, d.unit));
        let flag = if d.regression {
            "<span class=\"pill fail\">regression</span>"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "<tr{}><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{flag}</td></tr>",
            if d.regression {
                " class=\"regressed\""
            } else {
                ""
            },
            esc(&d.name),
            esc(&v(d.baseline)),
            esc(&v(d.current)),
            esc(&baseline::change_text(d)),
            match d.worse {
                baseline::Worse::Higher => "higher",
                baseline::Worse::Lower => "lower",
            }
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn history_section(out: &mut String, h: &HistoryReport, trend: Option<&Chart>) {
    let _ = write!(
        out,
        "<section>\n<h2>Compared with the history</h2>\n<p>{} earlier comparable runs in <code>{}</code>. {}: \
         a change point (p &lt; {}) that this run is part of, for the worse by more than {:.1} %, is a regression: \
         <strong>{} regression{}</strong>.</p>\n",
        h.runs,
        esc(&h.store),
        esc(&h.method),
        h.max_pvalue,
        h.min_effect * 100.0,
        h.regressions,
        plural(h.regressions)
    );
    for n in &h.notes {
        let _ = writeln!(out, "<p class=\"note warn\">{}</p>", esc(n));
    }
    out.push_str(
        "<table class=\"deltas\">\n<thead><tr><th>measure</th><th class=\"num\">before</th><th class=\"num\">this run</th>\
         <th>newest change point</th><th></th></tr></thead>\n<tbody>\n",
    );
    for m in &h.metrics {
        let v = |x: Option<f64>| x.map_or_else(|| "no data".into(), |v| format::value(v, m.unit));
        let (class, flag) = if m.regression {
            (
                " class=\"regressed\"",
                "<span class=\"pill fail\">regression</span>",
            )
        } else {
            ("", "")
        };
        let _ = writeln!(
            out,
            "<tr{class}><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{flag}</td></tr>",
            esc(&m.name),
            esc(&v(m.before_mean)),
            esc(&v(m.current)),
            esc(&if m.change_at.is_some() {
                m.text()
            } else {
                "none".into()
            }),
        );
    }
    out.push_str("</tbody>\n</table>\n");
    if let Some(c) = trend {
        figure(
            out,
            c,
            "trend over the run history",
            "Workflow p95, failure rate and each SLO's margin to this run's threshold (in % of it: below 0 fails) over the earlier comparable runs and this one (circled); a dashed line in a metric's colour is its newest change point.",
        );
    }
    out.push_str("</section>\n");
}

/// An inline copy of a chart: no XML namespace URL, scaled by CSS.
fn inline_svg(c: &Chart, label: &str) -> String {
    c.svg.replacen(
        " xmlns=\"http://www.w3.org/2000/svg\"",
        &format!(" role=\"img\" aria-label=\"{}\"", esc(label)),
        1,
    )
}

fn figure(out: &mut String, c: &Chart, label: &str, caption: &str) {
    let _ = writeln!(
        out,
        "<figure>\n{}\n<figcaption>{caption} <span class=\"file\">{}</span></figcaption>\n</figure>",
        inline_svg(c, label),
        c.file
    );
}

fn chart_sections(out: &mut String, r: &RunReport, charts: &Charts) {
    out.push_str("<section>\n<h2>Over time</h2>\n");
    figure(
        out,
        &charts.latency,
        "workflow latency per second",
        "Workflow latency by intended start second; dashed lines are latency SLO thresholds over their windows.",
    );
    figure(
        out,
        &charts.rate,
        "start rate",
        "Workflows started per second against the schedule.",
    );
    figure(
        out,
        &charts.failures,
        "failures per second",
        "Failed workflows by kind, stacked, with dropped starts on top.",
    );
    match &charts.replicas {
        Some(c) => figure(out, c, "replicas", &replica_caption(r)),
        None => out.push_str(
            "<p class=\"note\">No replica chart: this platform has no replica observer (no Deployment or HPA was watched).</p>\n",
        ),
    }
    if let Some(c) = &charts.canary {
        figure(
            out,
            c,
            "canary weight",
            "The canary's weight as the platform took it; each step's window shaded by its verdict (green pass, red fail, grey skipped or not judged).",
        );
    }
    out.push_str("</section>\n<section>\n<h2>Latency distribution</h2>\n");
    match &charts.spectrum {
        Some(c) => figure(
            out,
            c,
            "latency percentile spectrum",
            "Latency at each percentile over the whole run; the x axis stretches the tail (each step is one more nine).",
        ),
        None => out.push_str(
            "<p class=\"note\">No workflow succeeded, so there is no latency distribution.</p>\n",
        ),
    }
    out.push_str("</section>\n");
}

fn replica_caption(r: &RunReport) -> String {
    let mut s = String::from("Desired, current and ready replicas.");
    if let Some(h) = &r.hpa {
        let secs =
            |v: Option<f64>| v.map_or_else(|| "never".into(), |v| format::value(v, Unit::Seconds));
        let _ = write!(
            s,
            " From the first rate increase: scale-up decided after {}, ready after {}; peak {} ready.",
            secs(h.decision_s),
            secs(h.scale_up_s),
            h.peak_replicas
        );
    }
    if let Some(note) = r.hpa_clock_note() {
        let _ = write!(s, " Note: {note}.");
    }
    s
}

fn run_facts(out: &mut String, r: &RunReport) {
    out.push_str("<section>\n<h2>The run</h2>\n<div class=\"cols\">\n<dl>\n");
    let seed = r
        .seed
        .map_or_else(|| "none (constant arrivals)".into(), |s| s.to_string());
    let platform = format!(
        "{} — {}{}",
        r.platform.kind,
        r.platform.description,
        if r.platform.emulated {
            " (emulated)"
        } else {
            ""
        }
    );
    let faults: Vec<String> = r
        .faults
        .iter()
        .map(|f| {
            format!(
                "{} {:.0}–{:.0} s{}",
                f.name,
                f.from_s,
                f.to_s,
                if f.injected { "" } else { " (not injected)" }
            )
        })
        .collect();
    let rows: [(&str, String); 11] = [
        ("scenario", format!("{} ({})", r.scenario, r.scenario_file)),
        ("platform", platform),
        ("target", r.platform.target_url.clone()),
        ("started", r.started_at.clone()),
        (
            "duration",
            format!("{:.1} s (schedule {:.1} s)", r.duration_s, r.schedule_s),
        ),
        ("time scale", r.time_scale.to_string()),
        ("arrival", r.arrival.clone()),
        ("seed", seed),
        (
            "faults",
            if faults.is_empty() {
                "none".into()
            } else {
                faults.join(", ")
            },
        ),
        (
            "versions",
            format!(
                "slo-check {} · run.json schema {}",
                r.tool_version, r.schema_version
            ),
        ),
        (
            "schedule lag",
            format!(
                "p50 {} · p99 {} · max {}",
                format::ms(r.schedule_lag_ms.p50),
                format::ms(r.schedule_lag_ms.p99),
                format::ms(r.schedule_lag_ms.max)
            ),
        ),
    ];
    for (k, v) in rows {
        let _ = writeln!(out, "<dt>{k}</dt><dd>{}</dd>", esc(&v));
    }
    out.push_str("</dl>\n");
    counts_table(out, r);
    out.push_str("</div>\n");
    latency_table(out, r);
    out.push_str("</section>\n");
}

fn counts_table(out: &mut String, r: &RunReport) {
    let c = &r.counts;
    out.push_str("<table class=\"counts\">\n<thead><tr><th>workflows</th><th class=\"num\">count</th></tr></thead>\n<tbody>\n");
    let mut rows = vec![
        ("scheduled".to_string(), c.scheduled.to_string(), None),
        ("started".into(), c.started.to_string(), None),
        ("dropped".into(), c.dropped.to_string(), None),
        ("succeeded".into(), c.succeeded.to_string(), None),
        ("failed".into(), c.failed.to_string(), None),
    ];
    for (kind, n) in c.failures_by_kind.iter().filter(|(_, n)| **n > 0) {
        rows.push((
            format!("failed: {kind}"),
            n.to_string(),
            Some(palette::failure_kind(kind)),
        ));
    }
    if c.abandoned > 0 {
        rows.push((
            "abandoned at interrupt".into(),
            c.abandoned.to_string(),
            None,
        ));
    }
    rows.push((
        "failure rate".into(),
        c.failure_rate
            .map_or_else(|| "-".into(), |v| format::value(v, Unit::Ratio)),
        None,
    ));
    rows.push((
        "target / achieved rate".into(),
        format!(
            "{:.1}/s / {:.1}/s",
            r.target_rate_per_s, r.achieved_rate_per_s
        ),
        None,
    ));
    for (k, v, colour) in rows {
        let dot = colour.map_or_else(String::new, |c| {
            format!(
                "<span class=\"dot\" style=\"background:{}\"></span>",
                palette::hex(c)
            )
        });
        let _ = writeln!(
            out,
            "<tr><td>{dot}{}</td><td class=\"num\">{}</td></tr>",
            esc(&k),
            esc(&v)
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

fn latency_table(out: &mut String, r: &RunReport) {
    out.push_str(
        "<table class=\"latency\">\n<thead><tr><th>latency (from intended start)</th><th class=\"num\">p50</th><th class=\"num\">p90</th>\
         <th class=\"num\">p95</th><th class=\"num\">p99</th><th class=\"num\">p99.9</th><th class=\"num\">max</th><th class=\"num\">count</th></tr></thead>\n<tbody>\n",
    );
    let mut row = |name: String, l: &LatencySummary| {
        let cells: Vec<String> = [l.p50, l.p90, l.p95, l.p99, l.p999, l.max]
            .into_iter()
            .map(|v| format!("<td class=\"num\">{}</td>", esc(&format::ms(v))))
            .collect();
        let _ = writeln!(
            out,
            "<tr><td>{}</td>{}<td class=\"num\">{}</td></tr>",
            esc(&name),
            cells.concat(),
            l.count
        );
    };
    row("workflow".into(), &r.workflow.latency_ms);
    for (name, s) in &r.steps {
        row(format!("step {name}"), &s.latency_ms);
    }
    for w in &r.windows {
        row(format!("window {}", w.label), &w.latency_ms);
    }
    out.push_str("</tbody>\n</table>\n");
}
