//! The replica's CPU capacity: a FIFO queue in front of `ceil(cores)` servers, the work
//! done on them (simulated, or burnt on real threads), and the sliding-window utilisation
//! ratio it produces.
//!
//! Simulated model (exact, so tests and the autoscaler can reason about it): a replica with
//! `cores` cores has `k = ceil(cores)` servers, each running at speed `cores / k`. A
//! workflow's CPU work `w` (core-time) therefore holds one server for `w * k / cores` of
//! wall time, and total capacity is exactly `cores` core-seconds per second. Waiting for a
//! server is FIFO (tokio's semaphore is fair), so past capacity work queues and workflow
//! latency grows.
//!
//! Burn mode: the same `k` servers and FIFO queue, but a server is a blocking-pool thread
//! that spins until *its own* CPU time (`CLOCK_THREAD_CPUTIME_ID`) has grown by `w`. Thread
//! CPU time, not wall time, so a workflow costs `w` of real CPU however the thread is
//! descheduled or throttled by a cgroup limit (it then just takes longer), and
//! metrics-server sees `w` per workflow. The real capacity is whatever the container gets.
//!
//! Utilisation over the window `W` = busy server-time in the window / (k × min(W, uptime));
//! in simulated mode that equals core-time done / (cores × elapsed). It lies in 0..=1.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

/// How a workflow's CPU work is done (`--cpu-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CpuMode {
    /// Hold a server of the emulated capacity and sleep: no real CPU is used.
    #[default]
    Simulated,
    /// Spin a real thread until it has used the work's CPU time.
    Burn,
}

/// The CPU capacity of one replica.
#[derive(Debug)]
pub struct CpuModel {
    mode: CpuMode,
    servers: Arc<Semaphore>,
    server_count: usize,
    /// Wall time one unit of core-time holds a server in simulated mode: `k / cores`.
    hold_per_core_s: f64,
    busy: Arc<BusyLog>,
}

/// Busy intervals `[start, end)` of the servers, for the utilisation ratio.
#[derive(Debug)]
struct BusyLog {
    window: Duration,
    started: Instant,
    /// In end order: a simulated hold is recorded when it begins (its end is known then,
    /// so in-progress work counts up to "now"), a burn when it ends. Entries ending before
    /// the window are pruned; at most `k × window / hold + k` remain.
    intervals: Mutex<VecDeque<(Instant, Instant)>>,
}

impl CpuModel {
    pub fn new(cores: f64, window: Duration, mode: CpuMode) -> Self {
        let server_count = cores.ceil().max(1.0) as usize;
        Self {
            mode,
            servers: Arc::new(Semaphore::new(server_count)),
            server_count,
            hold_per_core_s: server_count as f64 / cores,
            busy: Arc::new(BusyLog {
                window,
                started: Instant::now(),
                intervals: Mutex::new(VecDeque::new()),
            }),
        }
    }

    /// Wall time `work` (core-time) holds one server in simulated mode.
    pub fn hold_time(&self, work: Duration) -> Duration {
        Duration::from_secs_f64(work.as_secs_f64() * self.hold_per_core_s)
    }

    /// Waits in FIFO order for a server, then does `work` on it (see the module doc).
    pub async fn run(&self, work: Duration) {
        if work.is_zero() {
            return;
        }
        let Ok(permit) = self.servers.clone().acquire_owned().await else {
            return; // never closed
        };
        match self.mode {
            CpuMode::Simulated => {
                let hold = self.hold_time(work);
                let now = self.busy.record(hold);
                tokio::time::sleep_until(now + hold).await;
            }
            CpuMode::Burn => {
                let busy = self.busy.clone();
                // The permit and the recording move into the thread: a workflow cancelled
                // while its burn runs (shutdown) still frees its server only once the burn
                // is over, and the burn still counts as busy time.
                let burn = tokio::task::spawn_blocking(move || {
                    let start = Instant::now();
                    burn_thread_cpu(work);
                    busy.record_done(start);
                    drop(permit);
                });
                let _ = burn.await;
            }
        }
    }

    /// Utilisation ratio (0..=1) over the sliding window ending now.
    pub fn utilisation(&self) -> f64 {
        self.busy.utilisation(self.server_count)
    }
}

impl BusyLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Instant, Instant)>> {
        self.intervals.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a hold of `hold` starting now; returns that "now".
    fn record(&self, hold: Duration) -> Instant {
        let mut busy = self.lock();
        // `now` is taken under the lock so starts (and, with equal holds, ends) stay ordered.
        let now = Instant::now();
        busy.push_back((now, now + hold));
        self.prune(&mut busy, now);
        now
    }

