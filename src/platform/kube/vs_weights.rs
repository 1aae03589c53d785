//! Canary weights on a cluster: the VirtualService's routes split between the canary's
//! two DestinationRule subsets get their weights set by JSON patch
//! (`/spec/http/N/route/M/weight`, guarded by a test of the resourceVersion), the
//! original weights kept in an annotation on the same object and restored from it: at
//! the run's end, on every exit path, and — after a SIGKILL — by `slo-check stack
//! clean` or the next run, exactly as faults are (`vs_faults`).

use kube::Client;
use kube::api::{Api, DynamicObject, Patch};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::FIELD_MANAGER;
use super::catalog::{Problem, timed};
use super::settings::KubeSettings;
use super::vs_faults::{restore_leftovers, virtual_services};
use super::vs_patch::{self, add, put_back, test_version};
use crate::platform::PlatformError;
use crate::target::{BoxFuture, TrafficSplit};

/// Holds what slo-check changed in a VirtualService: the split routes' original weights.
pub const ANNOTATION: &str = "slo-check.io/weights-original";

/// Attempts at a patch that lost a race with another writer.
const ATTEMPTS: usize = 4;

/// One HTTP route split between the subsets: its index in `spec.http`, and the indexes
/// of the stable and canary destinations in its `route`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitRoute {
    pub http: usize,
    pub stable: usize,
    pub canary: usize,
}

/// The routes of `vs` whose destinations are exactly the subsets `stable` and `canary`
/// (of one host). A route to one subset only, such as the header route to the canary,
/// is not split and keeps its destination. None at all is an error naming the
/// VirtualService and what it needs.
pub fn split_routes(vs: &Value, stable: &str, canary: &str) -> Result<Vec<SplitRoute>, String> {
    let name = vs["metadata"]["name"].as_str().unwrap_or("?");
    let routes = vs["spec"]["http"].as_array().cloned().unwrap_or_default();
    let mut found = Vec::new();
    for (i, http) in routes.iter().enumerate() {
        let Some(dests) = http["route"].as_array() else {
            continue;
        };
        let at = |subset: &str| {
            dests
                .iter()
                .position(|d| d["destination"]["subset"].as_str() == Some(subset))
        };
        if let (2, Some(s), Some(c)) = (dests.len(), at(stable), at(canary))
            && dests[0]["destination"]["host"] == dests[1]["destination"]["host"]
        {
            found.push(SplitRoute {
                http: i,
                stable: s,
                canary: c,
            });
        }
    }
    if found.is_empty() {
        return Err(format!(
            "VirtualService {name} has no route split between the subsets `{stable}` and `{canary}` (a route whose two destinations are those subsets of one host, with weights): deploy the stack with the canary component (stack/components/canary, e.g. --overlay kind-canary), or name the subsets the DestinationRule has in the scenario's canary section"
        ));
    }
    Ok(found)
}

/// The split routes' weights now: per route, stable's then canary's (null where unset).
fn current_weights(vs: &Value, routes: &[SplitRoute]) -> Vec<[Value; 2]> {
    routes
        .iter()
        .map(|r| {
            let route = &vs["spec"]["http"][r.http]["route"];
            [
                route[r.stable]["weight"].clone(),
                route[r.canary]["weight"].clone(),
            ]
        })
        .collect()
}

/// The original weights recorded in `vs`'s annotation, if slo-check left one.
pub fn recorded_original(vs: &Value) -> Option<Result<Record, String>> {
    let text = vs["metadata"]["annotations"][ANNOTATION].as_str()?;
    Some(serde_json::from_str::<Record>(text).map_err(|e| {
        format!("annotation {ANNOTATION} does not hold slo-check's record ({e}): {text}")
    }))
}

/// What the annotation holds: the split routes and their weights before slo-check.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub manager: String,
    pub routes: Vec<RecordedRoute>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecordedRoute {
    pub http: usize,
    pub stable: usize,
    pub canary: usize,
    /// Stable's and canary's weights before slo-check (null: unset).
    pub weights: [Value; 2],
}

impl Record {
    fn of(vs: &Value, routes: &[SplitRoute]) -> Record {
        Record {
            manager: FIELD_MANAGER.into(),
            routes: routes
                .iter()
                .zip(current_weights(vs, routes))
                .map(|(r, weights)| RecordedRoute {
                    http: r.http,
                    stable: r.stable,
                    canary: r.canary,
                    weights,
                })
                .collect(),
        }
    }
}

