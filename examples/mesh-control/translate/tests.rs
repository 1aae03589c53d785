//! The translation of the stack's real Istio objects (stack/base/istio.yaml), with
//! hand-built Services, EndpointSlices and Pods, checked field by field against what
//! istiod sends.

use serde_json::{Value, json};

use super::*;

const AGENT: &str = "outbound|80||mcp-agent-service.mcp-agents.svc.cluster.local";
const VS_CONFIG: &str =
    "/apis/networking.istio.io/v1/namespaces/mcp-agents/virtual-service/mcp-agent-vs";

/// The objects of stack/base/istio.yaml, in the namespace kustomize gives them.
fn stack_istio() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/stack/base/istio.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let mut docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    for d in &mut docs {
        d["metadata"]["namespace"] = "mcp-agents".into();
    }
    docs
}

fn k8s<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

fn pod(name: &str, version: &str) -> Pod {
    k8s(json!({
        "metadata": {"name": name, "namespace": "mcp-agents",
                     "labels": {"app.kubernetes.io/name": "mcp-agent", "version": version}},
    }))
}

fn endpoint(ip: &str, pod: &str, ready: bool) -> Value {
    json!({"addresses": [ip], "conditions": {"ready": ready},
           "targetRef": {"kind": "Pod", "name": pod, "namespace": "mcp-agents"}})
}

/// The stack's objects with the gateway's and the agent's Services, two ready agent
/// pods and one not ready.
fn world() -> World {
    let docs = stack_istio();
    let of = |kind: &str| {
        docs.iter()
            .filter(|d| d["kind"] == kind)
            .cloned()
            .collect::<Vec<_>>()
    };
    World {
        gateways: of("Gateway"),
        virtual_services: of("VirtualService"),
        destination_rules: of("DestinationRule"),
        services: vec![
            k8s(json!({
                "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
                "spec": {"selector": {"istio": "ingressgateway"},
                         "ports": [{"name": "http2", "port": 80, "targetPort": 8080}]},
            })),
            k8s(json!({
                "metadata": {"name": "mcp-agent-service", "namespace": "mcp-agents"},
                "spec": {"selector": {"app.kubernetes.io/name": "mcp-agent"},
                         "ports": [{"name": "http", "port": 80, "targetPort": "http", "appProtocol": "http"}]},
            })),
        ],
        endpoint_slices: vec![k8s(json!({
            "metadata": {"name": "mcp-agent-service-x1", "namespace": "mcp-agents",
                         "labels": {"kubernetes.io/service-name": "mcp-agent-service"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [
                endpoint("198.18.0.12", "agent-b", true),
                endpoint("198.18.0.11", "agent-a", true),
                endpoint("198.18.0.13", "agent-c", false),
            ],
        }))],
        pods: vec![
            pod("agent-a", "v1"),
            pod("agent-b", "v2"),
            pod("agent-c", "v1"),
        ],
    }
}

fn gateway_proxy() -> Proxy {
    Proxy::new(
        "istio-system",
        &[("istio", "ingressgateway"), ("app", "istio-ingressgateway")],
    )
}

fn find<'a>(items: &'a [Value], field: &str, name: &str) -> &'a Value {
    items.iter().find(|i| i[field] == name).unwrap_or_else(|| {
        panic!(
            "no {name} in {}",
            serde_json::to_string_pretty(items).unwrap()
        )
    })
}

