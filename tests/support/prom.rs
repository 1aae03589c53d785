//! A real Prometheus for tests: Debian's `/usr/bin/prometheus` started on a free
//! loopback port with a generated config (1s scrape and evaluation intervals; file_sd
//! pointing at a file the test or the run writes, or scrape jobs the test gives, such as
//! `slo-check stack scrape-config`'s; the stack's rules with short windows), or as a
//! remote-write receiver; ready when `/-/ready` answers 200, killed on drop.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long Prometheus may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The Prometheus binary, or a panic saying how to install it.
pub fn prometheus_binary() -> PathBuf {
    let path = PathBuf::from("/usr/bin/prometheus");
    assert!(
        path.exists(),
        "Prometheus is not installed (/usr/bin/prometheus is missing): run scripts/test.sh, which installs Debian's `prometheus` package (CI does)"
    );
    path
}

/// Upstream's `prometheus` or `promtool` (`name`), built with Kubernetes service
/// discovery by scripts/prometheus-build.sh: Debian's package has none. `None` (with the
/// reason printed) when it is not built and `SLO_CHECK_REQUIRE_CLUSTER` is unset;
/// scripts/test.sh builds it and sets that, so CI never skips.
pub fn kubernetes_sd_binary(name: &str) -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/prometheus-build.sh");
    let bin = match std::env::var_os("SLO_CHECK_PROMETHEUS_SD_BIN") {
        Some(dir) => PathBuf::from(dir),
        None => {
            // The version is the script's, so the two cannot drift apart.
            let text = std::fs::read_to_string(&script).expect("scripts/prometheus-build.sh");
            let version = text
                .lines()
                .find_map(|l| l.strip_prefix("PROMETHEUS_VERSION="))
                .and_then(|v| v.split_whitespace().next())
                .expect("PROMETHEUS_VERSION= in scripts/prometheus-build.sh");
            let cache = std::env::var_os("SLO_CHECK_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/slo-check")
                });
            cache.join("prometheus").join(version).join("bin")
        }
    };
    let path = bin.join(name);
    if path.is_file() {
        return Some(path);
    }
    let why = format!(
        "{} is missing: Debian's Prometheus has no kubernetes_sd_configs; build upstream's with {}",
        path.display(),
        script.display()
    );
    assert!(
        std::env::var_os("SLO_CHECK_REQUIRE_CLUSTER").is_none(),
        "{why}"
    );
    eprintln!("skipped: {why}");
    None
}

/// `promtool`, or a panic saying how to install it.
pub fn promtool_binary() -> PathBuf {
    let path = PathBuf::from("/usr/bin/promtool");
    assert!(
        path.exists(),
        "promtool is not installed (/usr/bin/promtool is missing): run scripts/test.sh, which installs Debian's `prometheus` package (CI does)"
    );
    path
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// The stack's rules file with testable windows: `[1m]` → `[5s]`, `for: 1m` → `for: 1s`.
pub fn short_rules(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("stack/base/prometheus-rules.yaml");
    let text = std::fs::read_to_string(&src).expect("stack/base/prometheus-rules.yaml");
    assert!(text.contains("[1m]") && text.contains("for: 1m"));
    let short = text.replace("[1m]", "[5s]").replace("for: 1m", "for: 1s");
    let path = dir.join("rules-short.yaml");
    std::fs::write(&path, short).expect("write the short rules");
    path
}

/// A running Prometheus; killed (and waited for) on drop.
pub struct PromServer {
    child: Child,
    pub url: String,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl PromServer {
    /// Starts Prometheus scraping the file_sd file `sd_file` every second and loading
    /// `rules` (if any), and waits until it is ready.
    pub fn start(sd_file: &Path, rules: Option<&Path>) -> PromServer {
        PromServer::with_scrape_configs(
            &prometheus_binary(),
            &format!(
                "scrape_configs:\n  - job_name: slo-check\n    file_sd_configs:\n      - files: [\"{}\"]\n        refresh_interval: 1s\n",
                sd_file.display()
            ),
            rules,
        )
    }

    /// Starts the Prometheus `bin` with `scrape_configs` (a YAML document holding the
    /// `scrape_configs:` key, e.g. `slo-check stack scrape-config`'s output), 1s scrape
    /// and evaluation intervals and `rules` (if any), and waits until it is ready.
    pub fn with_scrape_configs(
        bin: &Path,
        scrape_configs: &str,
        rules: Option<&Path>,
    ) -> PromServer {
        PromServer::launch(bin, scrape_configs, rules, &[])
    }

    /// Starts Debian's Prometheus with nothing to scrape, accepting remote write at
    /// `{url}/api/v1/write` (`--web.enable-remote-write-receiver`, Prometheus ≥ 2.33).
    pub fn remote_write_receiver() -> PromServer {
        PromServer::launch(
            &prometheus_binary(),
            "scrape_configs: []\n",
            None,
            &["--web.enable-remote-write-receiver"],
        )
    }

    /// The remote-write endpoint (with `remote_write_receiver`).
    pub fn write_url(&self) -> String {
        format!("{}/api/v1/write", self.url)
    }

    /// An instant PromQL query: each series' labels and value.
    pub fn query(&self, promql: &str) -> Vec<(serde_json::Value, f64)> {
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", promql)
            .finish();
        let (code, body) = http_get(self.addr, &format!("/api/v1/query?{q}"))
            .unwrap_or_else(|| panic!("Prometheus at {} does not answer", self.addr));
        let v: serde_json::Value = serde_json::from_str(&body).expect("a JSON answer");
        assert_eq!(code, 200, "{promql}: {body}");
        v["data"]["result"]
            .as_array()
            .expect("a vector result")
            .iter()
            .map(|r| {
                let value = r["value"][1].as_str().expect("a value").parse().unwrap();
                (r["metric"].clone(), value)
            })
            .collect()
    }

    fn launch(
        bin: &Path,
        scrape_configs: &str,
        rules: Option<&Path>,
        extra: &[&str],
    ) -> PromServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let rule_files = rules
            .map(|r| format!("rule_files: [\"{}\"]\n", r.display()))
            .unwrap_or_default();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n{rule_files}{scrape_configs}"
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let mut server = PromServer {
            child,
            url: format!("http://{addr}"),
            addr,
            _dir: dir,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self._dir.path().join("prometheus.log"))
                    .unwrap_or_default();
                panic!("prometheus exited with {status} before it was ready:\n{log}");
            }
            if http_get(self.addr, "/-/ready").is_some_and(|(code, _)| code == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "prometheus was not ready on {} within {READY_TIMEOUT:?}",
            self.addr
        );
    }

    /// Prometheus's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for PromServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.0 GET on loopback: (status, body), or None when nothing answers.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}
