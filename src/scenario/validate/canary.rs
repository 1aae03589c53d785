//! `canary`: the two subsets and how their embedded replicas differ, the header match,
//! the traffic steps (weights 0–100, rising, each with a `for`) and the analysis SLOs.

use std::collections::HashSet;
use std::time::Duration;

use hyper::header::{HeaderName, HeaderValue};
use serde_saphyr::Spanned;

use super::Ctx;
use super::slos::{Refs, analysis_slo};
use crate::scenario::model::{Canary, CanaryStep, OnFailure, Subset, SubsetLocal};
use crate::scenario::raw::{RawCanary, RawOnFailure, RawSubset};
use crate::units::{format_duration, parse_ratio};

const PATH: &str = "canary";

pub(super) fn validate_canary(cx: &mut Ctx, raw: &Spanned<RawCanary>, refs: &Refs) -> Canary {
    let loc = Some(raw.referenced);
    let c = &raw.value;
    let subsets = [&c.stable, &c.canary];
    for (subset, s) in Subset::ALL.iter().zip(subsets) {
        if !usable_label(&s.version) {
            cx.err(
                loc,
                format!("{PATH}.{}.version", subset.as_str()),
                format!(
                    "`{}` is not a usable `version` label value; use letters, digits, `-`, `_` or `.` (at most 63)",
                    s.version
                ),
            );
        }
    }
    if c.stable.version == c.canary.version {
        cx.err(
            loc,
            format!("{PATH}.canary.version"),
            format!(
                "both subsets are `version: {}`; the canary needs a version of its own, or no workflow can be told apart",
                c.canary.version
            ),
        );
    }
    let local = [
        subset_local(cx, Subset::Stable, &c.stable),
        subset_local(cx, Subset::Canary, &c.canary),
    ];
    let mut header = Vec::new();
    for (name, value) in &c.header {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(_)) => header.push((n, value.clone())),
            _ => cx.err(
                loc,
                format!("{PATH}.header.{name}"),
                "not a valid HTTP header name and value",
            ),
        }
    }
    let steps = steps(cx, c, refs.schedule_end);
    let mut analysis = Vec::new();
    let mut seen = HashSet::new();
    for (i, s) in c.analysis.iter().enumerate() {
        let path = format!("{PATH}.analysis[{i}]");
        let sloc = Some(s.referenced);
        if !seen.insert(s.value.name.clone()) {
            cx.err(
                sloc,
                format!("{path}.name"),
                format!(
                    "two analysis SLOs are named `{}`; names must be unique",
                    s.value.name
                ),
            );
        }
        if let Some(slo) = analysis_slo(cx, sloc, &path, &s.value, refs) {
            analysis.push(slo);
        }
    }
    if c.analysis.is_empty() {
        cx.err(
            loc,
            format!("{PATH}.analysis"),
            "a canary needs at least one analysis SLO to judge its steps by, e.g. `- { name: canary errors, metric: failure_rate, max: 1% }`",
        );
    }
    Canary {
        versions: [c.stable.version.clone(), c.canary.version.clone()],
        local,
        header,
        steps,
        analysis,
        on_failure: match c.on_failure {
            None | Some(RawOnFailure::Rollback) => OnFailure::Rollback,
            Some(RawOnFailure::Continue) => OnFailure::Continue,
        },
        line_col: Some((raw.referenced.line(), raw.referenced.column())),
    }
}

