//! The canary section of a report: what the canary controller did (its input types,
//! filled by `phase`), turned into run.json's `canary` (per step: weight, window,
//! verdict, each subset's figures) and rendered as the per-step table of summary.md
//! and the terminal.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::scenario::{Subset, Unit};
use crate::slo::SloResult;
use crate::stats::histogram::percentile_ms;
use crate::stats::{RunStats, WindowStats};

use super::format;

/// What the canary controller did during the load.
#[derive(Debug, Clone, Default)]
pub struct CanaryActivity {
    /// Every weight the platform took, in order.
    pub weights: Vec<WeightChange>,
    /// The judged steps, in order.
    pub judged: Vec<Judgement>,
    pub outcome: CanaryOutcome,
    /// Weight changes the platform refused, one message each.
    pub errors: Vec<String>,
}

/// The canary's weight from `at_s` on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WeightChange {
    /// When the platform took it, seconds after the run's zero.
    pub at_s: f64,
    /// The canary's share of the weighted traffic, percent.
    pub weight: u8,
}

/// One step's analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// 0-based step index.
    pub step: usize,
    /// When it was judged, seconds after the run's zero.
    pub at_s: f64,
    /// Each analysis SLO over the canary's workflows of the step that had ended by then.
    pub results: Vec<SloResult>,
}

impl Judgement {
    pub fn passed(&self) -> bool {
        self.results.iter().all(SloResult::holds)
    }
}

/// How the rollout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CanaryOutcome {
    /// Every step was judged; with `on_failure: rollback`, every one passed.
    Promoted,
    /// A step failed and the canary's weight went to 0.
    RolledBack,
    /// The run ended (interrupted) before every step was judged.
    #[default]
    Incomplete,
}

/// run.json `canary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanaryReport {
    /// The `version` labels of the subsets.
    pub versions: SubsetPair<String>,
    /// `rollback` or `continue`.
    pub on_failure: crate::scenario::OnFailure,
    pub steps: Vec<StepReport>,
    /// `promoted`, `rolled_back` or `incomplete`.
    pub outcome: CanaryOutcome,
    /// With `rolled_back`: the step (1-based) whose analysis failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back_at_step: Option<usize>,
    /// Why the rollout ended as it did, in a sentence.
    pub reason: String,
    /// Every weight the platform took (seconds after the run's zero).
    pub weights: Vec<WeightChange>,
    /// Workflows served by each subset per second of intended start.
    pub served_per_second: Vec<SubsetPair<u64>>,
    /// Weight changes the platform refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// A value per subset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubsetPair<T> {
    pub stable: T,
    pub canary: T,
}

impl<T> SubsetPair<T> {
    pub fn get(&self, s: Subset) -> &T {
        match s {
            Subset::Stable => &self.stable,
            Subset::Canary => &self.canary,
        }
    }
}

/// One step of the rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// The canary's planned weight, percent.
    pub weight: u8,
    /// The step's window, seconds after the run's zero.
    pub from_s: f64,
    pub to_s: f64,
    /// `pass`, `fail`, `skipped` (after a rollback) or `not_judged` (the run ended first).
    pub verdict: StepVerdict,
    /// When the step was judged, seconds after the run's zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judged_at_s: Option<f64>,
    /// The analysis SLOs as judged at the step's end (canary workflows of the step that
    /// had ended by then).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub analysis: Vec<SloResult>,
    /// Every workflow started in the step, by the subset that served it (final figures).
    pub subsets: SubsetPair<SubsetFigures>,
}

/// A step's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepVerdict {
    Pass,
    Fail,
    Skipped,
    NotJudged,
}

impl StepVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            StepVerdict::Pass => "PASS",
            StepVerdict::Fail => "FAIL",
            StepVerdict::Skipped => "skipped",
            StepVerdict::NotJudged => "not judged",
        }
    }
}

/// One subset's workflows of a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubsetFigures {
    /// Workflows it served that finished (succeeded or failed).
    pub workflows: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// failed / workflows; null without workflows.
    pub failure_rate: Option<f64>,
    /// p95 latency of its succeeded workflows, ms.
    pub p95_ms: Option<f64>,
    /// Its share of the step's attributed workflows; null without any.
    pub share: Option<f64>,
}

