//! An in-process Kubernetes API-server double for tests: a hyper server on 127.0.0.1 that
//! speaks the real HTTP API (discovery, get/list/watch, server-side apply, JSON and merge
//! patch, delete, namespace termination, pod port-forward over WebSocket) with fake
//! Deployment/StatefulSet/HPA controllers, so the real kube-rs client code runs against it.
//!
//! ```ignore
//! use crate::support::kube_double::{ApiServerDouble, DoubleOptions};
//! let double = ApiServerDouble::start(DoubleOptions::default()).await;
//! let client = double.client();            // in-process kube::Client
//! let kubeconfig = double.write_kubeconfig(dir.path()); // for `slo-check --context double`
//! ```
//!
//! Simplifications: one field manager's server-side apply is exact for what it applies
//! (it owns the fields it sets; fields it stops applying are removed; lists are atomic);
//! no conflicts (409), no admission, no defaulting beyond metadata and namespace status;
//! deletes are immediate (no finalizers/grace) except namespaces, which terminate after
//! `namespace_delete_delay`; pods are created Running/Ready and never fail.

mod controllers;
mod http;
mod portforward;
mod resources;
mod select;
mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use store::{ObjKey, State};

/// How the whole server fails, for API-unreachable and unauthorised tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Every request answers 503 ServiceUnavailable.
    Unavailable,
    /// Every request answers 401 Unauthorized.
    Unauthorized,
}

/// What the double serves and how its controllers behave.
#[derive(Clone, Debug)]
pub struct DoubleOptions {
    /// Serve networking.istio.io/v1 (VirtualService, DestinationRule, Gateway).
    pub istio: bool,
    /// Serve monitoring.coreos.com/v1 (ServiceMonitor, PrometheusRule).
    pub monitoring: bool,
    /// Serve metrics.k8s.io/v1beta1 (PodMetrics, NodeMetrics).
    pub metrics: bool,
    /// Fail every request from the start (see also [`ApiServerDouble::set_failure`]).
    pub failure: Option<Failure>,
    /// How long after a Deployment/StatefulSet change its pods become ready.
    pub ready_after: Duration,
    /// How long a deleted namespace stays `Terminating` before it and its content vanish.
    pub namespace_delete_delay: Duration,
    /// Every HPA's desired replicas over time: (offset from the HPA's creation, desired).
    /// Without an entry yet, desired is `spec.minReplicas` (or 1).
    pub hpa_script: Vec<(Duration, u32)>,
    /// How often watches with `allowWatchBookmarks=true` get a BOOKMARK.
    pub bookmark_interval: Duration,
    /// Events kept for resuming watches; older resourceVersions get 410 Gone.
    pub history_limit: usize,
    /// Create `istio-system` with a Running/Ready `istio=ingressgateway` pod (and Service)
    /// whose port-forward reaches this loopback address.
    pub istio_gateway: Option<SocketAddr>,
    /// Where port-forwards to that gateway pod's port 15000 (Envoy's admin) go instead.
    pub istio_gateway_admin: Option<SocketAddr>,
    /// Where port-forwards to any other pod go (per pod: [`ApiServerDouble::port_forward_to`]).
    pub port_forward_backend: Option<SocketAddr>,
    /// Controller loop period.
    pub tick: Duration,
}

impl Default for DoubleOptions {
    fn default() -> Self {
        DoubleOptions {
            istio: true,
            monitoring: true,
            metrics: true,
            failure: None,
            ready_after: Duration::from_millis(200),
            namespace_delete_delay: Duration::from_millis(300),
            hpa_script: vec![],
            bookmark_interval: Duration::from_secs(5),
            history_limit: 10_000,
            istio_gateway: None,
            istio_gateway_admin: None,
            port_forward_backend: None,
            tick: Duration::from_millis(10),
        }
    }
}

/// One request the double received.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    /// The raw query string (`&force=true&fieldManager=slo-check`), without `?`.
    pub query: String,
    pub content_type: Option<String>,
    pub accept: Option<String>,
}

impl RequestRecord {
    /// A decoded query parameter.
    pub fn param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// One status a fake controller wrote (and watchers were sent).
#[derive(Clone, Debug)]
pub struct StatusRecord {
    /// `Deployment`, `StatefulSet` or `HorizontalPodAutoscaler`.
    pub kind: String,
    pub resource_version: String,
    pub status: Value,
}

/// State shared by the server tasks and the handle.
pub struct Shared {
    state: Mutex<State>,
    options: DoubleOptions,
    addr: SocketAddr,
    cancel: CancellationToken,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The running double; dropping it stops the server, its watches and its controllers.
pub struct ApiServerDouble {
    shared: Arc<Shared>,
}

impl Drop for ApiServerDouble {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
    }
}

impl ApiServerDouble {
    /// Binds 127.0.0.1:0 and starts serving.
    pub async fn start(options: DoubleOptions) -> ApiServerDouble {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the API-server double");
        let addr = listener.local_addr().expect("local address");
        let mut state = State::new(options.history_limit);
        state.failure = options.failure;
        seed(&mut state, &options);
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            options,
            addr,
            cancel: CancellationToken::new(),
        });
        tokio::spawn(accept_loop(listener, shared.clone()));
        tokio::spawn(controller_loop(shared.clone()));
        ApiServerDouble { shared }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// A kube config for this server (no auth, namespace `default`), to adjust before
    /// `kube::Client::try_from` (e.g. `default_retry = false`).
    pub fn config(&self) -> kube::Config {
        let url = self.url().parse().expect("the double's URL is a valid URI");
        let mut config = kube::Config::new(url);
        config.default_namespace = "default".into();
        config
    }

