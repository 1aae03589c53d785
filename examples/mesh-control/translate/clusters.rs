//! The clusters the routes send to, with their DestinationRule's traffic policy
//! (cluster_traffic_policy.go applyConnectionPool, applyOutlierDetection,
//! applyLoadBalancer), and their endpoints.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use serde_json::{Map, Value, json};

use super::istio::{self, DOMAIN_SUFFIX, Warnings};
use super::listeners::ads;
use super::{Dest, Proxy, World, endpoints};

/// The parts of a TrafficPolicy a subset's or a port's policy replaces as a whole.
const COMPONENTS: [&str; 6] = [
    "connectionPool",
    "outlierDetection",
    "loadBalancer",
    "tls",
    "proxyProtocol",
    "tunnel",
];
/// Envoy's "no limit" for circuit-breaker thresholds (istiod's defaults).
const NO_LIMIT: u64 = u32::MAX as u64;

/// The Service whose FQDN is `host`.
pub(super) fn service_for_host<'a>(world: &'a World, host: &str) -> Option<&'a Service> {
    world.services.iter().find(|s| {
        let m = &s.metadata;
        format!(
            "{}.{}.{DOMAIN_SUFFIX}",
            m.name.as_deref().unwrap_or(""),
            m.namespace.as_deref().unwrap_or("default")
        ) == host
    })
}

/// The clusters (and their ClusterLoadAssignments) for the destinations the routes
/// use: for each (host, port), the default cluster and one per DestinationRule subset.
/// A host with no Service, or a subset no DestinationRule defines, gets no cluster:
/// Envoy answers 503 NC for it, as with istiod.
pub(super) fn clusters(
    world: &World,
    proxy: &Proxy,
    dests: &BTreeSet<Dest>,
    warnings: &mut Warnings,
) -> (Vec<Value>, Vec<Value>) {
    let mut wanted: BTreeSet<Dest> = BTreeSet::new();
    for (host, port, subset) in dests {
        wanted.insert((host.clone(), *port, String::new()));
        let dr = destination_rule(world, proxy, host, warnings);
        for s in subsets(dr) {
            wanted.insert((
                host.clone(),
                *port,
                s["name"].as_str().unwrap_or("").to_string(),
            ));
        }
        if !subset.is_empty() && find_subset(dr, subset).is_none() {
            warnings.push(format!(
                "destination {host} subset {subset:?}: no DestinationRule defines it; no cluster \
                 (Envoy answers 503 NC, as with istiod)"
            ));
        }
    }
    let mut clusters = Vec::new();
    let mut assignments = Vec::new();
    for (host, port, subset) in &wanted {
        let name = format!("outbound|{port}|{subset}|{host}");
        let dr = destination_rule(world, proxy, host, warnings);
        let subset_spec = find_subset(dr, subset);
        if !subset.is_empty() && subset_spec.is_none() {
            continue;
        }
        let Some(service) = service_for_host(world, host) else {
            warnings.push(format!(
                "destination {host}: no Service; no cluster (Envoy answers 503 NC, as with istiod)"
            ));
            continue;
        };
        let Some(service_port) = service
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .and_then(|ps| ps.iter().find(|p| p.port as u32 == *port))
        else {
            warnings.push(format!(
                "destination {host} port {port}: the Service has no such port; no cluster"
            ));
            continue;
        };
        let policy = effective_policy(dr, subset_spec, *port);
        let what = match dr {
            Some(dr) => format!("DestinationRule {} trafficPolicy", istio::meta(dr)),
            None => String::new(),
        };
        let mut c = cluster(&name, &policy, service_port, &what, warnings);
        let mut meta = json!({"services": [{
            "host": host,
            "name": service.metadata.name,
            "namespace": service.metadata.namespace,
        }]});
        if let Some(dr) = dr {
            let m = istio::meta(dr);
            meta["config"] = format!(
                "/apis/networking.istio.io/v1/namespaces/{}/destination-rule/{}",
                m.namespace, m.name
            )
            .into();
        }
        if !subset.is_empty() {
            meta["subset"] = subset.clone().into();
        }
        c["metadata"] = json!({"filter_metadata": {"istio": meta}});
        clusters.push(c);
        let labels = subset_spec.map(|s| istio::string_map(&s["labels"]));
        assignments.push(endpoints::load_assignment(
            world,
            service,
            service_port,
            labels.as_ref(),
            &name,
        ));
    }
    (clusters, assignments)
}

