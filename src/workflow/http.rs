//! The HTTP transport of the load path: a lean HTTP/1.1 client, one per load
//! worker, with its own keep-alive pool, a per-request deadline and a cap on
//! how much of a body is read. Failures come back as data.
//!
//! Why not hyper's client: on this path every microsecond of client CPU is a
//! start the worker cannot issue on time. hyper-util's pooled client sends each
//! request through a channel to a connection task and back through a oneshot,
//! keys its pool by authority and boxes its futures; here the workflow's own
//! task writes the request (pre-encoded once when nothing in it is templated)
//! and reads the response on a connection it checked out, parsing the head
//! with `httparse` (the parser hyper itself uses) into a stack array, and
//! copying the body only when the step needs it (captures, polls).

use std::io;
use std::mem::MaybeUninit;
use std::sync::Mutex;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use hyper::{Method, StatusCode, Uri};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::scenario::VERSION_HEADER;

/// The header Envoy adds to the 503 it answers itself when a circuit breaker's
/// limit is reached (`x-envoy-overloaded: true`, response flag UO).
const OVERLOADED_HEADER: &str = "x-envoy-overloaded";
use crate::stats::record::FailureKind;

/// A response as far as a workflow step needs it.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    /// Empty unless the request asked for the body.
    pub body: Bytes,
    /// The `x-agent-version` header: which version of the agent answered.
    pub version: Option<String>,
    /// The answer carries `x-envoy-overloaded`: Envoy refused the request at a
    /// circuit breaker's limit (response flag UO) before any upstream saw it.
    pub overloaded: bool,
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The deadline passed first.
    Deadline,
    /// Something else, with its kind.
    Failed(FailureKind),
}

/// An encoded request: the whole message, head and body, ready to write.
#[derive(Debug, Clone)]
pub struct Encoded {
    bytes: Bytes,
    /// A HEAD request: the response has no body whatever its headers say.
    head: bool,
}

/// Headers and body of one request, before encoding.
pub struct Parts<'a> {
    pub method: &'a Method,
    /// The request target: path and query.
    pub target: &'a str,
    /// `host:port` of the target, sent as `Host` unless `headers` has one.
    pub authority: &'a str,
    pub headers: &'a [(&'a str, &'a [u8])],
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

