//! The canary's weight over time: the weight the platform took (a step line), each
//! step's window shaded by its verdict (pass green, fail red, skipped or not judged grey).

use plotters::prelude::*;

use super::frame::{self, LegendItem, Swatch, TimeAxes, err};
use super::over_time::x_max_s;
use crate::report::canary::{CanaryReport, StepVerdict};
use crate::report::model::RunReport;

const WEIGHT: RGBColor = RGBColor(0x4C, 0x78, 0xA8);
const PASS: RGBColor = RGBColor(0x54, 0xA2, 0x4B);
const FAIL: RGBColor = RGBColor(0xE4, 0x57, 0x56);
const SKIPPED: RGBColor = RGBColor(0xB0, 0xB0, 0xB0);

fn shade(v: StepVerdict) -> RGBColor {
    match v {
        StepVerdict::Pass => PASS,
        StepVerdict::Fail => FAIL,
        StepVerdict::Skipped | StepVerdict::NotJudged => SKIPPED,
    }
}

/// `None` without a canary.
pub fn weight(r: &RunReport) -> Result<Option<String>, String> {
    let Some(c) = &r.canary else {
        return Ok(None);
    };
    let x_max = x_max_s(r).max(c.steps.last().map_or(0.0, |s| s.to_s));
    let legend = vec![
        LegendItem::new("canary weight", Swatch::Line(WEIGHT)),
        LegendItem::new("step passed", Swatch::Band(PASS)),
        LegendItem::new("step failed", Swatch::Band(FAIL)),
        LegendItem::new("skipped / not judged", Swatch::Band(SKIPPED)),
    ];
    let axes = TimeAxes {
        x_max_s: x_max,
        y_max: 105.0,
        y_desc: "canary weight (%)",
    };
    frame::render(|root| {
        let area = frame::header(root, &title(c), &legend)?;
        let mut chart = frame::time_chart(&area, &axes)?;
        for s in &c.steps {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(s.from_s, 0.0), (s.to_s, axes.y_max)],
                    shade(s.verdict).mix(0.18).filled(),
                )))
                .map_err(err)?;
        }
        frame::time_mesh(&mut chart, axes.y_desc)?;
        chart
            .draw_series(LineSeries::new(steps_of(c, x_max), WEIGHT.stroke_width(2)))
            .map_err(err)?;
        Ok(())
    })
    .map(Some)
}

fn title(c: &CanaryReport) -> String {
    format!(
        "Canary weight over time ({} → {}): {}",
        c.versions.stable,
        c.versions.canary,
        match c.outcome {
            crate::report::canary::CanaryOutcome::Promoted => "promoted".to_string(),
            crate::report::canary::CanaryOutcome::RolledBack =>
                format!("rolled back at step {}", c.rolled_back_at_step.unwrap_or(0)),
            crate::report::canary::CanaryOutcome::Incomplete => "incomplete".to_string(),
        }
    )
}

/// The weight as a step function from the run's zero to `x_max`.
fn steps_of(c: &CanaryReport, x_max: f64) -> Vec<(f64, f64)> {
    let mut points = vec![(0.0, 0.0)];
    let mut current = 0.0;
    for w in &c.weights {
        let at = w.at_s.max(0.0);
        points.push((at, current));
        current = f64::from(w.weight);
        points.push((at, current));
    }
    points.push((x_max, current));
    points
}
