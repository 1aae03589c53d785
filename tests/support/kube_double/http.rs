//! The HTTP face of the double: routing of real Kubernetes API paths, the verbs
//! (get, list, watch, create, apply, patch, replace, delete), discovery, and `Status` errors.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::resources::{self, ResourceType};
use super::select::Selector;
use super::store::{ApiError, EventType, Live, ObjKey, State, StoredEvent};
use super::{Failure, RequestRecord, Shared, controllers, portforward};

pub type Body = BoxBody<Bytes, Infallible>;

/// Watches without `timeoutSeconds` end after this (the real server picks 30–60 min).
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// A request's resource target, parsed from its path.
pub struct Target {
    pub r: &'static ResourceType,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

enum Route {
    Version,
    Core,
    CoreV1,
    Groups,
    Group(String),
    GroupVersion(String, String),
    Resource(Target),
    NotFound,
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

pub fn json_response(code: u16, value: &Value) -> Response<Body> {
    json_response_typed(code, value, "application/json")
}

fn json_response_typed(code: u16, value: &Value, content_type: &str) -> Response<Body> {
    let mut response = Response::new(full(value.to_string()));
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, v);
    }
    response
}

pub fn error_response(error: &ApiError) -> Response<Body> {
    json_response(error.code, &error.to_status())
}

fn not_found_path() -> Response<Body> {
    error_response(&ApiError {
        details: Some(
            json!({"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]}),
        ),
        ..ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    })
}

fn method_not_allowed() -> Response<Body> {
    error_response(&ApiError::new(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
    ))
}

fn header(req: &Request<Incoming>, name: hyper::header::HeaderName) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Parses a resource path after `/api/v1` or `/apis/{group}/{version}`.
fn resource_route(group: &str, version: &str, rest: &[&str], shared: &Shared) -> Route {
    let find = |plural: &str| resources::find(group, version, plural, &shared.options);
    let target = |r, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>| {
        Route::Resource(Target {
            r,
            namespace: namespace.map(str::to_string),
            name: name.map(str::to_string),
            subresource: sub.map(str::to_string),
        })
    };
    let namespaced_collection = rest.len() >= 3
        && rest[0] == "namespaces"
        && !(group.is_empty() && rest.len() == 3 && matches!(rest[2], "status" | "finalize"));
    if namespaced_collection {
        let Some(r) = find(rest[2]).filter(|r| r.namespaced) else {
            return Route::NotFound;
        };
        return match rest.len() {
            3 => target(r, Some(rest[1]), None, None),
            4 => target(r, Some(rest[1]), Some(rest[3]), None),
            5 => target(r, Some(rest[1]), Some(rest[3]), Some(rest[4])),
            _ => Route::NotFound,
        };
    }
    let Some(r) = rest.first().and_then(|p| find(p)) else {
        return Route::NotFound;
    };
    match rest.len() {
        1 => target(r, None, None, None),
        2 if !r.namespaced => target(r, None, Some(rest[1]), None),
        3 if !r.namespaced => target(r, None, Some(rest[1]), Some(rest[2])),
        _ => Route::NotFound,
    }
}

fn route(path: &str, shared: &Shared) -> Route {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["version"] => Route::Version,
        ["api"] => Route::Core,
        ["api", "v1"] => Route::CoreV1,
        ["api", "v1", rest @ ..] => resource_route("", "v1", rest, shared),
        ["apis"] => Route::Groups,
        ["apis", group] => Route::Group(group.to_string()),
        ["apis", group, version] => Route::GroupVersion(group.to_string(), version.to_string()),
        ["apis", group, version, rest @ ..] => resource_route(group, version, rest, shared),
        _ => Route::NotFound,
    }
}

/// The service function.
pub async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let record = RequestRecord {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        query: req.uri().query().unwrap_or_default().to_string(),
        content_type: header(&req, hyper::header::CONTENT_TYPE),
        accept: header(&req, hyper::header::ACCEPT),
    };
    let failure = {
        let mut state = shared.lock();
        state.requests.push(record.clone());
        state.failure
    };
    if let Some(failure) = failure {
        return Ok(failure_response(failure));
    }
    let response = match route(req.uri().path(), &shared) {
        Route::Version => json_response(200, &resources::version_info()),
        Route::Core => core_discovery(&shared, record.accept.as_deref()),
        Route::CoreV1 => discovery_list(&shared, "", "v1"),
        Route::Groups => groups_discovery(&shared, record.accept.as_deref()),
        Route::Group(group) => single_group(&shared, &group),
        Route::GroupVersion(group, version) => discovery_list(&shared, &group, &version),
        Route::Resource(target) => resource(shared, req, target, query, &record).await,
        Route::NotFound => not_found_path(),
    };
    Ok(response)
}

