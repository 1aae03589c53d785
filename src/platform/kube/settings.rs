//! The kube platform's settings, resolved from flags and the scenario's `platform:`
//! block, with defaults filled in and every value checked.

use std::path::PathBuf;
use std::time::Duration;

use crate::platform::PlatformError;
use crate::scenario::PlatformRefs;

/// Where Istio's gateway pods serve Envoy's admin interface.
pub const ENVOY_ADMIN_PORT: u16 = 15000;

/// Where traffic enters the mesh: a pod matched by `selector` in `namespace`, port-forwarded on `port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingress {
    pub namespace: String,
    /// One `label=value` pair.
    pub selector: String,
    pub port: u16,
}

impl Default for Ingress {
    fn default() -> Self {
        Ingress {
            namespace: "istio-system".into(),
            selector: "istio=ingressgateway".into(),
            port: 8080,
        }
    }
}

impl Ingress {
    /// The selector's label and value (`None` only for a hand-built selector without `=`).
    pub fn label(&self) -> Option<(&str, &str)> {
        self.selector.split_once('=')
    }

    /// Parses `NAMESPACE/LABEL=VALUE:PORT`.
    pub fn parse(text: &str) -> Result<Ingress, String> {
        let bad = |why: &str| {
            format!(
                "--ingress `{text}`: {why}; write NAMESPACE/LABEL=VALUE:PORT, e.g. istio-system/istio=ingressgateway:8080"
            )
        };
        let (namespace, rest) = text.split_once('/').ok_or_else(|| bad("no `/`"))?;
        let (selector, port) = rest.rsplit_once(':').ok_or_else(|| bad("no `:PORT`"))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("the port is not a number from 1 to 65535"))?;
        let (label, value) = selector
            .split_once('=')
            .ok_or_else(|| bad("the selector is not LABEL=VALUE"))?;
        if namespace.is_empty() || label.is_empty() || value.is_empty() {
            return Err(bad("an empty namespace, label or value"));
        }
        Ok(Ingress {
            namespace: namespace.into(),
            selector: selector.into(),
            port,
        })
    }
}

/// What the user asked of the kube platform, as given (durations and the ingress
/// still as text, so the errors can quote them); `KubeSettings::resolve` checks it.
#[derive(Debug, Clone, Default)]
pub struct KubeRequest {
    /// Kubeconfig context (default: the current one).
    pub context: Option<String>,
    /// Namespace of the platform (default: the scenario's `platform.namespace`).
    pub namespace: Option<String>,
    /// The kustomize tree (default: `stack`).
    pub stack: Option<PathBuf>,
    /// Overlay of the stack (default: `kind`).
    pub overlay: Option<String>,
    /// Longest rollout wait, as text (default: 180s).
    pub rollout_timeout: Option<String>,
    /// `NAMESPACE/LABEL=VALUE:PORT` of the ingress gateway, as text.
    pub ingress: Option<String>,
    /// Reach the service here instead of port-forwarding the ingress gateway.
    pub target_url: Option<String>,
    /// Leave the stack deployed after the run.
    pub keep: bool,
    /// Inject faults without the namespace's opt-in label.
    pub allow_faults: bool,
    /// A distributed run's generator pods (`--generators N`).
    pub generators: Option<Box<super::generators::GeneratorJob>>,
}

/// Everything the kube platform needs to know, checked.
#[derive(Debug, Clone)]
pub struct KubeSettings {
    pub context: Option<String>,
    pub namespace: String,
    /// The kustomize tree (holds `base/` and `overlays/`).
    pub stack: PathBuf,
    pub overlay: String,
    pub rollout_timeout: Duration,
    pub ingress: Ingress,
    /// Reach the service here instead of port-forwarding the ingress gateway.
    pub target_url: Option<String>,
    /// Traffic will be driven through a port-forward to the ingress gateway (a run
    /// without --target-url), so a ready gateway pod is a prerequisite.
    pub forward_ingress: bool,
    /// The port of the gateway pods' Envoy admin (Istio's gateways: 15000), read through
    /// a port-forward for the faults' propagation and the gateway's counters.
    pub envoy_admin_port: u16,
    pub keep: bool,
    pub allow_faults: bool,
    /// A distributed run's generator pods (`--generators N`).
    pub generators: Option<super::generators::GeneratorJob>,
    /// The scenario has faults (so the opt-in is checked and an injector is made).
    pub wants_faults: bool,
    /// Names of the Deployment, HPA and VirtualService the scenario watches and patches.
    pub refs: PlatformRefs,
    pub quiet: bool,
}

