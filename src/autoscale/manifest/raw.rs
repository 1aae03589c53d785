//! Serde mirror of the autoscaling/v2 HorizontalPodAutoscaler fields the
//! embedded autoscaler reads. Unknown keys are rejected inside these parts;
//! other metric sources are parsed only so their use gets a clear message.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_saphyr::Spanned;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawHpa {
    pub(super) api_version: Spanned<String>,
    pub(super) kind: Spanned<String>,
    pub(super) metadata: RawMetadata,
    pub(super) spec: RawSpec,
    #[serde(default)]
    #[allow(dead_code)]
    pub(super) status: Option<IgnoredAny>,
}

/// Only `name` and `namespace` are read; labels etc. are allowed.
#[derive(Deserialize)]
pub(super) struct RawMetadata {
    pub(super) name: String,
    #[serde(default)]
    pub(super) namespace: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawSpec {
    pub(super) scale_target_ref: RawTargetRef,
    #[serde(default)]
    pub(super) min_replicas: Option<Spanned<i64>>,
    pub(super) max_replicas: Spanned<i64>,
    #[serde(default)]
    pub(super) metrics: Vec<RawMetric>,
    #[serde(default)]
    pub(super) behavior: Option<RawBehavior>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawTargetRef {
    #[serde(default)]
    #[allow(dead_code)]
    pub(super) api_version: Option<String>,
    pub(super) kind: String,
    pub(super) name: String,
}

/// The other metric sources are accepted by the parser only so that using
/// them gets the "only CPU" message instead of an "unknown field" one.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub(super) struct RawMetric {
    #[serde(rename = "type")]
    pub(super) kind: Spanned<String>,
    #[serde(default)]
    pub(super) resource: Option<RawResource>,
    #[serde(default)]
    pub(super) container_resource: Option<IgnoredAny>,
    #[serde(default)]
    pub(super) pods: Option<IgnoredAny>,
    #[serde(default)]
    pub(super) object: Option<IgnoredAny>,
    #[serde(default)]
    pub(super) external: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawResource {
    pub(super) name: Spanned<String>,
    pub(super) target: RawTarget,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub(super) struct RawTarget {
    #[serde(rename = "type")]
    pub(super) kind: Spanned<String>,
    #[serde(default)]
    pub(super) average_utilization: Option<Spanned<i64>>,
    #[serde(default)]
    pub(super) average_value: Option<IgnoredAny>,
    #[serde(default)]
    pub(super) value: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawBehavior {
    #[serde(default)]
    pub(super) scale_up: Option<RawRules>,
    #[serde(default)]
    pub(super) scale_down: Option<RawRules>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawRules {
    #[serde(default)]
    pub(super) stabilization_window_seconds: Option<Spanned<i64>>,
    #[serde(default)]
    pub(super) select_policy: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) policies: Option<Vec<RawPolicy>>,
    /// Alpha in Kubernetes 1.33 (`HPAConfigurableTolerance`); rejected.
    #[serde(default)]
    pub(super) tolerance: Option<Spanned<IgnoredAny>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawPolicy {
    #[serde(rename = "type")]
    pub(super) kind: Spanned<String>,
    pub(super) value: Spanned<i64>,
    pub(super) period_seconds: Spanned<i64>,
}
