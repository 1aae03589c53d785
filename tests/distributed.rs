//! `run --generators N` with generators as processes on this machine: their shards
//! together are exactly the one-generator schedule, a generator that dies is named and
//! fails the run, an interrupt reaches them all, none outlives its coordinator, and the
//! live metrics show each one. On the test cluster, as an Indexed Job's pods: one
//! generator and three give the same percentiles, those of the target's own truth.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::common::{Run, Server, respond, signal, slo, slo_check};

/// A server that answers 200 after `delay` and counts each `n` query parameter (the
/// workflow's `${seq}`) it receives.
fn counting_server(delay: Duration) -> (Server, Arc<Mutex<BTreeMap<u64, u32>>>) {
    let seen = Arc::new(Mutex::new(BTreeMap::new()));
    let s = seen.clone();
    let server = Server::http(move |req| {
        let s = s.clone();
        async move {
            if let Some(n) = req
                .path
                .split_once("n=")
                .and_then(|(_, n)| n.parse::<u64>().ok())
            {
                *s.lock().unwrap().entry(n).or_insert(0) += 1;
            }
            tokio::time::sleep(delay).await;
            respond(200, "ok")
        }
    });
    (server, seen)
}

/// Poisson arrivals (the schedule depends on the seed, which every generator must share).
fn scenario(for_s: u32, rate: u32) -> String {
    format!(
        "name: dist\nworkflow:\n  - name: get\n    request: {{ method: GET, path: \"/w?n=${{seq}}\" }}\nload: {{ arrival: poisson, seed: 11, stages: [{{ for: {for_s}s, rate: {rate} }}] }}\nslos:\n  - {{ name: p95, metric: latency.p95, max: 2s }}\n"
    )
}

fn seqs_once(seen: &Mutex<BTreeMap<u64, u32>>) -> Vec<u64> {
    let seen = seen.lock().unwrap();
    for (n, times) in seen.iter() {
        assert_eq!(*times, 1, "seq {n} was sent {times} times");
    }
    seen.keys().copied().collect()
}

#[test]
fn three_generators_issue_exactly_the_one_generator_schedule() {
    let yaml = scenario(3, 150);
    let (server, seen) = counting_server(Duration::from_millis(5));
    let one = Run::new(&yaml, &server.url()).exec();
    one.expect_code(0);
    let single = seqs_once(&seen);
    seen.lock().unwrap().clear();

    let three = Run::new(&yaml, &server.url())
        .arg("--generators")
        .arg("3")
        .exec();
    three.expect_code(0);
    let merged = seqs_once(&seen);
    let (a, b) = (one.report(), three.report());
    let scheduled = a["counts"]["scheduled"].as_u64().unwrap();
    assert!(scheduled > 300, "{}", a["counts"]);
    // The same starts, each sent once: 0 … scheduled − 1.
    assert_eq!(single, (0..scheduled).collect::<Vec<_>>());
    assert_eq!(
        merged, single,
        "the generators' union is not the one schedule"
    );
    for k in ["scheduled", "started", "succeeded", "dropped"] {
        assert_eq!(a["counts"][k], b["counts"][k], "{k}");
    }
    // Each generator issued its own residue class, and its records reached the run.
    let generators = b["generators"].as_array().expect("run.json generators");
    assert_eq!(generators.len(), 3);
    for (i, g) in generators.iter().enumerate() {
        let owned = single.iter().filter(|n| **n % 3 == i as u64).count() as u64;
        assert_eq!(g["shard"], format!("{i}/3"));
        assert_eq!(g["started"].as_u64(), Some(owned), "{g}");
        assert_eq!(g["records"].as_u64(), Some(owned), "{g}");
        assert!(g["lost"].is_null(), "{g}");
        // Processes on one machine share its clock: the measured offset is within its bound.
        let (offset, bound) = (
            g["clock_offset_ms"].as_f64().unwrap(),
            g["clock_bound_ms"].as_f64().unwrap(),
        );
        assert!(offset.abs() <= bound + 0.05, "{g}");
    }
    assert!(
        a["generators"].is_null(),
        "a one-process run lists no generators"
    );
    // The latency is the server's 5 ms in both (the whole distribution, not asserted to
    // the millisecond: two runs on a shared machine).
    for r in [&a, &b] {
        let p50 = r["workflow"]["latency_ms"]["p50"].as_f64().unwrap();
        assert!((5.0..50.0).contains(&p50), "{}", r["workflow"]);
    }
    assert_no_generator_left(&b);
}

