//! The plan: a validated scenario plus the run's options (time scale, seed,
//! environment), turned into the schedule and windows every later stage uses.

use std::time::Duration;

use crate::load::schedule::Schedule;
use crate::scenario::{Arrival, Canary, Scenario, SloSource, Subset, WindowRef};
use crate::stats::WindowSpec;

/// What a run will do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub scenario: Scenario,
    /// Multiplies every schedule duration (stages, fault windows, SLO windows).
    pub time_scale: f64,
    pub schedule: Schedule,
    /// Number of starts in the schedule.
    pub scheduled: u64,
    /// Values of `${env:NAME}`, in slot order. Secret: never printed.
    pub env_values: Vec<String>,
    /// Windows the recorder keeps: [0] whole run, then each stage, each fault, then SLO ranges.
    pub windows: Vec<WindowSpec>,
    /// For each SLO, the index of its window in `windows`.
    pub slo_windows: Vec<usize>,
    /// Fault windows in plan time, in scenario order.
    pub fault_windows: Vec<(Duration, Duration)>,
    /// Upper bound of one workflow's duration (all timeouts added up).
    pub max_workflow: Duration,
    /// The canary's steps in plan time, when the scenario has a `canary:` section.
    pub canary: Option<CanaryPlan>,
}

/// A canary rollout in plan time.
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryPlan {
    pub steps: Vec<PlannedStep>,
}

/// One canary step in plan time.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedStep {
    /// The canary's weight, percent.
    pub weight: u8,
    /// When the step starts and ends (its end is when it is judged), from the run's zero.
    pub from: Duration,
    pub to: Duration,
    /// The recorder's windows of the step's workflows served by each subset, indexed by
    /// `Subset::index`.
    pub windows: [usize; 2],
}

/// Options that shape the plan.
#[derive(Debug, Clone, Copy)]
pub struct PlanOptions {
    pub time_scale: f64,
    pub seed: Option<u64>,
}

