//! Workflows: run one workflow's steps in order against the target: render
//! templates, send, check, capture, poll; report a `WorkflowRecord`.

pub mod http;

use std::time::Duration;

use hyper::Uri;
use hyper::header::HeaderValue;
use tokio::time::Instant;

use crate::scenario::template::Values;
use crate::scenario::{Body, Condition, Step, Subset};
use crate::stats::record::{FailureKind, Outcome, StepSample, WorkflowRecord};
use http::{Encoded, Endpoint, HttpClient, Parts, SendError};

/// Everything a workflow needs, shared by all workflows of a run.
pub struct WorkflowRunner {
    client: HttpClient,
    steps: Vec<Step>,
    /// Per step, the request encoded once when nothing in it is templated.
    prebuilt: Vec<Option<Encoded>>,
    capture_slots: usize,
    /// Environment values for `${env:NAME}`, in slot order. Secret: never printed.
    env: Vec<String>,
    request_timeout: Duration,
    /// The subsets' `version` labels (stable, canary) when the run has a canary: a
    /// workflow belongs to the subset of the first answer that names one.
    versions: Option<[String; 2]>,
}

const JSON: &str = "application/json";

/// The request of a step with nothing to render, encoded once; `None` when the
/// path, a header or the body has a placeholder, or a value is not valid in HTTP
/// (the per-request path then reports that as a failure).
fn prebuild(ep: &Endpoint, step: &Step) -> Option<Encoded> {
    let literal = step.path.as_literal().is_some()
        && step.headers.iter().all(|(_, v)| v.as_literal().is_some())
        && match &step.body {
            Body::Empty => true,
            Body::Text(t) => t.as_literal().is_some(),
            Body::Json { literal, .. } => literal.is_some(),
        };
    let nothing = Values {
        captures: &[],
        seq: 0,
        env: &[],
    };
    literal.then(|| encode(ep, step, &nothing).ok()).flatten()
}

/// Render and encode a step's request. A rendered path or header value that
/// HTTP does not allow fails the step as `expectation`.
fn encode(ep: &Endpoint, step: &Step, values: &Values<'_>) -> Result<Encoded, FailureKind> {
    let mut target = String::with_capacity(ep.path_prefix.len() + 32);
    target.push_str(&ep.path_prefix);
    step.path.render_into(values, &mut target);
    target
        .parse::<Uri>()
        .map_err(|_| FailureKind::Expectation)?;
    let rendered: Vec<(&str, String)> = step
        .headers
        .iter()
        .map(|(name, value)| {
            let v = value.render(values);
            HeaderValue::from_str(&v)
                .map(|_| (name.as_str(), v))
                .map_err(|_| FailureKind::Expectation)
        })
        .collect::<Result<_, _>>()?;
    let headers: Vec<(&str, &[u8])> = rendered.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
    let (content_type, body) = match &step.body {
        Body::Empty => (None, Vec::new()),
        Body::Text(t) => (None, t.render(values).into_bytes()),
        Body::Json { template, literal } => (
            Some(JSON),
            match literal {
                Some(b) => b.to_vec(),
                None => serde_json::to_vec(&template.render(values)).unwrap_or_default(),
            },
        ),
    };
    Ok(Encoded::new(&Parts {
        method: &step.method,
        target: &target,
        authority: &ep.authority,
        headers: &headers,
        content_type,
        body: &body,
    }))
}

/// One workflow's mutable state.
struct Vars {
    captures: Vec<Option<String>>,
    seq: u64,
    /// The subset that served the workflow, once an answer said so.
    subset: Option<Subset>,
}

/// Failure of a step, before it is tagged with the step index.
type StepResult = Result<(), FailureKind>;

impl WorkflowRunner {
    pub fn new(
        client: HttpClient,
        steps: Vec<Step>,
        capture_slots: usize,
        env: Vec<String>,
        request_timeout: Duration,
    ) -> WorkflowRunner {
        WorkflowRunner {
            prebuilt: steps
                .iter()
                .map(|s| prebuild(client.endpoint(), s))
                .collect(),
            client,
            steps,
            capture_slots,
            env,
            request_timeout,
            versions: None,
        }
    }

    /// Attribute every workflow to the subset whose `version` label (stable, canary) the
    /// first answer's `x-agent-version` header names.
    pub fn with_versions(mut self, versions: [String; 2]) -> WorkflowRunner {
        self.versions = Some(versions);
        self
    }

    /// Notes the subset that served `resp`, if the workflow has none yet.
    fn attribute(&self, resp: &http::Response, vars: &mut Vars) {
        if vars.subset.is_some() {
            return;
        }
        if let (Some(versions), Some(v)) = (&self.versions, &resp.version) {
            vars.subset = Subset::ALL.into_iter().find(|s| versions[s.index()] == *v);
        }
    }

    /// The same runner with a connection pool of its own, for one of `workers` load workers.
    pub fn for_worker(&self, workers: usize) -> WorkflowRunner {
        WorkflowRunner {
            client: self.client.fresh(workers),
            steps: self.steps.clone(),
            prebuilt: self.prebuilt.clone(),
            capture_slots: self.capture_slots,
            env: self.env.clone(),
            request_timeout: self.request_timeout,
            versions: self.versions.clone(),
        }
    }

