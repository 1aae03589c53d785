//! The records the load engine produces and the recorder consumes: plain,
//! small, `Send` data carrying intended, actual and end times (serializable: a distributed
//! run's generators send them to the coordinator).

use crate::scenario::Subset;

/// Why a workflow failed.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The connection could not be made or was lost before the response was complete
    /// (refused, reset or closed before or in the middle of the body, DNS).
    Connect,
    /// A request got no complete response within `request_timeout`.
    Timeout,
    /// A response had a status the step does not accept.
    Status,
    /// A response the step does not accept, marked by Envoy as its own overflow
    /// (`x-envoy-overloaded`: a circuit breaker's limit, response flag UO), not
    /// the service's answer.
    Overloaded,
    /// A response could not be captured from, or a poll's `fail_if` held.
    Expectation,
    /// A poll's `until` did not hold within its timeout.
    PollTimeout,
    /// Anything else: protocol errors, a body over `max_response_bytes`.
    Other,
}

impl FailureKind {
    /// How many kinds there are.
    pub const COUNT: usize = 7;
    /// Every kind, in report order.
    pub const ALL: [FailureKind; FailureKind::COUNT] = [
        FailureKind::Connect,
        FailureKind::Timeout,
        FailureKind::Status,
        FailureKind::Overloaded,
        FailureKind::Expectation,
        FailureKind::PollTimeout,
        FailureKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect",
            FailureKind::Timeout => "timeout",
            FailureKind::Status => "status",
            FailureKind::Overloaded => "overloaded",
            FailureKind::Expectation => "expectation",
            FailureKind::PollTimeout => "poll_timeout",
            FailureKind::Other => "other",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// How a workflow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    /// Failed at `step` with `kind`.
    Failed {
        kind: FailureKind,
        step: u16,
    },
    /// Still in flight when an interrupt's grace period ran out.
    Abandoned,
}

/// One step's result within a workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StepSample {
    /// Index of the step in the workflow.
    pub step: u16,
    /// From the step's intended start (the previous step's end) to its end, µs.
    pub latency_us: u64,
    pub ok: bool,
}

/// One workflow, from its intended start to its end.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkflowRecord {
    /// Sequence number of the start (0 for the first).
    pub seq: u64,
    /// Intended start, µs after the run's zero.
    pub intended_us: u64,
    /// Actual send time of the first request minus the intended start, µs.
    pub lag_us: u64,
    /// End of the workflow, µs after the run's zero.
    pub end_us: u64,
    pub outcome: Outcome,
    pub steps: Vec<StepSample>,
    /// The subset (agent version) that served it, when the run has a canary and an
    /// answer named a known version.
    pub subset: Option<Subset>,
}

impl WorkflowRecord {
    /// Latency measured from the intended start (coordinated-omission-free).
    pub fn latency_us(&self) -> u64 {
        self.end_us.saturating_sub(self.intended_us)
    }
}

/// What the engine sends to the recorder (and a distributed run's generators send their
/// coordinator, as JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A workflow ended (in any way).
    Workflow(WorkflowRecord),
    /// A start could not be issued because `max_in_flight` workflows were running.
    Dropped { intended_us: u64 },
}
