//! The fault timeline: applies each scenario fault at its window's start and
//! reverts it at its end, or as soon as the load stops; every applied fault is
//! reverted, on every path.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::platform::FaultInjector;
use crate::scenario::Fault;

/// Run the timeline; returns log lines for the terminal. `stop` ends it early
/// (schedule over, or interrupted); active faults are then reverted.
pub async fn run_timeline(
    injector: Option<Arc<dyn FaultInjector>>,
    faults: Vec<Fault>,
    windows: Vec<(Duration, Duration)>,
    zero: Instant,
    stop: CancellationToken,
) -> Vec<String> {
    let mut log = Vec::new();
    let Some(injector) = injector else {
        if !faults.is_empty() {
            log.push(format!(
                "warning: this platform cannot inject faults; {} fault(s) in the scenario were not applied",
                faults.len()
            ));
        }
        return log;
    };
    // Events in time order: (time, fault index, apply?)
    let mut events: Vec<(Duration, usize, bool)> = Vec::new();
    for (i, (from, to)) in windows.iter().enumerate() {
        events.push((*from, i, true));
        events.push((*to, i, false));
    }
    events.sort_by_key(|e| (e.0, e.2));
    let mut active = vec![false; faults.len()];
    for (at, i, apply) in events {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(zero + at) => {}
        }
        let f = &faults[i];
        if apply {
            match injector.apply(f).await {
                Ok(()) => active[i] = true,
                Err(e) => log.push(format!(
                    "error: fault `{}` could not be applied: {e:#}",
                    f.name
                )),
            }
        } else if active[i] {
            revert(&*injector, f, &mut log).await;
            active[i] = false;
        }
    }
    for (i, on) in active.iter().enumerate() {
        if *on {
            revert(&*injector, &faults[i], &mut log).await;
        }
    }
    log
}

async fn revert(injector: &dyn FaultInjector, f: &Fault, log: &mut Vec<String>) {
    // A revert is retried: leaving a fault in place is worse than a slow exit.
    for attempt in 1..=3 {
        match injector.revert(f).await {
            Ok(()) => return,
            Err(e) if attempt == 3 => log.push(format!(
                "error: fault `{}` could not be reverted after 3 attempts: {e:#}",
                f.name
            )),
            Err(_) => tokio::time::sleep(Duration::from_millis(200 * attempt)).await,
        }
    }
}
