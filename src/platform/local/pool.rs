//! The replica set behind the balancer: which replicas exist and in which phase, the
//! least-connections pick (ties broken round robin), workflow-id affinity, and the
//! replica timeline. One mutex guards the set; it is held only for short bookkeeping.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

use super::replica_log::Timeline;
use crate::agent::AgentHandle;
use crate::autoscale::hpa::PodSample;
use crate::target::{AutoscalerClock, ReplicaObserver, ReplicaSample};

/// Where a replica is in its life. Draining replicas no longer count as current (as a
/// terminating pod does not) but still answer for their own workflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Starting,
    Ready,
    Draining,
}

/// One agent replica as the balancer sees it.
#[derive(Debug)]
pub(super) struct Replica {
    /// Start order, unique within the platform.
    pub id: u64,
    pub addr: SocketAddr,
    /// Requests the balancer has sent and not yet had an answer for.
    pub in_flight: AtomicUsize,
    /// The id prefix of this replica's workflows, learned from its first submission answer.
    pub id_prefix: OnceLock<String>,
    /// Taken when the replica is shut down.
    pub agent: Mutex<Option<AgentHandle>>,
}

impl Replica {
    pub fn new(id: u64, agent: AgentHandle) -> Self {
        Self {
            id,
            addr: agent.addr(),
            in_flight: AtomicUsize::new(0),
            id_prefix: OnceLock::new(),
            agent: Mutex::new(Some(agent)),
        }
    }

    /// Runs `f` on the agent while it is running.
    pub fn with_agent<T>(&self, f: impl FnOnce(&AgentHandle) -> T) -> Option<T> {
        lock(&self.agent).as_ref().map(f)
    }
}

/// A request counted against a replica until dropped.
#[derive(Debug)]
pub(super) struct InFlight(pub Arc<Replica>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug)]
struct Entry {
    replica: Arc<Replica>,
    phase: Phase,
    /// When it turned Ready within the run (`None`: ready from the start, or not yet).
    ready_since: Option<Instant>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: Vec<Entry>,
    /// Replica count the autoscaler (or the fixed setting) asks for.
    desired: u32,
    /// Workflow id prefix → replica that owns those workflows.
    affinity: HashMap<String, Arc<Replica>>,
}

/// The replica set, shared by the balancer, the autoscaler and the handle.
#[derive(Debug, Default)]
pub(super) struct Pool {
    inner: Mutex<Inner>,
    round_robin: AtomicUsize,
    timeline: Mutex<Timeline>,
}

