//! What every chart shares: the canvas, fonts, the title-and-legend header
//! (drawn above the plot, so it never covers data), the time axis, fault
//! shading and gap-aware line drawing.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::palette;
use crate::report::model::FaultReport;

/// Canvas size of every chart, in px.
pub const WIDTH: u32 = 1100;
pub const HEIGHT: u32 = 360;
/// Left edge of the title and legend (lines up with the y axis labels).
const HEADER_X: i32 = 16;
const LEGEND_ROW_PX: i32 = 22;
const LEGEND_FONT_PX: f64 = 13.0;

pub type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
pub type XyChart<'a> =
    ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Any drawing error as text (the string backend only fails on a bug).
pub fn err<E: std::fmt::Display>(e: E) -> String {
    format!("cannot draw chart: {e}")
}

/// A sans-serif font whose rendered SVG size is `px` (plotters divides by 1.24).
pub fn font(px: f64) -> TextStyle<'static> {
    ("sans-serif", px * 1.24).into_font().color(&palette::INK)
}

/// Draw onto a fresh white canvas and return the SVG text.
pub fn render(draw: impl FnOnce(&Area<'_>) -> Result<(), String>) -> Result<String, String> {
    render_sized(HEIGHT, draw)
}

/// `render` on a canvas `height` px tall (a chart of several panels).
pub fn render_sized(
    height: u32,
    draw: impl FnOnce(&Area<'_>) -> Result<(), String>,
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy)]
pub enum Swatch {
    Line(RGBColor),
    Dashed(RGBColor),
    Block(RGBColor),
    /// A translucent band (fault windows).
    Band(RGBColor),
    Dot(RGBColor),
}

/// One legend entry.
#[derive(Debug, Clone)]
pub struct LegendItem {
    pub label: String,
    pub swatch: Swatch,
}

impl LegendItem {
    pub fn new(label: impl Into<String>, swatch: Swatch) -> LegendItem {
        LegendItem {
            label: label.into(),
            swatch,
        }
    }
}

/// Width a label takes, estimated generously for sans-serif (0.6 em per char).
fn text_px(text: &str, px: f64) -> i32 {
    (text.chars().count() as f64 * px * 0.6).ceil() as i32
}

/// Draw the title and the legend (wrapping onto more rows as needed) and
/// return the area below them for the plot.
pub fn header<'a>(root: &Area<'a>, title: &str, legend: &[LegendItem]) -> Result<Area<'a>, String> {
    let bold = ("sans-serif", 16.0 * 1.24, FontStyle::Bold)
        .into_font()
        .color(&palette::INK);
    root.draw(&Text::new(title.to_string(), (HEADER_X, 10), bold))
        .map_err(err)?;
    let (mut x, mut y) = (HEADER_X, 38);
    for item in legend {
        let w = 26 + text_px(&item.label, LEGEND_FONT_PX);
        if x + w > WIDTH as i32 - HEADER_X && x > HEADER_X {
            x = HEADER_X;
            y += LEGEND_ROW_PX;
        }
        draw_swatch(root, item.swatch, (x, y + 8))?;
        let style = font(LEGEND_FONT_PX).pos(Pos::new(HPos::Left, VPos::Center));
        root.draw(&Text::new(item.label.clone(), (x + 26, y + 8), style))
            .map_err(err)?;
        x += w + 18;
    }
    let used = if legend.is_empty() {
        34
    } else {
        y + LEGEND_ROW_PX + 6
    };
    Ok(root.split_vertically(used).1)
}

fn draw_swatch(root: &Area<'_>, swatch: Swatch, (x, y): (i32, i32)) -> Result<(), String> {
    let line = |c: RGBColor| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3));
    match swatch {
        Swatch::Line(c) => root.draw(&line(c)),
        Swatch::Dashed(c) => {
            for dx in [0, 8, 16] {
                root.draw(&PathElement::new(
                    vec![(x + dx, y), (x + dx + 5, y)],
                    c.stroke_width(2),
                ))
                .map_err(err)?;
            }
            Ok(())
        }
        Swatch::Block(c) => root.draw(&Rectangle::new(
            [(x + 2, y - 6), (x + 18, y + 6)],
            c.filled(),
        )),
        Swatch::Band(c) => root.draw(&Rectangle::new(
            [(x + 2, y - 7), (x + 18, y + 7)],
            c.mix(0.35).filled(),
        )),
        Swatch::Dot(c) => root.draw(&Circle::new((x + 10, y), 4, c.filled())),
    }
    .map_err(err)
}

/// Axes of a chart over time.
pub struct TimeAxes<'s> {
    /// Right end of the time axis, seconds.
    pub x_max_s: f64,
    /// Top of the y axis.
    pub y_max: f64,
    /// Y axis description, with its unit.
    pub y_desc: &'s str,
}

