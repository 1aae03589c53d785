//! The live series: a `Tally` the recorder's owner feeds with the engine's events
//! (counters and Prometheus histograms, cumulative), and the `Frame` it renders — every
//! sample of every family at one instant, labelled `scenario` and `testid` — which the
//! text exposition and remote write both encode, so the two carry the same series.

use crate::stats::record::{Event, FailureKind, Outcome, WorkflowRecord};

/// Every metric name starts with this (k6's are `k6_…`).
pub const PREFIX: &str = "slo_check_";

/// Bucket bounds of the latency histograms, µs (`le` in seconds: 1 ms … 120 s). About
/// 25 % apart from 10 ms to 5 s, so `histogram_quantile`, which interpolates within a
/// bucket, lands within a quarter of the exact (HdrHistogram) percentile there.
const LATENCY_BOUNDS_US: [u64; 36] = [
    1_000,
    2_500,
    5_000,
    7_500,
    10_000,
    12_500,
    15_000,
    20_000,
    25_000,
    30_000,
    40_000,
    50_000,
    60_000,
    75_000,
    100_000,
    125_000,
    150_000,
    200_000,
    250_000,
    300_000,
    400_000,
    500_000,
    600_000,
    750_000,
    1_000_000,
    1_250_000,
    1_500_000,
    2_000_000,
    2_500_000,
    3_000_000,
    4_000_000,
    5_000_000,
    10_000_000,
    30_000_000,
    60_000_000,
    120_000_000,
];
/// Bucket bounds of the schedule lag histogram, µs (`le` in seconds: 50 µs … 1 s).
const LAG_BOUNDS_US: [u64; 14] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000,
];

/// A Prometheus metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One sample: its full name (a histogram's `_bucket`, `_sum`, `_count`), its labels
/// (`scenario` and `testid` first) and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// One metric family: name (a counter's with `_total`), help, type, samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

/// Every series at one instant.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Frame {
    pub families: Vec<Family>,
}

impl Frame {
    /// Every sample name the frame holds (a histogram's `_bucket`, `_sum`, `_count`).
    pub fn sample_names(&self) -> std::collections::BTreeSet<String> {
        self.families
            .iter()
            .flat_map(|f| f.samples.iter().map(|s| s.name.clone()))
            .collect()
    }

    /// The value of the sample `name` whose labels include every pair of `with`.
    pub fn value(&self, name: &str, with: &[(&str, &str)]) -> Option<f64> {
        self.families
            .iter()
            .flat_map(|f| &f.samples)
            .find(|s| {
                s.name == name
                    && with
                        .iter()
                        .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|s| s.value)
    }
}

/// What the engine counts as it goes (its `Live` atomics), read when a frame is made:
/// starts are counted when issued, not when their workflow ends.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Now {
    pub started: u64,
    pub dropped: u64,
    pub in_flight: u64,
    /// The schedule's start rate at this instant (per second; 0 after the schedule).
    pub target_rate_per_s: f64,
    /// A distributed run's generators, in shard order (empty otherwise).
    pub generators: Vec<GeneratorNow>,
}

/// One generator of a distributed run as its coordinator last heard from it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GeneratorNow {
    /// `index/count`.
    pub shard: String,
    /// Starts it issued and dropped so far, and its workflows in flight.
    pub started: u64,
    pub dropped: u64,
    pub in_flight: u64,
    /// Its start rate over about the last second.
    pub rate_per_s: f64,
    /// The largest schedule lag among its workflows received over about the last second,
    /// ms (`None`: none received).
    pub lag_ms: Option<f64>,
    /// Declared lost (never started, died, or stopped answering).
    pub lost: bool,
}

/// A Prometheus histogram: per-bucket counts (not cumulative; the last is +Inf), the sum
/// in µs (exact) and the count.
#[derive(Debug, Clone)]
struct Buckets {
    bounds_us: &'static [u64],
    counts: Vec<u64>,
    sum_us: u64,
    count: u64,
}

impl Buckets {
    fn new(bounds_us: &'static [u64]) -> Buckets {
        Buckets {
            bounds_us,
            counts: vec![0; bounds_us.len() + 1],
            sum_us: 0,
            count: 0,
        }
    }

    fn observe(&mut self, us: u64) {
        let i = self.bounds_us.partition_point(|&b| b < us);
        self.counts[i] += 1;
        self.sum_us += us;
        self.count += 1;
    }