/// A std mutex that survives a panicked holder: the data is plain bookkeeping.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Pool {
    /// The ready replica with the fewest requests in flight; among equals, the next in
    /// round-robin order. Counts the request against it.
    pub fn pick(&self) -> Option<InFlight> {
        let inner = lock(&self.inner);
        let ready: Vec<&Arc<Replica>> = inner
            .entries
            .iter()
            .filter(|e| e.phase == Phase::Ready)
            .map(|e| &e.replica)
            .collect();
        if ready.is_empty() {
            return None;
        }
        let loads: Vec<usize> = ready
            .iter()
            .map(|r| r.in_flight.load(Ordering::Acquire))
            .collect();
        let least = loads.iter().copied().min()?;
        let tied: Vec<&Arc<Replica>> = ready
            .iter()
            .zip(&loads)
            .filter(|(_, load)| **load == least)
            .map(|(r, _)| *r)
            .collect();
        let turn = self.round_robin.fetch_add(1, Ordering::Relaxed);
        let chosen = tied[turn % tied.len()];
        chosen.in_flight.fetch_add(1, Ordering::AcqRel);
        Some(InFlight(chosen.clone()))
    }

    /// The replica owning workflow `id` (by its prefix), if it still answers (ready or draining).
    pub fn owner_of(&self, id: &str) -> Option<InFlight> {
        let prefix = id.split('-').next()?;
        let inner = lock(&self.inner);
        let replica = inner.affinity.get(prefix)?;
        let answering = inner
            .entries
            .iter()
            .any(|e| e.replica.id == replica.id && e.phase != Phase::Starting);
        answering.then(|| {
            replica.in_flight.fetch_add(1, Ordering::AcqRel);
            InFlight(replica.clone())
        })
    }

    /// Remembers that workflow ids starting with `prefix` belong to `replica`.
    pub fn learn_prefix(&self, replica: &Arc<Replica>, prefix: &str) {
        if replica.id_prefix.set(prefix.to_owned()).is_ok() {
            lock(&self.inner)
                .affinity
                .insert(prefix.to_owned(), replica.clone());
        }
    }

    /// Adds a replica in `phase`.
    pub fn add(&self, replica: Arc<Replica>, phase: Phase) {
        self.add_unrecorded(replica, phase);
        self.record();
    }

    /// Adds a replica without a timeline sample: the initial rollout is recorded once,
    /// when complete.
    pub fn add_unrecorded(&self, replica: Arc<Replica>, phase: Phase) {
        lock(&self.inner).entries.push(Entry {
            replica,
            phase,
            ready_since: None,
        });
    }

    /// Moves replica `id` from `from` to `to`; false (and no change) if it is not in `from`.
    pub fn transition(&self, id: u64, from: Phase, to: Phase) -> bool {
        let changed = {
            let mut inner = lock(&self.inner);
            match inner
                .entries
                .iter_mut()
                .find(|e| e.replica.id == id && e.phase == from)
            {
                Some(e) => {
                    e.phase = to;
                    if to == Phase::Ready {
                        e.ready_since = Some(Instant::now());
                    }
                    true
                }
                None => false,
            }
        };
        if changed {
            self.record();
        }
        changed
    }

    /// Removes replica `id` and its affinity; returns it if it was there.
    pub fn remove(&self, id: u64) -> Option<Arc<Replica>> {
        let removed = {
            let mut inner = lock(&self.inner);
            let i = inner.entries.iter().position(|e| e.replica.id == id)?;
            let entry = inner.entries.remove(i);
            inner.affinity.retain(|_, r| r.id != id);
            entry.replica
        };
        self.record();
        Some(removed)
    }

    /// Removes every replica (for shutdown).
    pub fn take_all(&self) -> Vec<Arc<Replica>> {
        let taken = {
            let mut inner = lock(&self.inner);
            inner.affinity.clear();
            inner.desired = 0;
            inner.entries.drain(..).map(|e| e.replica).collect()
        };
        self.record();
        taken
    }

    pub fn set_desired(&self, desired: u32) {
        lock(&self.inner).desired = desired;
    }

    /// Replicas that count as current: starting or ready.
    pub fn current(&self) -> u32 {
        let inner = lock(&self.inner);
        inner
            .entries
            .iter()
            .filter(|e| e.phase != Phase::Draining)
            .count() as u32
    }

    /// The replicas that count as current (starting or ready), each as the HPA
    /// controller would see it through metrics-server: starting ones unready; ready
    /// ones without a sample until they have been ready for `metric_window` (a new
    /// pod's first CPU rate needs two scrapes one resolution apart); then their CPU
    /// utilisation. The autoscaler's input.
    pub fn hpa_inputs(&self, metric_window: Duration) -> Vec<PodSample> {
        lock(&self.inner)
            .entries
            .iter()
            .filter(|e| e.phase != Phase::Draining)
            .filter_map(|e| match e.phase {
                Phase::Ready if e.ready_since.is_some_and(|t| t.elapsed() < metric_window) => {
                    Some(PodSample::Missing)
                }
                Phase::Ready => e
                    .replica
                    .with_agent(|a| PodSample::Ready(a.cpu_utilisation())),
                _ => Some(PodSample::Unready),
            })
            .collect()
    }

    /// Up to `n` replicas to scale down, least useful first: starting ones (newest
    /// first), then ready ones (newest first), as the ReplicaSet controller prefers
    /// unready and younger pods. They are marked draining here.
    pub fn choose_victims(&self, n: usize) -> Vec<Arc<Replica>> {
        let victims: Vec<Arc<Replica>> = {
            let mut inner = lock(&self.inner);
            let mut candidates: Vec<&mut Entry> = inner
                .entries
                .iter_mut()
                .filter(|e| e.phase != Phase::Draining)
                .collect();
            candidates.sort_by_key(|e| (e.phase == Phase::Ready, std::cmp::Reverse(e.replica.id)));
            candidates
                .into_iter()
                .take(n)
                .map(|e| {
                    e.phase = Phase::Draining;
                    e.replica.clone()
                })
                .collect()
        };
        if !victims.is_empty() {
            self.record();
        }
        victims
    }

    /// Addresses of every replica still running.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        lock(&self.inner)
            .entries
            .iter()
            .map(|e| e.replica.addr)
            .collect()
    }

    /// Records the counts now: on every change, and at every autoscaler sync.
    pub fn record(&self) {
        let sample = {
            let inner = lock(&self.inner);
            let count =
                |f: fn(Phase) -> bool| inner.entries.iter().filter(|e| f(e.phase)).count() as u32;
            ReplicaSample {
                at: Instant::now(),
                desired: inner.desired,
                current: count(|p| p != Phase::Draining),
                ready: count(|p| p == Phase::Ready),
            }
        };
        lock(&self.timeline).push(sample);
    }
}

