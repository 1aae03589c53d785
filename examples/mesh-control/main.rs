//! The test cluster's mesh control plane (test infrastructure, not the product): it
//! watches the API server and writes, for each ingress-gateway proxy, the Envoy
//! configuration istiod would send, as xDS files that the proxy's real Envoy watches.
//! istiod itself is not built here (istio.io/istio is not an approved module on this
//! project's machines); docs/cluster.md says what that leaves out.
//!
//! Two roles, as istiod and pilot-agent:
//!
//! `mesh-control --kubeconfig PATH --envoy PATH [--root DIR]` (started by
//! scripts/cluster.sh): copies Envoy to `ROOT/bin/envoy`, then watches Gateways,
//! VirtualServices, DestinationRules, Services, EndpointSlices and Pods, and for every
//! pod annotated `mesh.slo-check.io/xds-dir: DIR` (a gateway proxy) keeps DIR's xDS
//! files equal to the translation of what the API server holds.
//!
//! `mesh-control proxy --xds-dir DIR [--admin ADDR] [--node-id ID]` (a gateway pod's
//! process on the process node): writes the Envoy bootstrap into DIR and execs
//! `ROOT/bin/envoy` with it.

mod controller;
mod proxy;
mod translate;
mod xds;

use std::path::PathBuf;

use anyhow::Context;

/// Where the controller keeps Envoy and, by convention, the proxies' xDS directories.
pub const DEFAULT_ROOT: &str = "/run/slo-check-mesh";
/// The pod annotation that makes a pod a gateway proxy, naming its xDS directory.
pub const XDS_DIR_ANNOTATION: &str = "mesh.slo-check.io/xds-dir";

fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("proxy") {
        let e = proxy::exec(&argv[1..]);
        eprintln!("mesh-control proxy: {e:#}");
        std::process::exit(127);
    }
    let args = controller_args(&argv)?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(controller::run(args))
}

/// The controller's arguments.
pub struct ControllerArgs {
    pub kubeconfig: PathBuf,
    pub envoy: PathBuf,
    pub root: PathBuf,
}

fn controller_args(argv: &[String]) -> anyhow::Result<ControllerArgs> {
    let mut kubeconfig = None;
    let mut envoy = None;
    let mut root = PathBuf::from(DEFAULT_ROOT);
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(value()?)),
            "--envoy" => envoy = Some(PathBuf::from(value()?)),
            "--root" => root = PathBuf::from(value()?),
            other => anyhow::bail!(
                "unknown argument {other}; see the header of examples/mesh-control/main.rs"
            ),
        }
    }
    Ok(ControllerArgs {
        kubeconfig: kubeconfig.context("--kubeconfig PATH is required")?,
        envoy: envoy.context("--envoy PATH (the Envoy binary) is required")?,
        root,
    })
}
