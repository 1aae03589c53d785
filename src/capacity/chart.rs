//! The latency-vs-throughput chart of a capacity search: workflow p50/p95/p99 of each step
//! against the start rate it achieved (log latency axis, so the flat part and the knee both
//! read), the latency SLO thresholds dashed, passing steps as filled dots and failing ones
//! as rings, and the capacity (the knee) marked with a vertical line. Same canvas, fonts,
//! header and palette as the run report's charts.

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::model::{CapacityReport, StepReport};
use crate::report::charts::frame::{self, Area, LegendItem, Swatch, err, font, tick};
use crate::report::charts::palette;
use crate::report::format;
use crate::scenario::Unit;

type LogChart<'a> = ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, LogCoord<f64>>>;

/// One latency series: its label, colour and value picker.
struct Series {
    label: &'static str,
    colour: RGBColor,
    pick: fn(&StepReport) -> Option<f64>,
}

const SERIES: [Series; 3] = [
    Series {
        label: "p50",
        colour: palette::P50,
        pick: |s| s.latency_ms.p50,
    },
    Series {
        label: "p95",
        colour: palette::P95,
        pick: |s| s.latency_ms.p95,
    },
    Series {
        label: "p99",
        colour: palette::P99,
        pick: |s| s.latency_ms.p99,
    },
];

/// A workflow latency SLO (`latency.p95` ...) evaluated at each step: (label, colour, ms).
fn thresholds(r: &CapacityReport) -> Vec<(String, RGBColor, f64)> {
    let Some(step) = r.steps.first() else {
        return Vec::new();
    };
    step.slos
        .iter()
        .filter(|s| s.unit == Unit::Ms && s.metric.starts_with("latency."))
        .map(|s| {
            let stat = s.metric.trim_start_matches("latency.");
            (
                format!("SLO {}: {}", s.name, format::threshold(s)),
                palette::percentile(stat).unwrap_or(palette::THRESHOLD),
                s.threshold,
            )
        })
        .collect()
}

/// The chart as an SVG document.
pub fn latency_vs_throughput(r: &CapacityReport) -> Result<String, String> {
    let mut steps: Vec<&StepReport> = r.steps.iter().collect();
    steps.sort_by(|a, b| a.achieved_rate_per_s.total_cmp(&b.achieved_rate_per_s));
    let lines = thresholds(r);
    let values: Vec<f64> = steps
        .iter()
        .flat_map(|s| SERIES.iter().filter_map(|k| (k.pick)(s)))
        .chain(lines.iter().map(|t| t.2))
        .filter(|v| *v > 0.0)
        .collect();
    let y_min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let y_max = values.iter().copied().fold(0.0, f64::max);
    // Whole decades, so the log axis always has labelled ticks (plotters labels powers of 10).
    let (y_min, y_max) = if y_max > 0.0 {
        (
            10f64.powf(y_min.log10().floor()),
            10f64.powf((y_max * 1.05).log10().ceil()),
        )
    } else {
        (1.0, 1000.0)
    };
    let x_max = frame::headroom(
        steps
            .iter()
            .map(|s| s.achieved_rate_per_s.max(s.target_rate_per_s))
            .fold(0.0, f64::max),
    );
    let mut legend: Vec<LegendItem> = SERIES
        .iter()
        .map(|k| LegendItem::new(k.label, Swatch::Line(k.colour)))
        .collect();
    for (label, colour, _) in &lines {
        legend.push(LegendItem::new(label.clone(), Swatch::Dashed(*colour)));
    }
    legend.push(LegendItem::new("step held", Swatch::Dot(palette::INK)));
    legend.push(LegendItem::new(
        "ring: step failed",
        Swatch::Line(palette::MUTED),
    ));
    if let Some(c) = knee_label(r) {
        legend.push(LegendItem::new(c, Swatch::Dashed(palette::WORKFLOW)));
    }
    frame::render(|root| {
        let area = frame::header(root, "Workflow latency vs throughput", &legend)?;
        draw(&area, &steps, (x_max, y_min, y_max), &lines, r)
    })
}

