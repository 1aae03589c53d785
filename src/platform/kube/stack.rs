//! Deleting a deployed stack, and `slo-check stack up|down|status|clean`: the same
//! steps as `--platform kube` uses, one at a time, for people and CI scripts.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::runtime::wait::{await_condition, conditions};

use super::apply::{self, Applied, AppliedObject, CREATED_ANNOTATION};
use super::catalog::{self, timed};
use super::render::{self, Purpose};
use super::settings::{KubeRequest, KubeSettings};
use super::{vs_faults, vs_weights};
use crate::platform::PlatformError;
use crate::scenario::PlatformRefs;

/// The label every object of the stack carries (generated ConfigMaps and Secrets are
/// found by it, as their names end in a content hash).
const PART_OF: &str = "app.kubernetes.io/part-of=slo-check";

/// Delete what was applied, last first; the namespace only when slo-check created it,
/// then wait (watched, bounded) for it to go.
pub async fn delete(
    client: &Client,
    settings: &KubeSettings,
    applied: &Applied,
) -> Result<(), PlatformError> {
    let ns = &settings.namespace;
    let mut failures = Vec::new();
    let mut namespace = None;
    for object in applied.objects.iter().rev() {
        if object.kind == "Namespace" {
            namespace = Some(object);
            continue;
        }
        if let Err(e) = delete_one(client, object, ns).await {
            failures.push(e);
        }
        if matches!(object.kind.as_str(), "ConfigMap" | "Secret")
            && let Err(e) = delete_labelled(client, object, ns).await
        {
            failures.push(e);
        }
    }
    match namespace {
        Some(_) if applied.owns_namespace => {
            if let Err(e) = delete_namespace(client, settings).await {
                failures.push(e);
            }
        }
        Some(_) => settings.say(&format!(
            "kube: namespace {ns} was there before slo-check applied the stack, so it is left in place"
        )),
        None => {}
    }
    if failures.is_empty() {
        settings.say(&format!("kube: deleted the stack from namespace {ns}"));
        Ok(())
    } else {
        Err(PlatformError::Infra(format!(
            "could not delete all of the stack from namespace {ns}:\n  - {}",
            failures.join("\n  - ")
        )))
    }
}

async fn delete_one(client: &Client, object: &AppliedObject, ns: &str) -> Result<(), String> {
    let api = apply::api_for(client, object, ns);
    match timed(api.delete(&object.name, &DeleteParams::background())).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(format!("{} `{}`: {e}", object.kind, object.name)),
    }
}

/// Generated objects of the same kind from earlier deploys (another secret, another hash).
async fn delete_labelled(client: &Client, object: &AppliedObject, ns: &str) -> Result<(), String> {
    let api = apply::api_for(client, object, ns);
    let list = timed(api.list(&ListParams::default().labels(PART_OF)))
        .await
        .map_err(|e| format!("listing {} objects labelled {PART_OF}: {e}", object.kind))?;
    for item in list.items {
        let Some(name) = item.metadata.name else {
            continue;
        };
        match timed(api.delete(&name, &DeleteParams::background())).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(format!("{} `{name}`: {e}", object.kind)),
        }
    }
    Ok(())
}

async fn delete_namespace(client: &Client, settings: &KubeSettings) -> Result<(), String> {
    let ns = &settings.namespace;
    let api: Api<Namespace> = Api::all(client.clone());
    let uid = match timed(api.get_opt(ns)).await {
        Ok(Some(n)) => n.metadata.uid.unwrap_or_default(),
        Ok(None) => return Ok(()),
        Err(e) => return Err(format!("namespace {ns}: {e}")),
    };
    match timed(api.delete(ns, &DeleteParams::background())).await {
        Ok(_) => {}
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(format!("namespace {ns}: {e}")),
    }
    settings.say(&format!(
        "kube: deleting namespace {ns} (waiting up to {}s)",
        NAMESPACE_WAIT.as_secs()
    ));
    let gone = tokio::time::timeout(
        NAMESPACE_WAIT,
        await_condition(api, ns, conditions::is_deleted(&uid)),
    )
    .await;
    if !matches!(gone, Ok(Ok(_))) {
        settings.say(&format!(
            "kube: namespace {ns} is still terminating; it goes when its finalizers finish (`kubectl get namespace {ns}`)"
        ));
    }
    Ok(())
}

/// How long `down` waits for the namespace to disappear.
const NAMESPACE_WAIT: Duration = Duration::from_secs(120);

/// What `slo-check stack` is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Check prerequisites, apply the stack, wait for its rollouts.
    Up,
    /// Delete what `up` applied.
    Down,
    /// Show the stack's objects, rollouts, HPA and leftover faults.
    Status,
    /// Restore VirtualServices a killed run left with a fault.
    Clean,
    /// Print the Role and ClusterRole a run and `stack up|down` need.
    Permissions,
}

