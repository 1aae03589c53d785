//! The agent's Prometheus metrics (prometheus-client registry) with per-route handles
//! resolved once, so the request path only touches atomics.

use std::collections::HashMap;
use std::sync::RwLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Buckets of `http_request_duration_seconds`.
pub const HTTP_DURATION_BUCKETS_S: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of `workflow_duration_seconds`.
pub const WORKFLOW_DURATION_BUCKETS_S: [f64; 10] =
    [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];
/// Distinct `workflow_type` label values kept; further types are counted as `other`,
/// so client-chosen strings cannot grow the registry without bound.
pub const MAX_WORKFLOW_TYPES: usize = 32;

/// The routes the agent serves; `template` is the `endpoint` label (never a raw id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    SubmitWorkflow,
    GetWorkflow,
    Health,
    Ready,
    Metrics,
    NotFound,
}

impl Route {
    pub const ALL: [Route; 6] = [
        Route::SubmitWorkflow,
        Route::GetWorkflow,
        Route::Health,
        Route::Ready,
        Route::Metrics,
        Route::NotFound,
    ];

    pub fn template(self) -> &'static str {
        match self {
            Route::SubmitWorkflow => "/api/v1/workflows",
            Route::GetWorkflow => "/api/v1/workflows/{id}",
            Route::Health => "/health",
            Route::Ready => "/ready",
            Route::Metrics => "/metrics",
            // Unknown paths share one label value: raw paths would be unbounded.
            Route::NotFound => "unmatched",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    endpoint: &'static str,
    status_code: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DurationLabels {
    method: String,
    endpoint: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WorkflowLabels {
    workflow_type: String,
    status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WorkflowTypeLabels {
    workflow_type: String,
}

/// The series of one workflow type.
#[derive(Debug, Clone)]
struct WorkflowHandles {
    completed: Counter,
    failed: Counter,
    duration: Histogram,
}

/// Every metric the agent exports.
#[derive(Debug)]
pub struct AgentMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: Family<DurationLabels, Histogram>,
    /// `(route, status) -> counter` for the statuses each route normally answers.
    request_handles: HashMap<(Route, u16), Counter>,
    duration_handles: HashMap<Route, Histogram>,
    workflows: Family<WorkflowLabels, Counter>,
    workflow_duration: Family<WorkflowTypeLabels, Histogram>,
    /// Resolved series per workflow type (at most `MAX_WORKFLOW_TYPES` + `other`).
    workflow_types: RwLock<HashMap<String, WorkflowHandles>>,
    /// Workflows admitted and not yet finished.
    pub active_workflows: Gauge,
    /// CPU utilisation ratio over the sliding window (set at scrape time).
    pub cpu_utilisation: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// 1 when ready, 0 otherwise (set at scrape time and on changes).
    pub ready: Gauge,
}

/// The method a route is normally called with.
fn usual_method(route: Route) -> &'static str {
    match route {
        Route::SubmitWorkflow => "POST",
        _ => "GET",
    }
}

impl AgentMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let request_duration =
            Family::<DurationLabels, Histogram>::new_with_constructor(http_duration_histogram as _);
        let workflows = Family::<WorkflowLabels, Counter>::default();
        let workflow_duration = Family::<WorkflowTypeLabels, Histogram>::new_with_constructor(
            workflow_duration_histogram as _,
        );
        let active_workflows = Gauge::default();
        let cpu_utilisation = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        let ready = Gauge::default();
        // Counters are registered without `_total`; the encoder appends it.
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "HTTP request handling time",
            request_duration.clone(),
        );
        registry.register(
            "workflow_executions",
            "Workflows finished",
            workflows.clone(),
        );
        registry.register(
            "workflow_duration_seconds",
            "Workflow wall time from submission to end",
            workflow_duration.clone(),
        );
        registry.register(
            "active_workflows",
            "Workflows running now",
            active_workflows.clone(),
        );
        registry.register(
            "agent_cpu_utilisation_ratio",
            "Busy share of the replica's CPU capacity over the sliding window",
            cpu_utilisation.clone(),
        );
        registry.register("agent_ready", "1 when the replica is ready", ready.clone());

