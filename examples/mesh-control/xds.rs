//! A translation's result as Envoy file-based xDS, and the Envoy bootstrap that reads
//! it: Envoy watches the files, so writing them is pushing the configuration.
//!
//! Layout under the directory: `lds.json` (all listeners) and `cds.json` (all
//! clusters), watched in the directory itself; `rds/<route name>.json` and
//! `eds/<cluster name>.json`, one resource each (an RDS or EDS subscription takes
//! exactly one resource per update), each watched in its own folder. Every file is
//! `{"version_info": ..., "resources": [...]}` and is replaced by a write to a temporary
//! file in the same folder and a rename (Envoy reloads on a move into the folder, and
//! never sees half a file).
//!
//! Start Envoy with the bootstrap as:
//!
//! ```text
//! envoy --config-path DIR/bootstrap.json --disable-hot-restart \
//!       --admin-address-path DIR/admin-address [--concurrency 1] [--log-level info]
//! ```
//!
//! (`--config-yaml "$(cat DIR/bootstrap.json)"` works too: JSON is YAML.)
//! `--disable-hot-restart` lets several Envoys run on one machine without a shared
//! memory region each; with the admin port 0, `--admin-address-path` is where Envoy
//! writes the address it bound. Its access log goes to its stdout.

#[cfg(test)]
mod e2e;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Value, json};

use crate::translate::Snapshot;

const LDS: &str = "lds.json";
const CDS: &str = "cds.json";
const RDS_DIR: &str = "rds";
const EDS_DIR: &str = "eds";

/// Which kinds of resources a `write` changed on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changed {
    pub endpoints: bool,
    pub clusters: bool,
    pub routes: bool,
    pub listeners: bool,
}

impl Changed {
    /// Whether anything changed.
    pub fn any(&self) -> bool {
        self.endpoints || self.clusters || self.routes || self.listeners
    }
}

/// A config source reading `file`, reloaded on moves into `watched`.
fn path_source(file: &Path, watched: &Path) -> Value {
    json!({
        "resource_api_version": "V3",
        // Wait for the file however long it takes, as istiod's sources do (the files
        // are written before anything refers to them).
        "initial_fetch_timeout": "0s",
        "path_config_source": {
            "path": file.display().to_string(),
            "watched_directory": {"path": watched.display().to_string()},
        },
    })
}

/// The file of a resource named `name` in `folder` ('/' is not a file name character).
fn resource_file(folder: &Path, name: &str) -> PathBuf {
    folder.join(format!("{}.json", name.replace('/', "_")))
}

/// The Envoy bootstrap for the files `write` puts in `dir` (an absolute path: Envoy
/// resolves relative ones against its own working directory): node `node_id` of
/// `cluster`, admin on `admin` (port 0: any, see `--admin-address-path`), listeners and
/// clusters from `dir`, and a runtime with an admin layer (runtime overrides through
/// the admin's /runtime_modify need one). With `stats`, Istio's Prometheus listener as
/// its bootstrap has it: `stats` (Istio: 0.0.0.0:15090) serves `/stats/prometheus`
/// through the static cluster `prometheus_stats`, which is the admin (then on a known
/// port).
pub fn bootstrap(
    dir: &Path,
    node_id: &str,
    cluster: &str,
    admin: SocketAddr,
    stats: Option<SocketAddr>,
) -> Value {
    let mut boot = json!({
        "node": {"id": node_id, "cluster": cluster},
        "admin": {
            "address": {"socket_address": {"address": admin.ip().to_string(), "port_value": admin.port()}},
        },
        "dynamic_resources": {
            "lds_config": path_source(&dir.join(LDS), dir),
            "cds_config": path_source(&dir.join(CDS), dir),
        },
        "layered_runtime": {"layers": [{"name": "admin", "admin_layer": {}}]},
    });
    if let Some(stats) = stats {
        let admin_ip = if admin.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            admin.ip().to_string()
        };
        boot["static_resources"] = json!({
            "listeners": [{
                "name": "prometheus_stats",
                "address": {"socket_address": {"address": stats.ip().to_string(), "port_value": stats.port()}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "codec_type": "AUTO",
                        "stat_prefix": "stats",
                        "route_config": {"virtual_hosts": [{
                            "name": "backend",
                            "domains": ["*"],
                            "routes": [{
                                "match": {"prefix": "/stats/prometheus"},
                                "route": {"cluster": "prometheus_stats"},
                            }],
                        }]},
                        "http_filters": [{
                            "name": "envoy.filters.http.router",
                            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
                        }],
                    },
                }]}],
            }],
            "clusters": [{
                "name": "prometheus_stats",
                "type": "STATIC",
                "connect_timeout": "0.250s",
                "load_assignment": {
                    "cluster_name": "prometheus_stats",
                    "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                        "socket_address": {"address": admin_ip, "port_value": admin.port()},
                    }}}]}],
                },
            }],
        });
    }
    boot
}

