//! The RouteConfiguration of a gateway port (gateway.go buildGatewayHTTPRouteConfig,
//! route/route.go BuildHTTPRoutesForVirtualService): a virtual host per host shared by
//! a server and a VirtualService bound to its Gateway, a route per `match` entry, with
//! timeouts, retries (route/retry/retry.go) and faults (TranslateFault).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::clusters::service_for_host;
use super::istio::{self, Meta, Warnings};
use super::listeners::Server;
use super::{Dest, Proxy, World};

/// The fields of an HTTPRoute this translates.
const HTTP_ROUTE_FIELDS: &[&str] = &["name", "match", "route", "timeout", "retries", "fault"];
/// Fields that change what a route does and are not translated: the route is skipped
/// when one of them replaces the destinations, else only the field is.
const SKIPS_ROUTE: &[&str] = &["redirect", "directResponse", "delegate"];

/// The RouteConfiguration `name` for the servers of one listener port, and the
/// clusters its routes send to.
pub(super) fn route_config(
    world: &World,
    proxy: &Proxy,
    name: &str,
    servers: &[Server],
    warnings: &mut Warnings,
) -> (Value, BTreeSet<Dest>) {
    let mut dests = BTreeSet::new();
    // host -> (virtual host name, routes), in istiod's dedup map.
    let mut vhosts: BTreeMap<String, (String, Vec<Value>)> = BTreeMap::new();
    let virtual_services = istio::sorted(&world.virtual_services, "VirtualService");
    for server in servers {
        let gateway = server.gateway.to_string();
        for vs in &virtual_services {
            let m = istio::meta(vs);
            let spec = &vs["spec"];
            if !bound_gateways(&spec["gateways"], &m).contains(&gateway) {
                continue;
            }
            check_virtual_service(spec, &m, warnings);
            let what = format!("VirtualService {m}");
            let vs_hosts: Vec<String> = spec["hosts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|h| istio::fqdn(h, &m.namespace, &format!("{what} spec.hosts"), warnings))
                .collect();
            let server_hosts: Vec<String> = server
                .hosts
                .iter()
                .filter(|(ns, _)| ns == "*" || *ns == m.namespace)
                .map(|(_, h)| h.clone())
                .collect();
            let hosts = istio::intersection(&server_hosts, &vs_hosts);
            if hosts.is_empty() {
                continue;
            }
            let routes = vs_routes(
                world,
                proxy,
                vs,
                &m,
                server.number,
                &gateway,
                warnings,
                &mut dests,
            );
            if routes.is_empty() {
                continue;
            }
            for h in hosts {
                vhosts
                    .entry(h.clone())
                    .or_insert_with(|| (format!("{h}:{}", server.number), Vec::new()))
                    .1
                    .extend(routes.iter().cloned());
            }
        }
    }
    let virtual_hosts = if vhosts.is_empty() {
        // istiod's blackhole: every request gets 404 NR.
        let port = servers.first().map_or(0, |s| s.number);
        vec![json!({"name": format!("blackhole:{port}"), "domains": ["*"], "routes": []})]
    } else {
        collapse(vhosts)
    };
    let rc = json!({
        "@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
        "name": name,
        "virtual_hosts": virtual_hosts,
        // Routes may name clusters that do not exist (a Service not there yet): Envoy
        // answers 503 NC for them instead of rejecting the whole configuration.
        "validate_clusters": false,
        // The domains are the bare hosts: a request's Host port (a port-forward's
        // local port, say) does not matter, as with istiod.
        "ignore_port_in_host_matching": true,
        "max_direct_response_body_size_bytes": 1024 * 1024,
    });
    (rc, dests)
}

/// istiod's collapseDuplicateRoutes and SortVHostRoutes: hosts with the same routes
/// share one virtual host (named after the first host), and catch-all routes go last.
fn collapse(vhosts: BTreeMap<String, (String, Vec<Value>)>) -> Vec<Value> {
    let mut merged: Vec<(String, Vec<String>, Vec<Value>)> = Vec::new();
    for (host, (name, routes)) in vhosts {
        match merged.iter_mut().find(|(_, _, r)| *r == routes) {
            Some((_, domains, _)) => domains.push(host),
            None => merged.push((name, vec![host], routes)),
        }
    }
    merged
        .into_iter()
        .map(|(name, domains, routes)| {
            let (catch_all, mut rest): (Vec<Value>, Vec<Value>) =
                routes.into_iter().partition(is_catch_all);
            rest.extend(catch_all);
            json!({
                "name": name,
                "domains": domains,
                "routes": rest,
                "include_request_attempt_count": true,
            })
        })
        .collect()
}

/// Whether a route matches every request (prefix "/" or regex ".*", no header or query
/// parameter match): nothing after it is reached.
fn is_catch_all(route: &Value) -> bool {
    let m = &route["match"];
    let path_all = m["prefix"] == "/" || m["safe_regex"]["regex"] == ".*";
    path_all && m.get("headers").is_none() && m.get("query_parameters").is_none()
}

/// The Gateways (namespace/name) a VirtualService binds to: `name` is in the
/// VirtualService's namespace. `mesh` (sidecars) is not a Gateway.
fn bound_gateways(gateways: &Value, vs: &Meta) -> Vec<String> {
    gateways
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|g| *g != "mesh")
        .map(|g| match g.split_once('/') {
            Some(_) => g.to_string(),
            None => format!("{}/{g}", vs.namespace),
        })
        .collect()
}

