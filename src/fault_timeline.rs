//! The fault timeline: applies each scenario fault at its window's start and
//! reverts it at its end, or as soon as the load stops; every applied fault is
//! reverted, on every path, and the timeline says when (run.json `faults[]`): when the
//! control plane took each change, and how long the data plane took to hold it where
//! the platform could look.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::scenario::Fault;
use crate::target::{DataPlane, FaultChange, FaultInjector};

/// Upper bound on one apply or revert call: an injector that hangs (a stuck API
/// server) must not hold the run, nor an interrupted exit, forever.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a failing revert is retried before giving up (with a log line saying so):
/// long enough for an API server that restarts inside a fault window to come back.
pub const REVERT_PATIENCE: Duration = Duration::from_secs(60);
/// The longest pause between two revert attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What happened to one fault, in real time after the run's zero.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultActivity {
    /// When the control plane accepted the fault (`FaultChange::accepted_at`); `None`:
    /// never applied (the load stopped first, the platform cannot inject, or applying
    /// failed).
    pub applied_at: Option<Duration>,
    /// When the control plane accepted the revert; `None` for a fault never applied,
    /// or one whose revert failed (the log says so).
    pub reverted_at: Option<Duration>,
    /// What the data plane did with the apply (`NotObserved` when never applied).
    pub applied_data_plane: DataPlane,
    /// What the data plane did with the revert (`NotObserved` when never reverted).
    pub reverted_data_plane: DataPlane,
}

/// The timeline's result: lines for the terminal and, per scenario fault (in
/// scenario order), what was applied and reverted.
#[derive(Debug, Clone, Default)]
pub struct TimelineOutcome {
    pub log: Vec<String>,
    pub activity: Vec<FaultActivity>,
}

impl TimelineOutcome {
    /// Faults applied and not confirmed reverted (should be none).
    pub fn left_active(&self) -> usize {
        self.activity
            .iter()
            .filter(|a| a.applied_at.is_some() && a.reverted_at.is_none())
            .count()
    }
}

/// Run the timeline. `stop` ends it early (schedule over, or interrupted);
/// active faults are then reverted before this returns.
pub async fn run_timeline(
    injector: Option<Arc<dyn FaultInjector>>,
    faults: Vec<Fault>,
    windows: Vec<(Duration, Duration)>,
    zero: Instant,
    stop: CancellationToken,
) -> TimelineOutcome {
    let mut out = TimelineOutcome {
        log: Vec::new(),
        activity: vec![FaultActivity::default(); faults.len()],
    };
    let mut touched = vec![false; faults.len()];
    let Some(injector) = injector else {
        if !faults.is_empty() {
            out.log.push(format!(
                "warning: this platform cannot inject faults; {} fault(s) in the scenario were not applied",
                faults.len()
            ));
        }
        return out;
    };
    // Events in time order: (time, fault index, apply?); at equal times reverts come first.
    let mut events: Vec<(Duration, usize, bool)> = Vec::new();
    for (i, (from, to)) in windows.iter().enumerate() {
        events.push((*from, i, true));
        events.push((*to, i, false));
    }
    events.sort_by_key(|e| (e.0, e.2));
    for (at, i, apply) in events {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(zero + at) => {}
        }
        let f = &faults[i];
        if apply {
            // Touched even when the call fails: a timed-out apply may still land
            // (a slow API server), so it is reverted like an applied one.
            touched[i] = true;
            match bounded(injector.apply(f)).await {
                Ok(change) => {
                    unseen_warning(&change.data_plane, "applied", f, &mut out.log);
                    let a = &mut out.activity[i];
                    a.applied_at = Some(change.accepted_at.saturating_duration_since(zero));
                    a.applied_data_plane = change.data_plane;
                }
                Err(e) => out.log.push(format!(
                    "error: fault `{}` could not be applied: {e:#}",
                    f.name
                )),
            }
        } else if touched[i] {
            // Not tried again below if it fails: it has had its patience, and the
            // platform's teardown makes the last attempt and names what is left.
            touched[i] = false;
            revert_into(&*injector, f, &mut out, i, zero).await;
        }
    }
    // Stopped early: revert whatever may still be on.
    for (i, f) in faults.iter().enumerate() {
        if touched[i] {
            revert_into(&*injector, f, &mut out, i, zero).await;
        }
    }
    out
}

