//! The latency distribution as a percentile spectrum, HdrHistogram style: x
//! is the percentile on a log scale of 1/(1−q) so the tail gets the room,
//! y is latency. From the whole-run histograms stored in run.json.

use hdrhistogram::Histogram;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::frame::{self, LegendItem, Swatch};
use super::over_time::{Threshold, thresholds};
use super::palette;
use crate::report::model::RunReport;
use crate::stats::histogram;

/// Points per curve.
const SAMPLES: usize = 400;
/// Deepest tail shown: 99.9999 %.
const MAX_NINES: f64 = 6.0;

type SpectrumChart<'a> = ChartContext<'a, SVGBackend<'a>, Cartesian2d<Nines, RangedCoordf64>>;

/// The x axis: log10(1/(1−q)) from 0 to `max`, ticks at 0 %, 50 % and each nine.
#[derive(Debug, Clone)]
pub struct Nines {
    max: f64,
}

impl Ranged for Nines {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let frac = value / self.max;
        limit.0 + (frac * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() && hint.max_num_points() > hint.bold_points() {
            // Light grid lines at 80 % and at 2 and 5 in each decade of the tail.
            let mut light = vec![x_of(0.8)];
            for n in 1..self.max as i32 {
                light.extend([2.0, 5.0].map(|k: f64| n as f64 + k.log10()));
            }
            return light;
        }
        let mut keys = vec![0.0, x_of(0.5)];
        keys.extend((1..=self.max as i32).map(f64::from));
        keys
    }

    fn range(&self) -> std::ops::Range<f64> {
        0.0..self.max
    }
}

impl ValueFormatter<f64> for Nines {
    fn format_ext(&self, value: &f64) -> String {
        label(*value)
    }
}

/// A curve to draw.
struct Curve {
    label: String,
    colour: RGBColor,
    hist: Histogram<u64>,
}

/// x position of quantile `q` (0 ≤ q < 1): log10(1/(1−q)).
pub fn x_of(q: f64) -> f64 {
    -(1.0 - q).log10()
}

/// `0%`, `90%`, `99%`, `99.9%` … for x = 0, 1, 2, 3 …; `50%` at log10(2).
pub fn label(x: f64) -> String {
    if (x - x_of(0.5)).abs() < 1e-6 {
        return "50%".into();
    }
    let nines = x.round() as i32;
    if (x - nines as f64).abs() > 1e-6 || nines < 0 {
        return String::new();
    }
    let pct = 100.0 * (1.0 - 10f64.powi(-nines));
    format!("{pct:.*}%", (nines - 2).max(0) as usize)
}

fn curves(r: &RunReport) -> Result<Vec<Curve>, String> {
    let mut out = Vec::new();
    let whole = histogram::decode(&r.histograms.workflow)
        .map_err(|e| format!("histograms.workflow: {e}"))?;
    out.push(Curve {
        label: "workflow".into(),
        colour: palette::WORKFLOW,
        hist: whole,
    });
    for (i, (name, text)) in r.histograms.steps.iter().enumerate() {
        let hist = histogram::decode(text).map_err(|e| format!("histograms.steps.{name}: {e}"))?;
        out.push(Curve {
            label: format!("step {name}"),
            colour: palette::step(i),
            hist,
        });
    }
    out.retain(|c| !c.hist.is_empty());
    Ok(out)
}

