//! The ingress gateway's Envoy, read through its admin port (15000 on Istio's gateway
//! pods; `KubeSettings::envoy_admin_port`) over a port-forward to each ready gateway pod:
//! which fault each route made from the VirtualService holds (`/config_dump?resource=
//! dynamic_route_configs`; istiod marks those routes with `metadata.filter_metadata.istio
//! .config`), so a fault's propagation from the API server to the data plane is measured;
//! and the counters of `/stats` (fault filter, listener, the service's cluster), summed
//! over the pods. Faults are compared in one normal form, `RouteFault`, computed from
//! Envoy's `HTTPFault` and from Istio's `HTTPFaultInjection` alike.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client};
use serde_json::Value;
use tokio::time::Instant;

use super::catalog::ingress_pods;
use super::settings::KubeSettings;
use crate::errors::error_chain;
use crate::target::{BoxFuture, DataPlane, GatewayCounters, GatewayCounts, GatewayReading};

/// How long one admin request (port-forward, request, whole body) may take.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the gateway's routes are read again while a change propagates.
pub const POLL: Duration = Duration::from_millis(50);
/// The largest admin answer read (a big mesh's config_dump is megabytes).
const MAX_ANSWER_BYTES: usize = 64 << 20;
/// Envoy's name for the fault filter, the key of a route's `typed_per_filter_config`.
const FAULT_FILTER: &str = "envoy.filters.http.fault";

/// A route's fault, comparable whichever side it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteFault {
    /// The abort, when the fault aborts.
    pub abort: Option<AbortForm>,
    /// The fixed delay, when the fault delays.
    pub delay: Option<DelayForm>,
}

/// An abort: what it answers and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbortForm {
    /// The HTTP status; `None` for a gRPC status or HTTP/2 reset (compared as one kind).
    pub http_status: Option<u32>,
    /// Requests affected, per million (Istio's 1.5 % is 15000).
    pub per_million: u32,
}

/// A fixed delay and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelayForm {
    /// The delay, µs (Istio's `200ms` and Envoy's `0.200s` are both 200000).
    pub fixed_delay_us: u64,
    /// Requests affected, per million.
    pub per_million: u32,
}

impl RouteFault {
    /// Equal up to one per million: istiod truncates `value * 10000`, which is not
    /// always the rounded value (0.29 % is 2899).
    pub fn same_as(&self, other: &RouteFault) -> bool {
        let close = |a: u32, b: u32| a.abs_diff(b) <= 1;
        let aborts = match (&self.abort, &other.abort) {
            (Some(a), Some(b)) => {
                a.http_status == b.http_status && close(a.per_million, b.per_million)
            }
            (a, b) => a.is_none() && b.is_none(),
        };
        let delays = match (&self.delay, &other.delay) {
            (Some(a), Some(b)) => {
                a.fixed_delay_us == b.fixed_delay_us && close(a.per_million, b.per_million)
            }
            (a, b) => a.is_none() && b.is_none(),
        };
        aborts && delays
    }
}

impl fmt::Display for RouteFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |per_million: u32| per_million as f64 / 10_000.0;
        let mut parts = Vec::new();
        if let Some(a) = &self.abort {
            let what = a
                .http_status
                .map_or_else(|| "a non-HTTP abort".to_string(), |s| format!("abort {s}"));
            parts.push(format!("{what} at {}%", pct(a.per_million)));
        }
        if let Some(d) = &self.delay {
            parts.push(format!(
                "delay {} at {}%",
                crate::units::format_duration(Duration::from_micros(d.fixed_delay_us)),
                pct(d.per_million)
            ));
        }
        write!(f, "{}", parts.join(" and "))
    }
}

/// A route's fault for messages: `no fault` for none.
fn describe(fault: &Option<RouteFault>) -> String {
    fault
        .as_ref()
        .map_or_else(|| "no fault".to_string(), |f| f.to_string())
}

/// One HTTP route of the VirtualService, as the patched object holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedRoute {
    /// The route's `name`, which istiod gives the Envoy routes made from it.
    pub name: Option<String>,
    /// Its fault in the normal form (`None`: no fault).
    pub fault: Option<RouteFault>,
}

