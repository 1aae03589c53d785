//! The `kube` platform: a real cluster from the kubeconfig. Renders and server-side
//! applies `stack/` (field manager `slo-check`), awaits its rollouts, reaches the
//! service (a port-forward to the Istio ingress gateway, or a configured URL), watches
//! the HPA and Deployment into the replica timeline, injects faults by JSON patch of
//! the VirtualService (awaiting each change in the gateway's Envoy, whose counters it
//! also reads), shifts a canary's weights in it, and deletes what it applied unless
//! `--keep`.

pub mod access;
pub mod apply;
pub mod catalog;
pub mod connect;
pub mod envoy;
pub mod forward;
pub mod generators;
pub mod observe;
pub mod render;
pub mod rollout;
pub mod settings;
pub mod stack;
pub mod vs_faults;
pub mod vs_patch;
pub mod vs_weights;

use std::sync::Arc;

use kube::Client;
use tokio_util::sync::CancellationToken;

use super::PlatformError;
use crate::target::Target;
use apply::Applied;
pub use settings::{KubeRequest, KubeSettings};

/// The field manager of every change slo-check makes.
pub const FIELD_MANAGER: &str = "slo-check";

/// A deployed stack, until `down`.
pub struct KubePlatformHandle {
    client: Client,
    settings: KubeSettings,
    applied: Applied,
    observer: Arc<observe::Observer>,
    injector: Option<Arc<vs_faults::VirtualServiceFaults>>,
    split: Option<Arc<vs_weights::VirtualServiceSplit>>,
    forward: Option<forward::PortForward>,
    target: Target,
}

impl KubePlatformHandle {
    pub fn target(&self) -> Target {
        self.target.clone()
    }

    /// Stop forwarding and watching, restore any fault still applied, and delete the
    /// stack unless `--keep`. Every step runs even when an earlier one failed; a fault
    /// that could not be restored, or a stack that could not be deleted, comes back as
    /// a problem naming the command that finishes the job.
    pub async fn down(self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(forward) = &self.forward {
            forward.stop();
        }
        self.observer.stop();
        if let Some(injector) = &self.injector
            && let Err(e) = restore(injector).await
        {
            problems.push(format!(
                "the VirtualService {}/{} may still hold slo-check's fault ({e:#}): once the API server answers, run `slo-check stack clean --namespace {}{}`",
                self.settings.namespace,
                self.settings.refs.virtual_service,
                self.settings.namespace,
                self.settings.context_flag()
            ));
        }
        if let Some(split) = &self.split
            && let Err(e) = restore_weights(split).await
        {
            problems.push(format!(
                "the VirtualService {}/{} may still hold slo-check's canary weights ({e:#}): once the API server answers, run `slo-check stack clean --namespace {}{}`",
                self.settings.namespace,
                self.settings.refs.virtual_service,
                self.settings.namespace,
                self.settings.context_flag()
            ));
        }
        if self.settings.keep {
            self.settings.say(&format!(
                "kube: --keep: the stack stays in namespace {} (remove it with `slo-check stack down{}`)",
                self.settings.namespace,
                self.settings.context_flag()
            ));
            return problems;
        }
        if let Err(e) = stack::delete(&self.client, &self.settings, &self.applied).await {
            problems.push(format!(
                "{e}: the stack may be left in namespace {} (remove it with `slo-check stack down --namespace {}{}`)",
                self.settings.namespace,
                self.settings.namespace,
                self.settings.context_flag()
            ));
        }
        problems
    }
}

