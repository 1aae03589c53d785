//! The checked-in `stack/base/hpa.yaml` read by the embedded autoscaler: its
//! validated settings, the spike timeline they produce, and the messages a
//! broken manifest gets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use slo_check::autoscale::hpa::{Autoscaler, DecisionReason, PodSample, sync_period};
use slo_check::autoscale::manifest::{
    HpaSpec, ManifestError, ScalingPolicy, ScalingRules, SelectPolicy, load_hpa, parse_hpa,
};

fn stack_hpa() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("stack/base/hpa.yaml")
}

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

const HEAD: &str = "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: h
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: d
  minReplicas: 2
  maxReplicas: 10
";

const CPU_70: &str = "  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 70
";

fn error_for(yaml: &str) -> String {
    parse_hpa(yaml, Path::new("hpa.yaml"))
        .unwrap_err()
        .to_string()
}

#[test]
fn stack_manifest_loads_with_its_behaviour() {
    let spec = load_hpa(&stack_hpa()).unwrap();
    let expected = HpaSpec {
        name: "mcp-agent-hpa".into(),
        namespace: Some("mcp-agents".into()),
        target_kind: "Deployment".into(),
        target_name: "mcp-agent".into(),
        min_replicas: 2,
        max_replicas: 10,
        target_cpu_utilisation_percent: 70,
        scale_up: ScalingRules {
            stabilisation_window: Duration::ZERO,
            select_policy: SelectPolicy::Max,
            policies: vec![
                ScalingPolicy::percent(100, s(15)),
                ScalingPolicy::pods(4, s(15)),
            ],
        },
        scale_down: ScalingRules {
            stabilisation_window: s(300),
            select_policy: SelectPolicy::Min,
            policies: vec![ScalingPolicy::percent(50, s(60))],
        },
    };
    assert_eq!(spec, expected);
}

/// Utilisation of every replica is 0.3 until t=30 s, then 3.0 (300 % of the
/// request, 70 % target). By hand, at 15 s syncs:
/// - t=0, 15: 30/70 × 2 = 0.86 → 1, below minReplicas → 2.
/// - t=30: 300/70 × 2 = 8.6 → 9; policies from 2: max(2 × 2, 2 + 4) = 6.
/// - t=45: 300/70 × 6 = 25.7 → 26; max(12, 10) = 12 → maxReplicas 10.
/// - t=60: 43 → 10, at the maximum.
#[test]
fn spike_timeline_scales_2_2_6_10_10() {
    let mut hpa = Autoscaler::new(load_hpa(&stack_hpa()).unwrap());
    let mut current = 2;
    let mut seen = vec![];
    for step in 0..5u32 {
        let now = sync_period() * step;
        let utilisation = if now < s(30) { 0.3 } else { 3.0 };
        let d = hpa.reconcile(
            now,
            current,
            &PodSample::all_ready(&vec![utilisation; current as usize]),
        );
        current = d.desired_replicas;
        seen.push((current, d.raw_recommendation, d.reason));
    }
    use DecisionReason::*;
    assert_eq!(
        seen,
        [
            (2, 1, ClampedMin),
            (2, 1, ClampedMin),
            (6, 9, LimitedByPolicy),
            (10, 26, ClampedMax),
            (10, 43, ClampedMax)
        ]
    );
}

/// After the spike, utilisation drops to 0.3 at t=120 s with 10 replicas.
/// The last high recommendation (t=105) holds 10 until t=405; then
/// 30/70 × 10 = 4.3 → 5, and Percent 50 of 10 allows exactly 5.
#[test]
fn after_the_spike_scale_down_waits_out_the_300s_window() {
    let mut hpa = Autoscaler::new(load_hpa(&stack_hpa()).unwrap());
    for t in (0..=105).step_by(15) {
        hpa.reconcile(s(t), 10, &[PodSample::Ready(3.0); 10]);
    }
    for t in (120..405).step_by(15) {
        let d = hpa.reconcile(s(t), 10, &[PodSample::Ready(0.3); 10]);
        assert_eq!(
            (d.desired_replicas, d.reason),
            (10, DecisionReason::LimitedByStabilisation),
            "t={t}"
        );
    }
    let d = hpa.reconcile(s(405), 10, &[PodSample::Ready(0.3); 10]);
    assert_eq!(
        (d.desired_replicas, d.reason),
        (5, DecisionReason::ScaleDown)
    );
}