/// One Envoy route made from the VirtualService.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvoyRoute {
    /// The route's name (`<http route name>[.<match name>]`, empty when unnamed).
    pub name: String,
    /// The fault it holds in the normal form (`None`: no fault).
    pub fault: Option<RouteFault>,
}

/// The `istio.config` metadata istiod puts on every route made from a VirtualService.
pub fn istio_config(namespace: &str, name: &str) -> String {
    format!("/apis/networking.istio.io/v1/namespaces/{namespace}/virtual-service/{name}")
}

/// The same object, whatever API version istiod names (`v1`, `v1beta1`, `v1alpha3`:
/// it writes the version the config was stored in).
fn same_config(metadata: &str, config: &str) -> bool {
    let unversioned = |path: &str| -> Option<String> {
        let rest = path.strip_prefix("/apis/networking.istio.io/")?;
        Some(rest.split_once('/')?.1.to_string())
    };
    metadata == config || unversioned(metadata).is_some_and(|m| Some(m) == unversioned(config))
}

/// A duration, either Go's (`200ms`, Istio) or protobuf JSON's (`0.200s`, Envoy), in µs.
fn duration_us(text: &str) -> Result<u64, String> {
    crate::units::parse_duration(text).map(|d| (d.as_secs_f64() * 1e6).round() as u64)
}

/// Istio's `HTTPFaultInjection` (a route's `fault`; null for none) in the normal form, as
/// istiod translates it: a missing `percentage` is 100 %; the deprecated integer
/// `percent` counts when there is no `percentage`.
pub fn from_istio(fault: &Value) -> Result<Option<RouteFault>, String> {
    if fault.is_null() {
        return Ok(None);
    }
    let per_million = |part: &Value| -> u32 {
        match (
            part["percentage"]["value"].as_f64(),
            part["percent"].as_u64(),
        ) {
            (Some(v), _) => (v * 10_000.0).round() as u32,
            (None, Some(p)) if part["percentage"].is_null() => (p * 10_000) as u32,
            _ if part["percentage"].is_object() => 0, // `percentage: {}`: value 0
            _ => 1_000_000,
        }
    };
    let delay = match &fault["delay"] {
        Value::Null => None,
        d => {
            let text = d["fixedDelay"].as_str().ok_or_else(|| {
                format!(
                    "Istio fault delay {d} has no fixedDelay (the only delay istiod translates)"
                )
            })?;
            Some(DelayForm {
                fixed_delay_us: duration_us(text)
                    .map_err(|e| format!("Istio fault delay fixedDelay: {e}"))?,
                per_million: per_million(d),
            })
        }
    };
    let abort = match &fault["abort"] {
        Value::Null => None,
        a => Some(AbortForm {
            http_status: a["httpStatus"].as_u64().map(|s| s as u32),
            per_million: per_million(a),
        }),
    };
    Ok((abort.is_some() || delay.is_some()).then_some(RouteFault { abort, delay }))
}

/// An Envoy `FractionalPercent` in millionths (proto3 JSON omits a 0 numerator and the
/// default denominator, HUNDRED).
fn fractional_per_million(p: &Value) -> Result<u32, String> {
    let numerator = p["numerator"].as_u64().unwrap_or(0);
    let scale = match p["denominator"].as_str().unwrap_or("HUNDRED") {
        "HUNDRED" => 10_000,
        "TEN_THOUSAND" => 100,
        "MILLION" => 1,
        other => return Err(format!("unknown FractionalPercent denominator `{other}`")),
    };
    Ok((numerator * scale).min(1_000_000) as u32)
}

/// Envoy's `HTTPFault` (a route's `typed_per_filter_config["envoy.filters.http.fault"]`;
/// null for none) in the normal form.
pub fn from_envoy(fault: &Value) -> Result<Option<RouteFault>, String> {
    if fault.is_null() {
        return Ok(None);
    }
    let delay = match &fault["delay"] {
        Value::Null => None,
        d => {
            let text = d["fixed_delay"]
                .as_str()
                .ok_or_else(|| format!("Envoy fault delay {d} has no fixed_delay"))?;
            Some(DelayForm {
                fixed_delay_us: duration_us(text)
                    .map_err(|e| format!("Envoy fault delay fixed_delay: {e}"))?,
                per_million: fractional_per_million(&d["percentage"])?,
            })
        }
    };
    let abort = match &fault["abort"] {
        Value::Null => None,
        a => Some(AbortForm {
            http_status: a["http_status"].as_u64().map(|s| s as u32),
            per_million: fractional_per_million(&a["percentage"])?,
        }),
    };
    Ok((abort.is_some() || delay.is_some()).then_some(RouteFault { abort, delay }))
}