impl SubsetFigures {
    fn of(w: &WindowStats, attributed: u64) -> SubsetFigures {
        let c = &w.counts;
        let workflows = c.succeeded + c.failed;
        SubsetFigures {
            workflows,
            succeeded: c.succeeded,
            failed: c.failed,
            failure_rate: c.failure_rate(),
            p95_ms: percentile_ms(&w.workflow, 95.0),
            share: (attributed > 0).then(|| workflows as f64 / attributed as f64),
        }
    }
}

impl CanaryReport {
    /// The report of `activity` over the plan's steps; `None` without a canary.
    pub fn build(plan: &Plan, stats: &RunStats, activity: &CanaryActivity) -> Option<Self> {
        let canary = plan.scenario.canary.as_ref()?;
        let steps_plan = plan.canary.as_ref()?;
        let rolled_back = activity
            .judged
            .iter()
            .find(|j| !j.passed())
            .map(|j| j.step)
            .filter(|_| activity.outcome == CanaryOutcome::RolledBack);
        let steps = steps_plan
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let judged = activity.judged.iter().find(|j| j.step == i);
                let verdict = match judged {
                    Some(j) if j.passed() => StepVerdict::Pass,
                    Some(_) => StepVerdict::Fail,
                    None if rolled_back.is_some_and(|r| i > r) => StepVerdict::Skipped,
                    None => StepVerdict::NotJudged,
                };
                let windows = s.windows.map(|w| &stats.windows[w]);
                let attributed: u64 = windows
                    .iter()
                    .map(|w| w.counts.succeeded + w.counts.failed)
                    .sum();
                StepReport {
                    weight: s.weight,
                    from_s: s.from.as_secs_f64(),
                    to_s: s.to.as_secs_f64(),
                    verdict,
                    judged_at_s: judged.map(|j| j.at_s),
                    analysis: judged.map(|j| j.results.clone()).unwrap_or_default(),
                    subsets: SubsetPair {
                        stable: SubsetFigures::of(windows[0], attributed),
                        canary: SubsetFigures::of(windows[1], attributed),
                    },
                }
            })
            .collect::<Vec<_>>();
        let reason = reason(&steps, activity.outcome, rolled_back);
        Some(CanaryReport {
            versions: SubsetPair {
                stable: canary.versions[0].clone(),
                canary: canary.versions[1].clone(),
            },
            on_failure: canary.on_failure,
            steps,
            outcome: activity.outcome,
            rolled_back_at_step: rolled_back.map(|i| i + 1),
            reason,
            weights: activity.weights.clone(),
            served_per_second: stats
                .seconds
                .iter()
                .map(|s| SubsetPair {
                    stable: s.served[0],
                    canary: s.served[1],
                })
                .collect(),
            errors: activity.errors.clone(),
        })
    }

    /// Whether the rollout lets the run pass: promoted, with no failed step.
    pub fn holds(&self) -> bool {
        self.outcome == CanaryOutcome::Promoted
            && self.steps.iter().all(|s| s.verdict != StepVerdict::Fail)
    }

    /// `promoted`, `rolled back at step 2 (25 %)`, ...
    pub fn outcome_line(&self) -> String {
        let what = match (self.outcome, self.rolled_back_at_step) {
            (CanaryOutcome::Promoted, _) => format!(
                "promoted to {} %",
                self.steps.last().map_or(0, |s| s.weight)
            ),
            (CanaryOutcome::RolledBack, Some(n)) => format!(
                "rolled_back at step {n} ({} %)",
                self.steps.get(n - 1).map_or(0, |s| s.weight)
            ),
            (CanaryOutcome::RolledBack, None) => "rolled_back".into(),
            (CanaryOutcome::Incomplete, _) => "incomplete".into(),
        };
        format!("canary {what}: {}", self.reason)
    }

    /// The per-step table's header.
    pub const HEAD: [&'static str; 9] = [
        "step",
        "weight",
        "window",
        "canary p95",
        "stable p95",
        "canary failures",
        "stable failures",
        "canary share",
        "verdict",
    ];

    /// The per-step table's rows, cells as people read them.
    pub fn rows(&self) -> Vec<[String; 9]> {
        self.steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let rate = |f: &SubsetFigures| {
                    f.failure_rate.map_or_else(
                        || "-".into(),
                        |r| {
                            format!(
                                "{} ({}/{})",
                                format::value(r, Unit::Ratio),
                                f.failed,
                                f.workflows
                            )
                        },
                    )
                };
                [
                    (i + 1).to_string(),
                    format!("{} %", s.weight),
                    format!("{:.1}s–{:.1}s", s.from_s, s.to_s),
                    format::ms(s.subsets.canary.p95_ms),
                    format::ms(s.subsets.stable.p95_ms),
                    rate(&s.subsets.canary),
                    rate(&s.subsets.stable),
                    s.subsets
                        .canary
                        .share
                        .map_or_else(|| "-".into(), |v| format::value(v, Unit::Ratio)),
                    s.verdict.as_str().into(),
                ]
            })
            .collect()
    }

    /// The per-step table, in Markdown (`md`) or aligned plain text.
    pub fn table(&self, md: bool) -> String {
        let head = Self::HEAD;
        let rows = self.rows();
        let mut out = String::new();
        if md {
            let _ = writeln!(out, "| {} |", head.join(" | "));
            let _ = writeln!(out, "|{}", "---|".repeat(head.len()));
            for r in &rows {
                let _ = writeln!(out, "| {} |", r.join(" | "));
            }
            return out;
        }
        let widths: Vec<usize> = (0..head.len())
            .map(|c| {
                rows.iter()
                    .map(|r| r[c].chars().count())
                    .chain([head[c].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: Vec<&str>| {
            let mut l = String::new();
            for (c, cell) in cells.iter().enumerate() {
                let pad = widths[c] - cell.chars().count();
                l.push_str(cell);
                if c + 1 < cells.len() {
                    l.push_str(&" ".repeat(pad + 2));
                }
            }
            l
        };
        let _ = writeln!(out, "{}", line(head.to_vec()));
        for r in &rows {
            let _ = writeln!(out, "{}", line(r.iter().map(String::as_str).collect()));
        }
        out
    }
}

/// Why the rollout ended as it did: the failed analyses of the step that stopped it.
fn reason(steps: &[StepReport], outcome: CanaryOutcome, rolled_back: Option<usize>) -> String {
    let failed = |s: &StepReport| {
        s.analysis
            .iter()
            .filter(|r| !r.holds())
            .map(|r| {
                format!(
                    "{} {} {} {}",
                    r.name,
                    format::observed(r),
                    if r.status == crate::slo::Status::Unknown {
                        "(no data), needs"
                    } else {
                        "against"
                    },
                    format::threshold(r)
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    match outcome {
        CanaryOutcome::RolledBack => {
            rolled_back
                .and_then(|i| steps.get(i))
                .map_or_else(String::new, |s| {
                    format!(
                        "step {} ({} %) failed its analysis: {}",
                        rolled_back.unwrap_or(0) + 1,
                        s.weight,
                        failed(s)
                    )
                })
        }
        CanaryOutcome::Promoted => {
            let bad: Vec<String> = steps
                .iter()
                .enumerate()
                .filter(|(_, s)| s.verdict == StepVerdict::Fail)
                .map(|(i, s)| format!("step {} failed ({})", i + 1, failed(s)))
                .collect();
            if bad.is_empty() {
                format!("all {} steps passed their analysis", steps.len())
            } else {
                format!("on_failure: continue went on although {}", bad.join(", "))
            }
        }
        CanaryOutcome::Incomplete => {
            let judged = steps
                .iter()
                .filter(|s| matches!(s.verdict, StepVerdict::Pass | StepVerdict::Fail))
                .count();
            format!(
                "the run ended after {judged} of {} steps were judged",
                steps.len()
            )
        }
    }
}
