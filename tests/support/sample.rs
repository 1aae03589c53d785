//! A deterministic example run (a 10× spike with a fault window and an
//! autoscaler catching up), built directly as a `RunReport`: the fixture of
//! the report tests. Same output on every call.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, Poisson};
use rand_pcg::Pcg64;

use slo_check::autoscale::figures::HpaFigures;
use slo_check::report::model::*;
use slo_check::scenario::{Bound, Unit};
use slo_check::slo::{SloResult, Status, WindowInfo};
use slo_check::stats::histogram::{self, LatencySummary};

/// Length of the sample's schedule, seconds.
const SCHEDULE_S: u64 = 120;
const FAULT: (f64, f64) = (70.0, 95.0);

/// Scheduled starts per second at second `t`: 20/s, a ramp to 80/s, 80/s.
fn rate_at(t: f64) -> f64 {
    match t {
        t if t < 30.0 => 20.0,
        t if t < 40.0 => 20.0 + (t - 30.0) * 6.0,
        _ => 80.0,
    }
}

/// Ready replicas at second `t`: the autoscaler reacts to the spike.
fn ready_at(t: f64) -> u32 {
    match t {
        t if t < 52.0 => 2,
        t if t < 64.0 => 4,
        _ => 8,
    }
}

struct Sim {
    seconds: Vec<(TimePoint, Histogram<u64>)>,
    workflow: Histogram<u64>,
    submit: Histogram<u64>,
    await_: Histogram<u64>,
    lag: Histogram<u64>,
}

/// Draw every second's workflows: latency grows with load per ready replica,
/// the fault aborts 6 % of them, the overloaded stretch times a few out.
fn simulate() -> Sim {
    let mut rng = Pcg64::seed_from_u64(7);
    let mut sim = Sim {
        seconds: Vec::new(),
        workflow: histogram::new_histogram(),
        submit: histogram::new_histogram(),
        await_: histogram::new_histogram(),
        lag: histogram::new_histogram(),
    };
    for t in 0..SCHEDULE_S + 2 {
        let mid = t as f64 + 0.5;
        let target = if t < SCHEDULE_S { rate_at(mid) } else { 0.0 };
        let started = if target > 0.0 {
            Poisson::new(target).map_or(0.0, |p| p.sample(&mut rng)) as u64
        } else {
            0
        };
        let load = target / (ready_at(mid) as f64 * 12.0);
        let median_ms = 320.0 * (1.0 + 0.15 * load.powi(2));
        let dist = LogNormal::new(median_ms.ln(), 0.35).expect("valid parameters");
        let in_fault = mid >= FAULT.0 && mid < FAULT.1;
        let mut hist = histogram::new_histogram();
        let mut point = TimePoint {
            t_s: t,
            target_rate_per_s: target,
            started,
            succeeded: 0,
            failed: 0,
            dropped: 0,
            failures_by_kind: BTreeMap::new(),
            p50_ms: None,
            p95_ms: None,
            p99_ms: None,
        };
        for _ in 0..started {
            let kind = if in_fault && rng.random::<f64>() < 0.06 {
                Some("status")
            } else if load > 2.0 && rng.random::<f64>() < 0.02 {
                Some("timeout")
            } else {
                None
            };
            if let Some(kind) = kind {
                point.failed += 1;
                *point.failures_by_kind.entry(kind.into()).or_default() += 1;
                continue;
            }
            let us = (dist.sample(&mut rng) * 1000.0) as u64;
            histogram::record(&mut hist, us);
            let submit_us = 8_000 + us / 40 + rng.random_range(0..4_000);
            histogram::record(&mut sim.submit, submit_us);
            histogram::record(&mut sim.await_, us.saturating_sub(submit_us));
            histogram::record(&mut sim.lag, 50 + rng.random_range(0..400));
            point.succeeded += 1;
        }
        let s = LatencySummary::of(&hist);
        (point.p50_ms, point.p95_ms, point.p99_ms) = (s.p50, s.p95, s.p99);
        sim.workflow.add(&hist).expect("same bounds");
        sim.seconds.push((point, hist));
    }
    sim
}