    /// Records a busy interval from `start` that ends now.
    fn record_done(&self, start: Instant) {
        let mut busy = self.lock();
        let now = Instant::now();
        busy.push_back((start, now));
        self.prune(&mut busy, now);
    }

    fn prune(&self, busy: &mut VecDeque<(Instant, Instant)>, now: Instant) {
        let horizon = now.checked_sub(self.window).unwrap_or(self.started);
        while busy.front().is_some_and(|&(_, end)| end <= horizon) {
            busy.pop_front();
        }
    }

    fn utilisation(&self, server_count: usize) -> f64 {
        let now = Instant::now();
        let window_start = now.checked_sub(self.window).unwrap_or(self.started);
        let window_start = window_start.max(self.started);
        let elapsed_s = (now - window_start).as_secs_f64();
        if elapsed_s <= 0.0 {
            return 0.0;
        }
        let busy_s: f64 = self
            .lock()
            .iter()
            .map(|&(start, end)| {
                let start = start.max(window_start);
                let end = end.min(now);
                end.saturating_duration_since(start).as_secs_f64()
            })
            .sum();
        (busy_s / (server_count as f64 * elapsed_s)).min(1.0)
    }
}

/// CPU time used by the calling thread so far.
#[cfg(unix)]
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant of the platform.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Spins the calling thread until it has used `work` of CPU time (unix), or for `work` of
/// wall time where thread CPU time is not available.
fn burn_thread_cpu(work: Duration) {
    #[cfg(unix)]
    let (start, elapsed) = (thread_cpu_time(), |start: Duration| {
        thread_cpu_time().saturating_sub(start)
    });
    #[cfg(not(unix))]
    let (start, elapsed) = (std::time::Instant::now(), |start: std::time::Instant| {
        start.elapsed()
    });
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while elapsed(start) < work {
        // A few microseconds of arithmetic between clock reads (each read is a system call).
        for i in 0..2_000u64 {
            x = std::hint::black_box(x.rotate_left(5) ^ i).wrapping_mul(0x0100_0000_01B3);
        }
    }
    std::hint::black_box(x);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractional_cores_slow_a_single_server() {
        let half = CpuModel::new(0.5, Duration::from_secs(15), CpuMode::Simulated);
        assert_eq!(half.server_count, 1);
        assert_eq!(
            half.hold_time(Duration::from_millis(20)),
            Duration::from_millis(40)
        );
        let two_and_half = CpuModel::new(2.5, Duration::from_secs(15), CpuMode::Simulated);
        assert_eq!(two_and_half.server_count, 3);
        assert_eq!(
            two_and_half.hold_time(Duration::from_millis(25)),
            Duration::from_millis(30)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn saturated_replica_is_fully_utilised_and_queues() {
        let cpu = Arc::new(CpuModel::new(
            0.5,
            Duration::from_secs(10),
            CpuMode::Simulated,
        ));
        let start = Instant::now();
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let cpu = cpu.clone();
                tokio::spawn(async move {
                    cpu.run(Duration::from_millis(100)).await;
                    Instant::now() - start
                })
            })
            .collect();
        let mut done = Vec::new();
        for t in tasks {
            done.push(t.await.unwrap());
        }
        // One server, 200 ms each: FIFO completions at 200 ms, 400 ms, ... 2 s.
        done.sort();
        assert_eq!(done[0], Duration::from_millis(200));
        assert_eq!(done[9], Duration::from_secs(2));
        let u = cpu.utilisation();
        assert!((u - 1.0).abs() < 1e-6, "utilisation {u}");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let u = cpu.utilisation();
        assert!((u - 0.5).abs() < 1e-6, "half the elapsed 4 s was busy: {u}");
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(cpu.utilisation(), 0.0);
    }

    #[cfg(unix)]
    #[test]
    fn a_burn_uses_at_least_its_thread_cpu_time() {
        let before = thread_cpu_time();
        burn_thread_cpu(Duration::from_millis(30));
        assert!(thread_cpu_time() - before >= Duration::from_millis(30));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn burns_queue_on_the_pool_and_show_as_utilisation() {
        let cpu = Arc::new(CpuModel::new(1.0, Duration::from_secs(10), CpuMode::Burn));
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let cpu = cpu.clone();
                tokio::spawn(async move { cpu.run(Duration::from_millis(20)).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(cpu.busy.lock().len(), 3);
        // One server: the three burns ran one after another, never overlapping.
        let spans: Vec<_> = cpu.busy.lock().iter().copied().collect();
        for pair in spans.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "overlapping burns {spans:?}");
        }
        assert!(cpu.utilisation() > 0.0);
    }
}
