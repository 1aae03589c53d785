//! Flags of `slo-check agent` (raw, clap) and the validated `AgentConfig` built from them.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use super::cpu::CpuMode;
use super::redis_store::RedisUrl;
use crate::distributions::LogNormalLatency;

/// Raw flags of `slo-check agent`; every one also reads an `AGENT_*` environment variable.
/// Durations use humantime syntax (`800ms`, `1s`, `2m`).
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
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
        default_value_t = CpuMode::Simulated,
        env = "AGENT_CPU_MODE"
    )]
    pub cpu_mode: CpuMode,
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

/// A flag value that cannot be used; the message names the flag and what would be right.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--{flag}: '{value}' is not a duration ({source}); use e.g. 800ms, 1s, 2m")]
    Duration {
        flag: &'static str,
        value: String,
        source: humantime::DurationError,
    },
    #[error("--listen: '{0}' is not an address; use IP:PORT, e.g. 127.0.0.1:8080")]
    ListenAddr(String),
    #[error(
        "--listen: {0} is not a loopback address; use 127.0.0.1:PORT, \
         or pass --allow-non-loopback (e.g. for 0.0.0.0:8080 in a container)"
    )]
    NonLoopback(SocketAddr),
    #[error("--{flag}: {message}")]
    Invalid { flag: &'static str, message: String },
}

/// Validated agent configuration: all the library and server ever see.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Where `run_cli` binds (`start` takes an already bound listener instead).
    pub listen: SocketAddr,
    /// LLM calls per workflow.
    pub llm_calls: u32,
    /// Latency distribution of one LLM call.
    pub llm_latency: LogNormalLatency,
    /// Tool calls per workflow.
    pub tool_calls: u32,
    /// Latency distribution of one tool call.
    pub tool_latency: LogNormalLatency,
    /// CPU work per workflow, in core-time.
    pub cpu_per_workflow: Duration,
    /// CPU capacity in cores (> 0, may be fractional).
    pub cores: f64,
    /// Whether CPU work is simulated or burnt on real threads.
    pub cpu_mode: CpuMode,
    /// Window of the utilisation ratio.
    pub utilisation_window: Duration,
    /// Fraction of workflows that fail, in 0..=1.
    pub fail_ratio: f64,
    /// Active-workflow limit; above it POST answers 503.
    pub max_concurrent_workflows: usize,
    /// Unready for this long after start.
    pub startup_delay: Duration,
    /// Finished workflows are evicted after this long.
    pub finished_retention: Duration,
    /// At most this many finished workflows are kept (in memory).
    pub max_finished_workflows: usize,
    /// Where workflow state lives: Redis at this URL, or memory when `None`.
    pub redis_url: Option<RedisUrl>,
    /// Bound on each Redis call.
    pub redis_timeout: Duration,
    /// Bound on waiting for in-flight requests at shutdown.
    pub shutdown_grace: Duration,
    /// Seed of all random draws.
    pub seed: u64,
}

impl Default for AgentConfig {
    /// The flag defaults (listening on 127.0.0.1:8080), with a random seed. Built by hand,
    /// not through clap, so `AGENT_*` variables of the process do not leak in.
    fn default() -> Self {
        let latency = |median_ms, p99_ms| {
            LogNormalLatency::new(
                Duration::from_millis(median_ms),
                Duration::from_millis(p99_ms),
            )
            .expect("default latencies have p99 >= median")
        };
        AgentConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            llm_calls: 2,
            llm_latency: latency(200, 1000),
            tool_calls: 1,
            tool_latency: latency(50, 200),
            cpu_per_workflow: Duration::from_millis(20),
            cores: 1.0,
            cpu_mode: CpuMode::Simulated,
            utilisation_window: Duration::from_secs(15),
            fail_ratio: 0.0,
            max_concurrent_workflows: 100,
            startup_delay: Duration::ZERO,
            finished_retention: Duration::from_secs(300),
            max_finished_workflows: 10_000,
            redis_url: None,
            redis_timeout: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(5),
            seed: random_u64(),
        }
    }
}

fn duration(flag: &'static str, value: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(value).map_err(|source| ConfigError::Duration {
        flag,
        value: value.to_owned(),
        source,
    })
}

fn invalid(flag: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        flag,
        message: message.into(),
    }
}

fn latency(
    median_flag: &'static str,
    median: &str,
    p99_flag: &'static str,
    p99: &str,
) -> Result<LogNormalLatency, ConfigError> {
    let median_d = duration(median_flag, median)?;
    let p99_d = duration(p99_flag, p99)?;
    LogNormalLatency::new(median_d, p99_d).map_err(|message| invalid(p99_flag, message))
}

/// A random seed without the `os_rng` feature: std's `RandomState` is OS-seeded.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

impl TryFrom<AgentArgs> for AgentConfig {
    type Error = ConfigError;

