//! The test cluster's process node: every pod the scheduler binds to it runs as a
//! local process, in a network namespace of its own on 198.18.0.0/24, so its Service
//! has real endpoints, `kubectl port-forward` and `kubectl logs` reach it, and its
//! real CPU and memory are what metrics-server and the HPA controller see. KWOK stays
//! the node (kubelet API, status from the annotations this writes; see
//! scripts/cluster/process-stages.yaml). Test infrastructure: processes, not
//! containers, with no isolation beyond the network namespace and no image pull.
//!
//! `process-node --kubeconfig PATH --state DIR [--node NAME] [--image NAME=EXE]...`
//! (root: it makes network namespaces). Started and stopped by scripts/cluster.sh.

mod net;
mod run;
mod shim;
mod spec;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const MANAGER: &str = "slo-check-process-node";
/// Where the image table's executables are copied at start (see `ImageTable::snapshot`).
const IMAGES: &str = "/run/slo-check-process-node/images";
/// Where the controller keeps the copy of itself that pods start through.
const SHIM_DIR: &str = "/run/slo-check-process-node";

struct Args {
    kubeconfig: PathBuf,
    state: PathBuf,
    node: String,
    images: spec::ImageTable,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut kubeconfig = None;
    let mut state = None;
    let mut node = "kwok-process-node-0".to_string();
    let mut images = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(value()?)),
            "--state" => state = Some(std::path::absolute(value()?)?),
            "--node" => node = value()?,
            "--image" => {
                let v = value()?;
                let (name, exe) = v
                    .split_once('=')
                    .with_context(|| format!("--image {v}: expected NAME=EXECUTABLE (or NAME=- for the container's command)"))?;
                images.push((name.to_string(), exe.to_string()));
            }
            other => anyhow::bail!(
                "unknown argument {other}; see the header of examples/process-node/main.rs"
            ),
        }
    }
    Ok(Args {
        kubeconfig: kubeconfig.context("--kubeconfig PATH is required")?,
        state: state.context("--state DIR is required")?,
        node,
        images: spec::ImageTable(images),
    })
}

fn kwok(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "kwok.x-k8s.io".into(),
        version: "v1alpha1".into(),
        api_version: "kwok.x-k8s.io/v1alpha1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// A running pod: its slot (address and namespace) and how to stop it.
struct Running {
    slot: u8,
    stop: CancellationToken,
    done: tokio::task::JoinHandle<()>,
}

fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("--pod-exec") {
        // Inside a pod's namespaces, on the way to its program (see shim.rs).
        let e = shim::exec(&argv[1..]);
        eprintln!("process-node --pod-exec: {e:#}");
        std::process::exit(127);
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(controller())
}

async fn controller() -> anyhow::Result<()> {
    let mut args = parse_args()?;
    let kc = Kubeconfig::read_from(&args.kubeconfig)
        .with_context(|| format!("read {}", args.kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    let client = Client::try_from(config)?;
    std::fs::create_dir_all(args.state.join("logs"))?;
    // One process node per machine: the bridge and namespace names are global.
    let _lock = machine_lock()?;
    args.images = args.images.snapshot(std::path::Path::new(IMAGES))?;
    shim::snapshot_self(std::path::Path::new(SHIM_DIR))?;
    net::teardown_all();
    net::bridge_up()?;
    eprintln!(
        "process-node: node {} on {}/24 (bridge {}), images: {}",
        args.node,
        net::GATEWAY,
        net::BRIDGE,
        args.images.names()
    );
    let shutdown = CancellationToken::new();
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            shutdown.cancel();
        });
    }
    let args = Arc::new(args);
    let mut running: HashMap<String, Running> = HashMap::new();
    let pods_all: Api<Pod> = Api::all(client.clone());
    let on_node = ListParams::default().fields(&format!("spec.nodeName={}", args.node));
    while !shutdown.is_cancelled() {
        // Made again should something have removed it (a pod's namespace is made per pod).
        if let Err(e) = net::bridge_up() {
            eprintln!("process-node: bridge: {e:#}");
        }
        match pods_all.list(&on_node).await {
            Ok(list) => reconcile(&client, &args, &mut running, list.items).await,
            Err(e) => eprintln!("process-node: list pods: {e}"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    eprintln!("process-node: stopping {} pod(s)", running.len());
    for r in running.values() {
        r.stop.cancel();
    }
    for (_, r) in running.drain() {
        let _ = tokio::time::timeout(Duration::from_secs(10), r.done).await;
    }
    net::teardown_all();
    let _ = std::fs::remove_dir_all(IMAGES);
    Ok(())
}

fn machine_lock() -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let path = "/run/slo-check-process-node.lock";
    let f = std::fs::File::create(path).with_context(|| format!("create {path}"))?;
    // SAFETY: flock(2) on a file we hold open.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        anyhow::bail!(
            "another process node runs on this machine (it holds {path}); one cluster at a time can have one"
        );
    }
    Ok(f)
}

