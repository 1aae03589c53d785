//! The fake controllers: Deployment/StatefulSet status and pods, the scripted HPA, and
//! namespace termination. One `reconcile` pass runs under the state lock every tick.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::Instant;

use serde_json::{Value, json};

use super::DoubleOptions;
use super::store::{EventType, ObjKey, State, now_timestamp, pod_key, short_suffix};

const WORKLOADS: &[(&str, &str)] = &[("apps/v1", "deployments"), ("apps/v1", "statefulsets")];

/// One pass of every controller.
pub fn reconcile(state: &mut State, options: &DoubleOptions, now: Instant) {
    state.finish_terminations(now);
    reconcile_hpas(state, options, now);
    reconcile_workloads(state, options, now);
}

fn keys_of(state: &State, api_version: &str, plural: &str) -> Vec<ObjKey> {
    state
        .objects
        .keys()
        .filter(|k| k.api_version == api_version && k.plural == plural)
        .cloned()
        .collect()
}

fn condition(kind: &str, status: bool, reason: &str, message: &str, now: &str) -> Value {
    json!({
        "type": kind,
        "status": if status { "True" } else { "False" },
        "lastTransitionTime": now,
        "lastUpdateTime": now,
        "reason": reason,
        "message": message,
    })
}

// ------------------------------------------------------------------ HPA

/// HPA conditions carry no lastUpdateTime.
fn hpa_condition(kind: &str, status: bool, reason: &str, message: &str, now: &str) -> Value {
    let mut c = condition(kind, status, reason, message, now);
    if let Some(obj) = c.as_object_mut() {
        obj.remove("lastUpdateTime");
    }
    c
}

/// The desired replicas the script says for an HPA started at `started`.
fn scripted_desired(options: &DoubleOptions, started: Instant, now: Instant) -> Option<u32> {
    let elapsed = now.saturating_duration_since(started);
    options
        .hpa_script
        .iter()
        .filter(|(offset, _)| *offset <= elapsed)
        .max_by_key(|(offset, _)| *offset)
        .map(|(_, desired)| *desired)
}

fn min_replicas(hpa: &Value) -> u32 {
    hpa.pointer("/spec/minReplicas")
        .and_then(Value::as_u64)
        .map_or(1, |n| n as u32)
}

/// The workload an HPA scales.
fn hpa_target(hpa_key: &ObjKey, hpa: &Value) -> Option<ObjKey> {
    let target = hpa.pointer("/spec/scaleTargetRef")?;
    let plural = match target["kind"].as_str()? {
        "Deployment" => "deployments",
        "StatefulSet" => "statefulsets",
        _ => return None,
    };
    Some(ObjKey {
        api_version: target["apiVersion"]
            .as_str()
            .unwrap_or("apps/v1")
            .to_string(),
        plural: plural.to_string(),
        namespace: hpa_key.namespace.clone(),
        name: target["name"].as_str()?.to_string(),
    })
}

fn reconcile_hpas(state: &mut State, options: &DoubleOptions, now: Instant) {
    for key in keys_of(state, "autoscaling/v2", "horizontalpodautoscalers") {
        let Some(hpa) = state.get(&key).cloned() else {
            continue;
        };
        let started = state.hpas.get(&key).map_or(now, |h| h.started);
        let desired = scripted_desired(options, started, now).unwrap_or_else(|| min_replicas(&hpa));
        let current = hpa_target(&key, &hpa)
            .and_then(|t| state.get(&t))
            .and_then(|w| w.pointer("/status/replicas"))
            .and_then(Value::as_u64)
            .map_or(0, |n| n as u32);
        let Some(runtime) = state.hpas.get_mut(&key) else {
            continue;
        };
        if runtime.desired == Some(desired) && runtime.current == Some(current) {
            continue;
        }
        let stamp = now_timestamp();
        if runtime.desired != Some(desired) {
            runtime.last_scale_time = Some(stamp.clone());
        }
        runtime.desired = Some(desired);
        runtime.current = Some(current);
        let status = json!({
            "currentReplicas": current,
            "desiredReplicas": desired,
            "lastScaleTime": runtime.last_scale_time,
            "currentMetrics": [],
            "conditions": [
                hpa_condition("AbleToScale", true, "ReadyForNewScale",
                    "recommended size matches current size", &stamp),
                hpa_condition("ScalingActive", true, "ValidMetricFound",
                    "the HPA was able to successfully calculate a replica count", &stamp),
                hpa_condition("ScalingLimited", false, "DesiredWithinRange",
                    "the desired count is within the acceptable range", &stamp),
            ],
        });
        if let Some(written) = state.write_status(&key, status) {
            state.record_status(&written);
        }
    }
}