/// Writes `snapshot` under `dir` as version `version`: only the files whose resources
/// differ from what is on disk (version_info aside), in the order EDS, CDS, RDS, LDS
/// (so nothing ever names a cluster or route Envoy does not have yet), then removes the
/// eds/ and rds/ files of resources no longer in the snapshot. The listeners' RDS and
/// the clusters' EDS sources are pointed at these files.
pub fn write(dir: &Path, snapshot: &Snapshot, version: &str) -> anyhow::Result<Changed> {
    let rds_dir = dir.join(RDS_DIR);
    let eds_dir = dir.join(EDS_DIR);
    for d in [dir, &rds_dir, &eds_dir] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let mut changed = Changed::default();

    let mut eds_files = Vec::new();
    for cla in &snapshot.endpoints {
        let name = cla["cluster_name"]
            .as_str()
            .context("a ClusterLoadAssignment has no cluster_name")?;
        let file = resource_file(&eds_dir, name);
        changed.endpoints |= write_file(&file, std::slice::from_ref(cla), version)?;
        eds_files.push(file);
    }

    let clusters: Vec<Value> = snapshot
        .clusters
        .iter()
        .map(|c| {
            let mut c = c.clone();
            let name = c["eds_cluster_config"]["service_name"]
                .as_str()
                .or(c["name"].as_str())
                .unwrap_or("")
                .to_string();
            if c["eds_cluster_config"].is_object() {
                c["eds_cluster_config"]["eds_config"] =
                    path_source(&resource_file(&eds_dir, &name), &eds_dir);
            }
            c
        })
        .collect();
    changed.clusters |= write_file(&dir.join(CDS), &clusters, version)?;

    let mut rds_files = Vec::new();
    for rc in &snapshot.routes {
        let name = rc["name"]
            .as_str()
            .context("a RouteConfiguration has no name")?;
        let file = resource_file(&rds_dir, name);
        changed.routes |= write_file(&file, std::slice::from_ref(rc), version)?;
        rds_files.push(file);
    }

    let listeners: Vec<Value> = snapshot
        .listeners
        .iter()
        .map(|l| {
            let mut l = l.clone();
            for chain in l["filter_chains"].as_array_mut().into_iter().flatten() {
                for filter in chain["filters"].as_array_mut().into_iter().flatten() {
                    let rds = &mut filter["typed_config"]["rds"];
                    if let Some(name) = rds["route_config_name"].as_str() {
                        rds["config_source"] =
                            path_source(&resource_file(&rds_dir, name), &rds_dir);
                    }
                }
            }
            l
        })
        .collect();
    changed.listeners |= write_file(&dir.join(LDS), &listeners, version)?;

    changed.endpoints |= remove_others(&eds_dir, &eds_files)?;
    changed.routes |= remove_others(&rds_dir, &rds_files)?;
    Ok(changed)
}

