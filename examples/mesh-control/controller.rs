//! The controller: reflectors on what the translation reads, and one loop that, after
//! every change (debounced as istiod debounces its pushes), translates for each gateway
//! proxy and writes what changed into its xDS directory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::Notify;

use crate::translate::{Proxy, World, translate};
use crate::{ControllerArgs, XDS_DIR_ANNOTATION};

/// istiod waits this long after a change for more before it pushes (PILOT_DEBOUNCE_AFTER
/// is 100 ms there); shorter here, where one writer makes all the changes.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// What the translation reads, as the reflectors hold it.
struct Stores {
    gateways: Store<DynamicObject>,
    virtual_services: Store<DynamicObject>,
    destination_rules: Store<DynamicObject>,
    services: Store<Service>,
    endpoint_slices: Store<EndpointSlice>,
    pods: Store<Pod>,
}

impl Stores {
    fn world(&self) -> World {
        let values = |s: &Store<DynamicObject>| -> Vec<serde_json::Value> {
            s.state()
                .iter()
                .filter_map(|o| serde_json::to_value(o.as_ref()).ok())
                .collect()
        };
        World {
            gateways: values(&self.gateways),
            virtual_services: values(&self.virtual_services),
            destination_rules: values(&self.destination_rules),
            services: owned(self.services.state()),
            endpoint_slices: owned(self.endpoint_slices.state()),
            pods: owned(self.pods.state()),
        }
    }
}

fn owned<K: Clone>(shared: Vec<Arc<K>>) -> Vec<K> {
    shared.iter().map(|o| K::clone(o)).collect()
}

/// Run until SIGTERM or SIGINT.
pub async fn run(args: ControllerArgs) -> anyhow::Result<()> {
    let kc = Kubeconfig::read_from(&args.kubeconfig)
        .with_context(|| format!("read {}", args.kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    let client = Client::try_from(config)?;
    install_envoy(&args.envoy, &args.root)?;
    let changed = Arc::new(Notify::new());
    let stores = Stores {
        gateways: istio(&client, "Gateway", "gateways", &changed),
        virtual_services: istio(&client, "VirtualService", "virtualservices", &changed),
        destination_rules: istio(&client, "DestinationRule", "destinationrules", &changed),
        services: typed(Api::all(client.clone()), &changed),
        endpoint_slices: typed(Api::all(client.clone()), &changed),
        pods: typed(Api::all(client.clone()), &changed),
    };
    // Nothing is written before every store holds its first listing: a half-known
    // world would take routes away from a running gateway.
    for ready in [
        stores.gateways.wait_until_ready(),
        stores.virtual_services.wait_until_ready(),
        stores.destination_rules.wait_until_ready(),
    ] {
        ready.await?;
    }
    stores.services.wait_until_ready().await?;
    stores.endpoint_slices.wait_until_ready().await?;
    stores.pods.wait_until_ready().await?;
    eprintln!(
        "mesh-control: watching the API server; Envoy at {}",
        args.root.join("bin/envoy").display()
    );
    let mut pusher = Pusher::default();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        pusher.push(&stores);
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = changed.notified() => {}
        }
        tokio::time::sleep(DEBOUNCE).await;
    }
    eprintln!("mesh-control: stopping");
    Ok(())
}

/// Copy Envoy to `ROOT/bin/envoy`, where gateway pods exec it (a copy, so that the
/// source can be replaced while pods run).
fn install_envoy(envoy: &Path, root: &Path) -> anyhow::Result<()> {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin)?;
    let target = bin.join("envoy");
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).ok();
    if size(&target).is_some() && size(&target) == size(envoy) {
        return Ok(());
    }
    let tmp = bin.join(".envoy.tmp");
    std::fs::copy(envoy, &tmp)
        .with_context(|| format!("copy {} to {}", envoy.display(), tmp.display()))?;
    std::fs::rename(&tmp, &target)?;
    Ok(())
}

fn istio(client: &Client, kind: &str, plural: &str, changed: &Arc<Notify>) -> Store<DynamicObject> {
    let gvk = GroupVersionKind::gvk("networking.istio.io", "v1", kind);
    let ar = ApiResource::from_gvk_with_plural(&gvk, plural);
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let writer = reflector::store::Writer::new(ar);
    let reader = writer.as_reader();
    spawn_reflector(writer, api, changed.clone(), kind.to_string());
    reader
}

fn typed<K>(api: Api<K>, changed: &Arc<Notify>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let kind = K::kind(&()).to_string();
    spawn_reflector(writer, api, changed.clone(), kind);
    reader
}

fn spawn_reflector<K>(
    writer: reflector::store::Writer<K>,
    api: Api<K>,
    changed: Arc<Notify>,
    kind: String,
) where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    tokio::spawn(async move {
        let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
            .default_backoff();
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => changed.notify_one(),
                Err(e) => eprintln!("mesh-control: watch {kind}: {e}"),
            }
        }
    });
}

/// Translates and writes; remembers what it said so that a warning is logged once.
#[derive(Default)]
struct Pusher {
    version: u64,
    said: BTreeSet<String>,
}

impl Pusher {
    fn push(&mut self, stores: &Stores) {
        let world = stores.world();
        self.version += 1;
        let version = format!("{}-{}", unix_ms(), self.version);
        for (dir, proxy) in proxies(&world.pods) {
            let snapshot = translate(&world, &proxy);
            for w in &snapshot.warnings {
                if self.said.insert(format!("{}: {w}", dir.display())) {
                    eprintln!("mesh-control: {}: warning: {w}", dir.display());
                }
            }
            match crate::xds::write(&dir, &snapshot, &version) {
                Ok(changed) if changed.any() => eprintln!(
                    "mesh-control: {}: wrote {} (version {version})",
                    dir.display(),
                    kinds(changed)
                ),
                Ok(_) => {}
                Err(e) => eprintln!("mesh-control: write {}: {e:#}", dir.display()),
            }
        }
    }
}

/// The gateway proxies: pods annotated with their xDS directory, one proxy per
/// directory (its pods share labels, as a Deployment's do).
fn proxies(pods: &[Pod]) -> BTreeMap<PathBuf, Proxy> {
    let mut out = BTreeMap::new();
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(dir) = pod.annotations().get(XDS_DIR_ANNOTATION) else {
            continue;
        };
        out.entry(PathBuf::from(dir)).or_insert_with(|| Proxy {
            namespace: pod.namespace().unwrap_or_default(),
            labels: pod.labels().clone(),
            bind: std::net::Ipv4Addr::UNSPECIFIED.into(),
        });
    }
    out
}

/// The kinds of resources a write changed, in the order written.
fn kinds(c: crate::xds::Changed) -> String {
    let all = [
        (c.endpoints, "endpoints"),
        (c.clusters, "clusters"),
        (c.routes, "routes"),
        (c.listeners, "listeners"),
    ];
    let named: Vec<&str> = all.iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect();
    named.join(", ")
}

fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}
