//! Raw scenario → validated `Scenario`: checks every value and cross-reference
//! (steps, captures, stages, faults, metrics) and collects all errors at once.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use hyper::Method;
use hyper::header::{CONTENT_LENGTH, HeaderName, TRANSFER_ENCODING};
use serde_saphyr::{Location, Spanned};

use super::error::{ScenarioError, ScenarioErrors};
use super::model::*;
use super::raw::*;
use super::template::{JsonTemplate, Names, Template};
use crate::units::{Quantity, format_duration, parse_duration, parse_ratio};

mod alert;
mod local;

const DEFAULT_MAX_IN_FLIGHT: u64 = 10_000;
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_RESPONSE_BYTES: u64 = 1 << 20;
/// Starts due within this long of a load worker's last wake-up wait for the next one
/// (see `Load::pacing_slack`): at 20 000/s a quarter of the wake-ups, for at most 0.2 ms of lag.
const DEFAULT_PACING_SLACK: Duration = Duration::from_micros(200);
/// More than this would change the schedule a scenario asks for, not just batch it.
const MAX_PACING_SLACK: Duration = Duration::from_millis(10);

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
    if raw.name.trim().is_empty()
        || !raw
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        cx.err(None, "name", format!(
            "`{}` is not a usable scenario name; use letters, digits, `-`, `_` or `.` (it names the reports directory)",
            raw.name
        ));
    }
    let load = validate_load(&mut cx, &raw.load);
    let mut names = SlotNames::default();
    let workflow = validate_workflow(&mut cx, &raw.workflow, &mut names);
    let schedule_end = load.stages.iter().map(|s| s.duration).sum::<Duration>();
    let faults = validate_faults(&mut cx, &raw.faults, schedule_end);
    let slos = validate_slos(&mut cx, &raw.slos, &workflow, &load, &faults, schedule_end);
    let platform = platform_refs(&mut cx, raw.platform);
    if let Some(url) = raw.prometheus.as_ref().and_then(|p| p.url.as_ref()) {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            cx.err(
                None,
                "prometheus.url",
                format!("`{url}` is not an http:// or https:// URL"),
            );
        }
    }
    if raw
        .prometheus
        .as_ref()
        .and_then(|p| p.settle.as_ref())
        .is_some_and(|d| d.0.is_zero())
    {
        cx.err(
            None,
            "prometheus.settle",
            "must be longer than 0s: Prometheus needs one more scrape (and rule evaluation) after the load, e.g. `settle: 5s` with a 1s scrape interval",
        );
    }
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
    })
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

