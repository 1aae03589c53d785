//! `junit.xml`: one test case per SLO, failures carrying observed vs threshold.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::baseline::{self, BaselineReport, Worse};
use super::canary::{CanaryReport, StepVerdict};
use super::format;
use super::model::RunReport;
use super::trend::HistoryReport;
use crate::slo::Status;

pub fn render(r: &RunReport) -> Result<String, String> {
    let mut suite = TestSuite::new(format!("slo-check {}", r.scenario));
    suite.set_time(Duration::from_secs_f64(r.duration_s.max(0.0)));
    for s in &r.slos {
        let detail = format!(
            "{} over {}: observed {}, threshold {}{}",
            s.metric,
            s.window.label,
            format::observed(s),
            format::threshold(s),
            s.reason
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        );
        let status = match s.status {
            Status::Pass => TestCaseStatus::success(),
            Status::Unknown if s.allow_unknown => {
                let mut st = TestCaseStatus::skipped();
                st.set_message(format!("unknown, allowed: {detail}"));
                st
            }
            Status::Fail | Status::Unknown => {
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                st.set_message(format!("{}: {detail}", format::status(s)));
                st.set_type(if s.status == Status::Fail {
                    "slo-failed"
                } else {
                    "slo-unknown"
                });
                st
            }
        };
        let mut case = TestCase::new(s.name.clone(), status);
        case.set_classname(format!("slo-check.{}", r.scenario));
        if s.status == Status::Pass {
            case.set_system_out(detail);
        }
        suite.add_test_case(case);
    }
    let mut report = Report::new("slo-check");
    report.add_test_suite(suite);
    if let Some(c) = &r.canary {
        report.add_test_suite(canary_suite(r, c));
    }
    if let Some(b) = &r.baseline {
        report.add_test_suite(baseline_suite(r, b));
    }
    if let Some(h) = &r.history {
        report.add_test_suite(history_suite(r, h));
    }
    report
        .to_string()
        .map_err(|e| format!("cannot render junit.xml: {e}"))
}

/// One test case per canary step: its analysis, a failure when it failed; skipped when
/// a rollback (or the run's end) came first.
fn canary_suite(r: &RunReport, c: &CanaryReport) -> TestSuite {
    let mut suite = TestSuite::new(format!("slo-check {} canary", r.scenario));
    for (i, s) in c.steps.iter().enumerate() {
        let detail = s
            .analysis
            .iter()
            .map(|a| {
                format!(
                    "{}: {} observed {}, threshold {} ({})",
                    a.name,
                    a.metric,
                    format::observed(a),
                    format::threshold(a),
                    format::status(a)
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let status = match s.verdict {
            StepVerdict::Pass => TestCaseStatus::success(),
            StepVerdict::Fail => {
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                st.set_message(format!("FAIL: {detail}"));
                st.set_type("canary-step-failed");
                st
            }
            StepVerdict::Skipped | StepVerdict::NotJudged => {
                let mut st = TestCaseStatus::skipped();
                st.set_message(format!("{}: {}", s.verdict.as_str(), c.outcome_line()));
                st
            }
        };
        let mut case = TestCase::new(format!("canary step {} ({} %)", i + 1, s.weight), status);
        case.set_classname(format!("slo-check.{}.canary", r.scenario));
        if s.verdict == StepVerdict::Pass {
            case.set_system_out(detail);
        }
        suite.add_test_case(case);
    }
    suite
}

/// One test case per compared measure; a regression is a failure.
fn baseline_suite(r: &RunReport, b: &BaselineReport) -> TestSuite {
    let mut suite = TestSuite::new(format!("slo-check {} vs baseline", r.scenario));
    for d in &b.deltas {
        let v = |x: Option<f64>| x.map_or_else(|| "no data".into(), |v| format::value(v, d.unit));
        let detail = format!(
            "{}: baseline {}, this run {}, change {} (worse when {}; regression beyond {:.1} %; baseline {})",
            d.name,
            v(d.baseline),
            v(d.current),
            baseline::change_text(d),
            match d.worse {
                Worse::Higher => "higher",
                Worse::Lower => "lower",
            },
            b.max_regression * 100.0,
            b.file
        );
        let status = if d.regression {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            st.set_message(format!("REGRESSION: {detail}"));
            st.set_type("regression");
            st
        } else {
            TestCaseStatus::success()
        };
        let mut case = TestCase::new(format!("baseline: {}", d.name), status);
        case.set_classname(format!("slo-check.{}.baseline", r.scenario));
        if !d.regression {
            case.set_system_out(detail);
        }
        suite.add_test_case(case);
    }
    suite
}

/// One test case per metric judged against the history; a regression is a failure.
fn history_suite(r: &RunReport, h: &HistoryReport) -> TestSuite {
    let mut suite = TestSuite::new(format!("slo-check {} vs history", r.scenario));
    for m in &h.metrics {
        let detail = format!(
            "{} ({} earlier runs in {}; regression: a change point with p < {} this run is part of, worse by more than {:.1} %)",
            m.text(),
            h.runs,
            h.store,
            h.max_pvalue,
            h.min_effect * 100.0
        );
        let status = if m.regression {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            st.set_message(format!("REGRESSION: {detail}"));
            st.set_type("regression");
            st
        } else {
            TestCaseStatus::success()
        };
        let mut case = TestCase::new(format!("history: {}", m.name), status);
        case.set_classname(format!("slo-check.{}.history", r.scenario));
        if !m.regression {
            case.set_system_out(detail);
        }
        suite.add_test_case(case);
    }
    suite
}