/// The generator processes of `run` are gone (their pids are in run.json).
fn assert_no_generator_left(run: &Value) {
    for g in run["generators"].as_array().into_iter().flatten() {
        let pid = g["runs_as"]
            .as_str()
            .and_then(|s| s.strip_prefix("pid "))
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or_else(|| panic!("{g}"));
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&cmdline).contains("generate"),
            "generator pid {pid} still runs"
        );
    }
}

/// A coordinator started in the background, with its reports in a temp dir.
struct Coordinator {
    dir: tempfile::TempDir,
    child: Child,
}

impl Coordinator {
    fn start(yaml: &str, target: &str, generators: u32) -> Coordinator {
        Coordinator::start_with(yaml, target, generators, &[])
    }

    fn start_with(yaml: &str, target: &str, generators: u32, extra: &[&str]) -> Coordinator {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.yaml"), yaml).unwrap();
        let child = Command::new(assert_cmd::cargo::cargo_bin("slo-check"))
            .env_remove("GITHUB_STEP_SUMMARY")
            .arg("run")
            .arg("--scenario")
            .arg(dir.path().join("s.yaml"))
            .args(["--platform", "url", "--target-url", target, "--quiet"])
            .args(["--generators", &generators.to_string()])
            .args(extra)
            .arg("--out")
            .arg(dir.path().join("out"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
            .spawn()
            .unwrap();
        Coordinator { dir, child }
    }

    /// Its generator processes, by shard (`0/2`), once all `count` run.
    fn generators(&self, count: usize) -> BTreeMap<String, u32> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = children(self.child.id());
            if found.len() == count {
                return found;
            }
            assert!(Instant::now() < deadline, "generators: {found:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Its exit code, run.json, and stderr followed by summary.md.
    fn wait(mut self) -> (i32, Value, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the coordinator did not exit within 60 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default();
        let run = read_json(&self.dir.path().join("out/run.json"), &stderr);
        let summary =
            std::fs::read_to_string(self.dir.path().join("out/summary.md")).unwrap_or_default();
        (
            status.code().unwrap_or(-1),
            run,
            format!("{stderr}\n{summary}"),
        )
    }
}

fn read_json(path: &Path, stderr: &str) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no {} ({e}); stderr:\n{stderr}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The child processes of `parent` that are generators, by their `--shard`.
fn children(parent: u32) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ppid …`: the ppid is the second field after the comm.
        let ppid = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(parent) {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if let Some(i) = args.iter().position(|a| a == "--shard") {
            out.insert(args[i + 1].clone(), pid);
        }
    }
    out
}

#[test]
fn a_generator_that_dies_is_named_and_fails_the_run() {
    let (server, _) = counting_server(Duration::from_millis(2));
    let c = Coordinator::start(&scenario(4, 100), &server.url(), 2);
    let gens = c.generators(2);
    std::thread::sleep(Duration::from_millis(1500));
    signal(gens["1/2"], "-KILL");
    let (code, run, stderr) = c.wait();
    assert_eq!(code, 1, "{stderr}");
    let check = slo(&run, "load delivered");
    assert_eq!(check["status"], "fail", "{check}");
    let reason = check["reason"].as_str().unwrap();
    assert!(
        reason.contains("1 generator was lost") && reason.contains("generator 1/2 (pid "),
        "{reason}"
    );
    let g = &run["generators"][1];
    let lost = g["lost"].as_str().unwrap_or_else(|| panic!("{g}"));
    assert!(lost.contains("SIGKILL"), "{lost}");
    assert!(
        run["generators"][0]["lost"].is_null(),
        "{}",
        run["generators"]
    );
    assert!(
        stderr.contains("**Load** from 2 generators, 1 completed;")
            && stderr.contains("; generator 1/2 (pid "),
        "{stderr}"
    );
    // What it sent before it died is in the run; its later starts are missing.
    let started = run["counts"]["started"].as_u64().unwrap();
    let scheduled = run["counts"]["scheduled"].as_u64().unwrap();
    assert!(
        started < scheduled && started > scheduled / 2,
        "{}",
        run["counts"]
    );
    assert_eq!(
        run["generators"][0]["records"].as_u64().unwrap() + g["records"].as_u64().unwrap(),
        started
    );
    assert_no_generator_left(&run);
}

#[test]
fn an_interrupt_reaches_every_generator_and_keeps_their_records() {
    let (server, seen) = counting_server(Duration::from_millis(2));
    let c = Coordinator::start(&scenario(20, 50), &server.url(), 2);
    c.generators(2);
    std::thread::sleep(Duration::from_millis(2500));
    signal(c.child.id(), "-INT");
    let (code, run, stderr) = c.wait();
    assert_eq!(code, 130, "{stderr}");
    assert_eq!(run["interrupted"], true);
    // Stopped, not lost: every start a generator issued came back as a record.
    for g in run["generators"].as_array().unwrap() {
        assert!(g["lost"].is_null(), "{g}");
        assert_eq!(g["started"], g["records"], "{g}");
    }
    let started = run["counts"]["started"].as_u64().unwrap();
    assert!(started > 0 && started < run["counts"]["scheduled"].as_u64().unwrap());
    assert_eq!(seen.lock().unwrap().len() as u64, started);
    assert_no_generator_left(&run);
}

#[test]
fn a_killed_coordinator_takes_its_generators_with_it() {
    let (server, _) = counting_server(Duration::from_millis(2));
    let c = Coordinator::start(&scenario(20, 20), &server.url(), 2);
    let gens = c.generators(2);
    signal(c.child.id(), "-KILL");
    let deadline = Instant::now() + Duration::from_secs(10);
    for pid in gens.values() {
        while std::fs::metadata(format!("/proc/{pid}/cmdline")).is_ok_and(|_| {
            String::from_utf8_lossy(
                &std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default(),
            )
            .contains("generate")
        }) {
            assert!(
                Instant::now() < deadline,
                "generator pid {pid} outlived its coordinator"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let mut c = c;
    let _ = c.child.wait();
}

#[test]
fn generate_and_generators_refuse_bad_flags() {
    let refused = |args: &[&str], says: &str| {
        let out = slo_check().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    };
    let generate = ["generate", "--scenario", "smoke", "--target-url"];
    refused(
        &[&generate[..], &["http://127.0.0.1:1", "--shard", "3/3"]].concat(),
        "--shard 3/3: expected I/N with 0 ≤ I < N",
    );
    refused(
        &[&generate[..], &["ftp://x", "--shard", "0/1"]].concat(),
        "--target-url",
    );
    refused(
        &["run", "--scenario", "smoke", "--generators", "0"],
        "--generators",
    );
    // Pod placement is for the kube platform's generator pods only.
    refused(
        &[
            "run",
            "--scenario",
            "smoke",
            "--generators",
            "2",
            "--generator-spread",
        ],
        "--generator-spread goes with --generators N and --platform kube",
    );
    // A capacity step's plan: INDEX:RATE, with the coordinator's step length and warm-up.
    let step = [&generate[..], &["http://127.0.0.1:1", "--shard", "0/2"]].concat();
    for bad in ["3", "0:10", "2:-1", "x:5"] {
        refused(
            &[
                &step[..],
                &["--capacity-step", bad, "--step-for", "2s", "--warmup", "0s"],
            ]
            .concat(),
            &format!("--capacity-step {bad}: expected INDEX:RATE"),
        );
    }
    refused(
        &[&step[..], &["--capacity-step", "1:10"]].concat(),
        "--step-for",
    );
    refused(
        &[
            &step[..],
            &[
                "--capacity-step",
                "1:10",
                "--step-for",
                "soon",
                "--warmup",
                "0s",
            ],
        ]
        .concat(),
        "--step-for soon",
    );
    // capacity's generators are processes on this machine.
    refused(
        &[
            "capacity",
            "--scenario",
            "smoke",
            "--generators",
            "2",
            "--platform",
            "kube",
        ],
        "--generators: capacity runs its generators as processes on this machine",
    );
}

/// `capacity --generators 2`: every step's load comes from two generator processes that
/// plan the coordinator's step, so each step schedules exactly the starts a one-process
/// search schedules at that rate (same seed), all of them are sent, and no generator
/// outlives the search.
#[test]
fn a_capacity_search_from_two_generators_holds_the_same_steps() {
    let (server, _) = counting_server(Duration::from_millis(5));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.yaml"), scenario(2, 50)).unwrap();
    let search = |out: &str, extra: &[&str]| {
        let output = slo_check()
            .arg("capacity")
            .arg("--scenario")
            .arg(dir.path().join("s.yaml"))
            .args(["--platform", "url", "--target-url", &server.url()])
            .args(["--from", "50", "--to", "200", "--step-for", "2s"])
            .args(["--warmup", "1s", "--seed", "5", "--history", "off"])
            .arg("--out")
            .arg(dir.path().join(out))
            .args(extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(0), "{extra:?}: {stderr}");
        (
            read_json(&dir.path().join(out).join("capacity.json"), &stderr),
            stderr,
        )
    };
    let (one, _) = search("one", &[]);
    let (two, stderr) = search("two", &["--generators", "2"]);
    assert!(one["settings"]["generators"].is_null());
    assert_eq!(two["settings"]["generators"], 2);
    let steps = |r: &Value| r["steps"].as_array().unwrap().clone();
    let (a, b) = (steps(&one), steps(&two));
    assert!(a.len() >= 3, "{a:?}");
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x["target_rate_per_s"], y["target_rate_per_s"]);
        assert_eq!(x["counts"]["scheduled"], y["counts"]["scheduled"], "{y}");
        assert_eq!(y["counts"]["started"], y["counts"]["scheduled"], "{y}");
        assert_eq!(y["counts"]["failed"], 0, "{y}");
    }
    assert_eq!(
        stderr.matches("generators: 2 of 2 ready").count(),
        b.len(),
        "{stderr}"
    );
}

/// The samples of `name` in a /metrics text, by their `generator` label.
fn by_generator(text: &str, name: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter_map(|l| {
            let shard = l.split("generator=\"").nth(1)?.split('"').next()?;
            let value = l.rsplit(' ').next()?.parse().ok()?;
            Some((shard.to_string(), value))
        })
        .collect()
}

/// Live, each generator's rate and lag: `--metrics-listen`, scraped while two generators
/// run, has one series per generator for its starts, rate, largest recent lag and lost
/// state; their starts add up to the run's.
#[test]
fn the_live_metrics_show_each_generators_rate_and_lag() {
    let (server, _) = counting_server(Duration::from_millis(5));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", crate::support::prom::free_port())
        .parse()
        .unwrap();
    let listen = addr.to_string();
    let c = Coordinator::start_with(
        &scenario(8, 100),
        &server.url(),
        2,
        &["--metrics-listen", &listen],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let seen = loop {
        let text = crate::support::prom::http_get(addr, "/metrics")
            .map(|(_, body)| body)
            .unwrap_or_default();
        // Two seconds in (about 100 starts each), a second of starts is behind the rates.
        let started = by_generator(&text, "slo_check_generator_workflows_started_total");
        if started.len() == 2 && started.values().all(|s| *s >= 100.0) {
            break text;
        }
        assert!(Instant::now() < deadline, "no generator rates:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let shards = ["0/2", "1/2"].map(String::from);
    let rates = by_generator(&seen, "slo_check_generator_starts_per_second");
    let started = by_generator(&seen, "slo_check_generator_workflows_started_total");
    let lags = by_generator(&seen, "slo_check_generator_schedule_lag_max_seconds");
    let lost = by_generator(&seen, "slo_check_generator_lost");
    for shard in &shards {
        // Half of a 100/s Poisson schedule each, over about a second: far from 0 and 500.
        assert!((10.0..500.0).contains(&rates[shard]), "{rates:?}");
        assert!(started[shard] > 0.0, "{started:?}");
        assert!((0.0..1.0).contains(&lags[shard]), "{lags:?}");
        assert_eq!(lost[shard], 0.0, "{lost:?}");
    }
    let (code, run, out) = c.wait();
    assert_eq!(code, 0, "{out}");
    let total = run["counts"]["started"].as_f64().unwrap();
    assert!(
        started.values().sum::<f64>() <= total,
        "{started:?} {total}"
    );
}

/// A server on `bind` whose every answer takes exactly its `n`'s delay: 200 ms plus a
/// spread of 0–799 ms fixed by `n`. The latency distribution of a run is then that of
/// the schedule's `${seq}`s, whichever process sent them.
fn seq_delay_server(bind: &'static str) -> Server {
    Server::http_on(bind, move |req| async move {
        let n = req
            .path
            .split_once("n=")
            .and_then(|(_, n)| n.parse::<u64>().ok())
            .unwrap_or(0);
        tokio::time::sleep(seq_delay(n)).await;
        respond(200, "ok")
    })
}

fn seq_delay(n: u64) -> Duration {
    Duration::from_millis(200 + n.wrapping_mul(7919) % 800)
}

/// The exact `p`-th percentile of the delays of starts 0 … count − 1, ms, as
/// HdrHistogram ranks it (the value at rank ⌈p/100 · count⌉).
fn true_percentile_ms(count: u64, p: f64) -> f64 {
    let mut d: Vec<u128> = (0..count).map(|n| seq_delay(n).as_millis()).collect();
    d.sort_unstable();
    let rank = ((p / 100.0 * count as f64).ceil() as usize).clamp(1, d.len());
    d[rank - 1] as f64
}

/// On the test cluster, one generator pod and three give the same verdict: the same
/// scheduled and started counts, and p95/p99/p99.9 within 1 % of each other and of the
/// target's own truth (each request's delay is fixed by its `${seq}`, so the truth is
/// known). The generator pods run on the process node and drive a server of the test's
/// on the node's bridge (198.18.0.1), which is how its pods reach this machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_cluster_one_generator_and_three_give_the_same_percentiles() {
    let Some(s) = crate::support::cluster::ClusterStack::new("gen-agree") else {
        return;
    };
    // On the process node's bridge, where its pods reach the host.
    let server = seq_delay_server("198.18.0.1:0");
    let scenario = s.dir.path().join("agree.yaml");
    std::fs::write(
        &scenario,
        "name: agree\nworkflow:\n  - name: get\n    request: { method: GET, path: \"/w?n=${seq}\" }\n    expect: { status: [200] }\nload: { arrival: poisson, seed: 21, stages: [{ for: 20s, rate: 60 }], request_timeout: 5s }\nslos:\n  - { name: p95, metric: latency.p95, max: 2s }\n",
    )
    .unwrap();
    let mut runs = Vec::new();
    for n in ["1", "3"] {
        let out = s.dir.path().join(format!("out-{n}"));
        let child = s
            .command(&[
                "run",
                "--scenario",
                scenario.to_str().unwrap(),
                "--platform",
                "kube",
                "--target-url",
                &server.url(),
                "--generators",
                n,
                "--keep",
                "--out",
                out.to_str().unwrap(),
            ])
            .args(crate::support::cluster::GENERATORS_ON_THE_PROCESS_NODE)
            .spawn()
            .expect("spawn slo-check");
        let (code, stdout, stderr) =
            crate::support::cluster::finish_within(child, Duration::from_secs(240)).await;
        let run = read_json(&out.join("run.json"), &stderr);
        assert_eq!(code, Some(0), "--generators {n}: {stderr}");
        // The verdict as the user sees it (docs/distributed.md shows it).
        println!("--generators {n}:\n{stderr}{stdout}");
        let gens = run["generators"].as_array().expect("run.json generators");
        assert_eq!(gens.len().to_string(), n);
        for g in gens {
            assert!(g["runs_as"].as_str().unwrap().starts_with("pod "), "{g}");
            assert!(g["lost"].is_null(), "{g}");
        }
        runs.push(run);
    }
    let (one, three) = (&runs[0], &runs[1]);
    for k in ["scheduled", "started", "succeeded"] {
        assert_eq!(one["counts"][k], three["counts"][k], "{k}");
    }
    let scheduled = one["counts"]["scheduled"].as_u64().unwrap();
    assert!(scheduled > 900, "{}", one["counts"]);
    let mut table = Vec::new();
    for (key, p) in [("p95", 95.0), ("p99", 99.0), ("p999", 99.9)] {
        let truth = true_percentile_ms(scheduled, p);
        let a = one["workflow"]["latency_ms"][key].as_f64().unwrap();
        let b = three["workflow"]["latency_ms"][key].as_f64().unwrap();
        table.push(format!(
            "{key}: truth {truth} ms, N=1 {a:.1} ms, N=3 {b:.1} ms"
        ));
        assert!((a - b).abs() <= 0.01 * a.max(b), "{key}: {table:?}");
        for m in [a, b] {
            // Never below the server's delay (HdrHistogram's 3 digits aside), and the
            // client's own overhead well under 1 %.
            assert!(m >= truth * 0.999 && m <= truth * 1.01, "{key}: {table:?}");
        }
    }
    println!("{}", table.join("\n"));
}

/// A generator SIGKILLed in a capacity step stops the search as an infrastructure failure
/// (exit 3) naming it: a step whose load was not delivered says nothing about the target.
#[test]
fn a_generator_lost_in_a_capacity_step_stops_the_search_naming_it() {
    let (server, _) = counting_server(Duration::from_millis(2));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.yaml"), scenario(2, 50)).unwrap();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("slo-check"))
        .env_remove("GITHUB_STEP_SUMMARY")
        .arg("capacity")
        .arg("--scenario")
        .arg(dir.path().join("s.yaml"))
        .args(["--platform", "url", "--target-url", &server.url()])
        .args(["--from", "100", "--step-for", "4s", "--warmup", "0s"])
        .args(["--generators", "2", "--history", "off", "--out"])
        .arg(dir.path().join("out"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let gens = loop {
        let found = children(child.id());
        if found.len() == 2 {
            break found;
        }
        assert!(Instant::now() < deadline, "generators: {found:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(1500));
    signal(gens["0/2"], "-KILL");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("capacity did not exit within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("step 1 (100/s): its load was not delivered: generator 0/2 (pid ")
            && stderr.contains("SIGKILL"),
        "{stderr}"
    );
    assert!(children(child.id()).is_empty());
    // The reports say the search did not conclude, and why.
    let report = read_json(&dir.path().join("out/capacity.json"), &stderr);
    let stopped = report["stopped"].as_str().unwrap_or_default();
    assert!(stopped.contains("generator 0/2"), "{report}");
    let md = std::fs::read_to_string(dir.path().join("out/capacity.md")).unwrap();
    assert!(
        md.contains("capacity: not concluded: the search stopped: step 1"),
        "{md}"
    );
}
