//! Istio faults on a cluster: the scenario's faults written into every HTTP route of the
//! VirtualService by JSON patch (`/spec/http/N/fault`), the routes' original faults kept
//! in an annotation on the same object, and restored from it: at the fault's end, on
//! every exit path, and — after a SIGKILL — by `slo-check stack clean` or the next run.
//! When the traffic goes through the gateway, each change is then awaited in the
//! gateway's Envoy (`envoy::EnvoyAdmin::wait_until_held`), so the reports say how long
//! the data plane took to hold it after the API server did.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::FIELD_MANAGER;
use super::catalog::{Problem, retrying, timed};
use super::envoy::{self, EnvoyAdmin};
use super::settings::KubeSettings;
use super::vs_patch::{self, add, put_back, test_version};
use crate::platform::PlatformError;
use crate::scenario::Fault;
use crate::target::{BoxFuture, DataPlane, FaultChange, FaultInjector};

/// Holds what slo-check changed in a VirtualService: the routes' original `fault` values.
pub const ANNOTATION: &str = "slo-check.io/fault-original";

/// The namespace label that allows fault injection.
pub const OPT_IN_LABEL: &str = "slo-check.io/faults";

/// Attempts at a patch that lost a race with another writer.
const ATTEMPTS: usize = 4;

/// How long after the API server took a change the gateway's Envoy is watched for it.
pub const PROPAGATION_BOUND: Duration = Duration::from_secs(5);

/// The VirtualService resource (networking.istio.io/v1).
pub fn virtual_services(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("networking.istio.io", "v1", "VirtualService");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "virtualservices");
    Api::namespaced_with(client.clone(), namespace, &ar)
}

/// Istio's HTTPFaultInjection for the faults active now: the delay of the latest one
/// with a delay, the abort of the latest one with an abort (a route holds one of each).
pub fn istio_fault(active: &[Fault]) -> Value {
    let mut fault = serde_json::Map::new();
    if let Some(d) = active.iter().rev().find_map(|f| f.delay.as_ref()) {
        fault.insert(
            "delay".into(),
            json!({ "percentage": { "value": d.percent }, "fixedDelay": go_duration(d.fixed_delay) }),
        );
    }
    if let Some(a) = active.iter().rev().find_map(|f| f.abort.as_ref()) {
        fault.insert(
            "abort".into(),
            json!({ "percentage": { "value": a.percent }, "httpStatus": a.http_status }),
        );
    }
    Value::Object(fault)
}

/// A duration as Istio (Go's time.ParseDuration) reads it, to the millisecond (Istio's floor).
fn go_duration(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

/// The patch that writes `fault` into every route of `vs`, recording `original` (each
/// route's fault before slo-check touched it) in the annotation. Guarded by a test of
/// the resourceVersion, so a concurrent change makes it fail rather than clobber.
pub fn inject_patch(vs: &Value, original: &[Value], fault: &Value) -> json_patch::Patch {
    let mut ops = vec![test_version(vs)];
    let record = json!({ "manager": FIELD_MANAGER, "routes": original });
    ops.extend(vs_patch::write_annotation(
        vs,
        ANNOTATION,
        record.to_string(),
    ));
    for i in 0..original.len() {
        ops.push(add(&format!("/spec/http/{i}/fault"), fault.clone()));
    }
    json_patch::Patch(ops)
}

/// The patch that puts the routes' original faults back and drops the annotation.
pub fn restore_patch(vs: &Value, original: &[Value]) -> json_patch::Patch {
    let mut ops = vec![test_version(vs)];
    let routes = vs["spec"]["http"].as_array().map(Vec::len).unwrap_or(0);
    for (i, fault) in original.iter().enumerate().take(routes) {
        let present = !vs["spec"]["http"][i]["fault"].is_null();
        ops.extend(put_back(&format!("/spec/http/{i}/fault"), fault, present));
    }
    ops.extend(vs_patch::drop_annotation(vs, ANNOTATION));
    json_patch::Patch(ops)
}

/// The routes' original faults recorded in `vs`'s annotation, if slo-check left one.
pub fn recorded_original(vs: &Value) -> Option<Result<Vec<Value>, String>> {
    let text = vs["metadata"]["annotations"][ANNOTATION].as_str()?;
    Some(
        serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| v["routes"].as_array().cloned())
            .ok_or_else(|| {
                format!("annotation {ANNOTATION} does not hold slo-check's record: {text}")
            }),
    )
}

