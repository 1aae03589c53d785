//! The trend of a run against its history (`--baseline history`): workflow p95 over the
//! earlier runs and this one, this run circled, the newest change point dashed.

use plotters::prelude::*;

use super::frame::{self, LegendItem, Swatch, TimeAxes};
use super::palette;
use crate::report::model::RunReport;

/// The p95 trend; None without a history section (or without a p95 series).
pub fn trend(r: &RunReport) -> Result<Option<String>, String> {
    let Some(m) = r.history.as_ref().and_then(|h| {
        h.metrics
            .iter()
            .find(|m| m.name == "workflow p95" && !m.series.is_empty())
    }) else {
        return Ok(None);
    };
    let n = m.series.len();
    let max = m.series.iter().copied().fold(0.0, f64::max);
    let mut legend = vec![
        LegendItem::new("workflow p95 per run", Swatch::Line(palette::P95)),
        LegendItem::new("this run (circled)", Swatch::Line(palette::INK)),
    ];
    if m.change_at.is_some() {
        legend.push(LegendItem::new(
            "newest change point (dashed)",
            Swatch::Line(palette::THRESHOLD),
        ));
    }
    let axes = TimeAxes {
        x_max_s: n as f64 + 1.0,
        y_max: frame::headroom(max),
        y_desc: "workflow p95 (ms)",
    };
    let title = format!(
        "Workflow p95 over the last {n} runs{}",
        if m.regression { ": regression" } else { "" }
    );
    let svg = frame::render(|root| {
        let area = frame::header(root, &title, &legend)?;
        let mut chart = frame::time_chart(&area, &axes)?;
        chart
            .configure_mesh()
            .x_desc("run (oldest first; this run last)")
            .y_desc(axes.y_desc)
            .x_labels(n.min(20) + 1)
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
        let points: Vec<(f64, f64)> = m
            .series
            .iter()
            .enumerate()
            .map(|(i, v)| (i as f64 + 1.0, *v))
            .collect();
        chart
            .draw_series(LineSeries::new(
                points.clone(),
                palette::P95.stroke_width(2),
            ))
            .map_err(frame::err)?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|p| Circle::new(*p, 3, palette::P95.filled())),
            )
            .map_err(frame::err)?;
        if let (Some(last), true) = (points.last(), m.current.is_some()) {
            chart
                .draw_series(std::iter::once(Circle::new(
                    *last,
                    9,
                    palette::INK.stroke_width(2),
                )))
                .map_err(frame::err)?;
        }
        if let Some(at) = m.change_at {
            let x = at as f64 + 0.5;
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(x, 0.0), (x, axes.y_max)],
                    8,
                    5,
                    palette::THRESHOLD.stroke_width(2),
                ))
                .map_err(frame::err)?;
        }
        Ok(())
    })?;
    Ok(Some(svg))
}
