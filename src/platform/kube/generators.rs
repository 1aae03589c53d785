//! A distributed run's generators on the cluster (`run --generators N --platform kube`):
//! an Indexed Job of N `slo-check generate` pods, created on the first launch. The
//! scenario reaches them through a ConfigMap and its `${env:…}` values through a Secret,
//! never on a command line; each pod's shard is its completion index
//! (`$(JOB_COMPLETION_INDEX)`, set by the Job controller). The coordinator reaches each
//! pod's control port through the API server's port-forward, as it reaches the ingress,
//! and the pods drive the gateway pods at their pod IPs. The Job (`backoffLimit: 0`), the
//! ConfigMap and the Secret are deleted at the end, and swept by label on the next `up`,
//! `down` or `stack clean` if a coordinator died before.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{DeleteParams, ListParams, PostParams, PropagationPolicy};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::catalog::timed;
use super::settings::KubeSettings;
use crate::target::{BoxFuture, GeneratorLauncher, LaunchedGenerator};

/// The label on everything a distributed run creates (the sweep finds them by it).
pub const LABEL: &str = "slo-check.io/generators";
/// The generators' control port.
pub const CONTROL_PORT: u16 = 9470;
/// Where the scenario is mounted in a generator pod.
const MOUNT: &str = "/etc/slo-check";
/// How long one generator pod may take to run and listen.
const POD_TIMEOUT: Duration = Duration::from_secs(110);
/// How often a pod's status is read.
const POLL: Duration = Duration::from_millis(500);
/// The Job is deleted by the TTL controller this long after it finished, should nobody
/// else delete it.
const TTL_AFTER_FINISHED_S: i32 = 600;

/// What the generator pods run and where (from the run's flags).
#[derive(Debug, Clone)]
pub struct GeneratorJob {
    pub count: u32,
    /// The pods' image; `None`: the image of the stack's Deployment (slo-check's own).
    pub image: Option<String>,
    /// `generate`'s flags after `--scenario` (time scale, seed, response limit).
    pub args: Vec<String>,
    /// The scenario's file name and text (mounted from the ConfigMap).
    pub scenario_file: String,
    pub scenario_text: String,
    /// `${env:NAME}` values, carried in the Secret.
    pub env: Vec<(String, String)>,
    pub node_selector: Vec<(String, String)>,
    /// Taint keys the pods tolerate (`operator: Exists`).
    pub tolerations: Vec<String>,
    /// One generator per node at most (required pod anti-affinity on the hostname).
    pub spread: bool,
    /// Each pod's CPU request, e.g. `500m`.
    pub cpu: String,
}

/// Creates the Job on the first `launch`, then hands back each pod once it listens.
pub struct JobLauncher {
    client: Client,
    namespace: String,
    name: String,
    job: GeneratorJob,
    /// Where the pods send their load (the gateway pods' IPs, or --target-url).
    targets: Vec<String>,
    created: tokio::sync::OnceCell<Result<(), String>>,
}

