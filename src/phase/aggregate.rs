//! The one owner of the recorder: it files the workers' records into the histograms,
//! updates the progress line and feeds the live metrics, on a thread of its own behind
//! the load workers.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::time::Instant;

use crate::load::engine::Live;
use crate::plan::Plan;
use crate::report::terminal::{Progress, Snapshot};
use crate::stats::record::Event;
use crate::stats::{Recorder, RunStats, WindowStats};

/// How much lower than the load workers the recorder's thread runs (`nice`).
const RECORDER_NICE: libc::c_int = 10;

/// Run the recorder on a thread of its own, at a lower priority than the load
/// workers: where they share a core, the scheduler then lets a worker issue its
/// starts before the recorder files the last batch of records (a few hundred
/// at a time, and a compressed histogram per second), rather than preempting
/// it with hundreds of microseconds of lag. Records wait in the channel
/// meanwhile.
pub(super) fn behind_the_load<T, F>(aggregate: F) -> impl std::future::Future<Output = T>
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + Send + 'static,
{
    fn take<F>(slot: &std::sync::Mutex<Option<F>>) -> Option<F> {
        slot.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let slot = Arc::new(std::sync::Mutex::new(Some(aggregate)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build();
    let on_thread = runtime.ok().and_then(|rt| {
        let theirs = slot.clone();
        std::thread::Builder::new()
            .name("slo-check-recorder".into())
            .spawn(move || {
                // SAFETY: plain syscall; on Linux `who = 0` is the calling thread
                // only. Lowering one's own priority needs no privilege; a failure
                // leaves it where it was.
                unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, RECORDER_NICE) };
                if let Some(aggregate) = take(&theirs) {
                    let _ = tx.send(rt.block_on(aggregate));
                }
            })
            .ok()
    });
    // No runtime or no thread: a task on the current runtime.
    let fallback = match on_thread {
        Some(_) => None,
        None => take(&slot).map(tokio::spawn),
    };
    async move {
        match fallback {
            Some(task) => task.await.expect("the aggregator does not panic"),
            None => rx.await.expect("the recorder's thread does not panic"),
        }
    }
}

/// What the recorder's owner keeps up to date besides the recorder.
pub(super) struct Consumers {
    pub progress: Progress,
    /// The live metrics (`--metrics-listen`, `--remote-write`), when exported.
    pub metrics: Option<crate::live::Feed>,
    /// A distributed run's generators (empty otherwise), for both.
    pub board: super::remote::Board,
}

/// The one owner of the recorder: consumes events until every workflow has
/// ended, updating the progress line and publishing the live metrics on a tick.
pub(super) async fn aggregate(
    mut rx: UnboundedReceiver<Vec<Event>>,
    mut rec: Recorder,
    zero: Instant,
    consumers: Consumers,
    live: Arc<Live>,
    plan: Plan,
    canary: Option<StepFeed>,
) -> RunStats {
    // Canary steps are judged at their ends: the windows as they are then go out.
    let (ends, feed): (Vec<(Instant, [usize; 2])>, _) = match canary {
        Some(feed) => (
            feed.steps
                .iter()
                .map(|(to, windows)| (zero + *to, *windows))
                .collect(),
            Some(feed.tx),
        ),
        None => (Vec::new(), None),
    };
    let mut next_step = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut started_history: std::collections::VecDeque<(Instant, u64)> = Default::default();
    let total = plan.schedule.duration();
    let Consumers {
        progress,
        mut metrics,
        board,
    } = consumers;
    let generators = || board.lock().map(|b| b.clone()).unwrap_or_default();
    let live_now = |elapsed: Duration| crate::live::Now {
        started: live.started.load(Ordering::Relaxed),
        dropped: live.dropped.load(Ordering::Relaxed),
        in_flight: live.in_flight.load(Ordering::Relaxed),
        target_rate_per_s: if elapsed < total {
            plan.schedule.rate_at(elapsed.as_secs_f64())
        } else {
            0.0
        },
        generators: generators(),
    };
    fn file(rec: &mut Recorder, metrics: &mut Option<crate::live::Feed>, batch: Vec<Event>) {
        for ev in &batch {
            rec.add(ev);
            if let Some(m) = metrics.as_mut() {
                m.add(ev);
            }
        }
    }
    loop {
        tokio::select! {
            biased;
            _ = tick.tick() => {
                let now = Instant::now();
                let elapsed = now.saturating_duration_since(zero);
                rec.seal_before(elapsed.as_micros() as u64);
                let started = live.started.load(Ordering::Relaxed);
                started_history.push_back((now, started));
                while started_history.len() > 6 {
                    started_history.pop_front();
                }
                let rate = match (started_history.front(), started_history.back()) {
                    (Some((t0, s0)), Some((t1, s1))) if t1 > t0 => (s1 - s0) as f64 / (*t1 - *t0).as_secs_f64(),
                    _ => 0.0,
                };
                if let Some(m) = &metrics {
                    m.publish(live_now(elapsed));
                }
                let run = rec.run_window();
                progress.update(&Snapshot {
                    elapsed,
                    total,
                    target_rate_per_s: plan.schedule.rate_at(elapsed.as_secs_f64()),
                    achieved_rate_per_s: rate,
                    in_flight: live.in_flight.load(Ordering::Relaxed),
                    p95_ms: crate::stats::histogram::percentile_ms(&run.workflow, 95.0),
                    failed: run.counts.failed,
                    finished: run.counts.succeeded + run.counts.failed,
                    dropped: live.dropped.load(Ordering::Relaxed),
                    draining: elapsed > total,
                    generators: generators(),
                });
            }
            _ = step_end(ends.get(next_step).map(|e| e.0)) => {
                // File what has arrived by the step's end before judging it.
                while let Ok(batch) = rx.try_recv() {
                    file(&mut rec, &mut metrics, batch);
                }
                let windows = ends[next_step].1;
                if let Some(tx) = &feed {
                    let _ = tx.send(StepSnapshot {
                        step: next_step,
                        subsets: windows.map(|w| rec.window(w).clone()),
                    });
                }
                next_step += 1;
            }
            ev = rx.recv() => match ev {
                Some(batch) => file(&mut rec, &mut metrics, batch),
                None => break,
            },
        }
    }
    // Every workflow ended before the last steps did (short workflows end before the
    // schedule does): those steps end within the schedule, so they are judged at their
    // ends, on everything there is. A step that would end after the schedule is not.
    while let Some((at, windows)) = ends.get(next_step).copied() {
        if at > zero + total {
            break;
        }
        tokio::time::sleep_until(at).await;
        if let Some(tx) = &feed {
            let _ = tx.send(StepSnapshot {
                step: next_step,
                subsets: windows.map(|w| rec.window(w).clone()),
            });
        }
        next_step += 1;
    }
    // Every workflow has ended: the final values.
    if let Some(m) = &metrics {
        m.publish(live_now(Instant::now().saturating_duration_since(zero)));
    }
    progress.finish();
    rec.finish()
}

/// What the aggregator sends the canary controller: at each step's end, the step's
/// windows as they are then.
pub(super) struct StepFeed {
    /// Each step's end (plan time) and its windows per subset.
    pub steps: Vec<(Duration, [usize; 2])>,
    pub tx: UnboundedSender<StepSnapshot>,
}

/// One step's windows at its end, indexed by `Subset::index`.
pub(super) struct StepSnapshot {
    pub step: usize,
    pub subsets: [WindowStats; 2],
}

async fn step_end(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nice() -> libc::c_int {
        // SAFETY: plain syscall about the calling thread.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
    }

    #[tokio::test]
    async fn the_recorder_runs_on_a_thread_of_its_own_behind_the_load() {
        let here = nice();
        let (name, there) = behind_the_load(async {
            let name = std::thread::current().name().map(str::to_string);
            (name, nice())
        })
        .await;
        assert_eq!(name.as_deref(), Some("slo-check-recorder"));
        assert_eq!(there, (here + RECORDER_NICE).min(19));
        assert_eq!(nice(), here, "the caller's thread keeps its priority");
    }
}
