//! The embedded autoscaler (`src/autoscale/hpa.rs`) against the real HPA controller: one
//! CPU demand series drives both, and their replica timelines must agree.
//!
//! On the test cluster, a Deployment on KWOK's ordinary nodes is scaled by the real
//! kube-controller-manager under the stack's own HPA (`stack/base/hpa.yaml`, with the
//! scale-down stabilisation window cut from 300 s to 30 s). The test writes each pod's
//! CPU usage into KWOK's `kwok.x-k8s.io/usage-cpu` annotation (the cluster's
//! `usage-from-annotation` ClusterResourceUsage): the series' total demand split over
//! the pods that exist, so the utilisation falls as the controller adds pods, as under a
//! real load. metrics-server scrapes that from KWOK every 15 s.
//!
//! The emulator is stepped through the same series as metrics-server delivered it:
//! every 15 s in the controller's own sync phase (taken from its first scale), seeing the
//! demand at the last scrape before each sync (the scrape instants are read from the
//! metrics API during the run), its new pods without a CPU sample for as many scrapes as
//! the real pods went without one. Agreement means every scale, up and down, at the same
//! sync to the same count; so the first scale-up, the peak and the scale-down after the
//! stabilisation window agree, and both end at `minReplicas`.
//!
//! Where they may differ, and why, is docs/cluster.md's "The embedded autoscaler against
//! the real controller". The trace of a real run is kept in
//! tests/corpus/hpa-parity-trace.json, and the emulator is checked against it on every
//! `cargo test`, cluster or not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use slo_check::autoscale::hpa::{Autoscaler, PodSample, SYNC_PERIOD};
use slo_check::autoscale::manifest::{HpaSpec, parse_hpa};

use crate::support::cluster;

/// Each pod's CPU request, in millicores.
const REQUEST_M: u64 = 100;
/// The test's scale-down stabilisation window (the stack's is 300 s).
const SCALE_DOWN_WINDOW_S: u64 = 30;
/// Total CPU demand in millicores from each instant on (seconds since the series began):
/// 30 % of two pods' requests, then 600 m (300 % of two, 67 % of nine at the 70 %
/// target), then back down. Chosen so that no recommendation sits on a rounding edge:
/// metrics-server's rates come out a hair above the written usage now and then, and
/// the controller rounds them up to the next millicore.
const DEMAND: [(f64, u64); 3] = [(0.0, 60), (20.0, 600), (110.0, 60)];
/// When the demand drops: the start of the last step.
const DROP_S: f64 = DEMAND[2].0;
/// How long the series runs: long enough for the two scale-down steps the policy allows
/// (half the pods per 60 s) after the window.
const END_S: f64 = 270.0;
/// The annotation KWOK's `usage-from-annotation` reads.
const USAGE_ANNOTATION: &str = "kwok.x-k8s.io/usage-cpu";
/// The recorded trace of a real run.
const TRACE: &str = "tests/corpus/hpa-parity-trace.json";

/// The demand at `t` seconds.
fn demand_m(t: f64) -> u64 {
    DEMAND
        .iter()
        .rev()
        .find(|(from, _)| t >= *from)
        .map_or(DEMAND[0].1, |(_, m)| *m)
}

/// Each of `pods` pods' share of the demand, in whole millicores (what is written into
/// the annotation, and what the emulator is given).
fn per_pod_m(t: f64, pods: u32) -> u64 {
    demand_m(t) / u64::from(pods.max(1))
}

/// One scale: at `at_s` seconds since the series began, to `replicas`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Scale {
    at_s: f64,
    replicas: u32,
}

/// What one real run recorded: the controller's scales (from the HPA's
/// `status.lastScaleTime`, whole seconds), the instants at which metrics-server
/// published new pod metrics (the metrics API's `timestamp`), and each pod's life.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Trace {
    /// The HPA manifest both ran, as applied.
    hpa: String,
    scrapes_s: Vec<f64>,
    real: Vec<Scale>,
    /// HPA `status.desiredReplicas` polled every second: (seconds, replicas).
    desired: Vec<(f64, u32)>,
    pods: Vec<PodLife>,
}

/// One real pod: when it was created and when the metrics API first had a sample.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct PodLife {
    created_s: f64,
    first_sample_s: Option<f64>,
}