/// The DestinationRule for `host`: an exact host first, else the most specific
/// wildcard; among equals, the proxy's namespace, then the host's, then the oldest.
fn destination_rule<'a>(
    world: &'a World,
    proxy: &Proxy,
    host: &str,
    warnings: &mut Warnings,
) -> Option<&'a Value> {
    let host_ns = host.split('.').nth(1).unwrap_or("");
    let mut best: Option<(usize, u8, &Value)> = None;
    for dr in istio::sorted(&world.destination_rules, "DestinationRule") {
        let m = istio::meta(dr);
        // Only the chosen rule's warnings matter (below).
        let dr_host = dr_host(dr, &mut Warnings::default());
        if !istio::subset_of(host, &dr_host) {
            continue;
        }
        // Longer is more specific; an exact host is the longest.
        let specificity = if dr_host == host {
            usize::MAX
        } else {
            dr_host.len()
        };
        let ns_rank = if m.namespace == proxy.namespace {
            2
        } else if m.namespace == host_ns {
            1
        } else {
            0
        };
        if best.is_none_or(|(s, r, _)| (specificity, ns_rank) > (s, r)) {
            best = Some((specificity, ns_rank, dr));
        }
    }
    let (_, _, dr) = best?;
    let what = format!("DestinationRule {} spec", istio::meta(dr));
    warnings.unknown_keys(
        &dr["spec"],
        &["host", "trafficPolicy", "subsets", "exportTo"],
        &what,
    );
    dr_host(dr, warnings);
    Some(dr)
}

/// The FQDN of a DestinationRule's host (short names are its namespace's).
fn dr_host(dr: &Value, warnings: &mut Warnings) -> String {
    let m = istio::meta(dr);
    istio::fqdn(
        dr["spec"]["host"].as_str().unwrap_or(""),
        &m.namespace,
        &format!("DestinationRule {m} spec.host"),
        warnings,
    )
}

fn subsets(dr: Option<&Value>) -> Vec<&Value> {
    dr.and_then(|d| d["spec"]["subsets"].as_array())
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn find_subset<'a>(dr: Option<&'a Value>, name: &str) -> Option<&'a Value> {
    if name.is_empty() {
        return None;
    }
    subsets(dr).into_iter().find(|s| s["name"] == name)
}

/// istiod's MergeTrafficPolicy: the DestinationRule's policy, its port-level settings
/// for `port` replacing every component, then the subset's components and port-level
/// settings likewise.
fn effective_policy(dr: Option<&Value>, subset: Option<&Value>, port: u32) -> Map<String, Value> {
    let mut out = Map::new();
    for policy in [
        dr.map(|d| &d["spec"]["trafficPolicy"]),
        subset.map(|s| &s["trafficPolicy"]),
    ]
    .into_iter()
    .flatten()
    {
        for c in COMPONENTS {
            if let Some(v) = policy.get(c) {
                out.insert(c.into(), v.clone());
            }
        }
        let port_level = policy["portLevelSettings"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["port"]["number"].as_u64() == Some(port as u64));
        if let Some(p) = port_level {
            // Port-level settings do not inherit: absent components go back to defaults.
            for c in COMPONENTS {
                match p.get(c) {
                    Some(v) => out.insert(c.into(), v.clone()),
                    None => out.remove(c),
                };
            }
        }
    }
    out
}

/// One EDS cluster with `policy` applied.
fn cluster(
    name: &str,
    policy: &Map<String, Value>,
    port: &ServicePort,
    what: &str,
    warnings: &mut Warnings,
) -> Value {
    let mut c = json!({
        "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
        "name": name,
        // EDS, so endpoint changes never replace the cluster (which would reset its
        // outlier-detection state and connection pools).
        "type": "EDS",
        "eds_cluster_config": {"eds_config": ads(), "service_name": name},
        // istiod's mesh default.
        "connect_timeout": "10s",
        "lb_policy": "LEAST_REQUEST",
        "common_lb_config": {},
    });
    for c_name in ["tls", "proxyProtocol", "tunnel"] {
        let v = policy.get(c_name);
        let disabled =
            c_name == "tls" && v.is_some_and(|t| t["mode"].as_str().is_none_or(|m| m == "DISABLE"));
        if v.is_some() && !disabled {
            warnings.push(format!(
                "{what}.{c_name}: not supported (plain-text upstreams), ignored"
            ));
        }
    }
    let mut protocol = Map::new();
    apply_connection_pool(
        &mut c,
        &mut protocol,
        policy.get("connectionPool"),
        what,
        warnings,
    );
    apply_outlier_detection(&mut c, policy.get("outlierDetection"), what, warnings);
    apply_load_balancer(&mut c, policy.get("loadBalancer"), what, warnings);
    // The upstream protocol: HTTP/2 for http2/grpc ports (and h2UpgradePolicy UPGRADE),
    // else HTTP/1.1, as istiod decides from the port's name or appProtocol.
    if protocol.get("use_downstream_protocol_config").is_none() {
        let proto = port
            .app_protocol
            .as_deref()
            .or(port.name.as_deref())
            .unwrap_or("")
            .to_ascii_lowercase();
        let h2 = protocol.remove("h2").is_some()
            || ["http2", "grpc", "h2c", "kubernetes.io/h2c"]
                .iter()
                .any(|p| proto == *p || proto.starts_with(&format!("{p}-")));
        let explicit = if h2 {
            json!({"http2_protocol_options": {}})
        } else {
            json!({"http_protocol_options": {}})
        };
        protocol.insert("explicit_http_config".into(), explicit);
    }
    protocol.remove("h2");
    protocol.insert(
        "@type".into(),
        "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions".into(),
    );
    c["typed_extension_protocol_options"] =
        json!({"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": protocol});
    c
}