/// The routes' faults now (null where a route has none).
fn current_faults(vs: &Value) -> Result<Vec<Value>, String> {
    let routes = vs["spec"]["http"]
        .as_array()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            format!(
                "VirtualService {} has no spec.http routes to inject a fault into",
                vs["metadata"]["name"].as_str().unwrap_or("?")
            )
        })?;
    Ok(routes.iter().map(|r| r["fault"].clone()).collect())
}

/// Injects the scenario's faults into one VirtualService; implements `FaultInjector`.
pub struct VirtualServiceFaults {
    api: Api<DynamicObject>,
    name: String,
    namespace: String,
    state: Mutex<Vec<Fault>>,
    /// The gateway's Envoy, when the traffic goes through it: each change is awaited there.
    envoy: Option<Arc<EnvoyAdmin>>,
}

/// A patch the API server took: when, and the object as it answered.
struct Written {
    accepted_at: Instant,
    vs: Value,
}

impl VirtualServiceFaults {
    pub fn new(client: Client, settings: &KubeSettings, envoy: Option<Arc<EnvoyAdmin>>) -> Self {
        VirtualServiceFaults {
            api: virtual_services(&client, &settings.namespace),
            name: settings.refs.virtual_service.clone(),
            namespace: settings.namespace.clone(),
            state: Mutex::new(Vec::new()),
            envoy,
        }
    }

    /// The change as the data plane took it: awaited in the gateway's Envoy, when there
    /// is one to look at. `None` (nothing was written) is taken now, with nothing to see.
    async fn observe(&self, written: Option<Written>) -> FaultChange {
        let Some(Written { accepted_at, vs }) = written else {
            return FaultChange::unobserved_now();
        };
        let unobserved = FaultChange {
            accepted_at,
            data_plane: DataPlane::NotObserved,
        };
        let Some(admin) = &self.envoy else {
            return unobserved;
        };
        let expected = match envoy::expected_routes(&vs) {
            Ok(e) => e,
            Err(e) => {
                eprintln!(
                    "warning: VirtualService {}/{}: {e}; its propagation to Envoy is not observed",
                    self.namespace, self.name
                );
                return unobserved;
            }
        };
        let config = envoy::istio_config(&self.namespace, &self.name);
        FaultChange {
            accepted_at,
            data_plane: admin
                .wait_until_held(&config, &expected, accepted_at, PROPAGATION_BOUND)
                .await,
        }
    }

    /// Write the active faults (or restore the original when none is active); the
    /// patched object, or `None` when there was nothing to write.
    async fn write(&self, active: &[Fault]) -> anyhow::Result<Option<Written>> {
        let what = format!("VirtualService {}/{}", self.namespace, self.name);
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            let vs = match timed(self.api.get(&self.name)).await {
                Ok(o) => serde_json::to_value(o)?,
                Err(e) => anyhow::bail!("cannot read {what}: {e}"),
            };
            let patch = if active.is_empty() {
                match recorded_original(&vs) {
                    None => return Ok(None), // nothing of ours in it
                    Some(original) => restore_patch(&vs, &original.map_err(anyhow::Error::msg)?),
                }
            } else {
                let original = match recorded_original(&vs) {
                    Some(o) => o.map_err(anyhow::Error::msg)?,
                    None => current_faults(&vs).map_err(anyhow::Error::msg)?,
                };
                inject_patch(&vs, &original, &istio_fault(active))
            };
            let params = vs_patch::params();
            match timed(
                self.api
                    .patch(&self.name, &params, &Patch::Json::<()>(patch)),
            )
            .await
            {
                // The patch is in: nothing after it may turn it into an error (an
                // unreadable answer only leaves the data plane unobserved).
                Ok(o) => {
                    return Ok(Some(Written {
                        accepted_at: Instant::now(),
                        vs: serde_json::to_value(o).unwrap_or_default(),
                    }));
                }
                // 409/422: the object changed under us (the resourceVersion test): read it again.
                Err(Problem::Api(kube::Error::Api(s))) if s.code == 409 || s.code == 422 => {
                    last = s.message.clone();
                }
                Err(e) => anyhow::bail!("cannot patch {what}: {e}"),
            }
        }
        anyhow::bail!("cannot patch {what}: it kept changing under slo-check ({last})")
    }

    /// Remove every fault slo-check applied (the end of the run, an error, a signal).
    pub async fn restore_all(&self) -> anyhow::Result<()> {
        let mut active = self.state.lock().await;
        active.clear();
        self.write(&active).await.map(drop)
    }
}