impl KubeSettings {
    /// Resolve the request against the scenario's `platform:` block (`refs`).
    pub fn resolve(
        args: &KubeRequest,
        refs: &PlatformRefs,
        quiet: bool,
    ) -> Result<KubeSettings, PlatformError> {
        let usage = PlatformError::Usage;
        let rollout_timeout = match &args.rollout_timeout {
            Some(text) => crate::units::parse_duration(text)
                .map_err(|e| usage(format!("--rollout-timeout: {e}")))?,
            None => Duration::from_secs(180),
        };
        if rollout_timeout.is_zero() {
            return Err(usage(
                "--rollout-timeout must be above zero, e.g. 180s".into(),
            ));
        }
        let ingress = match &args.ingress {
            Some(text) => Ingress::parse(text).map_err(usage)?,
            None => Ingress::default(),
        };
        let overlay = args.overlay.clone().unwrap_or_else(|| "kind".into());
        if overlay.is_empty() || overlay.contains(['/', '\\']) || overlay.starts_with('.') {
            return Err(usage(format!(
                "--overlay `{overlay}`: give the name of a directory under <stack>/overlays, e.g. kind or gpu"
            )));
        }
        let mut refs = refs.clone();
        if let Some(ns) = &args.namespace {
            if !is_dns_label(ns) {
                return Err(usage(format!(
                    "--namespace `{ns}`: not a Kubernetes namespace name (lower-case letters, digits and `-`, at most 63, starting and ending with a letter or digit)"
                )));
            }
            refs.namespace = ns.clone();
        }
        Ok(KubeSettings {
            context: args.context.clone(),
            namespace: refs.namespace.clone(),
            stack: args.stack.clone().unwrap_or_else(|| PathBuf::from("stack")),
            overlay,
            rollout_timeout,
            ingress,
            target_url: args.target_url.clone(),
            forward_ingress: args.target_url.is_none(),
            envoy_admin_port: ENVOY_ADMIN_PORT,
            keep: args.keep,
            allow_faults: args.allow_faults,
            generators: args.generators.as_deref().cloned(),
            wants_faults: false,
            refs,
            quiet,
        })
    }

    /// `--context NAME` as it would be typed again, or nothing.
    pub fn context_flag(&self) -> String {
        match &self.context {
            Some(c) => format!(" --context {c}"),
            None => String::new(),
        }
    }

    /// The context's name for messages.
    pub fn cluster_name(&self) -> String {
        match &self.context {
            Some(c) => format!("context {c}"),
            None => "current context".into(),
        }
    }

    /// A progress line on stderr, unless `--quiet`.
    pub fn say(&self, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }
}

/// An RFC 1123 label, as namespace names must be.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingress_parses_and_names_what_is_wrong() {
        assert_eq!(
            Ingress::parse("istio-system/istio=ingressgateway:8080").unwrap(),
            Ingress::default()
        );
        let custom = Ingress::parse("gw/app=edge:80").unwrap();
        assert_eq!(
            (
                custom.namespace.as_str(),
                custom.selector.as_str(),
                custom.port
            ),
            ("gw", "app=edge", 80)
        );
        for (text, why) in [
            ("istio-system", "no `/`"),
            ("ns/app=x", "no `:PORT`"),
            ("ns/app=x:0", "port"),
            ("ns/app=x:http", "port"),
            ("ns/app:80", "LABEL=VALUE"),
            ("/app=x:80", "empty"),
        ] {
            let err = Ingress::parse(text).unwrap_err();
            assert!(
                err.contains(why) && err.contains("--ingress"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn flags_override_the_scenario_and_bad_values_are_named() {
        let refs = PlatformRefs::default();
        let s = KubeSettings::resolve(&KubeRequest::default(), &refs, true).unwrap();
        assert_eq!(
            (s.namespace.as_str(), s.overlay.as_str()),
            ("mcp-agents", "kind")
        );
        assert_eq!(s.rollout_timeout, Duration::from_secs(180));
        let args = KubeRequest {
            namespace: Some("perf".into()),
            overlay: Some("gpu".into()),
            rollout_timeout: Some("2m".into()),
            ..KubeRequest::default()
        };
        let s = KubeSettings::resolve(&args, &refs, true).unwrap();
        assert_eq!(
            (s.namespace.as_str(), s.refs.namespace.as_str()),
            ("perf", "perf")
        );
        assert_eq!(s.rollout_timeout, Duration::from_secs(120));
        for (args, flag) in [
            (
                KubeRequest {
                    namespace: Some("Perf_1".into()),
                    ..KubeRequest::default()
                },
                "--namespace",
            ),
            (
                KubeRequest {
                    overlay: Some("../x".into()),
                    ..KubeRequest::default()
                },
                "--overlay",
            ),
            (
                KubeRequest {
                    rollout_timeout: Some("soon".into()),
                    ..KubeRequest::default()
                },
                "--rollout-timeout",
            ),
            (
                KubeRequest {
                    rollout_timeout: Some("0s".into()),
                    ..KubeRequest::default()
                },
                "--rollout-timeout",
            ),
            (
                KubeRequest {
                    ingress: Some("x".into()),
                    ..KubeRequest::default()
                },
                "--ingress",
            ),
        ] {
            let err = KubeSettings::resolve(&args, &refs, true)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(flag), "{err}");
        }
    }
}