impl Plan {
    /// Build the plan; errors name the flag or variable at fault.
    pub fn new(scenario: Scenario, opts: PlanOptions) -> Result<Plan, String> {
        let ts = opts.time_scale;
        if !(ts.is_finite() && ts > 0.0) {
            return Err(format!(
                "--time-scale {ts}: must be a positive number, e.g. 0.1 or 1"
            ));
        }
        let env_values = scenario
            .env_names
            .iter()
            .map(|name| {
                std::env::var(name).map_err(|_| {
                    format!(
                        "{}: the workflow uses ${{env:{name}}}, but the environment variable {name} is not set",
                        scenario.source.display()
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let seed = match scenario.load.arrival {
            Arrival::Constant => 0,
            Arrival::Poisson => opts.seed.or(scenario.load.seed).unwrap_or_else(fresh_seed),
        };
        let schedule = Schedule::new(scenario.load.arrival, seed, &scenario.load.stages, ts);
        let scheduled = schedule.iter().count() as u64;
        if scheduled == 0 {
            return Err(format!(
                "{}: with --time-scale {ts} the schedule has no workflow start; use a larger time scale",
                scenario.source.display()
            ));
        }
        let fault_windows: Vec<_> = scenario
            .faults
            .iter()
            .map(|f| (f.start.mul_f64(ts), (f.start + f.duration).mul_f64(ts)))
            .collect();
        let (mut windows, slo_windows) = windows(&scenario, &schedule, &fault_windows, ts);
        let canary = scenario
            .canary
            .as_ref()
            .map(|c| canary_plan(c, ts, &mut windows));
        let timeout = scenario.load.request_timeout;
        let max_workflow = scenario
            .workflow
            .iter()
            .map(|s| s.poll.as_ref().map_or(timeout, |p| p.timeout + timeout))
            .sum::<Duration>();
        Ok(Plan {
            scenario,
            time_scale: ts,
            schedule,
            scheduled,
            env_values,
            windows,
            slo_windows,
            fault_windows,
            max_workflow,
            canary,
        })
    }

    /// Whether any SLO needs Prometheus.
    pub fn needs_prometheus(&self) -> bool {
        self.scenario
            .slos
            .iter()
            .any(|s| matches!(s.source, SloSource::PromQl(_) | SloSource::Alert(_)))
    }
}

/// A seed for a Poisson schedule when none is given; it is recorded in run.json.
/// The recorder's windows (the run, each stage, each fault, then each distinct time
/// range an SLO names) and, per SLO, the index of its window.
fn windows(
    scenario: &Scenario,
    schedule: &Schedule,
    fault_windows: &[(Duration, Duration)],
    ts: f64,
) -> (Vec<WindowSpec>, Vec<usize>) {
    let scale = |d: Duration| d.mul_f64(ts);
    let us = |d: Duration| d.as_micros() as u64;
    let end = schedule.duration();
    let mut windows = vec![WindowSpec {
        label: "run".into(),
        from_us: 0,
        to_us: us(end),
        subset: None,
    }];
    for (i, seg) in schedule.segments.iter().enumerate() {
        let name = scenario.load.stages[i]
            .name
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        windows.push(WindowSpec {
            label: format!("stage {}{name}", i + 1),
            from_us: (seg.start_s * 1e6) as u64,
            to_us: ((seg.start_s + seg.duration_s) * 1e6) as u64,
            subset: None,
        });
    }
    for (f, (from, to)) in scenario.faults.iter().zip(fault_windows) {
        windows.push(WindowSpec {
            label: format!("fault {}", f.name),
            from_us: us(*from),
            to_us: us(*to),
            subset: None,
        });
    }
    let mut slo_windows = Vec::new();
    for slo in &scenario.slos {
        let idx = match &slo.window {
            WindowRef::Run => 0,
            WindowRef::Stage(i) => 1 + i,
            WindowRef::Fault(i) => 1 + schedule.segments.len() + i,
            WindowRef::Range { from, to } => {
                let spec = WindowSpec {
                    label: format!(
                        "{}–{}",
                        crate::units::format_duration(scale(*from)),
                        crate::units::format_duration(to.map_or(end, scale))
                    ),
                    from_us: us(scale(*from)),
                    to_us: us(to.map_or(end, scale)),
                    subset: None,
                };
                match windows.iter().position(|w| *w == spec) {
                    Some(i) => i,
                    None => {
                        windows.push(spec);
                        windows.len() - 1
                    }
                }
            }
        };
        let idx = match slo.subset {
            None => idx,
            Some(subset) => {
                let spec = WindowSpec {
                    label: format!("{}, {}", windows[idx].label, subset.as_str()),
                    subset: Some(subset),
                    ..windows[idx].clone()
                };
                position_or_push(&mut windows, spec)
            }
        };
        slo_windows.push(idx);
    }
    (windows, slo_windows)
}

fn position_or_push(windows: &mut Vec<WindowSpec>, spec: WindowSpec) -> usize {
    match windows.iter().position(|w| *w == spec) {
        Some(i) => i,
        None => {
            windows.push(spec);
            windows.len() - 1
        }
    }
}

/// The canary's steps one after another from the run's zero, each with a window per
/// subset added to `windows`.
fn canary_plan(canary: &Canary, ts: f64, windows: &mut Vec<WindowSpec>) -> CanaryPlan {
    let mut at = Duration::ZERO;
    let mut steps = Vec::new();
    for (i, step) in canary.steps.iter().enumerate() {
        let from = at;
        let to = at + step.duration.mul_f64(ts);
        at = to;
        let window = |subset: Subset| WindowSpec {
            label: format!(
                "canary step {} ({} %), {}",
                i + 1,
                step.weight,
                subset.as_str()
            ),
            from_us: from.as_micros() as u64,
            to_us: to.as_micros() as u64,
            subset: Some(subset),
        };
        steps.push(PlannedStep {
            weight: step.weight,
            from,
            to,
            windows: Subset::ALL.map(|s| position_or_push(windows, window(s))),
        });
    }
    CanaryPlan { steps }
}

fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // Mix so that close clock values give unrelated seeds (splitmix64 finaliser).
    let mut z = nanos ^ u64::from(std::process::id()).rotate_left(32);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
