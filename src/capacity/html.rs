//! capacity.html: one self-contained page (the run report's inline CSS, the chart as inline
//! SVG, nothing fetched): the capacity and what bound it, the latency-vs-throughput chart,
//! every step, the SLOs that were not applicable, and the search's settings.

use std::fmt::Write as _;

use super::model::CapacityReport;
use super::text::{headline, why};
use crate::report::format;
use crate::report::html::esc;
use crate::scenario::Unit;

const STYLE: &str = include_str!("../report/html.css");

/// The page, with the chart's SVG (`capacity.svg`) inlined.
pub fn render(r: &CapacityReport, svg: &str) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let found = r.found() && !r.interrupted;
    let word = if r.interrupted {
        "INTERRUPTED"
    } else if found {
        "CAPACITY"
    } else {
        "NONE"
    };
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>slo-check capacity: {} — {}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<main>\n",
        esc(&r.scenario),
        r.capacity_per_s
            .map_or_else(|| "none".into(), |c| format::value(c, Unit::PerSecond))
    );
    let _ = write!(
        out,
        "<header class=\"banner {}\">\n<div class=\"verdict\">{word}</div>\n<div class=\"headline\">\n<h1>{}: capacity search</h1>\n",
        if found { "pass" } else { "fail" },
        esc(&r.scenario)
    );
    if !r.description.is_empty() {
        let _ = writeln!(out, "<p class=\"desc\">{}</p>", esc(&r.description));
    }
    let _ = writeln!(
        out,
        "<p class=\"facts\">{} · {} steps · {} · {:.0} s</p>\n</div>\n</header>",
        esc(&headline(r)),
        r.steps.len(),
        esc(&r.started_at),
        r.duration_s
    );
    if r.platform.emulated {
        let _ = writeln!(
            out,
            "<p class=\"note\"><strong>Emulated platform.</strong> {} — replicas and CPU capacity are emulated on one machine.</p>",
            esc(&r.platform.description)
        );
    }
    for n in &r.notes {
        let _ = writeln!(out, "<p class=\"note warn\">{}</p>", esc(n));
    }
    let _ = writeln!(
        out,
        "<section>\n<h2>Latency vs throughput</h2>\n<figure>\n{}\n<figcaption>Workflow latency percentiles of each measured step against the start rate it achieved; filled dots held every SLO, rings failed one; the dashed vertical line is the capacity. <span class=\"file\">capacity.svg</span></figcaption>\n</figure>\n</section>",
        svg.replacen(
            " xmlns=\"http://www.w3.org/2000/svg\"",
            " role=\"img\" aria-label=\"latency vs throughput\"",
            1
        )
    );
    steps_table(&mut out, r);
    not_applicable(&mut out, r);
    settings(&mut out, r);
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn steps_table(out: &mut String, r: &CapacityReport) {
    out.push_str(
        "<section>\n<h2>Steps, by rate</h2>\n<table>\n<thead><tr><th>status</th><th class=\"num\">rate</th><th class=\"num\">achieved</th>\
         <th class=\"num\">p50</th><th class=\"num\">p95</th><th class=\"num\">p99</th><th class=\"num\">failed</th>\
         <th class=\"num\">replicas</th><th>step</th><th>why</th></tr></thead>\n<tbody>\n",
    );
    for s in r.curve() {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{} ({})</td><td class=\"reason\">{}</td></tr>",
            if s.passed {
                "<span class=\"pill pass\">held</span>"
            } else {
                "<span class=\"pill fail\">failed</span>"
            },
            format::value(s.target_rate_per_s, Unit::PerSecond),
            format::value(s.achieved_rate_per_s, Unit::PerSecond),
            format::ms(s.latency_ms.p50),
            format::ms(s.latency_ms.p95),
            format::ms(s.latency_ms.p99),
            s.failure_rate
                .map_or_else(|| "-".into(), |v| format::value(v, Unit::Ratio)),
            s.replicas.map_or_else(
                || "-".into(),
                |p| if p.settled {
                    p.ready.to_string()
                } else {
                    format!("{} (desired {}, unsettled)", p.ready, p.desired)
                }
            ),
            s.index,
            s.phase.as_str(),
            esc(&why(s))
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn not_applicable(out: &mut String, r: &CapacityReport) {
    out.push_str("<section>\n<h2>SLOs</h2>\n<p>Evaluated over each measured step: ");
    let names: Vec<String> = r
        .slos_evaluated
        .iter()
        .map(|n| format!("<code>{}</code>", esc(n)))
        .collect();
    out.push_str(&names.join(", "));
    out.push_str(".</p>\n");
    if !r.not_applicable.is_empty() {
        out.push_str("<table>\n<thead><tr><th>not applicable</th><th>metric</th><th>why</th></tr></thead>\n<tbody>\n");
        for n in &r.not_applicable {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td><code>{}</code></td><td class=\"reason\">{}</td></tr>",
                esc(&n.name),
                esc(&n.metric),
                esc(&n.why)
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    out.push_str("</section>\n");
}

fn settings(out: &mut String, r: &CapacityReport) {
    let s = &r.settings;
    let rows = [
        (
            "platform",
            format!("{} — {}", r.platform.kind, r.platform.description),
        ),
        (
            "rates",
            format!(
                "from {}/s, at most {}/s; doubling, then bisection to {:.1} %",
                s.from_per_s,
                s.to_per_s,
                s.precision * 100.0
            ),
        ),
        (
            "each rate",
            format!(
                "{} s warm-up, then {} s measured (scenario time)",
                s.warmup_s, s.step_s
            ),
        ),
        ("time scale", r.time_scale.to_string()),
        ("arrival", r.arrival.clone()),
        ("max steps", s.max_steps.to_string()),
        ("contradictions", r.contradictions.to_string()),
        ("scenario file", r.scenario_file.clone()),
        ("slo-check", r.tool_version.clone()),
    ];
    out.push_str("<section>\n<h2>The search</h2>\n<dl>\n");
    for (k, v) in rows {
        let _ = writeln!(out, "<dt>{k}</dt><dd>{}</dd>", esc(&v));
    }
    out.push_str("</dl>\n</section>\n");
}
