//! The HTTP transport: a pooled hyper 1.x client with a per-request deadline
//! and a cap on how much of a body is read. Failures come back as data.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

use crate::stats::record::FailureKind;

/// A response as far as a workflow step needs it.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub body: Bytes,
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The deadline passed first.
    Deadline,
    /// Something else, with its kind.
    Failed(FailureKind),
}

/// A keep-alive pooled HTTP/1.1 client.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
    max_idle_per_host: usize,
    max_response_bytes: usize,
}

impl HttpClient {
    pub fn new(max_idle_per_host: usize, max_response_bytes: u64) -> HttpClient {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(max_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        HttpClient {
            client,
            max_idle_per_host,
            max_response_bytes: usize::try_from(max_response_bytes).unwrap_or(usize::MAX),
        }
    }

    /// A client with the same settings and a pool of its own, holding at most
    /// `1/share` of the idle connections (one per load worker: a pooled
    /// connection is driven by the runtime that opened it).
    pub fn fresh(&self, share: usize) -> HttpClient {
        HttpClient::new(
            self.max_idle_per_host.div_ceil(share.max(1)),
            self.max_response_bytes as u64,
        )
    }

    /// Send `req` and read its body, all before `deadline`.
    pub async fn send(
        &self,
        req: Request<Full<Bytes>>,
        deadline: Instant,
    ) -> Result<Response, SendError> {
        let work = async {
            let resp = self.client.request(req).await.map_err(|e| {
                SendError::Failed(if e.is_connect() {
                    FailureKind::Connect
                } else {
                    classify(&e)
                })
            })?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), self.max_response_bytes)
                .collect()
                .await
                .map_err(|e| SendError::Failed(classify_body(&*e)))?
                .to_bytes();
            Ok(Response { status, body })
        };
        match tokio::time::timeout_at(deadline, work).await {
            Ok(r) => r,
            Err(_) => Err(SendError::Deadline),
        }
    }
}

/// A connection that closes before any response byte arrives is reported by
/// hyper as an incomplete message; it is a connection failure, not a protocol one.
fn classify(e: &hyper_util::client::legacy::Error) -> FailureKind {
    std::error::Error::source(e).map_or(FailureKind::Other, lost_connection)
}

/// An error while reading the body: over `max_response_bytes` is `other`; the
/// connection reset or closed before the body was complete is `connect`, as it
/// is before the headers (the peer went away, whatever it had sent so far);
/// a malformed body (bad chunk framing) is `other`.
fn classify_body(e: &(dyn std::error::Error + Send + Sync + 'static)) -> FailureKind {
    if e.downcast_ref::<http_body_util::LengthLimitError>()
        .is_some()
    {
        return FailureKind::Other;
    }
    lost_connection(e)
}

/// `connect` when `e` or one of its sources says the connection was lost
/// (reset, aborted, closed early), `other` otherwise.
fn lost_connection(e: &(dyn std::error::Error + 'static)) -> FailureKind {
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_canceled() {
                return FailureKind::Connect;
            }
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | ConnectionRefused
            ) {
                return FailureKind::Connect;
            }
        }
        source = s.source();
    }
    FailureKind::Other
}
