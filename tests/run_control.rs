//! Run control: `--time-scale` scales stages and windows (not rates) and is
//! recorded; SIGINT stops a run with exit 130 and a partial report.

use std::time::Duration;

use crate::support::common::{Run, Server, count, get_scenario, respond, slo};

fn fast() -> Server {
    Server::http(|_| async { respond(200, "ok") })
}

#[test]
fn time_scale_scales_stages_and_windows_and_is_recorded() {
    let server = fast();
    let yaml = get_scenario(
        "/",
        "{ arrival: constant, stages: [{ for: 2s, rate: 20 }, { for: 2s, rate: 20 }] }",
        "[{ name: late, metric: latency.p95, max: 2s, window: { from: 2s, to: 4s } }, { name: s2, metric: latency.p95, max: 2s, window: { stage: 2 } }]",
    );
    let run = Run::new(&yaml, &server.url())
        .arg("--time-scale")
        .arg("0.25")
        .exec();
    run.expect_code(0);
    let r = run.report();
    assert_eq!(r["time_scale"], 0.25);
    assert_eq!(r["schedule_s"], 1.0);
    // Rates are not scaled, durations are: 1 s at 20/s.
    assert_eq!(count(&r, "scheduled"), 20);
    for name in ["late", "s2"] {
        let w = &slo(&r, name)["window"];
        assert_eq!(
            (w["from_s"].as_f64(), w["to_s"].as_f64()),
            (Some(0.5), Some(1.0)),
            "{name}"
        );
    }
}

#[test]
fn sigint_stops_the_run_with_exit_130_and_a_partial_report() {
    let server = fast();
    let yaml = get_scenario(
        "/",
        "{ arrival: constant, stages: [{ for: 30s, rate: 20 }] }",
        "[]",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("long.yaml");
    std::fs::write(&file, yaml).unwrap();
    let out = dir.path().join("out");
    let bin = assert_cmd::cargo::cargo_bin("slo-check");
    let mut child = std::process::Command::new(bin)
        .arg("run")
        .arg("--scenario")
        .arg(&file)
        .args([
            "--platform",
            "url",
            "--target-url",
            &server.url(),
            "--quiet",
            "--grace",
            "1s",
        ])
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Bounded wait: the child must stop by itself well before its 30 s schedule.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("slo-check did not stop after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(r["interrupted"], true);
    let started = count(&r, "started");
    assert!(started > 0 && started < 600, "started {started}");
    assert_eq!(
        count(&r, "succeeded") + count(&r, "failed") + count(&r, "abandoned"),
        started
    );
    assert!(
        std::fs::read_to_string(out.join("summary.md"))
            .unwrap()
            .contains("INTERRUPTED")
    );
}
