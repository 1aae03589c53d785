//! Prometheus: PromQL SLOs, alert-verification SLOs and the client/server cross-check,
//! queried at the end of a run; and what a Prometheus scrapes: the file-based
//! service-discovery file of a run, or the stack's ServiceMonitors as scrape jobs.
//!
//! Flow (called from `run`): `prepare` writes the `file_sd` file and waits, bounded,
//! until Prometheus scrapes those targets; after the load, `evaluate` waits `settle`
//! (one more scrape and rule evaluation), then queries. A Prometheus that is absent,
//! down or rejects a query makes the SLO `unknown` with the reason — never a pass.
//!
//! Files: `source` (the query seam and the real client), `clock` (plan time → wall
//! time, `${window}`), `promql` (PromQL SLOs), `alerts` (`ALERTS` timing), `cross_check`,
//! `sd` (file_sd), `report` (summary.md section); `scrape_config` (ServiceMonitors as
//! a plain `scrape_configs:`, for `slo-check stack scrape-config`).

pub mod alerts;
pub mod clock;
pub mod cross_check;
pub mod promql;
pub mod report;
pub mod scrape_config;
pub mod sd;
pub mod source;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;

use crate::plan::Plan;
use crate::scenario::SloSource;
use crate::stats::RunStats;
use crate::target::Target;

pub use crate::target::BoxFuture;
pub use alerts::AlertTiming;
pub use clock::RunClock;
pub use cross_check::CrossCheckItem;
pub use source::{MetricsSource, Prometheus};

/// How long `unanswered` waits for Prometheus's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Default `prometheus.settle`: covers a 5–10 s scrape interval plus a rule evaluation.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(15);

/// Prometheus settings of one run, resolved from flags and the scenario.
#[derive(Debug, Clone, Default)]
pub struct PromSettings {
    /// Base URL (`--prometheus` wins over `prometheus.url`); None: nothing is queried.
    pub url: Option<String>,
    /// Wait after the load before querying (`prometheus.settle`).
    pub settle: Duration,
    /// Where to write the file_sd file (`--prometheus-sd-file`).
    pub sd_file: Option<PathBuf>,
    /// No progress lines on stderr.
    pub quiet: bool,
}

impl PromSettings {
    /// Resolves `--prometheus URL`, `--prometheus-sd-file PATH` and the scenario's block.
    /// Errors name the flag.
    pub fn resolve(
        flag_url: Option<&str>,
        sd_file: Option<PathBuf>,
        plan: &Plan,
        quiet: bool,
    ) -> Result<PromSettings, String> {
        if let Some(u) = flag_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(format!(
                    "--prometheus `{u}`: give Prometheus's base URL, e.g. http://127.0.0.1:9090"
                ));
            }
        }
        let url = flag_url
            .map(str::to_string)
            .or_else(|| plan.scenario.prometheus_url.clone())
            .map(|u| u.trim_end_matches('/').to_string());
        Ok(PromSettings {
            url,
            settle: plan.scenario.prometheus_settle.unwrap_or(DEFAULT_SETTLE),
            sd_file,
            quiet,
        })
    }
}

/// What Prometheus said about one PromQL or alert SLO.
#[derive(Debug, Clone, PartialEq)]
pub struct SloObservation {
    /// The query as sent.
    pub query: Option<String>,
    /// The value, or why there is none (the SLO is then unknown).
    pub value: Result<f64, String>,
    /// Alert SLOs: the timing verdict.
    pub alert: Option<AlertTiming>,
}

/// Observations by SLO index, and why an SLO has none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromObservations {
    pub by_slo: BTreeMap<usize, SloObservation>,
    /// Reason given to a Prometheus SLO with no observation.
    pub missing: String,
}

impl PromObservations {
    /// The observation of SLO `i`, or an unknown with the reason there is none.
    pub fn get(&self, i: usize) -> SloObservation {
        self.by_slo
            .get(&i)
            .cloned()
            .unwrap_or_else(|| SloObservation {
                query: None,
                value: Err(if self.missing.is_empty() {
                    "Prometheus was not queried".into()
                } else {
                    self.missing.clone()
                }),
                alert: None,
            })
    }
}

/// Everything Prometheus contributed to a run.
#[derive(Debug, Clone, Default)]
pub struct PromOutcome {
    pub observations: PromObservations,
    pub cross_check: Vec<CrossCheckItem>,
}