impl ReplicaObserver for Pool {
    fn timeline(&self) -> Vec<ReplicaSample> {
        lock(&self.timeline).to_vec()
    }

    fn clock(&self) -> AutoscalerClock {
        AutoscalerClock::Scenario
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detached(id: u64) -> Arc<Replica> {
        Arc::new(Replica {
            id,
            addr: SocketAddr::from(([127, 0, 0, 1], 1000 + id as u16)),
            in_flight: AtomicUsize::new(0),
            id_prefix: OnceLock::new(),
            agent: Mutex::new(None),
        })
    }

    fn pool_of(n: u64) -> Pool {
        let pool = Pool::default();
        for id in 0..n {
            pool.add(detached(id), Phase::Ready);
        }
        pool
    }

    #[test]
    fn ties_go_round_robin_and_the_least_loaded_wins() {
        let pool = pool_of(3);
        let ids: Vec<u64> = (0..6).map(|_| pool.pick().unwrap().0.id).collect();
        assert_eq!(ids, [0, 1, 2, 0, 1, 2]);
        // One request held on each: the picks stay spread.
        let held: Vec<InFlight> = (0..3).map(|_| pool.pick().unwrap()).collect();
        let mut ids: Vec<u64> = held.iter().map(|h| h.0.id).collect();
        ids.sort();
        assert_eq!(ids, [0, 1, 2]);
        drop(held);
        // A request held on one replica steers every later pick away from it.
        let slow = pool.pick().unwrap();
        for _ in 0..10 {
            assert_ne!(pool.pick().unwrap().0.id, slow.0.id);
        }
        drop(slow);
        let a = pool.pick().unwrap();
        let b = pool.pick().unwrap();
        assert_ne!(
            a.0.id, b.0.id,
            "an in-flight request steers the next pick away"
        );
        let c = pool.pick().unwrap();
        assert!(![a.0.id, b.0.id].contains(&c.0.id));
    }

    #[test]
    fn only_ready_replicas_are_picked_and_none_means_no_healthy_upstream() {
        let pool = Pool::default();
        assert!(pool.pick().is_none());
        pool.add(detached(0), Phase::Starting);
        assert!(pool.pick().is_none());
        assert!(pool.transition(0, Phase::Starting, Phase::Ready));
        assert_eq!(pool.pick().unwrap().0.id, 0);
        assert!(!pool.transition(0, Phase::Starting, Phase::Ready));
        let victims = pool.choose_victims(1);
        assert_eq!(victims.len(), 1);
        assert!(pool.pick().is_none());
    }

    #[test]
    fn workflow_ids_route_to_their_owner_while_it_answers() {
        let pool = pool_of(2);
        let owner = detached(7);
        pool.add(owner.clone(), Phase::Ready);
        pool.learn_prefix(&owner, "abcd0123");
        assert_eq!(pool.owner_of("abcd0123-5").unwrap().0.id, 7);
        assert!(pool.owner_of("ffff0000-1").is_none());
        pool.choose_victims(1); // the newest, replica 7, drains but still answers
        assert_eq!(pool.owner_of("abcd0123-5").unwrap().0.id, 7);
        pool.remove(7);
        assert!(pool.owner_of("abcd0123-5").is_none());
    }

    #[test]
    fn victims_are_starting_replicas_first_then_the_newest_ready() {
        let pool = pool_of(3);
        pool.add(detached(3), Phase::Starting);
        let ids: Vec<u64> = pool.choose_victims(2).iter().map(|r| r.id).collect();
        assert_eq!(ids, [3, 2]);
        assert_eq!(pool.current(), 2);
        let last = pool.timeline().last().copied().unwrap();
        assert_eq!((last.current, last.ready), (2, 2));
    }
}