fn addresses(cla: &Value) -> Vec<String> {
    cla["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["lb_endpoints"].as_array().unwrap().iter())
        .map(|e| {
            let a = &e["endpoint"]["address"]["socket_address"];
            format!("{}:{}", a["address"].as_str().unwrap(), a["port_value"])
        })
        .collect()
}

fn hcm(listener: &Value) -> &Value {
    &listener["filter_chains"][0]["filters"][0]["typed_config"]
}

fn vs_mut(w: &mut World) -> &mut Value {
    &mut w.virtual_services[0]
}

#[test]
fn the_stack_translates_as_istiod_would() {
    let s = translate(&world(), &gateway_proxy());
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);

    assert_eq!(s.listeners.len(), 1);
    let l = &s.listeners[0];
    assert_eq!(l["name"], "0.0.0.0_8080");
    assert_eq!(
        l["address"]["socket_address"],
        json!({"address": "0.0.0.0", "port_value": 8080})
    );
    let h = hcm(l);
    assert_eq!(h["stat_prefix"], "outbound_0.0.0.0_8080");
    assert_eq!(h["use_remote_address"], true);
    assert_eq!(h["rds"]["route_config_name"], "http.8080");
    let filters: Vec<&str> = h["http_filters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        filters,
        ["envoy.filters.http.fault", "envoy.filters.http.router"]
    );
    let log = &h["access_log"][0];
    assert_eq!(log["name"], "envoy.access_loggers.stdout");
    let format = log["typed_config"]["log_format"]["text_format_source"]["inline_string"]
        .as_str()
        .unwrap();
    for part in [
        "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%",
        "\"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER%",
    ] {
        assert!(format.contains(part), "{format}");
    }

    assert_eq!(s.routes.len(), 1);
    let rc = &s.routes[0];
    assert_eq!(rc["name"], "http.8080");
    let vh = &rc["virtual_hosts"][0];
    assert_eq!(vh["name"], "*:80");
    assert_eq!(vh["domains"], json!(["*"]));
    let routes = vh["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 1);
    let r = &routes[0];
    assert_eq!(r["name"], "agent");
    assert_eq!(r["match"], json!({"prefix": "/", "case_sensitive": true}));
    assert_eq!(r["route"]["cluster"], AGENT);
    assert_eq!(r["route"]["timeout"], "30s");
    let retry = &r["route"]["retry_policy"];
    assert_eq!(retry["num_retries"], 2);
    assert_eq!(retry["per_try_timeout"], "10s");
    assert_eq!(retry["retry_on"], "connect-failure,refused-stream");
    assert!(
        retry.get("retriable_status_codes").is_none(),
        "no 5xx is retried: {retry}"
    );
    assert_eq!(
        retry["retry_host_predicate"][0]["name"],
        "envoy.retry_host_predicates.previous_hosts"
    );
    assert_eq!(retry["host_selection_retry_max_attempts"], 5);
    assert_eq!(
        r["metadata"]["filter_metadata"]["istio"]["config"],
        VS_CONFIG
    );
    assert_eq!(
        r["decorator"]["operation"],
        "mcp-agent-service.mcp-agents.svc.cluster.local:80/*"
    );
    assert!(r.get("typed_per_filter_config").is_none());

    assert_eq!(s.clusters.len(), 1);
    let c = &s.clusters[0];
    assert_eq!(c["name"], AGENT);
    assert_eq!(c["type"], "EDS");
    assert_eq!(c["eds_cluster_config"]["service_name"], AGENT);
    assert_eq!(c["lb_policy"], "LEAST_REQUEST");
    assert_eq!(c["connect_timeout"], "3s");
    assert_eq!(
        c["circuit_breakers"]["thresholds"],
        json!([{"max_connections": 1000, "max_pending_requests": 1000, "max_requests": 1000,
                "max_retries": 4294967295u64, "track_remaining": true}])
    );
    assert_eq!(
        c["outlier_detection"],
        json!({"consecutive_5xx": 5, "enforcing_consecutive_5xx": 100, "interval": "10s",
               "base_ejection_time": "30s", "max_ejection_percent": 50, "enforcing_success_rate": 0})
    );
    assert_eq!(
        c["common_lb_config"]["healthy_panic_threshold"]["value"],
        0.0
    );
    let opts = &c["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    assert_eq!(
        opts["common_http_protocol_options"],
        json!({"idle_timeout": "60s"})
    );
    assert_eq!(
        opts["explicit_http_config"],
        json!({"http_protocol_options": {}})
    );
    assert_eq!(
        c["metadata"]["filter_metadata"]["istio"]["config"],
        "/apis/networking.istio.io/v1/namespaces/mcp-agents/destination-rule/mcp-agent-dr"
    );

    assert_eq!(s.endpoints.len(), 1);
    let cla = &s.endpoints[0];
    assert_eq!(cla["cluster_name"], AGENT);
    // The targetPort (through the slice's port named like the Service port), only the
    // ready pods, in a stable order.
    assert_eq!(addresses(cla), ["198.18.0.11:8080", "198.18.0.12:8080"]);
}

#[test]
fn a_fault_as_slo_check_patches_it() {
    let mut w = world();
    vs_mut(&mut w)["spec"]["http"][0]["fault"] = json!({
        "abort": {"percentage": {"value": 1.5}, "httpStatus": 503},
        "delay": {"percentage": {"value": 10}, "fixedDelay": "200ms"},
    });
    let s = translate(&w, &gateway_proxy());
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    let r = &s.routes[0]["virtual_hosts"][0]["routes"][0];
    assert_eq!(
        r["typed_per_filter_config"]["envoy.filters.http.fault"],
        json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
            "abort": {"http_status": 503, "percentage": {"numerator": 15000, "denominator": "MILLION"}},
            "delay": {"fixed_delay": "0.2s", "percentage": {"numerator": 100000, "denominator": "MILLION"}},
        })
    );
    // Only the route changes: the listener, clusters and endpoints stay as they were.
    let plain = translate(&world(), &gateway_proxy());
    assert_eq!(
        (&s.listeners, &s.clusters, &s.endpoints),
        (&plain.listeners, &plain.clusters, &plain.endpoints)
    );

    // No percentage: all requests (Istio's documented default); 0.57 % rounds to 5700.
    vs_mut(&mut w)["spec"]["http"][0]["fault"] = json!({
        "abort": {"httpStatus": 500}, "delay": {"percentage": {"value": 0.57}, "fixedDelay": "1.5s"},
    });
    let s = translate(&w, &gateway_proxy());
    let f = &s.routes[0]["virtual_hosts"][0]["routes"][0]["typed_per_filter_config"]["envoy.filters.http.fault"];
    assert_eq!(
        f["abort"]["percentage"],
        json!({"numerator": 100, "denominator": "HUNDRED"})
    );
    assert_eq!(
        f["delay"]["percentage"],
        json!({"numerator": 5700, "denominator": "MILLION"})
    );
    assert_eq!(f["delay"]["fixed_delay"], "1.5s");
    assert_eq!(
        s.warnings,
        [
            "VirtualService mcp-agents/mcp-agent-vs spec.http[0].fault.abort.percentage: missing, so \
          100 % (Istio's documented default); istiod would send no percentage, which Envoy takes \
          as 0 %: set it"
        ]
    );
}

