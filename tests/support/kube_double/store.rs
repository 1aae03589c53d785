//! The double's storage: objects by key, one global resourceVersion counter, a bounded
//! event history (for watches that resume), and the write paths (create, server-side
//! apply, JSON/merge patch, replace, delete) with the metadata the real API server keeps.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::resources::{self, ResourceType};
use super::{Failure, RequestRecord, StatusRecord};

/// Where an object lives: `apiVersion`, plural, namespace (`""` when cluster-scoped), name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjKey {
    pub api_version: String,
    pub plural: String,
    pub namespace: String,
    pub name: String,
}

impl ObjKey {
    pub fn new(r: &ResourceType, namespace: Option<&str>, name: &str) -> ObjKey {
        ObjKey {
            api_version: r.api_version(),
            plural: r.plural.to_string(),
            namespace: namespace.unwrap_or_default().to_string(),
            name: name.to_string(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change, as kept in history and sent to live watches.
#[derive(Debug)]
pub struct StoredEvent {
    pub rv: u64,
    pub key: ObjKey,
    pub event_type: EventType,
    pub object: Value,
    /// The object before a modification (for selector transitions).
    pub previous: Option<Value>,
}

/// What live watches receive.
#[derive(Clone, Debug)]
pub enum Live {
    Event(Arc<StoredEvent>),
    /// History was compacted: open watches end, as after a watch-cache reset.
    Reset,
}

/// A refusal the HTTP layer turns into a `Status`.
#[derive(Debug)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub fn not_found(r: &ResourceType, name: &str) -> ApiError {
        ApiError {
            details: Some(json!({"name": name, "group": r.group, "kind": r.plural})),
            ..ApiError::new(
                404,
                "NotFound",
                format!("{} \"{name}\" not found", r.qualified_plural()),
            )
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(422, "Invalid", message)
    }

    /// The `Status` body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

/// Per-HPA bookkeeping of the scripted controller.
#[derive(Debug)]
pub struct HpaRuntime {
    pub started: Instant,
    pub desired: Option<u32>,
    pub current: Option<u32>,
    pub last_scale_time: Option<String>,
}

/// Per-workload (Deployment/StatefulSet) bookkeeping of the fake controller.
#[derive(Debug, Default)]
pub struct WorkloadRuntime {
    /// (generation, desired replicas) the last status was written for.
    pub observed: Option<(i64, u32)>,
    /// When the pods of `observed` count as ready.
    pub ready_at: Option<Instant>,
    pub ready: u32,
    /// Pods this workload created, by name.
    pub pods: Vec<String>,
    pub template_hash: String,
}

/// All mutable state, behind one mutex.
pub struct State {
    pub objects: BTreeMap<ObjKey, Value>,
    pub rv: u64,
    pub history: VecDeque<Arc<StoredEvent>>,
    pub history_limit: usize,
    /// Watches from a resourceVersion below this get 410 Gone.
    pub compacted_rv: u64,
    pub live: broadcast::Sender<Live>,
    pub uid_counter: u64,
    pub requests: Vec<RequestRecord>,
    pub status_history: Vec<StatusRecord>,
    pub hpas: HashMap<ObjKey, HpaRuntime>,
    pub workloads: HashMap<ObjKey, WorkloadRuntime>,
    /// Namespaces being terminated, and when they (and their content) vanish.
    pub terminating: Vec<(String, Instant)>,
    pub port_forwards: HashMap<(String, String), SocketAddr>,
    /// Per port of a pod, where its port-forward goes instead of `port_forwards`.
    pub port_forward_ports: HashMap<(String, String, u16), SocketAddr>,
    pub failure: Option<Failure>,
}

/// Now, as the API server writes timestamps (RFC 3339, whole seconds, UTC).
pub fn now_timestamp() -> String {
    let now = k8s_openapi::jiff::Timestamp::now();
    k8s_openapi::jiff::Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .to_string()
}

impl State {
    pub fn new(history_limit: usize) -> State {
        let (live, _) = broadcast::channel(4096);
        State {
            objects: BTreeMap::new(),
            rv: 1,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted_rv: 0,
            live,
            uid_counter: 0,
            requests: vec![],
            status_history: vec![],
            hpas: HashMap::new(),
            workloads: HashMap::new(),
            terminating: vec![],
            port_forwards: HashMap::new(),
            port_forward_ports: HashMap::new(),
            failure: None,
        }
    }

    fn next_uid(&mut self) -> String {
        self.uid_counter += 1;
        format!("d0ub1e00-0000-4000-8000-{:012x}", self.uid_counter)
    }

    /// Stores `object` under `key` with a fresh resourceVersion and records the event.
    pub fn commit(&mut self, key: ObjKey, mut object: Value, event_type: EventType) -> Value {
        self.rv += 1;
        let rv = self.rv;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let previous = match event_type {
            EventType::Deleted => self.objects.remove(&key),
            _ => self.objects.insert(key.clone(), object.clone()),
        };
        if event_type == EventType::Added && key.plural == "horizontalpodautoscalers" {
            self.hpas.insert(
                key.clone(),
                HpaRuntime {
                    started: Instant::now(),
                    desired: None,
                    current: None,
                    last_scale_time: None,
                },
            );
        }
        if event_type == EventType::Deleted {
            self.hpas.remove(&key);
        }
        let event = Arc::new(StoredEvent {
            rv,
            key,
            event_type,
            object: object.clone(),
            previous,
        });
        self.history.push_back(event.clone());
        while self.history.len() > self.history_limit {
            if let Some(evicted) = self.history.pop_front() {
                self.compacted_rv = evicted.rv;
            }
        }
        let _ = self.live.send(Live::Event(event));
        object
    }

    /// A throwaway copy holding what a write to `key` can see (the object and its
    /// namespace), for `dryRun=All`: the write happens there and is forgotten.
    pub fn scratch_for(&self, key: &ObjKey) -> State {
        let mut scratch = State::new(1);
        scratch.rv = self.rv;
        scratch.uid_counter = self.uid_counter;
        let namespace = namespace_key(&key.namespace);
        for k in [key, &namespace] {
            if let Some(object) = self.objects.get(k) {
                scratch.objects.insert(k.clone(), object.clone());
            }
        }
        scratch
    }

    /// Drops all history: every resourceVersion handed out so far becomes too old.
    pub fn compact(&mut self) {
        self.rv += 1;
        self.compacted_rv = self.rv;
        self.history.clear();
        let _ = self.live.send(Live::Reset);
    }

    pub fn get(&self, key: &ObjKey) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Objects of one type, in one namespace or all.
    pub fn list(&self, r: &ResourceType, namespace: Option<&str>) -> Vec<&Value> {
        let api_version = r.api_version();
        self.objects
            .iter()
            .filter(|(k, _)| k.api_version == api_version && k.plural == r.plural)
            .filter(|(k, _)| namespace.is_none_or(|ns| k.namespace == ns))
            .map(|(_, v)| v)
            .collect()
    }

    /// Refuses writes into a namespace that is missing or terminating.
    fn check_namespace(&self, r: &ResourceType, namespace: Option<&str>) -> Result<(), ApiError> {
        let Some(ns) = namespace.filter(|_| r.namespaced) else {
            return Ok(());
        };
        let key = namespace_key(ns);
        match self.objects.get(&key) {
            None => Err(ApiError {
                details: Some(json!({"name": ns, "kind": "namespaces"})),
                ..ApiError::new(404, "NotFound", format!("namespaces \"{ns}\" not found"))
            }),
            Some(obj) if obj.pointer("/status/phase") == Some(&json!("Terminating")) => {
                Err(ApiError::new(
                    403,
                    "Forbidden",
                    format!(
                        "{} is forbidden: unable to create new content in namespace {ns} \
                         because it is being terminated",
                        r.qualified_plural()
                    ),
                ))
            }
            Some(_) => Ok(()),
        }
    }

    /// Fills the metadata a created object gets, and defaults per kind.
    fn initialise(&mut self, r: &ResourceType, namespace: Option<&str>, object: &mut Value) {
        object["apiVersion"] = json!(r.api_version());
        object["kind"] = json!(r.kind);
        let uid = self.next_uid();
        let meta = metadata_mut(object);
        meta.insert("uid".into(), json!(uid));
        meta.insert("creationTimestamp".into(), json!(now_timestamp()));
        meta.insert("generation".into(), json!(1));
        if let Some(ns) = namespace.filter(|_| r.namespaced) {
            meta.insert("namespace".into(), json!(ns));
        }
        if r.plural == "namespaces" && r.group.is_empty() {
            let name = object["metadata"]["name"].clone();
            object["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
            object["spec"] = json!({"finalizers": ["kubernetes"]});
            object["status"] = json!({"phase": "Active"});
        }
    }

    /// `POST` create.
    pub fn create(
        &mut self,
        r: &ResourceType,
        namespace: Option<&str>,
        mut object: Value,
        manager: Option<&str>,
    ) -> Result<Value, ApiError> {
        check_type(r, &object)?;
        self.check_namespace(r, namespace)?;
        let name = match object.pointer("/metadata/name").and_then(Value::as_str) {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => match object
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
            {
                Some(prefix) => {
                    let name = format!("{prefix}{}", short_suffix(self.uid_counter + 1));
                    object["metadata"]["name"] = json!(name);
                    name
                }
                None => {
                    return Err(ApiError::invalid(format!(
                        "{} \"\" is invalid: metadata.name: Required value: name or \
                         generateName is required",
                        r.kind
                    )));
                }
            },
        };
        let key = ObjKey::new(r, namespace, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError {
                details: Some(json!({"name": name, "group": r.group, "kind": r.plural})),
                ..ApiError::new(
                    409,
                    "AlreadyExists",
                    format!("{} \"{name}\" already exists", r.qualified_plural()),
                )
            });
        }
        strip_system_metadata(&mut object);
        self.initialise(r, namespace, &mut object);
        if let Some(manager) = manager {
            let fields = fields_of(&without_identity(&object));
            set_managed_fields(&mut object, manager, "Update", r, fields);
        }
        Ok(self.commit(key, object, EventType::Added))
    }

    /// Server-side apply. Returns the object and whether it was created.
    pub fn apply(
        &mut self,
        r: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        mut applied: Value,
        manager: &str,
    ) -> Result<(Value, bool), ApiError> {
        check_type(r, &applied)?;
        match applied.pointer("/metadata/name").and_then(Value::as_str) {
            Some(n) if n == name => {}
            Some(n) => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            None => applied["metadata"]["name"] = json!(name),
        }
        if let (Some(ns), Some(body_ns)) = (
            namespace,
            applied
                .pointer("/metadata/namespace")
                .and_then(Value::as_str),
        ) && ns != body_ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on \
                 the request",
            ));
        }
        strip_system_metadata(&mut applied);
        if let Some(obj) = applied.as_object_mut() {
            obj.remove("status");
        }
        let fields = fields_of(&without_identity(&applied));
        let key = ObjKey::new(r, namespace, name);
        match self.objects.get(&key).cloned() {
            None => {
                self.check_namespace(r, namespace)?;
                let mut object = applied;
                self.initialise(r, namespace, &mut object);
                set_managed_fields(&mut object, manager, "Apply", r, fields);
                Ok((self.commit(key, object, EventType::Added), true))
            }
            Some(existing) => {
                let mut object = existing.clone();
                if let Some(previous) = owned_fields(&existing, manager, "Apply") {
                    remove_unowned(&mut object, &previous, &fields);
                }
                merge_into(&mut object, &applied);
                set_managed_fields(&mut object, manager, "Apply", r, fields);
                Ok((self.update(key, &existing, object), false))
            }
        }
    }

    /// Writes a changed object: generation bumps when anything but metadata/status changed;
    /// an unchanged object is not written (no new resourceVersion, no event).
    pub fn update(&mut self, key: ObjKey, existing: &Value, mut object: Value) -> Value {
        restore_system_metadata(existing, &mut object);
        if object == *existing {
            return object;
        }
        if spec_of(existing) != spec_of(&object) {
            let generation = existing
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            object["metadata"]["generation"] = json!(generation + 1);
        }
        self.commit(key, object, EventType::Modified)
    }

    /// `PATCH` with a JSON patch, merge patch, or (when `status_only`) on `/status`.
    pub fn patch(
        &mut self,
        r: &ResourceType,
        key: ObjKey,
        content_type: &str,
        body: &[u8],
    ) -> Result<Value, ApiError> {
        let existing = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(r, &key.name))?;
        let mut object = existing.clone();
        if content_type.starts_with("application/json-patch+json") {
            let patch: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut object, &patch).map_err(|e| ApiError::invalid(e.to_string()))?;
        } else if content_type.starts_with("application/merge-patch+json")
            || content_type.starts_with("application/strategic-merge-patch+json")
        {
            let patch: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("invalid merge patch: {e}")))?;
            json_patch::merge(&mut object, &patch);
        } else {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {content_type})"
                ),
            ));
        }
        Ok(self.update(key, &existing, object))
    }

    /// `PUT` replace.
    pub fn replace(
        &mut self,
        r: &ResourceType,
        key: ObjKey,
        body: Value,
    ) -> Result<Value, ApiError> {
        check_type(r, &body)?;
        let existing = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(r, &key.name))?;
        let mut object = body;
        if let Some(status) = existing.get("status") {
            object["status"] = status.clone();
        }
        Ok(self.update(key, &existing, object))
    }

    /// Replaces only `status` (what controllers and `/status` writes do).
    pub fn write_status(&mut self, key: &ObjKey, status: Value) -> Option<Value> {
        let existing = self.objects.get(key)?.clone();
        if existing.get("status") == Some(&status) {
            return None;
        }
        let mut object = existing;
        object["status"] = status;
        Some(self.commit(key.clone(), object, EventType::Modified))
    }

    /// Deletes one object now (no graceful period), and what it owns.
    pub fn remove(&mut self, key: &ObjKey) -> Option<Value> {
        let object = self.objects.get(key)?.clone();
        if let Some(runtime) = self.workloads.remove(key) {
            for pod in runtime.pods {
                let pod_key = pod_key(&key.namespace, &pod);
                self.remove(&pod_key);
            }
        }
        self.port_forwards
            .remove(&(key.namespace.clone(), key.name.clone()));
        self.port_forward_ports
            .retain(|(ns, pod, _), _| *ns != key.namespace || *pod != key.name);
        let mut deleted = object;
        deleted["metadata"]["deletionTimestamp"] = json!(now_timestamp());
        deleted["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        Some(self.commit(key.clone(), deleted, EventType::Deleted))
    }

    /// Starts terminating a namespace: phase `Terminating` now, gone at `until`.
    pub fn terminate_namespace(&mut self, name: &str, until: Instant) -> Option<Value> {
        let key = namespace_key(name);
        let mut object = self.objects.get(&key)?.clone();
        if object.pointer("/status/phase") == Some(&json!("Terminating")) {
            return Some(object);
        }
        object["metadata"]["deletionTimestamp"] = json!(now_timestamp());
        object["status"]["phase"] = json!("Terminating");
        self.terminating.push((name.to_string(), until));
        Some(self.commit(key, object, EventType::Modified))
    }

    /// Removes terminating namespaces whose time has come, content first.
    pub fn finish_terminations(&mut self, now: Instant) {
        let (due, pending): (Vec<_>, Vec<_>) =
            self.terminating.drain(..).partition(|(_, at)| *at <= now);
        self.terminating = pending;
        for (ns, _) in due {
            let content: Vec<ObjKey> = self
                .objects
                .keys()
                .filter(|k| k.namespace == ns)
                .cloned()
                .collect();
            for key in content {
                self.remove(&key);
            }
            self.remove(&namespace_key(&ns));
        }
    }

    pub fn record_status(&mut self, object: &Value) {
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        self.status_history.push(StatusRecord {
            kind,
            resource_version: object["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            status: object.get("status").cloned().unwrap_or(Value::Null),
        });
    }

    /// Creates a namespace directly (test setup), with labels; returns it.
    pub fn put_namespace(&mut self, name: &str, labels: &[(&str, &str)]) -> Value {
        let r = namespace_type();
        let key = namespace_key(name);
        let mut object = json!({"metadata": {"name": name, "labels": {}}});
        for (k, v) in labels {
            object["metadata"]["labels"][*k] = json!(v);
        }
        if let Some(existing) = self.objects.get(&key).cloned() {
            let mut updated = existing.clone();
            merge_into(&mut updated, &object);
            return self.update(key, &existing, updated);
        }
        self.initialise(r, None, &mut object);
        self.commit(key, object, EventType::Added)
    }
}

pub fn namespace_type() -> &'static ResourceType {
    resources::find_plural("v1", "namespaces").expect("namespaces are always served")
}

