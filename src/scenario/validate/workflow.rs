//! `workflow`: the steps in order — request (method, path, headers, body), expected
//! statuses, polling and captures — and the capture and environment slots their
//! templates use.

use std::collections::HashSet;

use hyper::Method;
use hyper::header::{CONTENT_LENGTH, HeaderName, TRANSFER_ENCODING};
use serde_saphyr::{Location, Spanned};

use super::Ctx;
use crate::scenario::model::{Body, Condition, Poll, Step};
use crate::scenario::raw::{RawCondition, RawPoll, RawRequest, RawStep};
use crate::scenario::template::{JsonTemplate, Names, Template};
use crate::units::format_duration;

/// Capture and environment slots, filled step by step so a template can only
/// use captures set by an earlier step.
#[derive(Default)]
pub(super) struct SlotNames {
    pub(super) captures: Vec<String>,
    available: usize,
    /// Captures the step being validated sets (not usable in its own request).
    pending: Vec<String>,
    pub(super) env: Vec<String>,
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

pub(super) fn validate_workflow(
    cx: &mut Ctx,
    raw: &[Spanned<RawStep>],
    names: &mut SlotNames,
) -> Vec<Step> {
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

/// One step, or `None` when any of its fields is wrong (the errors are in `cx`).
fn validate_step(
    cx: &mut Ctx,
    s: &RawStep,
    path: &str,
    loc: Option<Location>,
    names: &mut SlotNames,
) -> Option<Step> {
    let before = cx.errors.len();
    names.pending = s.capture.keys().cloned().collect();
    let method = request_method(cx, loc, path, &s.request.method);
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
    let headers = request_headers(cx, loc, path, &s.request, names);
    let body = request_body(cx, loc, path, &s.request, names);
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
    let poll = s.poll.as_ref().map(|p| validate_poll(cx, loc, path, p));
    let captures = step_captures(cx, loc, path, s, names);
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

fn request_method(cx: &mut Ctx, loc: Option<Location>, path: &str, raw: &str) -> Option<Method> {
    let upper = raw.to_ascii_uppercase();
    let method = match upper.as_str() {
        "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS" => {
            Method::from_bytes(upper.as_bytes()).ok()
        }
        _ => None,
    };
    if method.is_none() {
        cx.err(
            loc,
            format!("{path}.request.method"),
            format!("`{raw}` is not a method; use GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS"),
        );
    }
    method
}

fn request_headers(
    cx: &mut Ctx,
    loc: Option<Location>,
    path: &str,
    request: &RawRequest,
    names: &mut SlotNames,
) -> Vec<(HeaderName, Template)> {
    let mut headers = Vec::new();
    for (k, v) in &request.headers {
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
    headers
}

fn request_body(
    cx: &mut Ctx,
    loc: Option<Location>,
    path: &str,
    request: &RawRequest,
    names: &mut SlotNames,
) -> Body {
    match (&request.json, &request.body) {
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
    }
}

fn validate_poll(cx: &mut Ctx, loc: Option<Location>, path: &str, p: &RawPoll) -> Poll {
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
}

/// The step's `(slot, pointer)` captures; they become available to later steps only.
fn step_captures(
    cx: &mut Ctx,
    loc: Option<Location>,
    path: &str,
    s: &RawStep,
    names: &mut SlotNames,
) -> Vec<(usize, String)> {
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
    captures
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
