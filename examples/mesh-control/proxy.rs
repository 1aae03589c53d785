//! The gateway pod's process, in pilot-agent's place: it writes the Envoy bootstrap
//! that points Envoy at the controller's xDS files, then becomes Envoy (exec, same pid,
//! so the process node's signals and CPU accounting reach Envoy itself).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use anyhow::Context;

/// Parse `--xds-dir DIR [--admin ADDR] [--stats ADDR] [--node-id ID] [--cluster NAME] [--root DIR]`,
/// write the bootstrap and exec Envoy. Returns only on failure.
pub fn exec(argv: &[String]) -> anyhow::Error {
    match prepare(argv) {
        Ok(mut command) => command.exec().into(),
        Err(e) => e,
    }
}

fn prepare(argv: &[String]) -> anyhow::Result<std::process::Command> {
    let mut dir = None;
    let mut admin: std::net::SocketAddr = "0.0.0.0:15000".parse().expect("a socket address");
    let mut stats: Option<std::net::SocketAddr> = None;
    let mut node_id = None;
    let mut cluster = "istio-ingressgateway".to_string();
    let mut root = PathBuf::from(crate::DEFAULT_ROOT);
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--xds-dir" => dir = Some(PathBuf::from(value()?)),
            "--admin" => {
                let v = value()?;
                admin = v
                    .parse()
                    .with_context(|| format!("--admin {v}: not HOST:PORT"))?;
            }
            "--stats" => {
                let v = value()?;
                stats = Some(
                    v.parse()
                        .with_context(|| format!("--stats {v}: not HOST:PORT"))?,
                );
            }
            "--node-id" => node_id = Some(value()?.clone()),
            "--cluster" => cluster = value()?.clone(),
            "--root" => root = PathBuf::from(value()?),
            other => anyhow::bail!("proxy: unknown argument {other}"),
        }
    }
    let dir = dir.context("proxy: --xds-dir DIR is required")?;
    let node_id = node_id.unwrap_or_else(default_node_id);
    std::fs::create_dir_all(dir.join("rds"))?;
    std::fs::create_dir_all(dir.join("eds"))?;
    // Envoy reads its LDS and CDS files at start: until the controller has written
    // them, an empty set (the controller's first write replaces it).
    for kind in ["lds", "cds"] {
        let path = dir.join(format!("{kind}.json"));
        if !path.exists() {
            crate::xds::write_atomically(&path, br#"{"version_info":"0","resources":[]}"#)?;
        }
    }
    let bootstrap = crate::xds::bootstrap(&dir, &node_id, &cluster, admin, stats);
    // Every pod of the gateway writes the same text; node id and cluster go as flags.
    let path = dir.join("bootstrap.json");
    crate::xds::write_atomically(&path, serde_json::to_string_pretty(&bootstrap)?.as_bytes())?;
    let envoy = root.join("bin/envoy");
    anyhow::ensure!(
        envoy.exists(),
        "{} is missing: the mesh controller copies Envoy there when it starts (scripts/cluster.sh up)",
        envoy.display()
    );
    let mut command = std::process::Command::new(&envoy);
    command
        .arg("-c")
        .arg(&path)
        .args(["--service-node", &node_id, "--service-cluster", &cluster])
        // One Envoy per pod and no parent to hand over to: no shared memory region.
        .arg("--disable-hot-restart")
        .args(["--log-level", "warning"]);
    Ok(command)
}

/// Istio's node id for a gateway: `router~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local`.
fn default_node_id() -> String {
    let var = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let ns = var("POD_NAMESPACE", "istio-system");
    format!(
        "router~{}~{}.{ns}~{ns}.svc.cluster.local",
        var("INSTANCE_IP", "0.0.0.0"),
        var("POD_NAME", "gateway"),
    )
}