pub fn namespace_key(name: &str) -> ObjKey {
    ObjKey::new(namespace_type(), None, name)
}

pub fn pod_key(namespace: &str, name: &str) -> ObjKey {
    ObjKey {
        api_version: "v1".into(),
        plural: "pods".into(),
        namespace: namespace.into(),
        name: name.into(),
    }
}

/// Five characters like the ones `generateName` appends.
pub fn short_suffix(seed: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 7;
    (0..5)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

fn check_type(r: &ResourceType, object: &Value) -> Result<(), ApiError> {
    let kind = object.get("kind").and_then(Value::as_str);
    let api_version = object.get("apiVersion").and_then(Value::as_str);
    if kind.is_some_and(|k| k != r.kind) || api_version.is_some_and(|v| v != r.api_version()) {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({}) does not match the expected API version ({}), \
             or the kind ({}) does not match {}",
            api_version.unwrap_or_default(),
            r.api_version(),
            kind.unwrap_or_default(),
            r.kind
        )));
    }
    if !object.is_object() {
        return Err(ApiError::bad_request("the body is not a JSON object"));
    }
    Ok(())
}

fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    match object["metadata"].as_object_mut() {
        Some(meta) => meta,
        None => unreachable!("metadata was just made an object"),
    }
}

const SYSTEM_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