impl Trace {
    /// metrics-server's scrape instants over the whole series, from before the first
    /// pod to the end: the recorded ones extended at their period (an instant with no
    /// pod sample left no record).
    fn scrape_grid(&self) -> Vec<f64> {
        let first = *self
            .scrapes_s
            .first()
            .expect("metrics-server published samples");
        let period = self
            .scrapes_s
            .windows(2)
            .map(|w| w[1] - w[0])
            .fold(f64::INFINITY, f64::min);
        assert!(
            period.is_finite() && period > 1.0,
            "scrapes: {:?}",
            self.scrapes_s
        );
        let start = first - (first + 120.0).div_euclid(period) * period;
        (0..)
            .map(|i| start + f64::from(i) * period)
            .take_while(|t| *t <= END_S + period)
            .collect()
    }

    /// The controller's sync instants are its own: this is their phase, from its first
    /// scale (whose `lastScaleTime` is cut to the second, so the middle of that second).
    fn sync_phase_s(&self) -> f64 {
        let first = self
            .real
            .first()
            .expect("the controller scaled at least once");
        (first.at_s + 0.5).rem_euclid(SYNC_PERIOD.as_secs_f64())
    }

    /// How many scrapes a pod created during the run saw before its first sample, the
    /// last one included (the most common count): the metrics pipeline's delay, which
    /// the emulator's pods are given.
    fn sample_delay_scrapes(&self) -> usize {
        let grid = self.scrape_grid();
        let mut counts: Vec<usize> = self
            .pods
            .iter()
            .filter(|p| p.created_s > 0.0)
            .filter_map(|p| {
                let first = p.first_sample_s?;
                Some(
                    grid.iter()
                        .filter(|s| **s >= p.created_s && **s <= first + 0.5)
                        .count(),
                )
            })
            .collect();
        counts.sort_unstable();
        *counts
            .get(counts.len() / 2)
            .expect("pods created during the run got samples")
    }
}

/// The stack's HPA for a Deployment `parity` in `ns`, scale-down window shortened.
fn hpa_manifest(ns: &str) -> String {
    let path = crate::support::stack::root().join("stack/base/hpa.yaml");
    let text = std::fs::read_to_string(&path).expect("stack/base/hpa.yaml");
    let mut out = text;
    for (from, to) in [
        ("  name: mcp-agent-hpa\n", "  name: parity\n".to_string()),
        ("  namespace: mcp-agents\n", format!("  namespace: {ns}\n")),
        ("    name: mcp-agent\n", "    name: parity\n".to_string()),
        (
            "stabilizationWindowSeconds: 300\n",
            format!("stabilizationWindowSeconds: {SCALE_DOWN_WINDOW_S}\n"),
        ),
    ] {
        assert_eq!(
            out.matches(from).count(),
            1,
            "stack/base/hpa.yaml no longer has exactly one `{}`: update tests/hpa_parity.rs",
            from.trim()
        );
        out = out.replace(from, &to);
    }
    out
}

fn spec_of(hpa: &str) -> HpaSpec {
    parse_hpa(hpa, Path::new("hpa_parity")).expect("the parity HPA is valid")
}

fn deployment_manifest(ns: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: parity, namespace: {ns}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: parity}}}}
  template:
    metadata: {{labels: {{app: parity}}}}
    spec:
      nodeSelector: {{type: kwok}}
      terminationGracePeriodSeconds: 0
      containers:
        - name: app
          image: parity:none
          resources: {{requests: {{cpu: {REQUEST_M}m, memory: 16Mi}}}}
"
    )
}

