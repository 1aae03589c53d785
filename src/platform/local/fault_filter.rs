//! Istio's HTTPFaultInjection on the embedded balancer: while a fault is applied, each
//! request is delayed with probability `delay.percent / 100` by `fixed_delay`, then
//! aborted with probability `abort.percent / 100` with `http_status`, as Envoy's fault
//! filter does (delay first, then abort). Several faults apply in the order they were
//! applied; the first abort ends the request. Delays are latencies: never time-scaled.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::pool::lock;
use crate::scenario::Fault;
use crate::target::{BoxFuture, FaultChange, FaultInjector};

/// What the fault filter does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct FaultDecision {
    /// Total injected delay before the request goes on (or is aborted).
    pub delay: Duration,
    /// Status to answer with instead of forwarding.
    pub abort: Option<u16>,
}

impl FaultDecision {
    /// Envoy's response flags for the decision: `DI` delayed, `FI` aborted, both joined
    /// by a comma, `None` when nothing was injected.
    pub fn flags(&self) -> Option<&'static str> {
        match (!self.delay.is_zero(), self.abort.is_some()) {
            (false, false) => None,
            (true, false) => Some("DI"),
            (false, true) => Some("FI"),
            (true, true) => Some("DI,FI"),
        }
    }
}

/// The faults applied to the embedded balancer now; implements `FaultInjector`.
#[derive(Debug)]
pub struct LocalFaults {
    /// Copy-on-write, so the request path only clones an `Arc`.
    active: RwLock<Arc<Vec<Fault>>>,
    rng: Mutex<SmallRng>,
    closed: AtomicBool,
}

impl LocalFaults {
    pub(super) fn new(seed: u64) -> Self {
        Self {
            active: RwLock::new(Arc::new(Vec::new())),
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
            closed: AtomicBool::new(false),
        }
    }

    /// Names of the faults applied now, in application order.
    pub fn active_names(&self) -> Vec<String> {
        self.snapshot().iter().map(|f| f.name.clone()).collect()
    }

    fn snapshot(&self) -> Arc<Vec<Fault>> {
        self.active
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn update(&self, f: impl FnOnce(&mut Vec<Fault>)) {
        let mut guard = self.active.write().unwrap_or_else(|p| p.into_inner());
        let mut next = guard.as_ref().clone();
        f(&mut next);
        *guard = Arc::new(next);
    }

    /// Draws the fate of one request.
    pub(super) fn decide(&self) -> FaultDecision {
        let faults = self.snapshot();
        let mut decision = FaultDecision::default();
        if faults.is_empty() {
            return decision;
        }
        let mut rng = lock(&self.rng);
        for fault in faults.iter() {
            if let Some(d) = &fault.delay {
                if hit(&mut rng, d.percent) {
                    decision.delay += d.fixed_delay;
                }
            }
            if let Some(a) = &fault.abort {
                if hit(&mut rng, a.percent) {
                    decision.abort = Some(a.http_status);
                    break;
                }
            }
        }
        decision
    }

    /// Reverts every fault and refuses new ones (the platform is going down).
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.update(Vec::clear);
    }
}

/// True with probability `percent / 100` (Istio's percentage, 0..=100).
fn hit(rng: &mut SmallRng, percent: f64) -> bool {
    if percent >= 100.0 {
        true
    } else if percent <= 0.0 {
        false
    } else {
        rng.random::<f64>() * 100.0 < percent
    }
}

/// The balancer's filter is control plane and data plane at once: a change is in force
/// when `apply`/`revert` return. Its `FaultChange` still says `DataPlane::NotObserved`,
/// not "seen after zero": nothing was observed, the propagation is emulated away, and a
/// report must not present an emulation's zero as a measured one.
impl FaultInjector for LocalFaults {
    /// Applies `fault`; applying a fault of the same name again replaces it in place.
    fn apply<'a>(&'a self, fault: &'a Fault) -> BoxFuture<'a, anyhow::Result<FaultChange>> {
        Box::pin(async move {
            if self.closed.load(Ordering::Acquire) {
                anyhow::bail!(
                    "cannot apply fault `{}`: the embedded platform is down",
                    fault.name
                );
            }
            self.update(
                |faults| match faults.iter_mut().find(|f| f.name == fault.name) {
                    Some(existing) => *existing = fault.clone(),
                    None => faults.push(fault.clone()),
                },
            );
            Ok(FaultChange::unobserved_now())
        })
    }

    /// Removes `fault` (by name); reverting a fault that is not applied is fine.
    fn revert<'a>(&'a self, fault: &'a Fault) -> BoxFuture<'a, anyhow::Result<FaultChange>> {
        Box::pin(async move {
            self.update(|faults| faults.retain(|f| f.name != fault.name));
            Ok(FaultChange::unobserved_now())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Abort, Delay};

    fn fault(name: &str, delay: Option<(f64, u64)>, abort: Option<(f64, u16)>) -> Fault {
        Fault {
            name: name.into(),
            start: Duration::ZERO,
            duration: Duration::from_secs(1),
            delay: delay.map(|(percent, ms)| Delay {
                percent,
                fixed_delay: Duration::from_millis(ms),
            }),
            abort: abort.map(|(percent, http_status)| Abort {
                percent,
                http_status,
            }),
        }
    }

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn faults_apply_in_order_delay_before_abort_and_revert() {
        let faults = LocalFaults::new(1);
        assert_eq!(faults.decide(), FaultDecision::default());
        let slow = fault("slow", Some((100.0, 30)), None);
        let slow_abort = fault("slow-abort", Some((100.0, 20)), Some((100.0, 503)));
        let never = fault("never", Some((100.0, 1000)), None);
        block_on(async {
            faults.apply(&slow).await.unwrap();
            faults.apply(&slow_abort).await.unwrap();
            faults.apply(&never).await.unwrap();
        });
        let d = faults.decide();
        // Both delays before the abort add up; the fault after the abort never runs.
        assert_eq!(d.delay, Duration::from_millis(50));
        assert_eq!(d.abort, Some(503));
        assert_eq!(d.flags(), Some("DI,FI"));
        block_on(async {
            faults.revert(&slow_abort).await.unwrap();
            faults.revert(&slow_abort).await.unwrap();
        });
        assert_eq!(faults.active_names(), ["slow", "never"]);
        assert_eq!(faults.decide().delay, Duration::from_millis(1030));
        faults.close();
        assert!(faults.active_names().is_empty());
        assert!(block_on(faults.apply(&slow)).is_err());
    }

    #[test]
    fn percentages_are_probabilities() {
        let faults = LocalFaults::new(42);
        block_on(faults.apply(&fault("a", None, Some((25.0, 500))))).unwrap();
        let n = 20_000;
        let aborted = (0..n).filter(|_| faults.decide().abort.is_some()).count();
        // 4 sigma of a binomial(20000, 0.25) is about 245.
        assert!((aborted as f64 - 5000.0).abs() < 245.0, "{aborted}");
        block_on(faults.apply(&fault("a", None, Some((0.0, 500))))).unwrap();
        assert!((0..1000).all(|_| faults.decide().abort.is_none()));
    }
}
