//! The terminal: a live progress line while the load runs, and the verdict
//! table at the end.

use std::fmt::Write as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::format;
use super::model::RunReport;
use crate::slo::Verdict;

/// What the progress line shows.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub elapsed: Duration,
    pub total: Duration,
    pub target_rate_per_s: f64,
    pub achieved_rate_per_s: f64,
    pub in_flight: u64,
    pub p95_ms: Option<f64>,
    pub failed: u64,
    pub finished: u64,
    pub dropped: u64,
    /// Set once the schedule is over and in-flight workflows are being awaited.
    pub draining: bool,
    /// A distributed run's generators (empty otherwise).
    pub generators: Vec<crate::live::GeneratorNow>,
}

/// The progress line (drawn on stderr; hidden with --quiet or when stderr is not a terminal).
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub fn new(total: Duration, visible: bool) -> Progress {
        let bar = ProgressBar::with_draw_target(
            Some(total.as_millis() as u64),
            if visible {
                ProgressDrawTarget::stderr_with_hz(5)
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        bar.set_style(
            ProgressStyle::with_template("{prefix} {bar:20.cyan/blue} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Progress { bar }
    }

    pub fn update(&self, s: &Snapshot) {
        let secs = |d: Duration| {
            let t = d.as_secs();
            format!("{:02}:{:02}", t / 60, t % 60)
        };
        self.bar.set_prefix(format!(
            "{}/{}",
            secs(s.elapsed.min(s.total)),
            secs(s.total)
        ));
        self.bar
            .set_position(s.elapsed.min(s.total).as_millis() as u64);
        self.bar.set_message(message(s));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The progress line after its bar.
fn message(s: &Snapshot) -> String {
    let failure_pct = if s.finished > 0 {
        s.failed as f64 * 100.0 / s.finished as f64
    } else {
        0.0
    };
    let mut msg = if s.draining {
        format!("draining: {} in flight", s.in_flight)
    } else {
        format!(
            "rate {:.0}/{:.0}/s  in-flight {}",
            s.achieved_rate_per_s, s.target_rate_per_s, s.in_flight
        )
    };
    let _ = write!(
        msg,
        "  p95 {}  failed {} ({failure_pct:.2}%)  dropped {}",
        format::ms(s.p95_ms),
        s.failed,
        s.dropped
    );
    if !s.generators.is_empty() {
        msg.push_str("  ");
        msg.push_str(&generators(&s.generators));
    }
    msg
}

/// Each generator's rate and lag: every one up to four, else the slowest and the most
/// late; lost ones are counted.
fn generators(gens: &[crate::live::GeneratorNow]) -> String {
    let one = |g: &crate::live::GeneratorNow| {
        if g.lost {
            format!("{} lost", g.shard)
        } else {
            format!(
                "{} {:.0}/s lag {}",
                g.shard,
                g.rate_per_s,
                format::ms(g.lag_ms)
            )
        }
    };
    if gens.len() <= 4 {
        return format!(
            "gen {}",
            gens.iter().map(one).collect::<Vec<_>>().join(", ")
        );
    }
    let alive: Vec<_> = gens.iter().filter(|g| !g.lost).collect();
    let lost = gens.len() - alive.len();
    let mut out = format!("gen {}", gens.len());
    let slowest = alive
        .iter()
        .min_by(|a, b| a.rate_per_s.total_cmp(&b.rate_per_s));
    let latest = alive
        .iter()
        .filter(|g| g.lag_ms.is_some())
        .max_by(|a, b| a.lag_ms.unwrap_or(0.0).total_cmp(&b.lag_ms.unwrap_or(0.0)));
    if let Some(g) = slowest {
        let _ = write!(out, ", slowest {} {:.0}/s", g.shard, g.rate_per_s);
    }
    if let Some(g) = latest {
        let _ = write!(out, ", most late {} lag {}", g.shard, format::ms(g.lag_ms));
    }
    if lost > 0 {
        let _ = write!(out, ", {lost} lost");
    }
    out
}

/// The verdict table printed at the end of a run.
pub fn verdict_table(r: &RunReport, report_dir: Option<&std::path::Path>) -> String {
    let rows: Vec<[String; 6]> = r
        .slos
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                s.metric.clone(),
                s.window.label.clone(),
                format::observed(s),
                format::threshold(s),
                format::status(s).to_string(),
            ]
        })
        .collect();
    let header = ["SLO", "metric", "window", "observed", "threshold", "status"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count()).min(60);
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}", w = *w))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    for s in r.slos.iter().filter(|s| !s.holds()) {
        if let Some(reason) = &s.reason {
            let _ = writeln!(out, "  {}: {reason}", s.name);
        }
    }
    if let Some(c) = &r.canary {
        let _ = write!(out, "\n{}", c.table(false));
        let _ = writeln!(out, "{}", c.outcome_line());
    }
    let held = r.slos.iter().filter(|s| s.holds()).count();
    let verdict = match (r.interrupted, r.verdict) {
        (true, _) => "INTERRUPTED".to_string(),
        (false, Verdict::Pass) => "PASS".to_string(),
        (false, Verdict::Fail) => "FAIL".to_string(),
    };
    let c = &r.counts;
    let _ = writeln!(
        out,
        "\n{} workflows: {} succeeded, {} failed{}, {} dropped; p95 {}; {:.1}/s achieved of {:.1}/s",
        c.started,
        c.succeeded,
        c.failed,
        format::failure_kinds(&c.failures_by_kind),
        c.dropped,
        format::ms(r.workflow.latency_ms.p95),
        r.achieved_rate_per_s,
        r.target_rate_per_s
    );
    for line in r.faults.iter().filter_map(format::fault_line) {
        let _ = writeln!(out, "{line}");
    }
    if let Some(g) = &r.gateway {
        let line = format::gateway_line(g, &r.counts.failures_by_kind);
        let _ = writeln!(out, "gateway ({}): {line}", g.source);
    }
    if let Some(line) = format::generators_line(&r.generators) {
        let _ = writeln!(out, "load from {line}");
    }
    if r.platform.emulated {
        let _ = writeln!(out, "platform: {}", r.platform.description);
    }
    if let Some(h) = &r.history {
        let _ = writeln!(out, "{}", h.summary_line());
    }
    let _ = write!(
        out,
        "verdict: {verdict} ({held} of {} SLOs hold{})",
        r.slos.len(),
        match &r.canary {
            Some(c) if !c.holds() => "; the canary was not promoted",
            _ => "",
        }
    );
    if let Some(dir) = report_dir {
        let _ = write!(out, "; reports in {}", dir.display());
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::GeneratorNow;

    fn generator(i: u32, n: u32, rate: f64, lag: Option<f64>, lost: bool) -> GeneratorNow {
        GeneratorNow {
            shard: format!("{i}/{n}"),
            rate_per_s: rate,
            lag_ms: lag,
            lost,
            ..GeneratorNow::default()
        }
    }

    #[test]
    fn the_progress_line_shows_each_generators_rate_and_lag() {
        let mut s = Snapshot {
            target_rate_per_s: 90.0,
            achieved_rate_per_s: 89.6,
            generators: vec![
                generator(0, 3, 30.2, Some(0.4), false),
                generator(1, 3, 29.8, Some(12.0), false),
                generator(2, 3, 0.0, None, true),
            ],
            ..Snapshot::default()
        };
        let line = message(&s);
        assert!(line.starts_with("rate 90/90/s"), "{line}");
        assert!(
            line.ends_with("gen 0/3 30/s lag 0.40 ms, 1/3 30/s lag 12.0 ms, 2/3 lost"),
            "{line}"
        );
        // Beyond four: the slowest, the most late, and how many are lost.
        s.generators = (0..10)
            .map(|i| {
                generator(
                    i,
                    10,
                    100.0 - f64::from(i % 5),
                    Some(f64::from(i) / 2.0),
                    i == 9,
                )
            })
            .collect();
        let line = message(&s);
        assert!(
            line.ends_with("gen 10, slowest 4/10 96/s, most late 8/10 lag 4.00 ms, 1 lost"),
            "{line}"
        );
        // One process: no generator part.
        s.generators.clear();
        assert!(!message(&s).contains("gen"), "{}", message(&s));
    }
}
