//! dashboards/slo-check.json, the Grafana dashboard shipped over the live series: every
//! metric its PromQL queries is one the exporter renders, and every panel is filtered by
//! the `$testid` and `$scenario` template variables.

use std::collections::BTreeSet;

use serde_json::Value;

use super::series::{Now, Tally};

fn dashboard() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/slo-check.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("dashboards/slo-check.json"))
        .expect("the dashboard is JSON")
}

/// Every `expr` (panel targets) and template `query`/`definition` in the dashboard.
fn queries(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr" | "definition", Value::String(s)) => out.push(s.clone()),
                    ("query", Value::String(s)) if s.contains('(') => out.push(s.clone()),
                    _ => queries(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| queries(i, out)),
        _ => {}
    }
}

/// The metric names a PromQL expression mentions: its identifiers starting `slo_check_`.
fn metric_names(promql: &str) -> BTreeSet<String> {
    promql
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with(super::series::PREFIX))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_metric_the_dashboard_queries_is_exported() {
    // What the exporter really renders (a step so the step histogram is there).
    let exported = Tally::new("s", "t", vec!["get".into()])
        .frame(Now::default())
        .sample_names();
    let mut all = Vec::new();
    queries(&dashboard(), &mut all);
    assert!(all.len() >= 10, "{all:?}");
    let mut used = BTreeSet::new();
    for q in &all {
        let names = metric_names(q);
        assert!(!names.is_empty(), "a query of no slo-check metric: {q}");
        for n in names {
            assert!(
                exported.contains(&n),
                "the dashboard queries {n}, which slo-check does not export ({q}); exported: {exported:?}"
            );
            used.insert(n);
        }
    }
    // The panels the dashboard promises: starts, failures by kind, dropped, in flight,
    // p95 per step, lag.
    for n in [
        "slo_check_workflows_started_total",
        "slo_check_workflows_failed_total",
        "slo_check_workflows_dropped_total",
        "slo_check_workflows_in_flight",
        "slo_check_step_duration_seconds_bucket",
        "slo_check_schedule_lag_seconds_bucket",
    ] {
        assert!(used.contains(n), "no panel queries {n}");
    }
    assert_eq!(
        metric_names("rate(slo_check_x_total{a=\"slo_check_y\"}[1m])"),
        BTreeSet::from(["slo_check_x_total".into(), "slo_check_y".into()])
    );
}

#[test]
fn every_panel_is_filtered_by_testid_and_scenario() {
    let d = dashboard();
    let variables: Vec<&str> = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(variables.contains(&"testid") && variables.contains(&"scenario"));
    let panels = d["panels"].as_array().unwrap();
    assert!(panels.len() >= 8);
    for p in panels {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            // Every selector of a slo-check metric carries both filters.
            let selectors = expr.matches("slo_check_").count();
            assert_eq!(
                expr.matches("testid=~\"$testid\",scenario=~\"$scenario\"")
                    .count(),
                selectors,
                "{}: {expr}",
                p["title"]
            );
        }
    }
}