impl JobLauncher {
    /// A launcher for `job` in the platform's namespace; the pods' targets are the ready
    /// gateway pods (or the run's --target-url).
    pub async fn new(
        client: &Client,
        settings: &KubeSettings,
        job: GeneratorJob,
    ) -> Result<JobLauncher, String> {
        let targets = match &settings.target_url {
            Some(url) => vec![url.clone()],
            None => gateway_urls(client, settings).await?,
        };
        let image = match &job.image {
            Some(i) => i.clone(),
            None => deployment_image(client, settings).await?,
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let suffix = format!(
            "{:06x}",
            (nanos ^ u64::from(std::process::id())) & 0xff_ffff
        );
        Ok(JobLauncher {
            client: client.clone(),
            namespace: settings.namespace.clone(),
            name: format!("slo-check-gen-{suffix}"),
            job: GeneratorJob {
                image: Some(image),
                ..job
            },
            targets,
            created: tokio::sync::OnceCell::new(),
        })
    }

    /// The ConfigMap, the Secret (when the scenario reads the environment) and the Job.
    pub fn manifests(&self) -> Vec<Value> {
        let j = &self.job;
        let labels = json!({ LABEL: self.name, "app.kubernetes.io/part-of": "slo-check" });
        let meta = |kind: &str| json!({ "name": self.name, "namespace": self.namespace, "labels": labels, "annotations": { "slo-check.io/what": kind } });
        let mut out = vec![json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("the scenario of a distributed run"),
            "data": { j.scenario_file.clone(): j.scenario_text },
        })];
        let mut env_from = vec![];
        if !j.env.is_empty() {
            let data: serde_json::Map<String, Value> = j
                .env
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            out.push(json!({
                "apiVersion": "v1", "kind": "Secret", "metadata": meta("the scenario's ${env:…} values"),
                "type": "Opaque", "stringData": data,
            }));
            env_from.push(json!({ "secretRef": { "name": self.name } }));
        }
        let mut args: Vec<String> = vec![
            "generate".into(),
            "--scenario".into(),
            format!("{MOUNT}/{}", j.scenario_file),
        ];
        args.extend(j.args.iter().cloned());
        args.extend([
            "--shard".into(),
            format!("$(JOB_COMPLETION_INDEX)/{}", j.count),
            "--listen".into(),
            format!("0.0.0.0:{CONTROL_PORT}"),
        ]);
        // With several gateway pods, generator I drives the (I mod K)-th.
        for t in &self.targets {
            args.extend(["--target-url".into(), t.clone()]);
        }
        let mut pod_spec = json!({
            "restartPolicy": "Never",
            "containers": [{
                "name": "generator",
                "image": j.image,
                "args": args,
                "envFrom": env_from,
                "ports": [{ "name": "control", "containerPort": CONTROL_PORT }],
                "readinessProbe": { "tcpSocket": { "port": CONTROL_PORT }, "periodSeconds": 1 },
                // Limits too: a namespace quota on limits (the stack's) refuses pods
                // without them. A generator is held to the CPU it asked for.
                "resources": { "requests": { "cpu": j.cpu, "memory": "128Mi" }, "limits": { "cpu": j.cpu, "memory": "1Gi" } },
                "volumeMounts": [{ "name": "scenario", "mountPath": MOUNT, "readOnly": true }],
                "securityContext": { "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "runAsNonRoot": true, "capabilities": { "drop": ["ALL"] } },
            }],
            "securityContext": { "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "seccompProfile": { "type": "RuntimeDefault" } },
            "volumes": [{ "name": "scenario", "configMap": { "name": self.name } }],
        });
        if !j.node_selector.is_empty() {
            pod_spec["nodeSelector"] = j
                .node_selector
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
        if !j.tolerations.is_empty() {
            pod_spec["tolerations"] = j
                .tolerations
                .iter()
                .map(|k| json!({ "key": k, "operator": "Exists", "effect": "NoSchedule" }))
                .collect::<Vec<_>>()
                .into();
        }
        if j.spread {
            pod_spec["affinity"] = json!({ "podAntiAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": [{
                "labelSelector": { "matchLabels": { LABEL: self.name } },
                "topologyKey": "kubernetes.io/hostname",
            }] } });
        }
        out.push(json!({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": meta("the generators of a distributed run"),
            "spec": {
                "completionMode": "Indexed",
                "completions": j.count,
                "parallelism": j.count,
                "backoffLimit": 0,
                "ttlSecondsAfterFinished": TTL_AFTER_FINISHED_S,
                "template": { "metadata": { "labels": labels }, "spec": pod_spec },
            },
        }));
        out
    }

    async fn create(&self) -> Result<(), String> {
        let pp = PostParams {
            field_manager: Some(super::FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        for m in self.manifests() {
            let kind = m["kind"].as_str().unwrap_or_default().to_string();
            let created = match kind.as_str() {
                "ConfigMap" => create::<ConfigMap>(&self.client, &self.namespace, &pp, m).await,
                "Secret" => create::<Secret>(&self.client, &self.namespace, &pp, m).await,
                _ => create::<Job>(&self.client, &self.namespace, &pp, m).await,
            };
            created.map_err(|e| {
                format!(
                    "cannot create the {kind} {}/{} for the generators: {e} (does your role allow creating jobs, configmaps and secrets? `slo-check stack permissions` prints what slo-check needs)",
                    self.namespace, self.name
                )
            })?;
        }
        Ok(())
    }

    /// Wait until the pod of `index` runs and is ready; its name and why not.
    async fn pod(&self, index: u32) -> Result<String, String> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let lp = ListParams::default().labels(&format!("{LABEL}={}", self.name));
        let deadline = tokio::time::Instant::now() + POD_TIMEOUT;
        let mut last = "no pod yet".to_string();
        loop {
            if let Ok(list) = timed(pods.list(&lp)).await {
                let mine = list.items.into_iter().find(|p| {
                    p.metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get("batch.kubernetes.io/job-completion-index"))
                        .is_some_and(|i| *i == index.to_string())
                });
                match mine {
                    Some(p) => {
                        let name = p.metadata.name.clone().unwrap_or_default();
                        match pod_state(&p) {
                            PodState::Ready => return Ok(name),
                            PodState::Ended(why) => return Err(format!("pod {name} {why}")),
                            PodState::Waiting(why) => last = format!("pod {name}: {why}"),
                        }
                    }
                    // No pod: the Job controller says why in the Job's events (a quota,
                    // an admission policy).
                    None => {
                        if let Some(why) = self.job_warning().await {
                            last = format!("no pod; the Job controller: {why}");
                        }
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "not ready within {} s ({last})",
                    POD_TIMEOUT.as_secs()
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl JobLauncher {
    /// The newest warning event about the Job, if any.
    async fn job_warning(&self) -> Option<String> {
        let events: Api<k8s_openapi::api::core::v1::Event> =
            Api::namespaced(self.client.clone(), &self.namespace);
        let lp = ListParams::default().fields(&format!(
            "involvedObject.kind=Job,involvedObject.name={}",
            self.name
        ));
        let list = timed(events.list(&lp)).await.ok()?;
        list.items
            .into_iter()
            .filter(|e| e.type_.as_deref() == Some("Warning"))
            .max_by_key(|e| e.last_timestamp.clone().map(|t| t.0))
            .map(|e| {
                format!(
                    "{}: {}",
                    e.reason.unwrap_or_default(),
                    e.message.unwrap_or_default()
                )
            })
    }
}

impl GeneratorLauncher for JobLauncher {
    fn launch(
        &self,
        index: u32,
        _count: u32,
        _target_url: &str,
    ) -> BoxFuture<'_, Result<Box<dyn LaunchedGenerator>, String>> {
        Box::pin(async move {
            self.created.get_or_init(|| self.create()).await.clone()?;
            let pod = self.pod(index).await?;
            let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
            let (addr, stop) = forward_to_pod(pods.clone(), pod.clone(), CONTROL_PORT)
                .await
                .map_err(|e| format!("pod {pod}: {e}"))?;
            let gone = Arc::new(Mutex::new(None));
            tokio::spawn(watch_pod(pods, pod.clone(), gone.clone(), stop.clone()));
            Ok(Box::new(PodGenerator {
                pod,
                namespace: self.namespace.clone(),
                addr,
                stop,
                gone,
            }) as Box<dyn LaunchedGenerator>)
        })
    }

    fn describe(&self) -> String {
        format!(
            "the pods of Job {}/{} (image {}), driving {}",
            self.namespace,
            self.name,
            self.job.image.as_deref().unwrap_or_default(),
            self.targets.join(", ")
        )
    }

    fn finish(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if self.created.get().is_some() {
                let _ = delete_labelled(&self.client, &self.namespace, &self.name).await;
            }
        })
    }
}

async fn create<K>(
    client: &Client,
    namespace: &str,
    pp: &PostParams,
    manifest: Value,
) -> Result<(), String>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let object: K = serde_json::from_value(manifest).map_err(|e| e.to_string())?;
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    timed(api.create(pp, &object))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Delete every `K` that `lp` selects; what fails (but a 404) goes into `errors`.
async fn delete_each<K>(
    client: &Client,
    namespace: &str,
    lp: &ListParams,
    dp: &DeleteParams,
    errors: &mut Vec<String>,
) where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let plural = K::plural(&K::DynamicType::default()).to_string();
    let items = match timed(api.list(lp)).await {
        Ok(list) => list.items,
        Err(e) if e.is_not_found() => return,
        Err(e) => return errors.push(format!("list {plural}: {e}")),
    };
    for item in items {
        let name = item.meta().name.clone().unwrap_or_default();
        match timed(api.delete(&name, dp)).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => errors.push(format!("delete {plural} {name}: {e}")),
        }
    }
}

/// Delete the Job (its pods with it), the ConfigMap and the Secret labelled `LABEL=name`
/// (`name` empty: every distributed run's leftovers in the namespace).
pub async fn delete_labelled(client: &Client, namespace: &str, name: &str) -> Result<(), String> {
    let selector = if name.is_empty() {
        LABEL.to_string()
    } else {
        format!("{LABEL}={name}")
    };
    let lp = ListParams::default().labels(&selector);
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    let mut errors = Vec::new();
    // Listed, then deleted one by one (list and delete are what a role grants most often,
    // and what every API server serves); the Job first, its pods with it.
    delete_each::<Job>(client, namespace, &lp, &dp, &mut errors).await;
    delete_each::<Pod>(client, namespace, &lp, &dp, &mut errors).await;
    delete_each::<ConfigMap>(client, namespace, &lp, &dp, &mut errors).await;
    delete_each::<Secret>(client, namespace, &lp, &dp, &mut errors).await;
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "cannot delete the generators' objects labelled {selector} in {namespace}: {}",
            errors.join("; ")
        ))
    }
}

