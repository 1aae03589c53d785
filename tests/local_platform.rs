//! The embedded platform (`--platform local`) against its real parts on 127.0.0.1:
//! replicas of the reference agent behind the in-process balancer, Istio-style faults,
//! mesh metrics, the emulated HPA under a small time scale, and a clean `down`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use slo_check::autoscale::figures::hpa_metrics;
use slo_check::platform::PlatformError;
use slo_check::platform::local::{self, LocalOptions, LocalPlatformHandle};
use slo_check::scenario::{Abort, Delay, Fault, LocalPlatform};
use slo_check::target::ReplicaObserver;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

/// Every test body runs under this bound.
const TEST_BOUND: Duration = Duration::from_secs(20);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Short, quiet, deterministic defaults: tiny latencies, fixed replicas, fixed seed.
fn quick(replicas: u32) -> LocalPlatform {
    LocalPlatform {
        replicas: Some(replicas),
        autoscale: false,
        startup_delay: ms(100),
        cpu_per_workflow: ms(1),
        llm_median: ms(1),
        llm_p99: ms(3),
        tool_median: ms(1),
        tool_p99: ms(2),
        seed: Some(11),
        ..LocalPlatform::default()
    }
}

async fn up(settings: LocalPlatform, time_scale: f64) -> LocalPlatformHandle {
    local::up(LocalOptions {
        settings,
        time_scale,
        base_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    })
    .await
    .expect("the embedded platform comes up")
}

#[derive(Clone)]
struct Http(Client<HttpConnector, Full<Bytes>>);

impl Http {
    fn new() -> Self {
        Self(Client::builder(TokioExecutor::new()).build_http())
    }