    /// The `_bucket` (cumulative, `le` in seconds), `_sum` (seconds) and `_count` samples.
    fn samples(&self, name: &str, labels: &[(String, String)]) -> Vec<Sample> {
        let with = |extra: Option<(&str, String)>| {
            let mut l = labels.to_vec();
            l.extend(extra.map(|(k, v)| (k.to_string(), v)));
            l
        };
        let mut out = Vec::with_capacity(self.counts.len() + 2);
        let mut cumulative = 0;
        for (i, n) in self.counts.iter().enumerate() {
            cumulative += n;
            let le = match self.bounds_us.get(i) {
                Some(b) => (*b as f64 / 1e6).to_string(),
                None => "+Inf".to_string(),
            };
            out.push(Sample {
                name: format!("{name}_bucket"),
                labels: with(Some(("le", le))),
                value: cumulative as f64,
            });
        }
        out.push(Sample {
            name: format!("{name}_sum"),
            labels: with(None),
            value: self.sum_us as f64 / 1e6,
        });
        out.push(Sample {
            name: format!("{name}_count"),
            labels: with(None),
            value: self.count as f64,
        });
        out
    }
}

/// The live series' state, fed event by event by the recorder's owner (never shared:
/// readers get `Frame`s).
#[derive(Debug, Clone)]
pub struct Tally {
    /// `scenario` and `testid`, on every series.
    labels: Vec<(String, String)>,
    step_names: Vec<String>,
    succeeded: u64,
    failed: [u64; FailureKind::COUNT],
    abandoned: u64,
    workflow: Buckets,
    steps: Vec<Buckets>,
    lag: Buckets,
}

impl Tally {
    /// Series for `scenario`'s run `testid`, with one step histogram per step name.
    pub fn new(scenario: &str, testid: &str, step_names: Vec<String>) -> Tally {
        Tally {
            labels: vec![
                ("scenario".into(), scenario.into()),
                ("testid".into(), testid.into()),
            ],
            steps: step_names
                .iter()
                .map(|_| Buckets::new(&LATENCY_BOUNDS_US))
                .collect(),
            step_names,
            succeeded: 0,
            failed: [0; FailureKind::COUNT],
            abandoned: 0,
            workflow: Buckets::new(&LATENCY_BOUNDS_US),
            lag: Buckets::new(&LAG_BOUNDS_US),
        }
    }

    /// One event of the engine, counted as the recorder counts it (latencies of
    /// succeeded workflows and steps, from the intended start; lag of every workflow that
    /// sent a request). Dropped starts are counted by the engine (`Now::dropped`).
    pub fn add(&mut self, event: &Event) {
        if let Event::Workflow(r) = event {
            self.add_workflow(r);
        }
    }

    fn add_workflow(&mut self, r: &WorkflowRecord) {
        if r.outcome != Outcome::Abandoned || !r.steps.is_empty() {
            self.lag.observe(r.lag_us);
        }
        match r.outcome {
            Outcome::Succeeded => {
                self.succeeded += 1;
                self.workflow.observe(r.latency_us());
            }
            Outcome::Failed { kind, .. } => self.failed[kind.index()] += 1,
            Outcome::Abandoned => self.abandoned += 1,
        }
        for s in r.steps.iter().filter(|s| s.ok) {
            if let Some(b) = self.steps.get_mut(s.step as usize) {
                b.observe(s.latency_us);
            }
        }
    }

