//! Live metrics out, the way k6 users expect: while a run's load phase runs, its
//! counters, latency histograms and schedule lag as Prometheus series (`slo_check_…`,
//! labelled `scenario` and `testid`), served in the text format (`--metrics-listen`) and
//! pushed by remote write 1.0 (`--remote-write`), once more at the end with the final
//! values. The recorder's owner feeds a `Feed`; the `Exporter` serves and pushes the
//! frames it publishes.
//!
//! Files: `series` (the tally and its frames), `text` (the exposition format),
//! `remote_write` (protobuf, snappy, the POST), `exporter` (the listener and the pushes);
//! `dashboard_tests` checks dashboards/slo-check.json against what `series` renders.

#[cfg(test)]
mod dashboard_tests;
mod exporter;
pub mod remote_write;
pub mod series;
pub mod text;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

pub use exporter::Exporter;
pub use series::{Frame, GeneratorNow, Now, Tally};

use crate::stats::record::Event;

/// What the run exports, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The `testid` label of every series.
    pub testid: String,
    /// Serve `GET /metrics` here during the run.
    pub listen: Option<SocketAddr>,
    /// Push to this remote-write receiver during the run and at its end.
    pub remote_write: Option<RemoteWriteSettings>,
}

impl Settings {
    /// Whether anything is exported.
    pub fn exports(&self) -> bool {
        self.listen.is_some() || self.remote_write.is_some()
    }
}

/// Where and how often to push.
#[derive(Debug, Clone)]
pub struct RemoteWriteSettings {
    pub url: url::Url,
    /// Time between pushes during the run.
    pub every: Duration,
}

/// The recorder's side: the tally it feeds event by event, and where it publishes
/// frames (on its tick and once at the end).
pub struct Feed {
    tally: Tally,
    tx: watch::Sender<Arc<Frame>>,
}

impl Feed {
    /// Count one event.
    pub fn add(&mut self, event: &Event) {
        self.tally.add(event);
    }

    /// Publish the series as they are now.
    pub fn publish(&self, now: Now) {
        self.tx.send_replace(Arc::new(self.tally.frame(now)));
    }
}

/// run.json's `live_metrics`: what was exported, and whether the remote write worked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveReport {
    /// Where `GET /metrics` was served during the run (`--metrics-listen`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<String>,
    /// The pushes to `--remote-write`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_write: Option<RemoteWriteReport>,
}

/// The pushes of one run to a remote-write receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteWriteReport {
    /// The receiver (a password shown as `***`).
    pub url: String,
    /// Time between pushes during the run, seconds.
    pub interval_s: f64,
    /// Pushes tried: the one before the load, one per interval, the final one.
    pub pushes: u64,
    /// Pushes that failed.
    pub failed: u64,
    /// What the first failed push got (HTTP status and body, or the connection error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Whether the final push, with the run's final values, was accepted.
    pub final_push_ok: bool,
}