/// Carry out `action` on the cluster `request` names. The stack's own commands never
/// drive traffic, so no ingress pod is required.
pub async fn run(action: Action, request: &KubeRequest) -> Result<(), PlatformError> {
    let mut settings = KubeSettings::resolve(request, &PlatformRefs::default(), false)?;
    settings.forward_ingress = false;
    match action {
        Action::Up => up(settings).await,
        Action::Down => down(settings).await,
        Action::Status => status(settings).await,
        Action::Clean => clean(settings).await,
        Action::Permissions => {
            // A run port-forwards the ingress gateway by default: include its needs.
            settings.forward_ingress = true;
            permissions(settings).await
        }
    }
}

async fn up(settings: KubeSettings) -> Result<(), PlatformError> {
    let objects = render::render(&settings)?;
    let client = super::connect::client(&settings).await?;
    let catalog = catalog::check_prerequisites(&client, &settings, &objects).await?;
    super::access::check(
        &client,
        &settings,
        &super::access::needs(&settings, &catalog, &objects),
    )
    .await?;
    vs_faults::clean_leftovers(&client, &settings).await?;
    vs_weights::clean_leftovers(&client, &settings).await?;
    let applied = apply::apply_all(&client, &settings, &catalog, objects)
        .await
        .map_err(|(e, _)| e)?;
    super::rollout::await_all(&client, &settings, &applied).await?;
    settings.say(&format!(
        "kube: the stack is up in namespace {} (`slo-check stack status{}` shows it)",
        settings.namespace,
        settings.context_flag()
    ));
    Ok(())
}

/// The Role and ClusterRole (YAML on stdout) with exactly what slo-check needs.
async fn permissions(settings: KubeSettings) -> Result<(), PlatformError> {
    let objects = render::render_for(&settings, Purpose::Inspect)?;
    let client = super::connect::client(&settings).await?;
    let (catalog, _) = catalog::discover(&client, &settings, &objects).await?;
    let needs = super::access::needs(&settings, &catalog, &objects);
    print!(
        "# What slo-check needs to deploy the {} overlay into namespace {}, run against it
# (port-forwarding the ingress gateway in {}) and delete it again.
# Bind each to the user or ServiceAccount slo-check runs as.
{}",
        settings.overlay,
        settings.namespace,
        settings.ingress.namespace,
        super::access::as_rbac(&needs)
    );
    Ok(())
}

/// What a rendered stack would have applied, for `down` and `status`.
async fn rendered(
    settings: &KubeSettings,
) -> Result<(Client, Vec<(AppliedObject, serde_json::Value)>), PlatformError> {
    let objects = render::render_for(settings, Purpose::Inspect)?;
    let client = super::connect::client(settings).await?;
    let (catalog, _) = catalog::discover(&client, settings, &objects).await?;
    // Kinds the cluster does not serve (any more) cannot have objects to show or delete.
    let resolved = objects
        .into_iter()
        .filter_map(|o| apply::resolve(&catalog, &o).ok().map(|a| (a, o)))
        .collect();
    Ok((client, resolved))
}

async fn down(settings: KubeSettings) -> Result<(), PlatformError> {
    let (client, objects) = rendered(&settings).await?;
    vs_faults::clean_leftovers(&client, &settings).await?;
    vs_weights::clean_leftovers(&client, &settings).await?;
    let owns_namespace = namespace_is_ours(&client, &settings.namespace).await?;
    let applied = Applied {
        objects: objects.into_iter().map(|(a, _)| a).collect(),
        owns_namespace,
    };
    delete(&client, &settings, &applied).await
}

async fn namespace_is_ours(client: &Client, ns: &str) -> Result<bool, PlatformError> {
    let api: Api<Namespace> = Api::all(client.clone());
    match timed(api.get_opt(ns)).await {
        Ok(found) => Ok(found
            .and_then(|n| n.metadata.annotations)
            .is_some_and(|a| a.contains_key(CREATED_ANNOTATION))),
        Err(e) => Err(PlatformError::Infra(format!(
            "cannot read namespace {ns}: {e}"
        ))),
    }
}

async fn clean(settings: KubeSettings) -> Result<(), PlatformError> {
    let client = super::connect::client(&settings).await?;
    let restored = vs_faults::clean_leftovers(&client, &settings).await?;
    let reweighted = vs_weights::clean_leftovers(&client, &settings).await?;
    if restored.is_empty() && reweighted.is_empty() {
        settings.say(&format!(
            "kube: no VirtualService in namespace {} holds a fault or canary weights left by slo-check",
            settings.namespace
        ));
    }
    // A coordinator that died leaves its generators' Job (its pods exit by themselves
    // within a minute, and the Job goes 10 minutes after it ended): deleted now.
    super::generators::delete_labelled(&client, &settings.namespace, "")
        .await
        .map_err(PlatformError::Infra)?;
    settings.say(&format!(
        "kube: no distributed run's generators left in namespace {} (label {})",
        settings.namespace,
        super::generators::LABEL
    ));
    Ok(())
}