#[test]
fn subsets_weights_and_header_matches() {
    let mut w = world();
    w.destination_rules[0]["spec"]["subsets"] = json!([
        {"name": "v1", "labels": {"version": "v1"}},
        {"name": "v2", "labels": {"version": "v2"},
         "trafficPolicy": {"loadBalancer": {"simple": "ROUND_ROBIN"}}},
    ]);
    vs_mut(&mut w)["spec"]["http"] = json!([
        {"name": "canary",
         "match": [{"headers": {"x-canary": {"exact": "yes"}}, "uri": {"prefix": "/api"}},
                   {"method": {"exact": "DELETE"}}],
         "route": [{"destination": {"host": "mcp-agent-service", "subset": "v2"}}]},
        {"name": "split",
         "route": [{"destination": {"host": "mcp-agent-service.mcp-agents.svc.cluster.local", "subset": "v1"}, "weight": 90},
                   {"destination": {"host": "mcp-agent-service.mcp-agents.svc.cluster.local", "subset": "v2"}, "weight": 10}],
         "timeout": "1m", "retries": {"attempts": 0}},
        {"name": "never-reached", "route": [{"destination": {"host": "other"}}]},
    ]);
    let s = translate(&w, &gateway_proxy());
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    let routes = s.routes[0]["virtual_hosts"][0]["routes"]
        .as_array()
        .unwrap();
    let names: Vec<&str> = routes.iter().map(|r| r["name"].as_str().unwrap()).collect();
    // One Envoy route per match entry; nothing after the catch-all.
    assert_eq!(names, ["canary", "canary", "split"]);
    let v2 = "outbound|80|v2|mcp-agent-service.mcp-agents.svc.cluster.local";
    let v1 = "outbound|80|v1|mcp-agent-service.mcp-agents.svc.cluster.local";
    assert_eq!(
        routes[0]["match"],
        json!({"prefix": "/api", "case_sensitive": true,
               "headers": [{"name": "x-canary", "string_match": {"exact": "yes"}}]})
    );
    assert_eq!(
        routes[1]["match"]["headers"],
        json!([{"name": ":method", "string_match": {"exact": "DELETE"}}])
    );
    assert_eq!(
        routes[0]["route"]["cluster"], v2,
        "the short name is the VirtualService's namespace's"
    );
    assert_eq!(
        routes[2]["route"]["weighted_clusters"],
        json!({"clusters": [{"name": v1, "weight": 90}, {"name": v2, "weight": 10}]})
    );
    assert_eq!(routes[2]["route"]["timeout"], "60s");
    assert!(
        routes[2]["route"].get("retry_policy").is_none(),
        "attempts 0 disables retries"
    );
    assert_eq!(routes[2]["decorator"]["operation"], "mcp-agent-vs:80/*");

    let names: Vec<&str> = s
        .clusters
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [AGENT, v1, v2]);
    // The subset's load balancer replaces the top-level one; the rest is inherited.
    assert_eq!(find(&s.clusters, "name", v2)["lb_policy"], "ROUND_ROBIN");
    assert_eq!(
        find(&s.clusters, "name", v2)["outlier_detection"]["consecutive_5xx"],
        5
    );
    assert_eq!(find(&s.clusters, "name", v1)["lb_policy"], "LEAST_REQUEST");
    assert_eq!(
        find(&s.clusters, "name", v1)["metadata"]["filter_metadata"]["istio"]["subset"],
        "v1"
    );
    // agent-c is v1 but not ready.
    assert_eq!(
        addresses(find(&s.endpoints, "cluster_name", v1)),
        ["198.18.0.11:8080"]
    );
    assert_eq!(
        addresses(find(&s.endpoints, "cluster_name", v2)),
        ["198.18.0.12:8080"]
    );
    assert_eq!(
        addresses(find(&s.endpoints, "cluster_name", AGENT)).len(),
        2
    );
}

