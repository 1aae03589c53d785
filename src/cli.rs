//! Raw command-line flags (clap), collected with no side effects: every clap type of
//! the crate. Only the commands layer reads them, and turns them into the library's
//! validated configuration.

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
    Agent(AgentArgs),
    /// Re-render every report (summary.md, junit.xml, report.html, SVGs) from a run.json.
    Report(ReportArgs),
    /// Find the highest arrival rate at which every SLO still holds (step up, then bisect).
    Capacity(CapacityArgs),
    /// The runs recorded in the history, with their trends; `history compare A B`.
    History(HistoryCmdArgs),
    /// Deploy, inspect, clean or delete the platform stack in a Kubernetes cluster.
    Stack(StackArgs),
    /// One generator of a distributed run (`run --generators N` starts these): issue shard I/N of the scenario's schedule when the coordinator says, and serve the records to it.
    Generate(GenerateArgs),
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
    /// Print the Role and ClusterRole (YAML) with exactly the permissions slo-check needs.
    Permissions(KubeArgs),
    /// Print a Prometheus `scrape_configs:` (YAML) that scrapes what the stack's ServiceMonitors select, through kubernetes_sd_configs, as prometheus-operator would; for a Prometheus without the operator.
    ScrapeConfig(ScrapeConfigArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ScrapeConfigArgs {
    #[command(flatten)]
    pub kube: KubeArgs,
    /// The kubeconfig Prometheus authenticates to the API server with (its current context is used) [default: the one slo-check uses: $KUBECONFIG, else ~/.kube/config].
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// How Prometheus discovers each Service's endpoints.
    #[arg(long, value_enum, default_value_t = SdRole::Endpointslice)]
    pub role: SdRole,
    /// Scrape every endpoint this often instead of its ServiceMonitor's interval (a longer scrapeTimeout is lowered to it), e.g. 1s for a test.
    #[arg(long, value_name = "DURATION")]
    pub scrape_interval: Option<String>,
}

/// Prometheus's kubernetes_sd_configs role for a ServiceMonitor's endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SdRole {
    /// discovery.k8s.io/v1 EndpointSlices.
    Endpointslice,
    /// v1 Endpoints (deprecated in Kubernetes 1.33).
    Endpoints,
}

/// Comparison with an earlier run.
#[derive(Debug, Clone, Args)]
pub struct BaselineArgs {
    /// Compare with an earlier run's run.json (a regression beyond --max-regression exits 1), or, on `run`, `history`: change-point detection over the scenario's earlier runs in --history (exit 1 only with --fail-on-regression).
    #[arg(long, value_name = "OLD.json|history")]
    pub baseline: Option<PathBuf>,
    /// Largest change for the worse, relative to the baseline, that is not a regression.
    #[arg(long, value_name = "PERCENT", default_value = crate::report::baseline::DEFAULT_MAX_REGRESSION)]
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
    /// Exit 1 when --baseline history finds a regression (without it, regressions are reported only).
    #[arg(long)]
    pub fail_on_regression: bool,
    #[command(flatten)]
    pub history: HistoryArgs,
    /// Prometheus base URL for PromQL and alert SLOs and the client/server cross-check (overrides the scenario's prometheus.url).
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Write the platform's metrics endpoints as a Prometheus file_sd file here, kept current during the run; point your Prometheus's file_sd_configs at it.
    #[arg(long, value_name = "PATH")]
    pub prometheus_sd_file: Option<PathBuf>,
    #[command(flatten)]
    pub live: LiveArgs,
    /// Issue the load from N generators instead of this process: each runs `slo-check generate` with its shard i/N of the one schedule (every N-th start), and their records are merged here into one verdict. With --platform local or url they are processes on this machine.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub generators: Option<u32>,
    #[command(flatten)]
    pub generator_pods: Box<GeneratorPodArgs>,
}