fn counts(points: &[&TimePoint]) -> CountsReport {
    let mut by_kind: BTreeMap<String, u64> = [
        "connect",
        "expectation",
        "other",
        "poll_timeout",
        "status",
        "timeout",
    ]
    .into_iter()
    .map(|k| (k.to_string(), 0))
    .collect();
    for p in points {
        for (k, n) in &p.failures_by_kind {
            *by_kind.entry(k.clone()).or_default() += n;
        }
    }
    let sum = |f: fn(&TimePoint) -> u64| points.iter().map(|p| f(p)).sum::<u64>();
    let (succeeded, failed) = (sum(|p| p.succeeded), sum(|p| p.failed));
    CountsReport {
        scheduled: sum(|p| p.started),
        started: sum(|p| p.started),
        dropped: 0,
        succeeded,
        failed,
        abandoned: 0,
        failures_by_kind: by_kind,
        failure_rate: (succeeded + failed > 0).then(|| failed as f64 / (succeeded + failed) as f64),
    }
}

fn slo(
    name: &str,
    metric: &str,
    bound: Bound,
    threshold: f64,
    observed: Option<f64>,
    unit: Unit,
) -> SloResult {
    let status = match observed {
        None => Status::Unknown,
        Some(v)
            if (bound == Bound::Max && v <= threshold)
                || (bound == Bound::Min && v >= threshold) =>
        {
            Status::Pass
        }
        Some(_) => Status::Fail,
    };
    SloResult {
        name: name.into(),
        metric: metric.into(),
        window: WindowInfo {
            label: "run".into(),
            from_s: 0.0,
            to_s: SCHEDULE_S as f64,
        },
        bound,
        threshold,
        observed,
        unit,
        status,
        allow_unknown: false,
        reason: None,
        builtin: false,
        query: None,
        alert: None,
    }
}

fn replicas() -> Vec<ReplicaPoint> {
    (-1..=61)
        .map(|i| {
            let t = i as f64 * 2.0;
            let desired = match t {
                t if t < 46.0 => 2,
                t if t < 58.0 => 4,
                _ => 8,
            };
            ReplicaPoint {
                t_s: t,
                desired,
                current: desired,
                ready: ready_at(t),
            }
        })
        .collect()
}