enum PodState {
    Ready,
    Waiting(String),
    Ended(String),
}

fn pod_state(p: &Pod) -> PodState {
    let Some(status) = &p.status else {
        return PodState::Waiting("no status yet".into());
    };
    let phase = status.phase.clone().unwrap_or_default();
    let terminated = status
        .container_statuses
        .iter()
        .flatten()
        .find_map(|c| c.state.as_ref()?.terminated.clone());
    if phase == "Failed" || phase == "Succeeded" || terminated.is_some() {
        let why = terminated.map_or(String::new(), |t| {
            format!(
                ": exit code {}{}{}",
                t.exit_code,
                t.reason.map(|r| format!(", {r}")).unwrap_or_default(),
                t.message.map(|m| format!(": {m}")).unwrap_or_default()
            )
        });
        return PodState::Ended(format!("ended ({phase}){why}"));
    }
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if phase == "Running" && ready {
        return PodState::Ready;
    }
    // The container's waiting reason (ImagePullBackOff, CreateContainerConfigError…),
    // else a condition's message (Unschedulable…).
    let waiting = status
        .container_statuses
        .iter()
        .flatten()
        .find_map(|c| c.state.as_ref()?.waiting.clone())
        .map(|w| {
            format!(
                "{}{}",
                w.reason.unwrap_or_default(),
                w.message.map(|m| format!(": {m}")).unwrap_or_default()
            )
        });
    let why = waiting
        .or_else(|| {
            status
                .conditions
                .iter()
                .flatten()
                .find(|c| c.status != "True" && c.message.is_some())
                .and_then(|c| c.message.clone())
        })
        .unwrap_or_else(|| format!("phase {phase}, not ready"));
    PodState::Waiting(why)
}