    /// A kube client for this server with kube's defaults (which retry 429/503/504).
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config()).expect("a kube client for the double")
    }

    /// Writes `dir/kubeconfig`: cluster, user and context all named `double`, no auth.
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: double\n  cluster:\n    server: {url}\n\
             users:\n\
             - name: double\n  user: {{}}\n\
             contexts:\n\
             - name: double\n  context:\n    cluster: double\n    user: double\n    namespace: default\n\
             current-context: double\n\
             preferences: {{}}\n",
            url = self.url()
        );
        std::fs::write(&path, text).expect("write the double's kubeconfig");
        path
    }

    /// One stored object by `apiVersion` (`apps/v1`), plural (`deployments`), namespace
    /// (`None` for cluster-scoped) and name.
    pub fn get_object(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let key = ObjKey {
            api_version: api_version.into(),
            plural: plural.into(),
            namespace: namespace.unwrap_or_default().into(),
            name: name.into(),
        };
        self.shared.lock().get(&key).cloned()
    }

    /// Every stored object (with `apiVersion` and `kind`).
    pub fn objects(&self) -> Vec<Value> {
        self.shared.lock().objects.values().cloned().collect()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().requests.clone()
    }

    /// Every status the fake controllers wrote, in order.
    pub fn status_history(&self) -> Vec<StatusRecord> {
        self.shared.lock().status_history.clone()
    }

    /// The HPA statuses written, in order.
    pub fn hpa_history(&self) -> Vec<StatusRecord> {
        self.history_of("HorizontalPodAutoscaler")
    }

    /// The Deployment statuses written, in order.
    pub fn deployment_history(&self) -> Vec<StatusRecord> {
        self.history_of("Deployment")
    }

    fn history_of(&self, kind: &str) -> Vec<StatusRecord> {
        self.status_history()
            .into_iter()
            .filter(|r| r.kind == kind)
            .collect()
    }

    /// Creates (or relabels) a namespace, as if an admin had.
    pub fn create_namespace(&self, name: &str, labels: &[(&str, &str)]) -> Value {
        self.shared.lock().put_namespace(name, labels)
    }

    /// Drops the event history: every resourceVersion handed out so far becomes too old
    /// (410 Gone), and open watches end so that their clients must resume.
    pub fn compact(&self) {
        self.shared.lock().compact();
    }

    /// Makes every later request fail (or, with `None`, succeed again).
    pub fn set_failure(&self, failure: Option<Failure>) {
        self.shared.lock().failure = failure;
    }
}

/// The gateway pod's Envoy admin port, which `istio_gateway_admin` serves.
pub const ISTIO_ADMIN_PORT: u16 = 15000;

/// Name of the Istio ingress gateway pod the double creates with `istio_gateway`.
pub const ISTIO_GATEWAY_POD: &str = "istio-ingressgateway-7c9d8b6f5-x2k4q";

/// What exists before the first request: namespaces, and the Istio gateway if asked.
fn seed(state: &mut State, options: &DoubleOptions) {
    for ns in ["default", "kube-system", "kube-public"] {
        state.put_namespace(ns, &[]);
    }
    let Some(backend) = options.istio_gateway else {
        return;
    };
    state.put_namespace("istio-system", &[]);
    let labels = json!({"app": "istio-ingressgateway", "istio": "ingressgateway"});
    let pod = controllers::standalone_pod("istio-system", ISTIO_GATEWAY_POD, labels.clone());
    let Some(pods) = resources::find_plural("v1", "pods") else {
        return;
    };
    if state.create(pods, Some("istio-system"), pod, None).is_ok() {
        state
            .port_forwards
            .insert(("istio-system".into(), ISTIO_GATEWAY_POD.into()), backend);
        if let Some(admin) = options.istio_gateway_admin {
            state.port_forward_ports.insert(
                (
                    "istio-system".into(),
                    ISTIO_GATEWAY_POD.into(),
                    ISTIO_ADMIN_PORT,
                ),
                admin,
            );
        }
    }
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system", "labels": labels},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app": "istio-ingressgateway", "istio": "ingressgateway"},
            "ports": [{"name": "http2", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
        },
    });
    if let Some(services) = resources::find_plural("v1", "services") {
        let _ = state.create(services, Some("istio-system"), service, None);
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let stream = tokio::select! {
            _ = shared.cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let cancel = shared.cancel.clone();
            let service = service_fn(move |req| http::handle(shared.clone(), req));
            let connection = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::select! {
                _ = connection => {}
                _ = cancel.cancelled() => {}
            }
        });
    }
}

async fn controller_loop(shared: Arc<Shared>) {
    let mut ticker = tokio::time::interval(shared.options.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = ticker.tick() => {
                let mut state = shared.lock();
                controllers::reconcile(&mut state, &shared.options, Instant::now());
            }
        }
    }
}