/// The emulator stepped every sync period through the demand as metrics-server
/// delivered it. Its own pods: the run's initial ones (with their real first samples),
/// and one per scale-up, created at the sync, sampled from the `sample_delay_scrapes`-th
/// scrape on (scale-downs remove the newest). At each sync, a sampled pod reports the
/// demand at the latest scrape, split over the pods that existed then; the others are
/// pods without a sample.
fn emulate(spec: &HpaSpec, trace: &Trace) -> (Vec<Scale>, Vec<(f64, u32)>) {
    let grid = trace.scrape_grid();
    let delay = trace.sample_delay_scrapes();
    let mut autoscaler = Autoscaler::new(spec.clone());
    // Per pod: created, first sampled.
    let mut pods: Vec<(f64, f64)> = trace
        .pods
        .iter()
        .filter(|p| p.created_s <= 0.0)
        .map(|p| (p.created_s, p.first_sample_s.unwrap_or(f64::INFINITY)))
        .collect();
    assert_eq!(
        pods.len() as u32,
        spec.min_replicas,
        "the run's initial pods: {:?}",
        trace.pods
    );
    let first_sample_after = |created: f64| {
        grid.iter()
            .filter(|s| **s >= created)
            .nth(delay - 1)
            .copied()
            .unwrap_or(f64::INFINITY)
    };
    let (mut scales, mut timeline) = (Vec::new(), vec![(0.0, spec.min_replicas)]);
    let period = SYNC_PERIOD.as_secs_f64();
    let mut t = trace.sync_phase_s();
    while t <= END_S {
        let scrape = grid
            .iter()
            .rev()
            .find(|s| **s <= t)
            .copied()
            .unwrap_or(f64::NEG_INFINITY);
        let then = pods
            .iter()
            .filter(|(created, _)| *created <= scrape)
            .count() as u32;
        let share = per_pod_m(scrape, then) as f64 / REQUEST_M as f64;
        let samples: Vec<PodSample> = pods
            .iter()
            .map(|(_, sampled)| {
                if *sampled <= t {
                    PodSample::Ready(share)
                } else {
                    PodSample::Missing
                }
            })
            .collect();
        let current = pods.len() as u32;
        let decision = autoscaler.reconcile(Duration::from_secs_f64(t), current, &samples);
        let desired = decision.desired_replicas;
        if desired != current {
            pods.truncate(desired as usize);
            while (pods.len() as u32) < desired {
                pods.push((t, first_sample_after(t)));
            }
            scales.push(Scale {
                at_s: t,
                replicas: desired,
            });
        }
        timeline.push((t, desired));
        t += period;
    }
    (scales, timeline)
}

/// The first scrape at or after `t`: when metrics-server showed a change made at `t`.
fn visible_at(scrapes_s: &[f64], t: f64) -> f64 {
    scrapes_s
        .iter()
        .copied()
        .find(|s| *s >= t)
        .unwrap_or_else(|| panic!("no scrape after {t} s: {scrapes_s:?}"))
}

/// Checks the agreement the module's header states between the trace's real scales and
/// the emulator's; the message shows both timelines.
fn assert_agree(trace: &Trace, spec: &HpaSpec, emulated: &[Scale]) {
    let real = &trace.real;
    let both = format!(
        "real: {real:?}\nemulated: {emulated:?}\nscrapes: {:?}\npods: {:?}",
        trace.scrapes_s, trace.pods
    );
    // The same syncs: lastScaleTime is cut to the second, and the emulator's instants
    // are the middle of that second.
    let same_sync = 1.0;

    let first_up = |s: &[Scale]| *s.first().unwrap_or_else(|| panic!("no scale-up\n{both}"));
    let (r, e) = (first_up(real), first_up(emulated));
    assert!(
        r.replicas > spec.min_replicas,
        "the first real scale is up\n{both}"
    );
    assert_eq!(
        r.replicas, e.replicas,
        "first scale-up to the same count\n{both}"
    );
    assert!(
        (r.at_s - e.at_s).abs() <= same_sync,
        "first scale-up at {:.1} s (real) and {:.1} s (emulated): not the same sync\n{both}",
        r.at_s,
        e.at_s
    );

    let peak = |s: &[Scale]| s.iter().map(|s| s.replicas).max().unwrap_or_default();
    assert_eq!(peak(real), peak(emulated), "the same peak\n{both}");
    assert!(
        peak(real) < spec.max_replicas,
        "a peak the demand set, not maxReplicas\n{both}"
    );

    // The last sync that saw the high demand came at most one sync period before the
    // drop became visible; the window runs from there.
    let drop_seen = visible_at(&trace.scrapes_s, DROP_S);
    let earliest = drop_seen - SYNC_PERIOD.as_secs_f64() + SCALE_DOWN_WINDOW_S as f64 - 1.0;
    let first_down = |s: &[Scale]| {
        *s.iter()
            .find(|x| x.at_s > DROP_S)
            .unwrap_or_else(|| panic!("no scale-down\n{both}"))
    };
    for (who, s) in [
        ("real", first_down(real)),
        ("emulated", first_down(emulated)),
    ] {
        assert!(
            s.at_s >= earliest,
            "{who} scaled down at {:.0} s, inside the {SCALE_DOWN_WINDOW_S} s stabilisation window (the drop became visible at {drop_seen:.0} s)\n{both}",
            s.at_s
        );
    }

    // Every scale, up and down (rate limits included), at the same sync to the same count.
    assert_eq!(real.len(), emulated.len(), "as many scales\n{both}");
    for (r, e) in real.iter().zip(emulated) {
        assert!(
            r.replicas == e.replicas && (r.at_s - e.at_s).abs() <= same_sync,
            "real scaled to {} at {:.1} s, the emulator to {} at {:.1} s\n{both}",
            r.replicas,
            r.at_s,
            e.replicas,
            e.at_s
        );
    }
    let last = |s: &[Scale]| s.last().map(|s| s.replicas);
    assert_eq!(
        last(real),
        Some(spec.min_replicas),
        "back at minReplicas\n{both}"
    );
}