/// Where `--generators N` runs its pods on `--platform kube` (an Indexed Job).
#[derive(Debug, Clone, Args)]
pub struct GeneratorPodArgs {
    /// The generator pods' image (slo-check's) [default: the image of the stack's Deployment].
    #[arg(long, value_name = "IMAGE")]
    pub generator_image: Option<String>,
    /// Schedule the generator pods on nodes with this label (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub generator_node_selector: Vec<String>,
    /// Let the generator pods run on nodes with this NoSchedule taint (repeatable).
    #[arg(long, value_name = "KEY")]
    pub generator_toleration: Vec<String>,
    /// At most one generator pod per node (a required pod anti-affinity on kubernetes.io/hostname).
    #[arg(long)]
    pub generator_spread: bool,
    /// Each generator pod's CPU request.
    #[arg(long, value_name = "CPU", default_value = "500m")]
    pub generator_cpu: String,
}

/// `slo-check generate`: one generator of a distributed run, started by `run --generators N`.
#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Base URL of the system under test; given K times, generator I drives the (I mod K)-th (one gateway pod each).
    #[arg(long, value_name = "URL", required = true)]
    pub target_url: Vec<String>,
    /// Which starts to issue: I/N, the starts whose sequence number is I modulo N (0 ≤ I < N).
    #[arg(long, value_name = "I/N")]
    pub shard: String,
    /// Serve the control API here (port 0: any free port; the address is printed as `listening on ADDR`).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Most bytes of one response body read (as `run --max-response-bytes`).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_response_bytes: Option<u64>,
    /// A step of `capacity --generators N`: the plan holds RATE/s as step INDEX of the search (with --step-for and --warmup as the coordinator's), not the scenario's stages.
    #[arg(long, value_name = "INDEX:RATE", requires_all = ["step_for", "warmup"])]
    pub capacity_step: Option<String>,
    /// With --capacity-step: the coordinator's --step-for.
    #[arg(long, value_name = "DURATION", requires = "capacity_step")]
    pub step_for: Option<String>,
    /// With --capacity-step: the coordinator's warm-up.
    #[arg(long, value_name = "DURATION", requires = "capacity_step")]
    pub warmup: Option<String>,
}

/// Live metrics out during a run (k6's `testid`, `/metrics` and remote write).
#[derive(Debug, Clone, Args)]
pub struct LiveArgs {
    /// The run's test id: the `testid` label of its live metrics, also in run.json [default: <scenario>-<UTC start time>, e.g. spike-2026-12-05T160102Z].
    #[arg(long, value_name = "ID")]
    pub testid: Option<String>,
    /// Serve the run's live metrics (Prometheus text format, `slo_check_*`) at http://ADDR/metrics while it runs, e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Push the same series to a Prometheus remote-write receiver (remote write 1.0) during the run and once at its end, e.g. http://127.0.0.1:9090/api/v1/write.
    #[arg(long, value_name = "URL")]
    pub remote_write: Option<String>,
    /// Time between pushes to --remote-write.
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub remote_write_interval: String,
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

#[derive(Debug, Clone, Args)]
pub struct CapacityArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// First rate tried, workflow starts per second (default: the scenario's first stage's rate).
    #[arg(long, value_name = "RATE")]
    pub from: Option<f64>,
    /// Highest rate tried, per second (default: 100 × --from).
    #[arg(long, value_name = "RATE")]
    pub to: Option<f64>,
    /// How long each rate is held and measured (scenario time; scaled by --time-scale).
    #[arg(long, value_name = "DURATION", default_value = "20s")]
    pub step_for: String,
    /// How long each rate is held before its measured step (default 5s; 60s when the
    /// embedded platform autoscales, so the replica count can settle).
    #[arg(long, value_name = "DURATION")]
    pub warmup: Option<String>,
    /// Relative precision of the result: stop when the lowest failing rate is within this
    /// of the highest passing one.
    #[arg(long, value_name = "PERCENT", default_value = "5%")]
    pub precision: String,
    /// Most steps (rates held) in all; bounds the search's total time.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub max_steps: usize,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Issue each step's load from N generators, processes of this executable on this machine (`slo-check generate`, as `run --generators N` on --platform local or url); each step's records are merged into one verdict.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub generators: Option<u32>,
    /// Write capacity.json, capacity.md, capacity.html and capacity.svg to DIR instead of
    /// reports/<scenario>/capacity-<UTC time>/.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print nothing but errors (no progress, no per-step lines, no summary).
    #[arg(short, long)]
    pub quiet: bool,
    /// Print capacity.json to stdout (per-step lines and the summary go to stderr).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub history: HistoryArgs,
}