    /// Every series now.
    pub fn frame(&self, now: Now) -> Frame {
        let l = &self.labels;
        let one = |name: &str, help, kind, value: f64| Family {
            name: format!("{PREFIX}{name}"),
            help,
            kind,
            samples: vec![Sample {
                name: format!("{PREFIX}{name}"),
                labels: l.clone(),
                value,
            }],
        };
        let failed = FailureKind::ALL
            .iter()
            .map(|k| Sample {
                name: format!("{PREFIX}workflows_failed_total"),
                labels: with(l, "kind", k.as_str()),
                value: self.failed[k.index()] as f64,
            })
            .collect();
        let histogram = |name: &str, help, samples| Family {
            name: format!("{PREFIX}{name}"),
            help,
            kind: Kind::Histogram,
            samples,
        };
        let step_samples = self
            .steps
            .iter()
            .zip(&self.step_names)
            .flat_map(|(b, step)| {
                b.samples(
                    &format!("{PREFIX}step_duration_seconds"),
                    &with(l, "step", step),
                )
            })
            .collect();
        Frame {
            families: vec![
                one(
                    "workflows_started_total",
                    "Workflows started (first request issued), as the schedule issued them.",
                    Kind::Counter,
                    now.started as f64,
                ),
                one(
                    "workflows_succeeded_total",
                    "Workflows that ended with every step succeeded.",
                    Kind::Counter,
                    self.succeeded as f64,
                ),
                Family {
                    name: format!("{PREFIX}workflows_failed_total"),
                    help: "Workflows that failed, by kind: connect, timeout, status, expectation, poll_timeout, other.",
                    kind: Kind::Counter,
                    samples: failed,
                },
                one(
                    "workflows_dropped_total",
                    "Scheduled starts not issued because max_in_flight workflows were running.",
                    Kind::Counter,
                    now.dropped as f64,
                ),
                one(
                    "workflows_abandoned_total",
                    "Workflows still in flight when an interrupt's grace period ended.",
                    Kind::Counter,
                    self.abandoned as f64,
                ),
                one(
                    "workflows_in_flight",
                    "Workflows started and not yet ended.",
                    Kind::Gauge,
                    now.in_flight as f64,
                ),
                one(
                    "target_starts_per_second",
                    "The schedule's workflow start rate at this instant.",
                    Kind::Gauge,
                    now.target_rate_per_s,
                ),
                histogram(
                    "workflow_duration_seconds",
                    "Latency of succeeded workflows, from the intended start to the end.",
                    self.workflow
                        .samples(&format!("{PREFIX}workflow_duration_seconds"), l),
                ),
                histogram(
                    "step_duration_seconds",
                    "Latency of succeeded steps, by step, from the step's intended start.",
                    step_samples,
                ),
                histogram(
                    "schedule_lag_seconds",
                    "Actual minus intended send time of each workflow's first request.",
                    self.lag
                        .samples(&format!("{PREFIX}schedule_lag_seconds"), l),
                ),
            ]
            .into_iter()
            .chain(generator_families(l, &now.generators))
            .collect(),
        }
    }
}

/// A distributed run's per-generator gauges, labelled `generator="i/N"` (none without
/// generators).
fn generator_families(l: &[(String, String)], generators: &[GeneratorNow]) -> Vec<Family> {
    if generators.is_empty() {
        return Vec::new();
    }
    let family = |name: &str, help, kind, value: &dyn Fn(&GeneratorNow) -> f64| Family {
        name: format!("{PREFIX}{name}"),
        help,
        kind,
        samples: generators
            .iter()
            .map(|g| Sample {
                name: format!("{PREFIX}{name}"),
                labels: with(l, "generator", &g.shard),
                value: value(g),
            })
            .collect(),
    };
    vec![
        family(
            "generator_workflows_started_total",
            "Workflows each generator of a distributed run started.",
            Kind::Counter,
            &|g| g.started as f64,
        ),
        family(
            "generator_starts_per_second",
            "Each generator's start rate over about the last second.",
            Kind::Gauge,
            &|g| g.rate_per_s,
        ),
        family(
            "generator_schedule_lag_max_seconds",
            "The largest schedule lag among each generator's workflows received over about the last second.",
            Kind::Gauge,
            &|g| g.lag_ms.unwrap_or(0.0) / 1e3,
        ),
        family(
            "generator_lost",
            "1 once a generator is lost (never started, died, or stopped answering): its other starts are missing.",
            Kind::Gauge,
            &|g| if g.lost { 1.0 } else { 0.0 },
        ),
    ]
}