// ------------------------------------------------------------------ workloads

/// Replicas a workload should run: spec, else its HPA's desired, else the HPA's min, else 1.
fn desired_replicas(state: &State, key: &ObjKey, workload: &Value) -> u32 {
    if let Some(n) = workload.pointer("/spec/replicas").and_then(Value::as_u64) {
        return n as u32;
    }
    for hpa_key in keys_of(state, "autoscaling/v2", "horizontalpodautoscalers") {
        let Some(hpa) = state.get(&hpa_key) else {
            continue;
        };
        if hpa_target(&hpa_key, hpa).as_ref() != Some(key) {
            continue;
        }
        return state
            .hpas
            .get(&hpa_key)
            .and_then(|h| h.desired)
            .unwrap_or_else(|| min_replicas(hpa));
    }
    1
}

fn template_hash(workload: &Value) -> String {
    let mut hasher = DefaultHasher::new();
    workload
        .pointer("/spec/template")
        .map(Value::to_string)
        .unwrap_or_default()
        .hash(&mut hasher);
    format!("{:010x}", hasher.finish() & 0xff_ffff_ffff)
        .chars()
        .map(|c| match c {
            '0'..='9' => c,
            _ => (b'b' + (c as u8 - b'a')) as char,
        })
        .collect()
}

fn reconcile_workloads(state: &mut State, options: &DoubleOptions, now: Instant) {
    let keys: Vec<ObjKey> = WORKLOADS
        .iter()
        .flat_map(|(v, p)| keys_of(state, v, p))
        .collect();
    state.workloads.retain(|k, _| state.objects.contains_key(k));
    for key in keys {
        reconcile_workload(state, options, now, &key);
    }
}

fn reconcile_workload(state: &mut State, options: &DoubleOptions, now: Instant, key: &ObjKey) {
    let Some(workload) = state.get(key).cloned() else {
        return;
    };
    let generation = workload
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let desired = desired_replicas(state, key, &workload);
    let runtime = state.workloads.entry(key.clone()).or_default();
    if runtime.observed != Some((generation, desired)) {
        let generation_changed = runtime.observed.is_some_and(|(g, _)| g != generation);
        let first = runtime.observed.is_none();
        runtime.observed = Some((generation, desired));
        runtime.ready_at = Some(now + options.ready_after);
        let ready = if generation_changed || first {
            0
        } else {
            runtime.ready.min(desired)
        };
        runtime.ready = ready;
        let updated = if generation_changed { 0 } else { desired };
        let status = progressing_status(key, generation, desired, updated, ready);
        write_workload_status(state, key, status);
    }
    let Some(runtime) = state.workloads.get_mut(key) else {
        return;
    };
    if runtime.ready_at.is_none() {
        let before = runtime.pods.len();
        runtime
            .pods
            .retain(|p| state.objects.contains_key(&pod_key(&key.namespace, p)));
        if runtime.pods.len() < before {
            // Pods were deleted behind the controller's back: ready drops until
            // replacements are ready, like a ReplicaSet recreating them.
            runtime.ready = runtime.pods.len() as u32;
            runtime.ready_at = Some(now + options.ready_after);
            let status = progressing_status(key, generation, desired, desired, runtime.ready);
            write_workload_status(state, key, status);
        }
    }
    let Some(runtime) = state.workloads.get_mut(key) else {
        return;
    };
    if runtime.ready_at.is_some_and(|at| at <= now) {
        runtime.ready_at = None;
        runtime.ready = desired;
        sync_pods(state, key, &workload, desired);
        let status = complete_status(key, generation, desired);
        write_workload_status(state, key, status);
    }
}