/// Warns about what a VirtualService has that is not translated (TCP and TLS routes).
fn check_virtual_service(spec: &Value, m: &Meta, warnings: &mut Warnings) {
    let what = format!("VirtualService {m} spec");
    for field in ["tcp", "tls"] {
        if spec.get(field).is_some() {
            warnings.push(format!(
                "{what}.{field}: {field} routes not supported, ignored"
            ));
        }
    }
    warnings.unknown_keys(
        spec,
        &["hosts", "gateways", "http", "exportTo", "tcp", "tls"],
        &what,
    );
}

/// The routes of one VirtualService on a server of `gateway` at port `port`, in order,
/// up to the first catch-all.
#[allow(clippy::too_many_arguments)]
fn vs_routes(
    world: &World,
    proxy: &Proxy,
    vs: &Value,
    m: &Meta,
    port: u32,
    gateway: &str,
    warnings: &mut Warnings,
    dests: &mut BTreeSet<Dest>,
) -> Vec<Value> {
    let mut out = Vec::new();
    for (i, http) in vs["spec"]["http"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let what = format!("VirtualService {m} spec.http[{i}]");
        if let Some(field) = SKIPS_ROUTE.iter().find(|f| http.get(**f).is_some()) {
            warnings.push(format!("{what}.{field}: not supported, route skipped"));
            continue;
        }
        let mut known = HTTP_ROUTE_FIELDS.to_vec();
        known.extend(SKIPS_ROUTE);
        warnings.unknown_keys(http, &known, &what);
        let matches: Vec<Option<&Value>> = match http["match"].as_array() {
            Some(ms) if !ms.is_empty() => ms.iter().map(Some).collect(),
            _ => vec![None],
        };
        let cx = RouteCx {
            world,
            proxy,
            vs: m,
            port,
            gateway,
        };
        // A route without match ends the list even when it could not be translated.
        let mut catch_all = matches[0].is_none();
        for (j, mat) in matches.into_iter().enumerate() {
            let Some(route) = cx.route(http, mat, &what, j, warnings, dests) else {
                continue;
            };
            catch_all |= is_catch_all(&route);
            out.push(route);
            if catch_all {
                break;
            }
        }
        if catch_all {
            break;
        }
    }
    out
}

/// What one route's translation needs.
struct RouteCx<'a> {
    world: &'a World,
    proxy: &'a Proxy,
    vs: &'a Meta,
    /// The Gateway server's port (not the listener's).
    port: u32,
    gateway: &'a str,
}

