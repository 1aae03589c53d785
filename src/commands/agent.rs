//! `slo-check agent`: the reference agent service's flags checked into an
//! `AgentConfig` (errors name the flag), then served until SIGINT or SIGTERM.
//! Exit: 0 after a clean shutdown, 2 on a bad flag, 3 if it cannot serve.

use std::net::SocketAddr;
use std::time::Duration;

use crate::agent::{self, AgentConfig, CpuMode, RedisUrl};
use crate::cli::{AgentArgs, CpuModeArg};
use crate::distributions::LogNormalLatency;
use crate::exit;

/// Run the command.
pub fn run(args: AgentArgs) -> u8 {
    let config = match config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    exit::block_on(async {
        match agent::serve(config).await {
            Ok(()) => exit::PASS,
            Err(e) => {
                eprintln!("error: {e}");
                exit::INFRA
            }
        }
    })
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

/// Check `slo-check agent`'s flags into the agent's configuration.
pub fn config(args: AgentArgs) -> Result<AgentConfig, ConfigError> {
    {
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
            cpu_mode: match args.cpu_mode {
                CpuModeArg::Simulated => CpuMode::Simulated,
                CpuModeArg::Burn => CpuMode::Burn,
            },
            utilisation_window,
            fail_ratio: args.fail_ratio,
            max_concurrent_workflows: args.max_concurrent_workflows,
            startup_delay: duration("startup-delay", &args.startup_delay)?,
            finished_retention: duration("finished-retention", &args.finished_retention)?,
            max_finished_workflows: args.max_finished_workflows,
            redis_url,
            redis_timeout,
            shutdown_grace: duration("shutdown-grace", &args.shutdown_grace)?,
            seed: args.seed.unwrap_or_else(agent::random_u64),
            version: match args.version_label.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(v) if hyper::header::HeaderValue::from_str(v).is_ok() => Some(v.to_string()),
                Some(_) => {
                    return Err(invalid(
                        "version-label",
                        "must be printable text, e.g. the pod's `version` label",
                    ));
                }
            },
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
        config(Wrapper::parse_from(argv).args)
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