/// The recorded real trace against today's emulator: no cluster needed, so any change
/// to `src/autoscale/hpa.rs` that drifts from the real controller fails here first.
#[test]
fn the_emulator_agrees_with_a_recorded_run_of_the_real_hpa_controller() {
    let path = crate::support::stack::root().join(TRACE);
    let trace: Trace = serde_json::from_str(&std::fs::read_to_string(&path).expect(TRACE))
        .expect("the trace parses");
    let spec = spec_of(&trace.hpa);
    let (emulated, _) = emulate(&spec, &trace);
    assert_agree(&trace, &spec, &emulated);
}

/// A whole run on the test cluster: the real controller and the emulator on one series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_autoscaler_agrees_with_the_real_hpa_controller() {
    let Some(c) = cluster::get() else {
        return;
    };
    let ns = cluster::Namespace::new(c, "hpa-parity");
    c.ok(&["create", "namespace", &ns.name]);
    let dir = tempfile::tempdir().unwrap();
    let hpa = hpa_manifest(&ns.name);
    let manifests = dir.path().join("parity.yaml");
    std::fs::write(
        &manifests,
        format!("{}---\n{hpa}", deployment_manifest(&ns.name)),
    )
    .unwrap();
    c.ok(&["apply", "-f", manifests.to_str().unwrap()]);

    let client = client(&c.kubeconfig).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &ns.name);
    let gvk = GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "PodMetrics");
    let metrics: Api<DynamicObject> = Api::namespaced_with(
        client,
        &ns.name,
        &ApiResource::from_gvk_with_plural(&gvk, "pods"),
    );

    // Both pods exist before the series begins.
    let selector = ListParams::default().labels("app=parity");
    let started = Instant::now();
    while live_pods(&pods, &selector).await.len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the Deployment's two pods"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let cpu = crate::support::cpu::CpuLedger::start();
    let (t0, t0_wall) = (Instant::now(), SystemTime::now());
    let since = |wall: SystemTime| {
        wall.duration_since(t0_wall)
            .map_or_else(|e| -e.duration().as_secs_f64(), |d| d.as_secs_f64())
    };
    let mut trace = Trace {
        hpa,
        scrapes_s: Vec::new(),
        real: Vec::new(),
        desired: Vec::new(),
        pods: Vec::new(),
    };
    let mut scrapes = BTreeSet::new();
    let mut lives: BTreeMap<String, PodLife> = BTreeMap::new();
    let mut last_scale = None;
    while t0.elapsed().as_secs_f64() < END_S {
        let t = t0.elapsed().as_secs_f64();
        let live = live_pods(&pods, &selector).await;
        for pod in &live {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let created = pod
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|c| since(SystemTime::from(c.0)));
            lives.entry(name).or_insert(PodLife {
                created_s: created.unwrap_or(t),
                first_sample_s: None,
            });
        }
        let share = format!("{}m", per_pod_m(t, live.len() as u32));
        for pod in &live {
            let current = pod
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(USAGE_ANNOTATION));
            if current != Some(&share) {
                let name = pod.metadata.name.as_deref().unwrap_or_default();
                let patch = json!({"metadata": {"annotations": {USAGE_ANNOTATION: share}}});
                // A pod deleted since the list is no error.
                let _ = pods
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await;
            }
        }
        if let Ok(h) = hpas.get("parity").await {
            let status = h.status.unwrap_or_default();
            if status.desired_replicas > 0 {
                trace.desired.push((t, status.desired_replicas as u32));
            }
            let at = status.last_scale_time.map(|s| SystemTime::from(s.0));
            if let Some(wall) = at.filter(|_| at != last_scale) {
                trace.real.push(Scale {
                    at_s: since(wall),
                    replicas: status.desired_replicas as u32,
                });
                last_scale = at;
            }
        }
        if let Ok(list) = metrics.list(&ListParams::default()).await {
            for m in list.items {
                if let Some(ts) = m.data["timestamp"].as_str() {
                    let at = since(humantime::parse_rfc3339(ts).expect("an RFC 3339 time"));
                    scrapes.insert((at * 1000.0).round() as i64);
                    let name = m.metadata.name.clone().unwrap_or_default();
                    if let Some(life) = lives.get_mut(&name) {
                        life.first_sample_s.get_or_insert(at);
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    eprintln!("{}", cpu.table());
    trace.pods = lives.into_values().collect();
    trace.scrapes_s = scrapes.into_iter().map(|ms| ms as f64 / 1000.0).collect();

    let out = std::env::var_os("SLO_CHECK_HPA_PARITY_OUT")
        .map_or_else(|| dir.path().to_owned(), PathBuf::from);
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("trace.json"),
        serde_json::to_string_pretty(&trace).unwrap(),
    )
    .unwrap();
    let spec = spec_of(&trace.hpa);
    let (emulated, timeline) = emulate(&spec, &trace);
    std::fs::write(out.join("hpa-parity.svg"), chart(&trace, &spec, &timeline)).unwrap();
    eprintln!(
        "hpa parity (trace and chart in {}):\n  real:     {:?}\n  emulated: {emulated:?}",
        out.display(),
        trace.real
    );
    assert_agree(&trace, &spec, &emulated);
}

async fn client(kubeconfig: &Path) -> kube::Client {
    let kc =
        kube::config::Kubeconfig::read_from(kubeconfig).expect("the test cluster's kubeconfig");
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("a client configuration");
    kube::Client::try_from(config).expect("a client")
}

/// The Deployment's pods that are not being deleted.
async fn live_pods(pods: &Api<Pod>, selector: &ListParams) -> Vec<Pod> {
    let Ok(list) = pods.list(selector).await else {
        return Vec::new();
    };
    list.items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

/// The side-by-side chart: the real controller's desired replicas (polled), the
/// emulator's, and the replicas the demand needs at the target utilisation.
fn chart(trace: &Trace, spec: &HpaSpec, emulated: &[(f64, u32)]) -> String {
    use plotters::prelude::*;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 340)).into_drawing_area();
        root.fill(&WHITE).unwrap();
        let top = f64::from(spec.max_replicas) + 1.0;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Desired replicas: the real HPA controller and slo-check's emulator, one CPU series",
                ("sans-serif", 15),
            )
            .margin(10)
            .x_label_area_size(34)
            .y_label_area_size(40)
            .build_cartesian_2d(0f64..END_S, 0f64..top)
            .unwrap();
        chart
            .configure_mesh()
            .x_desc("seconds since the demand series began")
            .y_desc("replicas")
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .unwrap();
        let target = f64::from(spec.target_cpu_utilisation_percent) / 100.0 * REQUEST_M as f64;
        let needed: Vec<(f64, f64)> = (0..=(END_S as u32))
            .map(|t| (f64::from(t), demand_m(f64::from(t)) as f64 / target))
            .collect();
        let grey = RGBColor(150, 150, 150);
        chart
            .draw_series(LineSeries::new(needed, grey.stroke_width(1)))
            .unwrap()
            .label("demand ÷ target per pod")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], grey));
        let steps = |points: &[(f64, u32)]| -> Vec<(f64, f64)> {
            let mut out = Vec::new();
            for (i, (t, r)) in points.iter().enumerate() {
                if i > 0 {
                    out.push((*t, f64::from(points[i - 1].1)));
                }
                out.push((*t, f64::from(*r)));
            }
            if let Some((_, r)) = points.last() {
                out.push((END_S, f64::from(*r)));
            }
            out
        };
        let blue = RGBColor(31, 119, 180);
        let orange = RGBColor(230, 120, 20);
        chart
            .draw_series(LineSeries::new(steps(&trace.desired), blue.stroke_width(3)))
            .unwrap()
            .label("real controller (status.desiredReplicas, polled 1/s)")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], blue.stroke_width(3)));
        chart
            .draw_series(LineSeries::new(steps(emulated), orange.stroke_width(2)))
            .unwrap()
            .label("emulator (src/autoscale/hpa.rs, 15 s syncs)")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], orange.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(grey)
            .label_font(("sans-serif", 12))
            .draw()
            .unwrap();
        root.present().unwrap();
    }
    svg
}
