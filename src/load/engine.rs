//! The open-model executor: starts each workflow at its intended time whatever
//! the responses do, counts a start as dropped when `max_in_flight` workflows
//! are running, and sends every outcome to the recorder over a channel.
//!
//! Layout: one worker per usable core (the process's CPU affinity), each an OS
//! thread with its own current-thread runtime, its own connection pool and
//! every n-th start of the schedule. A worker paces its starts with a timerfd
//! in its own event loop (`timer.rs`), so pacing costs no thread switch; its
//! workflows are futures polled by the pacing task itself (no task each); and
//! it hands records to the recorder in batches every few milliseconds rather
//! than waking it once per workflow.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::schedule::{Schedule, Shard};
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
    /// The starts this engine issues (`Shard::WHOLE` but for a distributed run's
    /// generators).
    pub shard: Shard,
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
        // The worker's workflows are polled by this one task, not a task each:
        // no spawn, task list or scheduler round per workflow. Unconstrained:
        // tokio's per-task budget would make the hundreds of workflows this task
        // drives yield to each other; the pacer yields by itself when behind.
        tokio::task::unconstrained(async {
            let mut running = FuturesUnordered::new();
            let launch = |seq: u64, intended: Instant, issued: Instant| InFlight {
                seq,
                intended,
                run: worker.runner.run(seq, shared.zero, intended, issued),
            };
            let issued = pace(w, shared, &worker, &mut running, launch).await;
            let _ = done.send(issued);
            drain(shared, &worker, &mut running).await;
        })
        .await;
        flusher.abort();
        worker.batch.flush();
    });
}

pin_project_lite::pin_project! {
    /// One workflow in flight, with what its record needs if it is abandoned.
    struct InFlight<F> {
        seq: u64,
        intended: Instant,
        #[pin]
        run: F,
    }
}

impl<F: Future<Output = WorkflowRecord>> Future for InFlight<F> {
    type Output = WorkflowRecord;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<WorkflowRecord> {
        self.project().run.poll(cx)
    }
}

type Running<F> = FuturesUnordered<InFlight<F>>;

/// Poll the workflows that can make progress; record those that end.
fn step_running<F>(running: &mut Running<F>, worker: &Worker, cx: &mut Context<'_>) -> Poll<()>
where
    F: Future<Output = WorkflowRecord>,
{
    loop {
        match running.poll_next_unpin(cx) {
            Poll::Ready(Some(record)) => worker.finish(record),
            Poll::Ready(None) => return Poll::Ready(()),
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// Sleep until `until` on the worker's timer while its workflows run.
async fn sleep_running<F>(
    timer: Option<&PreciseTimer>,
    until: std::time::Instant,
    running: &mut Running<F>,
    worker: &Worker,
) where
    F: Future<Output = WorkflowRecord>,
{
    let precise = async {
        match timer {
            Some(t) if t.sleep_until(until).await.is_ok() => {}
            _ => tokio::time::sleep_until(until.into()).await,
        }
    };
    let mut precise = std::pin::pin!(precise);
    std::future::poll_fn(|cx| {
        let _ = step_running(running, worker, cx);
        precise.as_mut().poll(cx)
    })
    .await
}

/// Issue the worker's starts of its shard (w, w + n, w + 2n, … of the whole schedule for
/// n workers) on time.
async fn pace<F, L>(
    w: usize,
    shared: &Shared,
    worker: &Worker,
    running: &mut Running<F>,
    launch: L,
) -> Issued
where
    F: Future<Output = WorkflowRecord>,
    L: Fn(u64, Instant, Instant) -> InFlight<F>,
{
    let timer = PreciseTimer::new().ok();
    let zero_std = shared.zero.into_std();
    let stop = &shared.control.stop_starts;
    let mut back_to_back = 0u32;
    let slack = shared.pacing.slack;
    let mut last_wake = std::time::Instant::now();
    let (skip, step) = shared.pacing.shard.worker_starts(w, shared.workers);
    let starts = shared.schedule.iter().enumerate().skip(skip);
    for (seq, offset_s) in starts.step_by(step) {
        let offset = Duration::from_secs_f64(offset_s);
        let due = zero_std + offset;
        let now = loop {
            let now = std::time::Instant::now();
            if now >= due {
                break now;
            }
            back_to_back = 0;
            // Starts closer together than the slack share a wake-up: each costs the
            // worker a trip through the scheduler, which at tens of thousands a
            // second is most of its CPU. Never earlier than due; the lag is recorded.
            let until = due.max(last_wake + slack).min(now + STOP_CHECK);
            sleep_running(timer.as_ref(), until, running, worker).await;
            last_wake = std::time::Instant::now();
            if stop.is_cancelled() {
                return Issued::Stopped;
            }
        };
        back_to_back += 1;
        if back_to_back >= STARTS_PER_YIELD {
            // Behind schedule: let the started workflows and the sockets run too.
            back_to_back = 0;
            if stop.is_cancelled() {
                return Issued::Stopped;
            }
            std::future::poll_fn(|cx| {
                let _ = step_running(running, worker, cx);
                Poll::Ready(())
            })
            .await;
            tokio::task::yield_now().await;
        }
        if admit(offset, shared, worker) {
            running.push(launch(seq as u64, shared.zero + offset, now.into()));
        }
    }
    Issued::All
}

/// Whether a start may be issued: counted as started, or, with `max_in_flight`
/// workflows running, as dropped.
fn admit(offset: Duration, shared: &Shared, worker: &Worker) -> bool {
    let live = &worker.live;
    if live.in_flight.load(Ordering::Relaxed) >= shared.pacing.max_in_flight {
        live.dropped.fetch_add(1, Ordering::Relaxed);
        worker.batch.push(Event::Dropped {
            intended_us: offset.as_micros() as u64,
        });
        return false;
    }
    live.in_flight.fetch_add(1, Ordering::Relaxed);
    live.started.fetch_add(1, Ordering::Relaxed);
    true
}

/// Run the worker's workflows to their end, or record those still running as
/// abandoned once the run's abandon token is cancelled.
async fn drain<F>(shared: &Shared, worker: &Worker, running: &mut Running<F>)
where
    F: Future<Output = WorkflowRecord>,
{
    let mut abandon = std::pin::pin!(worker.abandon.cancelled());
    let abandoned = std::future::poll_fn(|cx| match step_running(running, worker, cx) {
        Poll::Ready(()) => Poll::Ready(false),
        Poll::Pending => abandon.as_mut().poll(cx).map(|()| true),
    })
    .await;
    if abandoned {
        for f in Pin::new(&*running).iter_pin_ref() {
            let f = f.get_ref();
            worker.finish(abandoned_record(f.seq, shared.zero, f.intended));
        }
        running.clear();
    }
}

impl Worker {
    /// A workflow ended (or was abandoned): hand its record on.
    fn finish(&self, record: WorkflowRecord) {
        self.batch.push(Event::Workflow(record));
        self.live.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

fn abandoned_record(seq: u64, zero: Instant, intended: Instant) -> WorkflowRecord {
    let us = |t: Instant| t.saturating_duration_since(zero).as_micros() as u64;
    WorkflowRecord {
        seq,
        intended_us: us(intended),
        lag_us: 0,
        end_us: us(Instant::now()),
        outcome: Outcome::Abandoned,
        steps: Vec::new(),
        subset: None,
    }
}
