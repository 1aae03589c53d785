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

/// The kubeconfig a tool that takes one file (Prometheus's `kubeconfig_file`) should
/// read to reach the cluster slo-check reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeconfigFile {
    /// Absolute.
    pub path: std::path::PathBuf,
    /// Where the path came from: `--kubeconfig`, `KUBECONFIG` or `~/.kube/config`.
    pub source: &'static str,
    /// Its current context, the one such a tool uses (`None`: the file is not readable here).
    pub current_context: Option<String>,
}

/// `flag`, else the kubeconfig slo-check itself reads ($KUBECONFIG when it names one
/// file, else ~/.kube/config). A `context` other than the file's current one is refused:
/// a one-file reader has no way to pick another.
pub fn kubeconfig_file(
    flag: Option<&std::path::Path>,
    context: Option<&str>,
) -> Result<KubeconfigFile, PlatformError> {
    let usage = PlatformError::Usage;
    let (path, source) = match (flag, std::env::var_os("KUBECONFIG")) {
        (Some(p), _) => (p.to_path_buf(), "--kubeconfig"),
        (None, Some(list)) if !list.is_empty() => {
            let files: Vec<_> = std::env::split_paths(&list)
                .filter(|p| !p.as_os_str().is_empty())
                .collect();
            match files.as_slice() {
                [one] => (one.clone(), "KUBECONFIG"),
                _ => {
                    return Err(usage(format!(
                        "KUBECONFIG lists {} files and Prometheus's kubeconfig_file takes one: give --kubeconfig PATH (e.g. a file written by `kubectl config view --flatten --minify`)",
                        files.len()
                    )));
                }
            }
        }
        (None, _) => {
            let home = std::env::var_os("HOME").ok_or_else(|| {
                usage("neither KUBECONFIG nor HOME is set: give --kubeconfig PATH".into())
            })?;
            (
                std::path::Path::new(&home).join(".kube/config"),
                "~/.kube/config",
            )
        }
    };
    let path = std::path::absolute(&path).unwrap_or(path);
    let current_context = Kubeconfig::read_from(&path)
        .ok()
        .and_then(|k| k.current_context);
    if let Some(wanted) = context
        && current_context.as_deref() != Some(wanted)
    {
        return Err(usage(format!(
            "--context {wanted}: Prometheus's kubeconfig_file always uses the file's current context, and that of {} (from {source}) is {}; give --kubeconfig a file whose current context is {wanted} (`kubectl config view --flatten --minify --context {wanted} > FILE`)",
            path.display(),
            current_context.as_deref().unwrap_or("unreadable")
        )));
    }
    Ok(KubeconfigFile {
        path,
        source,
        current_context,
    })
}
