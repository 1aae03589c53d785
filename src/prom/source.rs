//! The metrics-source seam: instant and range PromQL queries. `Prometheus` talks to a
//! real server with prometheus-http-query, every call bounded by `QUERY_TIMEOUT`; the
//! evaluation code above it only sees plain samples, so tests can fake it.

use std::collections::HashMap;
use std::time::Duration;

use super::BoxFuture;
use crate::errors::error_chain;

/// Upper bound on one query, connection included.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// One series of an instant query: its labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub labels: HashMap<String, String>,
    pub value: f64,
}

/// One series of a range query: labels and (unix seconds, value) samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: HashMap<String, String>,
    pub samples: Vec<(f64, f64)>,
}

/// Runs PromQL. Errors are complete sentences naming the server and what to check.
pub trait MetricsSource: Send + Sync {
    /// Evaluates `query` at `at_unix_s`; a scalar result is one point with no labels.
    fn instant<'a>(
        &'a self,
        query: &'a str,
        at_unix_s: i64,
    ) -> BoxFuture<'a, Result<Vec<Point>, String>>;
    /// Evaluates `query` from `start` to `end` (unix seconds) every `step_s`.
    fn range<'a>(
        &'a self,
        query: &'a str,
        start_unix_s: i64,
        end_unix_s: i64,
        step_s: f64,
    ) -> BoxFuture<'a, Result<Vec<Series>, String>>;
}

/// A real Prometheus server.
pub struct Prometheus {
    url: String,
    client: prometheus_http_query::Client,
}

impl Prometheus {
    /// A client for `url` (http:// or https://); fails only on a malformed URL.
    pub fn new(url: &str) -> Result<Prometheus, String> {
        let client = prometheus_http_query::Client::try_from(url)
            .map_err(|e| format!("the Prometheus URL `{url}` is not usable: {e}"))?;
        Ok(Prometheus {
            url: url.to_string(),
            client,
        })
    }

    fn explain(&self, e: prometheus_http_query::Error) -> String {
        match e {
            prometheus_http_query::Error::Prometheus(p) => {
                format!("Prometheus at {} rejected the query: {p}", self.url)
            }
            other => format!(
                "Prometheus at {} could not be queried: {} (is it running, and is --prometheus / prometheus.url right?)",
                self.url,
                error_chain(&other)
            ),
        }
    }

    fn timed_out(&self) -> String {
        format!(
            "Prometheus at {} did not answer within {}s",
            self.url,
            QUERY_TIMEOUT.as_secs()
        )
    }
}

fn points(data: &prometheus_http_query::response::Data) -> Vec<Point> {
    use prometheus_http_query::response::Data;
    match data {
        Data::Vector(v) => v
            .iter()
            .map(|s| Point {
                labels: s.metric().clone(),
                value: s.sample().value(),
            })
            .collect(),
        Data::Scalar(s) => vec![Point {
            labels: HashMap::new(),
            value: s.value(),
        }],
        Data::Matrix(_) => Vec::new(),
    }
}

impl MetricsSource for Prometheus {
    fn instant<'a>(
        &'a self,
        query: &'a str,
        at_unix_s: i64,
    ) -> BoxFuture<'a, Result<Vec<Point>, String>> {
        Box::pin(async move {
            let call = self.client.query(query).at(at_unix_s).get();
            match tokio::time::timeout(QUERY_TIMEOUT, call).await {
                Err(_) => Err(self.timed_out()),
                Ok(Err(e)) => Err(self.explain(e)),
                Ok(Ok(r)) => match r.data() {
                    prometheus_http_query::response::Data::Matrix(_) => Err(format!(
                        "the query returned a range vector; an SLO needs an instant value (wrap it, e.g. in rate(...) or max_over_time(...)): {query}"
                    )),
                    data => Ok(points(data)),
                },
            }
        })
    }

    fn range<'a>(
        &'a self,
        query: &'a str,
        start_unix_s: i64,
        end_unix_s: i64,
        step_s: f64,
    ) -> BoxFuture<'a, Result<Vec<Series>, String>> {
        Box::pin(async move {
            let call = self
                .client
                .query_range(query, start_unix_s, end_unix_s, step_s)
                .get();
            match tokio::time::timeout(QUERY_TIMEOUT, call).await {
                Err(_) => Err(self.timed_out()),
                Ok(Err(e)) => Err(self.explain(e)),
                Ok(Ok(r)) => Ok(r
                    .data()
                    .as_matrix()
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
                    .iter()
                    .map(|s| Series {
                        labels: s.metric().clone(),
                        samples: s
                            .samples()
                            .iter()
                            .map(|p| (p.timestamp(), p.value()))
                            .collect(),
                    })
                    .collect()),
            }
        })
    }
}