/// The sample run: a spike scenario on the emulated platform; verdict fail
/// (workflow p99 is over its threshold), every status present.
pub fn spike() -> RunReport {
    let sim = simulate();
    let points: Vec<&TimePoint> = sim.seconds.iter().map(|(p, _)| p).collect();
    let counts = counts(&points);
    let whole = LatencySummary::of(&sim.workflow);
    let achieved = counts.started as f64 / SCHEDULE_S as f64;
    let fault_points: Vec<&TimePoint> = points
        .iter()
        .copied()
        .filter(|p| (p.t_s as f64) >= FAULT.0 && (p.t_s as f64) < FAULT.1)
        .collect();
    let mut fault_hist = histogram::new_histogram();
    for (p, h) in &sim.seconds {
        if (p.t_s as f64) >= FAULT.0 && (p.t_s as f64) < FAULT.1 {
            fault_hist.add(h).expect("same bounds");
        }
    }
    let mut slos = vec![
        slo(
            "workflow p95",
            "latency.p95",
            Bound::Max,
            1500.0,
            whole.p95,
            Unit::Ms,
        ),
        slo(
            "workflow p99",
            "latency.p99",
            Bound::Max,
            1200.0,
            whole.p99,
            Unit::Ms,
        ),
        slo(
            "failures",
            "failure_rate",
            Bound::Max,
            0.02,
            counts.failure_rate,
            Unit::Ratio,
        ),
        slo(
            "HPA reacts",
            "hpa.scale_up_seconds",
            Bound::Max,
            30.0,
            Some(22.0),
            Unit::Seconds,
        ),
        slo(
            "server p95",
            "promql: histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[1m])))",
            Bound::Max,
            2.0,
            None,
            Unit::Number,
        ),
        slo(
            "load delivered",
            "load_delivered",
            Bound::Min,
            achieved * 0.99,
            Some(achieved),
            Unit::PerSecond,
        ),
    ];
    slos[4].allow_unknown = true;
    slos[4].reason = Some("no Prometheus URL: the platform has no Prometheus".into());
    slos[5].builtin = true;
    slos[5].reason = Some(format!(
        "{} of {} scheduled starts sent within the schedule, none dropped",
        counts.started, counts.scheduled
    ));
    RunReport {
        schema_version: SCHEMA_VERSION,
        tool_version: "0.1.0".into(),
        scenario: "spike".into(),
        description: "4x spike: the HPA must scale out; p95 under 1.5 s with 6 % aborts injected."
            .into(),
        scenario_file: "scenarios/spike.yaml".into(),
        platform: PlatformInfo {
            kind: "local".into(),
            description:
                "embedded platform: 2 reference agent replicas behind an in-process balancer".into(),
            target_url: "http://127.0.0.1:41234".into(),
            emulated: true,
        },
        time_scale: 1.0,
        arrival: "poisson".into(),
        seed: Some(7),
        started_at: "2026-11-22T03:00:00Z".into(),
        duration_s: SCHEDULE_S as f64 + 1.6,
        schedule_s: SCHEDULE_S as f64,
        verdict: slo_check::slo::verdict(&slos),
        interrupted: false,
        slos,
        workflow: LatencyBlock { latency_ms: whole },
        steps: BTreeMap::from([
            (
                "await".to_string(),
                LatencyBlock {
                    latency_ms: LatencySummary::of(&sim.await_),
                },
            ),
            (
                "submit".to_string(),
                LatencyBlock {
                    latency_ms: LatencySummary::of(&sim.submit),
                },
            ),
        ]),
        target_rate_per_s: counts.scheduled as f64 / SCHEDULE_S as f64,
        achieved_rate_per_s: achieved,
        counts,
        schedule_lag_ms: LagReport {
            p50: histogram::percentile_ms(&sim.lag, 50.0),
            p99: histogram::percentile_ms(&sim.lag, 99.0),
            max: Some(sim.lag.max() as f64 / 1000.0),
            pacing_slack_ms: 0.2,
        },
        windows: vec![WindowReport {
            label: "fault aborts".into(),
            from_s: FAULT.0,
            to_s: FAULT.1,
            counts: self::counts(&fault_points),
            latency_ms: LatencySummary::of(&fault_hist),
        }],
        timeseries: points.iter().map(|p| (*p).clone()).collect(),
        replicas: replicas(),
        hpa: Some(HpaFigures {
            marker_s: Some(30.0),
            decision_s: Some(16.0),
            scale_up_s: Some(22.0),
            peak_replicas: 8,
            time_to_peak_s: None,
            real_time: false,
        }),
        faults: vec![FaultReport {
            name: "aborts".into(),
            from_s: FAULT.0,
            to_s: FAULT.1,
            abort_percent: Some(6.0),
            abort_status: Some(503),
            delay_percent: None,
            delay_ms: None,
            injected: true,
            applied_at_s: None,
            reverted_at_s: None,
            data_plane: None,
            recovery: None,
        }],
        histograms: Histograms {
            workflow: histogram::encode(&sim.workflow),
            steps: BTreeMap::from([
                ("await".to_string(), histogram::encode(&sim.await_)),
                ("submit".to_string(), histogram::encode(&sim.submit)),
            ]),
            per_second: sim
                .seconds
                .iter()
                .map(|(_, h)| histogram::encode(h))
                .collect(),
            schedule_lag: histogram::encode(&sim.lag),
        },
        baseline: None,
        history: None,
        cross_check: Vec::new(),
        gateway: None,
        canary: None,
        testid: None,
        live_metrics: None,
        generators: Vec::new(),
    }
}
