//! Reports: one view model (`RunReport`) rendered to run.json, summary.md,
//! junit.xml, report.html and one .svg per chart, written to the run's report
//! directory (`input` reads a run.json back, to re-render or compare with).

pub mod baseline;
pub mod canary;
pub mod charts;
pub mod format;
pub mod html;
pub mod input;
pub mod junit;
pub mod markdown;
pub mod model;
pub mod terminal;
pub mod trend;

use std::path::{Path, PathBuf};

pub use model::RunReport;

/// The default report directory: `reports/<scenario>/<prefix><UTC time>/`, the time
/// without colons so any filesystem takes it (`prefix` is `capacity-` for a search).
pub fn default_dir(scenario: &str, prefix: &str, started_at: &str) -> PathBuf {
    scenario_dir(scenario).join(format!("{prefix}{}", started_at.replace(':', "")))
}

/// Where a scenario's runs go by default: `reports/<scenario>`.
pub fn scenario_dir(scenario: &str) -> PathBuf {
    Path::new("reports").join(scenario)
}

/// Whether reports can be written into `dir`, checked before any load is spent on a
/// run: the directory is made (it would be anyway) and a probe file is written and
/// removed. The error names the directory and what the system said.
pub fn check_writable(dir: &Path) -> Result<(), String> {
    let probe = dir.join(".slo-check-write-probe");
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b""))
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| format!("cannot write reports into {}: {e}", dir.display()))
}

/// Writes every report into `dir`, or, should that fail, into
/// `<temp dir>/slo-check-reports/<scenario>/<started_at>` so that what the load measured
/// is never lost. The directory written, if any, and the problem to report (exit 3).
pub fn write_or_fall_back(
    report: &RunReport,
    dir: &Path,
    started_at: &str,
) -> (Option<PathBuf>, Option<String>) {
    let Err(e) = write_all(report, dir) else {
        return (Some(dir.to_path_buf()), None);
    };
    let fallback = std::env::temp_dir()
        .join("slo-check-reports")
        .join(&report.scenario)
        .join(started_at.replace(':', ""));
    match write_all(report, &fallback) {
        Ok(_) => {
            let problem = format!(
                "{e}; the reports were written to {} instead",
                fallback.display()
            );
            (Some(fallback), Some(problem))
        }
        Err(e2) => {
            let problem = format!(
                "{e}; writing them to {} failed too: {e2}",
                fallback.display()
            );
            (None, Some(problem))
        }
    }
}

/// Write every report file into `dir`; returns the paths written.
pub fn write_all(report: &RunReport, dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create report directory {}: {e}", dir.display()))?;
    let json = serde_json::to_string_pretty(report)
        .map_err(|e| format!("cannot serialise run.json: {e}"))?;
    let charts = charts::Charts::render(report)?;
    let mut files = vec![
        ("run.json", json + "\n"),
        ("summary.md", markdown::render(report)),
        ("junit.xml", junit::render(report)?),
        ("report.html", html::render(report, &charts)),
    ];
    files.extend(charts.all().into_iter().map(|c| (c.file, c.svg.clone())));
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Append summary.md to `$GITHUB_STEP_SUMMARY` when that is set.
pub fn append_step_summary(report: &RunReport) -> Result<(), String> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") else {
        return Ok(());
    };
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| {
            format!(
                "cannot open $GITHUB_STEP_SUMMARY ({}): {e}",
                Path::new(&path).display()
            )
        })?;
    f.write_all(markdown::render(report).as_bytes())
        .map_err(|e| format!("cannot append to $GITHUB_STEP_SUMMARY: {e}"))
}
