//! Shared test support: a builder that runs the real `slo-check` binary with
//! short, quiet defaults, and loopback test servers (hyper, or raw TCP for
//! misbehaviour) that start inside a test and stop when dropped.
//!
//! Every server binds 127.0.0.1:0; every child process has a hard timeout.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tempfile::TempDir;
use tokio::net::{TcpListener, TcpStream};

/// Hard limit on any child process: a test never hangs.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// The binary, with the hard timeout applied.
pub fn slo_check() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("slo-check").expect("binary builds");
    cmd.timeout(CHILD_TIMEOUT);
    cmd.env_remove("GITHUB_STEP_SUMMARY");
    // A developer's own history store is never written by the tests.
    cmd.env_remove("SLO_CHECK_HISTORY");
    cmd
}

// ---------------------------------------------------------------- runs

/// A run of `slo-check run` against `target`, with a scenario written to a temp dir.
pub struct Run {
    dir: TempDir,
    scenario: PathBuf,
    target: String,
    extra: Vec<String>,
    env: Vec<(String, String)>,
    quiet: bool,
}

/// What a finished run left behind.
pub struct Finished {
    /// Keeps the report directory alive.
    pub _dir: TempDir,
    pub out: PathBuf,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Write `yaml` as scenario.yaml; the run goes to `target` (e.g. `server.url()`).
    pub fn new(yaml: &str, target: &str) -> Run {
        let dir = tempfile::tempdir().expect("temp dir");
        let scenario = dir.path().join("scenario.yaml");
        std::fs::write(&scenario, yaml).expect("write scenario");
        Run {
            dir,
            scenario,
            target: target.to_string(),
            extra: Vec::new(),
            env: Vec::new(),
            quiet: true,
        }
    }

    /// An extra flag or value.
    pub fn arg(mut self, a: impl Into<String>) -> Run {
        self.extra.push(a.into());
        self
    }

    /// `--label KV`.
    pub fn args_label(self, kv: &str) -> Run {
        self.arg("--label").arg(kv)
    }

    /// An environment variable for the child.
    pub fn env(mut self, k: &str, v: &str) -> Run {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Do not pass --quiet.
    pub fn loud(mut self) -> Run {
        self.quiet = false;
        self
    }

    pub fn exec(self) -> Finished {
        let out = self.dir.path().join("out");
        let mut cmd = slo_check();
        cmd.arg("run")
            .arg("--scenario")
            .arg(&self.scenario)
            .args(["--platform", "url", "--target-url", &self.target])
            .arg("--out")
            .arg(&out);
        if self.quiet {
            cmd.arg("--quiet");
        }
        cmd.args(&self.extra);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let output = cmd.output().expect("slo-check runs");
        Finished {
            _dir: self.dir,
            out,
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Finished {
    /// run.json, parsed (panics with stderr when missing).
    pub fn report(&self) -> Value {
        let path = self.out.join("run.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "no run.json ({e}); exit {}; stderr:\n{}",
                self.code, self.stderr
            )
        });
        serde_json::from_str(&text).expect("run.json is JSON")
    }

    pub fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.out.join(name)).expect("report file exists")
    }

    /// Assert the exit code, showing stderr and the report on mismatch.
    pub fn expect_code(&self, code: i32) -> &Finished {
        if self.code != code {
            let report = std::fs::read_to_string(self.out.join("run.json")).unwrap_or_default();
            let head: String = report.chars().take(4000).collect();
            panic!(
                "expected exit {code}, got {}\nstderr:\n{}\nrun.json (head):\n{head}",
                self.code, self.stderr
            );
        }
        self
    }
}

/// `report.counts.<key>` as u64.
pub fn count(report: &Value, key: &str) -> u64 {
    report["counts"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("counts.{key} missing"))
}

/// `report.counts.failures_by_kind.<kind>` as u64.
pub fn failures(report: &Value, kind: &str) -> u64 {
    report["counts"]["failures_by_kind"][kind]
        .as_u64()
        .unwrap_or_else(|| panic!("failures_by_kind.{kind} missing"))
}

