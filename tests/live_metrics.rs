//! Live metrics out: `--remote-write` into a real Prometheus (its remote-write receiver)
//! whose series, queried back, equal run.json's counts; `--metrics-listen` scraped while
//! the run runs and checked by `promtool check metrics`; pushes that fail at the start
//! (exit 2, before the load), in the middle (warned once) and at the end (exit 3, the
//! reports kept); bad flags.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prost::Message;
use serde_json::Value;
use slo_check::live::remote_write::WriteRequest;

use crate::support::common::{Run, Server, closed_port, get_scenario, respond, slo_check};
use crate::support::prom::{PromServer, free_port, http_get, promtool_binary};

/// The embedded platform's spike scenario, time-scaled to ~10 s, pushing to `url`.
fn embedded_spike(out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut cmd = slo_check();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "run",
            "--scenario",
            "spike",
            "--time-scale",
            "0.05",
            "--quiet",
        ])
        .args(["--history", "off", "--out"])
        .arg(out)
        .args(extra)
        .timeout(Duration::from_secs(120));
    cmd.output().expect("slo-check runs")
}

#[test]
fn remote_write_into_a_real_prometheus_holds_run_json_counts() {
    let prom = PromServer::remote_write_receiver();
    let out = tempfile::tempdir().unwrap();
    let testid = "live-remote-write-1";
    let run = embedded_spike(
        out.path(),
        &["--testid", testid, "--remote-write", &prom.write_url()],
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("run.json")).unwrap())
            .unwrap_or_else(|e| panic!("no run.json ({e}): {stderr}"));
    // The verdict is the scenario's business (the HPA SLO may fail on a busy machine);
    // the pushes must not have changed it into a problem.
    assert!(
        matches!(run.status.code(), Some(0 | 1)),
        "{:?}: {stderr}",
        run.status
    );
    assert_eq!(report["testid"], testid);
    let rw = &report["live_metrics"]["remote_write"];
    assert_eq!(rw["failed"], 0, "{rw}");
    assert_eq!(rw["final_push_ok"], true, "{rw}");
    assert!(!stderr.contains("warning: --remote-write"), "{stderr}");
    // ~10 s of load at 1 s: a push before, about one a second, and the final one.
    let pushes = rw["pushes"].as_u64().unwrap();
    assert!(pushes >= 8, "{rw}");

    let sel = format!("{{testid=\"{testid}\",scenario=\"spike\"}}");
    let one = |promql: &str| -> f64 {
        let r = prom.query(promql);
        assert_eq!(r.len(), 1, "{promql}: {r:?}\n{}", prom.log());
        r[0].1
    };
    let counts = &report["counts"];
    let n = |key: &str| counts[key].as_u64().unwrap() as f64;
    assert!(n("started") > 500.0, "{counts}");
    assert_eq!(
        one(&format!("slo_check_workflows_started_total{sel}")),
        n("started")
    );
    assert_eq!(
        one(&format!("slo_check_workflows_succeeded_total{sel}")),
        n("succeeded")
    );
    assert_eq!(
        one(&format!("slo_check_workflows_dropped_total{sel}")),
        n("dropped")
    );
    assert_eq!(
        one(&format!("sum(slo_check_workflows_failed_total{sel})")),
        n("failed")
    );
    // The scenario's abort fault: 503s, counted as kind `status`, and some there were.
    let status = counts["failures_by_kind"]["status"].as_u64().unwrap() as f64;
    assert!(status > 0.0, "{counts}");
    assert_eq!(
        one(&format!(
            "slo_check_workflows_failed_total{{testid=\"{testid}\",kind=\"status\"}}"
        )),
        status
    );
    assert_eq!(
        one(&format!("slo_check_workflows_in_flight{sel}")),
        0.0,
        "the final push comes after every workflow ended"
    );
    assert_eq!(
        one(&format!("slo_check_workflow_duration_seconds_count{sel}")),
        n("succeeded")
    );
    for (step, block) in report["steps"].as_object().unwrap() {
        let count = block["latency_ms"]["count"].as_u64().unwrap() as f64;
        assert_eq!(
            one(&format!(
                "slo_check_step_duration_seconds_count{{testid=\"{testid}\",step=\"{step}\"}}"
            )),
            count,
            "step {step}"
        );
    }
    // The histograms' p95 (histogram_quantile interpolates within a bucket) lies in the
    // bucket that holds run.json's exact (HdrHistogram, 3 significant digits) p95.
    let mut les: Vec<f64> = prom
        .query(&format!("slo_check_workflow_duration_seconds_bucket{sel}"))
        .iter()
        .filter_map(|(m, _)| m["le"].as_str()?.parse().ok())
        .filter(|le: &f64| le.is_finite())
        .collect();
    les.sort_by(f64::total_cmp);
    assert!(les.len() > 20, "{les:?}");
    let holds = |exact_ms: f64, estimate_s: f64, what: &str| {
        let exact = exact_ms / 1e3;
        let lo = les
            .iter()
            .copied()
            .filter(|b| *b < exact * 0.998)
            .fold(0.0, f64::max);
        let hi = les.iter().copied().find(|b| *b >= exact * 1.002).unwrap();
        assert!(
            (lo..=hi).contains(&estimate_s),
            "{what}: histogram_quantile {estimate_s} s, run.json {exact_ms} ms, bucket {lo}..{hi}"
        );
    };
    let p95 = |metric: &str, by: &str| {
        format!("histogram_quantile(0.95, sum by (le{by}) ({metric}_bucket{sel}))")
    };
    holds(
        report["workflow"]["latency_ms"]["p95"].as_f64().unwrap(),
        one(&p95("slo_check_workflow_duration_seconds", "")),
        "workflow p95",
    );
    let per_step = prom.query(&p95("slo_check_step_duration_seconds", ", step"));
    assert_eq!(per_step.len(), report["steps"].as_object().unwrap().len());
    for (labels, estimate) in per_step {
        let step = labels["step"].as_str().unwrap();
        let exact = report["steps"][step]["latency_ms"]["p95"].as_f64().unwrap();
        holds(exact, estimate, step);
    }
    // Pushed during the run, not only at its end: several samples per series.
    let samples = one(&format!(
        "count_over_time(slo_check_workflows_started_total{sel}[10m])"
    ));
    assert!(samples >= 8.0, "{samples} samples");

    // Every panel of the shipped Grafana dashboard answers on the run's series, with its
    // template variables set to this run (Grafana's $__rate_interval at a 1 s push: 10 s).
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/dashboards/slo-check.json"
        ))
        .unwrap(),
    )
    .unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$testid", testid)
                .replace("$scenario", "spike")
                .replace("$__rate_interval", "10s")
                .replace("$__range", "5m");
            let r = prom.query(&expr);
            assert!(!r.is_empty(), "{}: no data for {expr}", panel["title"]);
        }
    }
    let started = one(&format!(
        "sum(max_over_time(slo_check_workflows_started_total{sel}[5m]))"
    ));
    assert_eq!(started, n("started"), "the dashboard's Started stat");
}