#[test]
fn absent_behaviour_takes_the_kubernetes_defaults() {
    let spec = parse_hpa(&format!("{HEAD}{CPU_70}"), Path::new("x")).unwrap();
    assert_eq!(spec.scale_up, ScalingRules::default_scale_up());
    assert_eq!(spec.scale_down, ScalingRules::default_scale_down());
    assert_eq!(spec.scale_down.stabilisation_window, s(300));
}

#[test]
fn partial_behaviour_is_defaulted_field_by_field() {
    let yaml = format!("{HEAD}{CPU_70}  behavior:\n    scaleDown:\n      selectPolicy: Disabled\n");
    let spec = parse_hpa(&yaml, Path::new("x")).unwrap();
    assert_eq!(spec.scale_down.select_policy, SelectPolicy::Disabled);
    assert_eq!(spec.scale_down.stabilisation_window, s(300));
    assert_eq!(
        spec.scale_down.policies,
        ScalingRules::default_scale_down().policies
    );
    assert_eq!(spec.scale_up, ScalingRules::default_scale_up());
}

#[test]
fn absent_metrics_default_to_cpu_80_and_min_to_1() {
    let yaml = HEAD.replace("  minReplicas: 2\n", "");
    let spec = parse_hpa(&yaml, Path::new("x")).unwrap();
    assert_eq!(
        (spec.min_replicas, spec.target_cpu_utilisation_percent),
        (1, 80)
    );
}

#[test]
fn misspelled_field_is_rejected_with_its_position() {
    let yaml = format!(
        "{HEAD}{CPU_70}  behavior:\n    scaleUp:\n      policies:\n        - type: Pods\n          value: 4\n          periodSecond: 15\n"
    );
    let err = error_for(&yaml);
    assert_eq!(
        err,
        "hpa.yaml:24:11: not a usable autoscaling/v2 HorizontalPodAutoscaler: \
         unknown field `periodSecond`, expected one of type, value, periodSeconds"
    );
}

#[test]
fn policy_period_out_of_range_names_the_field_path() {
    let yaml = format!(
        "{HEAD}{CPU_70}  behavior:\n    scaleUp:\n      policies:\n        - type: Pods\n          value: 4\n          periodSeconds: 15\n        - type: Percent\n          value: 100\n          periodSeconds: 0\n"
    );
    let err = error_for(&yaml);
    assert_eq!(
        err,
        "hpa.yaml:27:26: spec.behavior.scaleUp.policies[1].periodSeconds: 0 is out of range; use 1..=1800 seconds"
    );
}