/// Asks the Prometheus the run will query (if any) for `vector(1)` before the load, on
/// every platform alike: why it did not answer, or nothing. Not fatal: its SLOs then come
/// out `unknown` (which fails the run unless they allow it) if it still does not answer
/// at the end, and the warning says so before any load is spent.
pub async fn unanswered(settings: &PromSettings) -> Option<String> {
    let url = settings.url.as_deref()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let answer = match Prometheus::new(url) {
        Ok(prom) => {
            match tokio::time::timeout(ANSWER_TIMEOUT, prom.instant("vector(1)", now)).await {
                Ok(answer) => answer.map(|_| ()),
                Err(_) => Err(format!("no answer within {}s", ANSWER_TIMEOUT.as_secs())),
            }
        }
        Err(e) => Err(e),
    };
    answer.err().map(|e| {
        format!(
            "Prometheus at {url} does not answer ({e}); unless it answers by the end of the run, its SLOs and the cross-check come out unknown. On a cluster, port-forward its Prometheus (e.g. `kubectl -n monitoring port-forward svc/prometheus-operated 9090`) and pass --prometheus http://127.0.0.1:9090"
        )
    })
}

/// Writes the file_sd file (when asked) and keeps it current while the returned guard
/// lives; with a Prometheus URL, waits (at most `settle`) until Prometheus has scraped
/// every target once, so the run's first requests are counted from a known baseline.
pub async fn prepare(settings: &PromSettings, target: &Target) -> Option<sd::SdWriter> {
    let path = settings.sd_file.as_ref()?;
    let writer = match sd::SdWriter::start(path.clone(), target) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("warning: {e}");
            return None;
        }
    };
    if let Some(url) = &settings.url {
        if let Ok(prom) = Prometheus::new(url) {
            let addrs = writer.current();
            if let Err(e) = sd::wait_scraped(&prom, &addrs, settings.settle).await {
                eprintln!("warning: {e}");
            }
        }
    }
    Some(writer)
}

/// Queries Prometheus after the load: PromQL SLOs at their window's end, alert SLOs
/// over the run, and the cross-check. `zero` is the run's zero (plan time 0).
pub async fn evaluate(
    settings: &PromSettings,
    plan: &Plan,
    stats: &RunStats,
    zero: Instant,
) -> PromOutcome {
    let needs = plan.needs_prometheus();
    let Some(url) = &settings.url else {
        return PromOutcome {
            observations: PromObservations {
                by_slo: BTreeMap::new(),
                missing: "no Prometheus to query: give --prometheus URL or `prometheus: { url: ... }` in the scenario".into(),
            },
            cross_check: Vec::new(),
        };
    };
    let prom = match Prometheus::new(url) {
        Ok(p) => p,
        Err(e) => return unavailable(e),
    };
    if !settings.quiet {
        eprintln!(
            "waiting {} for Prometheus to scrape once more (prometheus.settle), then querying {url}",
            crate::units::format_duration(settings.settle)
        );
    }
    tokio::time::sleep(settings.settle).await;
    let clock = RunClock::new(zero, plan.time_scale);
    if let Err(e) = prom.instant("vector(1)", clock.now_unix_s()).await {
        if !needs {
            eprintln!("warning: cross-check skipped: {e}");
        }
        return unavailable(e);
    }
    evaluate_with(&prom, settings, plan, stats, &clock).await
}

/// The queries, against any metrics source (tests use a fake).
pub async fn evaluate_with(
    source: &dyn MetricsSource,
    settings: &PromSettings,
    plan: &Plan,
    stats: &RunStats,
    clock: &RunClock,
) -> PromOutcome {
    let mut by_slo = BTreeMap::new();
    for (i, (slo, w)) in plan.scenario.slos.iter().zip(&plan.slo_windows).enumerate() {
        let window = &plan.windows[*w];
        let obs = match &slo.source {
            SloSource::PromQl(q) => promql::evaluate(source, q, window, clock).await,
            SloSource::Alert(a) => {
                alerts::evaluate(source, a, window, clock, settings.settle, plan.time_scale).await
            }
            SloSource::Metric(_) => continue,
        };
        by_slo.insert(i, obs);
    }
    let cross_check = cross_check::run(source, plan, stats, clock).await;
    PromOutcome {
        observations: PromObservations {
            by_slo,
            missing: String::new(),
        },
        cross_check,
    }
}

fn unavailable(why: String) -> PromOutcome {
    PromOutcome {
        observations: PromObservations {
            by_slo: BTreeMap::new(),
            missing: why,
        },
        cross_check: Vec::new(),
    }
}