        // Pre-resolve the series each route normally produces; they show from the start
        // (at 0), and the request path then only increments atomics.
        let mut request_handles = HashMap::new();
        let mut duration_handles = HashMap::new();
        for route in Route::ALL {
            let method = usual_method(route);
            let labels = DurationLabels {
                method: method.to_owned(),
                endpoint: route.template(),
            };
            duration_handles.insert(route, request_duration.get_or_create_owned(&labels));
            for &status_code in usual_statuses(route) {
                let labels = RequestLabels {
                    method: method.to_owned(),
                    endpoint: route.template(),
                    status_code,
                };
                let counter = requests.get_or_create_owned(&labels);
                request_handles.insert((route, status_code), counter);
            }
        }
        Self {
            registry,
            requests,
            request_duration,
            request_handles,
            duration_handles,
            workflows,
            workflow_duration,
            workflow_types: RwLock::default(),
            active_workflows,
            cpu_utilisation,
            ready,
        }
    }

    /// Counts one answered request and observes its handling time.
    pub fn observe_request(
        &self,
        method: &'static str,
        route: Route,
        status_code: u16,
        seconds: f64,
    ) {
        if method == usual_method(route) {
            if let Some(counter) = self.request_handles.get(&(route, status_code)) {
                counter.inc();
            } else {
                self.count_request_slow(method, route, status_code);
            }
            if let Some(histogram) = self.duration_handles.get(&route) {
                histogram.observe(seconds);
            }
            return;
        }
        self.count_request_slow(method, route, status_code);
        let labels = DurationLabels {
            method: method.to_owned(),
            endpoint: route.template(),
        };
        self.request_duration
            .get_or_create(&labels)
            .observe(seconds);
    }

    fn count_request_slow(&self, method: &'static str, route: Route, status_code: u16) {
        let labels = RequestLabels {
            method: method.to_owned(),
            endpoint: route.template(),
            status_code,
        };
        self.requests.get_or_create(&labels).inc();
    }

    /// Counts one finished workflow and observes its duration.
    pub fn observe_workflow(&self, workflow_type: &str, status: &'static str, seconds: f64) {
        let handles = self.workflow_handles(workflow_type);
        let counter = if status == "completed" {
            &handles.completed
        } else {
            &handles.failed
        };
        counter.inc();
        handles.duration.observe(seconds);
    }

    /// The series of `workflow_type`, resolved once per type. While fewer than
    /// `MAX_WORKFLOW_TYPES` are known a new type gets its own; afterwards it counts as `other`.
    fn workflow_handles(&self, workflow_type: &str) -> WorkflowHandles {
        let known = self
            .workflow_types
            .read()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(handles) = known.get(workflow_type) {
            return handles.clone();
        }
        let full = known.len() >= MAX_WORKFLOW_TYPES;
        drop(known);
        let label = if full { "other" } else { workflow_type };
        let mut known = self
            .workflow_types
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(handles) = known.get(label) {
            return handles.clone();
        }
        let resolve = |status| {
            self.workflows.get_or_create_owned(&WorkflowLabels {
                workflow_type: label.to_owned(),
                status,
            })
        };
        let handles = WorkflowHandles {
            completed: resolve("completed"),
            failed: resolve("failed"),
            duration: self
                .workflow_duration
                .get_or_create_owned(&WorkflowTypeLabels {
                    workflow_type: label.to_owned(),
                }),
        };
        known.insert(label.to_owned(), handles.clone());
        handles
    }

    /// The Prometheus text exposition (OpenMetrics 1.0 text, which Prometheus scrapes).
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

impl Default for AgentMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The statuses a route answers with its usual method.
fn usual_statuses(route: Route) -> &'static [u16] {
    match route {
        Route::SubmitWorkflow => &[202, 400, 503],
        Route::GetWorkflow => &[200, 404, 503],
        Route::Health | Route::Metrics => &[200],
        Route::Ready => &[200, 503],
        Route::NotFound => &[404],
    }
}

/// Bounded `method` label: standard methods by name, anything else as `other`.
pub fn method_label(method: &hyper::Method) -> &'static str {
    use hyper::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

fn http_duration_histogram() -> Histogram {
    Histogram::new(HTTP_DURATION_BUCKETS_S)
}

fn workflow_duration_histogram() -> Histogram {
    Histogram::new(WORKFLOW_DURATION_BUCKETS_S)
}
