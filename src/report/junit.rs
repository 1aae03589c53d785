//! `junit.xml`: one test case per SLO, failures carrying observed vs threshold.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::format;
use super::model::RunReport;
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
    report
        .to_string()
        .map_err(|e| format!("cannot render junit.xml: {e}"))
}