/// Revert fault `i` and record when the control plane took it (for an applied fault).
/// True once the injector confirms.
async fn revert_into(
    injector: &dyn FaultInjector,
    f: &Fault,
    out: &mut TimelineOutcome,
    i: usize,
    zero: Instant,
) -> bool {
    let Some(change) = revert(injector, f, &mut out.log).await else {
        return false;
    };
    let a = &mut out.activity[i];
    if a.applied_at.is_some() {
        unseen_warning(&change.data_plane, "reverted", f, &mut out.log);
        a.reverted_at = Some(change.accepted_at.saturating_duration_since(zero));
        a.reverted_data_plane = change.data_plane;
    }
    true
}

/// A change the data plane did not show in time is said, with what it showed instead:
/// the fault's window in the reports starts at the control plane's acceptance.
fn unseen_warning(seen: &DataPlane, what: &str, f: &Fault, log: &mut Vec<String>) {
    if let DataPlane::NotSeenWithin {
        bound,
        seen_in,
        last,
    } = seen
    {
        log.push(format!(
            "warning: fault `{}` was {what} by the control plane, but the {seen_in} did not show it within {} ({last}); the reports time it from the control plane",
            f.name,
            crate::units::format_duration(*bound)
        ));
    }
}

/// An injector call under `CALL_TIMEOUT`.
async fn bounded(
    call: impl std::future::Future<Output = anyhow::Result<FaultChange>>,
) -> anyhow::Result<FaultChange> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(r) => r,
        Err(_) => Err(anyhow::anyhow!(
            "no answer within {}",
            crate::units::format_duration(CALL_TIMEOUT)
        )),
    }
}

