//! End to end against a real Envoy (the binary named by $SLO_CHECK_ENVOY_BIN): the
//! stack's Istio objects, translated and written as xDS files, route traffic to a
//! backend on 127.0.0.1; a fault switches on and off for a live keep-alive connection;
//! Envoy rejects none of the updates. Without the variable the test says it was
//! skipped, unless SLO_CHECK_REQUIRE_ENVOY=1 makes that a failure.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::translate::{Proxy, Snapshot, World, translate};
use crate::xds;

/// Every wait is bounded by this.
const WAIT: Duration = Duration::from_secs(10);

/// The Envoy binary, or None (printing that the test is skipped).
fn envoy_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SLO_CHECK_ENVOY_BIN") {
        return Some(PathBuf::from(p));
    }
    assert!(
        std::env::var("SLO_CHECK_REQUIRE_ENVOY").as_deref() != Ok("1"),
        "SLO_CHECK_REQUIRE_ENVOY=1 but SLO_CHECK_ENVOY_BIN (the Envoy binary) is not set"
    );
    println!("skipped: SLO_CHECK_ENVOY_BIN (the Envoy binary) is not set");
    None
}

/// A running Envoy, killed when dropped: on every exit path, failed asserts included.
struct Envoy {
    child: Child,
    log: PathBuf,
    admin: Option<SocketAddr>,
}

impl Envoy {
    /// Starts Envoy on `dir`'s bootstrap.json and waits for its admin address.
    fn start(bin: &Path, dir: &Path) -> Envoy {
        let log = dir.join("envoy.log");
        let out = std::fs::File::create(&log).unwrap();
        let address_file = dir.join("admin-address");
        let child = Command::new(bin)
            .arg("--config-path")
            .arg(dir.join("bootstrap.json"))
            .args([
                "--disable-hot-restart",
                "--concurrency",
                "1",
                "--log-level",
                "info",
            ])
            .arg("--admin-address-path")
            .arg(&address_file)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let mut envoy = Envoy {
            child,
            log,
            admin: None,
        };
        let admin = envoy.wait("the admin address", || {
            std::fs::read_to_string(&address_file)
                .ok()?
                .trim()
                .parse()
                .ok()
        });
        envoy.admin = Some(admin);
        envoy
    }

    /// Envoy's log (its stderr and its access log), for failure messages.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `f` until it gives a value, at most WAIT; fails with Envoy's log.
    fn wait<T>(&mut self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = f() {
                return v;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "Envoy exited ({status}) waiting for {what}; its log:\n{}",
                    self.log()
                );
            }
            assert!(
                start.elapsed() < WAIT,
                "no {what} after {WAIT:?}; Envoy's log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// GET `path` on the admin interface.
    fn admin(&self, path: &str) -> String {
        let mut c = Client::connect(self.admin.unwrap()).unwrap();
        let (status, body) = c.get(path, "admin").unwrap();
        assert_eq!(status, 200, "admin {path}: {body}");
        body
    }

    /// The counters and gauges of /stats.
    fn stats(&self) -> BTreeMap<String, u64> {
        self.admin("/stats")
            .lines()
            .filter_map(|l| {
                let (name, value) = l.split_once(": ")?;
                Some((name.to_string(), value.trim().parse().ok()?))
            })
            .collect()
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP/1.1 client on one keep-alive connection.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> std::io::Result<Client> {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(Client {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
        })
    }

    /// GET `path` with Host `host`: (status, body). An error when the connection closed.
    fn get(&mut self, path: &str, host: &str) -> std::io::Result<(u16, String)> {
        write!(self.writer, "GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n")?;
        let mut line = String::new();
        let closed = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed");
        if self.reader.read_line(&mut line)? == 0 {
            return Err(closed());
        }
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(closed)?;
        let (mut length, mut chunked) = (0usize, false);
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(closed());
            }
            let l = line.trim_end().to_ascii_lowercase();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            chunked |= l == "transfer-encoding: chunked";
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim(), 16).map_err(|_| closed())?;
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else {
            body.resize(length, 0);
            self.reader.read_exact(&mut body)?;
        }
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// A backend on 127.0.0.1 answering every request 200 "backend" (HTTP/1.1 keep-alive).
fn backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut writer = conn;
                let mut line = String::new();
                loop {
                    let mut length = 0usize;
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end().to_ascii_lowercase();
                        if l.is_empty() {
                            break;
                        }
                        if let Some(v) = l.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err()
                        || writer
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\nbackend")
                            .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A free port on 127.0.0.1 (free when this returns).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn k8s<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

/// The stack's Istio objects (stack/base/istio.yaml) with the gateway's Service mapping
/// port 80 to `listen_port`, and the agent's Service with one endpoint: `backend`.
fn world(listen_port: u16, backend: SocketAddr) -> World {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/stack/base/istio.yaml");
    let mut docs: Vec<Value> =
        serde_saphyr::from_multiple(&std::fs::read_to_string(path).unwrap()).unwrap();
    for d in &mut docs {
        d["metadata"]["namespace"] = "mcp-agents".into();
    }
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
                         "ports": [{"name": "http2", "port": 80, "targetPort": listen_port}]},
            })),
            k8s(json!({
                "metadata": {"name": "mcp-agent-service", "namespace": "mcp-agents"},
                "spec": {"selector": {"app.kubernetes.io/name": "mcp-agent"},
                         "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
            })),
        ],
        endpoint_slices: vec![k8s(json!({
            "metadata": {"name": "mcp-agent-service-x1", "namespace": "mcp-agents",
                         "labels": {"kubernetes.io/service-name": "mcp-agent-service"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": backend.port()}],
            "endpoints": [{"addresses": [backend.ip().to_string()], "conditions": {"ready": true}}],
        }))],
        pods: vec![],
    }
}