/// Both calls patch under the state's lock, then await the data plane without it.
impl FaultInjector for VirtualServiceFaults {
    fn apply<'a>(&'a self, fault: &'a Fault) -> BoxFuture<'a, anyhow::Result<FaultChange>> {
        Box::pin(async move {
            let written = {
                let mut active = self.state.lock().await;
                active.push(fault.clone());
                let written = self.write(&active).await;
                if written.is_err() {
                    active.retain(|f| f.name != fault.name);
                }
                written?
            };
            Ok(self.observe(written).await)
        })
    }

    fn revert<'a>(&'a self, fault: &'a Fault) -> BoxFuture<'a, anyhow::Result<FaultChange>> {
        Box::pin(async move {
            let written = {
                let mut active = self.state.lock().await;
                let before = active.clone();
                active.retain(|f| f.name != fault.name);
                let written = self.write(&active).await;
                if written.is_err() {
                    *active = before;
                }
                written?
            };
            Ok(self.observe(written).await)
        })
    }
}

/// Faults need the namespace's opt-in label, or `--allow-faults`.
pub async fn check_opt_in(client: &Client, settings: &KubeSettings) -> Result<(), PlatformError> {
    if settings.allow_faults {
        return Ok(());
    }
    let ns = &settings.namespace;
    let api: Api<Namespace> = Api::all(client.clone());
    let found = timed(api.get_opt(ns))
        .await
        .map_err(|e| PlatformError::Infra(format!("cannot read namespace {ns}: {e}")))?;
    let allowed = found
        .as_ref()
        .and_then(|n| n.metadata.labels.as_ref())
        .and_then(|l| l.get(OPT_IN_LABEL))
        .is_some_and(|v| v == "allowed");
    if allowed {
        return Ok(());
    }
    let state = if found.is_some() {
        format!("namespace {ns} does not carry the label {OPT_IN_LABEL}=allowed")
    } else {
        format!("namespace {ns} does not exist yet, so it carries no {OPT_IN_LABEL}=allowed label")
    };
    Err(PlatformError::Usage(format!(
        "the scenario injects faults, and {state}: faults are refused unless the namespace opts in (`kubectl create namespace {ns}; kubectl label namespace {ns} {OPT_IN_LABEL}=allowed`) or you pass --allow-faults"
    )))
}

/// Restore every VirtualService in the namespace that still holds slo-check's annotation
/// (a run killed inside a fault window). Returns the names restored.
pub async fn clean_leftovers(
    client: &Client,
    settings: &KubeSettings,
) -> Result<Vec<String>, PlatformError> {
    restore_leftovers(client, settings, "an injected fault in it", |vs| {
        recorded_original(vs).map(|o| o.map(|o| restore_patch(vs, &o)))
    })
    .await
}

