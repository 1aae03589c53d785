//! The control API between a distributed run's coordinator and its generators: JSON over
//! HTTP/1.1, on the generator's port. The coordinator asks; a generator only answers.
//!
//! - `GET /status` → `Status`: the generator's shard, its plan's fingerprint (so a
//!   generator built from another scenario, seed or time scale is refused), its clock.
//! - `POST /start` with `Start` → 200, or 409 once started: start the shard's schedule at
//!   that instant of the generator's clock.
//! - `GET /events?from=K` → `Events`: the records from the K-th on (at most
//!   `MAX_EVENTS`), the counts so far, and whether the generator is done.
//! - `POST /stop`: no new starts (an interrupt); `POST /abandon`: in-flight workflows are
//!   recorded as abandoned; `POST /exit`: the generator exits after answering.

use serde::{Deserialize, Serialize};

use crate::stats::record::Event;

/// At most this many events in one `/events` answer.
pub const MAX_EVENTS: usize = 20_000;

/// What a generator is (`GET /status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The shard, `index/count`.
    pub shard: String,
    pub fingerprint: Fingerprint,
    /// The generator's wall clock when it answered, µs since the Unix epoch.
    pub now_unix_us: u64,
    /// Whether it was started.
    pub started: bool,
}

/// What must be equal between the coordinator's plan and a generator's for their
/// schedules to be the same one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub scenario: String,
    /// Starts in the whole schedule (every shard's).
    pub scheduled: u64,
    /// The schedule's length, µs.
    pub duration_us: u64,
    pub seed: u64,
}

/// `POST /start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Start {
    /// The run's zero on the generator's clock, µs since the Unix epoch (the coordinator's
    /// zero corrected by the clock offset it measured).
    pub zero_unix_us: u64,
}

/// `GET /events?from=K`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Events {
    /// The index of the first event in `events` (the K asked for).
    pub from: u64,
    pub events: Vec<Event>,
    /// Starts issued, dropped, and workflows in flight so far.
    pub started: u64,
    pub dropped: u64,
    pub in_flight: u64,
    /// The shard's schedule is over: every start was issued or dropped, or the starts were
    /// stopped (`stopped`).
    pub schedule_over: bool,
    pub stopped: bool,
    /// Every workflow ended and every event is in the log: after the events up to `total`
    /// there are no more.
    pub done: bool,
    /// How many events the log holds.
    pub total: u64,
}

/// The query string of `/events`: `from=K`.
pub fn events_from(query: Option<&str>) -> Option<u64> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("from="))?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::record::{FailureKind, Outcome, StepSample, WorkflowRecord};

    #[test]
    fn events_round_trip_through_json() {
        let events = Events {
            from: 7,
            events: vec![
                Event::Workflow(WorkflowRecord {
                    seq: 9,
                    intended_us: 1_000,
                    lag_us: 12,
                    end_us: 51_000,
                    outcome: Outcome::Failed {
                        kind: FailureKind::Overloaded,
                        step: 1,
                    },
                    steps: vec![StepSample {
                        step: 0,
                        latency_us: 50_000,
                        ok: true,
                    }],
                    subset: Some(crate::scenario::Subset::Canary),
                }),
                Event::Dropped { intended_us: 2_000 },
            ],
            started: 3,
            dropped: 1,
            in_flight: 0,
            schedule_over: true,
            stopped: false,
            done: true,
            total: 9,
        };
        let text = serde_json::to_string(&events).unwrap();
        assert_eq!(serde_json::from_str::<Events>(&text).unwrap(), events);
    }

    #[test]
    fn the_from_parameter_is_read_from_the_query() {
        assert_eq!(events_from(Some("from=42")), Some(42));
        assert_eq!(events_from(Some("x=1&from=3")), Some(3));
        assert_eq!(events_from(Some("from=x")), None);
        assert_eq!(events_from(None), None);
    }
}