    fn try_from(args: AgentArgs) -> Result<Self, ConfigError> {
        let listen: SocketAddr = args
            .listen
            .parse()
            .map_err(|_| ConfigError::ListenAddr(args.listen.clone()))?;
        if !listen.ip().is_loopback() && !args.allow_non_loopback {
            return Err(ConfigError::NonLoopback(listen));
        }
        if !(args.cores.is_finite() && args.cores > 0.0) {
            return Err(invalid(
                "cores",
                format!("{} must be a positive number, e.g. 0.5 or 2", args.cores),
            ));
        }
        if !(0.0..=1.0).contains(&args.fail_ratio) {
            return Err(invalid(
                "fail-ratio",
                format!("{} must be between 0 and 1", args.fail_ratio),
            ));
        }
        if args.max_concurrent_workflows == 0 {
            return Err(invalid("max-concurrent-workflows", "must be at least 1"));
        }
        let utilisation_window = duration("utilisation-window", &args.utilisation_window)?;
        if utilisation_window.is_zero() {
            return Err(invalid("utilisation-window", "must be longer than 0s"));
        }
        let redis_url = args
            .redis_url
            .as_deref()
            .map(RedisUrl::parse)
            .transpose()
            .map_err(|message| invalid("redis-url", message))?;
        let redis_timeout = duration("redis-timeout", &args.redis_timeout)?;
        if redis_timeout.is_zero() {
            return Err(invalid("redis-timeout", "must be longer than 0s"));
        }
        Ok(AgentConfig {
            listen,
            llm_calls: args.llm_calls,
            llm_latency: latency("llm-median", &args.llm_median, "llm-p99", &args.llm_p99)?,
            tool_calls: args.tool_calls,
            tool_latency: latency("tool-median", &args.tool_median, "tool-p99", &args.tool_p99)?,
            cpu_per_workflow: duration("cpu-per-workflow", &args.cpu_per_workflow)?,
            cores: args.cores,
            cpu_mode: args.cpu_mode,
            utilisation_window,
            fail_ratio: args.fail_ratio,
            max_concurrent_workflows: args.max_concurrent_workflows,
            startup_delay: duration("startup-delay", &args.startup_delay)?,
            finished_retention: duration("finished-retention", &args.finished_retention)?,
            max_finished_workflows: args.max_finished_workflows,
            redis_url,
            redis_timeout,
            shutdown_grace: duration("shutdown-grace", &args.shutdown_grace)?,
            seed: args.seed.unwrap_or_else(random_u64),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: AgentArgs,
    }

    fn parse(extra: &[&str]) -> Result<AgentConfig, ConfigError> {
        let argv = std::iter::once("agent").chain(extra.iter().copied());
        AgentConfig::try_from(Wrapper::parse_from(argv).args)
    }

    #[test]
    fn flag_defaults_match_the_library_default() {
        let flags = parse(&[]).unwrap();
        let library = AgentConfig::default();
        assert_eq!(flags.listen, library.listen);
        assert_eq!(flags.cpu_per_workflow, library.cpu_per_workflow);
        assert_eq!(
            flags.max_concurrent_workflows,
            library.max_concurrent_workflows
        );
        assert_eq!(flags.llm_latency.p99, library.llm_latency.p99);
        assert_eq!(flags.tool_latency.median, library.tool_latency.median);
        assert_eq!(flags.utilisation_window, library.utilisation_window);
        assert_eq!(flags.finished_retention, library.finished_retention);
        assert_eq!(flags.shutdown_grace, library.shutdown_grace);
        assert_eq!(flags.cpu_mode, library.cpu_mode);
        assert_eq!(flags.redis_timeout, library.redis_timeout);
        assert!(flags.redis_url.is_none() && library.redis_url.is_none());
    }

    #[test]
    fn cpu_mode_and_redis_url_parse() {
        let config = parse(&["--cpu-mode", "burn"]).unwrap();
        assert_eq!(config.cpu_mode, CpuMode::Burn);
        let config = parse(&["--redis-url", "redis://:s3cret@redis:6379/0"]).unwrap();
        let url = config.redis_url.as_ref().unwrap();
        assert_eq!(url.to_string(), "redis://:***@redis:6379/0");
        assert!(!format!("{config:?}").contains("s3cret"));
        let err = parse(&["--redis-url", "http://redis"])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--redis-url"), "{err}");
    }

    #[test]
    fn non_loopback_needs_the_flag() {
        let err = parse(&["--listen", "0.0.0.0:0"]).unwrap_err().to_string();
        assert!(
            err.contains("--listen") && err.contains("--allow-non-loopback"),
            "{err}"
        );
        parse(&["--listen", "0.0.0.0:0", "--allow-non-loopback"]).unwrap();
    }

    #[test]
    fn errors_name_the_flag() {
        let err = parse(&["--llm-median", "fast"]).unwrap_err().to_string();
        assert!(err.starts_with("--llm-median"), "{err}");
        let err = parse(&["--cores", "0"]).unwrap_err().to_string();
        assert!(err.starts_with("--cores"), "{err}");
        let err = parse(&["--tool-median", "1s", "--tool-p99", "10ms"])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--tool-p99"), "{err}");
        let err = parse(&["--fail-ratio", "1.5"]).unwrap_err().to_string();
        assert!(err.starts_with("--fail-ratio"), "{err}");
    }
}
