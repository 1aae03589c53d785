//! `slo-check run` (and `slo-check --scenario NAME`): the flags checked into a
//! `RunConfig`, one run, its ending as the exit code (0 pass, 1 an SLO failed or a
//! regression, 2 bad input — a --metrics-listen that cannot be bound or a --remote-write
//! that refuses the first push too —, 3 infrastructure — the history, or a remote write
//! whose final push failed, too —, 130 interrupted).

use std::sync::Arc;

use crate::cli::{LiveArgs, PlatformKind, RunArgs};
use crate::exit;
use crate::history;
use crate::phase::remote::Distributed;
use crate::phase::remote::process::ProcessLauncher;
use crate::report::baseline::Baseline;
use crate::run::{self, RunConfig};

/// Run the command.
pub fn run(args: &RunArgs) -> u8 {
    match configure(args) {
        Ok(cfg) => exit::block_on(async { super::conclude(run::run(cfg).await) }),
        Err(e) => super::usage(&e),
    }
}

/// Resolve the scenario and flags into a `RunConfig`; errors are usage errors.
fn configure(args: &RunArgs) -> Result<RunConfig, String> {
    let mut plan = super::load_plan(&args.scenario)?;
    if let Some(bytes) = args.max_response_bytes {
        plan.scenario.load.max_response_bytes = bytes;
    }
    let grace = crate::units::parse_duration(&args.grace).map_err(|e| format!("--grace: {e}"))?;
    let mut platform = super::platform_choice(&args.target)?;
    let prometheus = crate::prom::PromSettings::resolve(
        args.prometheus.as_deref(),
        args.prometheus_sd_file.clone(),
        &plan,
        args.quiet,
    )?;
    let history_baseline = args
        .baseline
        .baseline
        .as_deref()
        .is_some_and(|b| b == std::path::Path::new("history"));
    let history = history_settings(args, history_baseline)?;
    let live = live_settings(&args.live, &plan.scenario.name)?;
    let generators = generators(args, &plan)?;
    if let crate::platform::Choice::Kube(request) = &mut platform {
        request.generators = generator_job(args, &plan)?.map(Box::new);
    }
    Ok(RunConfig {
        generators,
        live,
        history,
        prometheus,
        plan,
        platform,
        out: args.out.clone(),
        quiet: args.quiet,
        json: args.json,
        grace,
        baseline: Baseline::from_args(
            args.baseline
                .baseline
                .as_deref()
                .filter(|_| !history_baseline),
            &args.baseline.max_regression,
        )?,
    })
}

/// `--generators N`: processes of this executable, each given the scenario file, seed and
/// time scale this run resolved (so every generator builds the same schedule).
fn generators(args: &RunArgs, plan: &crate::plan::Plan) -> Result<Option<Distributed>, String> {
    let pods = &args.generator_pods;
    let pod_flags = [
        ("--generator-image", pods.generator_image.is_some()),
        (
            "--generator-node-selector",
            !pods.generator_node_selector.is_empty(),
        ),
        (
            "--generator-toleration",
            !pods.generator_toleration.is_empty(),
        ),
        ("--generator-spread", pods.generator_spread),
        ("--generator-cpu", pods.generator_cpu != "500m"),
    ];
    let kube = args.target.platform == PlatformKind::Kube;
    if let Some((flag, _)) = pod_flags
        .iter()
        .find(|(_, given)| *given && !(kube && args.generators.is_some()))
    {
        return Err(format!(
            "{flag} goes with --generators N and --platform kube (it places the generator pods)"
        ));
    }
    let Some(count) = args.generators else {
        return Ok(None);
    };
    if kube {
        // Placed by the kube platform (it knows the cluster): see `generator_job`.
        return Ok(None);
    }
    let source = std::fs::canonicalize(&plan.scenario.source).map_err(|e| {
        format!(
            "--generators: the scenario file {}: {e}",
            plan.scenario.source.display()
        )
    })?;
    let exe = std::env::current_exe()
        .map_err(|e| format!("--generators: cannot find this executable to start them: {e}"))?;
    let mut argv = vec![
        "generate".to_string(),
        "--scenario".into(),
        source.display().to_string(),
    ];
    argv.extend(same_plan(args, plan));
    Ok(Some(Distributed {
        count,
        launcher: Arc::new(ProcessLauncher { exe, args: argv }),
    }))
}

