//! Interrupts at random moments on the embedded platform (`--platform local`):
//! SIGINT or SIGTERM before, inside and after a fault window, twice in a row,
//! and while the platform comes up or goes down. Each run must exit 130 with a
//! partial run.json (`interrupted: true`, consistent counts) and every applied
//! fault reverted (`faults[].reverted_at_s`); the in-process tests check the
//! injector itself (`LocalFaults::active_names()`) after the same timeline code
//! the binary runs (`slo_check::fault_timeline::run_timeline`) is stopped.
//!
//! Moments are drawn from a seed (`INTERRUPT_SEED`, default 8; printed) so a
//! failure can be replayed. Every child has a hard deadline and is killed if
//! it misses it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use slo_check::fault_timeline::run_timeline;
use slo_check::platform::local::{self, LocalOptions};
use slo_check::scenario::{Abort, Delay, Fault, LocalPlatform};
use slo_check::target::FaultInjector;
use tokio_util::sync::CancellationToken;

use crate::support::common::count;

/// Fast, deterministic replicas: tiny latencies, one fixed replica.
const LOCAL: &str = "platform:\n  local: { replicas: 1, autoscale: false, startup_delay: 100ms, cpu_per_workflow: 1ms, llm_median: 1ms, llm_p99: 3ms, tool_median: 1ms, tool_p99: 2ms, seed: 3 }\n";

/// 32 s at 20/s with a 100 % abort fault from 10 s to 22 s; at `--time-scale 0.25`
/// the schedule lasts 8 s and the fault window is 2.5 s – 5.5 s after the run's zero.
fn windowed_scenario() -> String {
    format!(
        "name: interrupts\nworkflow:\n  - name: health\n    request: {{ method: GET, path: /health }}\n\
load: {{ arrival: constant, stages: [{{ for: 32s, rate: 20 }}], request_timeout: 2s }}\n\
faults:\n  - {{ name: aborts, start: 10s, for: 12s, abort: {{ percentage: 100, http_status: 503 }} }}\n\
slos: []\n{LOCAL}"
    )
}

/// Every request is held 20 s by a delay fault (delays are never time-scaled), so
/// workflows are in flight when the signal comes.
fn stalled_scenario() -> String {
    format!(
        "name: stalled\nworkflow:\n  - name: health\n    request: {{ method: GET, path: /health }}\n\
load: {{ arrival: constant, stages: [{{ for: 20s, rate: 10 }}], request_timeout: 30s }}\n\
faults:\n  - {{ name: hold, start: 0s, for: 20s, delay: {{ percentage: 100, fixed_delay: 20s }} }}\n\
slos: []\n{LOCAL}"
    )
}

fn seed() -> u64 {
    std::env::var("INTERRUPT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Sig {
    Int,
    Term,
}

impl Sig {
    fn name(self) -> &'static str {
        match self {
            Sig::Int => "-INT",
            Sig::Term => "-TERM",
        }
    }
}

/// A running `slo-check run --platform local`, its output going to files.
struct Running {
    dir: tempfile::TempDir,
    child: Child,
    spawned: Instant,
}