/// istiod's applyConnectionPool: circuit-breaker thresholds (unlimited unless set),
/// connect timeout, and the HTTP protocol options in `protocol`.
fn apply_connection_pool(
    c: &mut Value,
    protocol: &mut Map<String, Value>,
    pool: Option<&Value>,
    what: &str,
    warnings: &mut Warnings,
) {
    let pool = pool.cloned().unwrap_or_else(|| json!({}));
    let what = format!("{what}.connectionPool");
    warnings.unknown_keys(&pool, &["tcp", "http"], &what);
    let (tcp, http) = (&pool["tcp"], &pool["http"]);
    warnings.unknown_keys(
        tcp,
        &[
            "maxConnections",
            "connectTimeout",
            "tcpKeepalive",
            "maxConnectionDuration",
            "idleTimeout",
        ],
        &format!("{what}.tcp"),
    );
    warnings.unknown_keys(
        http,
        &[
            "http1MaxPendingRequests",
            "http2MaxRequests",
            "maxRequestsPerConnection",
            "maxRetries",
            "idleTimeout",
            "h2UpgradePolicy",
            "useClientProtocol",
            "maxConcurrentStreams",
        ],
        &format!("{what}.http"),
    );
    // istiod cannot tell 0 from unset, so 0 means the default, here too.
    let positive = |v: &Value| v.as_u64().filter(|n| *n > 0);
    let threshold = json!({
        "max_connections": positive(&tcp["maxConnections"]).unwrap_or(NO_LIMIT),
        "max_pending_requests": positive(&http["http1MaxPendingRequests"]).unwrap_or(NO_LIMIT),
        "max_requests": positive(&http["http2MaxRequests"]).unwrap_or(NO_LIMIT),
        "max_retries": positive(&http["maxRetries"]).unwrap_or(NO_LIMIT),
        "track_remaining": true,
    });
    c["circuit_breakers"] = json!({"thresholds": [threshold]});
    if let Some(t) = tcp
        .get("connectTimeout")
        .and_then(|t| istio::duration(t, &format!("{what}.tcp.connectTimeout"), warnings))
    {
        c["connect_timeout"] = t.into();
    }
    let ka = &tcp["tcpKeepalive"];
    if ka.is_object() {
        let mut k = Map::new();
        if let Some(p) = ka["probes"].as_u64() {
            k.insert("keepalive_probes".into(), p.into());
        }
        for (field, envoy) in [
            ("time", "keepalive_time"),
            ("interval", "keepalive_interval"),
        ] {
            if let Some(d) = ka[field].as_str()
                && let Ok(ns) = istio::parse_go_duration(d)
            {
                // Envoy takes whole seconds.
                k.insert(envoy.into(), ((ns / 1_000_000_000) as u64).into());
            }
        }
        c["upstream_connection_options"] = json!({"tcp_keepalive": k});
    }
    let mut common = Map::new();
    let idle = http.get("idleTimeout").or(tcp.get("idleTimeout"));
    if let Some(t) =
        idle.and_then(|t| istio::duration(t, &format!("{what}.http.idleTimeout"), warnings))
    {
        common.insert("idle_timeout".into(), t.into());
    }
    if let Some(n) = positive(&http["maxRequestsPerConnection"]) {
        common.insert("max_requests_per_connection".into(), n.into());
    }
    if let Some(t) = tcp
        .get("maxConnectionDuration")
        .and_then(|t| istio::duration(t, &format!("{what}.tcp.maxConnectionDuration"), warnings))
    {
        common.insert("max_connection_duration".into(), t.into());
    }
    if !common.is_empty() {
        protocol.insert("common_http_protocol_options".into(), common.into());
    }
    if http["h2UpgradePolicy"] == "UPGRADE" {
        protocol.insert("h2".into(), true.into());
    }
    if http["useClientProtocol"] == true {
        protocol.insert(
            "use_downstream_protocol_config".into(),
            json!({"http_protocol_options": {}, "http2_protocol_options": {}}),
        );
    }
    if http.get("maxConcurrentStreams").is_some() {
        warnings.push(format!(
            "{what}.http.maxConcurrentStreams: not supported, ignored"
        ));
    }
}