fn failure_response(failure: Failure) -> Response<Body> {
    match failure {
        Failure::Unavailable => error_response(&ApiError::new(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
        )),
        Failure::Unauthorized => {
            error_response(&ApiError::new(401, "Unauthorized", "Unauthorized"))
        }
    }
}

fn core_discovery(shared: &Shared, accept: Option<&str>) -> Response<Body> {
    if resources::wants_aggregated(accept) {
        return json_response_typed(
            200,
            &resources::aggregated_core(),
            resources::AGGREGATED_CONTENT_TYPE,
        );
    }
    json_response(200, &resources::core_versions(&shared.addr.to_string()))
}

fn groups_discovery(shared: &Shared, accept: Option<&str>) -> Response<Body> {
    if resources::wants_aggregated(accept) {
        return json_response_typed(
            200,
            &resources::aggregated_groups(&shared.options),
            resources::AGGREGATED_CONTENT_TYPE,
        );
    }
    json_response(200, &resources::group_list(&shared.options))
}

fn single_group(shared: &Shared, group: &str) -> Response<Body> {
    resources::RESOURCES
        .iter()
        .find(|r| r.group == group && resources::group_enabled(group, &shared.options))
        .map_or_else(not_found_path, |r| {
            json_response(200, &resources::api_group(r.group, r.version))
        })
}

fn discovery_list(shared: &Shared, group: &str, version: &str) -> Response<Body> {
    resources::resource_list(group, version, &shared.options)
        .map_or_else(not_found_path, |list| json_response(200, &list))
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    req.into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))
}

fn parse_object(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).or_else(|json_error| {
        std::str::from_utf8(body)
            .ok()
            .and_then(|text| serde_saphyr::from_str::<Value>(text).ok())
            .ok_or_else(|| {
                ApiError::bad_request(format!("the body is neither JSON nor YAML: {json_error}"))
            })
    })
}

async fn resource(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    target: Target,
    query: HashMap<String, String>,
    record: &RequestRecord,
) -> Response<Body> {
    if target.subresource.as_deref() == Some("portforward") {
        return portforward::handle(shared, req, target, &query);
    }
    if target.r.is_metrics() {
        return metrics(&shared, req.method(), &target, &query);
    }
    let method = req.method().clone();
    let result = match (
        &method,
        target.name.is_some(),
        target.subresource.as_deref(),
    ) {
        (&Method::GET, false, None)
            if query.get("watch").is_some_and(|w| w == "true" || w == "1") =>
        {
            return watch(&shared, &target, &query);
        }
        (&Method::GET, false, None) => list(&shared, &target, &query),
        (&Method::GET, true, None | Some("status")) => get(&shared, &target),
        (&Method::POST, false, None) => match read_body(req).await {
            Ok(body) => create(&shared, &target, &body, &query),
            Err(e) => Err(e),
        },
        (&Method::PATCH, true, None | Some("status")) => match read_body(req).await {
            Ok(body) => patch(
                &shared,
                &target,
                &body,
                &query,
                record.content_type.as_deref(),
            ),
            Err(e) => Err(e),
        },
        (&Method::PUT, true, None | Some("status")) => match read_body(req).await {
            Ok(body) => replace(&shared, &target, &body),
            Err(e) => Err(e),
        },
        (&Method::DELETE, true, None) => delete(&shared, &target),
        _ => return method_not_allowed(),
    };
    match result {
        Ok((code, value)) => json_response(code, &value),
        Err(error) => error_response(&error),
    }
}

type Answer = Result<(u16, Value), ApiError>;

fn key_of(target: &Target) -> ObjKey {
    ObjKey::new(
        target.r,
        target.namespace.as_deref(),
        target.name.as_deref().unwrap_or_default(),
    )
}

fn selector(query: &HashMap<String, String>) -> Result<Selector, ApiError> {
    Selector::parse(
        query.get("labelSelector").map(String::as_str),
        query.get("fieldSelector").map(String::as_str),
    )
    .map_err(ApiError::bad_request)
}

