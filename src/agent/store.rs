//! Workflow state behind the `WorkflowStore` seam, and its bounded in-memory implementation.
//!
//! The seam is async because a store may be remote: `redis_store::RedisStore` (when
//! `--redis-url` / `REDIS_URL` is set) keeps the state in Redis, where every replica reads
//! what any replica wrote. Each workflow is written only by the replica running it, as a
//! whole view (`put`), so a write never needs to read first; `get` may run anywhere.
//!
//! Failures are values (`StoreError`): the HTTP layer answers 503 for them, and a workflow
//! whose progress could not be written carries on.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Where a workflow is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkflowStatus {
    Running,
    Completed,
    Failed,
}

impl WorkflowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowStatus::Running => "running",
            WorkflowStatus::Completed => "completed",
            WorkflowStatus::Failed => "failed",
        }
    }
}

/// What `GET /api/v1/workflows/{id}` answers (and what a Redis key holds, as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowView {
    /// The workflow's id.
    pub id: String,
    /// Its status.
    pub status: WorkflowStatus,
    /// The workflow type given at submission.
    pub workflow_type: String,
    /// LLM and tool calls finished so far.
    pub steps_done: u32,
    /// Wall time from submission to the end, once finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

impl WorkflowView {
    /// A workflow just admitted.
    pub fn running(id: &str, workflow_type: &str) -> Self {
        Self {
            id: id.to_owned(),
            status: WorkflowStatus::Running,
            workflow_type: workflow_type.to_owned(),
            steps_done: 0,
            duration_ms: None,
        }
    }

    pub fn is_finished(&self) -> bool {
        self.status != WorkflowStatus::Running
    }
}

/// The store could not answer; the request that needed it answers 503 with this message.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("workflow store unavailable: {backend} did not answer within {timeout:?}")]
    Timeout {
        backend: &'static str,
        timeout: Duration,
    },
    #[error("workflow store unavailable: {backend}: {reason}")]
    Failed {
        backend: &'static str,
        reason: String,
    },
}

impl StoreError {
    /// What went wrong, without the "workflow store unavailable" preamble.
    pub fn reason(&self) -> String {
        match self {
            StoreError::Timeout { timeout, .. } => format!("no answer within {timeout:?}"),
            StoreError::Failed { reason, .. } => reason.clone(),
        }
    }
}

/// What a store call resolves to.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// Workflow state. Implementations bound every call in time (a remote store times out
/// rather than hang the request).
pub trait WorkflowStore: Send + Sync + std::fmt::Debug + 'static {
    /// Writes the workflow's whole current view. Only the replica running a workflow
    /// writes it, in order; a finished view starts its retention.
    fn put<'a>(&'a self, view: &'a WorkflowView) -> StoreFuture<'a, ()>;
    /// Its current view, if known (not evicted or expired).
    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<WorkflowView>>;
    /// Whether the store answered its latest call or health check; `/ready` reports it.
    fn is_available(&self) -> bool {
        true
    }
}

/// In-memory store. Memory stays bounded: running workflows are bounded by the
/// concurrency limit, and finished ones are evicted once older than `retention` or
/// beyond `max_finished` (oldest first).
#[derive(Debug)]
pub struct MemoryStore {
    retention: Duration,
    max_finished: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    workflows: HashMap<String, WorkflowView>,
    /// Finished ids in finish order, for eviction.
    finished: VecDeque<(Instant, String)>,
}

impl MemoryStore {
    pub fn new(retention: Duration, max_finished: usize) -> Self {
        Self {
            retention,
            max_finished,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn evict(&self, inner: &mut Inner, now: Instant) {
        while let Some((finished_at, _)) = inner.finished.front() {
            let expired = now.saturating_duration_since(*finished_at) >= self.retention;
            if !expired && inner.finished.len() <= self.max_finished {
                break;
            }
            if let Some((_, id)) = inner.finished.pop_front() {
                inner.workflows.remove(&id);
            }
        }
    }

    /// Writes `view` now (the `put` of the trait, without a future).
    pub fn put_now(&self, view: &WorkflowView) {
        let now = Instant::now();
        let mut inner = self.lock();
        let was_finished = inner
            .workflows
            .insert(view.id.clone(), view.clone())
            .is_some_and(|old| old.is_finished());
        if view.is_finished() && !was_finished {
            inner.finished.push_back((now, view.id.clone()));
        }
        self.evict(&mut inner, now);
    }

    /// The view of `id` now (the `get` of the trait, without a future).
    pub fn get_now(&self, id: &str) -> Option<WorkflowView> {
        let mut inner = self.lock();
        self.evict(&mut inner, Instant::now());
        inner.workflows.get(id).cloned()
    }

    /// Workflows held (running and finished); for tests of the bound.
    pub fn len(&self) -> usize {
        self.lock().workflows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl WorkflowStore for MemoryStore {
    fn put<'a>(&'a self, view: &'a WorkflowView) -> StoreFuture<'a, ()> {
        self.put_now(view);
        Box::pin(std::future::ready(Ok(())))
    }

    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<WorkflowView>> {
        Box::pin(std::future::ready(Ok(self.get_now(id))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(id: &str, status: WorkflowStatus, steps_done: u32, ms: u64) -> WorkflowView {
        WorkflowView {
            status,
            steps_done,
            duration_ms: Some(ms),
            ..WorkflowView::running(id, "default")
        }
    }

    #[test]
    fn finished_workflows_beyond_the_cap_are_evicted_oldest_first() {
        let store = MemoryStore::new(Duration::from_secs(3600), 2);
        for id in ["a", "b", "c"] {
            store.put_now(&WorkflowView::running(id, "default"));
            store.put_now(&WorkflowView {
                steps_done: 1,
                ..WorkflowView::running(id, "default")
            });
            store.put_now(&finished(id, WorkflowStatus::Completed, 1, 5));
        }
        assert!(store.get_now("a").is_none());
        let b = store.get_now("b").unwrap();
        assert_eq!(b.status, WorkflowStatus::Completed);
        assert_eq!((b.steps_done, b.duration_ms), (1, Some(5)));
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn running_workflows_are_never_evicted() {
        let store = MemoryStore::new(Duration::ZERO, 0);
        store.put_now(&WorkflowView::running("running", "default"));
        store.put_now(&WorkflowView::running("done", "default"));
        store.put_now(&finished("done", WorkflowStatus::Failed, 0, 0));
        assert!(store.get_now("done").is_none());
        assert_eq!(
            store.get_now("running").unwrap().status,
            WorkflowStatus::Running
        );
    }

    #[tokio::test(start_paused = true)]
    async fn finished_workflows_expire_after_retention() {
        let store = MemoryStore::new(Duration::from_secs(10), 100);
        store
            .put(&WorkflowView::running("x", "default"))
            .await
            .unwrap();
        let done = finished("x", WorkflowStatus::Completed, 0, 0);
        store.put(&done).await.unwrap();
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert_eq!(store.get("x").await.unwrap(), Some(done));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(store.get("x").await.unwrap().is_none());
    }
}