impl RouteCx<'_> {
    /// istiod's translateRoute for one match entry (None: the route has no match).
    /// `what` names the HTTP route, `j` the match entry.
    fn route(
        &self,
        http: &Value,
        mat: Option<&Value>,
        what: &str,
        j: usize,
        warnings: &mut Warnings,
        dests: &mut BTreeSet<Dest>,
    ) -> Option<Value> {
        if let Some(mat) = mat {
            if mat["port"].as_u64().is_some_and(|p| p as u32 != self.port) {
                return None;
            }
            if !self.source_matches(mat) {
                return None;
            }
        }
        let route_what = what;
        let what = format!("{what}.match[{j}]");
        let mut name = http["name"].as_str().unwrap_or("").to_string();
        if let Some(n) = mat.and_then(|m| m["name"].as_str()) {
            name = format!("{name}.{n}");
        }
        let action = self.action(http, route_what, warnings, dests)?;
        let route_match = route_match(mat, &what, warnings);
        let operation = operation(&route_match, &action, &self.vs.name, self.port);
        let mut route = json!({
            "name": name,
            "match": route_match,
            "route": action,
            "metadata": {"filter_metadata": {"istio": {"config": format!(
                "/apis/networking.istio.io/v1/namespaces/{}/virtual-service/{}",
                self.vs.namespace, self.vs.name
            )}}},
            "decorator": {"operation": operation},
        });
        if let Some(f) = http.get("fault")
            && let Some(fault) = fault(f, &format!("{route_what}.fault"), warnings)
        {
            route["typed_per_filter_config"] = json!({"envoy.filters.http.fault": fault});
        }
        Some(route)
    }

    /// istiod's sourceMatchHTTP: a match's `gateways` must name this Gateway, else its
    /// `sourceLabels` must select the proxy and `sourceNamespace` be the proxy's.
    fn source_matches(&self, mat: &Value) -> bool {
        let gateways = bound_gateways(&mat["gateways"], self.vs);
        if mat["gateways"].as_array().is_some_and(|g| !g.is_empty()) {
            return gateways.iter().any(|g| g == self.gateway);
        }
        istio::selects(&istio::string_map(&mat["sourceLabels"]), &self.proxy.labels)
            && mat["sourceNamespace"]
                .as_str()
                .is_none_or(|ns| ns.is_empty() || ns == self.proxy.namespace)
    }

    /// The RouteAction: destinations, timeout, retries (istiod's
    /// applyHTTPRouteDestination). None (with a warning) when there is no destination.
    fn action(
        &self,
        http: &Value,
        what: &str,
        warnings: &mut Warnings,
        dests: &mut BTreeSet<Dest>,
    ) -> Option<Value> {
        let destinations: Vec<&Value> = http["route"].as_array().into_iter().flatten().collect();
        if destinations.is_empty() {
            warnings.push(format!("{what}.route: no destination, route skipped"));
            return None;
        }
        let mut action = Map::new();
        if destinations.len() == 1 {
            action.insert(
                "cluster".into(),
                self.cluster(
                    destinations[0],
                    &format!("{what}.route[0]"),
                    warnings,
                    dests,
                )
                .into(),
            );
        } else {
            let mut weighted = Vec::new();
            for (k, d) in destinations.iter().enumerate() {
                let weight = d["weight"].as_u64().unwrap_or(0);
                // istiod drops 0-weight destinations when there are several.
                if weight == 0 {
                    continue;
                }
                let cluster = self.cluster(d, &format!("{what}.route[{k}]"), warnings, dests);
                weighted.push(json!({"name": cluster, "weight": weight}));
            }
            if weighted.is_empty() {
                warnings.push(format!("{what}.route: every weight is 0, route skipped"));
                return None;
            }
            action.insert("weighted_clusters".into(), json!({"clusters": weighted}));
        }
        // istiod's default: no timeout (0s disables Envoy's 15 s default).
        let timeout = http
            .get("timeout")
            .and_then(|t| istio::duration(t, &format!("{what}.timeout"), warnings))
            .unwrap_or_else(|| "0s".into());
        // istiod also sets the deprecated max_grpc_timeout to the same value; Envoy 1.40
        // warns on every route update that it will be removed, and the agent's traffic
        // is not gRPC, so it is left out.
        action.insert("timeout".into(), timeout.into());
        if let Some(policy) =
            retry_policy(http.get("retries"), &format!("{what}.retries"), warnings)
        {
            action.insert("retry_policy".into(), policy);
        }
        Some(Value::Object(action))
    }

    /// The cluster name of one destination (istiod's GetDestinationCluster), recorded in
    /// `dests`.
    fn cluster(
        &self,
        d: &Value,
        what: &str,
        warnings: &mut Warnings,
        dests: &mut BTreeSet<Dest>,
    ) -> String {
        warnings.unknown_keys(d, &["destination", "weight"], what);
        let dest = &d["destination"];
        warnings.unknown_keys(
            dest,
            &["host", "port", "subset"],
            &format!("{what}.destination"),
        );
        let host = istio::fqdn(
            dest["host"].as_str().unwrap_or(""),
            &self.vs.namespace,
            &format!("{what}.destination.host"),
            warnings,
        );
        let port = match dest["port"]["number"].as_u64() {
            Some(p) => p as u32,
            None => {
                // The Service's only port, else the server's port (istiod's choice).
                let ports: Vec<u32> = service_for_host(self.world, &host)
                    .and_then(|s| s.spec.as_ref())
                    .and_then(|s| s.ports.as_ref())
                    .map(|ps| ps.iter().map(|p| p.port as u32).collect())
                    .unwrap_or_default();
                if ports.len() == 1 {
                    ports[0]
                } else {
                    self.port
                }
            }
        };
        let subset = dest["subset"].as_str().unwrap_or("").to_string();
        let name = format!("outbound|{port}|{subset}|{host}");
        dests.insert((host, port, subset));
        name
    }
}

