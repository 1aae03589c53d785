//! Poisson arrivals: reproducible from the seed, statistically right, and
//! delivered exactly as planned to a real server.

use crate::support;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::support::common::{Run, Server, count, respond, slo_check};

const RATE: f64 = 200.0;
const DURATION_S: f64 = 10.0;

fn scenario(rate: f64, duration: &str) -> String {
    support::common::get_scenario(
        "/",
        &format!("{{ arrival: poisson, seed: 11, stages: [{{ for: {duration}, rate: {rate} }}] }}"),
        "[]",
    )
}

/// The start offsets `plan --starts` prints (the lines that parse as f64).
fn starts(file: &std::path::Path, extra: &[&str]) -> Vec<f64> {
    let out = slo_check()
        .arg("plan")
        .arg("--scenario")
        .arg(file)
        .arg("--starts")
        .args(extra)
        .output()
        .expect("plan runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse::<f64>().ok())
        .collect()
}

fn write(yaml: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("poisson.yaml");
    std::fs::write(&file, yaml).unwrap();
    (dir, file)
}

#[test]
fn same_seed_same_schedule_other_seed_other_schedule() {
    let (_dir, file) = write(&scenario(RATE, "10s"));
    let a = starts(&file, &[]);
    let b = starts(&file, &[]);
    assert!(!a.is_empty());
    assert_eq!(a, b, "the scenario's seed must fix the schedule");
    let c = starts(&file, &["--seed", "11"]);
    assert_eq!(a, c, "--seed 11 is the scenario's own seed");
    let d = starts(&file, &["--seed", "12"]);
    assert_ne!(a, d, "a different --seed must give a different schedule");
    assert_eq!(d, starts(&file, &["--seed", "12"]));
}

#[test]
fn count_and_gaps_are_within_statistical_bounds() {
    let (_dir, file) = write(&scenario(RATE, "10s"));
    // Several seeds, so one lucky seed cannot hide a biased generator.
    for seed in ["1", "2", "3"] {
        let t = starts(&file, &["--seed", seed]);
        let n = t.len() as f64;
        let expected = RATE * DURATION_S;
        // Count ~ Poisson(2000): σ = √2000 ≈ 45.
        assert!(
            (n - expected).abs() <= 4.0 * expected.sqrt(),
            "seed {seed}: {n} starts, expected {expected} ± {:.0}",
            4.0 * expected.sqrt()
        );
        assert!(t.windows(2).all(|w| w[0] <= w[1]), "offsets are sorted");
        assert!(t[0] >= 0.0 && *t.last().unwrap() < DURATION_S);
        // Gaps ~ Exp(rate): mean 1/rate with σ_mean = (1/rate)/√n; variance
        // 1/rate² with σ(s²) ≈ √(8/n)/rate².
        let gaps: Vec<f64> = std::iter::once(t[0])
            .chain(t.windows(2).map(|w| w[1] - w[0]))
            .collect();
        let m = gaps.len() as f64;
        let mean = gaps.iter().sum::<f64>() / m;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / (m - 1.0);
        let mean_want = 1.0 / RATE;
        assert!(
            (mean - mean_want).abs() <= 4.0 * mean_want / m.sqrt(),
            "seed {seed}: mean gap {mean}, expected {mean_want}"
        );
        let var_ratio = var * RATE * RATE;
        assert!(
            (var_ratio - 1.0).abs() <= 4.0 * (8.0 / m).sqrt(),
            "seed {seed}: gap variance × rate² = {var_ratio}, expected 1 (exponential gaps)"
        );
        // Not a constant schedule in disguise: many gaps far below and above the mean.
        let short = gaps.iter().filter(|g| **g < 0.2 * mean_want).count() as f64 / m;
        // P(gap < 0.2/rate) = 1 − e^−0.2 ≈ 0.181.
        assert!(
            (short - 0.181).abs() < 0.05,
            "seed {seed}: short gaps {short}"
        );
    }
}

#[test]
fn time_scale_shrinks_the_schedule() {
    let (_dir, file) = write(&scenario(RATE, "10s"));
    let t = starts(&file, &["--seed", "5", "--time-scale", "0.1"]);
    let n = t.len() as f64;
    assert!((n - 200.0).abs() <= 4.0 * 200f64.sqrt(), "{n} starts");
    assert!(*t.last().unwrap() < 1.0);
}

#[test]
fn real_run_sends_exactly_the_planned_starts() {
    let hits = Arc::new(AtomicU64::new(0));
    let h = hits.clone();
    let server = Server::http(move |_req| {
        h.fetch_add(1, Ordering::SeqCst);
        async { respond(200, "ok") }
    });
    let (_dir, file) = write(&scenario(100.0, "2s"));
    let planned = starts(&file, &["--seed", "42"]).len() as u64;
    let run = Run::new(&std::fs::read_to_string(&file).unwrap(), &server.url())
        .arg("--seed")
        .arg("42")
        .exec();
    run.expect_code(0);
    let r = run.report();
    assert_eq!(r["arrival"], "poisson");
    assert_eq!(r["seed"], 42);
    assert_eq!(count(&r, "scheduled"), planned);
    assert_eq!(count(&r, "started"), planned);
    assert_eq!(count(&r, "succeeded"), planned);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        planned,
        "requests the server saw"
    );
}
