//! istiod's gateway translation, for the Istio objects slo-check's stack uses: Gateway,
//! VirtualService and DestinationRule, with Services, EndpointSlices and Pods, become
//! the Envoy listeners, routes, clusters and endpoints of one gateway proxy.
//!
//! The output is Envoy's v3 API as JSON, with istiod's names (listener `0.0.0.0_8080`,
//! route `http.8080`, cluster `outbound|80||svc.ns.svc.cluster.local`) so a config_dump
//! reads like a real Istio gateway's. Config sources (the listener's RDS, the clusters'
//! EDS) are left as `ads: {}`, as istiod sends them; `xds::write` points them at the
//! files it writes.

mod clusters;
mod endpoints;
mod istio;
mod listeners;
mod routes;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::Value;

/// Everything the translation reads: the Istio objects (as the API server returns them,
/// networking.istio.io v1, v1beta1 or v1alpha3) and the Kubernetes objects they name.
#[derive(Debug, Clone, Default)]
pub struct World {
    pub gateways: Vec<Value>,
    pub virtual_services: Vec<Value>,
    pub destination_rules: Vec<Value>,
    pub services: Vec<Service>,
    pub endpoint_slices: Vec<EndpointSlice>,
    pub pods: Vec<Pod>,
}

/// One gateway workload: its pods share the namespace and labels, and get one config.
#[derive(Debug, Clone)]
pub struct Proxy {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    /// The address the listeners bind (istiod's is 0.0.0.0; tests use 127.0.0.1). The
    /// listener names keep istiod's `0.0.0.0_<port>` whatever it is, so stat names do
    /// not depend on it.
    pub bind: IpAddr,
}

impl Proxy {
    /// A proxy in `namespace` with `labels`, binding 0.0.0.0 as istiod's gateways do.
    #[cfg(test)]
    pub fn new(namespace: &str, labels: &[(&str, &str)]) -> Proxy {
        Proxy {
            namespace: namespace.to_string(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            bind: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        }
    }
}

/// The Envoy resources of one proxy, each a JSON object with its `@type`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub listeners: Vec<Value>,
    /// RouteConfigurations, one per listener (`http.<port>`).
    pub routes: Vec<Value>,
    pub clusters: Vec<Value>,
    /// ClusterLoadAssignments, one per cluster.
    pub endpoints: Vec<Value>,
    /// What was not translated and why, each naming the object and field.
    pub warnings: Vec<String>,
}

/// A cluster a route sends to: (host FQDN, port, subset).
type Dest = (String, u32, String);

/// Translates `world` into the configuration istiod would send to `proxy`.
pub fn translate(world: &World, proxy: &Proxy) -> Snapshot {
    let mut warnings = istio::Warnings::default();
    let servers = listeners::servers(world, proxy, &mut warnings);
    let mut by_port: BTreeMap<u32, Vec<listeners::Server>> = BTreeMap::new();
    for s in servers {
        by_port.entry(s.listen_port).or_default().push(s);
    }
    let mut snapshot = Snapshot::default();
    let mut dests: BTreeSet<Dest> = BTreeSet::new();
    for (port, servers) in &by_port {
        let route_name = format!("http.{port}");
        snapshot
            .listeners
            .push(listeners::listener(proxy.bind, *port, &route_name));
        let (rc, used) = routes::route_config(world, proxy, &route_name, servers, &mut warnings);
        snapshot.routes.push(rc);
        dests.extend(used);
    }
    let (clusters, endpoints) = clusters::clusters(world, proxy, &dests, &mut warnings);
    snapshot.clusters = clusters;
    snapshot.endpoints = endpoints;
    snapshot.warnings = warnings.0;
    snapshot
}
