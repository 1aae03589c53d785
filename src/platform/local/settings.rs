//! The embedded platform's settings turned into what it runs: the HPA spec from the
//! manifest, the initial replica count, and the agent configuration of every replica
//! (time-scaled where the scenario's clock applies). Errors name the `platform.local`
//! field or the flag, and what would be right.

use std::time::Duration;

use super::LocalOptions;
use crate::agent::{AgentConfig, LogNormalLatency};
use crate::autoscale::manifest::{HpaSpec, load_hpa};
use crate::platform::PlatformError;
use crate::scenario::{Canary, LocalPlatform, MAX_LOCAL_REPLICAS, Subset};

/// Shortest real utilisation window, whatever the time scale.
const MIN_UTILISATION_WINDOW: Duration = Duration::from_millis(10);
/// How long a replica's in-flight requests may finish when it shuts down.
const REPLICA_SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Everything `up` needs, checked.
#[derive(Debug)]
pub(super) struct Checked {
    pub hpa: HpaSpec,
    pub initial_replicas: u32,
    /// Every replica's configuration except seed and start-up delay.
    pub agent_template: AgentConfig,
    /// Start-up delay of scaled-up replicas, in real time.
    pub startup_delay: Duration,
    pub seed: u64,
}

pub(super) fn check(opts: &LocalOptions) -> Result<Checked, PlatformError> {
    let ts = opts.time_scale;
    if !(ts.is_finite() && ts > 0.0) {
        return Err(usage(format!(
            "--time-scale: `{ts}` must be a positive number, e.g. 0.1 to run ten times faster"
        )));
    }
    let s = &opts.settings;
    let path = opts.base_dir.join(&s.hpa);
    let hpa = load_hpa(&path).map_err(|e| usage(format!("platform.local.hpa: {e}")))?;
    let initial = s.replicas.unwrap_or(hpa.min_replicas);
    check_replicas(s, &hpa, initial)?;
    Ok(Checked {
        agent_template: agent_template(s, ts)?,
        startup_delay: s.startup_delay.mul_f64(ts),
        seed: s.seed.unwrap_or_else(random_seed),
        initial_replicas: initial,
        hpa,
    })
}

fn check_replicas(s: &LocalPlatform, hpa: &HpaSpec, initial: u32) -> Result<(), PlatformError> {
    if initial == 0 || initial > MAX_LOCAL_REPLICAS {
        return Err(usage(format!(
            "platform.local.replicas: {initial}; the embedded platform runs 1 to {MAX_LOCAL_REPLICAS} replicas"
        )));
    }
    if !s.autoscale {
        return Ok(());
    }
    let (min, max) = (hpa.min_replicas, hpa.max_replicas);
    if !(min..=max).contains(&initial) {
        return Err(usage(format!(
            "platform.local.replicas: {initial} is outside the HPA's {min}..={max} ({}); \
             set replicas within it, or `autoscale: false` for a fixed count",
            s.hpa.display()
        )));
    }
    if max > MAX_LOCAL_REPLICAS {
        return Err(usage(format!(
            "platform.local.hpa: maxReplicas {max} in {} is more than the embedded platform runs \
             ({MAX_LOCAL_REPLICAS}); lower it, or use --platform kube",
            s.hpa.display()
        )));
    }
    Ok(())
}

/// The replicas' configuration. Checked again here because `LocalPlatform` can be built
/// by hand, not only by scenario validation.
fn agent_template(s: &LocalPlatform, time_scale: f64) -> Result<AgentConfig, PlatformError> {
    if !(s.cores.is_finite() && s.cores > 0.0) {
        return Err(usage(format!(
            "platform.local.cores: `{}` must be a positive number of cores, e.g. 0.5 or 2",
            s.cores
        )));
    }
    if !(0.0..=1.0).contains(&s.fail_ratio) {
        return Err(usage(format!(
            "platform.local.fail_ratio: `{}` must lie between 0 and 1 (0% to 100%)",
            s.fail_ratio
        )));
    }
    if s.max_concurrent_workflows == 0 {
        return Err(usage(
            "platform.local.max_concurrent_workflows: must be at least 1".into(),
        ));
    }
    let llm = LogNormalLatency::new(s.llm_median, s.llm_p99)
        .map_err(|m| usage(format!("platform.local.llm_p99: {m}")))?;
    let tool = LogNormalLatency::new(s.tool_median, s.tool_p99)
        .map_err(|m| usage(format!("platform.local.tool_p99: {m}")))?;
    let default = AgentConfig::default();
    Ok(AgentConfig {
        llm_calls: s.llm_calls,
        llm_latency: llm,
        tool_calls: s.tool_calls,
        tool_latency: tool,
        cpu_per_workflow: s.cpu_per_workflow,
        cores: s.cores,
        utilisation_window: default
            .utilisation_window
            .mul_f64(time_scale)
            .max(MIN_UTILISATION_WINDOW),
        fail_ratio: s.fail_ratio,
        max_concurrent_workflows: s.max_concurrent_workflows,
        startup_delay: Duration::ZERO,
        shutdown_grace: REPLICA_SHUTDOWN_GRACE,
        ..default
    })
}

