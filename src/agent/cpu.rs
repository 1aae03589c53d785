//! The replica's CPU capacity: a FIFO queue in front of `ceil(cores)` servers, and the
//! sliding-window utilisation ratio it produces.
//!
//! Model (exact, so tests and the autoscaler can reason about it): a replica with `cores`
//! cores has `k = ceil(cores)` servers, each running at speed `cores / k`. A workflow's CPU
//! work `w` (core-time) therefore holds one server for `w * k / cores` of wall time, and
//! total capacity is exactly `cores` core-seconds per second. Waiting for a server is FIFO
//! (tokio's semaphore is fair), so past capacity work queues and workflow latency grows.
//!
//! Utilisation over the window `W` = busy server-time in the window / (k × min(W, uptime)),
//! which equals core-time done / (cores × elapsed); it lies in 0..=1.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

/// The CPU capacity of one replica.
#[derive(Debug)]
pub struct CpuModel {
    servers: Arc<Semaphore>,
    server_count: usize,
    /// Wall time one unit of core-time holds a server: `k / cores`.
    hold_per_core_s: f64,
    window: Duration,
    started: Instant,
    /// Hold intervals `[start, end)` in start order. Each is recorded when its hold begins
    /// (its end is known then), so in-progress work counts up to "now". Entries ending
    /// before the window are pruned; at most `k × window / hold + k` remain.
    busy: Mutex<VecDeque<(Instant, Instant)>>,
}

impl CpuModel {
    pub fn new(cores: f64, window: Duration) -> Self {
        let server_count = cores.ceil().max(1.0) as usize;
        Self {
            servers: Arc::new(Semaphore::new(server_count)),
            server_count,
            hold_per_core_s: server_count as f64 / cores,
            window,
            started: Instant::now(),
            busy: Mutex::new(VecDeque::new()),
        }
    }

    /// Wall time `work` (core-time) holds one server.
    pub fn hold_time(&self, work: Duration) -> Duration {
        Duration::from_secs_f64(work.as_secs_f64() * self.hold_per_core_s)
    }

    /// Waits in FIFO order for a server, then holds it for `hold_time(work)`.
    pub async fn run(&self, work: Duration) {
        if work.is_zero() {
            return;
        }
        let hold = self.hold_time(work);
        let Ok(_permit) = self.servers.acquire().await else {
            return; // never closed
        };
        self.record(hold);
        tokio::time::sleep(hold).await;
    }

    fn record(&self, hold: Duration) {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        // `now` is taken under the lock so starts (and, with equal holds, ends) stay ordered.
        let now = Instant::now();
        busy.push_back((now, now + hold));
        let horizon = now.checked_sub(self.window).unwrap_or(self.started);
        while busy.front().is_some_and(|&(_, end)| end <= horizon) {
            busy.pop_front();
        }
    }

    /// Utilisation ratio (0..=1) over the sliding window ending now.
    pub fn utilisation(&self) -> f64 {
        let now = Instant::now();
        let window_start = now.checked_sub(self.window).unwrap_or(self.started);
        let window_start = window_start.max(self.started);
        let elapsed_s = (now - window_start).as_secs_f64();
        if elapsed_s <= 0.0 {
            return 0.0;
        }
        let busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        let busy_s: f64 = busy
            .iter()
            .map(|&(start, end)| {
                let start = start.max(window_start);
                let end = end.min(now);
                end.saturating_duration_since(start).as_secs_f64()
            })
            .sum();
        busy_s / (self.server_count as f64 * elapsed_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractional_cores_slow_a_single_server() {
        let half = CpuModel::new(0.5, Duration::from_secs(15));
        assert_eq!(half.server_count, 1);
        assert_eq!(
            half.hold_time(Duration::from_millis(20)),
            Duration::from_millis(40)
        );
        let two_and_half = CpuModel::new(2.5, Duration::from_secs(15));
        assert_eq!(two_and_half.server_count, 3);
        assert_eq!(
            two_and_half.hold_time(Duration::from_millis(25)),
            Duration::from_millis(30)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn saturated_replica_is_fully_utilised_and_queues() {
        let cpu = Arc::new(CpuModel::new(0.5, Duration::from_secs(10)));
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
}