    async fn call(&self, method: Method, url: &str, body: &str) -> (StatusCode, String) {
        let request = Request::builder()
            .method(method)
            .uri(url)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        let response = self.0.request(request).await.expect("request answered");
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn get(&self, url: &str) -> (StatusCode, String) {
        self.call(Method::GET, url, "").await
    }

    /// Sum of the samples of `metric` whose line contains every one of `labels`.
    async fn metric(&self, addr: SocketAddr, metric: &str, labels: &[&str]) -> f64 {
        let (_, text) = self.get(&format!("http://{addr}/metrics")).await;
        text.lines()
            .filter(|l| l.starts_with(&format!("{metric}{{")))
            .filter(|l| labels.iter().all(|want| l.contains(want)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    async fn per_replica(&self, p: &LocalPlatformHandle, endpoint: &str) -> Vec<f64> {
        let label = format!("endpoint=\"{endpoint}\"");
        let mut counts = Vec::new();
        for addr in p.replica_addrs() {
            counts.push(self.metric(addr, "http_requests_total", &[&label]).await);
        }
        counts
    }
}

fn fault(name: &str, delay: Option<(f64, Duration)>, abort: Option<(f64, u16)>) -> Fault {
    Fault {
        name: name.into(),
        start: Duration::ZERO,
        duration: Duration::from_secs(60),
        delay: delay.map(|(percent, fixed_delay)| Delay {
            percent,
            fixed_delay,
        }),
        abort: abort.map(|(percent, http_status)| Abort {
            percent,
            http_status,
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_balancer_spreads_requests_and_prefers_the_least_loaded_replica() {
    timeout(TEST_BOUND, async {
        let p = up(quick(3), 1.0).await;
        let target = p.target();
        assert!(target.emulated);
        assert!(target.description.contains("3 replicas (fixed)"), "{}", target.description);
        let http = Http::new();
        let health = format!("{}/health", target.base_url);
        for _ in 0..30 {
            assert_eq!(http.get(&health).await.0, StatusCode::OK);
        }
        // Sequential requests find every replica idle: ties go round robin.
        assert_eq!(http.per_replica(&p, "/health").await, [10.0, 10.0, 10.0]);

        // Hold one request open on a replica (its body never finishes)...
        let mut held = TcpStream::connect(p.balancer_addr()).await.unwrap();
        held.write_all(
            b"POST /api/v1/workflows HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{",
        )
        .await
        .unwrap();
        sleep(ms(200)).await;
        for _ in 0..20 {
            assert_eq!(http.get(&health).await.0, StatusCode::OK);
        }
        // ...and least-connections sends all later requests to the other two.
        let mut after = http.per_replica(&p, "/health").await;
        after.sort_by(f64::total_cmp);
        assert_eq!(after, [10.0, 20.0, 20.0]);
        held.write_all(b"}").await.unwrap();

        // Submitting and polling a workflow works across replicas (id affinity).
        for _ in 0..6 {
            let (status, body) = http
                .call(Method::POST, &format!("{}/api/v1/workflows", target.base_url), "{\"task\":\"t\"}")
                .await;
            assert_eq!(status, StatusCode::ACCEPTED, "{body}");
            let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let url = format!("{}/api/v1/workflows/{id}", target.base_url);
            assert_eq!(http.get(&url).await.0, StatusCode::OK, "workflow {id}");
        }
        p.down().await;
    })
    .await
    .expect("bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_aborts_answer_for_the_replica_at_the_configured_percentage() {
    timeout(TEST_BOUND, async {
        let p = up(quick(2), 1.0).await;
        let target = p.target();
        let faults = target
            .faults
            .clone()
            .expect("the local platform injects faults");
        let http = Http::new();
        let submit = format!("{}/api/v1/workflows", target.base_url);
        let mesh = p.metrics_addr();

        // Abort at 100 %: every request gets the status, none reaches a replica.
        faults
            .apply(&fault("abort", None, Some((100.0, 503))))
            .await
            .unwrap();
        for _ in 0..20 {
            let (status, body) = http.call(Method::POST, &submit, "{}").await;
            assert_eq!(
                (status, body.as_str()),
                (StatusCode::SERVICE_UNAVAILABLE, "fault filter abort")
            );
        }
        assert_eq!(http.per_replica(&p, "/api/v1/workflows").await, [0.0, 0.0]);
        let fi = [
            "response_code=\"503\"",
            "response_flags=\"FI\"",
            "destination_workload=\"mcp-agent\"",
            "reporter=\"destination\"",
        ];
        assert_eq!(http.metric(mesh, "istio_requests_total", &fi).await, 20.0);

        // Abort at 30 %: the observed fraction of 2000 is within 4 sigma.
        faults
            .apply(&fault("abort", None, Some((30.0, 418))))
            .await
            .unwrap();
        let n = 2000;
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (http, url) = (http.clone(), format!("{}/health", target.base_url));
            workers.spawn(async move {
                let mut aborted = 0;
                for _ in 0..n / 8 {
                    if http.get(&url).await.0 == StatusCode::IM_A_TEAPOT {
                        aborted += 1;
                    }
                }
                aborted
            });
        }
        let aborted: u32 = workers.join_all().await.into_iter().sum();
        let sigma = (f64::from(n) * 0.3 * 0.7).sqrt();
        assert!(
            (f64::from(aborted) - 0.3 * f64::from(n)).abs() <= 4.0 * sigma,
            "{aborted} of {n}"
        );
        p.down().await;
    })
    .await
    .expect("bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_delays_come_before_aborts_and_revert_restores_service() {
    timeout(TEST_BOUND, async {
        let p = up(quick(2), 1.0).await;
        let target = p.target();
        let faults = target
            .faults
            .clone()
            .expect("the local platform injects faults");
        let http = Http::new();
        let submit = format!("{}/api/v1/workflows", target.base_url);
        let mesh = p.metrics_addr();

        // Delay at 100 %: at least the fixed delay, answered by a replica, flag DI.
        faults
            .apply(&fault("slow", Some((100.0, ms(150))), None))
            .await
            .unwrap();
        let started = Instant::now();
        assert_eq!(
            http.get(&format!("{}/health", target.base_url)).await.0,
            StatusCode::OK
        );
        assert!(started.elapsed() >= ms(150));
        let di = ["response_code=\"200\"", "response_flags=\"DI\""];
        assert_eq!(http.metric(mesh, "istio_requests_total", &di).await, 1.0);

        // Delay then abort: the delay is served first, then the abort.
        faults
            .apply(&fault(
                "slow-abort",
                Some((100.0, ms(50))),
                Some((100.0, 500)),
            ))
            .await
            .unwrap();
        let started = Instant::now();
        assert_eq!(
            http.get(&format!("{}/health", target.base_url)).await.0,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert!(
            started.elapsed() >= ms(200),
            "both delays, in order, before the abort"
        );
        let both = ["response_code=\"500\"", "response_flags=\"DI,FI\""];
        assert_eq!(http.metric(mesh, "istio_requests_total", &both).await, 1.0);

        // Reverting restores normal service.
        faults.revert(&fault("slow", None, None)).await.unwrap();
        faults
            .revert(&fault("slow-abort", None, None))
            .await
            .unwrap();
        assert!(p.faults().active_names().is_empty());
        let (status, _) = http.call(Method::POST, &submit, "{}").await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let plain = ["response_code=\"202\"", "response_flags=\"-\""];
        assert_eq!(http.metric(mesh, "istio_requests_total", &plain).await, 1.0);
        let text = http.get(&format!("http://{mesh}/metrics")).await.1;
        assert!(
            text.contains("istio_request_duration_milliseconds_bucket"),
            "{text}"
        );
        p.down().await;
        assert!(
            faults
                .apply(&fault("late", None, Some((1.0, 503))))
                .await
                .is_err()
        );
    })
    .await
    .expect("bounded");
}

/// Submits workflows at about `rate_per_s` until `stop` resolves true (bounded by `limit`).
async fn drive(base_url: String, rate_per_s: u32, limit: Duration, stop: Arc<tokio::sync::Notify>) {
    let http = Http::new();
    let url = format!("{base_url}/api/v1/workflows");
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / rate_per_s);
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        tokio::select! {
            _ = stop.notified() => return,
            _ = ticks.tick() => {}
        }
        let (http, url) = (http.clone(), url.clone());
        // Failures (e.g. 503 over the concurrency limit) are fine: only CPU load matters.
        tokio::spawn(async move { http.call(Method::POST, &url, "{}").await });
    }
}

/// Waits until the timeline's last sample satisfies `cond`, up to `limit`.
async fn wait_for(
    p: &LocalPlatformHandle,
    limit: Duration,
    cond: impl Fn(u32, u32) -> bool,
) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(s) = p.timeline().last() {
            if cond(s.desired, s.ready) {
                return true;
            }
        }
        sleep(ms(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulated_hpa_scales_up_under_load_and_down_after_the_window() {
    timeout(TEST_BOUND, async {
        let time_scale = 0.01;
        let settings = LocalPlatform {
            replicas: None,
            autoscale: true,
            cores: 0.2,
            cpu_per_workflow: ms(20),
            startup_delay: Duration::from_secs(1),
            ..quick(0)
        };
        let p = up(settings, time_scale).await;
        let hpa = p.hpa().clone();
        assert_eq!((hpa.min_replicas, hpa.max_replicas), (2, 10));
        let first = p.timeline()[0];
        assert_eq!((first.desired, first.current, first.ready), (2, 2, 2));

        // 40 workflows/s of 20 ms CPU on 0.2 cores: each replica can do 10/s.
        let load_start = Instant::now();
        let stop = Arc::new(tokio::sync::Notify::new());
        let load = tokio::spawn(drive(
            p.target().base_url,
            40,
            Duration::from_secs(6),
            stop.clone(),
        ));
        assert!(
            wait_for(&p, Duration::from_secs(6), |_, ready| ready >= 4).await,
            "{:?}",
            p.timeline()
        );
        stop.notify_one();
        load.await.unwrap();
        let load_end = Instant::now();

        // The scaled scale-down window is 300 s × 0.01 = 3 s; then down to minReplicas.
        assert!(
            wait_for(&p, Duration::from_secs(10), |desired, ready| desired == 2
                && ready == 2)
            .await,
            "{:?}",
            p.timeline()
        );
        let samples = p.timeline();
        p.down().await;

        let m = hpa_metrics(&samples, load_start);
        assert!(m.decision_s.is_some() && m.scale_up_s.is_some(), "{m:?}");
        assert!(
            m.decision_s <= m.scale_up_s,
            "desired rises before ready: {m:?}"
        );
        assert!(m.peak_replicas >= 4, "{m:?}");
        // Nothing scales down before the stabilisation window has passed since the first
        // scale-up decision (slack: two sync periods of sampling jitter).
        let up_at = samples.iter().find(|s| s.desired > 2).unwrap().at;
        let down_at = samples
            .windows(2)
            .find(|w| w[1].desired < w[0].desired)
            .map(|w| w[1].at)
            .expect("a scale-down");
        let window = Duration::from_secs(300).mul_f64(time_scale);
        let sync = Duration::from_secs(15).mul_f64(time_scale);
        assert!(
            down_at.duration_since(up_at) + 2 * sync >= window,
            "{:?}",
            down_at.duration_since(up_at)
        );
        assert!(down_at > load_end, "no scale-down while the load runs");
        // Counts are consistent in every sample: ready ≤ current, and within the HPA bounds.
        for s in &samples {
            assert!(
                s.ready <= s.current && s.current <= hpa.max_replicas,
                "{s:?}"
            );
        }
    })
    .await
    .expect("bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_closes_every_listener() {
    timeout(TEST_BOUND, async {
        let p = up(quick(2), 1.0).await;
        let addrs = p.scrape_targets();
        assert_eq!(addrs.len(), 3, "two replicas and the mesh metrics");
        let mut all = addrs.clone();
        all.push(p.balancer_addr());
        let http = Http::new();
        assert_eq!(
            http.get(&format!("{}/health", p.target().base_url)).await.0,
            StatusCode::OK
        );
        let observer = p.target().replicas.unwrap();
        p.down().await;
        for addr in all {
            assert!(
                TcpStream::connect(addr).await.is_err(),
                "{addr} still accepts"
            );
        }
        let last = observer.timeline().last().copied().unwrap();
        assert_eq!((last.current, last.ready), (0, 0));
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn bad_settings_are_usage_errors_naming_the_field() {
    let opts = |settings: LocalPlatform| LocalOptions {
        settings,
        time_scale: 1.0,
        base_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    };
    let message = |r: Result<LocalPlatformHandle, PlatformError>| match r {
        Err(PlatformError::Usage(m)) => m,
        Err(other) => panic!("not a usage error: {other}"),
        Ok(_) => panic!("accepted"),
    };
    let m = message(
        local::up(opts(LocalPlatform {
            hpa: "nope.yaml".into(),
            ..quick(2)
        }))
        .await,
    );
    assert!(m.starts_with("platform.local.hpa: cannot read"), "{m}");
    let m = message(
        local::up(opts(LocalPlatform {
            autoscale: true,
            ..quick(1)
        }))
        .await,
    );
    assert!(
        m.contains("platform.local.replicas: 1 is outside the HPA's 2..=10"),
        "{m}"
    );
    let m = message(
        local::up(opts(LocalPlatform {
            cores: -1.0,
            ..quick(2)
        }))
        .await,
    );
    assert!(m.starts_with("platform.local.cores"), "{m}");
    let m = message(
        local::up(LocalOptions {
            time_scale: 0.0,
            ..opts(quick(2))
        })
        .await,
    );
    assert!(m.starts_with("--time-scale"), "{m}");
}