fn strip_system_metadata(object: &mut Value) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in SYSTEM_METADATA {
            meta.remove(*field);
        }
    }
}

/// Keeps the server-owned metadata (and the identity) of `existing` in `object`.
fn restore_system_metadata(existing: &Value, object: &mut Value) {
    for field in ["apiVersion", "kind"] {
        object[field] = existing[field].clone();
    }
    let meta = metadata_mut(object);
    for field in SYSTEM_METADATA.iter().copied().chain(["name", "namespace"]) {
        match existing["metadata"].get(field) {
            Some(value) if field != "managedFields" || !meta.contains_key(field) => {
                meta.insert(field.into(), value.clone());
            }
            Some(_) => {}
            None => {
                meta.remove(field);
            }
        }
    }
}

/// Everything but metadata and status: what a generation bump watches.
fn spec_of(object: &Value) -> Value {
    let mut rest = object.clone();
    if let Some(obj) = rest.as_object_mut() {
        for field in ["metadata", "status", "apiVersion", "kind"] {
            obj.remove(field);
        }
    }
    rest
}

/// The applied config without apiVersion, kind, metadata.name/namespace (not "owned").
fn without_identity(object: &Value) -> Value {
    let mut rest = object.clone();
    if let Some(obj) = rest.as_object_mut() {
        obj.remove("apiVersion");
        obj.remove("kind");
    }
    if let Some(meta) = rest.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("name");
        meta.remove("namespace");
        if meta.is_empty() {
            rest.as_object_mut().map(|o| o.remove("metadata"));
        }
    }
    rest
}