/// The routes of a VirtualService object (`spec.http[]`) with their faults.
pub fn expected_routes(vs: &Value) -> Result<Vec<ExpectedRoute>, String> {
    let routes = vs["spec"]["http"]
        .as_array()
        .ok_or("the VirtualService has no spec.http routes")?;
    routes
        .iter()
        .map(|r| {
            Ok(ExpectedRoute {
                name: r["name"].as_str().map(String::from),
                fault: from_istio(&r["fault"])?,
            })
        })
        .collect()
}

/// The routes in an admin `config_dump` (of `resource=dynamic_route_configs`, or the
/// whole dump) whose `istio.config` metadata names the object `config` names, with
/// their faults.
pub fn routes_in_config_dump(dump: &Value, config: &str) -> Result<Vec<EnvoyRoute>, String> {
    let configs = dump["configs"]
        .as_array()
        .ok_or("the answer is not an Envoy config_dump (no `configs`)")?;
    let mut route_configs = Vec::new();
    for c in configs {
        if c["route_config"].is_object() {
            route_configs.push(&c["route_config"]);
        }
        for d in c["dynamic_route_configs"].as_array().into_iter().flatten() {
            route_configs.push(&d["route_config"]);
        }
    }
    let mut found = Vec::new();
    for rc in route_configs {
        let hosts = rc["virtual_hosts"].as_array().into_iter().flatten();
        for route in hosts.flat_map(|h| h["routes"].as_array().into_iter().flatten()) {
            let metadata = route["metadata"]["filter_metadata"]["istio"]["config"].as_str();
            if !metadata.is_some_and(|m| same_config(m, config)) {
                continue;
            }
            let name = route["name"].as_str().unwrap_or_default().to_string();
            let fault = from_envoy(&route["typed_per_filter_config"][FAULT_FILTER])
                .map_err(|e| format!("route `{name}`: {e}"))?;
            found.push(EnvoyRoute { name, fault });
        }
    }
    Ok(found)
}

/// `None` when every Envoy route made from the VirtualService holds the fault of the
/// VirtualService route it was made from (matched by name; an unnamed one by any
/// unnamed route's fault), else what differs.
pub fn mismatch(envoy: &[EnvoyRoute], expected: &[ExpectedRoute]) -> Option<String> {
    if envoy.is_empty() {
        return Some("no route carries the VirtualService's istio.config metadata".into());
    }
    let same = |a: &Option<RouteFault>, b: &Option<RouteFault>| match (a, b) {
        (Some(a), Some(b)) => a.same_as(b),
        (a, b) => a.is_none() && b.is_none(),
    };
    for r in envoy {
        let by_name = expected.iter().find(|e| {
            e.name.as_deref().is_some_and(|n| {
                !n.is_empty() && (r.name == n || r.name.starts_with(&format!("{n}.")))
            })
        });
        let wanted: Vec<&Option<RouteFault>> = match by_name {
            Some(e) => vec![&e.fault],
            None => {
                let unnamed: Vec<_> = expected.iter().filter(|e| e.name.is_none()).collect();
                let pool = if unnamed.is_empty() {
                    expected.iter().collect()
                } else {
                    unnamed
                };
                pool.into_iter().map(|e| &e.fault).collect()
            }
        };
        if !wanted.iter().any(|w| same(w, &r.fault)) {
            let label = if r.name.is_empty() {
                "(unnamed)"
            } else {
                &r.name
            };
            return Some(format!(
                "route `{label}` holds {} instead of {}",
                describe(&r.fault),
                wanted
                    .first()
                    .map_or_else(|| "no fault".into(), |w| describe(w))
            ));
        }
    }
    None
}

