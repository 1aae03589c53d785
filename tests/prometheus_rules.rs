//! The stack's alert rules: `promtool check rules` accepts the plain rules file (and the
//! short-window copy the tests load), the PrometheusRule manifest holds identical groups,
//! and the manifest is valid against the operator's real CRD schema.

use crate::support;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn promtool_check(path: &Path) {
    let out = Command::new(support::prom::promtool_binary())
        .args(["check", "rules"])
        .arg(path)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool check rules {}:\n{}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_accepts_the_rules_file_and_its_short_copy() {
    promtool_check(&root().join("stack/base/prometheus-rules.yaml"));
    let dir = tempfile::tempdir().unwrap();
    promtool_check(&support::prom::short_rules(dir.path()));
}

#[test]
fn prometheusrule_manifest_holds_the_same_groups() {
    let rules = yaml(&root().join("stack/base/prometheus-rules.yaml"));
    let manifest = yaml(&root().join("stack/base/prometheusrule.yaml"));
    assert_eq!(manifest["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(manifest["kind"], "PrometheusRule");
    assert_eq!(
        manifest["spec"]["groups"], rules["groups"],
        "stack/base/prometheusrule.yaml spec.groups must equal stack/base/prometheus-rules.yaml groups"
    );
    let names: Vec<&str> = rules["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["alert"].as_str())
        .collect();
    for alert in ["HighErrorRate", "HighP95Latency", "HighWorkflowFailureRate"] {
        assert!(names.contains(&alert), "{alert} missing from {names:?}");
    }
}

/// Drops `x-kubernetes-*` keys (Kubernetes extensions a JSON Schema validator does not know).
fn strip_extensions(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|k, _| !k.starts_with("x-kubernetes-"));
            map.values_mut().for_each(strip_extensions);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_extensions),
        _ => {}
    }
}

#[test]
fn prometheusrule_manifest_is_valid_against_the_crd_schema() {
    let crd = yaml(&root().join("tests/schemas/monitoring.coreos.com_prometheusrules.yaml"));
    let version = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "v1")
        .expect("v1 in the CRD");
    let mut schema = version["schema"]["openAPIV3Schema"].clone();
    strip_extensions(&mut schema);
    let validator = jsonschema::validator_for(&schema).expect("the CRD schema compiles");
    let manifest = yaml(&root().join("stack/base/prometheusrule.yaml"));
    let errors: Vec<String> = validator
        .iter_errors(&manifest)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The schema does catch mistakes: a rule without `expr` is rejected.
    let mut broken = manifest.clone();
    broken["spec"]["groups"][0]["rules"][0]
        .as_object_mut()
        .unwrap()
        .remove("expr");
    assert!(
        !validator.is_valid(&broken),
        "a rule without expr must be invalid"
    );
}
