//! Metric names in SLOs (`latency.p95`, `step.<name>.latency.p99`, `failure_rate`, …)
//! parsed into a `Metric`.

use crate::scenario::model::{LatencyStat, Metric, Step};

const METRIC_HINT: &str = "latency.p95 (or p50, p90, p99, p99.9, max, mean), step.<name>.latency.p95, failure_rate, dropped, achieved_rate, hpa.scale_up_seconds, hpa.decision_seconds or hpa.peak_replicas";

/// Parse a metric name such as `latency.p95` or `step.submit.latency.p99`.
pub fn parse_metric(name: &str, steps: &[Step]) -> Result<Metric, String> {
    // The names come from `Metric::name`, their one source.
    if let Some(m) = Metric::UNPARAMETERISED
        .iter()
        .find(|m| m.name(steps) == name)
    {
        return Ok(m.clone());
    }
    let (step, stat) = if let Some(rest) = name.strip_prefix("step.") {
        let Some((step_name, stat)) = rest.rsplit_once(".latency.") else {
            return Err(format!(
                "`{name}` is not a metric; a step metric looks like step.<name>.latency.p95"
            ));
        };
        let Some(idx) = steps.iter().position(|s| s.name == step_name) else {
            let known: Vec<_> = steps.iter().map(|s| s.name.as_str()).collect();
            return Err(format!(
                "`{name}` names step `{step_name}`, which the workflow does not have (steps: {})",
                known.join(", ")
            ));
        };
        (Some(idx), stat)
    } else if let Some(stat) = name.strip_prefix("latency.") {
        (None, stat)
    } else {
        return Err(format!("`{name}` is not a metric; use {METRIC_HINT}"));
    };
    let stat = parse_latency_stat(stat).ok_or_else(|| format!(
        "`{name}`: `{stat}` is not a latency statistic; use p50, p90, p95, p99, p99.9 (or p999), max or mean"
    ))?;
    Ok(Metric::Latency { step, stat })
}

fn parse_latency_stat(s: &str) -> Option<LatencyStat> {
    match s {
        "max" => return Some(LatencyStat::Max),
        "mean" => return Some(LatencyStat::Mean),
        _ => {}
    }
    let digits = s.strip_prefix('p')?;
    let value: f64 = if digits.contains('.') {
        digits.parse().ok()?
    } else if digits.len() > 2
        && digits.starts_with("99")
        && digits.chars().all(|c| c.is_ascii_digit())
    {
        // p999 is 99.9, p9999 is 99.99.
        format!("{}.{}", &digits[..2], &digits[2..]).parse().ok()?
    } else {
        digits.parse().ok()?
    };
    (value > 0.0 && value < 100.0).then_some(LatencyStat::Percentile(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_parse_in_both_spellings() {
        assert_eq!(
            parse_latency_stat("p95"),
            Some(LatencyStat::Percentile(95.0))
        );
        assert_eq!(
            parse_latency_stat("p999"),
            Some(LatencyStat::Percentile(99.9))
        );
        assert_eq!(
            parse_latency_stat("p99.9"),
            Some(LatencyStat::Percentile(99.9))
        );
        assert_eq!(parse_latency_stat("p100"), None);
        assert_eq!(parse_latency_stat("p0"), None);
        assert_eq!(parse_latency_stat("q95"), None);
    }

    #[test]
    fn unknown_metrics_name_the_choices() {
        let e = parse_metric("latency.p95x", &[]).unwrap_err();
        assert!(e.contains("p99.9"), "{e}");
        let e = parse_metric("error_rate", &[]).unwrap_err();
        assert!(e.contains("failure_rate"), "{e}");
    }
}