/// istiod's TranslateRouteMatch.
fn route_match(mat: Option<&Value>, what: &str, warnings: &mut Warnings) -> Value {
    let mut out = Map::new();
    out.insert("prefix".into(), "/".into());
    let Some(mat) = mat else {
        return Value::Object(out);
    };
    warnings.unknown_keys(
        mat,
        &[
            "name",
            "uri",
            "headers",
            "withoutHeaders",
            "method",
            "authority",
            "scheme",
            "queryParams",
            "ignoreUriCase",
            "port",
            "gateways",
            "sourceLabels",
            "sourceNamespace",
        ],
        what,
    );
    let mut headers = Vec::new();
    for (field, invert) in [("headers", false), ("withoutHeaders", true)] {
        let mut named: Vec<(&String, &Value)> =
            mat[field].as_object().into_iter().flatten().collect();
        named.sort_by_key(|(n, _)| *n);
        for (name, sm) in named {
            if name.starts_with("@request.auth.claims") {
                warnings.push(format!(
                    "{what}.{field}.{name}: JWT claim matches not supported, ignored"
                ));
                continue;
            }
            let mut h = header_matcher(name, sm);
            if invert {
                h["invert_match"] = true.into();
                if h.get("present_match").is_none() {
                    h["treat_missing_header_as_empty"] = true.into();
                }
            }
            headers.push(h);
        }
    }
    headers.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    if let Some(uri) = mat.get("uri") {
        out.remove("prefix");
        if let Some(p) = uri["exact"].as_str() {
            out.insert("path".into(), p.into());
        } else if let Some(p) = uri["prefix"].as_str() {
            out.insert("prefix".into(), p.into());
        } else if let Some(r) = uri["regex"].as_str() {
            out.insert("safe_regex".into(), json!({"regex": r}));
        } else {
            out.insert("prefix".into(), "/".into());
        }
    }
    let ignore_case = mat["ignoreUriCase"].as_bool().unwrap_or(false);
    out.insert("case_sensitive".into(), (!ignore_case).into());
    for (field, header) in [
        ("method", ":method"),
        ("authority", ":authority"),
        ("scheme", ":scheme"),
    ] {
        if let Some(sm) = mat.get(field) {
            headers.push(header_matcher(header, sm));
        }
    }
    if !headers.is_empty() {
        out.insert("headers".into(), headers.into());
    }
    let mut params: Vec<(&String, &Value)> = mat["queryParams"]
        .as_object()
        .into_iter()
        .flatten()
        .collect();
    params.sort_by_key(|(n, _)| *n);
    let params: Vec<Value> = params
        .into_iter()
        .map(|(name, sm)| match string_matcher(sm) {
            Some(m) => json!({"name": name, "string_match": m}),
            None => json!({"name": name, "present_match": true}),
        })
        .collect();
    if !params.is_empty() {
        out.insert("query_parameters".into(), params.into());
    }
    Value::Object(out)
}