fn get(shared: &Shared, target: &Target) -> Answer {
    let state = shared.lock();
    let key = key_of(target);
    state
        .get(&key)
        .map(|o| (200, o.clone()))
        .ok_or_else(|| ApiError::not_found(target.r, &key.name))
}

/// What a list item looks like: built-in types lose kind/apiVersion inside lists.
fn list_item(r: &ResourceType, object: &Value) -> Value {
    let mut item = object.clone();
    if r.is_builtin()
        && let Some(obj) = item.as_object_mut()
    {
        obj.remove("kind");
        obj.remove("apiVersion");
    }
    item
}

fn list_document(
    r: &ResourceType,
    items: Vec<Value>,
    rv: u64,
    continue_token: Option<String>,
) -> Value {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    json!({
        "kind": format!("{}List", r.kind),
        "apiVersion": r.api_version(),
        "metadata": metadata,
        "items": items,
    })
}

fn list(shared: &Shared, target: &Target, query: &HashMap<String, String>) -> Answer {
    let selector = selector(query)?;
    let state = shared.lock();
    let matching: Vec<Value> = state
        .list(target.r, target.namespace.as_deref())
        .into_iter()
        .filter(|o| selector.matches(o))
        .map(|o| list_item(target.r, o))
        .collect();
    let offset: usize = query
        .get("continue")
        .and_then(|c| c.strip_prefix("double:"))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let end = offset.saturating_add(limit).min(matching.len());
    let page = matching
        .get(offset.min(end)..end)
        .unwrap_or_default()
        .to_vec();
    let token = (end < matching.len()).then(|| format!("double:{end}"));
    Ok((200, list_document(target.r, page, state.rv, token)))
}

fn dry_run(query: &HashMap<String, String>) -> bool {
    query.get("dryRun").is_some_and(|d| d == "All")
}

fn create(
    shared: &Shared,
    target: &Target,
    body: &[u8],
    query: &HashMap<String, String>,
) -> Answer {
    let object = parse_object(body)?;
    let mut state = shared.lock();
    let manager = query.get("fieldManager").map(String::as_str);
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let key = ObjKey::new(target.r, target.namespace.as_deref(), name);
    let mut scratch = dry_run(query).then(|| state.scratch_for(&key));
    let state: &mut State = scratch.as_mut().unwrap_or(&mut state);
    state
        .create(target.r, target.namespace.as_deref(), object, manager)
        .map(|o| (201, o))
}

fn patch(
    shared: &Shared,
    target: &Target,
    body: &[u8],
    query: &HashMap<String, String>,
    content_type: Option<&str>,
) -> Answer {
    let content_type = content_type.unwrap_or_default();
    let mut state = shared.lock();
    let key = key_of(target);
    let mut scratch = dry_run(query).then(|| state.scratch_for(&key));
    let state: &mut State = scratch.as_mut().unwrap_or(&mut state);
    if content_type.starts_with("application/apply-patch+yaml") {
        let Some(manager) = query.get("fieldManager").filter(|m| !m.is_empty()) else {
            return Err(ApiError::invalid(
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is \
                 required for apply patch",
            ));
        };
        let object = parse_object(body)?;
        if target.subresource.is_some() {
            return status_write(state, target, key, |existing| {
                let mut merged = existing.clone();
                merged["status"] = object.get("status").cloned().unwrap_or(Value::Null);
                Ok(merged)
            });
        }
        let (object, created) = state.apply(
            target.r,
            target.namespace.as_deref(),
            &key.name,
            object,
            manager,
        )?;
        return Ok((if created { 201 } else { 200 }, object));
    }
    if target.subresource.is_some() {
        let r = target.r;
        return status_write(state, target, key.clone(), |existing| {
            let mut scratch = State::new(1);
            let scratch_key = key.clone();
            scratch
                .objects
                .insert(scratch_key.clone(), existing.clone());
            scratch.patch(r, scratch_key, content_type, body)
        });
    }
    state
        .patch(target.r, key, content_type, body)
        .map(|o| (200, o))
}

/// Writes only `status` from what `change` makes of the object (a `/status` write).
fn status_write(
    state: &mut State,
    target: &Target,
    key: ObjKey,
    change: impl FnOnce(&Value) -> Result<Value, ApiError>,
) -> Answer {
    let existing = state
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(target.r, &key.name))?;
    let changed = change(&existing)?;
    let status = changed.get("status").cloned().unwrap_or(Value::Null);
    let written = state.write_status(&key, status).unwrap_or(existing);
    Ok((200, written))
}