fn validate_load(cx: &mut Ctx, raw: &Spanned<RawLoad>) -> Load {
    let loc = Some(raw.referenced);
    let raw = &raw.value;
    if raw.stages.is_empty() {
        cx.err(
            loc,
            "load.stages",
            "no stages; add at least one, e.g. `- { for: 30s, rate: 10 }`",
        );
    }
    if raw.seed.is_some() && raw.arrival == Arrival::Constant {
        cx.err(
            loc,
            "load.seed",
            "a seed only applies to `arrival: poisson`; remove it or switch to poisson",
        );
    }
    let mut stages = Vec::new();
    let mut prev_rate = 0.0;
    for (i, s) in raw.stages.iter().enumerate() {
        let path = format!("load.stages[{i}]");
        let sloc = Some(s.referenced);
        let s = &s.value;
        if s.duration.0.is_zero() {
            cx.err(
                sloc,
                format!("{path}.for"),
                "a stage must last longer than 0s",
            );
        }
        let (start, end) = match (s.rate, s.ramp_to) {
            (Some(r), None) => {
                if !(r.is_finite() && r > 0.0) {
                    cx.err(
                        sloc,
                        format!("{path}.rate"),
                        format!(
                            "rate `{r}` must be a positive number of workflow starts per second"
                        ),
                    );
                }
                (r, r)
            }
            (None, Some(r)) => {
                if !(r.is_finite() && r >= 0.0) {
                    cx.err(
                        sloc,
                        format!("{path}.ramp_to"),
                        format!("ramp_to `{r}` must be a number of starts per second, 0 or more"),
                    );
                }
                (prev_rate, r)
            }
            (Some(_), Some(_)) => {
                cx.err(
                    sloc,
                    path.clone(),
                    "give either `rate` (hold) or `ramp_to` (linear ramp), not both",
                );
                (0.0, 0.0)
            }
            (None, None) => {
                cx.err(
                    sloc,
                    path.clone(),
                    "a stage needs `rate` (hold) or `ramp_to` (linear ramp from the previous rate)",
                );
                (0.0, 0.0)
            }
        };
        prev_rate = end;
        stages.push(Stage {
            name: s.name.clone(),
            duration: s.duration.0,
            start_rate_per_s: start,
            end_rate_per_s: end,
        });
    }
    let expected: f64 = stages
        .iter()
        .map(|s| (s.start_rate_per_s + s.end_rate_per_s) / 2.0 * s.duration.as_secs_f64())
        .sum();
    if !stages.is_empty() && expected.is_finite() && expected < 1.0 && cx.errors.is_empty() {
        cx.err(
            loc,
            "load.stages",
            "the stages schedule no workflow start at all; raise a rate or a duration",
        );
    }
    let names: Vec<_> = stages.iter().filter_map(|s| s.name.as_deref()).collect();
    if let Some(dup) = first_duplicate(&names) {
        cx.err(
            loc,
            "load.stages",
            format!("two stages are named `{dup}`; stage names must be unique"),
        );
    }
    let max_in_flight = raw.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
    if max_in_flight == 0 {
        cx.err(loc, "load.max_in_flight", "must be at least 1");
    }
    let request_timeout = raw.request_timeout.map_or(DEFAULT_REQUEST_TIMEOUT, |d| d.0);
    if request_timeout.is_zero() {
        cx.err(
            loc,
            "load.request_timeout",
            "must be longer than 0s, e.g. 10s",
        );
    }
    let max_response_bytes = raw.max_response_bytes.unwrap_or(DEFAULT_MAX_RESPONSE_BYTES);
    if max_response_bytes == 0 {
        cx.err(loc, "load.max_response_bytes", "must be at least 1");
    }
    let pacing_slack = raw.pacing_slack.map_or(DEFAULT_PACING_SLACK, |d| d.0);
    if pacing_slack > MAX_PACING_SLACK {
        cx.err(
            loc,
            "load.pacing_slack",
            format!(
                "{} would hold starts back too long; use at most {}, e.g. 0.2ms",
                format_duration(pacing_slack),
                format_duration(MAX_PACING_SLACK)
            ),
        );
    }
    Load {
        arrival: raw.arrival,
        seed: raw.seed,
        stages,
        max_in_flight,
        request_timeout,
        max_response_bytes,
        pacing_slack,
    }
}

fn first_duplicate<'a>(names: &[&'a str]) -> Option<&'a str> {
    let mut seen = HashSet::new();
    names.iter().copied().find(|n| !seen.insert(*n))
}

/// Capture and environment slots, filled step by step so a template can only
/// use captures set by an earlier step.
#[derive(Default)]
struct SlotNames {
    captures: Vec<String>,
    available: usize,
    /// Captures the step being validated sets (not usable in its own request).
    pending: Vec<String>,
    env: Vec<String>,
}

impl Names for SlotNames {
    fn capture(&mut self, name: &str) -> Result<usize, String> {
        match self.captures.iter().position(|c| c == name) {
            Some(i) if i < self.available => Ok(i),
            _ if self.pending.iter().any(|p| p == name) => Err(format!(
                "`${{{name}}}` is captured by this step, so it is not set yet when its request is sent"
            )),
            _ => Err(format!(
                "`${{{name}}}` is never captured; an earlier step needs `capture: {{ {name}: /json/pointer }}`"
            )),
        }
    }
    fn env(&mut self, name: &str) -> usize {
        match self.env.iter().position(|e| e == name) {
            Some(i) => i,
            None => {
                self.env.push(name.to_string());
                self.env.len() - 1
            }
        }
    }
}

