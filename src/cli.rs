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
    /// A Kubernetes cluster from the current kubeconfig context (not in this version yet).
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
    /// Base URL of the system under test (with --platform url).
    #[arg(long, value_name = "URL")]
    pub target_url: Option<String>,
}

impl TargetArgs {
    /// Flag combinations that cannot work together.
    pub fn check(&self) -> Result<(), String> {
        if self.target_url.is_some() && self.platform != PlatformKind::Url {
            return Err("--target-url goes with --platform url".into());
        }
        Ok(())
    }
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