/// The ready gateway pods as `http://IP:PORT`, in name order.
async fn gateway_urls(client: &Client, settings: &KubeSettings) -> Result<Vec<String>, String> {
    let names = super::catalog::ingress_pods(client, settings).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &settings.ingress.namespace);
    let mut urls = Vec::new();
    for n in names {
        let p = timed(pods.get(&n))
            .await
            .map_err(|e| format!("cannot read the gateway pod {n}: {e}"))?;
        if let Some(ip) = p.status.and_then(|s| s.pod_ip) {
            urls.push(format!("http://{ip}:{}", settings.ingress.port));
        }
    }
    if urls.is_empty() {
        return Err("no gateway pod has an IP for the generators to reach".into());
    }
    Ok(urls)
}

/// The image of the stack's Deployment's first container (slo-check's own image).
async fn deployment_image(client: &Client, settings: &KubeSettings) -> Result<String, String> {
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), &settings.namespace);
    let name = &settings.refs.deployment;
    let d = timed(deployments.get(name)).await.map_err(|e| {
        format!(
            "--generator-image not given, and the Deployment {}/{name} whose image it defaults to cannot be read: {e}",
            settings.namespace
        )
    })?;
    serde_json::to_value(&d)
        .ok()
        .and_then(|v| {
            v["spec"]["template"]["spec"]["containers"][0]["image"]
                .as_str()
                .map(String::from)
        })
        .ok_or_else(|| {
            format!(
                "--generator-image not given, and the Deployment {}/{name} names no image",
                settings.namespace
            )
        })
}