fn validate_workflow(cx: &mut Ctx, raw: &[Spanned<RawStep>], names: &mut SlotNames) -> Vec<Step> {
    if raw.is_empty() {
        cx.err(None, "workflow", "the workflow has no steps; add one, e.g. `- { name: get, request: { method: GET, path: / } }`");
    }
    let mut steps = Vec::new();
    let mut seen = HashSet::new();
    for (i, s) in raw.iter().enumerate() {
        let loc = Some(s.referenced);
        let s = &s.value;
        let path = format!("workflow[{i}]");
        if !seen.insert(s.name.clone()) {
            cx.err(
                loc,
                format!("{path}.name"),
                format!(
                    "two steps are named `{}`; step names must be unique",
                    s.name
                ),
            );
        }
        if let Some(step) = validate_step(cx, s, &path, loc, names) {
            steps.push(step);
        }
    }
    steps
}

fn validate_step(
    cx: &mut Ctx,
    s: &RawStep,
    path: &str,
    loc: Option<Location>,
    names: &mut SlotNames,
) -> Option<Step> {
    let before = cx.errors.len();
    names.pending = s.capture.keys().cloned().collect();
    let method = s.request.method.to_ascii_uppercase();
    let method = match method.as_str() {
        "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS" => {
            Method::from_bytes(method.as_bytes()).ok()
        }
        _ => None,
    };
    if method.is_none() {
        cx.err(
            loc,
            format!("{path}.request.method"),
            format!(
                "`{}` is not a method; use GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS",
                s.request.method
            ),
        );
    }
    if !s.request.path.starts_with('/') {
        cx.err(
            loc,
            format!("{path}.request.path"),
            format!(
                "`{}` must start with `/`; the target's base URL comes from the platform",
                s.request.path
            ),
        );
    }
    let url_path = tpl(
        cx,
        names,
        loc,
        format!("{path}.request.path"),
        &s.request.path,
    );
    let mut headers = Vec::new();
    for (k, v) in &s.request.headers {
        let field = format!("{path}.request.headers.{k}");
        match HeaderName::from_bytes(k.as_bytes()) {
            Ok(h) if h == CONTENT_LENGTH || h == TRANSFER_ENCODING => cx.err(
                loc,
                field,
                format!("`{k}` is set by slo-check from the body; leave it out"),
            ),
            Ok(h) => headers.push((h, tpl(cx, names, loc, field, v))),
            Err(_) => cx.err(loc, field, format!("`{k}` is not a valid HTTP header name")),
        }
    }
    let body = match (&s.request.json, &s.request.body) {
        (Some(_), Some(_)) => {
            cx.err(
                loc,
                format!("{path}.request"),
                "give either `json` or `body`, not both",
            );
            Body::Empty
        }
        (Some(v), None) => json_body(cx, v, &format!("{path}.request.json"), loc, names),
        (None, Some(b)) => Body::Text(tpl(cx, names, loc, format!("{path}.request.body"), b)),
        (None, None) => Body::Empty,
    };
    let expect_status = s
        .expect
        .as_ref()
        .map(|e| e.status.clone())
        .unwrap_or_default();
    for code in &expect_status {
        if !(100..=599).contains(code) {
            cx.err(
                loc,
                format!("{path}.expect.status"),
                format!("`{code}` is not an HTTP status (100 to 599)"),
            );
        }
    }
    let poll = s.poll.as_ref().map(|p| {
        let ppath = format!("{path}.poll");
        for (field, cond) in [("until", Some(&p.until)), ("fail_if", p.fail_if.as_ref())] {
            if let Some(c) = cond {
                check_pointer(cx, loc, format!("{ppath}.{field}.pointer"), &c.pointer);
            }
        }
        if p.every.0.is_zero() {
            cx.err(
                loc,
                format!("{ppath}.every"),
                "must be longer than 0s, e.g. 250ms",
            );
        }
        if p.timeout.0 < p.every.0 {
            cx.err(
                loc,
                format!("{ppath}.timeout"),
                format!(
                    "{} is shorter than `every` ({}); the poll could never tick",
                    format_duration(p.timeout.0),
                    format_duration(p.every.0)
                ),
            );
        }
        let cond = |c: &RawCondition| Condition {
            pointer: c.pointer.clone(),
            equals: c.equals.clone(),
        };
        Poll {
            until: cond(&p.until),
            fail_if: p.fail_if.as_ref().map(cond),
            every: p.every.0,
            timeout: p.timeout.0,
        }
    });
    // Captures become available to later steps only.
    let mut captures = Vec::new();
    for (name, pointer) in &s.capture {
        let field = format!("{path}.capture.{name}");
        if name == "seq" || name.starts_with("env:") || name.is_empty() {
            cx.err(
                loc,
                field.clone(),
                format!("`{name}` is reserved; choose another capture name"),
            );
        }
        check_pointer(cx, loc, field, pointer);
        let slot = match names.captures.iter().position(|c| c == name) {
            Some(i) => i,
            None => {
                names.captures.push(name.clone());
                names.captures.len() - 1
            }
        };
        captures.push((slot, pointer.clone()));
    }
    names.available = names.captures.len();
    if cx.errors.len() > before {
        return None;
    }
    Some(Step {
        name: s.name.clone(),
        method: method?,
        path: url_path,
        headers,
        body,
        expect_status,
        captures,
        poll,
    })
}