/// Restore every fault, with a few attempts: the fault timeline has already waited out
/// an outage (`fault_timeline::REVERT_PATIENCE`), so this is the last, short try.
async fn restore(injector: &vs_faults::VirtualServiceFaults) -> anyhow::Result<()> {
    let mut last = None;
    for pause_s in [0, 1, 2] {
        tokio::time::sleep(std::time::Duration::from_secs(pause_s)).await;
        match injector.restore_all().await {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("three attempts"))
}

/// Put the stack's own canary weights back, with a few attempts, as for faults.
async fn restore_weights(split: &vs_weights::VirtualServiceSplit) -> anyhow::Result<()> {
    let mut last = None;
    for pause_s in [0, 1, 2] {
        tokio::time::sleep(std::time::Duration::from_secs(pause_s)).await;
        match split.restore().await {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("three attempts"))
}

/// The subsets a canary shifts traffic between: the DestinationRule's subset names,
/// which on the kube platform are the scenario's `version` labels (stable, canary).
pub struct CanarySubsets {
    pub stable: String,
    pub canary: String,
}

/// Bring the stack up. `cancel` (the run's interrupt) stops the waits; what was applied
/// by then is deleted again (unless `--keep`).
pub async fn up(
    mut settings: KubeSettings,
    canary: Option<CanarySubsets>,
    cancel: CancellationToken,
) -> Result<KubePlatformHandle, PlatformError> {
    let objects = render::render(&settings)?;
    let bypass = settings
        .forward_ingress
        .then(|| bypassed_gateway(&objects, &settings))
        .flatten();
    if canary.is_some() {
        // The weights live in the gateway's routes: traffic that skips it is never split.
        let why = match (&settings.target_url, &bypass) {
            (Some(url), _) => Some(format!(
                "--target-url {url} sends the traffic past the mesh's gateway"
            )),
            (None, Some(w)) => Some(w.clone()),
            (None, None) => None,
        };
        if let Some(why) = why {
            return Err(PlatformError::Usage(format!(
                "canary: {why}, so the VirtualService's weights would not split it; reach the service through the gateway (the default --ingress)"
            )));
        }
    }
    if let Some(w) = &bypass {
        eprintln!("warning: {w}");
        // A fault our traffic cannot meet would only reach others' traffic through
        // the gateway: the VirtualService is left alone, and the reports say
        // "not injected".
        settings.wants_faults = false;
    }
    let client = connect::client(&settings).await?;
    let catalog = catalog::check_prerequisites(&client, &settings, &objects).await?;
    access::check(
        &client,
        &settings,
        &access::needs(&settings, &catalog, &objects),
    )
    .await?;
    if settings.wants_faults {
        vs_faults::check_opt_in(&client, &settings).await?;
    }
    vs_faults::clean_leftovers(&client, &settings).await?;
    vs_weights::clean_leftovers(&client, &settings).await?;
    let applied = match apply::apply_all(&client, &settings, &catalog, objects).await {
        Ok(a) => a,
        Err((e, partly)) => {
            abandon(&client, &settings, &partly).await;
            return Err(e);
        }
    };
    let ready = tokio::select! {
        r = rollout::await_all(&client, &settings, &applied) => r,
        _ = cancel.cancelled() => Err(PlatformError::Interrupted(
            "interrupted while waiting for the stack to roll out".into(),
        )),
    };
    if let Err(e) = ready {
        abandon(&client, &settings, &applied).await;
        return Err(e);
    }
    let observer = observe::Observer::start(&client, &settings);
    let reach = match &settings.target_url {
        Some(url) => super::url::target(Some(url)).map(|t| (t.base_url, None)),
        None => forward::PortForward::start(&client, &settings)
            .await
            .map(|f| (f.base_url(), Some(f))),
    };
    let (base_url, forward) = match reach {
        Ok(r) => r,
        Err(e) => {
            observer.stop();
            abandon(&client, &settings, &applied).await;
            return Err(e);
        }
    };
    let split = match canary {
        None => None,
        Some(c) => {
            match vs_weights::VirtualServiceSplit::new(
                client.clone(),
                &settings,
                &c.stable,
                &c.canary,
            )
            .await
            {
                Ok(s) => Some(Arc::new(s)),
                Err(e) => {
                    if let Some(f) = &forward {
                        f.stop();
                    }
                    observer.stop();
                    abandon(&client, &settings, &applied).await;
                    return Err(e);
                }
            }
        }
    };
    // A distributed run: the generators' Job is created when the load phase launches them.
    let generators = match &settings.generators {
        None => None,
        Some(job) => match generators::JobLauncher::new(&client, &settings, job.clone()).await {
            Ok(l) => Some(crate::target::Distributed {
                count: job.count,
                launcher: Arc::new(l),
            }),
            Err(e) => {
                if let Some(f) = &forward {
                    f.stop();
                }
                observer.stop();
                abandon(&client, &settings, &applied).await;
                return Err(PlatformError::Infra(format!("--generators: {e}")));
            }
        },
    };
    // The gateway's Envoy is looked at only when the traffic goes through it.
    let envoy = (forward.is_some() && bypass.is_none())
        .then(|| Arc::new(envoy::EnvoyAdmin::new(client.clone(), &settings)));
    let injector = settings.wants_faults.then(|| {
        Arc::new(vs_faults::VirtualServiceFaults::new(
            client.clone(),
            &settings,
            envoy.clone(),
        ))
    });
    let target = Target {
        base_url: base_url.clone(),
        description: format!(
            "Kubernetes {} (namespace {}, overlay {}), reached at {}{}",
            settings.cluster_name(),
            settings.namespace,
            settings.overlay,
            match &forward {
                Some(f) => f.description(),
                None => base_url.clone(),
            },
            if bypass.is_some() {
                "; past the mesh's gateway, so no fault is injected"
            } else {
                ""
            }
        ),
        emulated: false,
        faults: injector
            .clone()
            .map(|i| i as Arc<dyn crate::target::FaultInjector>),
        replicas: Some(observer.clone() as Arc<dyn crate::target::ReplicaObserver>),
        scrape: None,
        gateway: envoy.map(|e| e as Arc<dyn crate::target::GatewayCounters>),
        split: split
            .clone()
            .map(|s| s as Arc<dyn crate::target::TrafficSplit>),
        generators,
    };
    Ok(KubePlatformHandle {
        client,
        settings,
        applied,
        observer,
        injector,
        split,
        forward,
        target,
    })
}

/// Traffic that enters at pods no Gateway of the stack selects skips the mesh's edge:
/// the VirtualService's routes and faults do not apply to it. Said, naming both.
fn bypassed_gateway(objects: &[serde_json::Value], settings: &KubeSettings) -> Option<String> {
    let (label, value) = settings.ingress.label()?;
    let gateways: Vec<&serde_json::Value> = objects
        .iter()
        .filter(|o| {
            o["kind"] == "Gateway"
                && o["apiVersion"]
                    .as_str()
                    .is_some_and(|v| v.starts_with("networking.istio.io/"))
        })
        .collect();
    if gateways.is_empty()
        || gateways
            .iter()
            .any(|g| g["spec"]["selector"][label].as_str() == Some(value))
    {
        return None;
    }
    let names: Vec<&str> = gateways
        .iter()
        .filter_map(|g| g["metadata"]["name"].as_str())
        .collect();
    Some(format!(
        "--ingress {}/{}: no Gateway of the stack ({}) selects these pods, so traffic skips the mesh's gateway: the VirtualService's routes do not apply to it{}",
        settings.ingress.namespace,
        settings.ingress.selector,
        names.join(", "),
        if settings.wants_faults {
            ", and the scenario's faults are not injected (the VirtualService is left as it is)"
        } else {
            ""
        }
    ))
}

/// `up` failed after applying: take the stack down again unless `--keep`.
async fn abandon(client: &Client, settings: &KubeSettings, applied: &Applied) {
    if settings.keep {
        return;
    }
    if let Err(e) = stack::delete(client, settings, applied).await {
        eprintln!("error: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::PlatformRefs;

    fn settings(ingress: &str) -> KubeSettings {
        let request = KubeRequest {
            ingress: Some(ingress.into()),
            ..KubeRequest::default()
        };
        KubeSettings::resolve(&request, &PlatformRefs::default(), true).unwrap()
    }

    #[test]
    fn an_ingress_no_gateway_selects_is_named_with_what_it_skips() {
        let gateway = serde_json::json!({
            "apiVersion": "networking.istio.io/v1", "kind": "Gateway",
            "metadata": {"name": "mcp-gateway"},
            "spec": {"selector": {"istio": "ingressgateway"}},
        });
        let objects = vec![gateway];
        let through = settings("istio-system/istio=ingressgateway:8080");
        assert_eq!(bypassed_gateway(&objects, &through), None);
        let direct = settings("mcp-agents/app.kubernetes.io/name=mcp-agent:8080");
        let said = bypassed_gateway(&objects, &direct).expect("a warning");
        assert!(
            said.starts_with("--ingress mcp-agents/app.kubernetes.io/name=mcp-agent:")
                && said.contains("(mcp-gateway)")
                && said.contains("routes do not apply"),
            "{said}"
        );
        let faults = KubeSettings {
            wants_faults: true,
            ..direct
        };
        assert!(
            bypassed_gateway(&objects, &faults)
                .unwrap()
                .contains("the scenario's faults are not injected")
        );
        // No Gateway in the stack at all: nothing to skip.
        assert_eq!(bypassed_gateway(&[], &faults), None);
    }
}
