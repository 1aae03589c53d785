//! Gateway servers and the listeners istiod builds for them (gateway.go
//! buildGatewayListeners, listener_builder.go buildHTTPConnectionManager): one listener
//! per port, an HTTP connection manager with RDS, the fault filter and the router.

use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::istio::{self, Meta, Warnings};
use super::{Proxy, World};

/// Istio's default access log format (EnvoyTextLogFormat, Istio 1.9 on): it names the
/// response flags and details (UH, FI, ...) and the upstream host and cluster.
pub(super) const ACCESS_LOG_FORMAT: &str = "[%START_TIME%] \"%REQ(:METHOD)% \
%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% \
%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% \
\"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% \
%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \
\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% \
%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% \
%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";

/// One HTTP server of a Gateway that selects the proxy.
#[derive(Debug, Clone)]
pub(super) struct Server {
    /// The Gateway it belongs to.
    pub gateway: Meta,
    /// The Gateway's port number (the virtual hosts are named after it).
    pub number: u32,
    /// The port the proxy listens on: the targetPort of the proxy's Service port
    /// `number`, as istiod maps it.
    pub listen_port: u32,
    /// (namespace, host) pairs: "ns/host" in the Gateway; "*" when no namespace is given.
    pub hosts: Vec<(String, String)>,
}

/// The HTTP servers of the Gateways whose selector matches the proxy's labels (in any
/// namespace, as istiod by default). Other protocols are warned about.
pub(super) fn servers(world: &World, proxy: &Proxy, warnings: &mut Warnings) -> Vec<Server> {
    let mut out = Vec::new();
    for gw in istio::sorted(&world.gateways, "Gateway") {
        let m = istio::meta(gw);
        let spec = &gw["spec"];
        if !istio::selects(&istio::string_map(&spec["selector"]), &proxy.labels) {
            continue;
        }
        warnings.unknown_keys(spec, &["selector", "servers"], &format!("Gateway {m} spec"));
        for (i, server) in spec["servers"].as_array().into_iter().flatten().enumerate() {
            let what = format!("Gateway {m} spec.servers[{i}]");
            warnings.unknown_keys(server, &["port", "hosts", "name", "tls"], &what);
            let Some(number) = server["port"]["number"].as_u64() else {
                warnings.push(format!("{what}.port.number: missing, server ignored"));
                continue;
            };
            let number = number as u32;
            let protocol = server["port"]["protocol"]
                .as_str()
                .unwrap_or("HTTP")
                .to_ascii_uppercase();
            if !matches!(protocol.as_str(), "HTTP" | "HTTP2" | "GRPC" | "GRPC-WEB") {
                warnings.push(format!(
                    "{what}.port.protocol: {protocol} not supported (HTTP only), server ignored"
                ));
                continue;
            }
            if !server["tls"].is_null() {
                // On an HTTP server, tls only holds httpsRedirect; there is no HTTPS
                // listener to redirect to here.
                warnings.push(format!("{what}.tls: not supported, ignored"));
            }
            let hosts = server["hosts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|h| match h.split_once('/') {
                    Some((".", host)) => (m.namespace.clone(), host.to_ascii_lowercase()),
                    Some((ns, host)) => (ns.to_string(), host.to_ascii_lowercase()),
                    None => ("*".to_string(), h.to_ascii_lowercase()),
                })
                .collect();
            let listen_port = listen_port(world, proxy, number, &what, warnings);
            out.push(Server {
                gateway: m.clone(),
                number,
                listen_port,
                hosts,
            });
        }
    }
    out
}

/// The port the proxy listens on for Gateway port `number`: the targetPort of port
/// `number` of a Service in the proxy's namespace selecting the proxy's pods (a named
/// targetPort is looked up in those pods' containers), or `number` when there is none.
fn listen_port(
    world: &World,
    proxy: &Proxy,
    number: u32,
    what: &str,
    warnings: &mut Warnings,
) -> u32 {
    for svc in &world.services {
        if svc.metadata.namespace.as_deref() != Some(proxy.namespace.as_str()) {
            continue;
        }
        let Some(spec) = &svc.spec else { continue };
        let selector = spec.selector.clone().unwrap_or_default();
        if selector.is_empty() || !selector.iter().all(|(k, v)| proxy.labels.get(k) == Some(v)) {
            continue;
        }
        for p in spec.ports.iter().flatten() {
            if p.port as u32 != number {
                continue;
            }
            match &p.target_port {
                None => return number,
                Some(IntOrString::Int(t)) => return *t as u32,
                Some(IntOrString::String(name)) => {
                    if let Some(port) = named_container_port(world, proxy, name) {
                        return port;
                    }
                    warnings.push(format!(
                        "{what}: targetPort {name:?} of Service {}/{} is in no proxy pod; \
                         listening on {number}",
                        proxy.namespace,
                        svc.metadata.name.as_deref().unwrap_or("")
                    ));
                    return number;
                }
            }
        }
    }
    number
}

/// The container port named `name` in a pod of the proxy.
fn named_container_port(world: &World, proxy: &Proxy, name: &str) -> Option<u32> {
    world
        .pods
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(proxy.namespace.as_str()))
        .filter(|p| {
            let labels = p.metadata.labels.clone().unwrap_or_default();
            proxy.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
        .flat_map(|p| p.spec.iter().flat_map(|s| s.containers.iter()))
        .flat_map(|c| c.ports.iter().flatten())
        .find(|cp| cp.name.as_deref() == Some(name))
        .map(|cp| cp.container_port as u32)
}

/// The listener for `port`: istiod's gateway HTTP listener, its routes from RDS
/// `route_name`.
pub(super) fn listener(bind: IpAddr, port: u32, route_name: &str) -> Value {
    let name = format!("0.0.0.0_{port}");
    let hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": format!("outbound_{name}"),
        "codec_type": "AUTO",
        // RDS, not an inline route_config: a listener update drains the listener and
        // keep-alive connections keep the old routes, while an RDS update applies to
        // open connections at once (faults switch on and off for live connections).
        "rds": {
            "route_config_name": route_name,
            "config_source": ads(),
        },
        "http_filters": [
            {
                // Empty: the routes' typed_per_filter_config holds the faults.
                "name": "envoy.filters.http.fault",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"},
            },
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
            },
        ],
        "access_log": [{
            "name": "envoy.access_loggers.stdout",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                "log_format": {"text_format_source": {"inline_string": ACCESS_LOG_FORMAT}},
            },
        }],
        "use_remote_address": true,
        "normalize_path": true,
        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
        "upgrade_configs": [{"upgrade_type": "websocket"}],
        // istiod disables the stream idle timeout; the route timeouts bound requests.
        "stream_idle_timeout": "0s",
        "forward_client_cert_details": "SANITIZE_SET",
        "server_name": "istio-envoy",
        "http_protocol_options": {},
        "request_id_extension": {
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig",
                "use_request_id_for_trace_sampling": true,
            }
        },
    });
    json!({
        "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
        "name": name,
        "address": {"socket_address": {"address": bind.to_string(), "port_value": port}},
        "traffic_direction": "OUTBOUND",
        "filter_chains": [{
            "filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": hcm,
            }],
        }],
    })
}

/// istiod's config source (ADS, wait for the first update however long it takes);
/// `xds::write` replaces it with the file it writes.
pub(super) fn ads() -> Value {
    json!({"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"})
}