/// Where a run is recorded, and its labels.
#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// Record the run in this history: sqlite:PATH or postgres://USER@HOST:PORT/DB, or `off` [default: sqlite:reports/history.sqlite when the reports go under reports/, none with --out].
    #[arg(
        long,
        value_name = "URL",
        env = "SLO_CHECK_HISTORY",
        hide_env_values = true
    )]
    pub history: Option<String>,
    /// A label stored with the run, e.g. --label commit=abc123 --label version=1.4 (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct HistoryCmdArgs {
    #[command(subcommand)]
    pub action: Option<HistoryAction>,
    /// The history to read: sqlite:PATH or postgres://… [default: sqlite:reports/history.sqlite].
    #[arg(
        long,
        value_name = "URL",
        env = "SLO_CHECK_HISTORY",
        hide_env_values = true,
        global = true
    )]
    pub history: Option<String>,
    /// Only runs of this scenario.
    #[arg(long, value_name = "NAME")]
    pub scenario: Option<String>,
    /// Show this metric's column (repeatable), e.g. "workflow p95", "failure rate", "SLO workflow p95" [default: p95, failure rate, achieved rate].
    #[arg(long, value_name = "NAME")]
    pub metric: Vec<String>,
    /// The newest N runs.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub last: usize,
    /// Print JSON instead of the table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum HistoryAction {
    /// Two recorded runs side by side: every observed value and its change from A to B.
    Compare {
        /// The earlier run's id (the first column of `slo-check history`).
        a: i64,
        /// The later run's id.
        b: i64,
    },
}