/// What every generator needs, after `--scenario FILE`, to build this run's schedule.
fn same_plan(args: &RunArgs, plan: &crate::plan::Plan) -> Vec<String> {
    let mut out = vec![
        "--time-scale".to_string(),
        plan.time_scale.to_string(),
        "--seed".into(),
        plan.schedule.seed.to_string(),
    ];
    if let Some(bytes) = args.max_response_bytes {
        out.extend(["--max-response-bytes".into(), bytes.to_string()]);
    }
    out
}

/// `--generators N --platform kube`: the Job's pods, given the scenario's text (mounted
/// from a ConfigMap) and its `${env:…}` values (from a Secret).
fn generator_job(
    args: &RunArgs,
    plan: &crate::plan::Plan,
) -> Result<Option<crate::platform::kube::generators::GeneratorJob>, String> {
    let (Some(count), PlatformKind::Kube) = (args.generators, args.target.platform) else {
        return Ok(None);
    };
    let pods = &args.generator_pods;
    let text = std::fs::read_to_string(&plan.scenario.source).map_err(|e| {
        format!(
            "--generators: cannot read the scenario file {}: {e}",
            plan.scenario.source.display()
        )
    })?;
    let node_selector = pods
        .generator_node_selector
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| {
                    format!("--generator-node-selector {kv}: expected KEY=VALUE, e.g. pool=load")
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(crate::platform::kube::generators::GeneratorJob {
        count,
        image: pods.generator_image.clone(),
        args: same_plan(args, plan),
        scenario_file: "scenario.yaml".into(),
        scenario_text: text,
        env: plan
            .scenario
            .env_names
            .iter()
            .cloned()
            .zip(plan.env_values.iter().cloned())
            .collect(),
        node_selector,
        tolerations: pods.generator_toleration.clone(),
        spread: pods.generator_spread,
        cpu: pods.generator_cpu.clone(),
    }))
}

/// `--history`, `--label`, `--baseline history`, `--fail-on-regression`.
fn history_settings(args: &RunArgs, detect: bool) -> Result<history::Settings, String> {
    let location = history::resolve(args.history.history.as_deref(), args.out.is_none())?;
    if detect && location.is_none() {
        return Err(
            "--baseline history needs a history to read: give --history URL (with --out there is no default; `off` records none)".into(),
        );
    }
    if args.fail_on_regression && !detect {
        return Err(
            "--fail-on-regression applies to --baseline history (a --baseline OLD.json regression always exits 1)".into(),
        );
    }
    let max_regression =
        crate::report::baseline::parse_max_regression(&args.baseline.max_regression)?;
    Ok(history::Settings {
        location,
        labels: history::parse_labels(&args.history.labels)?,
        detect: detect.then_some(max_regression),
        fail_on_regression: args.fail_on_regression,
    })
}

/// `--testid`, `--metrics-listen`, `--remote-write`, `--remote-write-interval`.
fn live_settings(args: &LiveArgs, scenario: &str) -> Result<crate::live::Settings, String> {
    let testid = match &args.testid {
        Some(id) if id.trim().is_empty() || id.chars().any(char::is_control) => {
            return Err(format!(
                "--testid {id:?}: must be non-empty printable text, e.g. nightly-1234"
            ));
        }
        Some(id) => id.clone(),
        None => {
            let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
            format!("{scenario}-{}", now.to_string().replace(':', ""))
        }
    };
    let listen = match &args.metrics_listen {
        Some(addr) => Some(addr.parse().map_err(|_| {
            format!(
                "--metrics-listen {addr}: expected IP:PORT, e.g. 127.0.0.1:9464 or [::1]:9464 (port 0: any free port)"
            )
        })?),
        None => None,
    };
    let every = crate::units::parse_duration(&args.remote_write_interval)
        .map_err(|e| format!("--remote-write-interval: {e}"))?;
    if every < std::time::Duration::from_millis(100) {
        return Err(format!(
            "--remote-write-interval {}: must be at least 100ms, e.g. 1s",
            args.remote_write_interval
        ));
    }
    let remote_write = match &args.remote_write {
        Some(text) => {
            let example = "e.g. http://127.0.0.1:9090/api/v1/write";
            let url = url::Url::parse(text)
                .map_err(|e| format!("--remote-write {text}: not a URL ({e}); {example}"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(format!(
                    "--remote-write {}: expected an http:// or https:// URL with a host, {example}",
                    crate::live::remote_write::redact(&url)
                ));
            }
            Some(crate::live::RemoteWriteSettings { url, every })
        }
        None if args.remote_write_interval != "1s" => {
            return Err("--remote-write-interval goes with --remote-write URL".into());
        }
        None => None,
    };
    Ok(crate::live::Settings {
        testid,
        listen,
        remote_write,
    })
}