#[test]
fn metrics_listen_is_scraped_during_the_run() {
    let promtool = promtool_binary();
    let server = Server::http(|_| async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        respond(200, "ok")
    });
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("scenario.yaml");
    let load = "{ arrival: constant, stages: [ { for: 4s, rate: 50 } ] }";
    std::fs::write(
        &scenario,
        get_scenario(
            "/x",
            load,
            "[ { name: p95, metric: latency.p95, max: 5s } ]",
        ),
    )
    .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let out = dir.path().join("out");
    let child = Command::new(assert_cmd::cargo::cargo_bin("slo-check"))
        .args(["run", "--scenario"])
        .arg(&scenario)
        .args(["--platform", "url", "--target-url", &server.url()])
        .args(["--history", "off", "--testid", "scrape-1", "--out"])
        .arg(&out)
        .args(["--metrics-listen", &addr.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Scrape until the load is under way (some workflows started, some in flight).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mid = loop {
        assert!(Instant::now() < deadline, "no scrape showed the load");
        if let Some((200, body)) = http_get(addr, "/metrics") {
            let started = value(&body, "slo_check_workflows_started_total{");
            if started.is_some_and(|s| s >= 50.0) {
                break body;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("live metrics: http://{addr}/metrics")),
        "{stderr}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let started = report["counts"]["started"].as_u64().unwrap() as f64;
    assert_eq!(started, 200.0);
    let mid_started = value(&mid, "slo_check_workflows_started_total{").unwrap();
    assert!(
        mid_started < started,
        "a scrape during the run: {mid_started}"
    );
    assert_eq!(report["live_metrics"]["metrics_listen"], addr.to_string());
    // Every series carries both labels; the step's histogram is there.
    for line in mid.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            line.contains("scenario=\"t\"") && line.contains("testid=\"scrape-1\""),
            "{line}"
        );
    }
    assert!(mid.contains(
        "slo_check_step_duration_seconds_bucket{scenario=\"t\",testid=\"scrape-1\",step=\"get\",le=\"+Inf\"}"
    ));
    // Prometheus's own parser and linter accept the exposition.
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    check
        .stdin
        .take()
        .unwrap()
        .write_all(mid.as_bytes())
        .unwrap();
    let checked = check.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    // The listener closes with the run.
    assert!(http_get(addr, "/metrics").is_none());
}

/// The value of the first sample line starting with `prefix`.
fn value(exposition: &str, prefix: &str) -> Option<f64> {
    exposition
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A remote-write receiver that answers push `n` (1-based) with `status(n)` and keeps
/// every request it accepted, decoded.
struct Receiver {
    server: Server,
    pushes: Arc<AtomicU64>,
    accepted: Arc<std::sync::Mutex<Vec<WriteRequest>>>,
}

impl Receiver {
    fn new(status: fn(u64) -> u16) -> Receiver {
        let pushes = Arc::new(AtomicU64::new(0));
        let accepted = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (p, a) = (pushes.clone(), accepted.clone());
        let server = Server::http(move |req| {
            let n = p.fetch_add(1, Ordering::SeqCst) + 1;
            let a = a.clone();
            async move {
                let h = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
                assert_eq!(h("content-encoding"), Some("snappy"));
                assert_eq!(h("content-type"), Some("application/x-protobuf"));
                assert_eq!(h("x-prometheus-remote-write-version"), Some("0.1.0"));
                assert_eq!(req.path, "/api/v1/write");
                let code = status(n);
                if code == 200 {
                    let proto = snap::raw::Decoder::new().decompress_vec(&req.body).unwrap();
                    a.lock()
                        .unwrap()
                        .push(WriteRequest::decode(proto.as_slice()).unwrap());
                }
                respond(code, if code == 200 { "" } else { "receiver says no" })
            }
        });
        Receiver {
            server,
            pushes,
            accepted,
        }
    }

    fn url(&self) -> String {
        format!("{}/api/v1/write", self.server.url())
    }
}

/// A 3 s run at 20/s against a loopback target, pushing to `receiver`.
fn pushing_run(receiver: &Receiver, target: &Server) -> crate::support::common::Finished {
    let load = "{ arrival: constant, stages: [ { for: 3s, rate: 20 } ] }";
    Run::new(
        &get_scenario(
            "/x",
            load,
            "[ { name: p95, metric: latency.p95, max: 5s } ]",
        ),
        &target.url(),
    )
    .arg("--remote-write")
    .arg(receiver.url())
    .arg("--testid")
    .arg("push-1")
    .exec()
}

fn ok_target() -> Server {
    Server::http(|_| async { respond(200, "ok") })
}

#[test]
fn a_push_that_fails_mid_run_is_warned_once_and_the_final_push_still_lands() {
    // Pushes 2 and 3 (the first two during the load) fail; the rest are accepted.
    let receiver = Receiver::new(|n| if n == 2 || n == 3 { 500 } else { 200 });
    let target = ok_target();
    let run = pushing_run(&receiver, &target);
    run.expect_code(0);
    let warnings = run.stderr.matches("warning: --remote-write").count();
    assert_eq!(warnings, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("--remote-write {}", receiver.url()))
            && run.stderr.contains("500"),
        "{}",
        run.stderr
    );
    let report = run.report();
    let rw = &report["live_metrics"]["remote_write"];
    assert_eq!(rw["failed"], 2, "{rw}");
    assert_eq!(rw["final_push_ok"], true);
    assert!(rw["first_error"].as_str().unwrap().contains("500"), "{rw}");
    let pushes = receiver.pushes.load(Ordering::SeqCst);
    assert_eq!(rw["pushes"].as_u64(), Some(pushes));
    // The last accepted request holds the run's final count.
    let accepted = receiver.accepted.lock().unwrap();
    let last = accepted.last().unwrap();
    let started = last
        .timeseries
        .iter()
        .find(|ts| {
            ts.labels
                .iter()
                .any(|l| l.name == "__name__" && l.value == "slo_check_workflows_started_total")
        })
        .unwrap();
    assert_eq!(started.samples[0].value, 60.0);
    assert_eq!(report["counts"]["started"], 60);
}

#[test]
fn a_final_push_that_fails_is_exit_3_with_the_reports_kept() {
    // Only the first push (before the load) is accepted.
    let receiver = Receiver::new(|n| if n == 1 { 200 } else { 503 });
    let target = ok_target();
    let run = pushing_run(&receiver, &target);
    run.expect_code(3);
    assert!(
        run.stderr.contains("error: --remote-write")
            && run.stderr.contains("the final push failed"),
        "{}",
        run.stderr
    );
    let report = run.report();
    assert_eq!(report["verdict"], "pass");
    let rw = &report["live_metrics"]["remote_write"];
    assert_eq!(rw["final_push_ok"], false, "{rw}");
    assert_eq!(
        rw["failed"].as_u64(),
        Some(rw["pushes"].as_u64().unwrap() - 1)
    );
}

#[test]
fn a_remote_write_that_refuses_the_first_push_is_exit_2_before_the_load() {
    let target_hits = Arc::new(AtomicU64::new(0));
    let hits = target_hits.clone();
    let target = Server::http(move |_| {
        hits.fetch_add(1, Ordering::SeqCst);
        async { respond(200, "ok") }
    });
    // Nothing listening, then a server that is not a receiver (404).
    let nothing = format!("http://127.0.0.1:{}/api/v1/write", closed_port());
    let not_a_receiver = Receiver::new(|_| 404);
    for url in [nothing, not_a_receiver.url()] {
        let load = "{ arrival: constant, stages: [ { for: 1s, rate: 5 } ] }";
        let run = Run::new(
            &get_scenario(
                "/x",
                load,
                "[ { name: p95, metric: latency.p95, max: 5s } ]",
            ),
            &target.url(),
        )
        .arg("--remote-write")
        .arg(&url)
        .exec();
        run.expect_code(2);
        assert!(
            run.stderr
                .contains(&format!("error: --remote-write {url}: the first push")),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("--web.enable-remote-write-receiver"),
            "{}",
            run.stderr
        );
        assert!(!run.out.join("run.json").exists());
    }
    assert_eq!(not_a_receiver.pushes.load(Ordering::SeqCst), 1);
    assert_eq!(target_hits.load(Ordering::SeqCst), 0, "no load was sent");
}

#[test]
fn bad_live_metrics_flags_name_the_flag() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    let cases: [(&[&str], &str); 6] = [
        (
            &["--metrics-listen", "localhost:9464"],
            "--metrics-listen localhost:9464: expected IP:PORT",
        ),
        (&["--metrics-listen", &busy_addr], "cannot listen there"),
        (
            &["--remote-write", "localhost:9090/api/v1/write"],
            "--remote-write localhost:9090/api/v1/write: expected an http:// or https:// URL",
        ),
        (
            &["--remote-write", "not a url"],
            "--remote-write not a url: not a URL",
        ),
        (
            &["--remote-write-interval", "5s"],
            "--remote-write-interval goes with --remote-write URL",
        ),
        (&["--testid", " "], "--testid \" \": must be non-empty"),
    ];
    let target = ok_target();
    for (flags, message) in cases {
        let load = "{ arrival: constant, stages: [ { for: 1s, rate: 5 } ] }";
        let mut run = Run::new(
            &get_scenario(
                "/x",
                load,
                "[ { name: p95, metric: latency.p95, max: 5s } ]",
            ),
            &target.url(),
        );
        for f in flags {
            run = run.arg(*f);
        }
        let done = run.exec();
        done.expect_code(2);
        assert!(done.stderr.contains(message), "{flags:?}: {}", done.stderr);
    }
}
