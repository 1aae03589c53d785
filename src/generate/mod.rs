//! One generator of a distributed run (`slo-check generate`): its shard of the plan's
//! schedule, driven by the same engine and workflows as `run`, from the instant its
//! coordinator gives; its records kept in order and served over the control API of
//! `phase::remote::wire` until the coordinator has them all. It exits when told to, or by
//! itself when no coordinator has asked anything for `IDLE_EXIT`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as StdInstant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::mpsc::unbounded_channel;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::load::engine::{self, Control, Issued, Live, Pacing};
use crate::load::schedule::Shard;
use crate::phase::remote::wire::{self, Events, Fingerprint, Start, Status};
use crate::phase::remote::{fingerprint, unix_us};
use crate::plan::Plan;
use crate::stats::record::Event;

/// With no request from a coordinator for this long, the generator exits by itself.
pub const IDLE_EXIT: Duration = Duration::from_secs(60);

/// What one generator runs.
pub struct GenerateConfig {
    pub plan: Plan,
    pub target_url: String,
    pub shard: Shard,
}

/// How a generator ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenerateEnd {
    /// Its coordinator told it to exit.
    Told,
    /// No coordinator asked anything for `IDLE_EXIT`.
    Idle,
}

/// A generator listening, not yet started.
pub struct Generator {
    listener: TcpListener,
    state: Arc<State>,
}

struct State {
    plan: Plan,
    target_url: String,
    shard: Shard,
    fingerprint: Fingerprint,
    log: Mutex<Vec<Event>>,
    live: Arc<Live>,
    control: Control,
    started: AtomicBool,
    schedule_over: AtomicBool,
    stopped: AtomicBool,
    done: AtomicBool,
    last_contact: Mutex<StdInstant>,
    exit: CancellationToken,
}

impl Generator {
    /// Bind `listen`; the generator serves nothing until `serve`.
    pub async fn bind(cfg: GenerateConfig, listen: SocketAddr) -> Result<Generator, String> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| format!("--listen {listen}: cannot bind: {e}"))?;
        let fingerprint = fingerprint(&cfg.plan);
        Ok(Generator {
            listener,
            state: Arc::new(State {
                plan: cfg.plan,
                target_url: cfg.target_url,
                shard: cfg.shard,
                fingerprint,
                log: Mutex::new(Vec::new()),
                live: Arc::new(Live::default()),
                control: Control::default(),
                started: AtomicBool::new(false),
                schedule_over: AtomicBool::new(false),
                stopped: AtomicBool::new(false),
                done: AtomicBool::new(false),
                last_contact: Mutex::new(StdInstant::now()),
                exit: CancellationToken::new(),
            }),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> Result<SocketAddr, String> {
        self.listener.local_addr().map_err(|e| e.to_string())
    }

    /// Serve the control API until told to exit or idle for `IDLE_EXIT`.
    pub async fn serve(self) -> GenerateEnd {
        let state = self.state.clone();
        let stop = state.exit.clone();
        let server = tokio::spawn(crate::server::serve(
            self.listener,
            stop.clone(),
            Duration::from_secs(2),
            move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, req).await) }
            },
        ));
        let mut end = GenerateEnd::Told;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            let idle = self
                .state
                .last_contact
                .lock()
                .map(|t| t.elapsed())
                .unwrap_or_default();
            if idle >= IDLE_EXIT {
                end = GenerateEnd::Idle;
                // Whatever still runs ends now: nobody will read it.
                self.state.control.stop_starts.cancel();
                self.state.control.abandon.cancel();
                stop.cancel();
                break;
            }
        }
        let _ = server.await;
        end
    }
}