async fn reconcile(
    client: &Client,
    args: &Arc<Args>,
    running: &mut HashMap<String, Running>,
    pods: Vec<Pod>,
) {
    let mut seen = Vec::new();
    for pod in &pods {
        let uid = pod.uid().unwrap_or_default();
        seen.push(uid.clone());
        let deleting = pod.metadata.deletion_timestamp.is_some();
        if let Some(r) = running.get(&uid) {
            if deleting {
                r.stop.cancel();
            }
            continue;
        }
        if deleting {
            // Not ours (any more): let it go.
            annotate(client, pod, json!({"slo-check.io/stopped": "true"})).await;
            continue;
        }
        let used: Vec<u8> = running.values().map(|r| r.slot).collect();
        let Some(slot) = net::SLOTS.clone().find(|s| !used.contains(s)) else {
            eprintln!("process-node: no free address for {}", pod.name_any());
            continue;
        };
        let stop = CancellationToken::new();
        let done = tokio::spawn(pod_life(
            client.clone(),
            args.clone(),
            pod.clone(),
            slot,
            stop.clone(),
        ));
        running.insert(uid, Running { slot, stop, done });
    }
    // Pods gone from the API (deleted past their stage): stop what is left.
    running.retain(|uid, r| {
        if seen.contains(uid) {
            return true;
        }
        r.stop.cancel();
        !r.done.is_finished()
    });
    write_all_hosts(client, running, &pods).await;
}

/// Every pod's /etc/hosts: `<service>`, `<service>.<ns>`, `<service>.<ns>.svc` and
/// `…svc.cluster.local` for each Service whose selector matches a Ready pod on this
/// node, to that pod's address. No kube-proxy and no DNS here, so a Service name
/// reaches one of its pods directly.
async fn write_all_hosts(client: &Client, running: &HashMap<String, Running>, pods: &[Pod]) {
    let services: Api<Service> = Api::all(client.clone());
    let Ok(services) = services.list(&ListParams::default()).await else {
        return;
    };
    let mut text = String::from("127.0.0.1 localhost\n::1 localhost\n");
    for svc in &services.items {
        let ns = svc.namespace().unwrap_or_default();
        let Some(selector) = svc.spec.as_ref().and_then(|s| s.selector.clone()) else {
            continue;
        };
        let target = pods.iter().find(|p| {
            p.namespace().as_deref() == Some(ns.as_str())
                && p.metadata.deletion_timestamp.is_none()
                && selector.iter().all(|(k, v)| p.labels().get(k) == Some(v))
                && p.annotations()
                    .get("slo-check.io/ready")
                    .map(String::as_str)
                    == Some("true")
        });
        if let Some(ip) = target.and_then(|p| p.annotations().get("slo-check.io/pod-ip")) {
            let n = svc.name_any();
            text.push_str(&format!(
                "{ip} {n} {n}.{ns} {n}.{ns}.svc {n}.{ns}.svc.cluster.local\n"
            ));
        }
    }
    for pod in pods {
        if let Some(r) = running.get(&pod.uid().unwrap_or_default()) {
            let mut own = text.clone();
            own.push_str(&format!("{} {}\n", net::pod_ip(r.slot), pod.name_any()));
            let _ = net::write_hosts(r.slot, &own);
        }
    }
}

async fn annotate(client: &Client, pod: &Pod, annotations: serde_json::Value) {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
    let patch = json!({"metadata": {"annotations": annotations}});
    if let Err(e) = api
        .patch(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        eprintln!("process-node: annotate {}: {e}", pod.name_any());
    }
}

