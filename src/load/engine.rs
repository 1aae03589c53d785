//! The open-model executor: starts each workflow at its intended time whatever
//! the responses do, counts a start as dropped when `max_in_flight` workflows
//! are running, and sends every outcome to the recorder over a channel.
//!
//! Layout: one worker per usable core (the process's CPU affinity), each an OS
//! thread with its own current-thread runtime, its own connection pool and
//! every n-th start of the schedule. A worker paces its starts with a timerfd
//! in its own event loop (`timer.rs`), so pacing costs no thread switch, and
//! hands records to the recorder in batches every few milliseconds rather
//! than waking it once per workflow.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::schedule::Schedule;
use super::timer::PreciseTimer;
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

/// How often a worker hands its records to the recorder.
const FLUSH_EVERY: Duration = Duration::from_millis(10);
/// A worker hands its records over at once past this many.
const FLUSH_AT: usize = 4096;
/// A pacer asleep until a far start still looks at the stop token this often.
const STOP_CHECK: Duration = Duration::from_millis(10);
/// Starts issued back to back (the worker is behind) before it lets workflows run.
const STARTS_PER_YIELD: u32 = 64;

/// How the engine paces and bounds the load (from the scenario's `load`).
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// A start beyond this many workflows in flight is dropped.
    pub max_in_flight: u64,
    /// While starts come faster than this, a worker wakes once per this long and
    /// issues every start due by then.
    pub slack: Duration,
}

/// What one run's workers share.
struct Shared {
    schedule: Schedule,
    pacing: Pacing,
    live: Arc<Live>,
    control: Control,
    zero: Instant,
    workers: usize,
}

/// One worker's state, shared by its pacer and its workflows (all on one thread).
struct Worker {
    runner: WorkflowRunner,
    batch: Batch,
    live: Arc<Live>,
    abandon: CancellationToken,
}

/// Records waiting to be handed to the recorder.
struct Batch {
    events: Mutex<Vec<Event>>,
    tx: UnboundedSender<Vec<Event>>,
}

impl Batch {
    fn push(&self, event: Event) {
        let full = {
            let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
            events.push(event);
            events.len() >= FLUSH_AT
        };
        if full {
            self.flush();
        }
    }

    fn flush(&self) {
        let events = std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()));
        if !events.is_empty() {
            let _ = self.tx.send(events);
        }
    }
}

/// How many workers: one per core this process may run on.
fn worker_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Drive the schedule from `zero`. Returns once every start has been issued
/// (or dropped); workflows still in flight keep the channel open until they end.
pub async fn drive(
    schedule: &Schedule,
    pacing: Pacing,
    runner: Arc<WorkflowRunner>,
    tx: UnboundedSender<Vec<Event>>,
    live: Arc<Live>,
    control: Control,
    zero: Instant,
) -> Issued {
    let workers = worker_count();
    let shared = Arc::new(Shared {
        schedule: schedule.clone(),
        pacing,
        live,
        control,
        zero,
        workers,
    });
    let mut issued = Vec::with_capacity(workers);
    for w in 0..workers {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let worker = Worker {
            runner: runner.for_worker(workers),
            batch: Batch {
                events: Mutex::new(Vec::new()),
                tx: tx.clone(),
            },
            live: shared.live.clone(),
            // A token of the worker's own: waiting on it locks nothing another worker uses.
            abandon: shared.control.abandon.child_token(),
        };
        let for_thread = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("slo-check-load-{w}"))
            .spawn(move || run_worker(w, &for_thread, worker, done_tx));
        if spawned.is_err() {
            shared.control.stop_starts.cancel();
        }
        issued.push(done_rx);
    }
    let mut all = Issued::All;
    for done in issued {
        if done.await.unwrap_or(Issued::Stopped) == Issued::Stopped {
            all = Issued::Stopped;
        }
    }
    all
}

/// One worker thread: pace its share of the schedule, then wait for its
/// workflows to end. `done` is told how the schedule ended as soon as it has.
fn run_worker(
    w: usize,
    shared: &Shared,
    worker: Worker,
    done: tokio::sync::oneshot::Sender<Issued>,
) {
    // I/O and timers only: no signal or process driver to look at on every turn.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start a load worker's runtime: {e}");
            let _ = done.send(Issued::Stopped);
            return;
        }
    };
    rt.block_on(async move {
        let worker = Arc::new(worker);
        let tracker = TaskTracker::new();
        let flusher = {
            let worker = worker.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(FLUSH_EVERY);
                loop {
                    tick.tick().await;
                    worker.batch.flush();
                }
            })
        };
        let issued = pace(w, shared, &worker, &tracker).await;
        let _ = done.send(issued);
        tracker.close();
        tracker.wait().await;
        flusher.abort();
        worker.batch.flush();
    });
}

/// Issue starts w, w + n, w + 2n, … of the schedule on time.
async fn pace(w: usize, shared: &Shared, worker: &Arc<Worker>, tracker: &TaskTracker) -> Issued {
    let timer = PreciseTimer::new().ok();
    let zero_std = shared.zero.into_std();
    let stop = &shared.control.stop_starts;
    let mut back_to_back = 0u32;
    let slack = shared.pacing.slack;
    let mut last_wake = std::time::Instant::now();
    let starts = shared.schedule.iter().enumerate().skip(w);
    for (seq, offset_s) in starts.step_by(shared.workers) {
        let offset = Duration::from_secs_f64(offset_s);
        let due = zero_std + offset;
        loop {
            if stop.is_cancelled() {
                return Issued::Stopped;
            }
            let now = std::time::Instant::now();
            if now >= due {
                break;
            }
            back_to_back = 0;
            // Starts closer together than the slack share a wake-up: each costs the
            // worker a trip through the scheduler, which at tens of thousands a
            // second is most of its CPU. Never earlier than due; the lag is recorded.
            let until = due.max(last_wake + slack).min(now + STOP_CHECK);
            let slept = match &timer {
                Some(t) => t.sleep_until(until).await.is_ok(),
                None => false,
            };
            if !slept {
                tokio::time::sleep_until(until.into()).await;
            }
            last_wake = std::time::Instant::now();
        }
        back_to_back += 1;
        if back_to_back >= STARTS_PER_YIELD {
            // Behind schedule: let the started workflows and the sockets run too.
            back_to_back = 0;
            tokio::task::yield_now().await;
        }
        start(seq as u64, offset, shared, worker, tracker);
    }
    Issued::All
}

/// Issue one start, or count it as dropped.
fn start(seq: u64, offset: Duration, shared: &Shared, worker: &Arc<Worker>, tracker: &TaskTracker) {
    let live = &worker.live;
    if live.in_flight.load(Ordering::Relaxed) >= shared.pacing.max_in_flight {
        live.dropped.fetch_add(1, Ordering::Relaxed);
        worker.batch.push(Event::Dropped {
            intended_us: offset.as_micros() as u64,
        });
        return;
    }
    live.in_flight.fetch_add(1, Ordering::Relaxed);
    live.started.fetch_add(1, Ordering::Relaxed);
    let (zero, intended) = (shared.zero, shared.zero + offset);
    let worker = worker.clone();
    tracker.spawn(async move {
        let record = tokio::select! {
            biased;
            r = worker.runner.run(seq, zero, intended) => r,
            _ = worker.abandon.cancelled() => abandoned(seq, zero, intended),
        };
        worker.batch.push(Event::Workflow(record));
        worker.live.in_flight.fetch_sub(1, Ordering::Relaxed);
    });
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