/// istiod's applyOutlierDetection: consecutive 5xx and gateway errors (enforced at 100 %
/// when > 0), success rate never enforced, and the panic threshold at minHealthPercent
/// (0 unless set: no panic routing to ejected hosts).
fn apply_outlier_detection(
    c: &mut Value,
    outlier: Option<&Value>,
    what: &str,
    warnings: &mut Warnings,
) {
    let Some(o) = outlier else { return };
    let what = format!("{what}.outlierDetection");
    warnings.unknown_keys(
        o,
        &[
            "consecutive5xxErrors",
            "consecutiveGatewayErrors",
            "interval",
            "baseEjectionTime",
            "maxEjectionPercent",
            "minHealthPercent",
            "splitExternalLocalOriginErrors",
            "consecutiveLocalOriginFailures",
        ],
        &what,
    );
    let mut out = json!({"enforcing_success_rate": 0});
    for (field, count, enforcing) in [
        (
            "consecutive5xxErrors",
            "consecutive_5xx",
            "enforcing_consecutive_5xx",
        ),
        (
            "consecutiveGatewayErrors",
            "consecutive_gateway_failure",
            "enforcing_consecutive_gateway_failure",
        ),
    ] {
        if let Some(n) = o[field].as_u64() {
            out[count] = n.into();
            out[enforcing] = (if n > 0 { 100 } else { 0 }).into();
        }
    }
    for (field, envoy) in [
        ("interval", "interval"),
        ("baseEjectionTime", "base_ejection_time"),
    ] {
        if let Some(d) = o
            .get(field)
            .and_then(|d| istio::duration(d, &format!("{what}.{field}"), warnings))
        {
            out[envoy] = d.into();
        }
    }
    if let Some(p) = o["maxEjectionPercent"].as_u64().filter(|p| *p > 0) {
        out["max_ejection_percent"] = p.into();
    }
    if o["splitExternalLocalOriginErrors"] == true {
        out["split_external_local_origin_errors"] = true.into();
        if let Some(n) = o["consecutiveLocalOriginFailures"]
            .as_u64()
            .filter(|n| *n > 0)
        {
            out["consecutive_local_origin_failure"] = n.into();
            out["enforcing_consecutive_local_origin_failure"] = 100.into();
        }
        out["enforcing_local_origin_success_rate"] = 0.into();
    }
    c["outlier_detection"] = out;
    let min_health = o["minHealthPercent"].as_f64().unwrap_or(0.0);
    c["common_lb_config"] = json!({"healthy_panic_threshold": {"value": min_health}});
}

/// istiod's applyLoadBalancer for the simple policies (LEAST_CONN is Envoy's
/// least-request balancer; the default is LEAST_REQUEST).
fn apply_load_balancer(c: &mut Value, lb: Option<&Value>, what: &str, warnings: &mut Warnings) {
    let Some(lb) = lb else { return };
    let what = format!("{what}.loadBalancer");
    warnings.unknown_keys(lb, &["simple", "warmupDurationSecs"], &what);
    let policy = match lb["simple"].as_str().unwrap_or("UNSPECIFIED") {
        "ROUND_ROBIN" => "ROUND_ROBIN",
        "RANDOM" => "RANDOM",
        "LEAST_CONN" | "LEAST_REQUEST" | "UNSPECIFIED" => "LEAST_REQUEST",
        other => {
            warnings.push(format!(
                "{what}.simple: {other} not supported, LEAST_REQUEST used"
            ));
            "LEAST_REQUEST"
        }
    };
    c["lb_policy"] = policy.into();
    if let Some(w) = lb
        .get("warmupDurationSecs")
        .and_then(|d| istio::duration(d, &format!("{what}.warmupDurationSecs"), warnings))
    {
        let config = json!({"slow_start_config": {"slow_start_window": w}});
        match policy {
            "ROUND_ROBIN" => c["round_robin_lb_config"] = config,
            "LEAST_REQUEST" => c["least_request_lb_config"] = config,
            _ => {}
        }
    }
}
