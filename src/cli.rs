//! Raw command-line flags (clap), collected with no side effects; `plan` and
//! `app` turn them into validated configuration.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Load testing and SLO verification for agent platforms.
///
/// With no subcommand, `slo-check --scenario NAME ...` is `slo-check run --scenario NAME ...`.
#[derive(Debug, Parser)]
#[command(name = "slo-check", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario: deploy (or reach) the platform, drive load, verify SLOs, write reports.
    Run(RunArgs),
    /// Check scenario files (or every scenario in a directory) without running them.
    Validate(ValidateArgs),
    /// List the scenarios in the scenarios directory with their descriptions.
    List(ListArgs),
    /// Print the JSON Schema of the scenario format.
    Schema,
    /// Show the plan a scenario would run: stages, arrival schedule, SLOs.
    Plan(PlanArgs),
    /// Serve the reference agent service (the platform's API) on a loopback port.
    Agent(crate::agent::AgentArgs),
    /// Re-render every report (summary.md, junit.xml, report.html, SVGs) from a run.json.
    Report(ReportArgs),
    /// Find the highest arrival rate at which every SLO still holds (step up, then bisect).
    Capacity(crate::capacity::CapacityArgs),
    /// Deploy, inspect, clean or delete the platform stack in a Kubernetes cluster.
    Stack(StackArgs),
}

#[derive(Debug, Clone, Args)]
pub struct StackArgs {
    #[command(subcommand)]
    pub action: StackAction,
}

#[derive(Debug, Clone, Subcommand)]
pub enum StackAction {
    /// Check prerequisites, server-side apply the stack and wait for its rollouts.
    Up(KubeArgs),
    /// Delete what `up` applied (the namespace too, when slo-check created it).
    Down(KubeArgs),
    /// Show the stack's objects, rollouts, HPA and any fault left in a VirtualService.
    Status(KubeArgs),
    /// Restore VirtualServices that a killed run left with an injected fault.
    Clean(KubeArgs),
}

impl StackAction {
    pub fn kube(&self) -> &KubeArgs {
        match self {
            StackAction::Up(k)
            | StackAction::Down(k)
            | StackAction::Status(k)
            | StackAction::Clean(k) => k,
        }
    }
}

/// Comparison with an earlier run.
#[derive(Debug, Clone, Args)]
pub struct BaselineArgs {
    /// Compare with an earlier run's run.json; a regression beyond --max-regression exits 1.
    #[arg(long, value_name = "OLD.json")]
    pub baseline: Option<PathBuf>,
    /// Largest change for the worse, relative to the baseline, that is not a regression.
    #[arg(long, value_name = "PERCENT", default_value = "10%")]
    pub max_regression: String,
}

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// The run.json to render.
    #[arg(value_name = "RUN.json")]
    pub run: PathBuf,
    #[command(flatten)]
    pub baseline: BaselineArgs,
    /// Write the reports to DIR (default: the directory holding RUN.json).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Do not list the files written.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Where the system under test comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlatformKind {
    /// The embedded platform: reference agent replicas on loopback, emulated HPA and faults.
    Local,
    /// An already running endpoint given by --target-url.
    Url,
    /// A Kubernetes cluster from the kubeconfig (--context): deploys stack/, port-forwards the ingress gateway, watches the HPA, patches VirtualService faults.
    Kube,
}

#[derive(Debug, Clone, Args)]
pub struct ScenarioArgs {
    /// Scenario name (looked up as <scenarios-dir>/NAME.yaml) or a path to a YAML file.
    #[arg(short, long, value_name = "NAME|PATH")]
    pub scenario: Option<String>,
    #[command(flatten)]
    pub dir: ScenariosDir,
    /// Multiply every schedule duration (stages, fault windows, SLO windows) by F; e.g. 0.1 for a quick try.
    #[arg(long, value_name = "F", default_value_t = 1.0)]
    pub time_scale: f64,
    /// Override the scenario's Poisson seed.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

/// Where the system under test comes from (`run` and `capacity`).
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Platform that provides the system under test.
    #[arg(long, value_enum, default_value = "local")]
    pub platform: PlatformKind,
    /// Base URL of the system under test (with --platform url; with --platform kube, a URL that reaches the deployed service, instead of a port-forward to the ingress gateway).
    #[arg(long, value_name = "URL")]
    pub target_url: Option<String>,
    #[command(flatten)]
    pub kube: KubeArgs,
    /// With --platform kube: leave the deployed stack in the cluster after the run.
    #[arg(long)]
    pub keep: bool,
    /// With --platform kube: inject the scenario's faults even though the namespace lacks the label slo-check.io/faults=allowed.
    #[arg(long)]
    pub allow_faults: bool,
}

