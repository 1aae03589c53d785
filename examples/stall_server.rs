//! A loopback HTTP/1.1 server for `bench/`: answers `200 ok` at once, except that
//! it stalls for `--stall` out of every `--period` (measured from its start): a
//! request arriving during a stall is answered when the stall ends. The stall is
//! global, not per connection, so the latency distribution is known in closed form.
//!
//! `cargo run --release --example stall_server -- [--listen 127.0.0.1:0] [--period 5s] [--stall 500ms]`
//! prints `listening on ADDR` once it accepts connections.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
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
            tokio::spawn(async move {
                let service = service_fn(move |_req: Request<hyper::body::Incoming>| async move {
                    if let Some(at) = stall.release(Instant::now()) {
                        // The timer wheel's 1 ms tick is well inside 1 % of a 500 ms stall.
                        tokio::time::sleep_until(at).await;
                    }
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok\n"))))
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