/// A HeaderMatcher for an Istio StringMatch.
fn header_matcher(name: &str, sm: &Value) -> Value {
    match string_matcher(sm) {
        Some(m) => json!({"name": name, "string_match": m}),
        None => json!({"name": name, "present_match": true}),
    }
}

/// An Envoy StringMatcher for an Istio StringMatch; None for "present" (an empty match
/// or the regex "*", as istiod's canBeConvertedToPresentMatch).
fn string_matcher(sm: &Value) -> Option<Value> {
    if let Some(v) = sm["exact"].as_str() {
        Some(json!({"exact": v}))
    } else if let Some(v) = sm["prefix"].as_str() {
        Some(json!({"prefix": v}))
    } else {
        match sm["regex"].as_str() {
            Some("*") | None => None,
            Some(r) => Some(json!({"safe_regex": {"regex": r}})),
        }
    }
}

/// istiod's GetRouteOperation: "host:port/path*" for one destination, else
/// "vs-name:port/path*".
fn operation(m: &Value, action: &Value, vs_name: &str, port: u32) -> String {
    let path = if let Some(p) = m["prefix"].as_str() {
        format!("{p}*")
    } else if let Some(p) = m["path"].as_str() {
        p.to_string()
    } else if let Some(r) = m["safe_regex"]["regex"].as_str() {
        r.to_string()
    } else {
        "/*".to_string()
    };
    if let Some(c) = action["cluster"].as_str() {
        let parts: Vec<&str> = c.split('|').collect();
        if let [_, p, _, h] = parts[..] {
            return format!("{h}:{p}{path}");
        }
    }
    format!("{vs_name}:{port}{path}")
}

/// The default retry policy of istiod (route/retry DefaultPolicy).
fn default_retry_policy() -> Map<String, Value> {
    let v = json!({
        "retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
        "num_retries": 2,
        "retry_host_predicate": [{
            "name": "envoy.retry_host_predicates.previous_hosts",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"},
        }],
        "host_selection_retry_max_attempts": 5,
        "retriable_status_codes": [503],
    });
    v.as_object().cloned().unwrap_or_default()
}

/// istiod's retry.ConvertPolicy: the default when `retries` is absent, none when
/// `attempts` is 0, else the default with the VirtualService's fields.
pub(super) fn retry_policy(
    retries: Option<&Value>,
    what: &str,
    warnings: &mut Warnings,
) -> Option<Value> {
    let mut out = default_retry_policy();
    let Some(r) = retries else {
        return Some(Value::Object(out));
    };
    warnings.unknown_keys(
        r,
        &[
            "attempts",
            "perTryTimeout",
            "retryOn",
            "retryRemoteLocalities",
            "retryIgnorePreviousHosts",
            "backoff",
        ],
        what,
    );
    let attempts = r["attempts"].as_i64().unwrap_or(0);
    if attempts <= 0 {
        return None;
    }
    out.insert("num_retries".into(), attempts.into());
    if let Some(on) = r["retryOn"].as_str().filter(|s| !s.is_empty()) {
        // Numbers are status codes (istiod's parseRetryOn).
        let mut codes = Vec::new();
        let mut conditions = Vec::new();
        for part in on.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.parse::<u32>() {
                Ok(code) if (100..600).contains(&code) => codes.push(code),
                _ => conditions.push(part.to_string()),
            }
        }
        if !codes.is_empty() && !conditions.iter().any(|c| c == "retriable-status-codes") {
            conditions.push("retriable-status-codes".into());
        }
        out.insert("retry_on".into(), conditions.join(",").into());
        if codes.is_empty() {
            out.remove("retriable_status_codes");
        } else {
            out.insert("retriable_status_codes".into(), codes.into());
        }
    }
    if let Some(t) = r
        .get("perTryTimeout")
        .and_then(|t| istio::duration(t, &format!("{what}.perTryTimeout"), warnings))
    {
        out.insert("per_try_timeout".into(), t.into());
    }
    if r["retryIgnorePreviousHosts"] == false {
        out.remove("retry_host_predicate");
    }
    if let Some(b) = r
        .get("backoff")
        .and_then(|b| istio::duration(b, &format!("{what}.backoff"), warnings))
    {
        out.insert("retry_back_off".into(), json!({"base_interval": b}));
    }
    if r["retryRemoteLocalities"] == true {
        warnings.push(format!(
            "{what}.retryRemoteLocalities: not supported, ignored"
        ));
    }
    Some(Value::Object(out))
}