/// A chart with time (seconds since the run's zero) on x.
pub fn time_chart<'a>(area: &Area<'a>, axes: &TimeAxes<'_>) -> Result<XyChart<'a>, String> {
    xy_chart(area, 0.0..axes.x_max_s, 0.0..axes.y_max)
}

/// A chart over any x and y ranges, with the margins every chart shares.
pub fn xy_chart<'a>(
    area: &Area<'a>,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
) -> Result<XyChart<'a>, String> {
    ChartBuilder::on(area)
        .margin_left(8)
        .margin_right(28)
        .margin_top(6)
        .margin_bottom(4)
        .x_label_area_size(46)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)
        .map_err(err)
}

/// Grid, ticks and axis descriptions of a time chart.
pub fn time_mesh(chart: &mut XyChart<'_>, y_desc: &str) -> Result<(), String> {
    chart
        .configure_mesh()
        .x_desc("time since start (s)")
        .y_desc(y_desc)
        .x_labels(12)
        .y_labels(6)
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .label_style(font(12.0))
        .axis_desc_style(font(13.0))
        .light_line_style(palette::GRID_LIGHT)
        .bold_line_style(palette::GRID_BOLD)
        .axis_style(palette::MUTED)
        .draw()
        .map_err(err)
}

/// A tick label: at most three decimals, trailing zeros dropped.
pub fn tick(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// Shade each fault's window across the plot and name it at the top.
pub fn shade_faults(
    chart: &mut XyChart<'_>,
    faults: &[FaultReport],
    y_max: f64,
) -> Result<(), String> {
    for (i, f) in faults.iter().enumerate() {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(f.from_s, 0.0), (f.to_s, y_max)],
                palette::FAULT.mix(0.18).filled(),
            )))
            .map_err(err)?;
        // backend_coord is absolute; text on the plotting area is relative to its corner.
        let (px, py) = chart.backend_coord(&(f.from_s, y_max));
        let area = chart.plotting_area().strip_coord_spec();
        let (bx, by) = area.get_base_pixel();
        // A window whose fault the platform did not inject is still drawn (it is in
        // the schedule), and says so.
        let label = if f.injected {
            format!("fault: {}", f.name)
        } else {
            format!("fault: {} (not injected)", f.name)
        };
        let style = font(12.0).color(&palette::FAULT_TEXT);
        area.draw(&Text::new(
            label,
            (px - bx + 4, py - by + 4 + 15 * i as i32),
            style,
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// Draw a line that breaks where values are missing; lone points become dots.
pub fn gapped_line(
    chart: &mut XyChart<'_>,
    points: impl IntoIterator<Item = (f64, Option<f64>)>,
    colour: RGBColor,
) -> Result<(), String> {
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for (x, y) in points {
        match y {
            Some(y) => runs.last_mut().expect("never empty").push((x, y)),
            None if runs.last().is_some_and(|r| !r.is_empty()) => runs.push(Vec::new()),
            None => {}
        }
    }
    for run in runs.into_iter().filter(|r| !r.is_empty()) {
        if run.len() == 1 {
            chart
                .draw_series(std::iter::once(Circle::new(run[0], 3, colour.filled())))
                .map_err(err)?;
        } else {
            chart
                .draw_series(LineSeries::new(run, colour.stroke_width(2)))
                .map_err(err)?;
        }
    }
    Ok(())
}

/// A dashed horizontal line from `x0` to `x1` at `y`.
pub fn dashed_hline(
    chart: &mut XyChart<'_>,
    (x0, x1): (f64, f64),
    y: f64,
    colour: RGBColor,
) -> Result<(), String> {
    chart
        .draw_series(DashedLineSeries::new(
            vec![(x0, y), (x1, y)],
            8,
            5,
            colour.stroke_width(2),
        ))
        .map_err(err)?;
    Ok(())
}

/// A short grey note in the middle of the plot ("no failures").
pub fn note(chart: &XyChart<'_>, text: &str) -> Result<(), String> {
    let area = chart.plotting_area().strip_coord_spec();
    let (w, h) = area.dim_in_pixel();
    let style = font(14.0)
        .color(&palette::MUTED)
        .pos(Pos::new(HPos::Center, VPos::Center));
    area.draw(&Text::new(
        text.to_string(),
        (w as i32 / 2, h as i32 / 2),
        style,
    ))
    .map_err(err)
}

/// A y range top with headroom, never zero.
pub fn headroom(max: f64) -> f64 {
    if max.is_finite() && max > 0.0 {
        max * 1.15
    } else {
        1.0
    }
}