/// The patch that gives the canary `percent` % and the stable subset the rest on every
/// recorded route, keeping `record` in the annotation. Guarded by a test of the
/// resourceVersion, so a concurrent change makes it fail rather than clobber.
pub fn weight_patch(vs: &Value, record: &Record, percent: u8) -> json_patch::Patch {
    let mut ops = vec![test_version(vs)];
    let text = serde_json::to_string(record).expect("a record serializes");
    ops.extend(vs_patch::write_annotation(vs, ANNOTATION, text));
    let percent = u64::from(percent.min(100));
    for r in &record.routes {
        for (dest, weight) in [(r.stable, 100 - percent), (r.canary, percent)] {
            ops.push(add(
                &format!("/spec/http/{}/route/{dest}/weight", r.http),
                json!(weight),
            ));
        }
    }
    json_patch::Patch(ops)
}

/// The patch that puts the recorded weights back and drops the annotation. A route no
/// longer there (the object was edited since) is skipped.
pub fn restore_patch(vs: &Value, record: &Record) -> json_patch::Patch {
    let mut ops = vec![test_version(vs)];
    for r in &record.routes {
        let route = &vs["spec"]["http"][r.http]["route"];
        for (dest, weight) in [(r.stable, &r.weights[0]), (r.canary, &r.weights[1])] {
            if route[dest].is_null() {
                continue;
            }
            let path = format!("/spec/http/{}/route/{dest}/weight", r.http);
            ops.extend(put_back(&path, weight, !route[dest]["weight"].is_null()));
        }
    }
    ops.extend(vs_patch::drop_annotation(vs, ANNOTATION));
    json_patch::Patch(ops)
}

/// Shifts the canary's weight in one VirtualService; implements `TrafficSplit`.
pub struct VirtualServiceSplit {
    api: Api<DynamicObject>,
    name: String,
    namespace: String,
    stable: String,
    canary: String,
    /// The weight last set, for `describe` (none yet: the stack's own).
    weight: Mutex<Option<u8>>,
}

impl VirtualServiceSplit {
    /// The split of `settings`' VirtualService between the subsets `stable` and
    /// `canary`. Checks now, before any load, that the object has a route to split.
    pub async fn new(
        client: Client,
        settings: &KubeSettings,
        stable: &str,
        canary: &str,
    ) -> Result<Self, PlatformError> {
        let split = VirtualServiceSplit {
            api: virtual_services(&client, &settings.namespace),
            name: settings.refs.virtual_service.clone(),
            namespace: settings.namespace.clone(),
            stable: stable.into(),
            canary: canary.into(),
            weight: Mutex::new(None),
        };
        let vs = split.read().await.map_err(PlatformError::Infra)?;
        split_routes(&vs, stable, canary).map_err(|e| {
            PlatformError::Usage(format!("canary on namespace {}: {e}", settings.namespace))
        })?;
        Ok(split)
    }

    async fn read(&self) -> Result<Value, String> {
        match timed(self.api.get(&self.name)).await {
            Ok(o) => serde_json::to_value(o).map_err(|e| e.to_string()),
            Err(e) => Err(format!(
                "cannot read VirtualService {}/{}: {e}",
                self.namespace, self.name
            )),
        }
    }

    /// Set the weights (`Some`), or restore the recorded originals (`None`).
    async fn write(&self, percent: Option<u8>) -> anyhow::Result<()> {
        let what = format!("VirtualService {}/{}", self.namespace, self.name);
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            let vs = self.read().await.map_err(anyhow::Error::msg)?;
            let recorded = recorded_original(&vs)
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let patch = match (percent, recorded) {
                (None, None) => return Ok(()), // nothing of ours in it
                (None, Some(record)) => restore_patch(&vs, &record),
                (Some(p), Some(record)) => weight_patch(&vs, &record, p),
                (Some(p), None) => {
                    let routes = split_routes(&vs, &self.stable, &self.canary)
                        .map_err(anyhow::Error::msg)?;
                    weight_patch(&vs, &Record::of(&vs, &routes), p)
                }
            };
            match timed(
                self.api
                    .patch(&self.name, &vs_patch::params(), &Patch::Json::<()>(patch)),
            )
            .await
            {
                Ok(_) => return Ok(()),
                // 409/422: the object changed under us (the resourceVersion test): read it again.
                Err(Problem::Api(kube::Error::Api(s))) if s.code == 409 || s.code == 422 => {
                    last = s.message.clone();
                }
                Err(e) => anyhow::bail!("cannot patch {what}: {e}"),
            }
        }
        anyhow::bail!("cannot patch {what}: it kept changing under slo-check ({last})")
    }

    /// Put the stack's own weights back (the end of the run, an error, a signal).
    pub async fn restore(&self) -> anyhow::Result<()> {
        self.write(None).await
    }
}

impl TrafficSplit for VirtualServiceSplit {
    fn set_canary_weight(&self, percent: u8) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            self.write(Some(percent)).await?;
            *self.weight.lock().await = Some(percent);
            Ok(())
        })
    }

    fn describe(&self) -> String {
        format!(
            "VirtualService {}/{} (subsets {} and {}, by JSON patch of the route weights)",
            self.namespace, self.name, self.stable, self.canary
        )
    }
}

