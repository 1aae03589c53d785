//! The resource types the double serves, and the discovery documents built from them:
//! legacy (`APIVersions`, `APIGroupList`, `APIResourceList`) and aggregated
//! (`APIGroupDiscoveryList`, apidiscovery.k8s.io/v2).

use serde_json::{Value, json};

use super::DoubleOptions;

/// A subresource as discovery lists it (`deployments/status`, `pods/portforward`).
pub struct Subresource {
    pub name: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

/// One served resource type.
pub struct ResourceType {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub verbs: &'static [&'static str],
    pub subresources: &'static [Subresource],
}

impl ResourceType {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps` or `pods`: how error messages name the resource.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Built-in types are encoded without `kind`/`apiVersion` inside list items;
    /// custom resources (unstructured) keep them.
    pub fn is_builtin(&self) -> bool {
        !self.group.contains('.') || self.group.ends_with(".k8s.io")
    }

    /// Read-only views (metrics.k8s.io) that are computed, not stored.
    pub fn is_metrics(&self) -> bool {
        self.group == METRICS_GROUP
    }
}

pub const ISTIO_GROUP: &str = "networking.istio.io";
pub const MONITORING_GROUP: &str = "monitoring.coreos.com";
pub const METRICS_GROUP: &str = "metrics.k8s.io";

const ALL: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const NO_COLLECTION_DELETE: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
const READ: &[&str] = &["get", "list"];
const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

const fn sub(name: &'static str, kind: &'static str) -> Subresource {
    Subresource {
        name,
        group: "",
        version: "",
        kind,
        verbs: STATUS_VERBS,
    }
}

const fn status_of(kind: &'static str) -> Subresource {
    sub("status", kind)
}

const SCALE: Subresource = Subresource {
    name: "scale",
    group: "autoscaling",
    version: "v1",
    kind: "Scale",
    verbs: STATUS_VERBS,
};

#[allow(clippy::too_many_arguments)]
const fn rt(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    subresources: &'static [Subresource],
) -> ResourceType {
    ResourceType {
        group,
        version,
        plural,
        singular,
        kind,
        namespaced,
        short_names,
        verbs: ALL,
        subresources,
    }
}

/// Every type the double knows, in discovery order.
pub static RESOURCES: &[ResourceType] = &[
    ResourceType {
        verbs: NO_COLLECTION_DELETE,
        ..rt(
            "",
            "v1",
            "namespaces",
            "namespace",
            "Namespace",
            false,
            &["ns"],
            &[status_of("Namespace"), sub("finalize", "Namespace")],
        )
    },
    rt(
        "",
        "v1",
        "pods",
        "pod",
        "Pod",
        true,
        &["po"],
        &[
            status_of("Pod"),
            Subresource {
                name: "log",
                group: "",
                version: "",
                kind: "Pod",
                verbs: &["get"],
            },
            Subresource {
                name: "exec",
                group: "",
                version: "",
                kind: "PodExecOptions",
                verbs: &["create", "get"],
            },
            Subresource {
                name: "portforward",
                group: "",
                version: "",
                kind: "PodPortForwardOptions",
                verbs: &["create", "get"],
            },
            Subresource {
                name: "eviction",
                group: "policy",
                version: "v1",
                kind: "Eviction",
                verbs: &["create"],
            },
        ],
    ),
    ResourceType {
        verbs: NO_COLLECTION_DELETE,
        ..rt(
            "",
            "v1",
            "services",
            "service",
            "Service",
            true,
            &["svc"],
            &[
                status_of("Service"),
                Subresource {
                    name: "proxy",
                    group: "",
                    version: "",
                    kind: "ServiceProxyOptions",
                    verbs: &["create", "delete", "get", "patch", "update"],
                },
            ],
        )
    },
    rt(
        "",
        "v1",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        &["cm"],
        &[],
    ),
    rt("", "v1", "secrets", "secret", "Secret", true, &[], &[]),
    rt(
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        &["sa"],
        &[Subresource {
            name: "token",
            group: "authentication.k8s.io",
            version: "v1",
            kind: "TokenRequest",
            verbs: &["create"],
        }],
    ),
    rt(
        "",
        "v1",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        true,
        &["pvc"],
        &[status_of("PersistentVolumeClaim")],
    ),
    rt(
        "",
        "v1",
        "resourcequotas",
        "resourcequota",
        "ResourceQuota",
        true,
        &["quota"],
        &[status_of("ResourceQuota")],
    ),
    rt("", "v1", "events", "event", "Event", true, &["ev"], &[]),
    rt(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        true,
        &["deploy"],
        &[status_of("Deployment"), SCALE],
    ),
    rt(
        "apps",
        "v1",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
        &["sts"],
        &[status_of("StatefulSet"), SCALE],
    ),
    rt(
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        &["rs"],
        &[status_of("ReplicaSet"), SCALE],
    ),
    rt(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        true,
        &["hpa"],
        &[status_of("HorizontalPodAutoscaler")],
    ),
    rt(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        true,
        &["pdb"],
        &[status_of("PodDisruptionBudget")],
    ),
    rt(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "role",
        "Role",
        true,
        &[],
        &[],
    ),
    rt(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
        &[],
        &[],
    ),
    rt(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "networkpolicy",
        "NetworkPolicy",
        true,
        &["netpol"],
        &[],
    ),
    rt(
        ISTIO_GROUP,
        "v1",
        "virtualservices",
        "virtualservice",
        "VirtualService",
        true,
        &["vs"],
        &[status_of("VirtualService")],
    ),
    rt(
        ISTIO_GROUP,
        "v1",
        "destinationrules",
        "destinationrule",
        "DestinationRule",
        true,
        &["dr"],
        &[status_of("DestinationRule")],
    ),
    rt(
        ISTIO_GROUP,
        "v1",
        "gateways",
        "gateway",
        "Gateway",
        true,
        &["gw"],
        &[status_of("Gateway")],
    ),
    rt(
        MONITORING_GROUP,
        "v1",
        "servicemonitors",
        "servicemonitor",
        "ServiceMonitor",
        true,
        &["smon"],
        &[],
    ),
    rt(
        MONITORING_GROUP,
        "v1",
        "prometheusrules",
        "prometheusrule",
        "PrometheusRule",
        true,
        &["promrule"],
        &[],
    ),
    ResourceType {
        verbs: READ,
        ..rt(
            METRICS_GROUP,
            "v1beta1",
            "pods",
            "",
            "PodMetrics",
            true,
            &[],
            &[],
        )
    },
    ResourceType {
        verbs: READ,
        ..rt(
            METRICS_GROUP,
            "v1beta1",
            "nodes",
            "",
            "NodeMetrics",
            false,
            &[],
            &[],
        )
    },
];

/// Whether `options` serve `group` at all.
pub fn group_enabled(group: &str, options: &DoubleOptions) -> bool {
    match group {
        ISTIO_GROUP => options.istio,
        MONITORING_GROUP => options.monitoring,
        METRICS_GROUP => options.metrics,
        _ => true,
    }
}

/// The served type at `group`/`version` with this plural, if served.
pub fn find(
    group: &str,
    version: &str,
    plural: &str,
    options: &DoubleOptions,
) -> Option<&'static ResourceType> {
    if !group_enabled(group, options) {
        return None;
    }
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The served type for `apiVersion` + plural.
pub fn find_plural(api_version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.api_version() == api_version && r.plural == plural)
}

/// Served (group, version) pairs other than core, in order of first appearance.
fn served_groups(options: &DoubleOptions) -> Vec<(&'static str, &'static str)> {
    let mut groups: Vec<(&str, &str)> = vec![];
    for r in RESOURCES {
        if r.group.is_empty() || !group_enabled(r.group, options) {
            continue;
        }
        if !groups.contains(&(r.group, r.version)) {
            groups.push((r.group, r.version));
        }
    }
    groups
}

/// `GET /api` (legacy): `APIVersions`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ]
    })
}

fn group_version_entry(group: &str, version: &str) -> Value {
    json!({"groupVersion": format!("{group}/{version}"), "version": version})
}

/// One `APIGroup` as it appears in `APIGroupList` and at `/apis/{group}`.
pub fn api_group(group: &str, version: &str) -> Value {
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": [group_version_entry(group, version)],
        "preferredVersion": group_version_entry(group, version),
    })
}

/// `GET /apis` (legacy): `APIGroupList`.
pub fn group_list(options: &DoubleOptions) -> Value {
    let groups: Vec<Value> = served_groups(options)
        .into_iter()
        .map(|(g, v)| {
            let mut group = api_group(g, v);
            if let Some(obj) = group.as_object_mut() {
                obj.remove("kind");
                obj.remove("apiVersion");
            }
            group
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn legacy_resource(r: &ResourceType) -> Value {
    let mut entry = json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        entry["shortNames"] = json!(r.short_names);
    }
    entry
}

fn legacy_subresource(r: &ResourceType, s: &Subresource) -> Value {
    let mut entry = json!({
        "name": format!("{}/{}", r.plural, s.name),
        "singularName": "",
        "namespaced": r.namespaced,
        "kind": s.kind,
        "verbs": s.verbs,
    });
    if !s.group.is_empty() {
        entry["group"] = json!(s.group);
        entry["version"] = json!(s.version);
    }
    entry
}

/// `GET /api/v1` or `/apis/{group}/{version}`: `APIResourceList`, or `None` when not served.
pub fn resource_list(group: &str, version: &str, options: &DoubleOptions) -> Option<Value> {
    if !group_enabled(group, options) {
        return None;
    }
    let mut resources = vec![];
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        resources.push(legacy_resource(r));
        for s in r.subresources {
            resources.push(legacy_subresource(r, s));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

/// The media type of an aggregated discovery answer.
pub const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether an `Accept` header asks for aggregated discovery (v2 or v2beta1).
pub fn wants_aggregated(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("as=APIGroupDiscoveryList"))
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

fn aggregated_resource(r: &ResourceType) -> Value {
    let subresources: Vec<Value> = r
        .subresources
        .iter()
        .map(|s| {
            let (group, version) = if s.group.is_empty() {
                (r.group, r.version)
            } else {
                (s.group, s.version)
            };
            json!({
                "subresource": s.name,
                "responseKind": gvk(group, version, s.kind),
                "verbs": s.verbs,
            })
        })
        .collect();
    let mut entry = json!({
        "resource": r.plural,
        "responseKind": gvk(r.group, r.version, r.kind),
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        entry["shortNames"] = json!(r.short_names);
    }
    if !subresources.is_empty() {
        entry["subresources"] = json!(subresources);
    }
    entry
}

fn aggregated_group(group: &str, version: &str) -> Value {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .map(aggregated_resource)
        .collect();
    let metadata = if group.is_empty() {
        json!({"creationTimestamp": null})
    } else {
        json!({"name": group, "creationTimestamp": null})
    };
    json!({
        "metadata": metadata,
        "versions": [{"version": version, "resources": resources, "freshness": "Current"}],
    })
}

fn aggregated_list(items: Vec<Value>) -> Value {
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

/// `GET /api` with the aggregated Accept.
pub fn aggregated_core() -> Value {
    aggregated_list(vec![aggregated_group("", "v1")])
}

/// `GET /apis` with the aggregated Accept.
pub fn aggregated_groups(options: &DoubleOptions) -> Value {
    aggregated_list(
        served_groups(options)
            .into_iter()
            .map(|(g, v)| aggregated_group(g, v))
            .collect(),
    )
}

/// `GET /version`.
pub fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "34",
        "emulationMajor": "1",
        "emulationMinor": "34",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "33",
        "gitVersion": "v1.34.1",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-09-09T00:00:00Z",
        "goVersion": "go1.24.6",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}
