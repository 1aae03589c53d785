//! A fake of the gateway's Envoy admin (port 15000 of the double's gateway pod): it
//! answers `/config_dump?resource=dynamic_route_configs` with the routes istiod makes
//! from a VirtualService (its `istio.config` metadata), each holding the fault it is
//! told, in the JSON shape a real Envoy 1.40 gives (tests/corpus/envoy); and `/stats`
//! with the counters it is told. `istio_to_envoy` translates a route's Istio fault as
//! istiod does, so a test can play istiod: copy the VirtualService into the fake, late.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::common::{Server, respond};

/// What the fake answers now.
#[derive(Default)]
struct Held {
    /// Per route (name, Envoy HTTPFault or null).
    routes: Vec<(String, Value)>,
    /// Makes the `/stats` text.
    stats: Option<Box<dyn Fn() -> String + Send>>,
    /// config_dump requests answered.
    dumps: u64,
}

/// The fake admin; stops when dropped.
pub struct FakeEnvoyAdmin {
    pub server: Server,
    held: Arc<Mutex<Held>>,
    config: String,
}

impl FakeEnvoyAdmin {
    /// Routes of VirtualService `namespace/name`, holding no fault yet; no counters.
    pub fn start(namespace: &str, name: &str, routes: &[&str]) -> FakeEnvoyAdmin {
        let held = Arc::new(Mutex::new(Held {
            routes: routes
                .iter()
                .map(|r| (r.to_string(), Value::Null))
                .collect(),
            ..Held::default()
        }));
        let config =
            format!("/apis/networking.istio.io/v1/namespaces/{namespace}/virtual-service/{name}");
        let (shared, metadata) = (held.clone(), config.clone());
        let server = Server::http(move |req| {
            let shared = shared.clone();
            let metadata = metadata.clone();
            async move {
                let mut held = shared.lock().unwrap();
                match req.path.as_str() {
                    "/config_dump?resource=dynamic_route_configs" => {
                        held.dumps += 1;
                        respond(200, dump(&metadata, &held.routes).to_string())
                    }
                    "/stats" => respond(200, held.stats.as_ref().map(|f| f()).unwrap_or_default()),
                    _ => respond(404, "invalid path"),
                }
            }
        });
        FakeEnvoyAdmin {
            server,
            held,
            config,
        }
    }

    /// From now on the routes hold these Envoy faults (in route order; null: none).
    pub fn hold(&self, faults: Vec<Value>) {
        let mut held = self.held.lock().unwrap();
        for ((_, slot), fault) in held.routes.iter_mut().zip(faults) {
            *slot = fault;
        }
    }

    /// From now on `/stats` answers `text`.
    pub fn set_stats(&self, text: &str) {
        let text = text.to_string();
        self.stats_from(move || text.clone());
    }

    /// From now on `/stats` answers what `make` says at the time.
    pub fn stats_from(&self, make: impl Fn() -> String + Send + 'static) {
        self.held.lock().unwrap().stats = Some(Box::new(make));
    }

    /// How many config_dumps were asked for.
    pub fn dumps(&self) -> u64 {
        self.held.lock().unwrap().dumps
    }

    /// The `istio.config` metadata of the routes.
    pub fn config(&self) -> &str {
        &self.config
    }
}

/// A `dynamic_route_configs` dump, as Envoy 1.40 renders it.
fn dump(config: &str, routes: &[(String, Value)]) -> Value {
    let routes: Vec<Value> = routes
        .iter()
        .map(|(name, fault)| {
            let mut route = json!({
                "match": {"prefix": "/"},
                "route": {"cluster": "outbound|80||mcp-agent-service.mcp-agents.svc.cluster.local"},
                "metadata": {"filter_metadata": {"istio": {"config": config}}},
                "name": name,
            });
            if !fault.is_null() {
                route["typed_per_filter_config"] = json!({"envoy.filters.http.fault": fault});
            }
            route
        })
        .collect();
    json!({"configs": [{
        "@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump.DynamicRouteConfig",
        "route_config": {
            "@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
            "name": "http.8080",
            "virtual_hosts": [{"name": "*:8080", "domains": ["*"], "routes": routes}],
        },
        "last_updated": "2026-12-05T09:39:33.764Z",
    }]})
}

/// A route's Istio `fault` (null: none) as istiod gives it to Envoy: percentages in
/// millionths of MILLION, a missing one 100 %; the delay as protobuf JSON seconds.
pub fn istio_to_envoy(fault: &Value) -> Value {
    if fault.is_null() {
        return Value::Null;
    }
    let percentage = |part: &Value| {
        let value = part["percentage"]["value"].as_f64().unwrap_or(100.0);
        json!({"numerator": (value * 10_000.0) as u64, "denominator": "MILLION"})
    };
    let mut out =
        json!({"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"});
    let delay = &fault["delay"];
    if let Some(ms) = delay["fixedDelay"]
        .as_str()
        .and_then(|d| d.strip_suffix("ms"))
        .and_then(|ms| ms.parse::<u64>().ok())
    {
        out["delay"] = json!({"fixed_delay": format!("{:.3}s", ms as f64 / 1000.0), "percentage": percentage(delay)});
    }
    let abort = &fault["abort"];
    if let Some(status) = abort["httpStatus"].as_u64() {
        out["abort"] = json!({"http_status": status, "percentage": percentage(abort)});
    }
    out
}