fn tpl(
    cx: &mut Ctx,
    names: &mut SlotNames,
    loc: Option<Location>,
    field: String,
    text: &str,
) -> Template {
    match Template::parse(text, names) {
        Ok(t) => t,
        Err(e) => {
            cx.err(loc, field, e);
            Template::default()
        }
    }
}

fn json_body(
    cx: &mut Ctx,
    value: &serde_json::Value,
    field: &str,
    loc: Option<Location>,
    names: &mut SlotNames,
) -> Body {
    let mut errors = Vec::new();
    let template = JsonTemplate::parse(value, names, field, &mut |path, msg| {
        errors.push((path, msg))
    });
    for (path, msg) in errors {
        cx.err(loc, path, msg);
    }
    let literal = template
        .as_literal()
        .map(|v| bytes::Bytes::from(serde_json::to_vec(v).unwrap_or_default()));
    Body::Json { template, literal }
}

fn check_pointer(cx: &mut Ctx, loc: Option<Location>, field: String, pointer: &str) {
    if !(pointer.is_empty() || pointer.starts_with('/')) {
        cx.err(
            loc,
            field,
            format!("`{pointer}` is not a JSON pointer; write it like /id or /data/status"),
        );
    }
}

fn validate_faults(cx: &mut Ctx, raw: &[Spanned<RawFault>], schedule_end: Duration) -> Vec<Fault> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (i, f) in raw.iter().enumerate() {
        let loc = Some(f.referenced);
        let f = &f.value;
        let path = format!("faults[{i}]");
        if !seen.insert(f.name.clone()) {
            cx.err(
                loc,
                format!("{path}.name"),
                format!(
                    "two faults are named `{}`; fault names must be unique",
                    f.name
                ),
            );
        }
        if f.duration.0.is_zero() {
            cx.err(
                loc,
                format!("{path}.for"),
                "a fault must last longer than 0s",
            );
        }
        if f.start.0 >= schedule_end && !schedule_end.is_zero() {
            cx.err(
                loc,
                format!("{path}.start"),
                format!(
                    "the fault starts at {}, when the schedule ({}) has already ended",
                    format_duration(f.start.0),
                    format_duration(schedule_end)
                ),
            );
        }
        if f.delay.is_none() && f.abort.is_none() {
            cx.err(loc, path.clone(), "a fault needs `delay: { percentage, fixed_delay }` or `abort: { percentage, http_status }` (or both)");
        }
        if let Some(d) = &f.delay {
            if d.fixed_delay.0.is_zero() {
                cx.err(
                    loc,
                    format!("{path}.delay.fixed_delay"),
                    "must be longer than 0s",
                );
            }
        }
        if let Some(a) = &f.abort {
            if !(200..=599).contains(&a.http_status) {
                cx.err(
                    loc,
                    format!("{path}.abort.http_status"),
                    format!(
                        "`{}` is not an HTTP status Istio can return (200 to 599)",
                        a.http_status
                    ),
                );
            }
        }
        out.push(Fault {
            name: f.name.clone(),
            start: f.start.0,
            duration: f.duration.0,
            delay: f.delay.as_ref().map(|d| Delay {
                percent: d.percentage.0,
                fixed_delay: d.fixed_delay.0,
            }),
            abort: f.abort.as_ref().map(|a| Abort {
                percent: a.percentage.0,
                http_status: a.http_status,
            }),
        });
    }
    out
}