fn write_workload_status(state: &mut State, key: &ObjKey, status: Value) {
    if let Some(written) = state.write_status(key, status) {
        state.record_status(&written);
    }
}

/// The status right after the controller sees a new generation or replica count.
fn progressing_status(
    key: &ObjKey,
    generation: i64,
    desired: u32,
    updated: u32,
    ready: u32,
) -> Value {
    let stamp = now_timestamp();
    if key.plural == "statefulsets" {
        return json!({
            "observedGeneration": generation,
            "replicas": desired,
            "readyReplicas": ready,
            "currentReplicas": updated,
            "updatedReplicas": updated,
            "availableReplicas": ready,
            "collisionCount": 0,
        });
    }
    json!({
        "observedGeneration": generation,
        "replicas": desired,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": desired.saturating_sub(ready),
        "conditions": [
            condition("Available", ready > 0 || desired == 0, "MinimumReplicasAvailable",
                "Deployment has minimum availability.", &stamp),
            condition("Progressing", true, "ReplicaSetUpdated",
                &format!("ReplicaSet \"{}\" is progressing.", key.name), &stamp),
        ],
    })
}

/// The status once every desired pod is ready.
fn complete_status(key: &ObjKey, generation: i64, desired: u32) -> Value {
    let stamp = now_timestamp();
    if key.plural == "statefulsets" {
        return json!({
            "observedGeneration": generation,
            "replicas": desired,
            "readyReplicas": desired,
            "currentReplicas": desired,
            "updatedReplicas": desired,
            "availableReplicas": desired,
            "collisionCount": 0,
        });
    }
    json!({
        "observedGeneration": generation,
        "replicas": desired,
        "updatedReplicas": desired,
        "readyReplicas": desired,
        "availableReplicas": desired,
        "conditions": [
            condition("Available", true, "MinimumReplicasAvailable",
                "Deployment has minimum availability.", &stamp),
            condition("Progressing", true, "NewReplicaSetAvailable",
                &format!("ReplicaSet \"{}\" has successfully progressed.", key.name), &stamp),
        ],
    })
}

// ------------------------------------------------------------------ pods

/// Creates and deletes pods so the workload has `desired` pods of its current template.
fn sync_pods(state: &mut State, key: &ObjKey, workload: &Value, desired: u32) {
    let hash = template_hash(workload);
    let Some(runtime) = state.workloads.get_mut(key) else {
        return;
    };
    let stale = if runtime.template_hash != hash {
        runtime.template_hash = hash.clone();
        std::mem::take(&mut runtime.pods)
    } else {
        let keep = (desired as usize).min(runtime.pods.len());
        runtime.pods.split_off(keep)
    };
    let missing = (desired as usize).saturating_sub(runtime.pods.len());
    let mut taken = runtime.pods.clone();
    for name in stale {
        let _ = state.remove(&pod_key(&key.namespace, &name));
    }
    for _ in 0..missing {
        // StatefulSet pods take the lowest free ordinal.
        let index = (0..)
            .find(|i| !taken.contains(&format!("{}-{i}", key.name)))
            .unwrap_or(0);
        let pod = new_pod(state, key, workload, &hash, index);
        let name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        state.commit(pod_key(&key.namespace, &name), pod, EventType::Added);
        taken.push(name.clone());
        if let Some(runtime) = state.workloads.get_mut(key) {
            runtime.pods.push(name);
        }
    }
}

