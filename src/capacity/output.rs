//! What a capacity search shows and writes: the preamble and one line per step on stderr,
//! the curve table and the capacity at the end, and capacity.json, capacity.md,
//! capacity.html and capacity.svg in the report directory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::config::CapacityConfig;
use super::model::{CapacityReport, StepReport};
use super::text::headline;
use crate::report::format;
use crate::scenario::Unit;
use crate::units::format_duration;

/// The search's shape and its time bound, printed before the first step.
pub fn preamble(cfg: &CapacityConfig, platform: &str) -> String {
    let s = &cfg.search;
    let per_step = (cfg.warmup + cfg.step).mul_f64(cfg.time_scale);
    format!(
        "capacity search: {} on {platform}\n  rates {}/s → at most {}/s, ×{} then bisection to {}; each rate held {} warm-up + {} measured{}; at most {} steps (≥ {} of load each, plus draining)",
        cfg.scenario.name,
        s.from_per_s,
        s.to_per_s,
        s.growth,
        pct(s.precision),
        format_duration(cfg.warmup),
        format_duration(cfg.step),
        if cfg.time_scale == 1.0 {
            String::new()
        } else {
            format!(" (× time scale {})", cfg.time_scale)
        },
        s.max_steps,
        format_duration(per_step),
    )
}

fn pct(r: f64) -> String {
    let s = format!("{:.2}", r * 100.0);
    format!("{} %", s.trim_end_matches('0').trim_end_matches('.'))
}

fn rate(v: f64) -> String {
    format::value(v, Unit::PerSecond)
}

fn ratio(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format::value(v, Unit::Ratio))
}

fn replicas(s: &StepReport) -> String {
    match s.replicas {
        None => "-".into(),
        Some(r) if r.settled => r.ready.to_string(),
        Some(r) => format!("{}→{} (unsettled)", r.ready, r.desired),
    }
}

fn verdict(s: &StepReport) -> String {
    if s.passed {
        "PASS".into()
    } else {
        format!("FAIL ({})", s.failed_slos.join(", "))
    }
}

/// One line per finished step.
pub fn step_line(s: &StepReport) -> String {
    format!(
        "step {:>2}  {:<12}  {:>9}  achieved {:>9}  p50 {:>8}  p95 {:>8}  p99 {:>8}  failed {:>7}  replicas {}  {}",
        s.index,
        s.phase.as_str(),
        rate(s.target_rate_per_s),
        rate(s.achieved_rate_per_s),
        format::ms(s.latency_ms.p50),
        format::ms(s.latency_ms.p95),
        format::ms(s.latency_ms.p99),
        ratio(s.failure_rate),
        replicas(s),
        verdict(s)
    )
}

/// The curve (steps by rate), the headline, the notes.
pub fn summary(r: &CapacityReport, dir: Option<&Path>) -> String {
    let header = [
        "rate", "achieved", "p50", "p95", "p99", "failed", "replicas", "verdict", "step",
    ];
    let rows: Vec<Vec<String>> = r
        .curve()
        .into_iter()
        .map(|s| {
            vec![
                rate(s.target_rate_per_s),
                rate(s.achieved_rate_per_s),
                format::ms(s.latency_ms.p50),
                format::ms(s.latency_ms.p95),
                format::ms(s.latency_ms.p99),
                ratio(s.failure_rate),
                replicas(s),
                verdict(s),
                format!("{} ({})", s.index, s.phase.as_str()),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&head).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    let _ = writeln!(out, "\n{}", headline(r));
    for n in r.not_applicable.iter() {
        let _ = writeln!(out, "not applicable: {} ({}): {}", n.name, n.metric, n.why);
    }
    for n in &r.notes {
        let _ = writeln!(out, "note: {n}");
    }
    if r.platform.emulated {
        let _ = writeln!(out, "platform: {}", r.platform.description);
    }
    let _ = write!(out, "{} steps in {:.0} s", r.steps.len(), r.duration_s);
    if let Some(dir) = dir {
        let _ = write!(out, "; reports in {}", dir.display());
    }
    out.push('\n');
    out
}

/// Write capacity.json, capacity.md, capacity.html and capacity.svg into `dir`.
pub fn write_all(r: &CapacityReport, dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create report directory {}: {e}", dir.display()))?;
    let json = serde_json::to_string_pretty(r)
        .map_err(|e| format!("cannot serialise capacity.json: {e}"))?;
    let svg = super::chart::latency_vs_throughput(r)?;
    let files = [
        ("capacity.json", json + "\n"),
        ("capacity.md", super::markdown::render(r)),
        ("capacity.html", super::html::render(r, &svg)),
        ("capacity.svg", svg),
    ];
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Write the reports and print the summary (and capacity.json with `--json`); the error
/// says why the reports could not be written.
pub fn finish(
    r: &CapacityReport,
    out: Option<&Path>,
    quiet: bool,
    json: bool,
) -> Result<(), String> {
    let dir = out.map_or_else(
        || crate::report::default_dir(&r.scenario, "capacity-", &r.started_at),
        Path::to_path_buf,
    );
    let written = write_all(r, &dir);
    if json {
        println!("{}", serde_json::to_string_pretty(r).unwrap_or_default());
    }
    if !quiet {
        let text = summary(r, written.as_ref().ok().map(|_| dir.as_path()));
        if json {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
    }
    written.map(|_| ())
}
