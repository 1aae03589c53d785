//! The trend of a run against its history (`--baseline history`): three panels over the
//! earlier comparable runs and this one (last, circled): workflow p95, failure rate, and
//! each SLO's margin to its threshold. Each metric's newest change point is a dashed
//! line in its colour; a metric that regressed says so in its legend.

use plotters::prelude::*;

use super::frame::{self, Area, LegendItem, Swatch};
use super::palette;
use crate::report::model::RunReport;
use crate::report::trend::MetricTrend;
use crate::scenario::Bound;
use crate::slo::SloResult;

/// The height of each panel, in px (the chart is as tall as its panels).
const PANEL_PX: u32 = 300;

/// One line of a panel: a metric's values, oldest first, this run last.
struct Line<'a> {
    label: String,
    colour: RGBColor,
    /// The values as plotted (already in the panel's unit).
    values: Vec<f64>,
    trend: &'a MetricTrend,
}

/// One panel: its lines on a shared y axis.
struct Panel<'a> {
    title: String,
    y_desc: &'static str,
    lines: Vec<Line<'a>>,
    /// A dashed horizontal rule at this value (the SLO threshold: margin 0).
    rule: Option<(f64, &'static str)>,
}

/// The trend chart; None without a history section (or without any series to draw).
pub fn trend(r: &RunReport) -> Result<Option<String>, String> {
    let Some(h) = r.history.as_ref() else {
        return Ok(None);
    };
    let find = |name: &str| {
        h.metrics
            .iter()
            .find(|m| m.name == name && !m.series.is_empty())
    };
    let mut panels = Vec::new();
    if let Some(m) = find("workflow p95") {
        panels.push(Panel {
            title: "workflow p95".into(),
            y_desc: "workflow p95 (ms)",
            lines: vec![line("workflow p95", palette::P95, m, |v| v)],
            rule: None,
        });
    }
    if let Some(m) = find("failure rate") {
        panels.push(Panel {
            title: "failure rate".into(),
            y_desc: "failure rate (%)",
            lines: vec![line(
                "failure rate",
                palette::failure_kind("status"),
                m,
                |v| v * 100.0,
            )],
            rule: None,
        });
    }
    let margins: Vec<Line> = r
        .slos
        .iter()
        .filter_map(|s| Some((s, find(&format!("SLO {}", s.name))?)))
        .filter(|(s, _)| s.threshold != 0.0 && s.threshold.is_finite())
        .enumerate()
        .map(|(i, (s, m))| line(&s.name, palette::step(i), m, |v| margin_pct(s, v)))
        .collect();
    let zero_threshold = r
        .slos
        .iter()
        .filter(|s| s.threshold == 0.0 && find(&format!("SLO {}", s.name)).is_some())
        .count();
    if !margins.is_empty() {
        panels.push(Panel {
            title: if zero_threshold > 0 {
                format!(
                    "SLO margins to this run's thresholds ({zero_threshold} SLO{} with threshold 0 left out: no relative margin)",
                    if zero_threshold == 1 { "" } else { "s" }
                )
            } else {
                "SLO margins to this run's thresholds".into()
            },
            y_desc: "margin (% of threshold)",
            lines: margins,
            rule: Some((0.0, "threshold (margin 0; below fails)")),
        });
    }
    if panels.is_empty() {
        return Ok(None);
    }
    let runs = panels
        .iter()
        .flat_map(|p| p.lines.iter().map(|l| l.values.len()))
        .max()
        .unwrap_or(0);
    let title = format!(
        "Trend over the last {runs} runs (this run last, circled){}",
        if h.regressions > 0 {
            format!(
                ": {} regression{}",
                h.regressions,
                if h.regressions == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        }
    );
    let height = 40 + PANEL_PX * panels.len() as u32;
    let svg = frame::render_sized(height, |root| {
        let bold = ("sans-serif", 16.0 * 1.24, FontStyle::Bold)
            .into_font()
            .color(&palette::INK);
        root.draw(&Text::new(title.clone(), (16, 10), bold))
            .map_err(frame::err)?;
        let body = root.split_vertically(40).1;
        let areas = body.split_evenly((panels.len(), 1));
        for (area, panel) in areas.iter().zip(&panels) {
            draw_panel(area, panel, runs)?;
        }
        Ok(())
    })?;
    Ok(Some(svg))
}

fn line<'a>(
    label: &str,
    colour: RGBColor,
    m: &'a MetricTrend,
    scale: impl Fn(f64) -> f64,
) -> Line<'a> {
    let mut label = label.to_string();
    if m.regression {
        label.push_str(" (regression)");
    }
    Line {
        label,
        colour,
        values: m.series.iter().map(|v| scale(*v)).collect(),
        trend: m,
    }
}