/// Revert `f`, retried for up to `REVERT_PATIENCE` with growing pauses: leaving a
/// fault in place is worse than a slow exit. The change, once the injector confirms.
async fn revert(
    injector: &dyn FaultInjector,
    f: &Fault,
    log: &mut Vec<String>,
) -> Option<FaultChange> {
    let first = Instant::now();
    let mut pause = Duration::from_millis(200);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let e = match bounded(injector.revert(f)).await {
            Ok(change) => {
                if attempt > 1 {
                    log.push(format!(
                        "warning: fault `{}` was reverted {} late, at attempt {attempt}: it was in force that much longer than the scenario says",
                        f.name,
                        crate::units::format_duration(first.elapsed())
                    ));
                }
                return Some(change);
            }
            Err(e) => e,
        };
        if first.elapsed() + pause > REVERT_PATIENCE {
            log.push(format!(
                "error: fault `{}` could not be reverted within {} ({attempt} attempts): {e:#}",
                f.name,
                crate::units::format_duration(REVERT_PATIENCE)
            ));
            return None;
        }
        if attempt == 1 {
            // Said at once, not with the timeline's log at the end: the run may now wait.
            eprintln!(
                "warning: fault `{}` could not be reverted ({e:#}); retrying for up to {}",
                f.name,
                crate::units::format_duration(REVERT_PATIENCE)
            );
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::BoxFuture;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fault(name: &str, start_ms: u64, for_ms: u64) -> (Fault, (Duration, Duration)) {
        let start = Duration::from_millis(start_ms);
        let duration = Duration::from_millis(for_ms);
        let f = Fault {
            name: name.into(),
            start,
            duration,
            delay: None,
            abort: None,
        };
        (f, (start, start + duration))
    }

    /// Records calls; reverts fail `revert_failures` times first; `hang` never answers.
    #[derive(Default)]
    struct Fake {
        active: Mutex<Vec<String>>,
        revert_failures: AtomicU32,
        hang_revert: bool,
        /// The apply lands, but its answer never comes (a stuck API server).
        hang_apply: bool,
        reverts: AtomicU32,
        /// The control plane takes this long to accept a change.
        accept_ms: u64,
        /// The data plane holds a change this long after the control plane took it
        /// (`None`: nobody looks); past `bound_ms` it is `NotSeenWithin`.
        propagate_ms: Option<u64>,
        bound_ms: u64,
    }

    impl Fake {
        /// Accept after `accept_ms`, then watch the data plane as a platform would.
        async fn change(&self) -> FaultChange {
            tokio::time::sleep(Duration::from_millis(self.accept_ms)).await;
            let accepted_at = Instant::now();
            let Some(ms) = self.propagate_ms else {
                return FaultChange {
                    accepted_at,
                    data_plane: DataPlane::NotObserved,
                };
            };
            let seen_in = "fake proxy".to_string();
            let data_plane = if ms <= self.bound_ms {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                DataPlane::SeenAfter {
                    after: accepted_at.elapsed(),
                    seen_in,
                }
            } else {
                tokio::time::sleep(Duration::from_millis(self.bound_ms)).await;
                DataPlane::NotSeenWithin {
                    bound: Duration::from_millis(self.bound_ms),
                    seen_in,
                    last: "the old route".into(),
                }
            };
            FaultChange {
                accepted_at,
                data_plane,
            }
        }
    }

    impl FaultInjector for Fake {
        fn apply<'a>(&'a self, f: &'a Fault) -> BoxFuture<'a, anyhow::Result<FaultChange>> {
            Box::pin(async move {
                self.active.lock().unwrap().push(f.name.clone());
                if self.hang_apply {
                    std::future::pending::<()>().await;
                }
                Ok(self.change().await)
            })
        }
        fn revert<'a>(&'a self, f: &'a Fault) -> BoxFuture<'a, anyhow::Result<FaultChange>> {
            Box::pin(async move {
                self.reverts.fetch_add(1, Ordering::SeqCst);
                if self.hang_revert {
                    std::future::pending::<()>().await;
                }
                if self.revert_failures.load(Ordering::SeqCst) > 0 {
                    self.revert_failures.fetch_sub(1, Ordering::SeqCst);
                    anyhow::bail!("flaky");
                }
                self.active.lock().unwrap().retain(|n| *n != f.name);
                Ok(self.change().await)
            })
        }
    }

    async fn run(
        fake: Arc<Fake>,
        specs: &[(&str, u64, u64)],
        stop_after_ms: u64,
    ) -> TimelineOutcome {
        let (faults, windows): (Vec<_>, Vec<_>) =
            specs.iter().map(|(n, s, d)| fault(n, *s, *d)).unzip();
        let stop = CancellationToken::new();
        let zero = Instant::now();
        let stopper = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(stop_after_ms)).await;
            stopper.cancel();
        });
        run_timeline(Some(fake), faults, windows, zero, stop).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_inside_a_window_reverts_and_says_when() {
        let fake = Arc::new(Fake::default());
        let out = run(fake.clone(), &[("a", 100, 1000), ("later", 5000, 100)], 400).await;
        assert!(fake.active.lock().unwrap().is_empty());
        assert_eq!(out.activity[0].applied_at, Some(Duration::from_millis(100)));
        assert_eq!(
            out.activity[0].reverted_at,
            Some(Duration::from_millis(400))
        );
        assert_eq!(out.activity[1], FaultActivity::default());
        assert_eq!(out.left_active(), 0);
        assert!(out.log.is_empty(), "{:?}", out.log);
    }

    #[tokio::test(start_paused = true)]
    async fn windows_that_end_before_the_stop_revert_on_time() {
        let fake = Arc::new(Fake::default());
        let out = run(fake.clone(), &[("a", 0, 200), ("b", 200, 100)], 10_000).await;
        assert_eq!(
            out.activity[0].reverted_at,
            Some(Duration::from_millis(200))
        );
        assert_eq!(out.activity[1].applied_at, Some(Duration::from_millis(200)));
        assert_eq!(
            out.activity[1].reverted_at,
            Some(Duration::from_millis(300))
        );
        assert!(fake.active.lock().unwrap().is_empty());
    }

    /// An injector whose first `n` reverts fail.
    fn failing_reverts(n: u32) -> Arc<Fake> {
        Arc::new(Fake {
            revert_failures: AtomicU32::new(n),
            ..Fake::default()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_flaky_revert_is_retried() {
        let fake = failing_reverts(2);
        let out = run(fake.clone(), &[("a", 0, 1000)], 100).await;
        assert!(fake.active.lock().unwrap().is_empty());
        assert_eq!(out.left_active(), 0);
        // 100 ms, then 200 ms and 400 ms of back-off.
        assert_eq!(
            out.activity[0].reverted_at,
            Some(Duration::from_millis(700))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_shorter_than_the_patience_is_waited_out() {
        // A restarting API server refuses eight reverts: 0.2+0.4+0.8+1.6+3.2+5+5+5 s.
        let fake = failing_reverts(8);
        let out = run(fake.clone(), &[("a", 0, 1000)], 100).await;
        assert!(fake.active.lock().unwrap().is_empty());
        assert_eq!(out.left_active(), 0);
        assert_eq!(
            out.activity[0].reverted_at,
            Some(Duration::from_millis(100 + 21_200))
        );
        assert!(
            out.log[0].contains("reverted 21.2s late, at attempt 9"),
            "{:?}",
            out.log
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_revert_is_bounded_and_reported() {
        let fake = Arc::new(Fake {
            hang_revert: true,
            ..Fake::default()
        });
        let started = Instant::now();
        let out = run(fake, &[("a", 0, 1000)], 100).await;
        assert_eq!(out.left_active(), 1);
        assert_eq!(out.activity[0].reverted_at, None);
        assert!(
            out.log[0].contains("could not be reverted within 1m"),
            "{:?}",
            out.log
        );
        assert!(started.elapsed() <= Duration::from_millis(100) + REVERT_PATIENCE + CALL_TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_revert_that_ran_out_of_patience_is_not_retried_at_the_stop() {
        let fake = failing_reverts(u32::MAX);
        let started = Instant::now();
        let out = run(fake.clone(), &[("a", 0, 100)], 200_000).await;
        assert_eq!(out.left_active(), 1);
        let given_up = out.log.iter().filter(|l| l.contains("within 1m")).count();
        assert_eq!(given_up, 1, "{:?}", out.log);
        assert!(started.elapsed() <= Duration::from_millis(100) + REVERT_PATIENCE + MAX_BACKOFF);
        assert_eq!(fake.reverts.load(Ordering::SeqCst), 16);
    }

    #[tokio::test(start_paused = true)]
    async fn an_apply_that_times_out_is_still_reverted() {
        let fake = Arc::new(Fake {
            hang_apply: true,
            ..Fake::default()
        });
        let out = run(fake.clone(), &[("a", 0, 60_000)], 30_000).await;
        assert!(out.log[0].contains("could not be applied"), "{:?}", out.log);
        assert_eq!(out.activity[0], FaultActivity::default());
        assert_eq!(fake.reverts.load(Ordering::SeqCst), 1);
        assert!(fake.active.lock().unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_control_planes_acceptance_is_the_time_and_the_data_plane_its_delay() {
        let fake = Arc::new(Fake {
            accept_ms: 30,
            propagate_ms: Some(40),
            bound_ms: 5000,
            ..Fake::default()
        });
        let out = run(fake, &[("a", 100, 1000)], 10_000).await;
        let a = &out.activity[0];
        // Accepted 30 ms after the window opened; Envoy's 40 ms do not move it.
        assert_eq!(a.applied_at, Some(Duration::from_millis(130)));
        assert_eq!(a.reverted_at, Some(Duration::from_millis(1130)));
        let seen = DataPlane::SeenAfter {
            after: Duration::from_millis(40),
            seen_in: "fake proxy".into(),
        };
        assert_eq!(a.applied_data_plane, seen);
        assert_eq!(a.reverted_data_plane, seen);
        assert!(out.log.is_empty(), "{:?}", out.log);
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_the_data_plane_never_shows_is_said_and_kept_apart() {
        let fake = Arc::new(Fake {
            propagate_ms: Some(10_000),
            bound_ms: 5000,
            ..Fake::default()
        });
        let out = run(fake, &[("a", 0, 20_000)], 60_000).await;
        let a = &out.activity[0];
        assert_eq!(a.applied_at, Some(Duration::ZERO));
        // The revert came due 20 s in; the apply's 5 s of looking did not delay it.
        assert_eq!(a.reverted_at, Some(Duration::from_secs(20)));
        assert!(
            matches!(&a.applied_data_plane, DataPlane::NotSeenWithin { bound, .. } if *bound == Duration::from_secs(5)),
            "{a:?}"
        );
        assert_eq!(out.log.len(), 2, "{:?}", out.log);
        assert!(
            out.log[0].starts_with("warning: fault `a` was applied by the control plane, but the fake proxy did not show it within 5s (the old route)"),
            "{:?}",
            out.log
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_unobserved_platform_records_no_data_plane() {
        let fake = Arc::new(Fake::default());
        let out = run(fake, &[("a", 0, 100)], 1000).await;
        assert_eq!(out.activity[0].applied_data_plane, DataPlane::NotObserved);
        assert_eq!(out.activity[0].reverted_data_plane, DataPlane::NotObserved);
        assert_eq!(
            out.activity[0].reverted_at,
            Some(Duration::from_millis(100))
        );
    }
}