    /// Run workflow `seq`, intended to start at `intended` and issued at
    /// `issued` (the engine's clock reading when it started it); `zero` is the run's zero.
    pub async fn run(
        &self,
        seq: u64,
        zero: Instant,
        intended: Instant,
        issued: Instant,
    ) -> WorkflowRecord {
        let us = |t: Instant| t.saturating_duration_since(zero).as_micros() as u64;
        let lag_us = us(issued).saturating_sub(us(intended));
        let mut vars = Vars {
            captures: vec![None; self.capture_slots],
            seq,
            subset: None,
        };
        let mut samples = Vec::with_capacity(self.steps.len());
        let mut step_start = intended;
        // When the step is sent: its request deadline counts from here.
        let mut now = issued;
        let mut outcome = Outcome::Succeeded;
        for (i, step) in self.steps.iter().enumerate() {
            let result = match &step.poll {
                None => self.once(i, now, &mut vars).await,
                Some(_) => self.poll(i, step_start, &mut vars).await,
            };
            let end = Instant::now();
            samples.push(StepSample {
                step: i as u16,
                latency_us: end.saturating_duration_since(step_start).as_micros() as u64,
                ok: result.is_ok(),
            });
            step_start = end;
            now = end;
            if let Err(kind) = result {
                outcome = Outcome::Failed {
                    kind,
                    step: i as u16,
                };
                break;
            }
        }
        WorkflowRecord {
            seq,
            intended_us: us(intended),
            lag_us,
            end_us: us(step_start),
            outcome,
            steps: samples,
            subset: vars.subset,
        }
    }

    /// One request-response step, sent at `now`.
    async fn once(&self, i: usize, now: Instant, vars: &mut Vars) -> StepResult {
        let step = &self.steps[i];
        let deadline = now + self.request_timeout;
        let resp = match self.send(i, vars, deadline).await {
            Ok(r) => r,
            Err(SendError::Deadline) => return Err(FailureKind::Timeout),
            Err(SendError::Failed(k)) => return Err(k),
        };
        self.attribute(&resp, vars);
        check_status(step, &resp)?;
        if step.captures.is_empty() {
            return Ok(());
        }
        let json = parse_json(&resp.body)?;
        capture(step, &json, vars)
    }

    /// Poll on a fixed tick grid from the step's intended start until the
    /// condition holds, `fail_if` holds, or the poll times out.
    async fn poll(&self, i: usize, start: Instant, vars: &mut Vars) -> StepResult {
        let step = &self.steps[i];
        let Some(poll) = &step.poll else {
            return Ok(());
        };
        let give_up = start + poll.timeout;
        let mut tick = start;
        loop {
            tokio::time::sleep_until(tick).await;
            let deadline = (Instant::now() + self.request_timeout).min(give_up);
            let resp = match self.send(i, vars, deadline).await {
                Ok(r) => r,
                Err(SendError::Deadline) if deadline == give_up => {
                    return Err(FailureKind::PollTimeout);
                }
                Err(SendError::Deadline) => return Err(FailureKind::Timeout),
                Err(SendError::Failed(k)) => return Err(k),
            };
            self.attribute(&resp, vars);
            check_status(step, &resp)?;
            let json = parse_json(&resp.body)?;
            if holds(&poll.until, &json) {
                return capture(step, &json, vars);
            }
            if poll.fail_if.as_ref().is_some_and(|c| holds(c, &json)) {
                return Err(FailureKind::Expectation);
            }
            // Next tick on the grid that is not yet past; missed ticks are skipped, not bunched.
            let now = Instant::now();
            let every = poll.every.as_secs_f64();
            let k = (now.saturating_duration_since(start).as_secs_f64() / every).floor() + 1.0;
            tick = start + Duration::from_secs_f64(k * every);
            if tick >= give_up {
                return Err(FailureKind::PollTimeout);
            }
        }
    }

    async fn send(
        &self,
        i: usize,
        vars: &Vars,
        deadline: Instant,
    ) -> Result<http::Response, SendError> {
        let step = &self.steps[i];
        let built;
        let req = match &self.prebuilt[i] {
            Some(p) => p,
            None => {
                let values = Values {
                    captures: &vars.captures,
                    seq: vars.seq,
                    env: &self.env,
                };
                built = encode(self.client.endpoint(), step, &values).map_err(SendError::Failed)?;
                &built
            }
        };
        self.client.send(req, step.needs_json(), deadline).await
    }
}

/// A status the step does not accept is a `status` failure, or `overloaded`
/// when Envoy marked the answer as its own circuit breaker's refusal.
fn check_status(step: &Step, resp: &http::Response) -> StepResult {
    let status = resp.status.as_u16();
    let ok = if step.expect_status.is_empty() {
        (200..300).contains(&status)
    } else {
        step.expect_status.contains(&status)
    };
    match (ok, resp.overloaded) {
        (true, _) => Ok(()),
        (false, true) => Err(FailureKind::Overloaded),
        (false, false) => Err(FailureKind::Status),
    }
}

fn parse_json(body: &[u8]) -> Result<serde_json::Value, FailureKind> {
    serde_json::from_slice(body).map_err(|_| FailureKind::Expectation)
}

fn holds(cond: &Condition, json: &serde_json::Value) -> bool {
    json.pointer(&cond.pointer) == Some(&cond.equals)
}

fn capture(step: &Step, json: &serde_json::Value, vars: &mut Vars) -> StepResult {
    for (slot, pointer) in &step.captures {
        let value = match json.pointer(pointer) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => v.to_string(),
            _ => return Err(FailureKind::Expectation),
        };
        vars.captures[*slot] = Some(value);
    }
    Ok(())
}
