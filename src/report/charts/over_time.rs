//! Charts over time from `RunReport::timeseries`: workflow latency
//! percentiles with the latency SLO thresholds, and target vs achieved start rate.

use plotters::style::RGBColor;

use super::frame::{self, LegendItem, Swatch, TimeAxes};
use super::palette;
use crate::report::format;
use crate::report::model::RunReport;
use crate::scenario::Unit;
use crate::slo::SloResult;

/// A threshold further above the data than this factor is named in the
/// legend instead of squashing the data to the bottom of the chart.
const OFF_SCALE_FACTOR: f64 = 3.0;

/// Right end of every time axis: the whole run, faults and SLO windows included.
pub fn x_max_s(r: &RunReport) -> f64 {
    let faults = r.faults.iter().map(|f| f.to_s).fold(0.0, f64::max);
    let replicas = r.replicas.iter().map(|p| p.t_s).fold(0.0, f64::max);
    (r.timeseries.len() as f64)
        .max(r.schedule_s)
        .max(faults)
        .max(replicas)
        .max(1.0)
        .ceil()
}

/// A latency SLO on the workflow (`latency.p95` …), drawn as a threshold.
pub(super) struct Threshold<'a> {
    pub slo: &'a SloResult,
    pub colour: RGBColor,
    pub on_scale: bool,
}

pub(super) fn thresholds(r: &RunReport, data_max: f64) -> Vec<Threshold<'_>> {
    r.slos
        .iter()
        .filter(|s| s.unit == Unit::Ms && s.metric.starts_with("latency."))
        .map(|slo| {
            let stat = slo.metric.trim_start_matches("latency.");
            Threshold {
                slo,
                colour: palette::percentile(stat).unwrap_or(palette::THRESHOLD),
                on_scale: data_max <= 0.0 || slo.threshold <= data_max * OFF_SCALE_FACTOR,
            }
        })
        .collect()
}

/// Workflow latency p50/p95/p99 per second, SLO thresholds dashed, faults shaded.
pub fn latency(r: &RunReport) -> Result<String, String> {
    let ts = &r.timeseries;
    let data_max = ts
        .iter()
        .flat_map(|p| [p.p50_ms, p.p95_ms, p.p99_ms])
        .flatten()
        .fold(0.0, f64::max);
    let lines = thresholds(r, data_max);
    let y_top = lines
        .iter()
        .filter(|t| t.on_scale)
        .map(|t| t.slo.threshold)
        .fold(data_max, f64::max);
    let mut legend = vec![
        LegendItem::new("p50", Swatch::Line(palette::P50)),
        LegendItem::new("p95", Swatch::Line(palette::P95)),
        LegendItem::new("p99", Swatch::Line(palette::P99)),
    ];
    for t in &lines {
        let off = if t.on_scale { "" } else { " (above the chart)" };
        legend.push(LegendItem::new(
            format!("SLO {}: {}{off}", t.slo.name, format::threshold(t.slo)),
            Swatch::Dashed(t.colour),
        ));
    }
    push_fault_legend(r, &mut legend);
    let axes = TimeAxes {
        x_max_s: x_max_s(r),
        y_max: frame::headroom(y_top),
        y_desc: "latency from intended start (ms)",
    };
    frame::render(|root| {
        let area = frame::header(root, "Workflow latency per second", &legend)?;
        let mut chart = frame::time_chart(&area, &axes)?;
        frame::shade_faults(&mut chart, &r.faults, axes.y_max)?;
        frame::time_mesh(&mut chart, axes.y_desc)?;
        let mid = |t: u64| t as f64 + 0.5;
        for (pick, colour) in [(0usize, palette::P50), (1, palette::P95), (2, palette::P99)] {
            let points = ts
                .iter()
                .map(|p| (mid(p.t_s), [p.p50_ms, p.p95_ms, p.p99_ms][pick]));
            frame::gapped_line(&mut chart, points, colour)?;
        }
        for t in lines.iter().filter(|t| t.on_scale) {
            let w = &t.slo.window;
            let x1 = if w.to_s > w.from_s {
                w.to_s
            } else {
                axes.x_max_s
            };
            frame::dashed_hline(&mut chart, (w.from_s, x1), t.slo.threshold, t.colour)?;
        }
        if data_max <= 0.0 {
            frame::note(&chart, "no workflow succeeded")?;
        }
        Ok(())
    })
}

/// Target (schedule) vs achieved start rate per second.
pub fn rate(r: &RunReport) -> Result<String, String> {
    let ts = &r.timeseries;
    let max = ts
        .iter()
        .flat_map(|p| [p.target_rate_per_s, p.started as f64])
        .fold(0.0, f64::max);
    let mut legend = vec![
        LegendItem::new(
            format!("target (mean {:.1}/s)", r.target_rate_per_s),
            Swatch::Dashed(palette::TARGET_RATE),
        ),
        LegendItem::new(
            format!("achieved (mean {:.1}/s)", r.achieved_rate_per_s),
            Swatch::Line(palette::ACHIEVED_RATE),
        ),
    ];
    push_fault_legend(r, &mut legend);
    let axes = TimeAxes {
        x_max_s: x_max_s(r),
        y_max: frame::headroom(max),
        y_desc: "workflow starts per second",
    };
    frame::render(|root| {
        let area = frame::header(root, "Start rate: target vs achieved", &legend)?;
        let mut chart = frame::time_chart(&area, &axes)?;
        frame::shade_faults(&mut chart, &r.faults, axes.y_max)?;
        frame::time_mesh(&mut chart, axes.y_desc)?;
        // Whole seconds of the schedule only: a partial last second would
        // read as a drop in rate, and after the schedule nothing starts by design.
        let in_schedule = || {
            ts.iter()
                .filter(|p| (p.t_s + 1) as f64 <= r.schedule_s.max(1.0))
        };
        let target: Vec<(f64, f64)> = in_schedule()
            .map(|p| (p.t_s as f64 + 0.5, p.target_rate_per_s))
            .collect();
        chart
            .draw_series(plotters::series::DashedLineSeries::new(
                target,
                8,
                5,
                plotters::style::ShapeStyle::from(palette::TARGET_RATE).stroke_width(2),
            ))
            .map_err(frame::err)?;
        let achieved = in_schedule().map(|p| (p.t_s as f64 + 0.5, Some(p.started as f64)));
        frame::gapped_line(&mut chart, achieved, palette::ACHIEVED_RATE)?;
        if ts.is_empty() {
            frame::note(&chart, "no data")?;
        }
        Ok(())
    })
}

/// The shared "fault window" legend entry, when the run had faults.
pub fn push_fault_legend(r: &RunReport, legend: &mut Vec<LegendItem>) {
    if !r.faults.is_empty() {
        legend.push(LegendItem::new(
            "fault window",
            Swatch::Band(palette::FAULT),
        ));
    }
}
