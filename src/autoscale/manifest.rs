//! Reads the `autoscaling/v2` HorizontalPodAutoscaler manifest in `stack/`
//! into a validated [`HpaSpec`] for the embedded autoscaler.
//!
//! The same file is applied to real clusters, so the raw types below mirror
//! the parts of the autoscaling/v2 API this module reads. Inside those parts,
//! unknown keys are errors (a misspelled `periodSecond` must not silently fall
//! back to a default); `metadata` and `status` are not read, so anything goes
//! there. Absent fields take the API server's defaults
//! (`pkg/apis/autoscaling/v2/defaults.go`), and values are checked against
//! the API's validation ranges plus what the emulator supports (one CPU
//! `averageUtilization` target).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

mod raw;
use raw::{RawBehavior, RawHpa, RawMetric, RawPolicy, RawRules};

/// Longest `periodSeconds` the autoscaling/v2 API accepts for a policy.
pub const MAX_POLICY_PERIOD: Duration = Duration::from_secs(1800);
/// Longest `stabilizationWindowSeconds` the autoscaling/v2 API accepts.
pub const MAX_STABILISATION_WINDOW: Duration = Duration::from_secs(3600);
/// CPU target the API server fills in when `spec.metrics` is empty.
pub const DEFAULT_CPU_UTILISATION_PERCENT: u32 = 80;

/// A validated HPA: everything the embedded autoscaler needs, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct HpaSpec {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`, if the manifest sets one.
    pub namespace: Option<String>,
    /// `spec.scaleTargetRef.kind`, e.g. `Deployment`.
    pub target_kind: String,
    /// `spec.scaleTargetRef.name`.
    pub target_name: String,
    /// `spec.minReplicas` (API default 1); at least 1.
    pub min_replicas: u32,
    /// `spec.maxReplicas`; at least `min_replicas`.
    pub max_replicas: u32,
    /// CPU `averageUtilization` target in percent of the CPU request.
    pub target_cpu_utilisation_percent: u32,
    /// `spec.behavior.scaleUp`, defaults applied.
    pub scale_up: ScalingRules,
    /// `spec.behavior.scaleDown`, defaults applied.
    pub scale_down: ScalingRules,
}

/// One direction's `HPAScalingRules`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingRules {
    /// `stabilizationWindowSeconds`.
    pub stabilisation_window: Duration,
    /// `selectPolicy`.
    pub select_policy: SelectPolicy,
    /// `policies`; never empty.
    pub policies: Vec<ScalingPolicy>,
}

/// One `HPAScalingPolicy`: at most `value` (pods or percent) per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScalingPolicy {
    /// `type`: what `value` counts.
    pub kind: PolicyKind,
    /// `value`: pods, or percent of the replicas at the start of the period.
    pub value: u32,
    /// `periodSeconds`: the look-back over which changes are counted.
    pub period: Duration,
}

/// `HPAScalingPolicy.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// `Pods`: an absolute number of replicas.
    Pods,
    /// `Percent`: a percentage of the replicas at the start of the period.
    Percent,
}

/// `HPAScalingRules.selectPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectPolicy {
    /// The policy allowing the largest change.
    Max,
    /// The policy allowing the smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

impl ScalingRules {
    /// The API server's default `scaleUp`: no stabilisation; the larger of
    /// +100 % and +4 pods per 15 s.
    pub fn default_scale_up() -> Self {
        Self {
            stabilisation_window: Duration::ZERO,
            select_policy: SelectPolicy::Max,
            policies: vec![
                ScalingPolicy::percent(100, Duration::from_secs(15)),
                ScalingPolicy::pods(4, Duration::from_secs(15)),
            ],
        }
    }

    /// The default `scaleDown`: a 300 s window (the controller's
    /// `--horizontal-pod-autoscaler-downscale-stabilization`); −100 % per 15 s.
    pub fn default_scale_down() -> Self {
        Self {
            stabilisation_window: Duration::from_secs(300),
            select_policy: SelectPolicy::Max,
            policies: vec![ScalingPolicy::percent(100, Duration::from_secs(15))],
        }
    }
}