/// Restore every VirtualService in the namespace that still holds slo-check's weights
/// annotation (a run killed during a canary). Returns the names restored.
pub async fn clean_leftovers(
    client: &Client,
    settings: &KubeSettings,
) -> Result<Vec<String>, PlatformError> {
    restore_leftovers(client, settings, "its canary weights shifted", |vs| {
        recorded_original(vs).map(|r| r.map(|r| restore_patch(vs, &r)))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(subset: &str, weight: Option<u64>) -> Value {
        let mut d =
            json!({"destination": {"host": "svc", "subset": subset, "port": {"number": 80}}});
        if let Some(w) = weight {
            d["weight"] = json!(w);
        }
        d
    }

    /// The canary component's VirtualService: the header route, then the split one.
    fn vs() -> Value {
        json!({"metadata": {"name": "vs", "resourceVersion": "7"}, "spec": {"http": [
            {"name": "canary-user", "match": [{"headers": {"canary-user": {"exact": "true"}}}],
             "route": [dest("canary", None)]},
            {"name": "agent", "route": [dest("stable", Some(100)), dest("canary", Some(0))]},
        ]}})
    }

    #[test]
    fn only_the_route_between_both_subsets_is_split() {
        assert_eq!(
            split_routes(&vs(), "stable", "canary").unwrap(),
            vec![SplitRoute {
                http: 1,
                stable: 0,
                canary: 1
            }]
        );
        let err = split_routes(&vs(), "v1", "v2").unwrap_err();
        assert!(
            err.contains("VirtualService vs")
                && err.contains("`v1` and `v2`")
                && err.contains("kind-canary"),
            "{err}"
        );
    }

    #[test]
    fn weights_are_set_then_restored_to_the_original_object() {
        let before = vs();
        let routes = split_routes(&before, "stable", "canary").unwrap();
        let record = Record::of(&before, &routes);
        let mut shifted = before.clone();
        json_patch::patch(&mut shifted, &weight_patch(&before, &record, 25)).unwrap();
        let route = &shifted["spec"]["http"][1]["route"];
        assert_eq!(
            (&route[0]["weight"], &route[1]["weight"]),
            (&json!(75), &json!(25))
        );
        // The header route is untouched.
        assert_eq!(shifted["spec"]["http"][0], before["spec"]["http"][0]);
        assert_eq!(recorded_original(&shifted).unwrap().unwrap(), record);
        // A later step keeps the first record, not the shifted weights.
        let mut again = shifted.clone();
        json_patch::patch(&mut again, &weight_patch(&shifted, &record, 100)).unwrap();
        assert_eq!(again["spec"]["http"][1]["route"][0]["weight"], 0);
        assert_eq!(recorded_original(&again).unwrap().unwrap(), record);
        let mut restored = again.clone();
        json_patch::patch(&mut restored, &restore_patch(&again, &record)).unwrap();
        let mut expected = before.clone();
        expected["metadata"]["annotations"] = json!({});
        assert_eq!(restored, expected);
    }

    #[test]
    fn unset_weights_are_unset_again() {
        let mut before = vs();
        before["spec"]["http"][1]["route"] = json!([dest("canary", None), dest("stable", None)]);
        let routes = split_routes(&before, "stable", "canary").unwrap();
        assert_eq!((routes[0].stable, routes[0].canary), (1, 0));
        let record = Record::of(&before, &routes);
        let mut shifted = before.clone();
        json_patch::patch(&mut shifted, &weight_patch(&before, &record, 10)).unwrap();
        assert_eq!(shifted["spec"]["http"][1]["route"][1]["weight"], 90);
        let mut restored = shifted.clone();
        json_patch::patch(&mut restored, &restore_patch(&shifted, &record)).unwrap();
        assert!(
            restored["spec"]["http"][1]["route"][0]
                .get("weight")
                .is_none()
        );
        assert!(
            restored["spec"]["http"][1]["route"][1]
                .get("weight")
                .is_none()
        );
    }

    #[test]
    fn a_concurrent_change_fails_the_patch() {
        let before = vs();
        let record = Record::of(&before, &split_routes(&before, "stable", "canary").unwrap());
        let mut changed = before.clone();
        changed["metadata"]["resourceVersion"] = json!("8");
        assert!(json_patch::patch(&mut changed, &weight_patch(&before, &record, 50)).is_err());
    }

    #[test]
    fn an_annotation_that_is_not_ours_is_named() {
        let mut v = vs();
        v["metadata"]["annotations"] = json!({ANNOTATION: "nonsense"});
        let err = recorded_original(&v).unwrap().unwrap_err();
        assert!(
            err.contains(ANNOTATION) && err.contains("nonsense"),
            "{err}"
        );
    }
}
