//! The mesh metrics an Istio sidecar would report for the agent, kept by the embedded
//! balancer and served on their own loopback listener (the balancer itself forwards
//! every path, `/metrics` included, to the replicas): `istio_requests_total` and
//! `istio_request_duration_milliseconds` with Istio's default buckets.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Istio's default buckets of `istio_request_duration_milliseconds`.
pub const ISTIO_DURATION_BUCKETS_MS: [f64; 18] = [
    1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];
/// The `destination_workload` label: the seeds' Deployment name.
pub const DESTINATION_WORKLOAD: &str = "mcp-agent";
/// Response flag when nothing unusual happened.
pub const NO_FLAGS: &str = "-";

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MeshLabels {
    response_code: u16,
    response_flags: &'static str,
    destination_workload: &'static str,
    reporter: &'static str,
}

/// The balancer's request metrics.
#[derive(Debug)]
pub(super) struct MeshMetrics {
    registry: Registry,
    requests: Family<MeshLabels, Counter>,
    duration: Family<MeshLabels, Histogram>,
}

impl MeshMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<MeshLabels, Counter>::default();
        let duration =
            Family::<MeshLabels, Histogram>::new_with_constructor(duration_histogram as _);
        registry.register(
            "istio_requests",
            "Requests to the agent, as the destination sidecar reports them",
            requests.clone(),
        );
        registry.register(
            "istio_request_duration_milliseconds",
            "Request duration in milliseconds, as the destination sidecar reports it",
            duration.clone(),
        );
        Self {
            registry,
            requests,
            duration,
        }
    }

    /// Counts one request answered with `code` after `elapsed`.
    pub fn observe(&self, code: u16, flags: &'static str, elapsed: Duration) {
        let labels = MeshLabels {
            response_code: code,
            response_flags: flags,
            destination_workload: DESTINATION_WORKLOAD,
            reporter: "destination",
        };
        self.requests.get_or_create(&labels).inc();
        self.duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64() * 1000.0);
    }

    /// The exposition text (OpenMetrics 1.0, which Prometheus scrapes).
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(4 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// The metrics listener's handler: `GET /metrics`, 404 elsewhere.
    pub fn respond(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        if request.method() != Method::GET || request.uri().path() != "/metrics" {
            let mut r = Response::new(Full::new(Bytes::from_static(
                b"only GET /metrics is served here\n",
            )));
            *r.status_mut() = StatusCode::NOT_FOUND;
            return r;
        }
        let mut r = Response::new(Full::new(Bytes::from(self.encode())));
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        );
        r
    }
}

fn duration_histogram() -> Histogram {
    Histogram::new(ISTIO_DURATION_BUCKETS_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_carry_istio_names_and_labels() {
        let m = MeshMetrics::new();
        m.observe(503, "FI", Duration::from_millis(3));
        let text = m.encode();
        assert!(
            text.contains(
                r#"istio_requests_total{response_code="503",response_flags="FI",destination_workload="mcp-agent",reporter="destination"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"istio_request_duration_milliseconds_bucket{le="5.0",response_code="503""#
            ) || text.contains(r#"istio_request_duration_milliseconds_bucket{response_code="503""#),
            "{text}"
        );
        assert!(text.contains(r#"le="3600000.0""#), "{text}");
    }
}
