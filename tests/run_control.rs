//! Run control: `--time-scale` scales stages and windows (not rates) and is
//! recorded; SIGINT stops a run with exit 130 and a partial report.

use crate::support::common::{Run, Server, count, get_scenario, respond, slo};
use std::time::Duration;

fn fast() -> Server {
    Server::http(|_| async { respond(200, "ok") })
}

/// `slo-check run` of a GET scenario with `stages` against `server` (`--platform url`,
/// quiet), not started; the scenario lives in the returned directory.
fn url_run(server: &Server, stages: &str) -> (tempfile::TempDir, std::process::Command) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scenario.yaml");
    std::fs::write(&file, get_scenario("/", stages, "[]")).unwrap();
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("slo-check"));
    cmd.arg("run").arg("--scenario").arg(&file).args([
        "--platform",
        "url",
        "--target-url",
        &server.url(),
        "--quiet",
    ]);
    (dir, cmd)
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
    let (dir, mut cmd) = url_run(
        &server,
        "{ arrival: constant, stages: [{ for: 30s, rate: 20 }] }",
    );
    let out = dir.path().join("out");
    let mut child = cmd
        .args(["--grace", "1s"])
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

#[test]
fn an_unwritable_out_is_refused_before_any_load() {
    let server = fast();
    let (_dir, mut cmd) = url_run(
        &server,
        "{ arrival: constant, stages: [{ for: 30s, rate: 20 }] }",
    );
    let started = std::time::Instant::now();
    let out = cmd
        .args(["--out", "/proc/slo-check-nope"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--out: cannot write reports into /proc/slo-check-nope"),
        "{stderr}"
    );
    // Refused before its 30 s of load.
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn reports_that_cannot_be_written_at_the_end_go_to_a_fallback_named_on_stderr() {
    let server = fast();
    let (dir, mut cmd) = url_run(
        &server,
        "{ arrival: constant, stages: [{ for: 3s, rate: 20 }] }",
    );
    let out = dir.path().join("out");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let child = cmd
        .arg("--out")
        .arg(&out)
        .env("TMPDIR", &tmp)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Checked writable before the load; made unwritable during it: a file where the
    // directory was.
    std::thread::sleep(Duration::from_millis(1000));
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::write(&out, "in the way").unwrap();
    let done = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(3), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("the reports were written to"))
        .unwrap_or_else(|| panic!("no fallback named: {stderr}"));
    let fallback = line
        .split("the reports were written to ")
        .nth(1)
        .and_then(|rest| rest.strip_suffix(" instead"))
        .unwrap_or_else(|| panic!("{line}"));
    assert!(fallback.starts_with(tmp.to_str().unwrap()), "{line}");
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(std::path::Path::new(fallback).join("run.json")).unwrap(),
    )
    .unwrap();
    assert!(count(&r, "started") > 0);
}
