//! The client/server cross-check: what the client measured against what the server
//! (the agent's `http_*` metrics) and the mesh (`istio_*`) counted over the same run.
//!
//! - **Latency**, per step whose request maps to one agent endpoint (polling steps span
//!   many requests and are skipped): the client's p95 of the step against
//!   `histogram_quantile(0.95, ...)` of `http_request_duration_seconds` for that endpoint
//!   and method (the histogram has no status label, so server-side failures are in it). They disagree when they differ by more than the width of the
//!   server bucket holding the server's p95 (its resolution there).
//! - **Failures**: every failed workflow ends at its first failed request, so a server
//!   5xx ends one workflow; the client's failure rate is compared with (5xx responses
//!   counted by the server) / (workflows finished). Tolerance: one workflow.

use serde::{Deserialize, Serialize};

use super::clock::RunClock;
use super::source::MetricsSource;
use crate::plan::Plan;
use crate::scenario::{Step, template::Part};
use crate::stats::RunStats;
use crate::stats::histogram::percentile_ms;
use crate::stats::record::FailureKind;

/// One comparison (run.json `cross_check[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossCheckItem {
    /// What is compared, e.g. `step submit p95` or `failure rate`.
    pub what: String,
    /// `agent` (http_* metrics) or `mesh` (istio_* metrics).
    pub server_source: String,
    /// `ms` or `ratio`.
    pub unit: String,
    /// The client's value.
    pub client: Option<f64>,
    /// The server's value; null when Prometheus had no data.
    pub server: Option<f64>,
    /// Largest difference that still agrees (the server bucket width, or one workflow).
    pub tolerance: f64,
    /// `agree`, `disagree` or `no_data`.
    pub status: String,
    /// The server-side query as sent.
    pub query: String,
    /// Why they may differ (for a disagreement), or why there is no data.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// The agent's `endpoint` label for a step's request, when the step is one request to a
/// known route (`None` for polling steps and unknown paths).
pub fn agent_endpoint(step: &Step) -> Option<&'static str> {
    if step.poll.is_some() {
        return None;
    }
    let mut path = String::new();
    for part in &step.path.parts {
        match part {
            Part::Lit(s) => path.push_str(s),
            _ => path.push('x'),
        }
    }
    let path = path.split('?').next().unwrap_or_default();
    match (step.method.as_str(), path) {
        ("POST", "/api/v1/workflows") => Some("/api/v1/workflows"),
        ("GET", "/health") => Some("/health"),
        ("GET", "/ready") => Some("/ready"),
        ("GET", p) => match p.strip_prefix("/api/v1/workflows/") {
            Some(id) if !id.is_empty() && !id.contains('/') => Some("/api/v1/workflows/{id}"),
            _ => None,
        },
        _ => None,
    }
}

/// Runs every comparison at the end of the run (now), over the whole run.
pub async fn run(
    source: &dyn MetricsSource,
    plan: &Plan,
    stats: &RunStats,
    clock: &RunClock,
) -> Vec<CrossCheckItem> {
    let now = clock.now_unix_s();
    let range = super::clock::promql_range(std::time::Duration::from_secs_f64(
        (now as f64 - clock.zero_unix_s).max(1.0),
    ));
    let run = &stats.windows[0];
    let mut out = step_latencies(source, plan, stats, now, &range).await;
    let finished = run.counts.succeeded + run.counts.failed;
    if finished == 0 {
        return out;
    }
    let client_rate = run.counts.failed as f64 / finished as f64;
    let endpoints: Vec<&str> = plan
        .scenario
        .workflow
        .iter()
        .filter_map(|s| {
            agent_endpoint(s).or_else(|| s.poll.as_ref().map(|_| "/api/v1/workflows/{id}"))
        })
        .collect();
    let endpoint_re = endpoints
        .iter()
        .map(|e| regex_escape(e))
        .collect::<Vec<_>>()
        .join("|");
    let agent_sel =
        format!("http_requests_total{{status_code=~\"5..\",endpoint=~\"{endpoint_re}\"}}");
    let mesh_sel = format!(
        "istio_requests_total{{response_code=~\"5..\",destination_workload=\"{}\",reporter=\"destination\"}}",
        plan.scenario.platform.deployment
    );
    let zero = clock.zero_unix_s.floor() as i64;
    let mut server_counts = Vec::new();
    for (name, sel) in [("agent", agent_sel), ("mesh", mesh_sel)] {
        let query = format!("sum({sel})");
        let count = counter_increase(source, &query, zero, now).await;
        server_counts.push((name, count));
        let server = count.map(|n| (n / finished as f64).min(1.0));
        let mut item = compare(
            "failure rate".into(),
            name,
            "ratio",
            Some(client_rate),
            server,
            1.0 / finished as f64,
            format!("{query} at the end minus at the run's zero, / {finished} workflows finished"),
        );
        if item.status == "disagree" {
            item.note = failure_note(plan, stats, client_rate, server.unwrap_or_default(), name);
        } else if item.status == "no_data" {
            item.note = format!(
                "no {name} request metrics in Prometheus ({})",
                if name == "mesh" {
                    "no mesh in front of the service, or its metrics are not scraped"
                } else {
                    "is the agent scraped?"
                }
            );
        }
        out.push(item);
    }
    out
}

