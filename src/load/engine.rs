//! The open-model executor: starts each workflow at its intended time whatever
//! the responses do, counts a start as dropped when `max_in_flight` workflows
//! are running, and sends every outcome to the recorder over a channel.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::schedule::Schedule;
use crate::stats::record::{Event, Outcome, WorkflowRecord};
use crate::workflow::WorkflowRunner;

/// Counters the engine keeps for the progress line (read-only elsewhere).
#[derive(Debug, Default)]
pub struct Live {
    pub started: AtomicU64,
    pub dropped: AtomicU64,
    pub in_flight: AtomicU64,
}

/// How the run is stopped early.
#[derive(Clone, Default)]
pub struct Control {
    /// No new starts (first interrupt).
    pub stop_starts: CancellationToken,
    /// In-flight workflows are abandoned (grace period over, or a second interrupt).
    pub abandon: CancellationToken,
}

/// How the schedule ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issued {
    /// Every start in the schedule was issued or dropped.
    All,
    /// Stopped early by an interrupt.
    Stopped,
}

/// Drive the schedule from `zero`. Returns once every start has been issued
/// (or dropped); workflows still in flight keep the channel open until they end.
///
/// Pacing runs on a dedicated OS thread with `std::thread::sleep`, which wakes
/// within tens of microseconds; the runtime's timer wheel has a 1 ms tick and
/// would add up to a millisecond of schedule lag to every start.
pub async fn drive(
    schedule: &Schedule,
    max_in_flight: u64,
    runner: Arc<WorkflowRunner>,
    tx: UnboundedSender<Event>,
    live: Arc<Live>,
    control: Control,
    zero: Instant,
) -> Issued {
    let handle = tokio::runtime::Handle::current();
    let schedule = schedule.clone();
    let pacer = std::thread::Builder::new()
        .name("slo-check-pacer".into())
        .spawn(move || {
            pace(
                &schedule,
                max_in_flight,
                &runner,
                &tx,
                &live,
                &control,
                zero,
                &handle,
            )
        });
    let Ok(pacer) = pacer else {
        return Issued::Stopped;
    };
    // Wait for the pacer without blocking a runtime thread.
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(pacer.join().unwrap_or(Issued::Stopped));
    });
    done_rx.await.unwrap_or(Issued::Stopped)
}

/// Sleep until `deadline` in slices, so a stop request is seen within 10 ms.
fn sleep_until(deadline: std::time::Instant, stop: &tokio_util::sync::CancellationToken) -> bool {
    const SLICE: Duration = Duration::from_millis(10);
    loop {
        if stop.is_cancelled() {
            return false;
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return true;
        }
        std::thread::sleep((deadline - now).min(SLICE));
    }
}

#[allow(clippy::too_many_arguments)]
fn pace(
    schedule: &Schedule,
    max_in_flight: u64,
    runner: &Arc<WorkflowRunner>,
    tx: &UnboundedSender<Event>,
    live: &Arc<Live>,
    control: &Control,
    zero: Instant,
    handle: &tokio::runtime::Handle,
) -> Issued {
    let zero_std = zero.into_std();
    for (seq, offset_s) in schedule.iter().enumerate() {
        let offset = Duration::from_secs_f64(offset_s);
        if !sleep_until(zero_std + offset, &control.stop_starts) {
            return Issued::Stopped;
        }
        let intended = zero + offset;
        if live.in_flight.load(Ordering::Relaxed) >= max_in_flight {
            live.dropped.fetch_add(1, Ordering::Relaxed);
            let _ = tx.send(Event::Dropped {
                intended_us: offset.as_micros() as u64,
            });
            continue;
        }
        live.in_flight.fetch_add(1, Ordering::Relaxed);
        live.started.fetch_add(1, Ordering::Relaxed);
        let (runner, tx, live, abandon) = (
            runner.clone(),
            tx.clone(),
            live.clone(),
            control.abandon.clone(),
        );
        handle.spawn(async move {
            let record = tokio::select! {
                biased;
                r = runner.run(seq as u64, zero, intended) => r,
                _ = abandon.cancelled() => abandoned(seq as u64, zero, intended),
            };
            let _ = tx.send(Event::Workflow(record));
            live.in_flight.fetch_sub(1, Ordering::Relaxed);
        });
    }
    Issued::All
}

fn abandoned(seq: u64, zero: Instant, intended: Instant) -> WorkflowRecord {
    let us = |t: Instant| t.saturating_duration_since(zero).as_micros() as u64;
    WorkflowRecord {
        seq,
        intended_us: us(intended),
        lag_us: 0,
        end_us: us(Instant::now()),
        outcome: Outcome::Abandoned,
        steps: Vec::new(),
    }
}
