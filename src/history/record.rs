//! What one run leaves in the history: its summary, labels, every observed value
//! (workflow and per-step percentiles, failure rate, rates, each SLO's value) and the
//! serialized histograms, taken from the `RunReport` alone.

use std::collections::BTreeMap;

use crate::report::RunReport;
use crate::report::model::Worse;
use crate::scenario::{Bound, Unit};

/// One observed value of a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Observation {
    /// `workflow p95`, `step submit p99`, `failure rate`, `achieved rate`, `SLO <name>`.
    pub name: String,
    pub unit: Unit,
    /// Which direction is worse.
    pub worse: Worse,
    /// Null: no data (e.g. no workflow succeeded).
    pub value: Option<f64>,
}

/// A run, ready to be stored.
#[derive(Debug, Clone)]
pub struct Record {
    /// `run` or `capacity`.
    pub kind: String,
    pub scenario: String,
    pub started_at: String,
    pub tool_version: String,
    pub verdict: String,
    pub platform: String,
    pub time_scale: f64,
    pub duration_s: f64,
    pub report_dir: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub observations: Vec<Observation>,
    /// JSON: verdict, counts, rates, latency blocks, SLO results.
    pub summary: String,
    /// JSON: run.json's `histograms` (base64 HdrHistogram V2+DEFLATE).
    pub histograms: String,
}

/// The percentiles kept per step (the workflow keeps p90 and p99.9 too).
const STEP_PERCENTILES: [&str; 3] = ["p50", "p95", "p99"];

/// The record of `report`, with its labels and report directory.
pub fn of_run(
    report: &RunReport,
    labels: &BTreeMap<String, String>,
    report_dir: Option<String>,
) -> Record {
    let summary = serde_json::json!({
        "verdict": report.verdict,
        "interrupted": report.interrupted,
        "description": report.description,
        "platform": report.platform,
        "counts": report.counts,
        "target_rate_per_s": report.target_rate_per_s,
        "achieved_rate_per_s": report.achieved_rate_per_s,
        "workflow": report.workflow,
        "steps": report.steps,
        "slos": report.slos,
        "baseline": report.baseline,
        "history": report.history,
    });
    Record {
        kind: "run".into(),
        scenario: report.scenario.clone(),
        started_at: report.started_at.clone(),
        tool_version: report.tool_version.clone(),
        verdict: serde_json::to_value(report.verdict)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        platform: report.platform.kind.clone(),
        time_scale: report.time_scale,
        duration_s: report.duration_s,
        report_dir,
        labels: labels.clone(),
        observations: observations(report),
        summary: summary.to_string(),
        histograms: serde_json::to_string(&report.histograms).unwrap_or_default(),
    }
}

/// Every observed value of `report`, by name.
pub fn observations(report: &RunReport) -> Vec<Observation> {
    let ms = |name: String, value| Observation {
        name,
        unit: Unit::Ms,
        worse: Worse::Higher,
        value,
    };
    let w = &report.workflow.latency_ms;
    let mut out: Vec<Observation> = [
        ("p50", w.p50),
        ("p90", w.p90),
        ("p95", w.p95),
        ("p99", w.p99),
        ("p99.9", w.p999),
    ]
    .into_iter()
    .map(|(p, v)| ms(format!("workflow {p}"), v))
    .collect();
    for (step, block) in &report.steps {
        let l = &block.latency_ms;
        for (p, v) in STEP_PERCENTILES.iter().zip([l.p50, l.p95, l.p99]) {
            out.push(ms(format!("step {step} {p}"), v));
        }
    }
    out.push(Observation {
        name: "failure rate".into(),
        unit: Unit::Ratio,
        worse: Worse::Higher,
        value: report.counts.failure_rate,
    });
    out.push(Observation {
        name: "achieved rate".into(),
        unit: Unit::PerSecond,
        worse: Worse::Lower,
        value: Some(report.achieved_rate_per_s),
    });
    for s in &report.slos {
        out.push(Observation {
            name: format!("SLO {}", s.name),
            unit: s.unit,
            worse: match s.bound {
                Bound::Max => Worse::Higher,
                Bound::Min => Worse::Lower,
            },
            value: s.observed,
        });
    }
    out
}
