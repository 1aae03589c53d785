//! SVG charts of a run, drawn with plotters from `RunReport` alone: latency
//! percentiles over time, start rate, failures, replicas, and the latency
//! percentile spectrum, a canary's weight over time, and with `--baseline history` the
//! trend over the run history (p95, failure rate, SLO margins). Each is embedded in report.html and written as its
//! own `.svg` file.

pub mod canary;
pub mod frame;
pub mod load;
pub mod over_time;
pub mod palette;
pub mod spectrum;
pub mod trend;

use super::model::RunReport;

/// One rendered chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// File name next to report.html (`latency.svg`).
    pub file: &'static str,
    /// The SVG document.
    pub svg: String,
}

/// Every chart of a run; `None` where the run has nothing to show.
#[derive(Debug, Clone, PartialEq)]
pub struct Charts {
    pub latency: Chart,
    pub rate: Chart,
    pub failures: Chart,
    /// None when the platform has no replica timeline.
    pub replicas: Option<Chart>,
    /// None when no workflow succeeded.
    pub spectrum: Option<Chart>,
    /// None without a canary.
    pub canary: Option<Chart>,
    /// None without a history section (`--baseline history`).
    pub trend: Option<Chart>,
}

impl Charts {
    /// Render every chart of `r`.
    pub fn render(r: &RunReport) -> Result<Charts, String> {
        let chart = |file, svg| Chart { file, svg };
        Ok(Charts {
            latency: chart("latency.svg", over_time::latency(r)?),
            rate: chart("rate.svg", over_time::rate(r)?),
            failures: chart("failures.svg", load::failures(r)?),
            replicas: load::replicas(r)?.map(|svg| chart("replicas.svg", svg)),
            spectrum: spectrum::spectrum(r)?.map(|svg| chart("spectrum.svg", svg)),
            canary: canary::weight(r)?.map(|svg| chart("canary.svg", svg)),
            trend: trend::trend(r)?.map(|svg| chart("trend.svg", svg)),
        })
    }

    /// The charts that were drawn, in page order.
    pub fn all(&self) -> Vec<&Chart> {
        let mut out = vec![&self.latency, &self.rate, &self.failures];
        out.extend(self.replicas.as_ref());
        out.extend(self.spectrum.as_ref());
        out.extend(self.canary.as_ref());
        out.extend(self.trend.as_ref());
        out
    }
}