fn new_pod(state: &mut State, key: &ObjKey, workload: &Value, hash: &str, index: usize) -> Value {
    state.uid_counter += 1;
    let serial = state.uid_counter;
    let statefulset = key.plural == "statefulsets";
    let name = if statefulset {
        format!("{}-{index}", key.name)
    } else {
        format!("{}-{hash}-{}", key.name, short_suffix(serial))
    };
    let template = workload
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(json!({}));
    let mut labels = template
        .pointer("/metadata/labels")
        .cloned()
        .unwrap_or(json!({}));
    let (owner_kind, owner_name) = if statefulset {
        labels["controller-revision-hash"] = json!(format!("{}-{hash}", key.name));
        labels["statefulset.kubernetes.io/pod-name"] = json!(name);
        ("StatefulSet", key.name.clone())
    } else {
        labels["pod-template-hash"] = json!(hash);
        ("ReplicaSet", format!("{}-{hash}", key.name))
    };
    let stamp = now_timestamp();
    let containers = template
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let container_statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            json!({
                "name": c["name"],
                "image": c["image"],
                "imageID": "",
                "ready": true,
                "started": true,
                "restartCount": 0,
                "state": {"running": {"startedAt": stamp}},
            })
        })
        .collect();
    let mut spec = template.get("spec").cloned().unwrap_or(json!({}));
    spec["nodeName"] = json!("double-node");
    let ready = |kind: &str| json!({"type": kind, "status": "True", "lastTransitionTime": stamp});
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": key.namespace,
            "uid": format!("d0ub1e00-0000-4000-9000-{serial:012x}"),
            "creationTimestamp": stamp,
            "generation": 1,
            "labels": labels,
            "annotations": template.pointer("/metadata/annotations").cloned().unwrap_or(json!({})),
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "kind": owner_kind,
                "name": owner_name,
                "uid": format!("d0ub1e00-0000-4000-a000-{serial:012x}"),
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": spec,
        "status": {
            "phase": "Running",
            "hostIP": "10.0.0.1",
            "podIP": format!("10.244.{}.{}", (serial / 250) % 250, serial % 250 + 1),
            "startTime": stamp,
            "conditions": [ready("PodScheduled"), ready("Initialized"), ready("ContainersReady"), ready("Ready")],
            "containerStatuses": container_statuses,
            "qosClass": "BestEffort",
        },
    })
}

/// A standalone Running/Ready pod (the Istio ingress gateway).
pub fn standalone_pod(namespace: &str, name: &str, labels: Value) -> Value {
    let stamp = now_timestamp();
    let ready = |kind: &str| json!({"type": kind, "status": "True", "lastTransitionTime": stamp});
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "nodeName": "double-node",
            "containers": [{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.27.0",
                "ports": [{"containerPort": 8080, "protocol": "TCP"}]}],
        },
        "status": {
            "phase": "Running",
            "hostIP": "10.0.0.1",
            "podIP": "10.244.0.250",
            "startTime": stamp,
            "conditions": [ready("PodScheduled"), ready("Initialized"), ready("ContainersReady"), ready("Ready")],
            "containerStatuses": [{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.27.0",
                "imageID": "", "ready": true, "started": true, "restartCount": 0,
                "state": {"running": {"startedAt": stamp}}}],
        },
    })
}

/// metrics.k8s.io `PodMetrics` for a pod.
pub fn pod_metrics(pod: &Value) -> Value {
    let containers: Vec<Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| json!({"name": c["name"], "usage": {"cpu": "10m", "memory": "32Mi"}}))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "kind": "PodMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {
            "name": pod["metadata"]["name"],
            "namespace": pod["metadata"]["namespace"],
            "labels": pod["metadata"]["labels"],
            "creationTimestamp": now_timestamp(),
        },
        "timestamp": now_timestamp(),
        "window": "15s",
        "containers": containers,
    })
}

/// metrics.k8s.io `NodeMetrics` for the one node.
pub fn node_metrics() -> Value {
    json!({
        "kind": "NodeMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": "double-node", "creationTimestamp": now_timestamp()},
        "timestamp": now_timestamp(),
        "window": "15s",
        "usage": {"cpu": "250m", "memory": "1024Mi"},
    })
}
