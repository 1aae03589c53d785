//! A kube `Client` for the kubeconfig context the flags name (KUBECONFIG honoured),
//! with errors that say which file and context failed and how to fix it.

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::settings::KubeSettings;
use crate::platform::PlatformError;

/// The client for `settings.context` (the current context when none is given).
pub async fn client(settings: &KubeSettings) -> Result<Client, PlatformError> {
    let options = KubeConfigOptions {
        context: settings.context.clone(),
        ..KubeConfigOptions::default()
    };
    let mut config = match Config::from_kubeconfig(&options).await {
        Ok(c) => c,
        Err(e) => return Err(PlatformError::Usage(explain(settings, &e.to_string()))),
    };
    // kube's default retries 429/503/504 up to 15 times with backoff up to minutes: an
    // API that is down would look like a hang. slo-check bounds each call itself and
    // says what failed; the watches retry on their own backoff.
    config.default_retry = false;
    Client::try_from(config).map_err(|e| {
        PlatformError::Infra(format!(
            "cannot make a Kubernetes client for the {}: {e}",
            settings.cluster_name()
        ))
    })
}

fn explain(settings: &KubeSettings, error: &str) -> String {
    let source = match std::env::var("KUBECONFIG") {
        Ok(v) if !v.is_empty() => format!("KUBECONFIG={v}"),
        _ => "~/.kube/config".into(),
    };
    let contexts = Kubeconfig::read()
        .map(|k| {
            k.contexts
                .iter()
                .map(|c| c.name.clone())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let known = if contexts.is_empty() {
        String::new()
    } else {
        format!(" (contexts there: {contexts})")
    };
    format!(
        "cannot use the {} from {source}: {error}{known}; create a cluster first (e.g. `kind create cluster --name slo-check`) or pick one with --context NAME",
        settings.cluster_name()
    )
}