/// An Envoy FractionalPercent for Istio's Percent (0..100, a double): per million, as
/// istiod (rounded, where istiod truncates 0.57 % to 5699).
fn percent(p: &Value) -> Value {
    let value = p["value"].as_f64().unwrap_or(0.0);
    let numerator = (value * 10_000.0).round().clamp(0.0, 1_000_000.0) as u64;
    json!({"numerator": numerator, "denominator": "MILLION"})
}

/// The percentage of a fault's delay or abort: `percentage`, the deprecated integer
/// `percent`, else 100 % (Istio's documented default when neither is given). istiod
/// itself leaves Envoy's percentage unset then, which Envoy (1.40, measured) takes as
/// 0 %: `warnings` says so.
fn fault_percentage(f: &Value, what: &str, warnings: &mut Warnings) -> Value {
    if let Some(p) = f.get("percentage") {
        percent(p)
    } else if let Some(p) = f["percent"].as_u64() {
        json!({"numerator": p, "denominator": "HUNDRED"})
    } else {
        warnings.push(format!(
            "{what}.percentage: missing, so 100 % (Istio's documented default); istiod would \
             send no percentage, which Envoy takes as 0 %: set it"
        ));
        json!({"numerator": 100, "denominator": "HUNDRED"})
    }
}

/// istiod's TranslateFault: the HTTPFault for the route's typed_per_filter_config.
pub(super) fn fault(f: &Value, what: &str, warnings: &mut Warnings) -> Option<Value> {
    warnings.unknown_keys(f, &["delay", "abort"], what);
    let mut out =
        json!({"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"});
    if let Some(d) = f.get("delay") {
        let w = format!("{what}.delay");
        warnings.unknown_keys(
            d,
            &["fixedDelay", "percentage", "percent", "exponentialDelay"],
            &w,
        );
        if d.get("exponentialDelay").is_some() {
            warnings.push(format!(
                "{w}.exponentialDelay: not supported, delay ignored"
            ));
        } else if let Some(fixed) = d
            .get("fixedDelay")
            .and_then(|v| istio::duration(v, &format!("{w}.fixedDelay"), warnings))
        {
            out["delay"] =
                json!({"fixed_delay": fixed, "percentage": fault_percentage(d, &w, warnings)});
        }
    }
    if let Some(a) = f.get("abort") {
        let w = format!("{what}.abort");
        warnings.unknown_keys(
            a,
            &["httpStatus", "grpcStatus", "http2Error", "percentage"],
            &w,
        );
        if let Some(status) = a["httpStatus"].as_u64() {
            out["abort"] =
                json!({"http_status": status, "percentage": fault_percentage(a, &w, warnings)});
        } else if let Some(code) = a["grpcStatus"].as_str().and_then(grpc_code) {
            out["abort"] =
                json!({"grpc_status": code, "percentage": fault_percentage(a, &w, warnings)});
        } else {
            warnings.push(format!(
                "{w}: only httpStatus and grpcStatus aborts are supported, abort ignored"
            ));
        }
    }
    (out.get("delay").is_some() || out.get("abort").is_some()).then_some(out)
}

/// The number of a gRPC status name.
fn grpc_code(name: &str) -> Option<u32> {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES.iter().position(|n| *n == name).map(|i| i as u32)
}