#[test]
fn values_outside_api_ranges_are_rejected() {
    let with_down = |rules: &str| format!("{HEAD}{CPU_70}  behavior:\n    scaleDown:\n{rules}");
    let cases = [
        (
            with_down("      stabilizationWindowSeconds: 3601\n"),
            "stabilizationWindowSeconds: 3601 is out of range; use 0..=3600",
        ),
        (
            with_down("      selectPolicy: Maximum\n"),
            "`Maximum` is not a selectPolicy; use Max, Min or Disabled",
        ),
        (
            with_down("      policies: []\n"),
            "spec.behavior.scaleDown.policies: must list at least one policy",
        ),
        (
            with_down("      policies:\n        - {type: Pod, value: 1, periodSeconds: 15}\n"),
            "`Pod` is not a policy type; use Pods or Percent",
        ),
        (
            with_down("      policies:\n        - {type: Pods, value: 0, periodSeconds: 15}\n"),
            "policies[0].value: 0 is not allowed; use a value above 0",
        ),
        (
            with_down("      tolerance: 0.05\n"),
            "scaleDown.tolerance: is not supported",
        ),
        (
            format!(
                "{}{CPU_70}",
                HEAD.replace("minReplicas: 2", "minReplicas: 0")
            ),
            "spec.minReplicas: 0 is not allowed; use at least 1",
        ),
        (
            format!(
                "{}{CPU_70}",
                HEAD.replace("maxReplicas: 10", "maxReplicas: 1")
            ),
            "spec.maxReplicas: 1 is not allowed; use at least minReplicas (2)",
        ),
    ];
    for (yaml, want) in cases {
        let err = error_for(&yaml);
        assert!(err.contains(want), "{err}\n  does not contain: {want}");
        assert!(err.starts_with("hpa.yaml"), "{err}");
    }
}

#[test]
fn wrong_kind_or_api_version_is_rejected() {
    let err = error_for(&format!(
        "{}{CPU_70}",
        HEAD.replace("autoscaling/v2", "autoscaling/v1")
    ));
    assert_eq!(
        err,
        "hpa.yaml:1:13: apiVersion: found `autoscaling/v1`; the embedded autoscaler reads only `autoscaling/v2`"
    );
    let err = error_for(&format!(
        "{}{CPU_70}",
        HEAD.replace(
            "kind: HorizontalPodAutoscaler",
            "kind: VerticalPodAutoscaler"
        )
    ));
    assert!(err.contains("kind: found `VerticalPodAutoscaler`"), "{err}");
}

#[test]
fn metrics_other_than_one_cpu_utilisation_are_rejected() {
    let only = "the embedded autoscaler supports only a CPU averageUtilization target";
    let memory = CPU_70.replace("name: cpu", "name: memory");
    let value = CPU_70.replace(
        "type: Utilization\n          averageUtilization: 70",
        "type: AverageValue\n          averageValue: 500m",
    );
    let pods = "  metrics:\n    - type: Pods\n      pods:\n        metric: {name: rps}\n        target: {type: AverageValue, averageValue: \"10\"}\n";
    let two = format!("{CPU_70}{}", &memory["  metrics:\n".len()..]);
    for (metrics, field) in [
        (
            memory.as_str(),
            "spec.metrics[0].resource.name: resource `memory`",
        ),
        (
            value.as_str(),
            "spec.metrics[0].resource.target.type: target type `AverageValue`",
        ),
        (pods, "spec.metrics[0].type: type `Pods`"),
        (two.as_str(), "spec.metrics[1]: 2 metrics given"),
    ] {
        let err = error_for(&format!("{HEAD}{metrics}"));
        assert!(err.contains(field) && err.contains(only), "{err}");
    }
}

#[test]
fn unreadable_file_names_the_path() {
    let err = load_hpa(Path::new("/nonexistent/hpa.yaml")).unwrap_err();
    assert!(matches!(err, ManifestError::Read { .. }));
    assert!(
        err.to_string()
            .starts_with("cannot read HPA manifest /nonexistent/hpa.yaml:"),
        "{err}"
    );
}

#[test]
fn wrong_value_type_names_its_position() {
    let err = error_for(&HEAD.replace("maxReplicas: 10", "maxReplicas: ten"));
    assert!(err.starts_with("hpa.yaml:11:16: "), "{err}");
}

#[test]
fn metadata_and_status_are_not_checked() {
    let yaml = HEAD.replace(
        "  name: h\n",
        "  name: h\n  labels: {a: b}\n  annotations: {x: y}\n",
    ) + "status:\n  currentReplicas: 3\n  desiredReplicas: 3\n";
    let spec = parse_hpa(&yaml, Path::new("x")).unwrap();
    assert_eq!(spec.max_replicas, 10);
}