/// The counters of one `/stats` text answer (`name: value` lines): the listener's
/// (`http.<stat_prefix>.…`) and those of every cluster to `service_host`
/// (`cluster.outbound|<port>|<subset>|<host>.…`), summed.
pub fn parse_stats(text: &str, stat_prefix: &str, service_host: &str) -> GatewayCounts {
    let mut c = GatewayCounts::default();
    let add = |slot: &mut Option<u64>, v: u64| *slot = Some(slot.unwrap_or(0) + v);
    let listener = format!("http.{stat_prefix}.");
    let cluster_end = format!("|{service_host}.");
    for line in text.lines() {
        let Some((name, value)) = line.split_once(": ") else {
            continue;
        };
        let Ok(v) = value.trim().parse::<u64>() else {
            continue; // a histogram or text stat
        };
        if let Some(stat) = name.strip_prefix(&listener) {
            match stat {
                "fault.aborts_injected" => add(&mut c.aborts_injected, v),
                "fault.delays_injected" => add(&mut c.delays_injected, v),
                "downstream_rq_total" => add(&mut c.downstream_rq, v),
                "downstream_rq_5xx" => add(&mut c.downstream_rq_5xx, v),
                _ => {}
            }
        } else if let Some(rest) = name.strip_prefix("cluster.outbound|")
            && let Some(at) = rest.find(&cluster_end)
        {
            match &rest[at + cluster_end.len()..] {
                "upstream_rq_pending_overflow" => add(&mut c.upstream_rq_pending_overflow, v),
                "upstream_rq_active_overflow" => add(&mut c.upstream_rq_active_overflow, v),
                "outlier_detection.ejections_enforced_total" => {
                    add(&mut c.outlier_ejections_enforced, v)
                }
                _ => {}
            }
        }
    }
    c
}

/// Counters summed over pods; a counter one pod lacks is unknown for the sum.
fn sum(all: &[GatewayCounts]) -> GatewayCounts {
    let total = |f: fn(&GatewayCounts) -> Option<u64>| {
        all.iter()
            .map(f)
            .try_fold(0u64, |acc, v| v.map(|v| acc + v))
    };
    GatewayCounts {
        aborts_injected: total(|c| c.aborts_injected),
        delays_injected: total(|c| c.delays_injected),
        downstream_rq: total(|c| c.downstream_rq),
        downstream_rq_5xx: total(|c| c.downstream_rq_5xx),
        upstream_rq_pending_overflow: total(|c| c.upstream_rq_pending_overflow),
        upstream_rq_active_overflow: total(|c| c.upstream_rq_active_overflow),
        outlier_ejections_enforced: total(|c| c.outlier_ejections_enforced),
    }
}

/// Why the first look at the gateway says nothing about the VirtualService, if it
/// does not: no pod's admin answered, or no pod has a route made from it (the
/// VirtualService's routes are in Envoy before any fault, so none will come).
fn not_made_from_it(looks: &[Result<Vec<EnvoyRoute>, String>]) -> Option<String> {
    if looks.iter().all(Result::is_err) {
        let why: Vec<&str> = looks
            .iter()
            .filter_map(|l| l.as_ref().err())
            .map(String::as_str)
            .collect();
        return Some(why.join("; "));
    }
    let none = looks.iter().all(|l| l.as_ref().map_or(true, Vec::is_empty));
    none.then(|| {
        "no route of the gateway's Envoy carries the VirtualService's istio.config metadata: this gateway is not configured from it".to_string()
    })
}

/// "1 gateway pod", "2 gateway pods".
fn pods_text(n: usize) -> String {
    format!("{n} gateway pod{}", if n == 1 { "" } else { "s" })
}

/// The gateway's Envoy admin on every ready gateway pod; implements `GatewayCounters`.
pub struct EnvoyAdmin {
    client: Client,
    settings: KubeSettings,
    pods: Api<Pod>,
    /// The listener's stat prefix (`outbound_0.0.0.0_<gateway port>`, as istiod names it).
    stat_prefix: String,
    /// The service's host, whose clusters' counters count.
    service_host: String,
    /// Why the admin did not answer, once no pod's did: later changes are not looked for.
    unreachable: Mutex<Option<String>>,
}

impl EnvoyAdmin {
    pub fn new(client: Client, settings: &KubeSettings) -> EnvoyAdmin {
        EnvoyAdmin {
            pods: Api::namespaced(client.clone(), &settings.ingress.namespace),
            client,
            stat_prefix: format!("outbound_0.0.0.0_{}", settings.ingress.port),
            service_host: format!(
                "{}.{}.svc.cluster.local",
                settings.refs.service, settings.namespace
            ),
            settings: settings.clone(),
            unreachable: Mutex::new(None),
        }
    }