/// Each agent endpoint's p95 as the client saw it against the agent's own histogram.
async fn step_latencies(
    source: &dyn MetricsSource,
    plan: &Plan,
    stats: &RunStats,
    now: i64,
    range: &str,
) -> Vec<CrossCheckItem> {
    let run = &stats.windows[0];
    let mut out = Vec::new();
    let delays = plan.scenario.faults.iter().any(|f| f.delay.is_some());
    for (i, step) in plan.scenario.workflow.iter().enumerate() {
        let Some(endpoint) = agent_endpoint(step) else {
            continue;
        };
        // The agent's duration histogram has no status label: failed requests are in it
        // too, while the client's step latency counts successes only.
        let selector = format!(
            "endpoint=\"{endpoint}\",method=\"{}\"",
            step.method.as_str()
        );
        let query = format!(
            "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{{{selector}}}{range})))"
        );
        let client = percentile_ms(&run.steps[i], 95.0);
        let server = match source.instant(&query, now).await {
            Ok(p) => p
                .first()
                .map(|p| p.value * 1000.0)
                .filter(|v| v.is_finite()),
            Err(_) => None,
        };
        let buckets = bucket_bounds_ms(source, &selector, now).await;
        let tolerance = server.map_or(0.0, |v| bucket_width(&buckets, v));
        let mut item = compare(
            format!("step {} p95", step.name),
            "agent",
            "ms",
            client,
            server,
            tolerance,
            query,
        );
        if item.status == "disagree" {
            item.note = match (client, server) {
                (Some(c), Some(s)) if c > s => format!(
                    "the client saw more than the agent measured: queueing before the server (client connection pool, balancer, accept backlog) or the network{}",
                    if delays { "; injected delays (the mesh delays requests before the agent sees them)" } else { "" }
                ),
                _ => "the agent measured more than the client saw: the server's histogram includes other clients' requests, or a clock/unit mismatch".into(),
            };
        } else if item.status == "no_data" {
            item.note = no_data_note(client);
        }
        out.push(item);
    }
    out
}

fn compare(
    what: String,
    source: &str,
    unit: &str,
    client: Option<f64>,
    server: Option<f64>,
    tolerance: f64,
    query: String,
) -> CrossCheckItem {
    let status = match (client, server) {
        (Some(c), Some(s)) if (c - s).abs() <= tolerance + 1e-9 => "agree",
        (Some(_), Some(_)) => "disagree",
        _ => "no_data",
    };
    CrossCheckItem {
        what,
        server_source: source.into(),
        unit: unit.into(),
        client,
        server,
        tolerance,
        status: status.into(),
        query,
        note: String::new(),
    }
}

fn no_data_note(client: Option<f64>) -> String {
    if client.is_none() {
        "no step succeeded on the client".into()
    } else {
        "Prometheus has no server histogram for this endpoint (is the agent scraped?)".into()
    }
}