/// `labels` and one more pair.
fn with(labels: &[(String, String)], key: &str, value: &str) -> Vec<(String, String)> {
    let mut l = labels.to_vec();
    l.push((key.into(), value.into()));
    l
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::record::StepSample;

    fn workflow(latency_us: u64, outcome: Outcome) -> Event {
        Event::Workflow(WorkflowRecord {
            seq: 0,
            intended_us: 1_000,
            lag_us: 300,
            end_us: 1_000 + latency_us,
            outcome,
            steps: vec![
                StepSample {
                    step: 0,
                    latency_us: latency_us / 2,
                    ok: true,
                },
                StepSample {
                    step: 1,
                    latency_us: latency_us / 2,
                    ok: outcome == Outcome::Succeeded,
                },
            ],
            subset: None,
        })
    }

    fn tally() -> Tally {
        let mut t = Tally::new("spike", "spike-1", vec!["submit".into(), "await".into()]);
        t.add(&workflow(40_000, Outcome::Succeeded));
        t.add(&workflow(3_000_000, Outcome::Succeeded));
        t.add(&workflow(
            20_000,
            Outcome::Failed {
                kind: FailureKind::Status,
                step: 1,
            },
        ));
        t.add(&Event::Dropped { intended_us: 5 });
        t
    }

    #[test]
    fn counters_and_histograms_count_as_the_recorder_does() {
        let f = tally().frame(Now {
            started: 3,
            dropped: 1,
            in_flight: 0,
            target_rate_per_s: 20.0,
            generators: Vec::new(),
        });
        let v = |name: &str, with: &[(&str, &str)]| f.value(name, with).unwrap();
        assert_eq!(v("slo_check_workflows_started_total", &[]), 3.0);
        assert_eq!(v("slo_check_workflows_succeeded_total", &[]), 2.0);
        assert_eq!(
            v("slo_check_workflows_failed_total", &[("kind", "status")]),
            1.0
        );
        assert_eq!(
            v("slo_check_workflows_failed_total", &[("kind", "timeout")]),
            0.0
        );
        assert_eq!(v("slo_check_workflows_dropped_total", &[]), 1.0);
        // Workflow latency: 40 ms and 3 s (the failed one is not a latency).
        let wf = "slo_check_workflow_duration_seconds_bucket";
        assert_eq!(v(wf, &[("le", "0.03")]), 0.0);
        assert_eq!(v(wf, &[("le", "0.04")]), 1.0);
        assert_eq!(v(wf, &[("le", "2.5")]), 1.0);
        assert_eq!(v(wf, &[("le", "3")]), 2.0);
        assert_eq!(v(wf, &[("le", "+Inf")]), 2.0);
        assert_eq!(v("slo_check_workflow_duration_seconds_sum", &[]), 3.04);
        assert_eq!(v("slo_check_workflow_duration_seconds_count", &[]), 2.0);
        // Steps: `submit` succeeded in all three, `await` in two.
        let step = "slo_check_step_duration_seconds_count";
        assert_eq!(v(step, &[("step", "submit")]), 3.0);
        assert_eq!(v(step, &[("step", "await")]), 2.0);
        // Lag 300 µs each: above 250 µs, within 500 µs.
        let lag = "slo_check_schedule_lag_seconds_bucket";
        assert_eq!(v(lag, &[("le", "0.00025")]), 0.0);
        assert_eq!(v(lag, &[("le", "0.0005")]), 3.0);
    }

    #[test]
    fn a_distributed_run_shows_each_generator() {
        let g = |i: u32, started, rate, lag, lost| GeneratorNow {
            shard: format!("{i}/2"),
            started,
            rate_per_s: rate,
            lag_ms: lag,
            lost,
            ..GeneratorNow::default()
        };
        let f = tally().frame(Now {
            generators: vec![g(0, 30, 10.0, Some(2.5), false), g(1, 12, 0.0, None, true)],
            ..Now::default()
        });
        let v = |name: &str, shard: &str| f.value(name, &[("generator", shard)]).unwrap();
        assert_eq!(
            v("slo_check_generator_workflows_started_total", "0/2"),
            30.0
        );
        assert_eq!(v("slo_check_generator_starts_per_second", "0/2"), 10.0);
        assert_eq!(
            v("slo_check_generator_schedule_lag_max_seconds", "0/2"),
            0.0025
        );
        assert_eq!(v("slo_check_generator_lost", "0/2"), 0.0);
        assert_eq!(v("slo_check_generator_lost", "1/2"), 1.0);
        assert_eq!(
            v("slo_check_generator_workflows_started_total", "1/2"),
            12.0
        );
        // One process: no generator series at all.
        let one = tally().frame(Now::default());
        assert!(
            !one.sample_names().iter().any(|n| n.contains("generator")),
            "{:?}",
            one.sample_names()
        );
    }

    #[test]
    fn a_bound_is_inclusive_as_prometheus_le_is() {
        let mut b = Buckets::new(&LATENCY_BOUNDS_US);
        b.observe(1_000);
        b.observe(1_001);
        let s = b.samples("x", &[]);
        assert_eq!((s[0].labels[0].1.as_str(), s[0].value), ("0.001", 1.0));
        assert_eq!((s[1].labels[0].1.as_str(), s[1].value), ("0.0025", 2.0));
    }

    #[test]
    fn every_sample_carries_scenario_and_testid() {
        let f = tally().frame(Now::default());
        let samples: Vec<_> = f.families.iter().flat_map(|f| &f.samples).collect();
        assert!(samples.len() > 50);
        for s in samples {
            assert!(s.name.starts_with(PREFIX), "{}", s.name);
            assert_eq!(&s.labels[..2], &tally().labels[..], "{}", s.name);
        }
    }
}
