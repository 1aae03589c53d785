//! The embedded platform's in-process HTTP/1.1 balancer, standing in for the Istio
//! sidecar and the Kubernetes Service: fault injection first (Envoy's fault filter), then
//! a replica is chosen — the owner of a workflow id for `GET /api/v1/workflows/{id}`,
//! else the least-connections ready replica — and the request is forwarded over pooled
//! connections. Its own answers mimic Envoy's local replies and response flags.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

use super::fault_filter::LocalFaults;
use super::mesh_metrics::{MeshMetrics, NO_FLAGS};
use super::pool::{InFlight, Pool, Replica};
use super::split::Split;

/// Body of every balancer response: the replica's streamed body or a local reply.
pub(super) type ProxyBody = BoxBody<Bytes, hyper::Error>;

const SUBMIT_PATH: &str = "/api/v1/workflows";
const WORKFLOW_PREFIX: &str = "/api/v1/workflows/";
/// Largest submission answer read to learn a replica's workflow-id prefix.
const MAX_SUBMIT_ANSWER_BYTES: usize = 64 * 1024;
/// Idle pooled connections to replicas are closed after this.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connection headers that concern one hop only and are not forwarded.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
    "te",
    "trailer",
];

/// Shared by every balancer connection.
#[derive(Debug)]
pub(super) struct Balancer {
    split: Arc<Split>,
    faults: Arc<LocalFaults>,
    metrics: Arc<MeshMetrics>,
    client: Client<HttpConnector, Incoming>,
}

impl Balancer {
    pub fn new(split: Arc<Split>, faults: Arc<LocalFaults>, metrics: Arc<MeshMetrics>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);
        Self {
            split,
            faults,
            metrics,
            client,
        }
    }

    /// One request: faults, then a replica, then the mesh metrics.
    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> Result<Response<ProxyBody>, Infallible> {
        let started = Instant::now();
        let decision = self.faults.decide();
        if !decision.delay.is_zero() {
            tokio::time::sleep(decision.delay).await;
        }
        let (response, upstream_flags) = match decision.abort {
            Some(status) => (local_reply(status, "fault filter abort"), None),
            None => self.forward(request).await,
        };
        // Injected-fault flags take precedence: a delayed request that then finds no
        // healthy upstream is reported as `DI` (Envoy would say `DI,UH`), which keeps the
        // label set small and fixed.
        let flags = decision.flags().or(upstream_flags).unwrap_or(NO_FLAGS);
        self.metrics
            .observe(response.status().as_u16(), flags, started.elapsed());
        Ok(response)
    }

    /// Sends `request` to a replica; the response flags say why it was not answered by one.
    async fn forward(
        &self,
        request: Request<Incoming>,
    ) -> (Response<ProxyBody>, Option<&'static str>) {
        let is_submit = request.method() == Method::POST && request.uri().path() == SUBMIT_PATH;
        let Some((in_flight, pool)) = self.choose(&request) else {
            return (
                local_reply(
                    StatusCode::SERVICE_UNAVAILABLE.as_u16(),
                    "no healthy upstream",
                ),
                Some("UH"),
            );
        };
        let replica = in_flight.0.clone();
        let response = match self.client.request(upstream(request, replica.addr)).await {
            Ok(response) => response,
            Err(e) => {
                let flag = if e.is_connect() { "UF" } else { "UC" };
                let reply = local_reply(
                    StatusCode::SERVICE_UNAVAILABLE.as_u16(),
                    "upstream connect error or disconnect/reset before headers",
                );
                return (reply, Some(flag));
            }
        };
        drop(in_flight);
        let learn = is_submit
            && response.status() == StatusCode::ACCEPTED
            && replica.id_prefix.get().is_none();
        if learn {
            return learn_prefix(&pool, &replica, response).await;
        }
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        (Response::from_parts(parts, body.boxed()), None)
    }

    /// The owner of the workflow a `GET /api/v1/workflows/{id}` names (in whichever
    /// subset), or else the least loaded ready replica of the subset the route picks;
    /// with the pool it is in.
    fn choose(&self, request: &Request<Incoming>) -> Option<(InFlight, Arc<Pool>)> {
        let owner = request
            .uri()
            .path()
            .strip_prefix(WORKFLOW_PREFIX)
            .filter(|id| !id.is_empty() && !id.contains('/'))
            .and_then(|id| self.split.owner_of(id))
            .map(|(r, p)| (r, p.clone()));
        owner.or_else(|| {
            let pool = self.split.pool(self.split.route(request.headers()));
            pool.pick().map(|r| (r, pool.clone()))
        })
    }
}

/// Reads a submission answer to learn which workflow ids `replica` (of `pool`) hands
/// out (the part before the first `-`), then passes the answer on unchanged.
async fn learn_prefix(
    pool: &Pool,
    replica: &Arc<Replica>,
    response: Response<Incoming>,
) -> (Response<ProxyBody>, Option<&'static str>) {
    {
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let bytes = match Limited::new(body, MAX_SUBMIT_ANSWER_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                let reply = local_reply(
                    StatusCode::SERVICE_UNAVAILABLE.as_u16(),
                    "upstream reset after headers",
                );
                return (reply, Some("UC"));
            }
        };
        let id = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("id")?.as_str().map(str::to_owned));
        if let Some(prefix) = id.as_deref().and_then(|id| id.split('-').next()) {
            pool.learn_prefix(replica, prefix);
        }
        (Response::from_parts(parts, full(bytes)), None)
    }
}

/// `request` re-addressed to the replica at `addr`, without hop-by-hop headers.
fn upstream(request: Request<Incoming>, addr: SocketAddr) -> Request<Incoming> {
    let (mut parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    // An address and an origin-form path always make a valid URI.
    if let Ok(uri) = format!("http://{addr}{path}").parse() {
        parts.uri = uri;
    }
    strip_hop_by_hop(&mut parts.headers);
    Request::from_parts(parts, body)
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in HOP_BY_HOP {
        headers.remove(HeaderName::from_static(name));
    }
}

fn full(bytes: Bytes) -> ProxyBody {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// A reply made by the balancer itself, worded like Envoy's local replies.
fn local_reply(status: u16, text: &'static str) -> Response<ProxyBody> {
    let mut response = Response::new(full(Bytes::from_static(text.as_bytes())));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}