fn knee_label(r: &CapacityReport) -> Option<String> {
    let a = r.achieved_at_capacity_per_s?;
    let bound = r
        .bound_by
        .as_ref()
        .map(|b| format!(", bound by {}", b.slo))
        .unwrap_or_default();
    Some(format!(
        "capacity {}{bound}",
        format::value(a, Unit::PerSecond)
    ))
}

fn draw(
    area: &Area<'_>,
    steps: &[&StepReport],
    (x_max, y_min, y_max): (f64, f64, f64),
    lines: &[(String, RGBColor, f64)],
    r: &CapacityReport,
) -> Result<(), String> {
    let mut chart = ChartBuilder::on(area)
        .margin_left(8)
        .margin_right(28)
        .margin_top(6)
        .margin_bottom(4)
        .x_label_area_size(46)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, (y_min..y_max).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("achieved start rate (workflows/s)")
        .y_desc("workflow latency (ms, log scale)")
        .x_labels(12)
        .y_labels(8)
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .label_style(font(12.0))
        .axis_desc_style(font(13.0))
        .light_line_style(palette::GRID_LIGHT)
        .bold_line_style(palette::GRID_BOLD)
        .axis_style(palette::MUTED)
        .draw()
        .map_err(err)?;
    for (_, colour, ms) in lines {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, *ms), (x_max, *ms)],
                8,
                5,
                colour.stroke_width(2),
            ))
            .map_err(err)?;
    }
    for k in &SERIES {
        let pts: Vec<(f64, f64, bool)> = steps
            .iter()
            .filter_map(|s| (k.pick)(s).map(|v| (s.achieved_rate_per_s, v, s.passed)))
            .collect();
        chart
            .draw_series(LineSeries::new(
                pts.iter().map(|p| (p.0, p.1)),
                k.colour.stroke_width(2),
            ))
            .map_err(err)?;
        chart
            .draw_series(pts.iter().map(|&(x, y, held)| {
                let style = if held {
                    k.colour.filled()
                } else {
                    WHITE.filled()
                };
                Circle::new((x, y), 4, style)
            }))
            .map_err(err)?;
        chart
            .draw_series(
                pts.iter()
                    .filter(|p| !p.2)
                    .map(|&(x, y, _)| Circle::new((x, y), 4, k.colour.stroke_width(2))),
            )
            .map_err(err)?;
    }
    mark_knee(&mut chart, r, (y_min, y_max))
}

/// The capacity: a dashed vertical line at the rate achieved there, labelled.
fn mark_knee(
    chart: &mut LogChart<'_>,
    r: &CapacityReport,
    (y_min, y_max): (f64, f64),
) -> Result<(), String> {
    let (Some(x), Some(label)) = (r.achieved_at_capacity_per_s, knee_label(r)) else {
        return Ok(());
    };
    chart
        .draw_series(DashedLineSeries::new(
            vec![(x, y_min), (x, y_max)],
            6,
            4,
            palette::WORKFLOW.stroke_width(2),
        ))
        .map_err(err)?;
    if let Some(p95) = r.capacity_step().and_then(|s| s.latency_ms.p95) {
        chart
            .draw_series(std::iter::once(Circle::new(
                (x, p95),
                8,
                palette::WORKFLOW.stroke_width(2),
            )))
            .map_err(err)?;
    }
    let (px, py) = chart.backend_coord(&(x, y_max));
    let area = chart.plotting_area().strip_coord_spec();
    let (bx, by) = area.get_base_pixel();
    let (w, _) = area.dim_in_pixel();
    // Label to the left of the line when the line is in the right half.
    let right_half = px - bx > w as i32 / 2;
    let (dx, hpos) = if right_half {
        (-6, HPos::Right)
    } else {
        (6, HPos::Left)
    };
    let style = font(13.0)
        .color(&palette::WORKFLOW)
        .pos(Pos::new(hpos, VPos::Top));
    area.draw(&Text::new(label, (px - bx + dx, py - by + 6), style))
        .map_err(err)
}