async fn handle(state: &Arc<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if let Ok(mut t) = state.last_contact.lock() {
        *t = StdInstant::now();
    }
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    match (req.method(), path.as_str()) {
        (&Method::GET, "/status") => json(&Status {
            shard: format!("{}/{}", state.shard.index, state.shard.count),
            fingerprint: state.fingerprint.clone(),
            now_unix_us: unix_us(),
            started: state.started.load(Ordering::SeqCst),
        }),
        (&Method::POST, "/start") => {
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return text(StatusCode::BAD_REQUEST, &e.to_string()),
            };
            let start: Start = match serde_json::from_slice(&body) {
                Ok(s) => s,
                Err(e) => return text(StatusCode::BAD_REQUEST, &format!("not a start: {e}")),
            };
            if state.started.swap(true, Ordering::SeqCst) {
                return text(StatusCode::CONFLICT, "already started");
            }
            match begin(state.clone(), start) {
                Ok(()) => text(StatusCode::OK, "started"),
                Err(e) => text(StatusCode::BAD_REQUEST, &e),
            }
        }
        (&Method::GET, "/events") => {
            let Some(from) = wire::events_from(query.as_deref()) else {
                return text(StatusCode::BAD_REQUEST, "expected /events?from=K");
            };
            // `done` is read before the log, so a done answer holds every event.
            let done = state.done.load(Ordering::SeqCst);
            let (events, total) = match state.log.lock() {
                Ok(log) => {
                    let from = (from as usize).min(log.len());
                    let to = (from + wire::MAX_EVENTS).min(log.len());
                    (log[from..to].to_vec(), log.len() as u64)
                }
                Err(_) => return text(StatusCode::INTERNAL_SERVER_ERROR, "the log is poisoned"),
            };
            let live = &state.live;
            json(&Events {
                from: from.min(total),
                events,
                started: live.started.load(Ordering::Relaxed),
                dropped: live.dropped.load(Ordering::Relaxed),
                in_flight: live.in_flight.load(Ordering::Relaxed),
                schedule_over: state.schedule_over.load(Ordering::SeqCst),
                stopped: state.stopped.load(Ordering::SeqCst),
                done,
                total,
            })
        }
        (&Method::POST, "/stop") => {
            state.control.stop_starts.cancel();
            text(StatusCode::OK, "stopping starts")
        }
        (&Method::POST, "/abandon") => {
            state.control.abandon.cancel();
            text(StatusCode::OK, "abandoning")
        }
        (&Method::POST, "/exit") => {
            state.control.stop_starts.cancel();
            state.control.abandon.cancel();
            state.exit.cancel();
            text(StatusCode::OK, "exiting")
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "slo-check generate answers GET /status, POST /start, GET /events?from=K, POST /stop, /abandon, /exit",
        ),
    }
}

/// Start the shard's schedule at `start.zero_unix_us` on this machine's clock.
fn begin(state: Arc<State>, start: Start) -> Result<(), String> {
    let runner = Arc::new(
        crate::phase::runner(&state.plan, &state.target_url)
            .map_err(|e| format!("the target URL {}: {e}", state.target_url))?,
    );
    let now_unix = unix_us() as i64;
    let ahead_us = start.zero_unix_us as i64 - now_unix;
    // A zero already past starts now: the late starts show as schedule lag.
    let zero = Instant::now() + Duration::from_micros(ahead_us.max(0) as u64);
    let (tx, mut rx) = unbounded_channel::<Vec<Event>>();
    let collector = {
        let state = state.clone();
        tokio::spawn(async move {
            while let Some(batch) = rx.recv().await {
                if let Ok(mut log) = state.log.lock() {
                    log.extend(batch);
                }
            }
            state.done.store(true, Ordering::SeqCst);
        })
    };
    tokio::spawn(async move {
        let load = &state.plan.scenario.load;
        let issued = engine::drive(
            &state.plan.schedule,
            Pacing {
                max_in_flight: load.max_in_flight,
                slack: load.pacing_slack,
                shard: state.shard,
            },
            runner,
            tx,
            state.live.clone(),
            state.control.clone(),
            zero,
        )
        .await;
        if issued == Issued::Stopped {
            state.stopped.store(true, Ordering::SeqCst);
        }
        state.schedule_over.store(true, Ordering::SeqCst);
        let _ = collector.await;
    });
    Ok(())
}

fn json<T: serde::Serialize>(v: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec(v) {
        Ok(body) => Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_default(),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}
