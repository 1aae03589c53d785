//! The HTTP API: routing, the handlers and their JSON answers, and per-request metrics.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::metrics::{Route, method_label};
use super::simulation;
use super::state::AgentState;
use super::store::WorkflowView;
use crate::scenario::VERSION_HEADER;

/// Largest accepted POST body.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest accepted `workflow_type`.
const MAX_WORKFLOW_TYPE_LEN: usize = 64;
const WORKFLOWS_PREFIX: &str = "/api/v1/workflows/";
const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub(crate) type AgentResponse = Response<Full<Bytes>>;

/// Entry point of every request: route, answer, count.
pub(crate) async fn handle(
    state: Arc<AgentState>,
    request: Request<Incoming>,
) -> Result<AgentResponse, Infallible> {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = route(request.uri().path());
    let response = match (route, request.method()) {
        (Route::SubmitWorkflow, &Method::POST) => submit(&state, request).await,
        (Route::GetWorkflow, &Method::GET) => get_workflow(&state, request.uri().path()).await,
        (Route::Health, &Method::GET) => json_response(StatusCode::OK, &json!({"status": "ok"})),
        (Route::Ready, &Method::GET) => ready(&state),
        (Route::Metrics, &Method::GET) => metrics(&state),
        (Route::NotFound, _) => error(StatusCode::NOT_FOUND, "no such endpoint"),
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed on this endpoint",
        ),
    };
    let mut response = response;
    if let Some(version) = &state.version_header {
        response
            .headers_mut()
            .insert(VERSION_HEADER, version.clone());
    }
    let seconds = started.elapsed().as_secs_f64();
    state
        .metrics
        .observe_request(method, route, response.status().as_u16(), seconds);
    Ok(response)
}

fn route(path: &str) -> Route {
    match path {
        "/api/v1/workflows" => Route::SubmitWorkflow,
        "/health" => Route::Health,
        "/ready" => Route::Ready,
        "/metrics" => Route::Metrics,
        _ => match path.strip_prefix(WORKFLOWS_PREFIX) {
            Some(id) if !id.is_empty() && !id.contains('/') => Route::GetWorkflow,
            _ => Route::NotFound,
        },
    }
}

fn json_response(status: StatusCode, body: &Value) -> AgentResponse {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error(status: StatusCode, message: &str) -> AgentResponse {
    json_response(status, &json!({"error": message}))
}

async fn submit(state: &Arc<AgentState>, request: Request<Incoming>) -> AgentResponse {
    let body = match Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "request body unreadable or larger than 64 KiB",
            );
        }
    };
    let workflow_type = match workflow_type(&body) {
        Ok(t) => t,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let Some(slot) = state.try_admit() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "too many active workflows (max_concurrent_workflows = {})",
                state.config.max_concurrent_workflows
            ),
        );
    };
    let view = WorkflowView::running(&state.workflow_id(slot.seq), &workflow_type);
    // Stored before the 202, so a poll right after it finds the workflow on any replica.
    if let Err(e) = state.store.put(&view).await {
        return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
    }
    let answer = json!({"id": view.id, "status": "running"});
    tokio::spawn(simulation::run(state.clone(), slot, view));
    json_response(StatusCode::ACCEPTED, &answer)
}

/// The body must be a JSON object; its optional `workflow_type` names the workflow.
fn workflow_type(body: &[u8]) -> Result<String, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        format!("request body is not JSON: {e}; send an object, e.g. {{\"task\":\"summarize\"}}")
    })?;
    let Value::Object(object) = value else {
        return Err("request body must be a JSON object, e.g. {\"task\":\"summarize\"}".into());
    };
    match object.get("workflow_type") {
        None => Ok("default".into()),
        Some(Value::String(t))
            if !t.is_empty()
                && t.len() <= MAX_WORKFLOW_TYPE_LEN
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)) =>
        {
            Ok(t.clone())
        }
        Some(_) => Err(format!(
            "workflow_type must be a string of 1..={MAX_WORKFLOW_TYPE_LEN} characters from [A-Za-z0-9_.-]"
        )),
    }
}

async fn get_workflow(state: &AgentState, path: &str) -> AgentResponse {
    let id = path.strip_prefix(WORKFLOWS_PREFIX).unwrap_or_default();
    match state.store.get(id).await {
        Ok(Some(view)) => match serde_json::to_value(&view) {
            Ok(body) => json_response(StatusCode::OK, &body),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        },
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "no such workflow (unknown or evicted)",
        ),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

fn ready(state: &AgentState) -> AgentResponse {
    if state.is_ready() {
        json_response(StatusCode::OK, &json!({"status": "ready"}))
    } else if !state.store.is_available() {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "not ready", "reason": "workflow store unavailable"}),
        )
    } else {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "not ready"}),
        )
    }
}

fn metrics(state: &AgentState) -> AgentResponse {
    state.refresh_gauges();
    let mut response = Response::new(Full::new(Bytes::from(state.metrics.encode())));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_use_templates() {
        assert_eq!(route("/api/v1/workflows"), Route::SubmitWorkflow);
        assert_eq!(route("/api/v1/workflows/abc-1"), Route::GetWorkflow);
        assert_eq!(route("/api/v1/workflows/"), Route::NotFound);
        assert_eq!(route("/api/v1/workflows/a/b"), Route::NotFound);
        assert_eq!(route("/nope"), Route::NotFound);
    }

    #[test]
    fn workflow_type_defaults_and_is_validated() {
        assert_eq!(workflow_type(br#"{"task":"x"}"#).unwrap(), "default");
        assert_eq!(workflow_type(br#"{"workflow_type":"rag"}"#).unwrap(), "rag");
        assert!(workflow_type(br#"{"workflow_type":"a b"}"#).is_err());
        assert!(workflow_type(br#"{"workflow_type":7}"#).is_err());
        assert!(workflow_type(b"[1]").is_err());
        assert!(workflow_type(b"nope").is_err());
    }
}
