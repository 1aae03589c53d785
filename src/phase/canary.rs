//! The canary controller of a load phase: sets the first step's weight before the load,
//! judges every step at its end on the analysis SLOs over the canary's workflows of the
//! step (the aggregator's snapshot then), and either moves to the next step's weight or,
//! when a step fails and `on_failure: rollback`, sets the canary's weight to 0 at once
//! and skips the rest. The platform restores its own routing when it goes down.

use std::sync::Arc;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

use super::aggregate::StepSnapshot;
use crate::plan::CanaryPlan;
use crate::report::canary::{CanaryActivity, CanaryOutcome, Judgement, WeightChange};
use crate::scenario::{Canary, OnFailure, Step, Subset};
use crate::slo;
use crate::target::TrafficSplit;

/// Everything the controller needs.
pub(super) struct Controller {
    pub split: Arc<dyn TrafficSplit>,
    pub canary: Canary,
    pub plan: CanaryPlan,
    pub workflow: Vec<Step>,
    pub zero: Instant,
}

impl Controller {
    fn now_s(&self) -> f64 {
        Instant::now()
            .checked_duration_since(self.zero)
            .map_or(0.0, |d| d.as_secs_f64())
    }

    async fn set(&self, activity: &mut CanaryActivity, weight: u8) {
        match self.split.set_canary_weight(weight).await {
            Ok(()) => activity.weights.push(WeightChange {
                at_s: self.now_s(),
                weight,
            }),
            Err(e) => activity.errors.push(format!(
                "error: could not set the canary's weight to {weight} % through {}: {e:#}",
                self.split.describe()
            )),
        }
    }

    /// Runs until every step is judged, the rollout is rolled back, or the aggregator
    /// ends (its sender dropped).
    pub async fn run(self, mut snapshots: UnboundedReceiver<StepSnapshot>) -> CanaryActivity {
        let mut activity = CanaryActivity::default();
        let Some(first) = self.plan.steps.first() else {
            return activity;
        };
        self.set(&mut activity, first.weight).await;
        while let Some(snapshot) = snapshots.recv().await {
            let canary = &snapshot.subsets[Subset::Canary.index()];
            let judgement = Judgement {
                step: snapshot.step,
                at_s: self.now_s(),
                results: self
                    .canary
                    .analysis
                    .iter()
                    .map(|s| slo::judge(s, canary, &self.workflow))
                    .collect(),
            };
            let passed = judgement.passed();
            activity.judged.push(judgement);
            let last = snapshot.step + 1 >= self.plan.steps.len();
            if !passed && self.canary.on_failure == OnFailure::Rollback {
                self.set(&mut activity, 0).await;
                activity.outcome = CanaryOutcome::RolledBack;
                return activity;
            }
            if last {
                activity.outcome = CanaryOutcome::Promoted;
                return activity;
            }
            self.set(&mut activity, self.plan.steps[snapshot.step + 1].weight)
                .await;
        }
        activity
    }
}
