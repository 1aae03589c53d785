//! `slo-check stack up|down|status|clean|permissions|scrape-config`: the kube platform's
//! steps one at a time, for people and CI scripts. Exit: 0 done, 2 bad flags, 3 the
//! cluster failed us, 130 interrupted.

use crate::cli::{ScrapeConfigArgs, SdRole, StackAction, StackArgs};
use crate::exit;
use crate::platform::PlatformError;
use crate::platform::kube::render::{self, Purpose};
use crate::platform::kube::stack::{self, Action};
use crate::platform::kube::{KubeSettings, connect};
use crate::prom::scrape_config::{self, Options, Role};
use crate::scenario::PlatformRefs;

/// Run the command.
pub fn run(args: &StackArgs) -> u8 {
    let (action, kube) = match &args.action {
        StackAction::Up(k) => (Action::Up, k),
        StackAction::Down(k) => (Action::Down, k),
        StackAction::Status(k) => (Action::Status, k),
        StackAction::Clean(k) => (Action::Clean, k),
        StackAction::Permissions(k) => (Action::Permissions, k),
        StackAction::ScrapeConfig(a) => {
            return match scrape_configs(a) {
                Ok(yaml) => {
                    print!("{yaml}");
                    exit::PASS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    e.class().code()
                }
            };
        }
    };
    let request = super::kube_request(kube);
    exit::block_on(async {
        match stack::run(action, &request).await {
            Ok(()) => exit::PASS,
            Err(e) => {
                eprintln!("error: {e}");
                e.class().code()
            }
        }
    })
}

/// The stack's ServiceMonitors as scrape jobs, with a header saying where they and the
/// kubeconfig came from. Renders the stack; never talks to the cluster.
fn scrape_configs(args: &ScrapeConfigArgs) -> Result<String, PlatformError> {
    let usage = PlatformError::Usage;
    let settings = KubeSettings::resolve(
        &super::kube_request(&args.kube),
        &PlatformRefs::default(),
        true,
    )?;
    let scrape_interval = args
        .scrape_interval
        .as_deref()
        .map(|t| match crate::units::parse_duration(t) {
            Ok(d) if !d.is_zero() => Ok(d),
            Ok(_) => Err("must be above zero, e.g. 15s".to_string()),
            Err(e) => Err(e),
        })
        .transpose()
        .map_err(|e| usage(format!("--scrape-interval: {e}")))?;
    let kubeconfig =
        connect::kubeconfig_file(args.kubeconfig.as_deref(), settings.context.as_deref())?;
    let options = Options {
        role: match args.role {
            SdRole::Endpointslice => Role::EndpointSlice,
            SdRole::Endpoints => Role::Endpoints,
        },
        kubeconfig_file: kubeconfig.path.display().to_string(),
        scrape_interval,
    };
    let overlay = settings.stack.join("overlays").join(&settings.overlay);
    let objects = render::render_for(&settings, Purpose::Inspect)?;
    let configs = scrape_config::translate(&objects, &settings.namespace, &options)
        .map_err(|e| usage(format!("{}: {e}", overlay.display())))?;
    if configs.scrape_configs.is_empty() {
        return Err(usage(format!(
            "{} renders no ServiceMonitor, so there is nothing to scrape",
            overlay.display()
        )));
    }
    let context = match &kubeconfig.current_context {
        Some(c) => format!("its current context, {c}"),
        None => "its current context (the file is not readable here)".into(),
    };
    Ok(format!(
        "# Scrape jobs for the ServiceMonitors of {} (namespace {}), as prometheus-operator
# generates them, written by `slo-check stack scrape-config`; put them in prometheus.yml.
# kubeconfig_file: {} (from {}); Prometheus uses {context}.
{}",
        overlay.display(),
        settings.namespace,
        kubeconfig.path.display(),
        kubeconfig.source,
        scrape_config::to_yaml(&configs)
    ))
}
