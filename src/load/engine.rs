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
pub async fn drive(
    schedule: &Schedule,
    max_in_flight: u64,
    runner: Arc<WorkflowRunner>,
    tx: UnboundedSender<Event>,
    live: Arc<Live>,
    control: Control,
    zero: Instant,
) -> Issued {
    for (seq, offset_s) in schedule.iter().enumerate() {
        let intended = zero + Duration::from_secs_f64(offset_s);
        if intended > Instant::now() {
            tokio::select! {
                biased;
                _ = control.stop_starts.cancelled() => return Issued::Stopped,
                _ = tokio::time::sleep_until(intended) => {}
            }
        } else if control.stop_starts.is_cancelled() {
            return Issued::Stopped;
        }
        if live.in_flight.load(Ordering::Relaxed) >= max_in_flight {
            live.dropped.fetch_add(1, Ordering::Relaxed);
            let intended_us = intended.duration_since(zero).as_micros() as u64;
            let _ = tx.send(Event::Dropped { intended_us });
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
        tokio::spawn(async move {
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
