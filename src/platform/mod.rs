//! Platforms bring the system under test up, hand back a `Target`, and take it
//! down: `url` (an endpoint that is already running), `local` (the embedded
//! platform) and `kube` (a Kubernetes cluster). `Choice` says which, as domain
//! configuration the commands layer builds from the flags.

pub mod kube;
pub mod local;
pub mod url;

use tokio_util::sync::CancellationToken;

use crate::exit::Class;
use crate::plan::Plan;
use crate::target::Target;

/// A platform-level failure: the system under test could not be brought up or reached.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// Bad flags or settings (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Infrastructure failure (exit 3).
    #[error("{0}")]
    Infra(String),
    /// A signal arrived while the platform was coming up (exit 130).
    #[error("{0}")]
    Interrupted(String),
}

impl PlatformError {
    /// What kind of failure this is.
    pub fn class(&self) -> Class {
        match self {
            PlatformError::Usage(_) => Class::Usage,
            PlatformError::Infra(_) => Class::Infra,
            PlatformError::Interrupted(_) => Class::Interrupted,
        }
    }
}

/// Which platform provides the system under test, and how.
#[derive(Debug, Clone)]
pub enum Choice {
    /// The embedded platform: reference agent replicas on loopback.
    Local,
    /// An endpoint that is already running (`--target-url`, checked by `url::target`).
    Url(Option<String>),
    /// A Kubernetes cluster.
    Kube(kube::KubeRequest),
}

impl Choice {
    /// The platform's name, as reports and `--platform` spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Choice::Local => "local",
            Choice::Url(_) => "url",
            Choice::Kube(_) => "kube",
        }
    }
}

/// A platform that is up, to be taken down after the run.
pub enum Deployed {
    /// Nothing to take down (`url`).
    Nothing,
    Local(Box<local::LocalPlatformHandle>),
    Kube(Box<kube::KubePlatformHandle>),
}

impl Deployed {
    /// Take the platform down (faults restored, replicas stopped, the stack deleted
    /// unless kept). What could not be undone comes back, one message each, saying what
    /// to run (the run then exits 3).
    pub async fn down(self) -> Vec<String> {
        match self {
            Deployed::Nothing => Vec::new(),
            Deployed::Local(handle) => {
                handle.down().await;
                Vec::new()
            }
            Deployed::Kube(handle) => handle.down().await,
        }
    }
}

/// A canary needs a platform that runs both subsets and routes between them: the
/// embedded one, or a cluster's mesh. The error points at the scenario's `canary:`
/// section.
fn cannot_route(
    choice: &Choice,
    plan: &Plan,
    canary: &crate::scenario::Canary,
) -> Result<(), PlatformError> {
    let why = match choice {
        Choice::Local => return Ok(()),
        Choice::Url(_) => {
            "the url platform cannot route: it sends every request to one address and has no subsets to shift traffic between"
        }
        Choice::Kube(_) => return Ok(()),
    };
    let at = canary
        .line_col
        .map(|(l, c)| format!(":{l}:{c}"))
        .unwrap_or_default();
    Err(PlatformError::Usage(format!(
        "{}{at}: canary: {why}; run it on the embedded platform (--platform local) or on a cluster (--platform kube)",
        plan.scenario.source.display()
    )))
}

/// Bring the chosen platform up for `plan` (`slo-check capacity` keeps one up across its
/// steps). `cancel` (an interrupt) stops a slow bring-up.
pub async fn up(
    choice: &Choice,
    plan: &Plan,
    quiet: bool,
    cancel: CancellationToken,
) -> Result<(Target, Deployed), PlatformError> {
    if let Some(canary) = &plan.scenario.canary {
        cannot_route(choice, plan, canary)?;
    }
    match choice {
        Choice::Url(url) => Ok((url::target(url.as_deref())?, Deployed::Nothing)),
        Choice::Local => {
            let opts = local::LocalOptions::in_current_dir(
                plan.scenario.platform.local.clone(),
                plan.time_scale,
            )?;
            let handle = local::up_with_canary(opts, plan.scenario.canary.as_ref()).await?;
            Ok((handle.target(), Deployed::Local(Box::new(handle))))
        }
        Choice::Kube(request) => {
            let mut settings =
                kube::KubeSettings::resolve(request, &plan.scenario.platform, quiet)?;
            settings.wants_faults = !plan.scenario.faults.is_empty();
            let canary = plan.scenario.canary.as_ref().map(|c| {
                if c.local.iter().any(|l| {
                    l.fail_ratio.is_some() || l.latency_factor != 1.0 || l.replicas.is_some()
                }) {
                    eprintln!(
                        "warning: canary: the `local` settings shape the embedded platform's agents only; on a cluster the canary is the mcp-agent-canary Deployment as deployed"
                    );
                }
                kube::CanarySubsets {
                    stable: c.versions[crate::scenario::Subset::Stable.index()].clone(),
                    canary: c.versions[crate::scenario::Subset::Canary.index()].clone(),
                }
            });
            let handle = kube::up(settings, canary, cancel).await?;
            Ok((handle.target(), Deployed::Kube(Box::new(handle))))
        }
    }
}
