//! The embedded HPA controller loop: every `SYNC_PERIOD × time_scale` of real time, read
//! the replicas as metrics-server would show them (`Pool::hpa_inputs`), reconcile in
//! scenario time (elapsed / time_scale, so stabilisation windows and policy periods
//! shrink with the time scale too), scale, and record a timeline sample.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};

use super::replicas::Replicas;
use crate::autoscale::hpa::{Autoscaler, SYNC_PERIOD};

/// Shortest real sync period, whatever the time scale.
const MIN_SYNC_PERIOD: Duration = Duration::from_millis(1);

/// Runs until `replicas.stop` is cancelled.
pub(super) async fn run(replicas: Arc<Replicas>, mut autoscaler: Autoscaler, time_scale: f64) {
    let period = SYNC_PERIOD.mul_f64(time_scale).max(MIN_SYNC_PERIOD);
    let started = Instant::now();
    let mut ticks = tokio::time::interval_at(started + period, period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = replicas.stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = started.elapsed().div_f64(time_scale);
        let pods = replicas.pool.hpa_inputs(replicas.metric_window());
        let decision = autoscaler.reconcile(now, pods.len() as u32, &pods);
        // A replica that cannot bind a port is not started; the next sync sees
        // fewer replicas than desired and tries again, as a controller would.
        let _ = replicas.scale_to(decision.desired_replicas).await;
    }
}