/// What the child left.
struct Ended {
    status: ExitStatus,
    /// From spawn to exit.
    elapsed: Duration,
    stderr: String,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Running {
    fn start(yaml: &str, extra: &[&str]) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("scenario.yaml");
        std::fs::write(&file, yaml).unwrap();
        let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
        let child = Command::new(assert_cmd::cargo::cargo_bin("slo-check"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("GITHUB_STEP_SUMMARY")
            .arg("run")
            .arg("--scenario")
            .arg(&file)
            .args(["--platform", "local", "--quiet", "--time-scale", "0.25"])
            .args(extra)
            .arg("--out")
            .arg(dir.path().join("out"))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        Running {
            dir,
            child,
            spawned: Instant::now(),
        }
    }

    /// Sleep until `at` after spawn, then send `sig`.
    fn signal_at(&self, at: Duration, sig: Sig) -> Instant {
        if let Some(rest) = at.checked_sub(self.spawned.elapsed()) {
            std::thread::sleep(rest);
        }
        let sent = Instant::now();
        let ok = Command::new("kill")
            .args([sig.name(), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success(), "kill {} failed", sig.name());
        sent
    }

    /// Wait at most `bound` for the child to exit; kill it and fail if it does not.
    fn wait(mut self, bound: Duration) -> Ended {
        let deadline = Instant::now() + bound;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "slo-check did not exit within {bound:?}; stderr:\n{}",
                    read(&self.dir.path().join("stderr"))
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ended {
            status,
            elapsed: self.spawned.elapsed(),
            stderr: read(&self.dir.path().join("stderr")),
            out: self.dir.path().join("out"),
            _dir: self.dir,
        }
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

impl Ended {
    fn report(&self) -> Value {
        let text = std::fs::read_to_string(self.out.join("run.json")).unwrap_or_else(|e| {
            panic!(
                "no run.json ({e}); status {:?}; stderr:\n{}",
                self.status, self.stderr
            )
        });
        serde_json::from_str(&text).expect("run.json is JSON")
    }

    /// Exit 130, `interrupted: true`, every start accounted for, every report file written.
    fn interrupted_report(&self) -> Value {
        assert_eq!(
            self.status.code(),
            Some(130),
            "status {:?}; stderr:\n{}",
            self.status,
            self.stderr
        );
        let r = self.report();
        assert_eq!(r["interrupted"], true);
        consistent_counts(&r);
        for f in ["summary.md", "junit.xml", "report.html"] {
            assert!(self.out.join(f).is_file(), "{f} missing");
        }
        r
    }
}

/// started = succeeded + failed + abandoned; scheduled = started + dropped + never started.
fn consistent_counts(r: &Value) {
    let started = count(r, "started");
    assert_eq!(
        count(r, "succeeded") + count(r, "failed") + count(r, "abandoned"),
        started,
        "{}",
        r["counts"]
    );
    assert!(started + count(r, "dropped") <= count(r, "scheduled"));
}

/// Every fault that was applied was reverted, not before it was applied and not
/// after the load phase ended. Returns (applied_at_s, reverted_at_s) of the first fault.
fn faults_reverted(r: &Value) -> (Option<f64>, Option<f64>) {
    let faults = r["faults"].as_array().expect("faults[]");
    let duration = r["duration_s"].as_f64().unwrap();
    for f in faults {
        if let Some(applied) = f["applied_at_s"].as_f64() {
            let reverted = f["reverted_at_s"]
                .as_f64()
                .unwrap_or_else(|| panic!("fault applied and never reverted: {f}"));
            assert!(reverted >= applied, "{f}");
            assert!(reverted <= duration + 0.05, "{f}; duration {duration}");
        } else {
            assert!(f["reverted_at_s"].is_null(), "{f}");
        }
    }
    let f = &faults[0];
    (f["applied_at_s"].as_f64(), f["reverted_at_s"].as_f64())
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Before,
    Inside,
    After,
}

/// Moments after spawn, by phase. The run's zero comes after the platform is up
/// (≈ 0.1–0.5 s after spawn); the window is 2.5–5.5 s after zero and the schedule 8 s.
fn moment(rng: &mut SmallRng, phase: Phase) -> Duration {
    let s = match phase {
        Phase::Before => rng.random_range(0.8..1.9),
        Phase::Inside => rng.random_range(3.4..5.3),
        Phase::After => rng.random_range(6.6..7.4),
    };
    Duration::from_secs_f64(s)
}

#[test]
fn a_signal_at_a_random_moment_stops_the_run_and_reverts_the_fault() {
    let seed = seed();
    let mut rng = SmallRng::seed_from_u64(seed);
    let flip = rng.random_bool(0.5);
    let plan: Vec<(Phase, Duration, Sig)> =
        [Phase::Before, Phase::Inside, Phase::Inside, Phase::After]
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                // Both signals, in a seeded order.
                let sig = if (i % 2 == 0) ^ flip {
                    Sig::Int
                } else {
                    Sig::Term
                };
                (p, moment(&mut rng, p), sig)
            })
            .collect();
    eprintln!("INTERRUPT_SEED={seed}: {plan:?}");
    // The runs are independent: run them side by side to bound the test's time.
    let yaml = windowed_scenario();
    let handles: Vec<_> = plan
        .iter()
        .map(|&(phase, at, sig)| {
            let yaml = yaml.clone();
            std::thread::spawn(move || {
                let run = Running::start(&yaml, &["--grace", "2s"]);
                let sent = run.signal_at(at, sig);
                let spawned = run.spawned;
                let ended = run.wait(Duration::from_secs(30));
                let exit_after_signal = spawned + ended.elapsed - sent;
                (phase, at, sig, ended, exit_after_signal)
            })
        })
        .collect();
    let mut seen = Vec::new();
    for h in handles {
        let (phase, at, sig, ended, exit_after_signal) = h.join().expect("run thread");
        let ctx = format!("{phase:?} at {at:?} with {sig:?}");
        // Grace (2 s, and /health answers in milliseconds), platform down, reports.
        assert!(
            exit_after_signal < Duration::from_secs(4),
            "{ctx}: exited {exit_after_signal:?} after the signal"
        );
        let r = ended.interrupted_report();
        let (applied, reverted) = faults_reverted(&r);
        let status_failures = r["counts"]["failures_by_kind"]["status"].as_u64().unwrap();
        let duration = r["duration_s"].as_f64().unwrap();
        let to_s = r["faults"][0]["to_s"].as_f64().unwrap();
        assert!(count(&r, "started") > 0, "{ctx}");
        // Stopped well before the 8 s schedule (+ draining) would have ended it by itself.
        assert!(duration < 7.9, "{ctx}: load phase lasted {duration} s");
        // Classified by what happened, since the run's zero follows the platform's
        // start-up, which a loaded machine delays.
        let observed = match (applied, reverted) {
            (None, _) => Phase::Before,
            (Some(_), Some(rv)) if rv < to_s - 0.05 => Phase::Inside,
            (Some(_), _) => Phase::After,
        };
        seen.push((phase, observed));
        match observed {
            Phase::Before => assert_eq!(status_failures, 0, "{ctx}"),
            Phase::Inside => {
                let (applied, reverted) = (applied.unwrap(), reverted.unwrap());
                assert!(applied < reverted, "{ctx}");
                assert!(
                    status_failures > 0,
                    "{ctx}: the fault never aborted anything"
                );
            }
            Phase::After => {
                let reverted = reverted.expect(&ctx);
                // Reverted at its window's end, not by the interrupt.
                assert!(
                    (reverted - to_s).abs() < 0.25,
                    "{ctx}: reverted at {reverted}"
                );
                assert!(status_failures > 0, "{ctx}");
            }
        }
        assert_eq!(
            r["verdict"], "fail",
            "{ctx}: an interrupted run cannot pass"
        );
    }
    eprintln!("(planned, observed) phases: {seen:?}");
    let inside = seen.iter().filter(|(_, o)| *o == Phase::Inside).count();
    assert!(
        inside >= 1,
        "no interrupt landed inside the fault window: {seen:?}"
    );
    assert!(
        inside < seen.len(),
        "every interrupt landed inside the window: {seen:?}"
    );
}

#[test]
fn a_second_sigint_skips_the_grace_period_after_the_fault_is_reverted() {
    // Every request is held 20 s; --grace 60s would wait for them all.
    let run = Running::start(&stalled_scenario(), &["--grace", "60s"]);
    let first = run.signal_at(Duration::from_millis(1500), Sig::Int);
    let second = run.signal_at(Duration::from_millis(2300), Sig::Int);
    let spawned = run.spawned;
    let ended = run.wait(Duration::from_secs(30));
    let exit_after_second = spawned + ended.elapsed - second;
    let r = ended.interrupted_report();
    assert!(
        exit_after_second < Duration::from_secs(5),
        "exited {exit_after_second:?} after the second SIGINT"
    );
    assert!(count(&r, "abandoned") > 0, "{}", r["counts"]);
    // The first start and the fault's application share the instant zero: that one
    // request may get through unheld; every later one is held 20 s.
    assert!(count(&r, "succeeded") <= 1, "{}", r["counts"]);
    let (applied, reverted) = faults_reverted(&r);
    let (applied, reverted) = (applied.unwrap(), reverted.unwrap());
    // Reverted at the first SIGINT (0.8 s before the second), not at the window's end.
    let between = (second - first).as_secs_f64();
    assert!(
        reverted - applied < 1.5 + 0.5,
        "applied {applied}, reverted {reverted}"
    );
    assert!(
        reverted < r["faults"][0]["to_s"].as_f64().unwrap() - between,
        "reverted {reverted}"
    );
    assert!(
        ended.stderr.contains("interrupt again to stop now"),
        "{}",
        ended.stderr
    );
}

#[test]
fn the_grace_period_is_bounded() {
    let run = Running::start(&stalled_scenario(), &["--grace", "1s"]);
    let sent = run.signal_at(Duration::from_millis(1500), Sig::Term);
    let spawned = run.spawned;
    let ended = run.wait(Duration::from_secs(30));
    let after = spawned + ended.elapsed - sent;
    let r = ended.interrupted_report();
    // 1 s of grace, then the abandoned workflows end; the platform's down and the
    // reports take the rest.
    assert!(
        after >= Duration::from_millis(900),
        "exited {after:?} after SIGTERM"
    );
    assert!(
        after < Duration::from_secs(5),
        "exited {after:?} after SIGTERM"
    );
    assert!(count(&r, "abandoned") > 0);
    faults_reverted(&r);
}

#[test]
fn sigterm_while_the_platform_comes_up_or_goes_down_leaves_nothing_running() {
    let seed = seed();
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5EED);
    // Up: the first 300 ms after spawn (config, runtime, platform up). Down: around
    // the schedule's end (8 s after zero), while workflows drain, the platform goes
    // down and reports are written.
    let moments = [
        Duration::from_millis(rng.random_range(0..300)),
        Duration::from_millis(rng.random_range(0..300)),
        Duration::from_millis(rng.random_range(7900..8500)),
    ];
    eprintln!("INTERRUPT_SEED={seed}: SIGTERM at {moments:?}");
    let yaml = windowed_scenario();
    let handles: Vec<_> = moments
        .into_iter()
        .map(|at| {
            let yaml = yaml.clone();
            std::thread::spawn(move || {
                let run = Running::start(&yaml, &["--grace", "1s"]);
                let pid = run.child.id();
                run.signal_at(at, Sig::Term);
                (at, pid, run.wait(Duration::from_secs(30)))
            })
        })
        .collect();
    for h in handles {
        let (at, pid, ended) = h.join().unwrap();
        let ctx = format!(
            "SIGTERM at {at:?}: status {:?}; stderr:\n{}",
            ended.status, ended.stderr
        );
        use std::os::unix::process::ExitStatusExt;
        eprintln!("SIGTERM at {at:?}: {:?}", ended.status);
        match (ended.status.code(), ended.status.signal()) {
            // Before the handlers were installed (argument parsing): the default action.
            // The platform had not started, so nothing was left behind.
            (None, Some(15)) => assert!(!ended.out.join("run.json").exists(), "{ctx}"),
            (Some(130), _) => {
                let r = ended.interrupted_report();
                faults_reverted(&r);
            }
            // Landed after the report was written: the run's own verdict (no SLOs: pass).
            (Some(0), _) => {
                consistent_counts(&ended.report());
                faults_reverted(&ended.report());
            }
            _ => panic!("{ctx}"),
        }
        // The process is gone, and with it every listener it had: no process of
        // ours is left whose parent it was.
        assert!(children_of(pid).is_empty(), "{ctx}: children left");
    }
}

/// Live processes whose parent is `pid` (from /proc).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            read(&PathBuf::from(format!("/proc/{p}/stat")))
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                == Some(pid)
        })
        .collect()
}

