//! One simulated agent workflow: its CPU work on the replica's capacity, then its LLM and
//! tool calls (lognormal latencies), ending `completed` or `failed`.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::config::AgentConfig;
use super::state::{ActiveSlot, AgentState};
use super::store::{WorkflowStatus, WorkflowView};

/// What one workflow will do, drawn up front from its own seeded generator.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WorkflowPlan {
    /// LLM and tool call latencies in execution order (LLM, tool, LLM, tool, ..., rest).
    pub steps: Vec<Duration>,
    /// When set, the workflow fails after this many steps.
    pub fail_after_steps: Option<usize>,
}

/// SplitMix64 finaliser: spreads `seed + seq` so neighbouring workflows draw independently.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The plan of the workflow with submission number `seq`; a pure function of the seed,
/// so a fixed `--seed` gives the same workflows whatever the interleaving of requests.
pub(crate) fn plan(config: &AgentConfig, seq: u64) -> WorkflowPlan {
    let mut rng = SmallRng::seed_from_u64(mix(config.seed ^ mix(seq)));
    let (llm, tool) = (config.llm_calls as usize, config.tool_calls as usize);
    let mut steps = Vec::with_capacity(llm + tool);
    for i in 0..llm.max(tool) {
        if i < llm {
            steps.push(config.llm_latency.sample(&mut rng));
        }
        if i < tool {
            steps.push(config.tool_latency.sample(&mut rng));
        }
    }
    let fail_after_steps = (config.fail_ratio > 0.0 && rng.random::<f64>() < config.fail_ratio)
        .then(|| rng.random_range(0..=steps.len()));
    WorkflowPlan {
        steps,
        fail_after_steps,
    }
}

/// Runs the workflow held by `slot` to its end (or until the replica stops), recording
/// its progress in the store and its outcome in the metrics. `view` is its running view,
/// already in the store; this task is its only writer.
pub(crate) async fn run(state: Arc<AgentState>, slot: ActiveSlot, mut view: WorkflowView) {
    let started = Instant::now();
    let plan = plan(&state.config, slot.seq);
    let outcome = tokio::select! {
        status = execute(&state, &mut view, &plan) => Some(status),
        () = state.stopped() => None,
    };
    let duration = started.elapsed();
    // Interrupted by shutdown: failed in the store, but not an outcome of the workflow, so
    // not counted.
    view.status = outcome.unwrap_or(WorkflowStatus::Failed);
    view.duration_ms = Some(duration.as_millis() as u64);
    if let Some(status) = outcome {
        state.metrics.observe_workflow(
            &view.workflow_type,
            status.as_str(),
            duration.as_secs_f64(),
        );
    }
    // A write that fails (Redis down) loses this update only; the store reports itself
    // unavailable and GETs answer 503 meanwhile.
    let _ = state.store.put(&view).await;
    drop(slot);
}

async fn execute(
    state: &AgentState,
    view: &mut WorkflowView,
    plan: &WorkflowPlan,
) -> WorkflowStatus {
    state.cpu.run(state.config.cpu_per_workflow).await;
    for (done, latency) in plan.steps.iter().enumerate() {
        if plan.fail_after_steps == Some(done) {
            return WorkflowStatus::Failed;
        }
        tokio::time::sleep(*latency).await;
        view.steps_done += 1;
        let _ = state.store.put(view).await;
    }
    if plan.fail_after_steps.is_some() {
        WorkflowStatus::Failed
    } else {
        WorkflowStatus::Completed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(fail_ratio: f64) -> AgentConfig {
        AgentConfig {
            seed: 42,
            fail_ratio,
            llm_calls: 3,
            tool_calls: 1,
            ..AgentConfig::default()
        }
    }

    #[test]
    fn plans_are_repeatable_and_distinct_per_workflow() {
        let c = config(0.0);
        assert_eq!(plan(&c, 1), plan(&c, 1));
        assert_ne!(plan(&c, 1), plan(&c, 2));
        assert_eq!(plan(&c, 1).steps.len(), 4);
        assert_eq!(plan(&c, 1).fail_after_steps, None);
    }

    #[test]
    fn fail_ratio_fails_about_that_share() {
        let c = config(0.25);
        let failed = (0..4000)
            .filter(|&seq| plan(&c, seq).fail_after_steps.is_some())
            .count();
        assert!((800..1200).contains(&failed), "{failed} of 4000 failed");
        let all = config(1.0);
        assert!((0..100).all(|seq| plan(&all, seq).fail_after_steps.is_some()));
    }
}