    /// `GET path` on `pod`'s admin port through a port-forward, under `ADMIN_TIMEOUT`.
    async fn get(&self, pod: &str, path: &str) -> Result<String, String> {
        let port = self.settings.envoy_admin_port;
        let what = format!("GET {path} on pod {pod} port {port}");
        match tokio::time::timeout(ADMIN_TIMEOUT, self.get_unbounded(pod, port, path)).await {
            Ok(Ok(body)) => Ok(body),
            Ok(Err(e)) => Err(format!("{what}: {e}")),
            Err(_) => Err(format!(
                "{what}: no answer within {}",
                crate::units::format_duration(ADMIN_TIMEOUT)
            )),
        }
    }

    async fn get_unbounded(&self, pod: &str, port: u16, path: &str) -> Result<String, String> {
        let mut pf = self
            .pods
            .portforward(pod, &[port])
            .await
            .map_err(|e| format!("port-forward refused: {}", error_chain(&e)))?;
        let stream = pf
            .take_stream(port)
            .ok_or("the port-forward gave no stream")?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake: {}", error_chain(&e)))?;
        let driver = tokio::spawn(conn);
        let request = hyper::Request::get(path)
            .header("host", "localhost")
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("request: {e}"))?;
        let answer = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| format!("no HTTP answer: {}", error_chain(&e)))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| format!("reading the answer: {e}"))?
                .to_bytes();
            let text = String::from_utf8_lossy(&body).into_owned();
            if !status.is_success() {
                return Err(format!("answered {status}: {}", text.trim()));
            }
            Ok(text)
        }
        .await;
        driver.abort();
        pf.abort();
        answer
    }

    /// The routes made from `config` that `pod`'s Envoy holds now.
    async fn routes(&self, pod: &str, config: &str) -> Result<Vec<EnvoyRoute>, String> {
        let text = self
            .get(pod, "/config_dump?resource=dynamic_route_configs")
            .await?;
        let dump: Value = serde_json::from_str(&text).map_err(|e| {
            format!(
                "pod {pod} port {}: the answer is not an Envoy config_dump ({e}); the gateway pods' Envoy admin is expected on that port, as on Istio's gateways",
                self.settings.envoy_admin_port
            )
        })?;
        routes_in_config_dump(&dump, config).map_err(|e| format!("pod {pod}: {e}"))
    }

    /// Poll every ready gateway pod's routes made from the VirtualService every `POLL`
    /// until all hold `expected`, for up to `bound` after `accepted_at`. When no pod's
    /// admin answers at the first look, the data plane is `NotObserved` (said once; later
    /// changes are not looked for).
    pub async fn wait_until_held(
        &self,
        config: &str,
        expected: &[ExpectedRoute],
        accepted_at: Instant,
        bound: Duration,
    ) -> DataPlane {
        if self.unreachable.lock().map(|u| u.is_some()).unwrap_or(true) {
            return DataPlane::NotObserved;
        }
        let pods = match ingress_pods(&self.client, &self.settings).await {
            Ok(p) => p,
            Err(e) => return self.give_up(e),
        };
        let seen_in = format!("Envoy config_dump of {}", pods_text(pods.len()));
        let mut pending = pods;
        let mut first = true;
        loop {
            let looks = futures::future::join_all(pending.iter().map(|p| self.routes(p, config)));
            let looks = looks.await;
            if first && let Some(why) = not_made_from_it(&looks) {
                return self.give_up(why);
            }
            first = false;
            let mut last = Vec::new();
            let mut still = Vec::new();
            for (pod, look) in pending.into_iter().zip(looks) {
                let why = match look {
                    Ok(routes) => mismatch(&routes, expected),
                    Err(e) => Some(e),
                };
                if let Some(why) = why {
                    last.push(format!("{pod}: {why}"));
                    still.push(pod);
                }
            }
            if still.is_empty() {
                return DataPlane::SeenAfter {
                    after: accepted_at.elapsed(),
                    seen_in,
                };
            }
            if accepted_at.elapsed() >= bound {
                return DataPlane::NotSeenWithin {
                    bound,
                    seen_in,
                    last: last.join("; "),
                };
            }
            pending = still;
            tokio::time::sleep(POLL).await;
        }
    }

    /// The admin does not answer: said once, and nothing is observed from now on.
    fn give_up(&self, why: String) -> DataPlane {
        if let Ok(mut u) = self.unreachable.lock()
            && u.is_none()
        {
            self.settings.say(&format!(
                "kube: the gateway's Envoy admin (port {}) did not answer, so the faults' propagation to Envoy is not observed: {why}",
                self.settings.envoy_admin_port
            ));
            *u = Some(why);
        }
        DataPlane::NotObserved
    }

    /// The counters of every ready gateway pod, summed.
    async fn read_counters(&self) -> Result<GatewayReading, String> {
        let pods = ingress_pods(&self.client, &self.settings).await?;
        let texts = futures::future::join_all(pods.iter().map(|p| self.get(p, "/stats"))).await;
        let mut counts = Vec::new();
        for (pod, text) in pods.iter().zip(texts) {
            let c = parse_stats(&text?, &self.stat_prefix, &self.service_host);
            if c == GatewayCounts::default() {
                return Err(format!(
                    "pod {pod}: GET /stats on port {} answered none of the gateway's counters (http.{}.*, cluster.outbound|*|*|{}.*); is it Envoy's admin?",
                    self.settings.envoy_admin_port, self.stat_prefix, self.service_host
                ));
            }
            counts.push(c);
        }
        Ok(GatewayReading {
            source: format!("Envoy admin /stats of {}", pods_text(pods.len())),
            pods,
            counts: sum(&counts),
        })
    }
}