/// One subset of a canary run, checked: its replicas' configuration and how many start.
#[derive(Debug)]
pub(super) struct SubsetChecked {
    pub template: AgentConfig,
    pub initial_replicas: u32,
    pub autoscale: bool,
}

/// The stable and canary subsets of a canary run: `base` (the `platform.local`
/// template, `initial` replicas) with each subset's differences and its version label.
pub(super) fn subsets(
    canary: &Canary,
    s: &LocalPlatform,
    hpa: &HpaSpec,
    base: &AgentConfig,
    initial: u32,
) -> Result<[SubsetChecked; 2], PlatformError> {
    let one = |subset: Subset| -> Result<SubsetChecked, PlatformError> {
        let d = &canary.local[subset.index()];
        let field = |f: &str| format!("canary.{}.local.{f}", subset.as_str());
        let scale = |l: &LogNormalLatency| {
            LogNormalLatency::new(
                l.median.mul_f64(d.latency_factor),
                l.p99.mul_f64(d.latency_factor),
            )
            .map_err(|m| usage(format!("{}: {m}", field("latency_factor"))))
        };
        let fail_ratio = d.fail_ratio.unwrap_or(base.fail_ratio);
        if !(0.0..=1.0).contains(&fail_ratio) {
            return Err(usage(format!(
                "{}: `{fail_ratio}` must lie between 0 and 1 (0% to 100%)",
                field("failure_rate")
            )));
        }
        let autoscale = s.autoscale && d.autoscale;
        let initial = d.replicas.unwrap_or(initial);
        let bounds = if autoscale {
            hpa.min_replicas..=hpa.max_replicas.min(MAX_LOCAL_REPLICAS)
        } else {
            1..=MAX_LOCAL_REPLICAS
        };
        if !bounds.contains(&initial) {
            return Err(usage(format!(
                "{}: {initial} is outside {}..={}{}",
                field("replicas"),
                bounds.start(),
                bounds.end(),
                if autoscale { " (the HPA's range)" } else { "" }
            )));
        }
        Ok(SubsetChecked {
            template: AgentConfig {
                llm_latency: scale(&base.llm_latency)?,
                tool_latency: scale(&base.tool_latency)?,
                fail_ratio,
                version: Some(canary.versions[subset.index()].clone()),
                ..base.clone()
            },
            initial_replicas: initial,
            autoscale,
        })
    };
    Ok([one(Subset::Stable)?, one(Subset::Canary)?])
}

/// One line for reports, e.g. "embedded platform (emulated): 2–10 replicas of
/// `slo-check agent` behind a least-connections balancer; HPA from stack/base/hpa.yaml".
pub(super) fn describe(s: &LocalPlatform, hpa: &HpaSpec, initial: u32) -> String {
    let replicas = if s.autoscale {
        format!(
            "{}–{} replicas (HPA from {}, target {} % CPU)",
            hpa.min_replicas,
            hpa.max_replicas,
            s.hpa.display(),
            hpa.target_cpu_utilisation_percent
        )
    } else {
        format!("{initial} replicas (fixed)")
    };
    format!(
        "embedded platform (emulated): {replicas} of `slo-check agent` behind a least-connections balancer"
    )
}

fn usage(message: String) -> PlatformError {
    PlatformError::Usage(message)
}

/// A random seed without the `os_rng` feature: std's `RandomState` is OS-seeded.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}