fn proxy() -> Proxy {
    Proxy {
        bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        ..Proxy::new("istio-system", &[("istio", "ingressgateway")])
    }
}

/// Polls requests on `client` until one answers `status`, at most WAIT.
fn until_status(envoy: &mut Envoy, client: &mut Client, status: u16) -> String {
    envoy.wait(
        &format!("a {status} on the same connection"),
        || match client.get("/", "agent.test") {
            Ok((s, body)) if s == status => Some(body),
            Ok(_) => None,
            Err(e) => panic!(
                "the keep-alive connection broke ({e}): routes must change without a listener drain"
            ),
        },
    )
}

#[test]
fn a_real_envoy_serves_the_translation_and_switches_faults_on_live_connections() {
    let Some(bin) = envoy_bin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let backend = backend();
    let port = free_port();
    let plain = translate(&world(port, backend), &proxy());
    assert!(plain.warnings.is_empty(), "{:?}", plain.warnings);
    xds::write(d, &plain, "1").unwrap();
    // Admin on a known port, so Istio's Prometheus listener can reach it.
    let admin: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let prom: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let boot = xds::bootstrap(
        d,
        "istio-ingressgateway-0.istio-system",
        "istio-ingressgateway",
        admin,
        Some(prom),
    );
    std::fs::write(
        d.join("bootstrap.json"),
        serde_json::to_vec_pretty(&boot).unwrap(),
    )
    .unwrap();
    let mut envoy = Envoy::start(&bin, d);

    let listener: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut client = envoy.wait("the listener", || Client::connect(listener).ok());
    let body = until_status(&mut envoy, &mut client, 200);
    assert_eq!(body, "backend");

    // The fault slo-check patches in, at 100 %: the same connection gets it.
    let mut w = world(port, backend);
    w.virtual_services[0]["spec"]["http"][0]["fault"] =
        json!({"abort": {"percentage": {"value": 100}, "httpStatus": 503}});
    let faulty: Snapshot = translate(&w, &proxy());
    let changed = xds::write(d, &faulty, "2").unwrap();
    assert_eq!(
        changed,
        xds::Changed {
            routes: true,
            ..Default::default()
        },
        "a fault is a route change only"
    );
    let body = until_status(&mut envoy, &mut client, 503);
    assert_eq!(body, "fault filter abort");

    let stats = envoy.stats();
    let aborts = format!("http.outbound_0.0.0.0_{port}.fault.aborts_injected");
    assert!(
        stats.get(&aborts).is_some_and(|n| *n > 0),
        "{aborts} in {stats:#?}"
    );
    // The same counter on Istio's Prometheus listener, as Prometheus scrapes a gateway.
    // Envoy's default tag extraction reads the prefix up to its first dot: the tag says
    // `outbound_0` and the rest of the address lands in the name (istio-proxy replaces
    // these tags with its own; upstream Envoy has its defaults).
    let (status, text) = Client::connect(prom)
        .expect("the stats listener")
        .get("/stats/prometheus", "stats")
        .expect("an answer");
    assert_eq!(status, 200, "{text}");
    let series = format!(
        "envoy_http_0_0_0_{port}_fault_aborts_injected{{envoy_http_conn_manager_prefix=\"outbound_0\"}} "
    );
    let aborted = text
        .lines()
        .find(|l| l.starts_with(&series))
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"));
    assert!(!aborted.ends_with(" 0"), "{aborted}");
    let dump: Value =
        serde_json::from_str(&envoy.admin("/config_dump?resource=dynamic_route_configs")).unwrap();
    let routes: Vec<&Value> = dump["configs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| {
            c["route_config"]["virtual_hosts"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .flat_map(|vh| vh["routes"].as_array().into_iter().flatten())
        .collect();
    let vs = "/apis/networking.istio.io/v1/namespaces/mcp-agents/virtual-service/mcp-agent-vs";
    assert!(
        routes.iter().any(
            |r| r["metadata"]["filter_metadata"]["istio"]["config"] == vs
                && r["typed_per_filter_config"]["envoy.filters.http.fault"]["abort"]["http_status"]
                    == 503
        ),
        "no route with the VirtualService's metadata and the fault in {dump:#}"
    );

    // The fault exactly as slo-check patches it (1.5 % aborts, 10 % delayed 200 ms):
    // Envoy takes it (the rejected counters are checked below).
    let rds_success = format!("http.outbound_0.0.0.0_{port}.rds.http.{port}.update_success");
    let before = envoy.stats()[&rds_success];
    w.virtual_services[0]["spec"]["http"][0]["fault"] = json!({
        "abort": {"percentage": {"value": 1.5}, "httpStatus": 503},
        "delay": {"percentage": {"value": 10}, "fixedDelay": "200ms"},
    });
    xds::write(d, &translate(&w, &proxy()), "2b").unwrap();
    let start = Instant::now();
    loop {
        let stats = envoy.stats();
        if stats[&rds_success] > before
            || stats
                .iter()
                .any(|(k, v)| k.ends_with("update_rejected") && *v > 0)
        {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "no route update after {WAIT:?}; Envoy's log:\n{}",
            envoy.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Reverted: the same connection gets the backend again.
    xds::write(d, &plain, "3").unwrap();
    assert_eq!(until_status(&mut envoy, &mut client, 200), "backend");

    let stats = envoy.stats();
    let rds = format!("http.outbound_0.0.0.0_{port}.rds.http.{port}");
    let eds = "cluster.outbound|80||mcp-agent-service.mcp-agents.svc.cluster.local";
    for name in [
        "cluster_manager.cds.update_rejected".to_string(),
        "listener_manager.lds.update_rejected".to_string(),
        format!("{rds}.update_rejected"),
        format!("{eds}.update_rejected"),
    ] {
        assert!(
            stats.contains_key(&name),
            "no {name} in the stats: {stats:#?}"
        );
    }
    let rejected: Vec<(&String, &u64)> = stats
        .iter()
        .filter(|(k, v)| k.ends_with("update_rejected") && **v > 0)
        .collect();
    assert!(
        rejected.is_empty(),
        "Envoy rejected updates {rejected:?}; its log:\n{}",
        envoy.log()
    );
    assert!(stats[&format!("{rds}.update_success")] >= 3, "{stats:#?}");
    assert_eq!(
        stats["listener_manager.lds.update_success"], 1,
        "the listener never changed"
    );

    // The endpoints gone: 503 UH from the same cluster (an EDS update, not a new
    // cluster), then back.
    let mut w = world(port, backend);
    w.endpoint_slices.clear();
    let changed = xds::write(d, &translate(&w, &proxy()), "4").unwrap();
    assert_eq!(
        changed,
        xds::Changed {
            endpoints: true,
            ..Default::default()
        }
    );
    assert_eq!(
        until_status(&mut envoy, &mut client, 503),
        "no healthy upstream"
    );
    xds::write(d, &plain, "5").unwrap();
    assert_eq!(until_status(&mut envoy, &mut client, 200), "backend");
    let after = envoy.stats();
    assert_eq!(
        after["cluster_manager.cds.update_success"],
        stats["cluster_manager.cds.update_success"]
    );
    assert_eq!(after["cluster_manager.cluster_modified"], 0, "{after:#?}");
    assert!(after[&format!("{eds}.update_success")] >= stats[&format!("{eds}.update_success")] + 2);
    let rejected: Vec<(&String, &u64)> = after
        .iter()
        .filter(|(k, v)| k.ends_with("update_rejected") && **v > 0)
        .collect();
    assert!(
        rejected.is_empty(),
        "Envoy rejected updates {rejected:?}; its log:\n{}",
        envoy.log()
    );
    assert!(!envoy.log().contains("Deprecated field"), "{}", envoy.log());
}