#[test]
fn istio_defaults_when_the_virtual_service_sets_nothing() {
    let mut w = world();
    let http = &mut vs_mut(&mut w)["spec"]["http"][0];
    http.as_object_mut()
        .unwrap()
        .retain(|k, _| k == "name" || k == "route");
    http["route"][0]["destination"]
        .as_object_mut()
        .unwrap()
        .remove("port");
    w.destination_rules.clear();
    let s = translate(&w, &gateway_proxy());
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    let r = &s.routes[0]["virtual_hosts"][0]["routes"][0];
    assert_eq!(r["route"]["timeout"], "0s", "no timeout unless set");
    assert_eq!(r["route"]["cluster"], AGENT, "the Service's only port");
    let retry = &r["route"]["retry_policy"];
    assert_eq!(retry["num_retries"], 2);
    assert_eq!(
        retry["retry_on"],
        "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
    );
    assert_eq!(retry["retriable_status_codes"], json!([503]));
    let c = &s.clusters[0];
    assert_eq!(c["connect_timeout"], "10s");
    assert_eq!(c["lb_policy"], "LEAST_REQUEST");
    assert!(c.get("outlier_detection").is_none());
    assert_eq!(
        c["circuit_breakers"]["thresholds"][0]["max_connections"],
        4294967295u64
    );
}

#[test]
fn hosts_gateways_and_missing_objects() {
    let mut w = world();
    // A Gateway for one host; the VirtualService's "*" narrows to it.
    w.gateways[0]["spec"]["servers"][0]["hosts"] =
        json!(["mcp-agents/agent.example.com", "other-ns/x.example.com"]);
    let s = translate(&w, &gateway_proxy());
    let vh = &s.routes[0]["virtual_hosts"][0];
    assert_eq!(vh["name"], "agent.example.com:80");
    assert_eq!(vh["domains"], json!(["agent.example.com"]));

    // A VirtualService with no gateways is for sidecars only: the gateway 404s.
    let mut w = world();
    vs_mut(&mut w)["spec"]
        .as_object_mut()
        .unwrap()
        .remove("gateways");
    let s = translate(&w, &gateway_proxy());
    assert_eq!(
        s.routes[0]["virtual_hosts"],
        json!([{"name": "blackhole:80", "domains": ["*"], "routes": []}])
    );
    assert!(s.clusters.is_empty());

    // A proxy the Gateway does not select gets nothing.
    let s = translate(
        &world(),
        &Proxy::new("istio-system", &[("istio", "egressgateway")]),
    );
    assert!(s.listeners.is_empty() && s.routes.is_empty() && s.clusters.is_empty());

    // No ready endpoint: an empty assignment (503 UH); no Service: no cluster (503 NC).
    let mut w = world();
    w.endpoint_slices.clear();
    let s = translate(&w, &gateway_proxy());
    assert_eq!(s.endpoints[0]["endpoints"], json!([]));
    w.services
        .retain(|s| s.metadata.name.as_deref() != Some("mcp-agent-service"));
    let s = translate(&w, &gateway_proxy());
    assert!(s.clusters.is_empty());
    assert!(
        s.warnings.iter().any(|w| w.contains("no Service")),
        "{:?}",
        s.warnings
    );
    // Without the gateway's Service the Gateway's port is the listener's.
    w.services.clear();
    assert_eq!(
        translate(&w, &gateway_proxy()).listeners[0]["name"],
        "0.0.0.0_80"
    );
}

