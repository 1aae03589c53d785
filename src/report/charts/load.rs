//! Charts of what the load did to the system: failures per second by kind
//! (stacked, dropped starts on top) and the replica timeline.

use std::collections::BTreeSet;

use plotters::prelude::*;

use super::frame::{self, LegendItem, Swatch, TimeAxes};
use super::over_time::{push_fault_legend, x_max_s};
use super::palette;
use crate::report::model::{ReplicaPoint, RunReport};

/// Picks one count out of a replica observation.
type Pick = fn(&ReplicaPoint) -> u32;

/// Failed workflows per second (by intended start), stacked by kind; dropped starts on top.
pub fn failures(r: &RunReport) -> Result<String, String> {
    let ts = &r.timeseries;
    let kinds: BTreeSet<&str> = ts
        .iter()
        .flat_map(|p| p.failures_by_kind.keys().map(String::as_str))
        .collect();
    let any_dropped = ts.iter().any(|p| p.dropped > 0);
    let max = ts
        .iter()
        .map(|p| (p.failed + p.dropped) as f64)
        .fold(0.0, f64::max);
    let mut legend: Vec<LegendItem> = kinds
        .iter()
        .map(|k| LegendItem::new(*k, Swatch::Block(palette::failure_kind(k))))
        .collect();
    if any_dropped {
        legend.push(LegendItem::new(
            "dropped (not started)",
            Swatch::Block(palette::DROPPED),
        ));
    }
    push_fault_legend(r, &mut legend);
    let axes = TimeAxes {
        x_max_s: x_max_s(r),
        y_max: frame::headroom(max).max(1.0),
        y_desc: "workflows per second",
    };
    frame::render(|root| {
        let area = frame::header(
            root,
            "Failed and dropped workflows per second, by kind",
            &legend,
        )?;
        let mut chart = frame::time_chart(&area, &axes)?;
        frame::shade_faults(&mut chart, &r.faults, axes.y_max)?;
        frame::time_mesh(&mut chart, axes.y_desc)?;
        let mut bars = Vec::new();
        for p in ts {
            let (x0, x1) = (p.t_s as f64 + 0.08, p.t_s as f64 + 0.92);
            let mut base = 0.0;
            let stack = kinds
                .iter()
                .map(|k| {
                    (
                        palette::failure_kind(k),
                        p.failures_by_kind.get(*k).copied().unwrap_or(0),
                    )
                })
                .chain(std::iter::once((palette::DROPPED, p.dropped)));
            for (colour, n) in stack.filter(|(_, n)| *n > 0) {
                let top = base + n as f64;
                bars.push(Rectangle::new([(x0, base), (x1, top)], colour.filled()));
                base = top;
            }
        }
        chart.draw_series(bars).map_err(frame::err)?;
        if max == 0.0 {
            frame::note(&chart, "no failed or dropped workflows")?;
        }
        Ok(())
    })
}

/// Desired, current and ready replicas over time, as steps. None without a replica timeline.
pub fn replicas(r: &RunReport) -> Result<Option<String>, String> {
    if r.replicas.is_empty() {
        return Ok(None);
    }
    let x_max = x_max_s(r);
    let max = r
        .replicas
        .iter()
        .map(|p| p.desired.max(p.current).max(p.ready) as f64)
        .fold(0.0, f64::max);
    let series: [(&str, RGBColor, Pick); 3] = [
        ("current", palette::CURRENT, |p| p.current),
        ("desired", palette::DESIRED, |p| p.desired),
        ("ready", palette::READY, |p| p.ready),
    ];
    let mut legend: Vec<LegendItem> = series
        .iter()
        .map(|(name, c, _)| LegendItem::new(*name, Swatch::Line(*c)))
        .collect();
    push_fault_legend(r, &mut legend);
    let axes = TimeAxes {
        x_max_s: x_max,
        y_max: (max + 1.0).max(max * 1.15).ceil(),
        y_desc: "replicas",
    };
    let svg = frame::render(|root| {
        let area = frame::header(root, "Replicas", &legend)?;
        let mut chart = frame::time_chart(&area, &axes)?;
        frame::shade_faults(&mut chart, &r.faults, axes.y_max)?;
        frame::time_mesh(&mut chart, axes.y_desc)?;
        for (i, (_, colour, pick)) in series.iter().enumerate() {
            // Offset the overlapping steps by a hair so each stays visible.
            let lift = (1.0 - i as f64) * axes.y_max * 0.008;
            let points: Vec<(f64, f64)> = steps(&r.replicas, *pick, x_max)
                .into_iter()
                .map(|(x, y)| (x, y + lift))
                .collect();
            chart
                .draw_series(LineSeries::new(
                    points,
                    colour.stroke_width(if i == 2 { 3 } else { 2 }),
                ))
                .map_err(frame::err)?;
        }
        Ok(())
    })?;
    Ok(Some(svg))
}

/// A step line from time 0 (the value in force then) to `x_max`.
fn steps(points: &[ReplicaPoint], pick: Pick, x_max: f64) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    let mut current: Option<f64> = None;
    for p in points {
        let v = pick(p) as f64;
        let t = p.t_s.clamp(0.0, x_max);
        match current {
            Some(prev) => {
                out.push((t, prev));
                out.push((t, v));
            }
            None => out.push((t, v)),
        }
        current = Some(v);
    }
    if let Some(v) = current {
        out.push((x_max, v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_start_at_zero_and_hold_until_the_end() {
        let p = |t_s, ready| ReplicaPoint {
            t_s,
            desired: ready,
            current: ready,
            ready,
        };
        let pts = steps(&[p(-2.0, 1), p(10.0, 3)], |p| p.ready, 30.0);
        assert_eq!(pts, vec![(0.0, 1.0), (10.0, 1.0), (10.0, 3.0), (30.0, 3.0)]);
    }
}