/// Writes `resources` to `file` (temporary file and rename) unless the file already
/// holds them. Returns whether it wrote.
fn write_file(file: &Path, resources: &[Value], version: &str) -> anyhow::Result<bool> {
    let on_disk: Option<Value> = std::fs::read(file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if on_disk
        .as_ref()
        .and_then(|v| v["resources"].as_array())
        .map(Vec::as_slice)
        == Some(resources)
    {
        return Ok(false);
    }
    let body =
        serde_json::to_vec_pretty(&json!({"version_info": version, "resources": resources}))?;
    write_atomically(file, &body)?;
    Ok(true)
}

/// Writes `bytes` to `file` through a temporary file in the same folder and a rename:
/// atomic, so Envoy never reads half a file, and the move is what it watches for.
pub fn write_atomically(file: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let folder = file.parent().context("a file path has a folder")?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(folder)
        .with_context(|| format!("creating a temporary file in {}", folder.display()))?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(file)
        .with_context(|| format!("renaming into {}", file.display()))?;
    Ok(())
}

/// Removes the .json files of `folder` not in `keep`. Returns whether it removed any.
fn remove_others(folder: &Path, keep: &[PathBuf]) -> anyhow::Result<bool> {
    let mut removed = false;
    for entry in
        std::fs::read_dir(folder).with_context(|| format!("listing {}", folder.display()))?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") && !keep.contains(&path) {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            removed = true;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(fault: bool, clusters: &[&str]) -> Snapshot {
        let mut route =
            json!({"name": "r", "match": {"prefix": "/"}, "route": {"cluster": clusters[0]}});
        if fault {
            route["typed_per_filter_config"] = json!({"envoy.filters.http.fault": {}});
        }
        Snapshot {
            listeners: vec![json!({
                "name": "0.0.0.0_8080",
                "filter_chains": [{"filters": [{"typed_config": {"rds": {"route_config_name": "http.8080", "config_source": {"ads": {}}}}}]}],
            })],
            routes: vec![json!({"name": "http.8080", "virtual_hosts": [{"routes": [route]}]})],
            clusters: clusters
                .iter()
                .map(|c| json!({"name": c, "type": "EDS", "eds_cluster_config": {"service_name": c, "eds_config": {"ads": {}}}}))
                .collect(),
            endpoints: clusters.iter().map(|c| json!({"cluster_name": c, "endpoints": []})).collect(),
            warnings: vec![],
        }
    }

    fn read(path: &Path) -> Value {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn writes_one_file_per_route_and_cluster_and_points_the_sources_at_them() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let a = "outbound|80||a.ns.svc.cluster.local";
        let changed = write(d, &snapshot(false, &[a]), "1").unwrap();
        assert_eq!(
            changed,
            Changed {
                endpoints: true,
                clusters: true,
                routes: true,
                listeners: true
            }
        );

        let lds = read(&d.join("lds.json"));
        assert_eq!(lds["version_info"], "1");
        let source = &lds["resources"][0]["filter_chains"][0]["filters"][0]["typed_config"]["rds"]
            ["config_source"];
        assert_eq!(
            source["path_config_source"]["path"],
            d.join("rds/http.8080.json").display().to_string()
        );
        assert_eq!(
            source["path_config_source"]["watched_directory"]["path"],
            d.join("rds").display().to_string()
        );
        assert!(source.get("ads").is_none());

        let cds = read(&d.join("cds.json"));
        let eds = &cds["resources"][0]["eds_cluster_config"]["eds_config"]["path_config_source"];
        let eds_file = d.join(format!("eds/{a}.json"));
        assert_eq!(eds["path"], eds_file.display().to_string());
        assert_eq!(
            eds["watched_directory"]["path"],
            d.join("eds").display().to_string()
        );
        assert_eq!(read(&eds_file)["resources"].as_array().unwrap().len(), 1);
        assert_eq!(
            read(&d.join("rds/http.8080.json"))["resources"][0]["name"],
            "http.8080"
        );

        let boot = bootstrap(
            d,
            "node",
            "istio-ingressgateway",
            "127.0.0.1:0".parse().unwrap(),
            None,
        );
        assert_eq!(
            boot["dynamic_resources"]["lds_config"]["path_config_source"]["path"],
            d.join("lds.json").display().to_string()
        );
        assert_eq!(
            boot["dynamic_resources"]["cds_config"]["path_config_source"]["watched_directory"]["path"],
            d.display().to_string()
        );
        assert_eq!(
            boot["layered_runtime"]["layers"][0]["admin_layer"],
            json!({})
        );
        assert_eq!(boot["admin"]["address"]["socket_address"]["port_value"], 0);
    }

    #[test]
    fn rewrites_only_what_changed_and_removes_what_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (a, b) = (
            "outbound|80||a.ns.svc.cluster.local",
            "outbound|80|v1|a.ns.svc.cluster.local",
        );
        write(d, &snapshot(false, &[a, b]), "1").unwrap();

        // The same resources under another version: nothing is written.
        assert!(!write(d, &snapshot(false, &[a, b]), "2").unwrap().any());
        assert_eq!(read(&d.join("lds.json"))["version_info"], "1");

        // A fault: only the route file changes.
        let changed = write(d, &snapshot(true, &[a, b]), "3").unwrap();
        assert_eq!(
            changed,
            Changed {
                routes: true,
                ..Changed::default()
            }
        );
        assert_eq!(read(&d.join("rds/http.8080.json"))["version_info"], "3");
        assert_eq!(read(&d.join("cds.json"))["version_info"], "1");

        // A cluster gone: its endpoints file is removed, the clusters rewritten.
        let changed = write(d, &snapshot(true, &[a]), "4").unwrap();
        assert_eq!(
            changed,
            Changed {
                endpoints: true,
                clusters: true,
                ..Changed::default()
            }
        );
        assert!(!d.join(format!("eds/{b}.json")).exists());
        assert!(d.join(format!("eds/{a}.json")).exists());
        let names: Vec<String> = std::fs::read_dir(d.join("eds"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file is left: {names:?}");
    }
}