fn validate_slos(
    cx: &mut Ctx,
    raw: &[Spanned<RawSlo>],
    steps: &[Step],
    load: &Load,
    faults: &[Fault],
    schedule_end: Duration,
) -> Vec<Slo> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (i, s) in raw.iter().enumerate() {
        let loc = Some(s.referenced);
        let s = &s.value;
        let path = format!("slos[{i}]");
        let before = cx.errors.len();
        if !seen.insert(s.name.clone()) {
            cx.err(
                loc,
                format!("{path}.name"),
                format!("two SLOs are named `{}`; SLO names must be unique", s.name),
            );
        }
        if alert::is_alert(s) {
            let window = slo_window(cx, loc, &path, s, load, faults, schedule_end);
            if let Some(slo) = alert::validate_alert(cx, loc, &path, s, window) {
                if cx.errors.len() == before {
                    out.push(slo);
                }
            }
            continue;
        }
        let source = match (&s.metric, &s.promql) {
            (Some(m), None) => match parse_metric(m, steps) {
                Ok(m) => Some(SloSource::Metric(m)),
                Err(e) => {
                    cx.err(loc, format!("{path}.metric"), e);
                    None
                }
            },
            (None, Some(q)) if !q.trim().is_empty() => Some(SloSource::PromQl(q.clone())),
            (None, Some(_)) => {
                cx.err(
                    loc,
                    format!("{path}.promql"),
                    "the PromQL expression is empty",
                );
                None
            }
            (Some(_), Some(_)) => {
                cx.err(
                    loc,
                    path.clone(),
                    "give either `metric` or `promql`, not both",
                );
                None
            }
            (None, None) => {
                cx.err(
                    loc,
                    path.clone(),
                    "an SLO needs `metric` (e.g. latency.p95) or `promql`",
                );
                None
            }
        };
        let (bound, q) = match (&s.max, &s.min) {
            (Some(q), None) => (Bound::Max, Some(q)),
            (None, Some(q)) => (Bound::Min, Some(q)),
            (Some(_), Some(_)) => {
                cx.err(
                    loc,
                    path.clone(),
                    "give either `max` or `min`, not both (write two SLOs for a range)",
                );
                (Bound::Max, None)
            }
            (None, None) => {
                cx.err(
                    loc,
                    path.clone(),
                    "an SLO needs a threshold: `max: ...` or `min: ...`",
                );
                (Bound::Max, None)
            }
        };
        let unit = match &source {
            Some(SloSource::Metric(m)) => Some(m.unit()),
            Some(SloSource::PromQl(_)) => Some(Unit::Number),
            Some(SloSource::Alert(_)) => Some(Unit::Seconds),
            None => None,
        };
        let threshold = match (unit, q) {
            (Some(unit), Some(q)) => match parse_threshold(unit, q) {
                Ok(v) => v,
                Err(e) => {
                    cx.err(
                        loc,
                        format!("{path}.{}", if bound == Bound::Max { "max" } else { "min" }),
                        e,
                    );
                    0.0
                }
            },
            _ => 0.0,
        };
        let window = slo_window(cx, loc, &path, s, load, faults, schedule_end);
        if cx.errors.len() == before {
            if let Some(source) = source {
                out.push(Slo {
                    name: s.name.clone(),
                    source,
                    bound,
                    threshold,
                    window,
                    allow_unknown: s.allow_unknown,
                });
            }
        }
    }
    out
}

