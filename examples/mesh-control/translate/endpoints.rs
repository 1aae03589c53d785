//! The ClusterLoadAssignment of a cluster: the ready endpoints of the Service's
//! EndpointSlices at the port named like the Service port, only the pods a subset's
//! labels select (istiod's EDS for Kubernetes services).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Service, ServicePort};
use serde_json::{Value, json};

use super::World;

/// The endpoints of `service` at `port` for cluster `cluster`; with `subset`, only
/// those whose pod has all its labels. No endpoint gives an empty assignment (Envoy
/// then answers 503 UH, "no healthy upstream", as with istiod).
pub(super) fn load_assignment(
    world: &World,
    service: &Service,
    port: &ServicePort,
    subset: Option<&BTreeMap<String, String>>,
    cluster: &str,
) -> Value {
    let namespace = service.metadata.namespace.as_deref().unwrap_or("default");
    let name = service.metadata.name.as_deref().unwrap_or("");
    let port_name = port.name.as_deref().unwrap_or("");
    let single_port = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .is_some_and(|p| p.len() == 1);
    // A set: slices may overlap while the EndpointSlice controller moves endpoints.
    let mut addresses: BTreeSet<(String, u32)> = BTreeSet::new();
    for slice in &world.endpoint_slices {
        let labels = slice.metadata.labels.clone().unwrap_or_default();
        if slice.metadata.namespace.as_deref() != Some(namespace)
            || labels.get("kubernetes.io/service-name").map(String::as_str) != Some(name)
            || slice.address_type == "FQDN"
        {
            continue;
        }
        let ports = slice.ports.clone().unwrap_or_default();
        let slice_port = ports
            .iter()
            .find(|p| p.name.as_deref().unwrap_or("") == port_name)
            .or(if single_port && ports.len() == 1 {
                ports.first()
            } else {
                None
            })
            .and_then(|p| p.port);
        let Some(slice_port) = slice_port else {
            continue;
        };
        for ep in slice.endpoints.iter().flatten() {
            if ep.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                continue;
            }
            if let Some(selector) = subset {
                let pod = ep
                    .target_ref
                    .as_ref()
                    .filter(|r| r.kind.as_deref() == Some("Pod"))
                    .and_then(|r| {
                        world.pods.iter().find(|p| {
                            p.metadata.name == r.name
                                && p.metadata.namespace.as_deref()
                                    == Some(r.namespace.as_deref().unwrap_or(namespace))
                        })
                    });
                let labels = pod
                    .and_then(|p| p.metadata.labels.clone())
                    .unwrap_or_default();
                if pod.is_none() || !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                    continue;
                }
            }
            // Kubernetes: the addresses of one endpoint are fungible; use the first.
            if let Some(addr) = ep.addresses.first() {
                addresses.insert((addr.clone(), slice_port as u32));
            }
        }
    }
    let lb_endpoints: Vec<Value> = addresses
        .into_iter()
        .map(|(address, port)| {
            json!({
                "endpoint": {"address": {"socket_address": {"address": address, "port_value": port}}},
                "health_status": "HEALTHY",
                "load_balancing_weight": 1,
            })
        })
        .collect();
    let endpoints = if lb_endpoints.is_empty() {
        json!([])
    } else {
        json!([{"locality": {}, "lb_endpoints": lb_endpoints}])
    };
    json!({
        "@type": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
        "cluster_name": cluster,
        "endpoints": endpoints,
    })
}
