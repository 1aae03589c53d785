//! A loopback HTTP/1.1 server for `bench/`: answers `200 ok` at once, except that
//! it stalls for `--stall` out of every `--period` (measured from its start): a
//! request arriving during a stall is answered when the stall ends. The stall is
//! global, not per connection, so the latency distribution is known in closed form.
//!
//! `cargo run --release --example stall_server -- [--listen 127.0.0.1:0] [--period 5s] [--stall 500ms]`
//! prints `listening on ADDR` once it accepts connections.
//!
//! With `--workflow-polls N` it serves the seeds' workflow shape instead of `ok`, for
//! bench/'s workflow benchmark: any POST submits a workflow and gets `{"id":"ID"}`; a
//! GET whose last path segment is an ID polls it, `{"status":"pending"}` until its
//! Nth poll answers `{"status":"completed"}`; `GET /stats` returns the server's own
//! truth as JSON (workflows submitted and completed, polls, and the p50/p95/p99 of
//! submit-to-completion in ms, each measured from the submit's arrival to the
//! completing poll's answer). The stall applies to every request alike.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::time::Instant;

/// Where the stall sits in each period: at its end, `[period − stall, period)`.
#[derive(Clone, Copy)]
struct Stall {
    zero: Instant,
    period: Duration,
    stall: Duration,
}

impl Stall {
    /// When a request arriving at `now` may be answered.
    fn release(&self, now: Instant) -> Option<Instant> {
        let since = now.saturating_duration_since(self.zero);
        let period_ns = self.period.as_nanos();
        let phase = Duration::from_nanos((since.as_nanos() % period_ns) as u64);
        let stall_from = self.period - self.stall;
        (phase >= stall_from).then(|| now + (self.period - phase))
    }
}

/// `--workflow-polls`: workflows in progress and the server's record of finished ones.
struct Workflows {
    /// Polls that complete a workflow: the Nth answers `completed`.
    polls_to_complete: u32,
    /// The id the next submit gets.
    next_id: u64,
    /// Open workflows: submit arrival and polls so far.
    open: HashMap<u64, (Instant, u32)>,
    /// Submit-to-completion of every finished workflow, ms.
    done_ms: Vec<f64>,
    /// Polls answered, completing ones included.
    polls: u64,
}

impl Workflows {
    /// The answer to `method path`, which arrived at `arrived` (answered now).
    fn answer(&mut self, method: &Method, path: &str, arrived: Instant) -> (StatusCode, String) {
        if method == Method::POST {
            let id = self.next_id;
            self.next_id += 1;
            self.open.insert(id, (arrived, 0));
            return (StatusCode::OK, format!("{{\"id\":\"{id}\"}}"));
        }
        if path == "/stats" {
            return (StatusCode::OK, self.stats());
        }
        let id = path.rsplit('/').next().and_then(|s| s.parse::<u64>().ok());
        let Some((id, (submitted, polls))) =
            id.and_then(|id| self.open.get_mut(&id).map(|w| (id, w)))
        else {
            return (
                StatusCode::NOT_FOUND,
                "{\"error\":\"no such workflow\"}".into(),
            );
        };
        self.polls += 1;
        *polls += 1;
        if *polls < self.polls_to_complete {
            return (StatusCode::OK, "{\"status\":\"pending\"}".into());
        }
        let ms = Instant::now().duration_since(*submitted).as_secs_f64() * 1e3;
        self.open.remove(&id);
        self.done_ms.push(ms);
        (StatusCode::OK, "{\"status\":\"completed\"}".into())
    }

    fn stats(&self) -> String {
        let mut ms = self.done_ms.clone();
        ms.sort_by(f64::total_cmp);
        let q = |q: f64| {
            let i = ((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len().max(1)) - 1;
            ms.get(i).map_or("null".to_string(), |v| format!("{v:.3}"))
        };
        format!(
            "{{\"submitted\":{},\"completed\":{},\"polls\":{},\"p50_ms\":{},\"p95_ms\":{},\"p99_ms\":{}}}",
            self.next_id,
            ms.len(),
            self.polls,
            q(0.50),
            q(0.95),
            q(0.99)
        )
    }
}

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let listen = arg(&args, "--listen", "127.0.0.1:0");
    let parse = |name: &str, default: &str| {
        humantime::parse_duration(&arg(&args, name, default)).unwrap_or_else(|e| {
            eprintln!("error: {name}: {e}");
            std::process::exit(2)
        })
    };
    let (period, stall) = (parse("--period", "5s"), parse("--stall", "500ms"));
    if stall >= period {
        eprintln!("error: --stall must be shorter than --period");
        std::process::exit(2);
    }
    let workflows = args.iter().any(|a| a == "--workflow-polls").then(|| {
        let n = arg(&args, "--workflow-polls", "").parse::<u32>();
        let polls_to_complete = n.ok().filter(|n| *n >= 1).unwrap_or_else(|| {
            eprintln!("error: --workflow-polls: a whole number of polls, 1 or more");
            std::process::exit(2)
        });
        Arc::new(Mutex::new(Workflows {
            polls_to_complete,
            next_id: 0,
            open: HashMap::new(),
            done_ms: Vec::new(),
            polls: 0,
        }))
    });
    // One thread: the server's own scheduling must not add latency of its own
    // beyond the stall, and a sleeping request costs nothing while it waits.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(&listen).await?;
        println!("listening on {}", listener.local_addr()?);
        let stall = Stall {
            zero: Instant::now(),
            period,
            stall,
        };
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let workflows = workflows.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    // Only the workflow mode reads the request; otherwise it is dropped
                    // here, unread, as it always was.
                    let workflow = workflows.clone().map(|w| {
                        let (method, path) = (req.method().clone(), req.uri().path().to_string());
                        (w, method, path, req.into_body())
                    });
                    async move {
                        let arrived = Instant::now();
                        if let Some(at) = stall.release(arrived) {
                            // The timer wheel's 1 ms tick is well inside 1 % of a 500 ms stall.
                            tokio::time::sleep_until(at).await;
                        }
                        let Some((workflows, method, path, body)) = workflow else {
                            return Ok::<_, Infallible>(Response::new(Full::new(
                                Bytes::from_static(b"ok\n"),
                            )));
                        };
                        // Read the body, so that the connection stays reusable.
                        let _ = body.collect().await;
                        let (status, body) =
                            workflows.lock().unwrap().answer(&method, &path, arrived);
                        let mut response = Response::new(Full::new(Bytes::from(body)));
                        *response.status_mut() = status;
                        response.headers_mut().insert(
                            hyper::header::CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static("application/json"),
                        );
                        Ok(response)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
