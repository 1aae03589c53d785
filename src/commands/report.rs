//! `slo-check report RUN.json [--baseline OLD.json] [--out DIR]`: re-render
//! every output from a run.json alone, optionally against a baseline.

use std::path::{Path, PathBuf};

use crate::cli::ReportArgs;
use crate::exit;
use crate::report::baseline::Baseline;
use crate::report::input;
use crate::slo::Verdict;

/// Run the command; the exit code mirrors the run's verdict (1 on a failed
/// SLO or a regression), 2 for a bad file or flag, 3 if writing fails.
pub fn run(args: &ReportArgs) -> u8 {
    if args.baseline.baseline.as_deref() == Some(Path::new("history")) {
        return super::usage(
            "--baseline history judges a run against the run history as it ends (`slo-check run --baseline history`); `report` compares with a run.json: --baseline OLD.json",
        );
    }
    let loaded = input::read(&args.run).and_then(|report| {
        Baseline::from_args(
            args.baseline.baseline.as_deref(),
            &args.baseline.max_regression,
        )
        .map(|b| (report, b))
    });
    let (report, baseline) = match loaded {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let report = match &baseline {
        Some(b) => b.apply(&report),
        None => report,
    };
    let dir = args.out.clone().unwrap_or_else(|| parent(&args.run));
    match crate::report::write_all(&report, &dir) {
        Ok(written) => {
            if !args.quiet {
                for p in written {
                    println!("wrote {}", p.display());
                }
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INFRA;
        }
    }
    let regressions = report.regressions();
    if regressions > 0 {
        eprintln!(
            "{regressions} regression{} against the baseline (see summary.md)",
            if regressions == 1 { "" } else { "s" }
        );
    }
    if report.verdict == Verdict::Pass && regressions == 0 {
        exit::PASS
    } else {
        exit::FAIL
    }
}

fn parent(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