impl Encoded {
    /// Encode `parts` as an HTTP/1.1 request. The body is framed with
    /// `content-length` (sent for every method that usually carries a body,
    /// and for any request with one).
    pub fn new(parts: &Parts<'_>) -> Encoded {
        let mut out = Vec::with_capacity(128 + parts.target.len() + parts.body.len());
        out.extend_from_slice(parts.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(parts.target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        let has = |name: &str| {
            parts
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        if !has("host") {
            header(&mut out, "host", parts.authority.as_bytes());
        }
        if let Some(ct) = parts.content_type.filter(|_| !has("content-type")) {
            header(&mut out, "content-type", ct.as_bytes());
        }
        for (name, value) in parts.headers {
            header(&mut out, name, value);
        }
        let bodyless = matches!(
            *parts.method,
            Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS | Method::TRACE
        );
        if !parts.body.is_empty() || !bodyless {
            let mut digits = itoa::Buffer::new();
            header(
                &mut out,
                "content-length",
                digits.format(parts.body.len()).as_bytes(),
            );
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(parts.body);
        Encoded {
            bytes: Bytes::from(out),
            head: *parts.method == Method::HEAD,
        }
    }

    #[cfg(test)]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

fn header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Where the target is: connect address and the `Host` value.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Host as given (a name, an IPv4 literal, or an IPv6 literal without brackets).
    host: String,
    port: u16,
    /// `host:port` as in the URL, for the `Host` header.
    pub authority: String,
    /// The base URL's path with no trailing slash (`""` for none).
    pub path_prefix: String,
}

impl Endpoint {
    /// The endpoint of an `http://` base URL; `None` when it is not one.
    pub fn of(base_url: &str) -> Option<Endpoint> {
        let uri: Uri = base_url.parse().ok()?;
        if uri.scheme_str() != Some("http") {
            return None;
        }
        let authority = uri.authority()?;
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        Some(Endpoint {
            host: host.to_string(),
            port: authority.port_u16().unwrap_or(80),
            authority: authority.as_str().to_string(),
            path_prefix: uri.path().trim_end_matches('/').to_string(),
        })
    }
}

/// How long a connect may take (within the request's deadline).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Most bytes of a response head (status line and headers).
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most headers in a response (hyper's default too).
const MAX_HEADERS: usize = 100;
/// A connection's read buffer starts at this size.
const READ_BUF: usize = 8 * 1024;

/// One keep-alive connection and its read buffer.
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

/// A keep-alive HTTP/1.1 client for one endpoint, owned by one load worker.
pub struct HttpClient {
    endpoint: Endpoint,
    idle: Mutex<Vec<Conn>>,
    max_idle: usize,
    max_response_bytes: usize,
}

impl HttpClient {
    pub fn new(endpoint: Endpoint, max_idle: usize, max_response_bytes: u64) -> HttpClient {
        HttpClient {
            endpoint,
            idle: Mutex::new(Vec::new()),
            max_idle,
            max_response_bytes: usize::try_from(max_response_bytes).unwrap_or(usize::MAX),
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// A client with the same settings and a pool of its own, holding at most
    /// `1/share` of the idle connections (one per load worker: a connection is
    /// driven by the runtime that opened it).
    pub fn fresh(&self, share: usize) -> HttpClient {
        HttpClient::new(
            self.endpoint.clone(),
            self.max_idle.div_ceil(share.max(1)),
            self.max_response_bytes as u64,
        )
    }

    /// Send `req` and read the response (its body too when `want_body`), all
    /// before `deadline`.
    pub async fn send(
        &self,
        req: &Encoded,
        want_body: bool,
        deadline: Instant,
    ) -> Result<Response, SendError> {
        match tokio::time::timeout_at(deadline, self.exchange(req, want_body)).await {
            Ok(r) => r.map_err(SendError::Failed),
            Err(_) => Err(SendError::Deadline),
        }
    }

    async fn exchange(&self, req: &Encoded, want_body: bool) -> Result<Response, FailureKind> {
        let mut conn = match self.checkout() {
            Some(c) => c,
            None => self.connect().await?,
        };
        conn.stream
            .write_all(&req.bytes)
            .await
            .map_err(|e| io_kind(&e))?;
        let (resp, keep_alive) = conn
            .read_response(req.head, want_body, self.max_response_bytes)
            .await?;
        if keep_alive && conn.buf.is_empty() {
            self.checkin(conn);
        }
        Ok(resp)
    }

    /// An idle connection the server has not closed, if there is one.
    fn checkout(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(conn) = idle.pop() {
            if conn.is_idle() {
                return Some(conn);
            }
        }
        None
    }

    fn checkin(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }

    async fn connect(&self) -> Result<Conn, FailureKind> {
        let ep = &self.endpoint;
        let connect = TcpStream::connect((ep.host.as_str(), ep.port));
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(_)) | Err(_) => return Err(FailureKind::Connect),
        };
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream,
            buf: BytesMut::with_capacity(READ_BUF),
        })
    }
}

/// An I/O error's failure kind: the connection lost (reset, aborted, closed,
/// refused) is `connect`; anything else `other`.
fn io_kind(e: &io::Error) -> FailureKind {
    use io::ErrorKind::*;
    match e.kind() {
        ConnectionReset | ConnectionAborted | BrokenPipe | ConnectionRefused | UnexpectedEof
        | NotConnected => FailureKind::Connect,
        _ => FailureKind::Other,
    }
}

/// How a response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// What the head says.
struct Head {
    status: StatusCode,
    framing: Framing,
    keep_alive: bool,
    /// Bytes of the head in the buffer.
    len: usize,
    /// The `x-agent-version` header, when the answer has one.
    version: Option<String>,
    /// The `x-envoy-overloaded` header is present.
    overloaded: bool,
}

impl Conn {
    /// Whether a pooled connection is still open with nothing unread: the server
    /// closes idle keep-alive connections whenever it likes. Costs no system
    /// call when the event loop has seen nothing on the socket since the last read.
    fn is_idle(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Read more into the buffer; a closed connection is `Ok(0)`.
    async fn fill(&mut self) -> Result<usize, FailureKind> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(READ_BUF);
        }
        self.stream
            .read_buf(&mut self.buf)
            .await
            .map_err(|e| io_kind(&e))
    }

    /// Read one response; `(response, whether the connection may be reused)`.
    async fn read_response(
        &mut self,
        head_request: bool,
        want_body: bool,
        max_body: usize,
    ) -> Result<(Response, bool), FailureKind> {
        let head = loop {
            match parse_head(&self.buf, head_request)? {
                Some(h) if h.status.is_informational() => {
                    // 100 Continue and friends: skip, the real response follows.
                    self.buf.advance(h.len);
                }
                Some(h) => break h,
                None if self.buf.len() >= MAX_HEAD_BYTES => return Err(FailureKind::Other),
                None => {
                    if self.fill().await? == 0 {
                        return Err(FailureKind::Connect);
                    }
                }
            }
        };
        self.buf.advance(head.len);
        let mut body = Body::new(want_body, max_body);
        match head.framing {
            Framing::None => {}
            Framing::Length(n) => self.read_length(n, &mut body).await?,
            Framing::Chunked => self.read_chunked(&mut body).await?,
            Framing::UntilClose => self.read_until_close(&mut body).await?,
        }
        let keep_alive = head.keep_alive && head.framing != Framing::UntilClose;
        Ok((
            Response {
                status: head.status,
                body: body.finish(),
                version: head.version,
                overloaded: head.overloaded,
            },
            keep_alive,
        ))
    }

    async fn read_length(&mut self, mut left: u64, body: &mut Body) -> Result<(), FailureKind> {
        body.expect(left)?;
        loop {
            let take = (self.buf.len() as u64).min(left) as usize;
            body.push(&self.buf[..take])?;
            self.buf.advance(take);
            left -= take as u64;
            if left == 0 {
                return Ok(());
            }
            if self.fill().await? == 0 {
                return Err(FailureKind::Connect);
            }
        }
    }

    async fn read_chunked(&mut self, body: &mut Body) -> Result<(), FailureKind> {
        loop {
            let size = loop {
                match httparse::parse_chunk_size(&self.buf) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.buf.advance(used);
                        break size;
                    }
                    Ok(httparse::Status::Partial) if self.buf.len() < MAX_HEAD_BYTES => {
                        if self.fill().await? == 0 {
                            return Err(FailureKind::Connect);
                        }
                    }
                    _ => return Err(FailureKind::Other),
                }
            };
            if size == 0 {
                return self.skip_trailers().await;
            }
            self.read_length(size, body).await?;
            self.expect_crlf().await?;
        }
    }

