//! The run's history step: regression detection against the scenario's earlier runs
//! (`--baseline history`) before the reports are written, and recording the run after
//! them. A store that cannot be read or written is a problem (exit 3) that names it;
//! the reports are never held back by it.

use std::path::Path;

use crate::history::{self, Filter, Location, Settings, record, regress};
use crate::report::RunReport;
use crate::report::trend::HistoryReport;

/// The history section of `report`, or why it could not be made.
pub fn detect(
    settings: &Settings,
    report: &RunReport,
    kind: &str,
) -> Option<Result<HistoryReport, String>> {
    let min_effect = settings.detect?;
    let Some(location) = &settings.location else {
        return Some(Err(
            "--baseline history: no history to read (give --history URL)".into(),
        ));
    };
    let filter = Filter {
        scenario: Some(report.scenario.clone()),
        kind: Some(kind.into()),
        platform: Some(report.platform.kind.clone()),
        time_scale: Some(report.time_scale),
        last: regress::WINDOW,
        ..Filter::default()
    };
    Some(
        history::with_store(location, |s| s.runs(&filter))
            .map(|earlier| regress::detect(report, &earlier, &location.to_string(), min_effect))
            .map_err(|e| format!("{e}; regressions were not checked")),
    )
}

/// Record `report` (its reports in `dir`, if written) in the history; the id stored, or
/// the problem.
pub fn record(
    location: &Location,
    settings: &Settings,
    report: &RunReport,
    dir: Option<&Path>,
) -> Result<i64, String> {
    let rec = record::of_run(
        report,
        &settings.labels,
        dir.map(|d| d.display().to_string()),
    );
    history::with_store(location, |s| s.insert(&rec)).map_err(|e| {
        let kept = match dir {
            Some(d) => format!("its reports are in {}", d.display()),
            None => "its reports could not be written either".into(),
        };
        format!("{e}; the run was not recorded ({kept})")
    })
}
