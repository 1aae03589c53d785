//! The exporter: the `/metrics` listener and the remote-write pushes of one run, from
//! the check before the load (the listener bound, a first push of zeros accepted) to the
//! final push after it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::remote_write::{Pusher, now_ms};
use super::series::{Frame, Now, Tally};
use super::{Feed, LiveReport, RemoteWriteReport, Settings, text};
use crate::exit::Failure;

/// How long open `/metrics` connections may take to finish when the run ends.
const SERVE_GRACE: Duration = Duration::from_secs(1);

/// What the pushes during the run did.
#[derive(Debug, Default)]
struct PushLog {
    pushes: u64,
    failed: u64,
    first_error: Option<String>,
    /// Timestamp of the last push, ms: the next must be later.
    last_ms: i64,
}

impl PushLog {
    /// Push `frame` now (later than the previous push), and note how it went; the first
    /// failure during the run is warned about (`during`), the final push's is an error of
    /// its own.
    async fn push(&mut self, pusher: &Pusher, frame: &Frame, during: bool) -> Result<(), String> {
        let at = now_ms().max(self.last_ms + 1);
        self.last_ms = at;
        self.pushes += 1;
        let result = pusher.push(frame, at).await;
        if let Err(e) = &result {
            self.failed += 1;
            if self.first_error.is_none() {
                self.first_error = Some(e.clone());
            }
            if during && self.failed == 1 {
                eprintln!(
                    "warning: --remote-write {}: a push failed ({e}); the run goes on and later pushes are tried (said once)",
                    pusher.shown
                );
            }
        }
        result
    }
}

/// The listener and the pushes of one run; stops them when dropped.
pub struct Exporter {
    frames: watch::Receiver<Arc<Frame>>,
    stop: CancellationToken,
    server: Option<(SocketAddr, JoinHandle<()>)>,
    pushes: Option<(Pusher, Duration, JoinHandle<PushLog>)>,
}

impl Exporter {
    /// Bind the listener and push the zeros, before any load: a bad `--metrics-listen`
    /// or a remote write that does not accept is a usage error (exit 2). The `Feed`
    /// goes to the recorder's owner.
    pub async fn start(
        settings: &Settings,
        scenario: &str,
        steps: Vec<String>,
        quiet: bool,
    ) -> Result<(Exporter, Feed), Failure> {
        let tally = Tally::new(scenario, &settings.testid, steps);
        let (tx, frames) = watch::channel(Arc::new(tally.frame(Now::default())));
        let stop = CancellationToken::new();
        let server = match settings.listen {
            Some(addr) => Some(listen(addr, frames.clone(), stop.clone(), quiet).await?),
            None => None,
        };
        let pushes = match &settings.remote_write {
            Some(rw) => {
                let pusher = Pusher::new(rw.url.clone()).map_err(Failure::infra)?;
                let mut log = PushLog::default();
                let first = frames.borrow().clone();
                if let Err(e) = pusher.push(&first, now_ms()).await {
                    return Err(Failure::usage(format!(
                        "--remote-write {}: the first push, before the load, failed: {e}; give the URL of a Prometheus remote-write receiver, e.g. http://HOST:9090/api/v1/write of a Prometheus started with --web.enable-remote-write-receiver",
                        pusher.shown
                    )));
                }
                log.pushes = 1;
                log.last_ms = now_ms();
                let task = tokio::spawn(push_every(
                    pusher.clone(),
                    rw.every,
                    frames.clone(),
                    stop.clone(),
                    log,
                ));
                Some((pusher, rw.every, task))
            }
            None => None,
        };
        let exporter = Exporter {
            frames,
            stop,
            server,
            pushes,
        };
        Ok((exporter, Feed { tally, tx }))
    }

    /// After the load: the last push with the final values, the listener closed. The
    /// report for run.json, and a problem when the final values did not get there.
    pub async fn finish(mut self) -> (LiveReport, Option<String>) {
        self.stop.cancel();
        let mut problem = None;
        let remote_write = match self.pushes.take() {
            Some((pusher, every, task)) => {
                let mut log = task.await.unwrap_or_default();
                let last = self.frames.borrow().clone();
                let result = log.push(&pusher, &last, false).await;
                if let Err(e) = &result {
                    problem = Some(format!(
                        "--remote-write {}: the final push failed ({e}): the receiver lacks the run's final values ({} of {} pushes failed)",
                        pusher.shown, log.failed, log.pushes
                    ));
                }
                Some(RemoteWriteReport {
                    url: pusher.shown.clone(),
                    interval_s: every.as_secs_f64(),
                    pushes: log.pushes,
                    failed: log.failed,
                    first_error: log.first_error,
                    final_push_ok: result.is_ok(),
                })
            }
            None => None,
        };
        let metrics_listen = match self.server.take() {
            Some((addr, task)) => {
                let _ = task.await;
                Some(addr.to_string())
            }
            None => None,
        };
        let report = LiveReport {
            metrics_listen,
            remote_write,
        };
        (report, problem)
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Serve `GET /metrics` on `addr` until `stop`; the address actually bound.
async fn listen(
    addr: SocketAddr,
    frames: watch::Receiver<Arc<Frame>>,
    stop: CancellationToken,
    quiet: bool,
) -> Result<(SocketAddr, JoinHandle<()>), Failure> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        Failure::usage(format!(
            "--metrics-listen {addr}: cannot listen there: {e}; give a free local HOST:PORT, e.g. 127.0.0.1:9464 (port 0: any free port)"
        ))
    })?;
    let bound = listener.local_addr().unwrap_or(addr);
    if !quiet {
        eprintln!("live metrics: http://{bound}/metrics");
    }
    let handler = move |req: hyper::Request<hyper::body::Incoming>| {
        let frames = frames.clone();
        async move {
            let response = if req.method() == Method::GET && req.uri().path() == "/metrics" {
                let frame = frames.borrow().clone();
                let body = text::render(&frame);
                Response::builder()
                    .header(hyper::header::CONTENT_TYPE, text::CONTENT_TYPE)
                    .body(Full::new(Bytes::from(body)))
            } else {
                Response::builder()
                    .status(StatusCode::NOT_FOUND)
                    .body(Full::new(Bytes::from_static(
                        b"slo-check serves GET /metrics\n",
                    )))
            };
            Ok::<_, Infallible>(response.expect("a static response is valid"))
        }
    };
    let task = tokio::spawn(crate::server::serve(listener, stop, SERVE_GRACE, handler));
    Ok((bound, task))
}

/// Push the newest frame every `every` until `stop`; a failed push is noted (and warned
/// about once), never retried: the next push carries the counters on.
async fn push_every(
    pusher: Pusher,
    every: Duration,
    frames: watch::Receiver<Arc<Frame>>,
    stop: CancellationToken,
    mut log: PushLog,
) -> PushLog {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return log,
            _ = tick.tick() => {}
        }
        let frame = frames.borrow().clone();
        // A push in progress when the run ends is abandoned; the final push follows.
        tokio::select! {
            _ = stop.cancelled() => return log,
            _ = log.push(&pusher, &frame, true) => {}
        }
    }
}