/// A FieldsV1 set (`{"f:spec":{"f:replicas":{}}}`) of every leaf in `value`;
/// arrays are atomic.
pub fn fields_of(value: &Value) -> Value {
    let mut set = Map::new();
    if let Some(obj) = value.as_object() {
        for (k, v) in obj {
            let child = match v {
                Value::Object(inner) if !inner.is_empty() => fields_of(v),
                _ => json!({}),
            };
            set.insert(format!("f:{k}"), child);
        }
    }
    Value::Object(set)
}

fn owned_fields(object: &Value, manager: &str, operation: &str) -> Option<Value> {
    object
        .pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .find(|e| e["manager"] == json!(manager) && e["operation"] == json!(operation))
        .map(|e| e["fieldsV1"].clone())
}

fn set_managed_fields(
    object: &mut Value,
    manager: &str,
    operation: &str,
    r: &ResourceType,
    fields: Value,
) {
    let meta = metadata_mut(object);
    let mut entries: Vec<Value> = meta
        .get("managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let unchanged = entries.iter().find(|e| {
        e["manager"] == json!(manager)
            && e["operation"] == json!(operation)
            && e["fieldsV1"] == fields
    });
    // Like the real server, the time moves only when the manager's field set changes.
    let time = unchanged.map_or_else(|| json!(now_timestamp()), |e| e["time"].clone());
    let entry = json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": r.api_version(),
        "time": time,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    });
    entries.retain(|e| !(e["manager"] == json!(manager) && e["operation"] == json!(operation)));
    entries.push(entry);
    meta.insert("managedFields".into(), Value::Array(entries));
}

/// Removes from `object` every field in `previous` (owned by the applier before) that the
/// new apply (`current`) no longer sets.
fn remove_unowned(object: &mut Value, previous: &Value, current: &Value) {
    let (Some(prev), Some(target)) = (previous.as_object(), object.as_object_mut()) else {
        return;
    };
    for (fkey, prev_child) in prev {
        let Some(field) = fkey.strip_prefix("f:") else {
            continue;
        };
        match current.get(fkey) {
            None => {
                target.remove(field);
            }
            Some(cur_child) => {
                if let Some(child) = target.get_mut(field) {
                    remove_unowned(child, prev_child, cur_child);
                }
            }
        }
    }
}

/// Deep merge: objects recursively, everything else replaced.
pub fn merge_into(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                match t.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        merge_into(existing, v)
                    }
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        _ => *target = patch.clone(),
    }
}