impl GatewayCounters for EnvoyAdmin {
    fn read(&self) -> BoxFuture<'_, Result<GatewayReading, String>> {
        Box::pin(self.read_counters())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A real Envoy 1.40's `/config_dump?resource=dynamic_route_configs`: route
    /// `mcp-agent` holds Istio's translation of abort 503 at 50 % and delay 200ms at
    /// 1.5 %, the unnamed `/` route none.
    const DUMP: &str = include_str!("../../../tests/corpus/envoy/config_dump_routes.json");
    /// A real Envoy 1.40's `/stats` after 200 requests at that route and 20 at `/`, trimmed.
    const STATS: &str = include_str!("../../../tests/corpus/envoy/stats.txt");
    const VS: &str =
        "/apis/networking.istio.io/v1/namespaces/mcp-agents/virtual-service/mcp-agent-vs";

    fn fault(abort: Option<(u32, u32)>, delay: Option<(u64, u32)>) -> Option<RouteFault> {
        Some(RouteFault {
            abort: abort.map(|(s, p)| AbortForm {
                http_status: Some(s),
                per_million: p,
            }),
            delay: delay.map(|(us, p)| DelayForm {
                fixed_delay_us: us,
                per_million: p,
            }),
        })
    }

    #[test]
    fn the_routes_of_the_virtual_service_are_found_in_a_real_config_dump() {
        let dump: Value = serde_json::from_str(DUMP).unwrap();
        let routes = routes_in_config_dump(&dump, VS).unwrap();
        assert_eq!(
            routes,
            [
                EnvoyRoute {
                    name: "mcp-agent".into(),
                    fault: fault(Some((503, 500_000)), Some((200_000, 15_000))),
                },
                EnvoyRoute {
                    name: String::new(),
                    fault: None
                },
            ]
        );
        let other = istio_config("mcp-agents", "another-vs");
        assert!(routes_in_config_dump(&dump, &other).unwrap().is_empty());
        // istiod names the version the object was stored in.
        let v1alpha3 = VS.replace("/v1/", "/v1alpha3/");
        assert_eq!(routes_in_config_dump(&dump, &v1alpha3).unwrap(), routes);
        assert!(!same_config(&v1alpha3, &other));
        let err = routes_in_config_dump(&json!({"ok": true}), VS).unwrap_err();
        assert!(err.contains("not an Envoy config_dump"), "{err}");
    }