/// The spectrum chart; None when no workflow succeeded (nothing to draw).
pub fn spectrum(r: &RunReport) -> Result<Option<String>, String> {
    let curves = curves(r)?;
    let Some(workflow) = curves.first().filter(|c| c.label == "workflow") else {
        return Ok(None);
    };
    let count = workflow.hist.len() as f64;
    let x_max = count.log10().ceil().clamp(1.0, MAX_NINES);
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let data_max = curves
        .iter()
        .map(|c| c.hist.max() as f64 / 1000.0)
        .fold(0.0, f64::max);
    let lines: Vec<Threshold<'_>> = thresholds(r, data_max)
        .into_iter()
        .filter(|t| t.slo.window.label == "run")
        .collect();
    let y_top = lines
        .iter()
        .filter(|t| t.on_scale)
        .map(|t| t.slo.threshold)
        .fold(data_max, f64::max);
    let markers = [
        ("p50", 0.5, palette::P50),
        ("p95", 0.95, palette::P95),
        ("p99", 0.99, palette::P99),
    ];
    let mut legend: Vec<LegendItem> = curves
        .iter()
        .map(|c| {
            LegendItem::new(
                format!("{} ({} samples)", c.label, c.hist.len()),
                Swatch::Line(c.colour),
            )
        })
        .collect();
    for (name, q, c) in &markers {
        let v = crate::report::format::value(ms(&workflow.hist, *q), crate::scenario::Unit::Ms);
        legend.push(LegendItem::new(
            format!("workflow {name} = {v}"),
            Swatch::Dot(*c),
        ));
    }
    for t in &lines {
        let off = if t.on_scale { "" } else { " (above the chart)" };
        legend.push(LegendItem::new(
            format!(
                "SLO {}: {}{off}",
                t.slo.name,
                crate::report::format::threshold(t.slo)
            ),
            Swatch::Dashed(t.colour),
        ));
    }
    let y_max = frame::headroom(y_top);
    let svg = frame::render(|root| {
        let area = frame::header(
            root,
            "Latency by percentile (whole run, from intended start)",
            &legend,
        )?;
        let mut chart = build(&area, x_max, y_max)?;
        for c in &curves {
            let pts = (0..=SAMPLES).map(|i| {
                let x = x_max * i as f64 / SAMPLES as f64;
                (x, ms(&c.hist, 1.0 - 10f64.powf(-x)))
            });
            chart
                .draw_series(LineSeries::new(
                    pts,
                    c.colour
                        .stroke_width(if c.label == "workflow" { 3 } else { 2 }),
                ))
                .map_err(frame::err)?;
        }
        for t in lines.iter().filter(|t| t.on_scale) {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(0.0, t.slo.threshold), (x_max, t.slo.threshold)],
                    8,
                    5,
                    t.colour.stroke_width(2),
                ))
                .map_err(frame::err)?;
        }
        let dots = markers
            .iter()
            .map(|(_, q, c)| Circle::new((x_of(*q), ms(&workflow.hist, *q)), 5, c.filled()));
        chart.draw_series(dots).map_err(frame::err)?;
        Ok(())
    })?;
    Ok(Some(svg))
}

fn build<'a>(area: &frame::Area<'a>, x_max: f64, y_max: f64) -> Result<SpectrumChart<'a>, String> {
    let mut chart = ChartBuilder::on(area)
        .margin_left(8)
        .margin_right(28)
        .margin_top(6)
        .margin_bottom(4)
        .x_label_area_size(46)
        .y_label_area_size(70)
        .build_cartesian_2d(Nines { max: x_max }, 0.0..y_max)
        .map_err(frame::err)?;
    chart
        .configure_mesh()
        .x_desc("percentile (log scale of 1/(1−q))")
        .y_desc("latency (ms)")
        .y_labels(6)
        .y_label_formatter(&|v| frame::tick(*v))
        .label_style(frame::font(12.0))
        .axis_desc_style(frame::font(13.0))
        .light_line_style(palette::GRID_LIGHT)
        .bold_line_style(palette::GRID_BOLD)
        .axis_style(palette::MUTED)
        .draw()
        .map_err(frame::err)?;
    Ok(chart)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_labels_follow_the_nines() {
        assert_eq!(label(0.0), "0%");
        assert_eq!(label(x_of(0.5)), "50%");
        assert_eq!(label(1.0), "90%");
        assert_eq!(label(2.0), "99%");
        assert_eq!(label(3.0), "99.9%");
        assert_eq!(label(4.0), "99.99%");
        assert_eq!(label(1.5), "");
    }
}