async fn status(settings: KubeSettings) -> Result<(), PlatformError> {
    let (client, objects) = rendered(&settings).await?;
    let ns = &settings.namespace;
    println!("stack in namespace {ns} ({}):", settings.cluster_name());
    for (object, rendered) in &objects {
        let api = apply::api_for(&client, object, ns);
        let generated = matches!(object.kind.as_str(), "ConfigMap" | "Secret");
        let state = if generated {
            match timed(api.list(&ListParams::default().labels(PART_OF))).await {
                Ok(l) if !l.items.is_empty() => format!("present ({})", names(&l.items)),
                Ok(_) => "missing".into(),
                Err(e) => format!("unknown: {e}"),
            }
        } else {
            match timed(api.get_opt(&object.name)).await {
                Ok(Some(live)) => format!("present{}", detail(&client, ns, object, &live).await),
                Ok(None) => "missing".into(),
                Err(e) => format!("unknown: {e}"),
            }
        };
        let name = if generated {
            rendered["metadata"]["name"]
                .as_str()
                .unwrap_or(&object.name)
                .to_string()
        } else {
            object.name.clone()
        };
        println!("  {:<24} {:<28} {state}", object.kind, name);
    }
    Ok(())
}

fn names(items: &[DynamicObject]) -> String {
    items
        .iter()
        .filter_map(|i| i.metadata.name.clone())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Deployment's pods the scheduler could not place, with its reason (the first
/// pod's), or nothing.
async fn unschedulable(
    client: &Client,
    ns: &str,
    spec: &k8s_openapi::api::apps::v1::DeploymentSpec,
) -> String {
    let Some(labels) = spec.selector.match_labels.as_ref() else {
        return String::new();
    };
    let selector = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let Ok(pods) = timed(api.list(&ListParams::default().labels(&selector))).await else {
        return String::new();
    };
    let reasons: Vec<String> = pods
        .items
        .iter()
        .filter_map(|p| {
            p.status
                .as_ref()?
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == "PodScheduled" && c.status == "False")
                .map(|c| c.message.clone().unwrap_or_default())
        })
        .collect();
    match reasons.first() {
        Some(why) => format!("; {} pending: {why}", reasons.len()),
        None => String::new(),
    }
}

/// The quota's resources that are used up (`used/hard`), as the API server counts them.
fn quota_detail(status: &serde_json::Value) -> String {
    let Some(hard) = status["hard"].as_object() else {
        return String::new();
    };
    let full: Vec<String> = hard
        .iter()
        .filter_map(|(name, limit)| {
            let used = status["used"][name].as_str()?;
            (Some(used) == limit.as_str()).then(|| format!("{name} {used}/{used}"))
        })
        .collect();
    if full.is_empty() {
        String::new()
    } else {
        format!(": used up: {}", full.join(", "))
    }
}

/// One line of live detail for the kinds people ask about.
async fn detail(client: &Client, ns: &str, object: &AppliedObject, live: &DynamicObject) -> String {
    match object.kind.as_str() {
        "Deployment" => {
            let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
            match timed(api.get(&object.name)).await {
                Ok(d) => {
                    let s = d.status.unwrap_or_default();
                    // The API server refused pods (a quota, an admission webhook): the
                    // controller says so in this condition, with the server's reason.
                    let refused = s
                        .conditions
                        .iter()
                        .flatten()
                        .find(|c| {
                            c.type_.as_deref() == Some("ReplicaFailure")
                                && c.status.as_deref() == Some("True")
                        })
                        .map(|c| format!("; pods refused: {}", c.message.as_deref().unwrap_or("?")))
                        .unwrap_or_default();
                    let pending = unschedulable(client, ns, &d.spec).await;
                    format!(
                        ": {}/{} ready, {} updated{refused}{pending}",
                        s.ready_replicas.unwrap_or(0),
                        s.replicas.unwrap_or(0),
                        s.updated_replicas.unwrap_or(0)
                    )
                }
                Err(e) => format!(": {e}"),
            }
        }
        "ResourceQuota" => {
            let value = serde_json::to_value(live).unwrap_or_default();
            quota_detail(&value["status"])
        }
        "HorizontalPodAutoscaler" => {
            let api: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), ns);
            match timed(api.get(&object.name)).await {
                Ok(h) => {
                    let spec = h.spec;
                    let s = h.status.unwrap_or_default();
                    format!(
                        ": {} current, {} desired (min {}, max {})",
                        s.current_replicas.unwrap_or(0),
                        s.desired_replicas,
                        spec.min_replicas.unwrap_or(1),
                        spec.max_replicas
                    )
                }
                Err(e) => format!(": {e}"),
            }
        }
        "VirtualService" => {
            let value = serde_json::to_value(live).unwrap_or_default();
            match vs_faults::recorded_original(&value) {
                Some(_) => format!(
                    ": HOLDS A FAULT LEFT BY slo-check (run `slo-check stack clean{}`)",
                    if ns == "mcp-agents" {
                        String::new()
                    } else {
                        format!(" --namespace {ns}")
                    }
                ),
                None => ": no slo-check fault".into(),
            }
        }
        _ => String::new(),
    }
}