impl TargetArgs {
    /// Flag combinations that cannot work together.
    pub fn check(&self) -> Result<(), String> {
        if self.target_url.is_some() && self.platform == PlatformKind::Local {
            return Err(
                "--target-url goes with --platform url (or --platform kube, to reach the deployed service without a port-forward)"
                    .into(),
            );
        }
        if self.platform != PlatformKind::Kube {
            let kube_only = [
                ("--keep", self.keep),
                ("--allow-faults", self.allow_faults),
                ("--context", self.kube.context.is_some()),
                ("--namespace", self.kube.namespace.is_some()),
                ("--stack", self.kube.stack.is_some()),
                ("--overlay", self.kube.overlay.is_some()),
                ("--rollout-timeout", self.kube.rollout_timeout.is_some()),
                ("--ingress", self.kube.ingress.is_some()),
            ];
            if let Some((flag, _)) = kube_only.iter().find(|(_, given)| *given) {
                return Err(format!("{flag} goes with --platform kube"));
            }
        }
        Ok(())
    }
}

/// Which cluster, namespace and stack (`--platform kube` and `slo-check stack`).
#[derive(Debug, Clone, Default, Args)]
pub struct KubeArgs {
    /// Kubeconfig context to use (default: the current context; KUBECONFIG is honoured).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Namespace of the platform (default: the scenario's platform.namespace, mcp-agents); must be the namespace the stack deploys into.
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// The kustomize tree to deploy: a directory holding base/ and overlays/ [default: stack].
    #[arg(long, value_name = "DIR")]
    pub stack: Option<PathBuf>,
    /// Which overlay of --stack to deploy: kind or gpu (any directory under overlays/) [default: kind].
    #[arg(long, value_name = "NAME")]
    pub overlay: Option<String>,
    /// Longest wait for the Deployment and StatefulSets to roll out [default: 180s].
    #[arg(long, value_name = "DURATION")]
    pub rollout_timeout: Option<String>,
    /// Where traffic enters the mesh, as NAMESPACE/LABEL=VALUE:PORT: a pod matching it is port-forwarded (faults apply at the gateway) [default: istio-system/istio=ingressgateway:8080].
    #[arg(long, value_name = "NS/LABEL=VALUE:PORT")]
    pub ingress: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Write reports to DIR instead of reports/<scenario>/<UTC time>/.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print nothing but errors (no progress line, no verdict table).
    #[arg(short, long)]
    pub quiet: bool,
    /// Print run.json to stdout (progress and the verdict table go to stderr).
    #[arg(long)]
    pub json: bool,
    /// After an interrupt, how long in-flight workflows may still finish.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub grace: String,
    /// Most bytes of one response body read; a larger body fails with kind `other` (overrides the scenario's load.max_response_bytes).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_response_bytes: Option<u64>,
    #[command(flatten)]
    pub baseline: BaselineArgs,
    /// Prometheus base URL for PromQL and alert SLOs and the client/server cross-check (overrides the scenario's prometheus.url).
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Write the platform's metrics endpoints as a Prometheus file_sd file here, kept current during the run; point your Prometheus's file_sd_configs at it.
    #[arg(long, value_name = "PATH")]
    pub prometheus_sd_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// Scenario files or directories (default: the scenarios directory).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub dir: ScenariosDir,
}

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub dir: ScenariosDir,
}

/// Where named scenarios live.
#[derive(Debug, Clone, Args)]
pub struct ScenariosDir {
    /// Directory holding named scenarios.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "scenarios",
        env = "SLO_CHECK_SCENARIOS"
    )]
    pub scenarios_dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Also print every intended workflow start, one offset in seconds per line.
    #[arg(long)]
    pub starts: bool,
}