    #[test]
    fn envoys_omitted_proto_defaults_read_as_envoy_means_them() {
        // As Envoy 1.40 renders numerator 0 of MILLION and 100 of HUNDRED, delay 2s.
        let f = json!({"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
            "delay": {"fixed_delay": "2s", "percentage": {"denominator": "MILLION"}},
            "abort": {"http_status": 503, "percentage": {"numerator": 100}}});
        assert_eq!(
            from_envoy(&f).unwrap(),
            fault(Some((503, 1_000_000)), Some((2_000_000, 0)))
        );
        let odd = json!({"abort": {"http_status": 503, "percentage": {"numerator": 1, "denominator": "BILLION"}}});
        assert!(from_envoy(&odd).unwrap_err().contains("BILLION"));
    }

    #[test]
    fn istio_faults_map_to_the_form_istiod_gives_envoy() {
        let istio = json!({"delay": {"percentage": {"value": 1.5}, "fixedDelay": "200ms"},
                           "abort": {"percentage": {"value": 50.0}, "httpStatus": 503}});
        let dump: Value = serde_json::from_str(DUMP).unwrap();
        let envoy = routes_in_config_dump(&dump, VS).unwrap()[0].fault.clone();
        // 1.5 % → 15000 per million; 200ms and "0.200s" are the same delay.
        assert_eq!(from_istio(&istio).unwrap(), envoy);
        // No percentage: 100 %; the deprecated integer percent when there is no percentage.
        let bare =
            json!({"abort": {"httpStatus": 500}, "delay": {"percent": 7, "fixedDelay": "1.5s"}});
        assert_eq!(
            from_istio(&bare).unwrap(),
            fault(Some((500, 1_000_000)), Some((1_500_000, 70_000)))
        );
        assert_eq!(from_istio(&Value::Null).unwrap(), None);
        assert_eq!(from_istio(&json!({})).unwrap(), None);
        // istiod truncates 0.29 * 10000 to 2899; the rounded 2900 is still the same fault.
        let a = fault(Some((503, 2899)), None).unwrap();
        let b = from_istio(&json!({"abort": {"httpStatus": 503, "percentage": {"value": 0.29}}}))
            .unwrap()
            .unwrap();
        assert!(a.same_as(&b) && !a.same_as(&fault(Some((503, 2910)), None).unwrap()));
    }

    #[test]
    fn held_means_every_route_holds_its_own_routes_fault() {
        let dump: Value = serde_json::from_str(DUMP).unwrap();
        let envoy = routes_in_config_dump(&dump, VS).unwrap();
        let injected = fault(Some((503, 500_000)), Some((200_000, 15_000)));
        let route = |name: Option<&str>, fault: Option<RouteFault>| ExpectedRoute {
            name: name.map(String::from),
            fault,
        };
        // `mcp-agent` by name, the unnamed route by the unnamed one.
        let expected = [
            route(Some("mcp-agent"), injected.clone()),
            route(None, None),
        ];
        assert_eq!(mismatch(&envoy, &expected), None);
        // Not yet propagated: the fault is expected on every route.
        let everywhere = [
            route(Some("mcp-agent"), injected.clone()),
            route(None, injected),
        ];
        let why = mismatch(&envoy, &everywhere).unwrap();
        assert_eq!(
            why,
            "route `(unnamed)` holds no fault instead of abort 503 at 50% and delay 200ms at 1.5%"
        );
        assert!(mismatch(&[], &expected).unwrap().contains("istio.config"));
    }

    #[test]
    fn the_counters_of_a_real_stats_answer_are_the_listeners_and_the_services() {
        let c = parse_stats(
            STATS,
            "outbound_0.0.0.0_8080",
            "mcp-agent-service.mcp-agents.svc.cluster.local",
        );
        assert_eq!(
            c,
            GatewayCounts {
                aborts_injected: Some(109),
                delays_injected: Some(3),
                downstream_rq: Some(220),
                downstream_rq_5xx: Some(109),
                upstream_rq_pending_overflow: Some(0),
                upstream_rq_active_overflow: Some(0),
                outlier_ejections_enforced: Some(0),
            }
        );
        // Another gateway port or service: nothing of it is known, not zeros.
        let other = parse_stats(STATS, "outbound_0.0.0.0_9090", "other.svc.cluster.local");
        assert_eq!(other, GatewayCounts::default());
        // Two pods add up; one pod without a counter makes the sum unknown.
        let both = sum(&[c, c]);
        assert_eq!(both.aborts_injected, Some(218));
        let partial = sum(&[c, GatewayCounts::default()]);
        assert_eq!(partial.aborts_injected, None);
    }
}