// ------------------------------------------------------------------ in-process

fn quick() -> LocalPlatform {
    LocalPlatform {
        replicas: Some(1),
        autoscale: false,
        startup_delay: Duration::from_millis(100),
        cpu_per_workflow: Duration::from_millis(1),
        llm_median: Duration::from_millis(1),
        llm_p99: Duration::from_millis(3),
        tool_median: Duration::from_millis(1),
        tool_p99: Duration::from_millis(2),
        seed: Some(5),
        ..LocalPlatform::default()
    }
}

fn fault(name: &str, start_ms: u64, for_ms: u64, abort: bool) -> (Fault, (Duration, Duration)) {
    let start = Duration::from_millis(start_ms);
    let duration = Duration::from_millis(for_ms);
    let f = Fault {
        name: name.into(),
        start,
        duration,
        delay: (!abort).then_some(Delay {
            percent: 100.0,
            fixed_delay: Duration::from_millis(1),
        }),
        abort: abort.then_some(Abort {
            percent: 100.0,
            http_status: 503,
        }),
    };
    (f, (start, start + duration))
}

/// The same stop the binary's interrupt path uses: `run_timeline` on the real
/// embedded injector, cancelled at a random moment before, inside and between
/// overlapping windows. After each stop the injector holds no fault and the
/// balancer answers 200 again, while it answered 503 inside the abort window.
#[test]
fn a_cancelled_timeline_leaves_no_fault_on_the_embedded_balancer() {
    let seed = seed();
    let mut rng = SmallRng::seed_from_u64(seed ^ 0xFA17);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        tokio::time::timeout(Duration::from_secs(40), async move {
            let platform = local::up(LocalOptions {
                settings: quick(),
                time_scale: 1.0,
                base_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
            })
            .await
            .expect("the embedded platform comes up");
            let target = platform.target();
            let injector: Arc<dyn FaultInjector> = target.faults.clone().unwrap();
            let faults = platform.faults();
            let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
            let health = format!("{}/health", target.base_url);
            let get = |url: String| {
                let client = client.clone();
                async move {
                    let resp = client.get(url.parse().unwrap()).await.unwrap();
                    let status = resp.status().as_u16();
                    let _ = resp.into_body().collect().await;
                    status
                }
            };
            // aborts: 200–700 ms; slow (a delay): 100–1000 ms, overlapping.
            let specs = [
                fault("aborts", 200, 500, true),
                fault("slow", 100, 900, false),
            ];
            let (list, windows): (Vec<Fault>, Vec<_>) = specs.iter().cloned().unzip();
            for round in 0..6 {
                let stop_ms = match round {
                    0 => rng.random_range(0..90),        // before any window
                    1 => rng.random_range(120..190),     // only `slow` on
                    2 | 3 => rng.random_range(250..650), // both on
                    4 => rng.random_range(750..950),     // `aborts` over, `slow` on
                    _ => 1200,                           // after both
                };
                let stop = CancellationToken::new();
                let zero = tokio::time::Instant::now();
                let timeline = tokio::spawn(run_timeline(
                    Some(injector.clone()),
                    list.clone(),
                    windows.clone(),
                    zero,
                    stop.clone(),
                ));
                let mut saw_abort = false;
                while zero.elapsed() < Duration::from_millis(stop_ms) {
                    let t = zero.elapsed();
                    let status = get(health.clone()).await;
                    let inside = t >= Duration::from_millis(215) && t < Duration::from_millis(690);
                    if inside {
                        assert_eq!(
                            status, 503,
                            "round {round}: inside the abort window at {t:?}"
                        );
                        saw_abort = true;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                stop.cancel();
                let out = timeline.await.unwrap();
                let ctx = format!("round {round}, stopped at {stop_ms} ms: {:?}", out.activity);
                assert!(
                    faults.active_names().is_empty(),
                    "{ctx}: {:?}",
                    faults.active_names()
                );
                assert_eq!(out.left_active(), 0, "{ctx}");
                for (i, (_, (from, to))) in specs.iter().enumerate() {
                    let a = &out.activity[i];
                    let was_on = stop_ms as u128 > from.as_millis() + 5;
                    assert_eq!(a.applied_at.is_some(), was_on, "{ctx}: fault {i}");
                    if let Some(r) = a.reverted_at {
                        // Reverted at the window's end or at the stop, whichever came first.
                        let due = (*to).min(Duration::from_millis(stop_ms));
                        assert!(
                            r >= due && r < due + Duration::from_millis(100),
                            "{ctx}: fault {i}"
                        );
                    }
                }
                if (300..600).contains(&stop_ms) {
                    assert!(saw_abort, "{ctx}: no request was aborted inside the window");
                }
                // Service is back: the balancer forwards again.
                assert_eq!(get(health.clone()).await, 200, "{ctx}");
            }
            platform.down().await;
        })
        .await
        .expect("the test finishes within 40 s");
    });
}
