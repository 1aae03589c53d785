//! What slo-check must be allowed to do in a cluster to deploy, watch, fault and
//! delete the stack, derived from the rendered objects, and checked with
//! SelfSubjectAccessReviews before anything is applied: a missing permission is named
//! (verb, resource, namespace) up front, instead of a half-applied stack.

use std::collections::BTreeSet;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::Value;

use super::catalog::{Catalog, timed};
use super::settings::KubeSettings;
use crate::platform::PlatformError;

/// One permission: `verb` on `resource` (with its API group, and a subresource), in a
/// namespace or cluster-wide.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Need {
    pub verb: &'static str,
    pub group: String,
    pub resource: String,
    pub subresource: Option<&'static str>,
    /// `None`: cluster-scoped.
    pub namespace: Option<String>,
}

impl std::fmt::Display for Need {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        if let Some(sub) = self.subresource {
            write!(f, "/{sub}")?;
        }
        if !self.group.is_empty() {
            write!(f, ".{}", self.group)?;
        }
        match &self.namespace {
            Some(ns) => write!(f, " in namespace {ns}"),
            None => write!(f, " (cluster-wide)"),
        }
    }
}

/// Every permission `stack up`, a run and `stack down` use on these objects.
pub fn needs(settings: &KubeSettings, catalog: &Catalog, objects: &[Value]) -> Vec<Need> {
    let mut needs = BTreeSet::new();
    let mut add = |verb, group: &str, resource: &str, sub, namespace: Option<&str>| {
        needs.insert(Need {
            verb,
            group: group.to_string(),
            resource: resource.to_string(),
            subresource: sub,
            namespace: namespace.map(str::to_string),
        });
    };
    let ns = settings.namespace.as_str();
    for object in objects {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let Some((resource, namespaced)) = catalog.resolve(api_version, kind) else {
            continue; // reported by the prerequisite check
        };
        let scope = namespaced.then_some(ns);
        let (group, plural) = (resource.group.as_str(), resource.plural.as_str());
        // Server-side apply is a patch, and a create where the object is new; `down`
        // deletes; `status` and the namespace claim read.
        for verb in ["get", "create", "patch", "delete"] {
            add(verb, group, plural, None, scope);
        }
        let extra: &[&'static str] = match kind {
            // Generated names (a content hash): found again by label to delete them.
            "ConfigMap" | "Secret" => &["list"],
            // Rollouts, the replica timeline and the namespace's end are watched.
            "Deployment" | "StatefulSet" | "HorizontalPodAutoscaler" | "Namespace" => {
                &["list", "watch"]
            }
            // Faults left by a killed run are looked for in every VirtualService.
            "VirtualService" => &["list"],
            _ => &[],
        };
        for verb in extra {
            add(verb, group, plural, None, scope);
        }
    }
    // A rollout that does not finish is explained from its pods.
    add("list", "", "pods", None, Some(ns));
    if settings.forward_ingress {
        let gateway = settings.ingress.namespace.as_str();
        add("list", "", "pods", None, Some(gateway));
        add("create", "", "pods", Some("portforward"), Some(gateway));
    }
    // A distributed run: the generators' Indexed Job, the scenario's ConfigMap and Secret,
    // their pods waited for and port-forwarded, everything deleted by label at the end.
    if settings.generators.is_some() {
        for (group, resource) in [("batch", "jobs"), ("", "configmaps"), ("", "secrets")] {
            for verb in ["create", "list", "delete"] {
                add(verb, group, resource, None, Some(ns));
            }
        }
        for verb in ["get", "list", "delete"] {
            add(verb, "", "pods", None, Some(ns));
        }
        add("create", "", "pods", Some("portforward"), Some(ns));
        add("get", "apps", "deployments", None, Some(ns));
        // Why the Job made no pod is in its events.
        add("list", "", "events", None, Some(ns));
    }
    needs.into_iter().collect()
}

/// Ask the API server, for each need, whether these credentials have it; name every
/// one they lack. An API server that does not serve access reviews is not asked.
pub async fn check(
    client: &Client,
    settings: &KubeSettings,
    needs: &[Need],
) -> Result<(), PlatformError> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let reviews = needs.iter().map(|need| {
        let api = api.clone();
        async move {
            let review = SelfSubjectAccessReview {
                metadata: Default::default(),
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        verb: Some(need.verb.to_string()),
                        group: Some(need.group.clone()),
                        resource: Some(need.resource.clone()),
                        subresource: need.subresource.map(str::to_string),
                        namespace: need.namespace.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                status: None,
            };
            (
                need,
                timed(api.create(&PostParams::default(), &review)).await,
            )
        }
    });
    let answers = futures::future::join_all(reviews).await;
    let mut missing = Vec::new();
    for (need, answer) in answers {
        match answer {
            Ok(review) if review.status.as_ref().is_some_and(|s| s.allowed) => {}
            Ok(_) => missing.push(need.to_string()),
            // Not served (the project's API-server double): nothing to ask.
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => {
                return Err(PlatformError::Infra(format!(
                    "cannot ask the API server of the {} what slo-check may do (a SelfSubjectAccessReview of {need}): {e}",
                    settings.cluster_name()
                )));
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(PlatformError::Infra(format!(
        "the credentials of the {} lack {} permission(s) slo-check needs, so nothing was applied:\n  - {}\ngrant them (the minimal Role and ClusterRole: docs/platforms.md#permissions)",
        settings.cluster_name(),
        missing.len(),
        missing.join("\n  - ")
    )))
}

/// The needs as RBAC objects named `slo-check`: a Role in each namespace they touch
/// and a ClusterRole for what is cluster-scoped (YAML, bindings left to the reader).
pub fn as_rbac(needs: &[Need]) -> String {
    use std::collections::BTreeMap;
    /// (group, resource) → verbs, in one scope.
    type Rules<'a> = BTreeMap<(&'a str, String), BTreeSet<&'static str>>;
    // namespace (None: cluster-wide) → rules
    let mut scopes: BTreeMap<Option<&str>, Rules> = BTreeMap::new();
    for need in needs {
        let resource = match need.subresource {
            Some(sub) => format!("{}/{sub}", need.resource),
            None => need.resource.clone(),
        };
        scopes
            .entry(need.namespace.as_deref())
            .or_default()
            .entry((need.group.as_str(), resource))
            .or_default()
            .insert(need.verb);
    }
    let mut out = String::new();
    for (scope, rules) in &scopes {
        if !out.is_empty() {
            out.push_str("---\n");
        }
        out.push_str("apiVersion: rbac.authorization.k8s.io/v1\n");
        match scope {
            Some(ns) => out.push_str(&format!(
                "kind: Role\nmetadata:\n  name: slo-check\n  namespace: {ns}\n"
            )),
            None => out.push_str("kind: ClusterRole\nmetadata:\n  name: slo-check\n"),
        }
        out.push_str("rules:\n");
        for ((group, resource), verbs) in rules {
            let verbs: Vec<&str> = verbs.iter().copied().collect();
            out.push_str(&format!(
                "  - apiGroups: [\"{group}\"]\n    resources: [\"{resource}\"]\n    verbs: [{}]\n",
                verbs
                    .iter()
                    .map(|v| format!("\"{v}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    out
}
