//! `platform.local` → `LocalPlatform`: the embedded platform's settings, range-checked,
//! defaults filled in. The HPA manifest itself is read when the platform comes up.

use std::path::PathBuf;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::Ctx;
use crate::distributions::LogNormalLatency;
use crate::scenario::model::{LocalPlatform, MAX_LOCAL_REPLICAS};
use crate::scenario::raw::RawLocalPlatform;
use crate::units::parse_ratio;

const PATH: &str = "platform.local";

/// Checks every field; problems are added to `cx`, and defaults stand in for bad values.
pub(super) fn validate_local(cx: &mut Ctx, raw: &Spanned<RawLocalPlatform>) -> LocalPlatform {
    let loc = Some(raw.referenced);
    let raw = &raw.value;
    let d = LocalPlatform::default();
    let mut err = |field: &str, message: String| cx.err(loc, format!("{PATH}.{field}"), message);
    if let Some(n) = raw.replicas {
        if n == 0 || n > MAX_LOCAL_REPLICAS {
            err(
                "replicas",
                format!("{n} replicas: the embedded platform runs 1 to {MAX_LOCAL_REPLICAS}"),
            );
        }
    }
    if raw.hpa.as_deref().is_some_and(|h| h.trim().is_empty()) {
        err(
            "hpa",
            "empty path; give the HPA manifest, e.g. stack/base/hpa.yaml".into(),
        );
    }
    let cores = raw.cores.unwrap_or(d.cores);
    if !(cores.is_finite() && cores > 0.0 && cores <= 1024.0) {
        err(
            "cores",
            format!("`{cores}` must be a positive number of cores, e.g. 0.5 or 2"),
        );
    }
    let dur = |v: Option<crate::units::Dur>, default: Duration| v.map_or(default, |v| v.0);
    let llm_median = dur(raw.llm_median, d.llm_median);
    let llm_p99 = dur(raw.llm_p99, d.llm_p99);
    if let Err(m) = LogNormalLatency::new(llm_median, llm_p99) {
        err("llm_p99", format!("{m}; raise llm_p99 or lower llm_median"));
    }
    let tool_median = dur(raw.tool_median, d.tool_median);
    let tool_p99 = dur(raw.tool_p99, d.tool_p99);
    if let Err(m) = LogNormalLatency::new(tool_median, tool_p99) {
        err(
            "tool_p99",
            format!("{m}; raise tool_p99 or lower tool_median"),
        );
    }
    let max_concurrent = raw.max_concurrent_workflows.unwrap_or(100);
    if !(1..=1_000_000).contains(&max_concurrent) {
        err(
            "max_concurrent_workflows",
            format!("{max_concurrent} must be between 1 and 1000000"),
        );
    }
    let fail_ratio = match &raw.fail_ratio {
        None => d.fail_ratio,
        Some(q) => parse_ratio(q).unwrap_or_else(|m| {
            err("fail_ratio", m);
            d.fail_ratio
        }),
    };
    LocalPlatform {
        replicas: raw.replicas,
        autoscale: raw.autoscale.unwrap_or(d.autoscale),
        hpa: raw.hpa.as_ref().map_or(d.hpa, PathBuf::from),
        startup_delay: dur(raw.startup_delay, d.startup_delay),
        cores: if cores.is_finite() && cores > 0.0 {
            cores
        } else {
            d.cores
        },
        cpu_per_workflow: dur(raw.cpu_per_workflow, d.cpu_per_workflow),
        llm_calls: raw.llm_calls.unwrap_or(d.llm_calls),
        llm_median,
        llm_p99,
        tool_calls: raw.tool_calls.unwrap_or(d.tool_calls),
        tool_median,
        tool_p99,
        max_concurrent_workflows: usize::try_from(max_concurrent).unwrap_or(1).max(1),
        fail_ratio,
        seed: raw.seed,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::scenario::parse_str;

    const BASE: &str = "name: t\nworkflow:\n  - name: s\n    request: { method: GET, path: /health }\nload:\n  arrival: constant\n  stages: [{ for: 1s, rate: 5 }]\n";

    fn errors_of(local: &str) -> String {
        let text = format!("{BASE}platform:\n  local: {local}\n");
        match parse_str(&text, Path::new("s.yaml")) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_fill_an_absent_or_empty_block() {
        let s = parse_str(BASE, Path::new("s.yaml")).unwrap();
        assert_eq!(s.platform.local, super::LocalPlatform::default());
        let text = format!("{BASE}platform:\n  local: {{}}\n");
        let s = parse_str(&text, Path::new("s.yaml")).unwrap();
        assert_eq!(s.platform.local, super::LocalPlatform::default());
    }

    #[test]
    fn values_are_read() {
        let text = format!(
            "{BASE}platform:\n  local: {{ replicas: 3, autoscale: false, cores: 0.5, startup_delay: 1s, fail_ratio: 2%, llm_median: 10ms, llm_p99: 20ms, seed: 9, hpa: x.yaml }}\n"
        );
        let l = parse_str(&text, Path::new("s.yaml"))
            .unwrap()
            .platform
            .local;
        assert_eq!(l.replicas, Some(3));
        assert!(!l.autoscale);
        assert_eq!(l.cores, 0.5);
        assert_eq!(l.startup_delay, super::Duration::from_secs(1));
        assert_eq!(l.fail_ratio, 0.02);
        assert_eq!(l.llm_p99, super::Duration::from_millis(20));
        assert_eq!(l.seed, Some(9));
        assert_eq!(l.hpa, super::PathBuf::from("x.yaml"));
    }

    #[test]
    fn the_block_is_documented_in_the_json_schema() {
        let schema = crate::scenario::json_schema().to_string();
        assert!(schema.contains("RawLocalPlatform"), "{schema}");
        assert!(
            schema.contains("How long a new replica takes to become ready"),
            "{schema}"
        );
    }

    #[test]
    fn invalid_values_name_the_field_path() {
        let e = errors_of("{ cores: 0 }");
        assert!(
            e.contains("platform.local.cores: `0` must be a positive"),
            "{e}"
        );
        let e = errors_of("{ replicas: 0 }");
        assert!(e.contains("platform.local.replicas"), "{e}");
        let e = errors_of("{ llm_median: 2s, llm_p99: 1s }");
        assert!(
            e.contains("platform.local.llm_p99") && e.contains("median"),
            "{e}"
        );
        let e = errors_of("{ tool_p99: 1ms }");
        assert!(e.contains("platform.local.tool_p99"), "{e}");
        let e = errors_of("{ fail_ratio: 150% }");
        assert!(e.contains("platform.local.fail_ratio"), "{e}");
        let e = errors_of("{ max_concurrent_workflows: 0 }");
        assert!(e.contains("platform.local.max_concurrent_workflows"), "{e}");
        let e = errors_of("{ hpa: '' }");
        assert!(e.contains("platform.local.hpa"), "{e}");
        let e = errors_of("{ corse: 1 }");
        assert!(e.contains("corse"), "{e}");
    }
}
