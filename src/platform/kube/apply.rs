//! Server-side apply of the rendered stack (field manager `slo-check`, forced), the
//! Namespace first; records what was applied so it can be deleted again, and whether
//! the namespace is slo-check's own (created by it) or the user's (never deleted).

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::Value;

use super::FIELD_MANAGER;
use super::catalog::{Catalog, timed};
use super::settings::KubeSettings;
use crate::platform::PlatformError;

/// Marks a namespace slo-check created, so `down` may delete it; a namespace without it
/// was there before and is left in place.
pub const CREATED_ANNOTATION: &str = "slo-check.io/created-by";

/// One applied object.
#[derive(Debug, Clone)]
pub struct AppliedObject {
    pub resource: ApiResource,
    pub namespaced: bool,
    pub kind: String,
    pub name: String,
}

/// What `apply_all` applied, in order.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub objects: Vec<AppliedObject>,
    /// The namespace is slo-check's own (it created it): `down` deletes it.
    pub owns_namespace: bool,
}

impl Applied {
    /// The applied objects of `kind`, by name.
    pub fn names_of(&self, kind: &str) -> Vec<String> {
        self.objects
            .iter()
            .filter(|o| o.kind == kind)
            .map(|o| o.name.clone())
            .collect()
    }
}

/// The object's resource in the catalogue.
pub fn resolve(catalog: &Catalog, object: &Value) -> Result<AppliedObject, PlatformError> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let (resource, namespaced) = catalog.resolve(api_version, kind).ok_or_else(|| {
        PlatformError::Infra(format!(
            "the cluster does not serve {api_version} {kind} (for `{name}`)"
        ))
    })?;
    Ok(AppliedObject {
        resource,
        namespaced,
        kind: kind.to_string(),
        name: name.to_string(),
    })
}

/// The object's API: namespaced in `namespace`, or cluster-scoped.
pub fn api_for(client: &Client, object: &AppliedObject, namespace: &str) -> Api<DynamicObject> {
    if object.namespaced {
        Api::namespaced_with(client.clone(), namespace, &object.resource)
    } else {
        Api::all_with(client.clone(), &object.resource)
    }
}

/// Apply every object (the Namespace first). A failure names the object and the API's
/// reason; objects applied before it are recorded in the error's `Applied` so they can
/// be deleted again.
pub async fn apply_all(
    client: &Client,
    settings: &KubeSettings,
    catalog: &Catalog,
    mut objects: Vec<Value>,
) -> Result<Applied, (PlatformError, Applied)> {
    objects.sort_by_key(|o| o["kind"] != "Namespace");
    let mut applied = Applied::default();
    for mut object in objects {
        let target = resolve(catalog, &object).map_err(|e| (e, applied.clone()))?;
        if target.kind == "Namespace" {
            applied.owns_namespace = claim_namespace(client, &target, &mut object)
                .await
                .map_err(|e| (e, applied.clone()))?;
        }
        let api = api_for(client, &target, &settings.namespace);
        let dynamic: DynamicObject = serde_json::from_value(object).map_err(|e| {
            (
                PlatformError::Infra(format!(
                    "{} `{}` is not a Kubernetes object: {e}",
                    target.kind, target.name
                )),
                applied.clone(),
            )
        })?;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        if let Err(e) = timed(api.patch(&target.name, &params, &Patch::Apply(&dynamic))).await {
            return Err((
                PlatformError::Infra(format!(
                    "server-side apply of {} `{}` in namespace {} failed: {e}",
                    target.kind, target.name, settings.namespace
                )),
                applied,
            ));
        }
        applied.objects.push(target);
    }
    settings.say(&format!(
        "kube: applied {} objects to namespace {} (server-side apply, field manager {FIELD_MANAGER})",
        applied.objects.len(),
        settings.namespace
    ));
    Ok(applied)
}

/// Whether the namespace is slo-check's: absent before (it is created now, marked), or
/// marked by an earlier run (the mark is applied again so apply keeps it).
async fn claim_namespace(
    client: &Client,
    target: &AppliedObject,
    object: &mut Value,
) -> Result<bool, PlatformError> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &target.resource);
    let existing = match timed(api.get_opt(&target.name)).await {
        Ok(found) => found,
        Err(e) => {
            return Err(PlatformError::Infra(format!(
                "cannot read namespace {}: {e}",
                target.name
            )));
        }
    };
    let ours = match &existing {
        None => true,
        Some(ns) => ns
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(CREATED_ANNOTATION)),
    };
    if ours {
        object["metadata"]["annotations"][CREATED_ANNOTATION] = Value::from(FIELD_MANAGER);
    }
    Ok(ours)
}