#[test]
fn unsupported_fields_are_warnings_naming_object_and_field() {
    let mut w = world();
    let vs = vs_mut(&mut w);
    vs["spec"]["http"][0]["rewrite"] = json!({"uri": "/v2"});
    vs["spec"]["http"][0]["mirror"] = json!({"host": "shadow"});
    vs["spec"]["http"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"redirect": {"uri": "/elsewhere"}}));
    vs["spec"]["tcp"] = json!([{"route": []}]);
    w.gateways[0]["spec"]["servers"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
            "hosts": ["*"], "tls": {"mode": "SIMPLE", "credentialName": "cert"},
        }));
    w.destination_rules[0]["spec"]["trafficPolicy"]["tls"] = json!({"mode": "ISTIO_MUTUAL"});
    w.destination_rules[0]["spec"]["trafficPolicy"]["loadBalancer"]["consistentHash"] =
        json!({"httpHeaderName": "x"});
    let s = translate(&w, &gateway_proxy());
    let vs = "VirtualService mcp-agents/mcp-agent-vs";
    let dr = "DestinationRule mcp-agents/mcp-agent-dr trafficPolicy";
    for expected in [
        format!("{vs} spec.http[0].redirect: not supported, route skipped"),
        format!("{vs} spec.http[1].rewrite: not supported, ignored"),
        format!("{vs} spec.http[1].mirror: not supported, ignored"),
        format!("{vs} spec.tcp: tcp routes not supported, ignored"),
        "Gateway mcp-agents/mcp-agent-gateway spec.servers[1].port.protocol: HTTPS not supported (HTTP only), server ignored".to_string(),
        format!("{dr}.tls: not supported (plain-text upstreams), ignored"),
        format!("{dr}.loadBalancer.consistentHash: not supported, ignored"),
    ] {
        assert!(s.warnings.contains(&expected), "missing {expected:?} in {:#?}", s.warnings);
    }
    // The rest still translates: the agent's route, after the skipped redirect.
    assert_eq!(
        s.routes[0]["virtual_hosts"][0]["routes"][0]["name"],
        "agent"
    );
    assert_eq!(s.listeners.len(), 1);
}

#[test]
fn objects_that_do_not_concern_the_proxy_give_no_warnings() {
    let mut w = world();
    // A sidecar-only VirtualService with a TCP route, an egress Gateway with TLS, and a
    // DestinationRule for another host with mTLS: none is this proxy's.
    w.virtual_services.push(json!({
        "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
        "metadata": {"name": "mesh-only", "namespace": "mcp-agents"},
        "spec": {"hosts": ["redis"], "tcp": [{"route": [{"destination": {"host": "redis"}}]}]},
    }));
    w.gateways.push(json!({
        "apiVersion": "networking.istio.io/v1alpha3", "kind": "Gateway",
        "metadata": {"name": "egress", "namespace": "istio-system"},
        "spec": {"selector": {"istio": "egressgateway"},
                 "servers": [{"port": {"number": 443, "protocol": "TLS"}, "hosts": ["*"], "tls": {"mode": "PASSTHROUGH"}}]},
    }));
    w.destination_rules.push(json!({
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "redis", "namespace": "mcp-agents"},
        "spec": {"host": "redis.mcp-agents", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}},
    }));
    let s = translate(&w, &gateway_proxy());
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert_eq!(s, translate(&world(), &gateway_proxy()));
}