/// Patch back every VirtualService in the namespace for which `restore` finds slo-check's
/// record (`None`: nothing of ours; an error: a record that is not ours to read), saying
/// each, with `left` saying what an earlier run had left (e.g. `an injected fault in it`).
/// Returns the names restored.
pub async fn restore_leftovers(
    client: &Client,
    settings: &KubeSettings,
    left: &str,
    restore: impl Fn(&Value) -> Option<Result<json_patch::Patch, String>>,
) -> Result<Vec<String>, PlatformError> {
    let ns = &settings.namespace;
    let api = virtual_services(client, ns);
    let all = ListParams::default();
    let list = match retrying(|| api.list(&all)).await {
        Ok(l) => l,
        Err(e) if e.is_not_found() => return Ok(Vec::new()),
        Err(e) => {
            return Err(PlatformError::Infra(format!(
                "cannot list VirtualServices in namespace {ns} to look for what an earlier run left ({left}): {e}"
            )));
        }
    };
    let params = vs_patch::params();
    let mut restored = Vec::new();
    for item in list.items {
        let Some(name) = item.metadata.name.clone() else {
            continue;
        };
        let vs = serde_json::to_value(&item).unwrap_or_default();
        let Some(patch) = restore(&vs) else {
            continue;
        };
        let patch = Patch::Json::<()>(patch.map_err(PlatformError::Infra)?);
        retrying(|| api.patch(&name, &params, &patch))
            .await
            .map_err(|e| {
                PlatformError::Infra(format!(
                    "cannot restore VirtualService {ns}/{name}, where an earlier run had left {left}: {e}"
                ))
            })?;
        settings.say(&format!(
            "kube: restored VirtualService {ns}/{name}: an earlier run (killed?) had left {left}"
        ));
        restored.push(name);
    }
    Ok(restored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Abort, Delay};

    fn fault(name: &str, delay: Option<u64>, abort: Option<u16>) -> Fault {
        Fault {
            name: name.into(),
            start: Duration::ZERO,
            duration: Duration::from_secs(1),
            delay: delay.map(|ms| Delay {
                percent: 50.0,
                fixed_delay: Duration::from_millis(ms),
            }),
            abort: abort.map(|s| Abort {
                percent: 1.5,
                http_status: s,
            }),
        }
    }

    fn vs(routes: Value) -> Value {
        json!({"metadata": {"name": "vs", "resourceVersion": "7"}, "spec": {"http": routes}})
    }

    #[test]
    fn the_latest_delay_and_abort_win() {
        let f = istio_fault(&[
            fault("a", Some(2000), Some(503)),
            fault("b", Some(250), None),
        ]);
        assert_eq!(
            f,
            json!({"delay": {"percentage": {"value": 50.0}, "fixedDelay": "250ms"},
                   "abort": {"percentage": {"value": 1.5}, "httpStatus": 503}})
        );
    }

    #[test]
    fn inject_then_restore_gives_back_the_original_object() {
        let before = vs(
            json!([{"name": "a", "fault": {"abort": {"percentage": {"value": 1.0}, "httpStatus": 500}}}, {"name": "b"}]),
        );
        let original = current_faults(&before).unwrap();
        let mut injected = before.clone();
        json_patch::patch(
            &mut injected,
            &inject_patch(
                &before,
                &original,
                &istio_fault(&[fault("x", None, Some(503))]),
            ),
        )
        .unwrap();
        assert_eq!(
            injected["spec"]["http"][0]["fault"]["abort"]["httpStatus"],
            503
        );
        assert_eq!(
            injected["spec"]["http"][1]["fault"]["abort"]["httpStatus"],
            503
        );
        assert_eq!(recorded_original(&injected).unwrap().unwrap(), original);
        let mut restored = injected.clone();
        json_patch::patch(&mut restored, &restore_patch(&injected, &original)).unwrap();
        let mut expected = before.clone();
        expected["metadata"]["annotations"] = json!({});
        assert_eq!(restored, expected);
    }

    #[test]
    fn a_concurrent_change_fails_the_patch() {
        let before = vs(json!([{"name": "a"}]));
        let patch = inject_patch(
            &before,
            &[Value::Null],
            &istio_fault(&[fault("x", Some(5), None)]),
        );
        let mut changed = before.clone();
        changed["metadata"]["resourceVersion"] = json!("8");
        assert!(json_patch::patch(&mut changed, &patch).is_err());
    }

    #[test]
    fn a_virtual_service_without_routes_is_named() {
        let err = current_faults(&vs(json!([]))).unwrap_err();
        assert!(
            err.contains("VirtualService vs") && err.contains("spec.http"),
            "{err}"
        );
    }
}