/// Server-side apply one of KWOK's per-pod objects, owned by the pod (so it goes with it).
async fn apply_kwok(client: &Client, pod: &Pod, kind: &str, plural: &str, spec: serde_json::Value) {
    let ns = pod.namespace().unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &kwok(kind, plural));
    let object = json!({
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": kind,
        "metadata": {
            "name": pod.name_any(),
            "namespace": ns,
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "Pod", "name": pod.name_any(),
                "uid": pod.uid().unwrap_or_default(),
            }],
        },
        "spec": spec,
    });
    if let Err(e) = api
        .patch(
            &pod.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&object),
        )
        .await
    {
        eprintln!("process-node: {kind} for {}: {e}", pod.name_any());
    }
}

async fn pod_life(client: Client, args: Arc<Args>, pod: Pod, slot: u8, stop: CancellationToken) {
    let name = format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any());
    let say = {
        let name = name.clone();
        move |m: String| eprintln!("process-node: {name}: {m}")
    };
    let prepared = match spec::resolve(&client, &pod, &args.images, &args.state).await {
        Ok(spec) => net::pod_up(slot)
            .map(|()| spec)
            .map_err(|e| e.context("network namespace")),
        Err(e) => Err(e.context("cannot run")),
    };
    let spec = match prepared {
        Ok(spec) => spec,
        Err(e) => {
            // Said on the pod, which stays not Ready until it is deleted.
            say(format!("{e:#}"));
            annotate(
                &client,
                &pod,
                json!({"slo-check.io/error": format!("{e:#}")}),
            )
            .await;
            stop.cancelled().await;
            net::pod_down(slot);
            annotate(&client, &pod, json!({"slo-check.io/stopped": "true"})).await;
            return;
        }
    };
    let ip = net::pod_ip(slot);
    let log = args.state.join("logs").join(format!(
        "{}_{}_{}.log",
        pod.namespace().unwrap_or_default(),
        pod.name_any(),
        spec.container
    ));
    let ports: Vec<i64> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .map(|p| i64::from(p.container_port))
        .collect();
    let forwards: Vec<serde_json::Value> = ports
        .iter()
        .map(|p| json!({"ports": [p], "target": {"port": p, "address": ip.to_string()}}))
        .collect();
    apply_kwok(
        &client,
        &pod,
        "PortForward",
        "portforwards",
        json!({"forwards": forwards}),
    )
    .await;
    apply_kwok(
        &client,
        &pod,
        "Logs",
        "logs",
        json!({"logs": [{"containers": [spec.container], "logsFile": log.display().to_string(), "follow": true}]}),
    )
    .await;
    annotate(
        &client,
        &pod,
        json!({"slo-check.io/pod-ip": ip.to_string(), "slo-check.io/ready": "false"}),
    )
    .await;
    let container = spec.container.clone();
    let (tx, mut rx) = tokio::sync::watch::channel(run::Observed::default());
    let process = run::Process { spec, slot, log };
    let runner = tokio::spawn(process.run(
        stop.clone(),
        move |o| {
            let _ = tx.send(o);
        },
        say.clone(),
    ));
    // Write what the process reports: annotations on change, usage as it comes.
    let mut last: Option<run::Observed> = None;
    while rx.changed().await.is_ok() {
        let o = rx.borrow_and_update().clone();
        let status_changed = last
            .as_ref()
            .is_none_or(|l| l.ready != o.ready || l.restarts != o.restarts);
        if status_changed && !stop.is_cancelled() {
            annotate(
                &client,
                &pod,
                json!({"slo-check.io/ready": o.ready.to_string(), "slo-check.io/restarts": o.restarts.to_string()}),
            )
            .await;
        }
        let usage = BTreeMap::from([
            ("cpu", json!({"value": format!("{}m", o.cpu_milli)})),
            ("memory", json!({"value": o.memory.to_string()})),
        ]);
        apply_kwok(
            &client,
            &pod,
            "ResourceUsage",
            "resourceusages",
            json!({"usages": [{"containers": [container], "usage": usage}]}),
        )
        .await;
        last = Some(o);
    }
    let _ = runner.await;
    net::pod_down(slot);
    // Its emptyDir volumes go with it (claims stay, as a PersistentVolume does).
    let _ = std::fs::remove_dir_all(spec::pod_dir(&args.state, &pod.uid().unwrap_or_default()));
    annotate(&client, &pod, json!({"slo-check.io/stopped": "true"})).await;
    say("stopped".into());
}