    /// The CRLF after a chunk's data.
    async fn expect_crlf(&mut self) -> Result<(), FailureKind> {
        while self.buf.len() < 2 {
            if self.fill().await? == 0 {
                return Err(FailureKind::Connect);
            }
        }
        if &self.buf[..2] != b"\r\n" {
            return Err(FailureKind::Other);
        }
        self.buf.advance(2);
        Ok(())
    }

    /// Trailer fields after the last chunk, up to the empty line.
    async fn skip_trailers(&mut self) -> Result<(), FailureKind> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                self.buf.advance(end + 2);
                if end == 0 {
                    return Ok(());
                }
                continue;
            }
            if self.buf.len() >= MAX_HEAD_BYTES {
                return Err(FailureKind::Other);
            }
            if self.fill().await? == 0 {
                return Err(FailureKind::Connect);
            }
        }
    }

    async fn read_until_close(&mut self, body: &mut Body) -> Result<(), FailureKind> {
        loop {
            body.push(&self.buf)?;
            self.buf.clear();
            if self.fill().await? == 0 {
                return Ok(());
            }
        }
    }
}

/// Parse a response head at the start of `buf`; `None` until it is complete.
fn parse_head(buf: &[u8], head_request: bool) -> Result<Option<Head>, FailureKind> {
    // Uninitialised: zeroing a hundred headers per response costs more than parsing them.
    let mut headers = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut resp,
        buf,
        &mut headers,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(FailureKind::Other),
    };
    let code = resp.code.ok_or(FailureKind::Other)?;
    let status = StatusCode::from_u16(code).map_err(|_| FailureKind::Other)?;
    let http11 = resp.version == Some(1);
    let mut keep_alive = http11;
    let mut length: Option<u64> = None;
    let mut transfer_encoding: Option<&[u8]> = None;
    let mut version = None;
    let mut overloaded = false;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case(VERSION_HEADER) {
            version = std::str::from_utf8(h.value).ok().map(str::to_owned);
            continue;
        }
        if h.name.eq_ignore_ascii_case(OVERLOADED_HEADER) {
            overloaded = true;
            continue;
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = parse_length(h.value).ok_or(FailureKind::Other)?;
            if length.is_some_and(|m| m != n) {
                return Err(FailureKind::Other);
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = Some(h.value);
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && !http11 {
                    keep_alive = true;
                }
            }
        }
    }
    let framing = if head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        Framing::None
    } else if let Some(te) = transfer_encoding {
        let last = te.rsplit(|b| *b == b',').next().unwrap_or_default();
        if last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else {
        match length {
            Some(0) => Framing::None,
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    Ok(Some(Head {
        status,
        framing,
        keep_alive,
        len,
        version,
        overloaded,
    }))
}

/// A `content-length` value: ASCII digits only.
fn parse_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// A response body being read: kept when wanted, counted either way, and
/// failed (`other`) as soon as it passes the cap.
struct Body {
    keep: Option<Vec<u8>>,
    seen: usize,
    max: usize,
}

impl Body {
    fn new(keep: bool, max: usize) -> Body {
        Body {
            keep: keep.then(Vec::new),
            seen: 0,
            max,
        }
    }

    /// A body of `n` bytes is announced: over the cap fails now; the buffer is sized once.
    fn expect(&mut self, n: u64) -> Result<(), FailureKind> {
        if self.seen as u64 + n > self.max as u64 {
            return Err(FailureKind::Other);
        }
        if let Some(k) = &mut self.keep {
            k.reserve(n as usize);
        }
        Ok(())
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), FailureKind> {
        self.seen += bytes.len();
        if self.seen > self.max {
            return Err(FailureKind::Other);
        }
        if let Some(k) = &mut self.keep {
            k.extend_from_slice(bytes);
        }
        Ok(())
    }

    fn finish(self) -> Bytes {
        self.keep.map(Bytes::from).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
