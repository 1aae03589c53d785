//! Raw scenario → validated `Scenario`: the entry point. Each section is checked in
//! its own file (`load`, `workflow`, `faults`, `slos`, `metric`, `promql`, `alert`, `local`,
//! `canary`);
//! here are the top-level keys (`name`, `platform`, `prometheus`), and all errors
//! are collected at once.

use std::path::Path;
use std::time::Duration;

use serde_saphyr::Location;

use super::error::{ScenarioError, ScenarioErrors};
use super::model::{PlatformRefs, Scenario};
use super::raw::{RawPlatformRefs, RawPrometheus, RawScenario};

mod alert;
mod canary;
mod faults;
mod load;
mod local;
mod metric;
mod promql;
mod slos;
mod workflow;

pub use metric::parse_metric;

/// The file being validated and the errors found so far, in the order found.
struct Ctx<'a> {
    file: &'a Path,
    errors: Vec<ScenarioError>,
}

impl Ctx<'_> {
    fn err(&mut self, loc: Option<Location>, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ScenarioError {
            file: self.file.to_path_buf(),
            line_col: loc.map(|l| (l.line(), l.column())),
            path: Some(path.into()),
            message: message.into(),
        });
    }
}

/// Validate a parsed scenario read from `file`.
pub fn validate(raw: RawScenario, file: &Path) -> Result<Scenario, ScenarioErrors> {
    let mut cx = Ctx {
        file,
        errors: Vec::new(),
    };
    check_name(&mut cx, &raw.name);
    let load = load::validate_load(&mut cx, &raw.load);
    let mut names = workflow::SlotNames::default();
    let workflow = workflow::validate_workflow(&mut cx, &raw.workflow, &mut names);
    let schedule_end = load.stages.iter().map(|s| s.duration).sum::<Duration>();
    let faults = faults::validate_faults(&mut cx, &raw.faults, schedule_end);
    let refs = slos::Refs {
        steps: &workflow,
        load: &load,
        faults: &faults,
        schedule_end,
        has_canary: raw.canary.is_some(),
    };
    let slos = slos::validate_slos(&mut cx, &raw.slos, &refs);
    let canary = raw
        .canary
        .as_ref()
        .map(|c| canary::validate_canary(&mut cx, c, &refs));
    let platform = platform_refs(&mut cx, raw.platform);
    check_prometheus(&mut cx, raw.prometheus.as_ref());
    if !cx.errors.is_empty() {
        return Err(ScenarioErrors(cx.errors));
    }
    Ok(Scenario {
        name: raw.name,
        description: raw.description.unwrap_or_default(),
        source: file.to_path_buf(),
        platform,
        prometheus_url: raw.prometheus.as_ref().and_then(|p| p.url.clone()),
        prometheus_settle: raw.prometheus.as_ref().and_then(|p| p.settle.map(|d| d.0)),
        workflow,
        capture_names: names.captures,
        env_names: names.env,
        load,
        faults,
        slos,
        check_load_delivered: raw.checks.load_delivered,
        canary,
    })
}

/// The name becomes a directory under `reports/`, so it is kept to a safe alphabet.
fn check_name(cx: &mut Ctx, name: &str) {
    if name.trim().is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        cx.err(None, "name", format!(
            "`{name}` is not a usable scenario name; use letters, digits, `-`, `_` or `.` (it names the reports directory)"
        ));
    }
}

fn platform_refs(cx: &mut Ctx, raw: Option<RawPlatformRefs>) -> PlatformRefs {
    let mut refs = PlatformRefs::default();
    if let Some(r) = raw {
        let set = |slot: &mut String, v: Option<String>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        set(&mut refs.namespace, r.namespace);
        set(&mut refs.deployment, r.deployment);
        set(&mut refs.hpa, r.hpa);
        set(&mut refs.service, r.service);
        set(&mut refs.virtual_service, r.virtual_service);
        if let Some(l) = &r.local {
            refs.local = local::validate_local(cx, l);
        }
    }
    refs
}

fn check_prometheus(cx: &mut Ctx, raw: Option<&RawPrometheus>) {
    if let Some(url) = raw.and_then(|p| p.url.as_ref()) {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            cx.err(
                None,
                "prometheus.url",
                format!("`{url}` is not an http:// or https:// URL"),
            );
        }
    }
    if raw
        .and_then(|p| p.settle.as_ref())
        .is_some_and(|d| d.0.is_zero())
    {
        cx.err(
            None,
            "prometheus.settle",
            "must be longer than 0s: Prometheus needs one more scrape (and rule evaluation) after the load, e.g. `settle: 5s` with a 1s scrape interval",
        );
    }
}
