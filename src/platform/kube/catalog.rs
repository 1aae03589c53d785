//! The prerequisite check and the resource catalogue it produces: which API groups and
//! kinds the cluster serves (from discovery), so the stack can be applied, and, before
//! anything is applied, every missing prerequisite named with how to install it.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{ApiResource, GroupVersionKind, ListParams};
use kube::{Api, Client};
use serde_json::Value;

use super::settings::KubeSettings;
use crate::errors::error_chain;
use crate::platform::PlatformError;

/// How long one discovery or check request may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(15);

/// The metrics API the HPA reads CPU from.
const METRICS_API: &str = "metrics.k8s.io/v1beta1";

/// Resource (plural, scope) of every kind the stack uses, by apiVersion and kind.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    kinds: HashMap<(String, String), (ApiResource, bool)>,
}

impl Catalog {
    /// The resource for `apiVersion`/`kind`, and whether it is namespaced.
    pub fn resolve(&self, api_version: &str, kind: &str) -> Option<(ApiResource, bool)> {
        self.kinds
            .get(&(api_version.to_string(), kind.to_string()))
            .cloned()
    }

    fn insert_list(
        &mut self,
        api_version: &str,
        list: &k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList,
    ) {
        let (group, version) = split_api_version(api_version);
        for r in &list.resources {
            if r.name.contains('/') {
                continue; // a subresource
            }
            let gvk = GroupVersionKind::gvk(group, version, &r.kind);
            let ar = ApiResource::from_gvk_with_plural(&gvk, &r.name);
            self.kinds.insert(
                (api_version.to_string(), r.kind.clone()),
                (ar, r.namespaced),
            );
        }
    }
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

/// Check everything the stack and the run need; all problems are reported together.
pub async fn check_prerequisites(
    client: &Client,
    settings: &KubeSettings,
    objects: &[Value],
) -> Result<Catalog, PlatformError> {
    let (catalog, problems) = discover(client, settings, objects).await?;
    if problems.is_empty() {
        Ok(catalog)
    } else {
        Err(PlatformError::Infra(format!(
            "the {} lacks what --platform kube needs:\n  - {}",
            settings.cluster_name(),
            problems.join("\n  - ")
        )))
    }
}

/// What the cluster serves of the stack's kinds, and what it lacks (only an
/// unreachable API is an error): for `stack down|status`, which must work on a cluster
/// that has since lost, say, its metrics-server.
pub async fn discover(
    client: &Client,
    settings: &KubeSettings,
    objects: &[Value],
) -> Result<(Catalog, Vec<String>), PlatformError> {
    reachable(client, settings).await?;
    let mut problems = Vec::new();
    let mut catalog = Catalog::default();
    let mut api_versions: Vec<&str> = objects
        .iter()
        .filter_map(|o| o["apiVersion"].as_str())
        .collect();
    api_versions.push(METRICS_API);
    api_versions.sort();
    api_versions.dedup();
    let groups = timed(client.list_api_groups()).await;
    let served: Vec<String> = match &groups {
        Ok(list) => list
            .groups
            .iter()
            .flat_map(|g| g.versions.iter().map(|v| v.group_version.clone()))
            .collect(),
        Err(e) => {
            return Err(PlatformError::Infra(format!(
                "the Kubernetes API of the {} did not list its API groups: {e}",
                settings.cluster_name()
            )));
        }
    };
    for api_version in &api_versions {
        let (group, _) = split_api_version(api_version);
        let list = if group.is_empty() {
            timed(client.list_core_api_resources(api_version)).await
        } else if !served.iter().any(|s| s == api_version) {
            problems.push(missing_group(api_version));
            continue;
        } else {
            timed(client.list_api_group_resources(api_version)).await
        };
        match list {
            Ok(list) => catalog.insert_list(api_version, &list),
            Err(e) => problems.push(format!(
                "{api_version} is registered but not answering ({e}){}",
                if *api_version == METRICS_API {
                    ": is metrics-server running? (`kubectl -n kube-system get deploy metrics-server`)"
                } else {
                    ""
                }
            )),
        }
    }
    for o in objects {
        let (api_version, kind) = (
            o["apiVersion"].as_str().unwrap_or_default(),
            o["kind"].as_str().unwrap_or_default(),
        );
        let group_listed = served.iter().any(|s| s == api_version) || !api_version.contains('/');
        if group_listed
            && catalog.resolve(api_version, kind).is_none()
            && !problems.iter().any(|p| p.starts_with(api_version))
        {
            problems.push(format!(
                "{api_version} does not serve kind {kind} (needed for `{}`); the cluster's Kubernetes or CRD versions are older than the stack expects",
                o["metadata"]["name"].as_str().unwrap_or("?")
            ));
        }
    }
    if settings.forward_ingress
        && !stack_provides_ingress(objects, settings)
        && let Err(e) = ingress_pods(client, settings).await
    {
        problems.push(e);
    }
    Ok((catalog, problems))
}

/// Whether the ingress's pods come with the stack itself (a workload in its namespace
/// whose pod template carries the ingress label): they cannot exist before it is
/// applied, and the port-forward looks for them once it has rolled out.
fn stack_provides_ingress(objects: &[Value], settings: &KubeSettings) -> bool {
    let Some((label, value)) = settings.ingress.label() else {
        return false;
    };
    settings.ingress.namespace == settings.namespace
        && objects
            .iter()
            .any(|o| o["spec"]["template"]["metadata"]["labels"][label].as_str() == Some(value))
}

/// The API answers at all, with credentials it accepts.
async fn reachable(client: &Client, settings: &KubeSettings) -> Result<(), PlatformError> {
    match timed(client.apiserver_version()).await {
        Ok(_) => Ok(()),
        Err(e) => {
            let hint = match &e {
                Problem::Api(kube::Error::Api(s)) if s.code == 401 || s.code == 403 => {
                    "the API refused the credentials of this context; refresh them (e.g. `kind export kubeconfig --name slo-check`)"
                }
                _ => {
                    "is the cluster running? (`kubectl cluster-info`; for kind: `kind get clusters`)"
                }
            };
            Err(PlatformError::Infra(format!(
                "cannot reach the Kubernetes API of the {}: {e}; {hint}",
                settings.cluster_name()
            )))
        }
    }
}

fn missing_group(api_version: &str) -> String {
    let (group, _) = split_api_version(api_version);
    match group {
        "networking.istio.io" => format!(
            "{api_version} (Istio's CRDs) is not installed: install Istio with an ingress gateway, e.g. `istioctl install --set profile=demo -y`"
        ),
        "monitoring.coreos.com" => format!(
            "{api_version} (the Prometheus operator's CRDs) is not installed: e.g. `helm install prometheus prometheus-community/kube-prometheus-stack --namespace monitoring --create-namespace`"
        ),
        "metrics.k8s.io" => format!(
            "{api_version} (the metrics API, which the HPA reads CPU from) is not installed: install metrics-server, e.g. `helm install metrics-server metrics-server/metrics-server -n kube-system --set 'args={{--kubelet-insecure-tls}}'` on kind"
        ),
        _ => format!(
            "{api_version} is not served by this cluster; the stack needs Kubernetes 1.27 or later"
        ),
    }
}

/// The names of every running, ready pod the ingress selects, sorted; an error names
/// what to install or pass when there is none.
pub async fn ingress_pods(client: &Client, settings: &KubeSettings) -> Result<Vec<String>, String> {
    let ingress = &settings.ingress;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ingress.namespace);
    let list = timed(pods.list(&ListParams::default().labels(&ingress.selector)))
        .await
        .map_err(|e| {
            format!(
                "cannot list the ingress gateway's pods ({}/{}): {e}",
                ingress.namespace, ingress.selector
            )
        })?;
    let mut ready: Vec<String> = list
        .items
        .iter()
        .filter(|p| is_ready(p) && p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    ready.sort();
    if ready.is_empty() {
        return Err(format!(
            "no running, ready pod labelled {} in namespace {} to port-forward to: install Istio with an ingress gateway (`istioctl install --set profile=demo -y`), or name yours with --ingress NS/LABEL=VALUE:PORT, or reach the service yourself and pass --target-url",
            ingress.selector, ingress.namespace
        ));
    }
    Ok(ready)
}

fn is_ready(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Why a check request failed.
#[derive(Debug)]
pub enum Problem {
    Api(kube::Error),
    TimedOut,
}

impl Problem {
    /// The API answered 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Problem::Api(kube::Error::Api(s)) if s.code == 404)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Api(kube::Error::Api(s)) => write!(f, "{} ({})", s.message, s.code),
            Problem::Api(e) => write!(f, "{}", error_chain(e)),
            Problem::TimedOut => write!(f, "no answer within {}s", CHECK_TIMEOUT.as_secs()),
        }
    }
}

/// How long `retrying` keeps asking an API server that says "later" (429: its storage
/// is (re)initializing after a restart, or it sheds load).
const LATER_PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);

/// `timed`, asked again while the API server answers 429 (with pauses from 250 ms
/// doubling to 2 s, for at most `LATER_PATIENCE`): a server that has just restarted
/// answers so until its watch cache is filled.
pub async fn retrying<T, F, Fut>(mut call: F) -> Result<T, Problem>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = kube::Result<T>>,
{
    let deadline = tokio::time::Instant::now() + LATER_PATIENCE;
    let mut pause = std::time::Duration::from_millis(250);
    loop {
        match timed(call()).await {
            Err(Problem::Api(kube::Error::Api(s)))
                if s.code == 429 && tokio::time::Instant::now() + pause < deadline =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(2));
            }
            other => return other,
        }
    }
}

/// One request with the check timeout.
pub async fn timed<T>(
    call: impl std::future::Future<Output = kube::Result<T>>,
) -> Result<T, Problem> {
    match tokio::time::timeout(CHECK_TIMEOUT, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Problem::Api(e)),
        Err(_) => Err(Problem::TimedOut),
    }
}