/// Raw flags of `slo-check agent`; every one also reads an `AGENT_*` environment variable.
/// Durations use humantime syntax (`800ms`, `1s`, `2m`).
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// The replica's version, sent in every answer's `x-agent-version` header so a canary
    /// run can tell which subset served a workflow (the stack sets it from the pod's
    /// `version` label). Empty: no header.
    #[arg(long, value_name = "VERSION", env = "AGENT_VERSION_LABEL")]
    pub version_label: Option<String>,
    /// Address to serve on. Must be loopback unless --allow-non-loopback is given.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8080",
        env = "AGENT_LISTEN"
    )]
    pub listen: String,
    /// Allow a non-loopback --listen address (e.g. 0.0.0.0:8080 inside a container image).
    /// Tests and the local harness only ever use loopback.
    #[arg(long, env = "AGENT_ALLOW_NON_LOOPBACK")]
    pub allow_non_loopback: bool,
    /// LLM calls per workflow.
    #[arg(long, value_name = "N", default_value_t = 2, env = "AGENT_LLM_CALLS")]
    pub llm_calls: u32,
    /// Median latency of one LLM call (lognormal).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "200ms",
        env = "AGENT_LLM_MEDIAN"
    )]
    pub llm_median: String,
    /// 99th-percentile latency of one LLM call (lognormal); must be >= --llm-median.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "1s",
        env = "AGENT_LLM_P99"
    )]
    pub llm_p99: String,
    /// Tool calls per workflow.
    #[arg(long, value_name = "N", default_value_t = 1, env = "AGENT_TOOL_CALLS")]
    pub tool_calls: u32,
    /// Median latency of one tool call (lognormal).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "50ms",
        env = "AGENT_TOOL_MEDIAN"
    )]
    pub tool_median: String,
    /// 99th-percentile latency of one tool call (lognormal); must be >= --tool-median.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "200ms",
        env = "AGENT_TOOL_P99"
    )]
    pub tool_p99: String,
    /// CPU work per workflow (in core-time), served on this replica's --cores.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "20ms",
        env = "AGENT_CPU_PER_WORKFLOW"
    )]
    pub cpu_per_workflow: String,
    /// CPU capacity of this replica in cores; may be fractional (0.5 = half a core).
    /// With --cpu-mode burn it sizes the pool of spinning threads (ceil(CORES)): match it
    /// to the container's CPU limit.
    #[arg(long, value_name = "CORES", default_value_t = 1.0, env = "AGENT_CORES")]
    pub cores: f64,
    /// How a workflow's CPU work is done. `simulated`: it holds a slot of the emulated
    /// --cores and sleeps, using no real CPU (the embedded platform runs many replicas in
    /// one process). `burn`: a real thread spins until it has used --cpu-per-workflow of
    /// CPU time, so a cluster's metrics-server and a CPU-based HPA see the load.
    #[arg(
        long,
        value_enum,
        value_name = "MODE",
        default_value_t = CpuModeArg::Simulated,
        env = "AGENT_CPU_MODE"
    )]
    pub cpu_mode: CpuModeArg,
    /// Sliding window over which CPU utilisation is computed.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "15s",
        env = "AGENT_UTILISATION_WINDOW"
    )]
    pub utilisation_window: String,
    /// Fraction of workflows (0..=1) that end `failed`.
    #[arg(
        long,
        value_name = "RATIO",
        default_value_t = 0.0,
        env = "AGENT_FAIL_RATIO"
    )]
    pub fail_ratio: f64,
    /// Most workflows active at once; a POST /api/v1/workflows beyond it answers 503.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 100,
        env = "AGENT_MAX_CONCURRENT_WORKFLOWS"
    )]
    pub max_concurrent_workflows: usize,
    /// Time after start during which /ready answers 503, as a pod's readiness delay.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "0s",
        env = "AGENT_STARTUP_DELAY"
    )]
    pub startup_delay: String,
    /// How long finished workflows stay queryable by GET before they are evicted.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "5m",
        env = "AGENT_FINISHED_RETENTION"
    )]
    pub finished_retention: String,
    /// At most this many finished workflows are kept; the oldest are evicted first
    /// (in-memory state only; in Redis, --finished-retention bounds them).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10_000,
        env = "AGENT_MAX_FINISHED_WORKFLOWS"
    )]
    pub max_finished_workflows: usize,
    /// Keep workflow state in Redis, shared by all replicas (a GET may reach any of them),
    /// instead of in memory per replica. Form: redis://[:PASSWORD@]HOST[:PORT][/DB], with
    /// the password percent-encoded; plain TCP (no TLS). The password is never logged.
    #[arg(long, value_name = "URL", env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Bound on each Redis call (connecting included); past it the request answers 503.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "1s",
        env = "AGENT_REDIS_TIMEOUT"
    )]
    pub redis_timeout: String,
    /// On shutdown, how long in-flight HTTP requests may still finish.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "5s",
        env = "AGENT_SHUTDOWN_GRACE"
    )]
    pub shutdown_grace: String,
    /// Seed of the latency and failure draws (default: random). Fixed seeds make runs repeatable.
    #[arg(long, value_name = "N", env = "AGENT_SEED")]
    pub seed: Option<u64>,
}

/// How the agent's CPU work is done (`--cpu-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CpuModeArg {
    /// Hold a server of the emulated capacity and sleep: no real CPU is used.
    Simulated,
    /// Spin a real thread until it has used the work's CPU time.
    Burn,
}