/// How far `v` is from the SLO's threshold, in % of the threshold: positive passes with
/// room, negative fails (for a `max` SLO, `(threshold − v) / threshold`; for `min`, the
/// other way round).
pub fn margin_pct(s: &SloResult, v: f64) -> f64 {
    let room = match s.bound {
        Bound::Max => s.threshold - v,
        Bound::Min => v - s.threshold,
    };
    room / s.threshold.abs() * 100.0
}

fn draw_panel(area: &Area<'_>, p: &Panel<'_>, runs: usize) -> Result<(), String> {
    let mut legend: Vec<LegendItem> = p
        .lines
        .iter()
        .map(|l| LegendItem::new(l.label.clone(), Swatch::Line(l.colour)))
        .collect();
    if p.lines.iter().any(|l| l.trend.change_at.is_some()) {
        legend.push(LegendItem::new(
            "newest change point",
            Swatch::Dashed(palette::MUTED),
        ));
    }
    if let Some((_, label)) = p.rule {
        legend.push(LegendItem::new(label, Swatch::Dashed(palette::THRESHOLD)));
    }
    let plot = frame::header(area, &p.title, &legend)?;
    let values = p.lines.iter().flat_map(|l| l.values.iter().copied());
    let (lo, hi) = values
        .chain(p.rule.map(|(y, _)| y))
        .fold((0.0_f64, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (y_min, y_max) = (
        if lo < 0.0 { -frame::headroom(-lo) } else { 0.0 },
        frame::headroom(hi),
    );
    let x_max = runs as f64 + 1.0;
    let mut chart = frame::xy_chart(&plot, 0.0..x_max, y_min..y_max)?;
    chart
        .configure_mesh()
        .x_desc("run (oldest first; this run last)")
        .y_desc(p.y_desc)
        .x_labels(runs.min(20) + 1)
        .y_labels(6)
        .x_label_formatter(&|v| frame::tick(v.round()))
        .y_label_formatter(&|v| frame::tick(*v))
        .label_style(frame::font(12.0))
        .axis_desc_style(frame::font(13.0))
        .light_line_style(palette::GRID_LIGHT)
        .bold_line_style(palette::GRID_BOLD)
        .axis_style(palette::MUTED)
        .draw()
        .map_err(frame::err)?;
    if let Some((y, _)) = p.rule {
        frame::dashed_hline(&mut chart, (0.0, x_max), y, palette::THRESHOLD)?;
    }
    for l in &p.lines {
        // Right-aligned: a metric with fewer values (runs without one are left out) still
        // ends at this run.
        let offset = runs - l.values.len();
        let points: Vec<(f64, f64)> = l
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| ((offset + i) as f64 + 1.0, *v))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), l.colour.stroke_width(2)))
            .map_err(frame::err)?;
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 3, l.colour.filled())))
            .map_err(frame::err)?;
        if let (Some(last), true) = (points.last(), l.trend.current.is_some()) {
            chart
                .draw_series(std::iter::once(Circle::new(
                    *last,
                    9,
                    palette::INK.stroke_width(2),
                )))
                .map_err(frame::err)?;
        }
        if let Some(at) = l.trend.change_at {
            let x = (offset + at) as f64 + 0.5;
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(x, y_min), (x, y_max)],
                    8,
                    5,
                    l.colour.stroke_width(2),
                ))
                .map_err(frame::err)?;
        }
    }
    Ok(())
}
