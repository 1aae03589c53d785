//! Workflow state behind the `WorkflowStore` seam, and its bounded in-memory implementation.
//!
//! A Redis-backed store (`REDIS_URL`) can implement the same trait later.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

/// Where a workflow is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

/// What `GET /api/v1/workflows/{id}` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// Workflow state. Calls are short and synchronous; implementations must not block for long.
pub trait WorkflowStore: Send + Sync + std::fmt::Debug + 'static {
    /// Records a new running workflow.
    fn insert(&self, id: &str, workflow_type: &str);
    /// One more step finished.
    fn step_done(&self, id: &str);
    /// The workflow ended.
    fn finish(&self, id: &str, status: WorkflowStatus, duration: Duration);
    /// Its current view, if known (not evicted).
    fn get(&self, id: &str) -> Option<WorkflowView>;
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

    /// Workflows held (running and finished); for tests of the bound.
    pub fn len(&self) -> usize {
        self.lock().workflows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl WorkflowStore for MemoryStore {
    fn insert(&self, id: &str, workflow_type: &str) {
        let view = WorkflowView {
            id: id.to_owned(),
            status: WorkflowStatus::Running,
            workflow_type: workflow_type.to_owned(),
            steps_done: 0,
            duration_ms: None,
        };
        let mut inner = self.lock();
        inner.workflows.insert(id.to_owned(), view);
        self.evict(&mut inner, Instant::now());
    }

    fn step_done(&self, id: &str) {
        if let Some(view) = self.lock().workflows.get_mut(id) {
            view.steps_done += 1;
        }
    }

    fn finish(&self, id: &str, status: WorkflowStatus, duration: Duration) {
        let now = Instant::now();
        let mut inner = self.lock();
        if let Some(view) = inner.workflows.get_mut(id) {
            view.status = status;
            view.duration_ms = Some(duration.as_millis() as u64);
            inner.finished.push_back((now, id.to_owned()));
        }
        self.evict(&mut inner, now);
    }

    fn get(&self, id: &str) -> Option<WorkflowView> {
        let mut inner = self.lock();
        self.evict(&mut inner, Instant::now());
        inner.workflows.get(id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_workflows_beyond_the_cap_are_evicted_oldest_first() {
        let store = MemoryStore::new(Duration::from_secs(3600), 2);
        for id in ["a", "b", "c"] {
            store.insert(id, "default");
            store.step_done(id);
            store.finish(id, WorkflowStatus::Completed, Duration::from_millis(5));
        }
        assert!(store.get("a").is_none());
        let b = store.get("b").unwrap();
        assert_eq!(b.status, WorkflowStatus::Completed);
        assert_eq!((b.steps_done, b.duration_ms), (1, Some(5)));
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn running_workflows_are_never_evicted() {
        let store = MemoryStore::new(Duration::ZERO, 0);
        store.insert("running", "default");
        store.insert("done", "default");
        store.finish("done", WorkflowStatus::Failed, Duration::ZERO);
        assert!(store.get("done").is_none());
        assert_eq!(
            store.get("running").unwrap().status,
            WorkflowStatus::Running
        );
    }

    #[tokio::test(start_paused = true)]
    async fn finished_workflows_expire_after_retention() {
        let store = MemoryStore::new(Duration::from_secs(10), 100);
        store.insert("x", "default");
        store.finish("x", WorkflowStatus::Completed, Duration::ZERO);
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert!(store.get("x").is_some());
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(store.get("x").is_none());
    }
}