/// An SLO's window (the whole run unless `window` says otherwise).
fn slo_window(
    cx: &mut Ctx,
    loc: Option<Location>,
    path: &str,
    s: &RawSlo,
    load: &Load,
    faults: &[Fault],
    schedule_end: Duration,
) -> WindowRef {
    match &s.window {
        None => WindowRef::Run,
        Some(w) => match parse_window(w, load, faults, schedule_end) {
            Ok(w) => w,
            Err(e) => {
                cx.err(loc, format!("{path}.window"), e);
                WindowRef::Run
            }
        },
    }
}

const METRIC_HINT: &str = "latency.p95 (or p50, p90, p99, p99.9, max, mean), step.<name>.latency.p95, failure_rate, dropped, achieved_rate, hpa.scale_up_seconds, hpa.decision_seconds or hpa.peak_replicas";

/// Parse a metric name such as `latency.p95` or `step.submit.latency.p99`.
pub fn parse_metric(name: &str, steps: &[Step]) -> Result<Metric, String> {
    let simple = match name {
        "failure_rate" => Some(Metric::FailureRate),
        "dropped" => Some(Metric::Dropped),
        "achieved_rate" => Some(Metric::AchievedRate),
        "hpa.scale_up_seconds" => Some(Metric::HpaScaleUpSeconds),
        "hpa.decision_seconds" => Some(Metric::HpaDecisionSeconds),
        "hpa.peak_replicas" => Some(Metric::HpaPeakReplicas),
        _ => None,
    };
    if let Some(m) = simple {
        return Ok(m);
    }
    let (step, stat) = if let Some(rest) = name.strip_prefix("step.") {
        let Some((step_name, stat)) = rest.rsplit_once(".latency.") else {
            return Err(format!(
                "`{name}` is not a metric; a step metric looks like step.<name>.latency.p95"
            ));
        };
        let Some(idx) = steps.iter().position(|s| s.name == step_name) else {
            let known: Vec<_> = steps.iter().map(|s| s.name.as_str()).collect();
            return Err(format!(
                "`{name}` names step `{step_name}`, which the workflow does not have (steps: {})",
                known.join(", ")
            ));
        };
        (Some(idx), stat)
    } else if let Some(stat) = name.strip_prefix("latency.") {
        (None, stat)
    } else {
        return Err(format!("`{name}` is not a metric; use {METRIC_HINT}"));
    };
    let stat = parse_latency_stat(stat).ok_or_else(|| format!(
        "`{name}`: `{stat}` is not a latency statistic; use p50, p90, p95, p99, p99.9 (or p999), max or mean"
    ))?;
    Ok(Metric::Latency { step, stat })
}

fn parse_latency_stat(s: &str) -> Option<LatencyStat> {
    match s {
        "max" => return Some(LatencyStat::Max),
        "mean" => return Some(LatencyStat::Mean),
        _ => {}
    }
    let digits = s.strip_prefix('p')?;
    let value: f64 = if digits.contains('.') {
        digits.parse().ok()?
    } else if digits.len() > 2
        && digits.starts_with("99")
        && digits.chars().all(|c| c.is_ascii_digit())
    {
        // p999 is 99.9, p9999 is 99.99.
        format!("{}.{}", &digits[..2], &digits[2..]).parse().ok()?
    } else {
        digits.parse().ok()?
    };
    (value > 0.0 && value < 100.0).then_some(LatencyStat::Percentile(value))
}

