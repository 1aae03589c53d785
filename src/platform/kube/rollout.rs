//! Waits for the applied Deployments and StatefulSets to finish rolling out (watched,
//! with one deadline for all), and says why when they do not: the pods' waiting
//! reasons (an image that was never loaded, a crash loop) and what to look at.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::runtime::wait::{Condition, await_condition};
use kube::{Api, Client};
use tokio::time::Instant;

use super::apply::Applied;
use super::catalog::timed;
use super::settings::KubeSettings;
use crate::platform::PlatformError;

/// `kubectl rollout status`'s test for a Deployment: the controller has seen the latest
/// spec, every replica is updated and available, and no old one is left.
pub fn deployment_complete() -> impl Condition<Deployment> {
    |obj: Option<&Deployment>| {
        let Some(d) = obj else { return false };
        let Some(status) = &d.status else {
            return false;
        };
        let spec = &d.spec;
        let generation = d.metadata.generation.unwrap_or(0);
        let updated = status.updated_replicas.unwrap_or(0);
        status.observed_generation.unwrap_or(0) >= generation
            && spec.replicas.is_none_or(|want| updated >= want)
            && status.replicas.unwrap_or(0) <= updated
            && status.available_replicas.unwrap_or(0) >= updated
            && updated > 0
    }
}

/// The same for a StatefulSet: every replica ready and on the update revision.
pub fn statefulset_complete() -> impl Condition<StatefulSet> {
    |obj: Option<&StatefulSet>| {
        let Some(s) = obj else { return false };
        let Some(status) = &s.status else {
            return false;
        };
        let want = s.spec.replicas.unwrap_or(1);
        let revision_done = match (&status.current_revision, &status.update_revision) {
            (Some(c), Some(u)) => c == u,
            _ => true,
        };
        status.observed_generation.unwrap_or(0) >= s.metadata.generation.unwrap_or(0)
            && status.ready_replicas.unwrap_or(0) >= want
            && revision_done
    }
}

/// Wait for every applied Deployment and StatefulSet, within `--rollout-timeout` in all.
pub async fn await_all(
    client: &Client,
    settings: &KubeSettings,
    applied: &Applied,
) -> Result<(), PlatformError> {
    let deadline = Instant::now() + settings.rollout_timeout;
    let ns = &settings.namespace;
    for name in applied.names_of("Deployment") {
        settings.say(&format!(
            "kube: waiting for deployment/{name} to roll out (up to {})",
            crate::units::format_duration(settings.rollout_timeout)
        ));
        let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
        let waited = until(deadline, || {
            await_condition(api.clone(), &name, deployment_complete())
        })
        .await;
        check(client, settings, "deployment", &name, waited).await?;
    }
    for name in applied.names_of("StatefulSet") {
        settings.say(&format!("kube: waiting for statefulset/{name} to roll out"));
        let api: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
        let waited = until(deadline, || {
            await_condition(api.clone(), &name, statefulset_complete())
        })
        .await;
        check(client, settings, "statefulset", &name, waited).await?;
    }
    Ok(())
}

/// Await the condition until `deadline`; a watch that ends in an error (a 410 Gone
/// after compaction, a dropped connection) is started again after a short pause.
async fn until<T, F, Fut>(
    deadline: Instant,
    wait: F,
) -> Result<Result<T, kube::runtime::wait::Error>, tokio::time::error::Elapsed>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::runtime::wait::Error>>,
{
    loop {
        match tokio::time::timeout_at(deadline, wait()).await {
            Ok(Err(_)) if Instant::now() + RETRY_PAUSE < deadline => {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            other => return other,
        }
    }
}

const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

async fn check<T>(
    client: &Client,
    settings: &KubeSettings,
    kind: &str,
    name: &str,
    waited: Result<Result<T, kube::runtime::wait::Error>, tokio::time::error::Elapsed>,
) -> Result<(), PlatformError> {
    let ns = &settings.namespace;
    match waited {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(PlatformError::Infra(format!(
            "watching {kind}/{name} in namespace {ns} failed: {e}"
        ))),
        Err(_) => {
            let reasons = pod_reasons(client, ns, name).await;
            Err(PlatformError::Infra(format!(
                "{kind}/{name} in namespace {ns} did not finish rolling out within {}{reasons}; look at `kubectl -n {ns} describe {kind}/{name}` and `kubectl -n {ns} get events --sort-by=.lastTimestamp` (on kind, was the image loaded with `kind load docker-image slo-check:dev`?), or allow longer with --rollout-timeout",
                crate::units::format_duration(settings.rollout_timeout)
            )))
        }
    }
}

/// Why the workload's pods are not ready, from their container states (best effort).
async fn pod_reasons(client: &Client, ns: &str, workload: &str) -> String {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let Ok(list) = timed(pods.list(&ListParams::default())).await else {
        return String::new();
    };
    let mut reasons: Vec<String> = list
        .items
        .iter()
        .filter(|p| {
            p.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with(workload))
        })
        .flat_map(|p| {
            let pod = p.metadata.name.clone().unwrap_or_default();
            p.status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
                .filter_map(move |c| {
                    let waiting = c.state.as_ref()?.waiting.as_ref()?;
                    Some(format!(
                        "{pod}/{}: {}{}",
                        c.name,
                        waiting.reason.clone().unwrap_or_else(|| "waiting".into()),
                        waiting
                            .message
                            .as_ref()
                            .map(|m| format!(" ({m})"))
                            .unwrap_or_default()
                    ))
                })
        })
        .collect();
    reasons.sort();
    reasons.dedup();
    if reasons.is_empty() {
        String::new()
    } else {
        format!(" (pods waiting: {})", reasons.join("; "))
    }
}