/// The SLO result named `name`.
pub fn slo<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["slos"]
        .as_array()
        .expect("slos is an array")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no SLO named {name} in {}", report["slos"]))
}

/// A workflow of one `GET path` step.
pub fn get_scenario(path: &str, load: &str, slos: &str) -> String {
    format!(
        "name: t\nworkflow:\n  - name: get\n    request: {{ method: GET, path: \"{path}\" }}\nload: {load}\nslos: {slos}\n"
    )
}

// ---------------------------------------------------------------- servers

/// A request as the handlers see it (body already read).
#[derive(Debug, Clone)]
pub struct Req {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub type Resp = Response<Full<Bytes>>;

pub fn respond(status: u16, body: impl Into<Bytes>) -> Resp {
    Response::builder()
        .status(status)
        .body(Full::new(body.into()))
        .expect("valid response")
}

pub fn json(status: u16, v: Value) -> Resp {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())))
        .expect("valid response")
}

/// A server on 127.0.0.1 with its own runtime thread; stops on drop.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Raw TCP: `on_conn` owns each accepted connection.
    pub fn tcp<F, Fut>(on_conn: F) -> Server
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Server::tcp_on("127.0.0.1:0", on_conn)
    }

    /// `tcp`, bound to `bind` (a port of the test cluster's bridge, 198.18.0.1, for
    /// pods on its process node).
    pub fn tcp_on<F, Fut>(bind: &'static str, on_conn: F) -> Server
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = TcpListener::bind(bind)
                    .await
                    .unwrap_or_else(|e| panic!("bind {bind}: {e}"));
                addr_tx.send(listener.local_addr().expect("addr")).ok();
                let on_conn = Arc::new(on_conn);
                let accept = async {
                    loop {
                        if let Ok((stream, _)) = listener.accept().await {
                            let _ = stream.set_nodelay(true);
                            tokio::spawn(on_conn(stream));
                        }
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stop_rx => {}
                }
            });
            // Connections still held (e.g. a server that never answers) are dropped here.
            rt.shutdown_timeout(Duration::from_millis(200));
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server starts");
        Server {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// HTTP/1.1 (hyper): `handler` answers each request.
    pub fn http<F, Fut>(handler: F) -> Server
    where
        F: Fn(Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Resp> + Send + 'static,
    {
        Server::http_on("127.0.0.1:0", handler)
    }

    /// `http`, bound to `bind` (see `tcp_on`).
    pub fn http_on<F, Fut>(bind: &'static str, handler: F) -> Server
    where
        F: Fn(Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Resp> + Send + 'static,
    {
        let handler = Arc::new(handler);
        Server::tcp_on(bind, move |stream| {
            let handler = handler.clone();
            async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let handler = handler.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let req = Req {
                            method: parts.method,
                            path: parts
                                .uri
                                .path_and_query()
                                .map(|p| p.as_str().to_string())
                                .unwrap_or_default(),
                            headers: parts.headers,
                            body,
                        };
                        Ok::<_, std::convert::Infallible>(handler(req).await)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            }
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A loopback port with nothing listening (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

// ---------------------------------------------------------------- kube runs

/// A run of `for_s` seconds at 20/s with an abort fault from 1 s to `fault_end_s`.
pub fn fault_scenario(for_s: u32, fault_end_s: u32) -> String {
    format!(
        "name: kube\nworkflow:\n  - name: get\n    request: {{ method: GET, path: / }}\nload:\n  arrival: constant\n  stages:\n    - {{ for: {for_s}s, rate: 20 }}\n  request_timeout: 5s\nfaults:\n  - {{ name: aborts, start: 1s, for: {}s, abort: {{ percentage: 50, http_status: 503 }} }}\nslos:\n  - {{ name: errors, metric: failure_rate, max: 100% }}\n",
        fault_end_s - 1
    )
}

/// Send the signal `sig` (e.g. `-INT`) to the process `pid`.
pub fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(ok.success(), "kill {sig} {pid} failed");
}