impl ScalingPolicy {
    /// A `Pods` policy.
    pub fn pods(value: u32, period: Duration) -> Self {
        Self {
            kind: PolicyKind::Pods,
            value,
            period,
        }
    }

    /// A `Percent` policy.
    pub fn percent(value: u32, period: Duration) -> Self {
        Self {
            kind: PolicyKind::Percent,
            value,
            period,
        }
    }
}

/// A 1-based line and column in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineCol {
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
}

impl LineCol {
    fn from_location(location: Location) -> Option<Self> {
        (location.line() > 0).then(|| Self {
            line: location.line(),
            column: location.column(),
        })
    }
}

/// Why an HPA manifest could not be used. Each message names the file, the
/// line:col when known, the field, and what would be right.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read HPA manifest {}: {source}", path.display())]
    Read {
        /// The manifest path.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or has a wrong type or unknown key.
    #[error("{}{}: not a usable autoscaling/v2 HorizontalPodAutoscaler: {message}", path.display(), at(location))]
    Parse {
        /// The manifest path.
        path: PathBuf,
        /// Where the parser stopped, if known.
        location: Option<LineCol>,
        /// The parser's explanation.
        message: String,
    },
    /// A field parsed but its value is out of range or unsupported.
    #[error("{}{}: {field}: {message}", path.display(), at(location))]
    Invalid {
        /// The manifest path.
        path: PathBuf,
        /// Where the offending value is, if known.
        location: Option<LineCol>,
        /// The field path, e.g. `spec.behavior.scaleUp.policies[1].periodSeconds`.
        field: String,
        /// What is wrong and what would be right.
        message: String,
    },
}

fn at(location: &Option<LineCol>) -> String {
    location.map_or_else(String::new, |l| format!(":{}:{}", l.line, l.column))
}

/// Reads and validates the HPA manifest at `path`.
pub fn load_hpa(path: &Path) -> Result<HpaSpec, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_hpa(&text, path)
}

/// Parses and validates manifest text; `path` is only used in messages.
pub fn parse_hpa(text: &str, path: &Path) -> Result<HpaSpec, ManifestError> {
    let raw: RawHpa = serde_saphyr::from_str(text).map_err(|e| {
        let location = e.location().and_then(LineCol::from_location);
        let mut message = e.without_snippet().to_string();
        // The position leads the message already; drop the parser's copy.
        if let Some(l) = location {
            let suffix = format!(" at line {}, column {}", l.line, l.column);
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message.truncate(stripped.len());
            }
        }
        ManifestError::Parse {
            path: path.to_owned(),
            location,
            message,
        }
    })?;
    Checker { path }.spec(raw)
}

// ---- validation -------------------------------------------------------------

struct Checker<'a> {
    path: &'a Path,
}