/// A loopback listener whose every connection is carried to `pod`'s `port` through the
/// API server's port-forward; stops with the token.
pub async fn forward_to_pod(
    pods: Api<Pod>,
    pod: String,
    port: u16,
) -> Result<(SocketAddr, CancellationToken), String> {
    // One forward now, so that a refusal is reported before the load starts.
    match pods.portforward(&pod, &[port]).await {
        Ok(pf) => pf.abort(),
        Err(e) => {
            return Err(format!(
                "cannot port-forward to port {port}: {}",
                crate::errors::error_chain(&e)
            ));
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot listen on loopback for the port-forward: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let stop = CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move {
        loop {
            let conn = tokio::select! {
                _ = token.cancelled() => return,
                c = listener.accept() => c,
            };
            let Ok((conn, _)) = conn else { continue };
            let _ = conn.set_nodelay(true);
            let (pods, pod, token) = (pods.clone(), pod.clone(), token.clone());
            tokio::spawn(async move {
                tokio::select! {
                    _ = token.cancelled() => {}
                    _ = carry(&pods, &pod, port, conn) => {}
                }
            });
        }
    });
    Ok((addr, stop))
}

async fn carry(pods: &Api<Pod>, pod: &str, port: u16, mut conn: TcpStream) {
    if let Ok(mut pf) = pods.portforward(pod, &[port]).await
        && let Some(mut upstream) = pf.take_stream(port)
    {
        let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
        drop(upstream);
        let _ = pf.join().await;
    }
}

/// Note when the pod ends (or disappears), until `stop`.
async fn watch_pod(
    pods: Api<Pod>,
    pod: String,
    gone: Arc<Mutex<Option<String>>>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let why = match timed(pods.get(&pod)).await {
            Ok(p) => match pod_state(&p) {
                PodState::Ended(why) => Some(format!("pod {pod} {why}")),
                _ => None,
            },
            Err(e) if e.is_not_found() => Some(format!("pod {pod} was deleted")),
            Err(_) => None,
        };
        if let Some(why) = why {
            if let Ok(mut g) = gone.lock() {
                *g = Some(why);
            }
            return;
        }
    }
}

/// One generator pod, reached through its port-forward.
struct PodGenerator {
    pod: String,
    namespace: String,
    addr: SocketAddr,
    stop: CancellationToken,
    gone: Arc<Mutex<Option<String>>>,
}

impl LaunchedGenerator for PodGenerator {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn describe(&self) -> String {
        format!("pod {}/{}", self.namespace, self.pod)
    }

    fn gone(&self) -> Option<String> {
        self.gone.lock().ok()?.clone()
    }

    fn stop(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move { self.stop.cancel() })
    }
}