fn replace(shared: &Shared, target: &Target, body: &[u8]) -> Answer {
    let object = parse_object(body)?;
    let mut state = shared.lock();
    let key = key_of(target);
    if target.subresource.is_some() {
        return status_write(&mut state, target, key, |_| Ok(object));
    }
    state.replace(target.r, key, object).map(|o| (200, o))
}

fn delete(shared: &Shared, target: &Target) -> Answer {
    let mut state = shared.lock();
    let key = key_of(target);
    if !state.objects.contains_key(&key) {
        return Err(ApiError::not_found(target.r, &key.name));
    }
    if target.r.plural == "namespaces" && target.r.group.is_empty() {
        let until = Instant::now() + shared.options.namespace_delete_delay;
        let object = state.terminate_namespace(&key.name, until);
        return object
            .map(|o| (200, o))
            .ok_or_else(|| ApiError::not_found(target.r, &key.name));
    }
    let deleted = state
        .remove(&key)
        .ok_or_else(|| ApiError::not_found(target.r, &key.name))?;
    if target.r.plural == "pods" && target.r.group.is_empty() {
        return Ok((200, deleted));
    }
    Ok((
        200,
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {
                "name": key.name,
                "group": target.r.group,
                "kind": target.r.plural,
                "uid": deleted["metadata"]["uid"],
            },
        }),
    ))
}

// ------------------------------------------------------------------ metrics.k8s.io

fn metrics(
    shared: &Shared,
    method: &Method,
    target: &Target,
    query: &HashMap<String, String>,
) -> Response<Body> {
    if method != Method::GET || query.get("watch").is_some_and(|w| w == "true") {
        return method_not_allowed();
    }
    let state = shared.lock();
    let items: Vec<Value> = if target.r.plural == "nodes" {
        vec![controllers::node_metrics()]
    } else {
        let pods = resources::find_plural("v1", "pods").expect("pods are always served");
        state
            .list(pods, target.namespace.as_deref())
            .into_iter()
            .filter(|p| p.pointer("/status/phase") == Some(&json!("Running")))
            .map(controllers::pod_metrics)
            .collect()
    };
    let selector = match selector(query) {
        Ok(s) => s,
        Err(e) => return error_response(&e),
    };
    let items: Vec<Value> = items.into_iter().filter(|i| selector.matches(i)).collect();
    match &target.name {
        Some(name) => items
            .into_iter()
            .find(|i| i["metadata"]["name"] == json!(name))
            .map_or_else(
                || error_response(&ApiError::not_found(target.r, name)),
                |i| json_response(200, &i),
            ),
        None => {
            let mut doc = list_document(target.r, items, state.rv, None);
            doc["metadata"] = json!({});
            json_response(200, &doc)
        }
    }
}

// ------------------------------------------------------------------ watch

/// What one watch stream filters on.
struct WatchFilter {
    api_version: String,
    plural: &'static str,
    namespace: Option<String>,
    selector: Selector,
}

impl WatchFilter {
    fn line(&self, event: &StoredEvent) -> Option<Bytes> {
        if event.key.api_version != self.api_version
            || event.key.plural != self.plural
            || self
                .namespace
                .as_ref()
                .is_some_and(|ns| *ns != event.key.namespace)
        {
            return None;
        }
        let now = self.selector.matches(&event.object);
        let before = event
            .previous
            .as_ref()
            .is_some_and(|p| self.selector.matches(p));
        let event_type = match event.event_type {
            EventType::Added if now => "ADDED",
            EventType::Deleted if now => "DELETED",
            EventType::Modified if now && before => "MODIFIED",
            EventType::Modified if now => "ADDED",
            EventType::Modified if before => "DELETED",
            _ => return None,
        };
        Some(event_line(event_type, &event.object))
    }
}