fn failure_note(plan: &Plan, stats: &RunStats, client: f64, server: f64, source: &str) -> String {
    let c = &stats.windows[0].counts;
    let kind = |k: FailureKind| c.failures_by_kind[k.index()];
    if client < server {
        return format!(
            "the {source} answered more 5xx than workflows failed: a 5xx the scenario accepts, or requests from other clients"
        );
    }
    let mut causes = Vec::new();
    let timeouts = kind(FailureKind::Timeout) + kind(FailureKind::Connect);
    if timeouts > 0 {
        causes.push(format!("client timeouts or connection errors the server never saw ({} timeouts, {} connect errors)", kind(FailureKind::Timeout), kind(FailureKind::Connect)));
    }
    let aborts = source == "agent" && plan.scenario.faults.iter().any(|f| f.abort.is_some());
    if aborts {
        causes.push(
            "injected faults: aborts are answered by the mesh and never reach the agent".into(),
        );
    }
    let other =
        kind(FailureKind::Expectation) + kind(FailureKind::PollTimeout) + kind(FailureKind::Other);
    if other > 0 {
        causes.push(format!(
            "{other} failures that are not 5xx (expectation, poll timeout, other)"
        ));
    }
    if kind(FailureKind::Status) > 0 && !aborts {
        causes.push("non-2xx statuses other than 5xx (e.g. 4xx)".into());
    }
    if causes.is_empty() {
        causes.push("replicas removed during the run took their counters with them".into());
    }
    causes.join("; ")
}

/// Counter value at `end` minus at `start` (0 when the counter had no sample yet).
async fn counter_increase(
    source: &dyn MetricsSource,
    query: &str,
    start: i64,
    end: i64,
) -> Option<f64> {
    let at_end = source.instant(query, end).await.ok()?.first()?.value;
    let at_start = match source.instant(query, start).await {
        Ok(p) => p.first().map_or(0.0, |p| p.value),
        Err(_) => return None,
    };
    Some((at_end - at_start).max(0.0))
}

/// Upper bounds (ms) of the server histogram's finite buckets, ascending.
async fn bucket_bounds_ms(source: &dyn MetricsSource, selector: &str, at: i64) -> Vec<f64> {
    let query = format!("count by (le) (http_request_duration_seconds_bucket{{{selector}}})");
    let mut bounds: Vec<f64> = source
        .instant(&query, at)
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.labels.get("le")?.parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .map(|v| v * 1000.0)
        .collect();
    bounds.sort_by(f64::total_cmp);
    bounds.dedup();
    bounds
}

/// Width of the bucket holding `v` (from the previous bound, or 0, to the first bound ≥ v).
pub fn bucket_width(bounds: &[f64], v: f64) -> f64 {
    let mut lower = 0.0;
    for &b in bounds {
        if v <= b + 1e-9 {
            return b - lower;
        }
        lower = b;
    }
    // Past the last finite bucket: histogram_quantile answers the last bound; its
    // resolution there is the last bucket's width.
    match bounds {
        [.., a, b] => b - a,
        [b] => *b,
        [] => 0.0,
    }
}

/// `s` as an RE2 literal inside a PromQL string (whose own escapes double the backslashes).
fn regex_escape(s: &str) -> String {
    super::scrape_config::re2_literal(s).replace('\\', "\\\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_width_at_a_value() {
        let b = [5.0, 10.0, 25.0, 50.0];
        assert_eq!(bucket_width(&b, 1.0), 5.0);
        assert_eq!(bucket_width(&b, 5.0), 5.0);
        assert_eq!(bucket_width(&b, 7.0), 5.0);
        assert_eq!(bucket_width(&b, 30.0), 25.0);
        assert_eq!(bucket_width(&b, 80.0), 25.0);
        assert_eq!(bucket_width(&[], 80.0), 0.0);
    }

    #[test]
    fn regex_escape_keeps_promql_strings_valid() {
        assert_eq!(
            regex_escape("/api/v1/workflows/{id}"),
            "/api/v1/workflows/\\\\{id\\\\}"
        );
    }
}