impl Checker<'_> {
    fn invalid(&self, field: &str, location: Location, message: String) -> ManifestError {
        ManifestError::Invalid {
            path: self.path.to_owned(),
            location: LineCol::from_location(location),
            field: field.to_owned(),
            message,
        }
    }

    fn spec(&self, raw: RawHpa) -> Result<HpaSpec, ManifestError> {
        self.expect_str(&raw.api_version, "apiVersion", "autoscaling/v2")?;
        self.expect_str(&raw.kind, "kind", "HorizontalPodAutoscaler")?;
        let spec = raw.spec;
        let (min_replicas, max_replicas) = self.replicas(spec.min_replicas, &spec.max_replicas)?;
        let target_cpu_utilisation_percent = self.metrics(&spec.metrics)?;
        let behavior = spec.behavior.unwrap_or(RawBehavior {
            scale_up: None,
            scale_down: None,
        });
        let scale_up = self.rules(
            behavior.scale_up,
            ScalingRules::default_scale_up(),
            "scaleUp",
        )?;
        let scale_down = self.rules(
            behavior.scale_down,
            ScalingRules::default_scale_down(),
            "scaleDown",
        )?;
        Ok(HpaSpec {
            name: raw.metadata.name,
            namespace: raw.metadata.namespace,
            target_kind: spec.scale_target_ref.kind,
            target_name: spec.scale_target_ref.name,
            min_replicas,
            max_replicas,
            target_cpu_utilisation_percent,
            scale_up,
            scale_down,
        })
    }

    fn expect_str(
        &self,
        got: &Spanned<String>,
        field: &str,
        want: &str,
    ) -> Result<(), ManifestError> {
        if got.value == want {
            return Ok(());
        }
        let message = format!(
            "found `{}`; the embedded autoscaler reads only `{want}`",
            got.value
        );
        Err(self.invalid(field, got.referenced, message))
    }

    fn replicas(
        &self,
        min: Option<Spanned<i64>>,
        max: &Spanned<i64>,
    ) -> Result<(u32, u32), ManifestError> {
        let min_value = match min {
            None => 1,
            Some(min) if (1..=i64::from(i32::MAX)).contains(&min.value) => min.value,
            Some(min) => {
                let message = format!(
                    "{} is not allowed; use at least 1 (the embedded autoscaler does not scale to zero)",
                    min.value
                );
                return Err(self.invalid("spec.minReplicas", min.referenced, message));
            }
        };
        if max.value < min_value || max.value > i64::from(i32::MAX) {
            let message = format!(
                "{} is not allowed; use at least minReplicas ({min_value})",
                max.value
            );
            return Err(self.invalid("spec.maxReplicas", max.referenced, message));
        }
        Ok((min_value as u32, max.value as u32))
    }

    /// The single CPU `averageUtilization` target, in percent.
    fn metrics(&self, metrics: &[RawMetric]) -> Result<u32, ManifestError> {
        const ONLY: &str = "the embedded autoscaler supports only a CPU averageUtilization target \
                            (type: Resource, resource.name: cpu, target.type: Utilization)";
        let Some(first) = metrics.first() else {
            return Ok(DEFAULT_CPU_UTILISATION_PERCENT);
        };
        if let Some(extra) = metrics.get(1) {
            let message = format!(
                "{} metrics given; {ONLY}, so keep exactly one",
                metrics.len()
            );
            return Err(self.invalid("spec.metrics[1]", extra.kind.referenced, message));
        }
        let field = "spec.metrics[0]";
        let resource = match (&first.resource, first.kind.value.as_str()) {
            (Some(resource), "Resource") => resource,
            _ => {
                let message = format!("type `{}` is not supported; {ONLY}", first.kind.value);
                return Err(self.invalid(&format!("{field}.type"), first.kind.referenced, message));
            }
        };
        if resource.name.value != "cpu" {
            let message = format!(
                "resource `{}` is not supported; {ONLY}",
                resource.name.value
            );
            let location = resource.name.referenced;
            return Err(self.invalid(&format!("{field}.resource.name"), location, message));
        }
        let target = &resource.target;
        let utilisation = match (&target.average_utilization, target.kind.value.as_str()) {
            (Some(u), "Utilization") => u,
            _ => {
                let message = format!(
                    "target type `{}` is not supported; {ONLY} with averageUtilization set",
                    target.kind.value
                );
                let location = target.kind.referenced;
                return Err(self.invalid(
                    &format!("{field}.resource.target.type"),
                    location,
                    message,
                ));
            }
        };
        if !(1..=i64::from(i32::MAX)).contains(&utilisation.value) {
            let message = format!(
                "{} is not allowed; use a percentage above 0, e.g. 70",
                utilisation.value
            );
            let f = format!("{field}.resource.target.averageUtilization");
            return Err(self.invalid(&f, utilisation.referenced, message));
        }
        Ok(utilisation.value as u32)
    }

    fn rules(
        &self,
        raw: Option<RawRules>,
        defaults: ScalingRules,
        direction: &str,
    ) -> Result<ScalingRules, ManifestError> {
        let Some(raw) = raw else { return Ok(defaults) };
        let field = format!("spec.behavior.{direction}");
        if let Some(tolerance) = &raw.tolerance {
            let message = "is not supported; the embedded autoscaler uses the controller's \
                           default tolerance of 0.1, so remove it"
                .to_owned();
            return Err(self.invalid(&format!("{field}.tolerance"), tolerance.referenced, message));
        }
        let stabilisation_window = match raw.stabilization_window_seconds {
            None => defaults.stabilisation_window,
            Some(w) => {
                let f = format!("{field}.stabilizationWindowSeconds");
                self.seconds(&f, &w, 0, MAX_STABILISATION_WINDOW)?
            }
        };
        let select_policy = match raw.select_policy {
            None => defaults.select_policy,
            Some(s) => self.select_policy(&format!("{field}.selectPolicy"), &s)?,
        };
        let policies = match raw.policies {
            None => defaults.policies,
            Some(policies) => self.policies(&field, &policies)?,
        };
        Ok(ScalingRules {
            stabilisation_window,
            select_policy,
            policies,
        })
    }

    fn select_policy(
        &self,
        field: &str,
        s: &Spanned<String>,
    ) -> Result<SelectPolicy, ManifestError> {
        match s.value.as_str() {
            "Max" => Ok(SelectPolicy::Max),
            "Min" => Ok(SelectPolicy::Min),
            "Disabled" => Ok(SelectPolicy::Disabled),
            other => {
                let message = format!("`{other}` is not a selectPolicy; use Max, Min or Disabled");
                Err(self.invalid(field, s.referenced, message))
            }
        }
    }

    fn policies(
        &self,
        field: &str,
        raw: &[RawPolicy],
    ) -> Result<Vec<ScalingPolicy>, ManifestError> {
        if raw.is_empty() {
            let message = "must list at least one policy (or omit `policies` for the defaults)";
            return Err(self.invalid(
                &format!("{field}.policies"),
                Location::UNKNOWN,
                message.into(),
            ));
        }
        let mut policies = Vec::with_capacity(raw.len());
        for (i, p) in raw.iter().enumerate() {
            let field = format!("{field}.policies[{i}]");
            let kind = match p.kind.value.as_str() {
                "Pods" => PolicyKind::Pods,
                "Percent" => PolicyKind::Percent,
                other => {
                    let message = format!("`{other}` is not a policy type; use Pods or Percent");
                    return Err(self.invalid(&format!("{field}.type"), p.kind.referenced, message));
                }
            };
            if !(1..=i64::from(i32::MAX)).contains(&p.value.value) {
                let message = format!("{} is not allowed; use a value above 0", p.value.value);
                return Err(self.invalid(&format!("{field}.value"), p.value.referenced, message));
            }
            let period_field = format!("{field}.periodSeconds");
            let period = self.seconds(&period_field, &p.period_seconds, 1, MAX_POLICY_PERIOD)?;
            policies.push(ScalingPolicy {
                kind,
                value: p.value.value as u32,
                period,
            });
        }
        Ok(policies)
    }

    fn seconds(
        &self,
        field: &str,
        raw: &Spanned<i64>,
        min_s: u64,
        max: Duration,
    ) -> Result<Duration, ManifestError> {
        let max_s = max.as_secs();
        match u64::try_from(raw.value) {
            Ok(s) if (min_s..=max_s).contains(&s) => Ok(Duration::from_secs(s)),
            _ => {
                let message = format!(
                    "{} is out of range; use {min_s}..={max_s} seconds",
                    raw.value
                );
                Err(self.invalid(field, raw.referenced, message))
            }
        }
    }
}

impl fmt::Display for SelectPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Max => "Max",
            Self::Min => "Min",
            Self::Disabled => "Disabled",
        })
    }
}