fn event_line(event_type: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": event_type, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn bookmark(r: &ResourceType, rv: u64, initial_end: bool) -> Bytes {
    let mut object = json!({
        "kind": r.kind,
        "apiVersion": r.api_version(),
        "metadata": {"resourceVersion": rv.to_string(), "creationTimestamp": null},
    });
    if initial_end {
        object["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    event_line("BOOKMARK", &object)
}

fn gone(requested: u64, oldest: u64) -> Bytes {
    let status = ApiError::new(
        410,
        "Expired",
        format!("too old resource version: {requested} ({oldest})"),
    )
    .to_status();
    event_line("ERROR", &status)
}

/// What a watch starts with: lines to send at once, then the live feed (or nothing).
struct WatchStart {
    initial: Vec<Bytes>,
    live: Option<broadcast::Receiver<Live>>,
    rv: u64,
}

fn start_watch(
    state: &State,
    target: &Target,
    filter: &WatchFilter,
    query: &HashMap<String, String>,
) -> Result<WatchStart, ApiError> {
    let requested = query
        .get("resourceVersion")
        .map(String::as_str)
        .unwrap_or("");
    let bookmarks = query
        .get("allowWatchBookmarks")
        .is_some_and(|b| b == "true");
    let send_initial = query.get("sendInitialEvents").is_some_and(|b| b == "true");
    let mut initial = vec![];
    if requested.is_empty() || requested == "0" || send_initial {
        for object in state.list(target.r, target.namespace.as_deref()) {
            if filter.selector.matches(object) {
                initial.push(event_line("ADDED", object));
            }
        }
        if send_initial && bookmarks {
            initial.push(bookmark(target.r, state.rv, true));
        }
    } else {
        let from: u64 = requested.parse().map_err(|_| {
            ApiError::invalid(format!(
                "resourceVersion: Invalid value: \"{requested}\": invalid"
            ))
        })?;
        if from < state.compacted_rv {
            return Ok(WatchStart {
                initial: vec![gone(from, state.compacted_rv)],
                live: None,
                rv: state.rv,
            });
        }
        initial.extend(
            state
                .history
                .iter()
                .filter(|e| e.rv > from)
                .filter_map(|e| filter.line(e)),
        );
    }
    Ok(WatchStart {
        initial,
        live: Some(state.live.subscribe()),
        rv: state.rv,
    })
}

fn watch(shared: &Arc<Shared>, target: &Target, query: &HashMap<String, String>) -> Response<Body> {
    let selector = match selector(query) {
        Ok(s) => s,
        Err(e) => return error_response(&e),
    };
    let filter = WatchFilter {
        api_version: target.r.api_version(),
        plural: target.r.plural,
        namespace: target.namespace.clone(),
        selector,
    };
    let start = {
        let state = shared.lock();
        start_watch(&state, target, &filter, query)
    };
    let start = match start {
        Ok(s) => s,
        Err(e) => return error_response(&e),
    };
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map_or(DEFAULT_WATCH_TIMEOUT, Duration::from_secs);
    let bookmarks = query
        .get("allowWatchBookmarks")
        .is_some_and(|b| b == "true");
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let task = WatchTask {
        tx,
        filter,
        r: target.r,
        last_rv: start.rv,
        bookmark_every: bookmarks.then_some(shared.options.bookmark_interval),
        timeout,
        cancel: shared.cancel.clone(),
    };
    tokio::spawn(task.run(start.initial, start.live));
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|line| (Ok::<_, Infallible>(Frame::data(line)), rx))
    });
    let mut response = Response::new(StreamBody::new(stream).boxed());
    if let Ok(v) = "application/json".parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, v);
    }
    response
}

struct WatchTask {
    tx: mpsc::Sender<Bytes>,
    filter: WatchFilter,
    r: &'static ResourceType,
    last_rv: u64,
    bookmark_every: Option<Duration>,
    timeout: Duration,
    cancel: tokio_util::sync::CancellationToken,
}

impl WatchTask {
    async fn run(mut self, initial: Vec<Bytes>, live: Option<broadcast::Receiver<Live>>) {
        for line in initial {
            if self.tx.send(line).await.is_err() {
                return;
            }
        }
        let Some(mut live) = live else {
            return;
        };
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        let period = self.bookmark_every.unwrap_or(Duration::from_secs(3600));
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            let line = tokio::select! {
                _ = &mut deadline => return,
                _ = self.cancel.cancelled() => return,
                _ = self.tx.closed() => return,
                _ = ticker.tick() => {
                    if self.bookmark_every.is_none() {
                        continue;
                    }
                    Some(bookmark(self.r, self.last_rv, false))
                }
                received = live.recv() => match received {
                    Ok(Live::Event(event)) => {
                        self.last_rv = event.rv;
                        self.filter.line(&event)
                    }
                    Ok(Live::Reset) | Err(broadcast::error::RecvError::Closed) => return,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let _ = self.tx.send(gone(self.last_rv, self.last_rv + 1)).await;
                        return;
                    }
                },
            };
            if let Some(line) = line
                && self.tx.send(line).await.is_err()
            {
                return;
            }
        }
    }
}