fn parse_threshold(unit: Unit, q: &Quantity) -> Result<f64, String> {
    match unit {
        Unit::Ms | Unit::Seconds => {
            let Quantity::Text(t) = q else {
                return Err(format!(
                    "`{q}` has no unit; write a duration like {q}ms or {q}s"
                ));
            };
            let d = parse_duration(t)?;
            Ok(if unit == Unit::Ms {
                d.as_secs_f64() * 1000.0
            } else {
                d.as_secs_f64()
            })
        }
        Unit::Ratio => parse_ratio(q),
        Unit::Count => match q {
            Quantity::Number(n) if n.is_finite() && *n >= 0.0 && n.fract() == 0.0 => Ok(*n),
            _ => Err(format!(
                "`{q}` is not a count; write a whole number such as 0"
            )),
        },
        Unit::PerSecond | Unit::Number => match q {
            Quantity::Number(n) if n.is_finite() && (unit == Unit::Number || *n >= 0.0) => Ok(*n),
            _ => Err(format!(
                "`{q}` is not a number{}",
                if unit == Unit::PerSecond {
                    " of starts per second, e.g. 95"
                } else {
                    ""
                }
            )),
        },
    }
}

fn parse_window(
    w: &RawWindow,
    load: &Load,
    faults: &[Fault],
    end: Duration,
) -> Result<WindowRef, String> {
    let forms = [
        w.from.is_some() || w.to.is_some(),
        w.stage.is_some(),
        w.fault.is_some(),
    ];
    if forms.iter().filter(|f| **f).count() != 1 {
        return Err(
            "a window is one of `{ from: 10s, to: 30s }`, `{ stage: 2 }` or `{ fault: NAME }`"
                .into(),
        );
    }
    if let Some(stage) = &w.stage {
        let idx = match stage {
            StageRef::Number(n) if *n >= 1 && (*n as usize) <= load.stages.len() => {
                (*n - 1) as usize
            }
            StageRef::Number(n) => {
                return Err(format!(
                    "stage {n} does not exist; the schedule has stages 1 to {}",
                    load.stages.len()
                ));
            }
            StageRef::Name(name) => load
                .stages
                .iter()
                .position(|s| s.name.as_deref() == Some(name))
                .ok_or_else(|| format!("no stage is named `{name}`"))?,
        };
        return Ok(WindowRef::Stage(idx));
    }
    if let Some(name) = &w.fault {
        let idx = faults.iter().position(|f| &f.name == name).ok_or_else(|| {
            let known: Vec<_> = faults.iter().map(|f| f.name.as_str()).collect();
            format!(
                "no fault is named `{name}` (faults: {})",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            )
        })?;
        return Ok(WindowRef::Fault(idx));
    }
    let from = w.from.map_or(Duration::ZERO, |d| d.0);
    let to = w.to.map(|d| d.0);
    if let Some(to) = to {
        if to <= from {
            return Err(format!(
                "`to` ({}) must be after `from` ({})",
                format_duration(to),
                format_duration(from)
            ));
        }
    }
    if from >= end && !end.is_zero() {
        return Err(format!(
            "`from` ({}) is at or after the end of the schedule ({})",
            format_duration(from),
            format_duration(end)
        ));
    }
    Ok(WindowRef::Range { from, to })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_parse_in_both_spellings() {
        assert_eq!(
            parse_latency_stat("p95"),
            Some(LatencyStat::Percentile(95.0))
        );
        assert_eq!(
            parse_latency_stat("p999"),
            Some(LatencyStat::Percentile(99.9))
        );
        assert_eq!(
            parse_latency_stat("p99.9"),
            Some(LatencyStat::Percentile(99.9))
        );
        assert_eq!(parse_latency_stat("p100"), None);
        assert_eq!(parse_latency_stat("p0"), None);
        assert_eq!(parse_latency_stat("q95"), None);
    }

    #[test]
    fn unknown_metrics_name_the_choices() {
        let e = parse_metric("latency.p95x", &[]).unwrap_err();
        assert!(e.contains("p99.9"), "{e}");
        let e = parse_metric("error_rate", &[]).unwrap_err();
        assert!(e.contains("failure_rate"), "{e}");
    }
}