/// A Kubernetes label value: at most 63 of `[A-Za-z0-9._-]`, alphanumeric at both ends.
fn usable_label(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && v.starts_with(|c: char| c.is_ascii_alphanumeric())
        && v.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn subset_local(cx: &mut Ctx, subset: Subset, raw: &RawSubset) -> SubsetLocal {
    let mut out = SubsetLocal {
        fail_ratio: None,
        latency_factor: 1.0,
        replicas: None,
        autoscale: subset == Subset::Stable,
    };
    let Some(l) = &raw.local else {
        return out;
    };
    let (loc, l) = (Some(l.referenced), &l.value);
    let path = format!("{PATH}.{}.local", subset.as_str());
    if let Some(q) = &l.failure_rate {
        match parse_ratio(q) {
            Ok(r) => out.fail_ratio = Some(r),
            Err(m) => cx.err(loc, format!("{path}.failure_rate"), m),
        }
    }
    if let Some(f) = l.latency_factor {
        if f.is_finite() && f > 0.0 && f <= 1000.0 {
            out.latency_factor = f;
        } else {
            cx.err(
                loc,
                format!("{path}.latency_factor"),
                format!("`{f}` must be a positive factor, e.g. 1.5"),
            );
        }
    }
    if let Some(n) = l.replicas {
        if n == 0 || n > crate::scenario::model::MAX_LOCAL_REPLICAS {
            cx.err(
                loc,
                format!("{path}.replicas"),
                format!(
                    "{n} replicas: a subset runs 1 to {}",
                    crate::scenario::model::MAX_LOCAL_REPLICAS
                ),
            );
        }
        out.replicas = Some(n);
    }
    if let Some(a) = l.autoscale {
        out.autoscale = a;
    }
    out
}

/// The steps: each weight within 0–100 and above the previous one, each with a `for`,
/// all of them within the schedule.
fn steps(cx: &mut Ctx, c: &RawCanary, schedule_end: Duration) -> Vec<CanaryStep> {
    let mut out = Vec::new();
    if c.steps.is_empty() {
        cx.err(
            None,
            format!("{PATH}.steps"),
            "a canary needs at least one step, e.g. `- { weight: 10, for: 60s }`",
        );
    }
    let mut previous: Option<i64> = None;
    for (i, s) in c.steps.iter().enumerate() {
        let loc = Some(s.referenced);
        let path = format!("{PATH}.steps[{i}]");
        let w = s.value.weight;
        if !(0..=100).contains(&w) {
            cx.err(
                loc,
                format!("{path}.weight"),
                format!(
                    "{w} is outside 0–100: a weight is the canary's share of the traffic in percent"
                ),
            );
        } else if let Some(p) = previous.filter(|p| w <= *p) {
            cx.err(
                loc,
                format!("{path}.weight"),
                format!("{w} does not rise above the previous step's {p}: a canary's weight only goes up (a rollback is `on_failure`'s job)"),
            );
        }
        if (0..=100).contains(&w) {
            previous = Some(w);
        }
        let duration = match s.value.duration {
            Some(d) if !d.0.is_zero() => d.0,
            Some(_) => {
                cx.err(
                    loc,
                    format!("{path}.for"),
                    "a step must last longer than 0s",
                );
                Duration::ZERO
            }
            None => {
                cx.err(
                    loc,
                    format!("{path}.for"),
                    "the step has no `for`: say how long it holds before it is judged, e.g. `for: 60s`",
                );
                Duration::ZERO
            }
        };
        out.push(CanaryStep {
            weight: w.clamp(0, 100) as u8,
            duration,
        });
    }
    let total: Duration = out.iter().map(|s| s.duration).sum();
    if total > schedule_end && !schedule_end.is_zero() {
        cx.err(
            c.steps.last().map(|s| s.referenced),
            format!("{PATH}.steps"),
            format!(
                "the steps last {}, longer than the load schedule ({}): a step with no load cannot be judged",
                format_duration(total),
                format_duration(schedule_end)
            ),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::scenario::parse_str;
    use crate::scenario::{OnFailure, Subset};

    const BASE: &str = "name: t\nworkflow:\n  - name: s\n    request: { method: GET, path: /health }\nload:\n  arrival: constant\n  stages: [{ for: 60s, rate: 5 }]\n";
    const CANARY: &str = "canary:\n  stable: { version: v1 }\n  canary: { version: v2, local: { failure_rate: 3%, latency_factor: 1.5 } }\n  header: { canary-user: \"true\" }\n  steps:\n    - { weight: 10, for: 10s }\n    - { weight: 50, for: 20s }\n  analysis:\n    - { name: canary errors, metric: failure_rate, max: 1% }\n";

    fn errors_of(text: &str) -> String {
        match parse_str(text, Path::new("s.yaml")) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_canary_section_is_read() {
        let text = format!(
            "{BASE}{CANARY}slos:\n  - {{ name: c, metric: latency.p95, max: 1s, subset: canary }}\n"
        );
        let s = parse_str(&text, Path::new("s.yaml")).unwrap();
        let c = s.canary.unwrap();
        assert_eq!(c.versions, ["v1".to_string(), "v2".to_string()]);
        assert_eq!(c.subset_of("v2"), Some(Subset::Canary));
        assert_eq!(c.local[1].fail_ratio, Some(0.03));
        assert_eq!(c.local[1].latency_factor, 1.5);
        assert!(c.local[0].autoscale && !c.local[1].autoscale);
        assert_eq!(c.header[0].0.as_str(), "canary-user");
        assert_eq!(
            c.steps.iter().map(|s| s.weight).collect::<Vec<_>>(),
            [10, 50]
        );
        assert_eq!(c.end(), super::Duration::from_secs(30));
        assert_eq!(c.on_failure, OnFailure::Rollback);
        assert_eq!(c.line_col, Some((9, 3)), "the first line of the section");
        assert_eq!(s.slos[0].subset, Some(Subset::Canary));
    }

    #[test]
    fn bad_steps_are_located() {
        let text = format!(
            "{BASE}canary:\n  stable: {{ version: v1 }}\n  canary: {{ version: v2 }}\n  steps:\n    - {{ weight: 10, for: 10s }}\n    - {{ weight: 10, for: 10s }}\n    - {{ weight: 101, for: 10s }}\n    - {{ weight: 50 }}\n  analysis: [{{ name: e, metric: failure_rate, max: 1% }}]\n"
        );
        let e = errors_of(&text);
        assert!(
            e.contains("s.yaml:13:7: canary.steps[1].weight: 10 does not rise"),
            "{e}"
        );
        assert!(
            e.contains("s.yaml:14:7: canary.steps[2].weight: 101 is outside 0–100"),
            "{e}"
        );
        assert!(
            e.contains("s.yaml:15:7: canary.steps[3].for: the step has no `for`"),
            "{e}"
        );
        assert!(!e.contains("steps[3].weight"), "{e}");
    }

    #[test]
    fn unknown_subsets_and_unjudgeable_analyses_are_refused() {
        let e = errors_of(&format!(
            "{BASE}slos:\n  - {{ name: c, metric: failure_rate, max: 1%, subset: canary }}\n"
        ));
        assert!(
            e.contains("slos[0].subset: `subset` needs a `canary:` section"),
            "{e}"
        );
        let e = errors_of(&format!(
            "{BASE}{CANARY}slos:\n  - {{ name: c, metric: failure_rate, max: 1%, subset: blue }}\n"
        ));
        assert!(
            e.contains("s.yaml:18:5: slos[0].subset: unknown subset `blue`"),
            "{e}"
        );
        let e = errors_of(&format!(
            "{BASE}{CANARY}slos:\n  - {{ name: c, metric: dropped, max: 0, subset: canary }}\n"
        ));
        assert!(
            e.contains("slos[0].subset: a subset is known per workflow"),
            "{e}"
        );
        let e = errors_of(&format!(
            "{BASE}{CANARY}    - {{ name: r, metric: achieved_rate, min: 1 }}\n    - {{ name: w, metric: latency.p95, max: 1s, window: {{ stage: 1 }} }}\n"
        ));
        assert!(
            e.contains("canary.analysis[1].metric: an analysis SLO needs a per-workflow metric"),
            "{e}"
        );
        assert!(
            e.contains("canary.analysis[2]: an analysis SLO is judged over each step"),
            "{e}"
        );
        let e = errors_of(&format!(
            "{BASE}canary:\n  stable: {{ version: v1 }}\n  canary: {{ version: v1 }}\n  steps: [{{ weight: 10, for: 90s }}]\n  analysis: []\n"
        ));
        assert!(
            e.contains("canary.canary.version: both subsets are `version: v1`"),
            "{e}"
        );
        assert!(
            e.contains("canary.steps: the steps last 1m30s, longer than the load schedule (1m)"),
            "{e}"
        );
        assert!(
            e.contains("canary.analysis: a canary needs at least one analysis SLO"),
            "{e}"
        );
    }
}
