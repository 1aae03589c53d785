//! PromQL SLOs: the query, its window variables expanded, evaluated at the window's end. One
//! finite value is an observation; anything else is a reason for `unknown`.

use crate::stats::WindowSpec;

use super::SloObservation;
use super::clock::{RunClock, expand_window};
use super::source::{MetricsSource, Point};

/// Evaluates one PromQL SLO over `window` (plan time).
pub async fn evaluate(
    source: &dyn MetricsSource,
    query: &str,
    window: &WindowSpec,
    clock: &RunClock,
) -> SloObservation {
    let len = std::time::Duration::from_micros(window.to_us.saturating_sub(window.from_us));
    let sent = expand_window(query, len);
    // Whole seconds, rounded up so the window's last moment is inside the range.
    let at = clock.unix_s(window.to_us).ceil() as i64;
    let value = match source.instant(&sent, at).await {
        Ok(points) => single_value(&points, at),
        Err(e) => Err(e),
    };
    SloObservation {
        query: Some(sent),
        value,
        alert: None,
    }
}

/// The one finite value an SLO needs, or why the result is not one.
pub fn single_value(points: &[Point], at: i64) -> Result<f64, String> {
    match points {
        [] => Err(format!(
            "the query returned no data at {} (no matching series: is Prometheus scraping the target, and are the metric and label names right?)",
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(at.max(0) as u64)
            )
        )),
        [p] if p.value.is_nan() => Err(
            "the query returned NaN (often 0/0: no requests in the window, or a histogram with no observations)"
                .into(),
        ),
        [p] if p.value.is_infinite() => Err(format!(
            "the query returned {}Inf (a division by zero, or histogram_quantile past the last finite bucket)",
            if p.value > 0.0 { "+" } else { "-" }
        )),
        [p] => Ok(p.value),
        many => Err(format!(
            "the query returned {} series; an SLO needs one value: aggregate it, e.g. sum(...) or max(...)",
            many.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn p(v: f64) -> Point {
        Point {
            labels: HashMap::new(),
            value: v,
        }
    }

    #[test]
    fn one_finite_value_or_a_reason() {
        assert_eq!(single_value(&[p(0.25)], 0), Ok(0.25));
        assert!(single_value(&[], 0).unwrap_err().contains("no data"));
        assert!(single_value(&[p(f64::NAN)], 0).unwrap_err().contains("NaN"));
        assert!(
            single_value(&[p(f64::INFINITY)], 0)
                .unwrap_err()
                .contains("+Inf")
        );
        assert!(
            single_value(&[p(1.0), p(2.0)], 0)
                .unwrap_err()
                .contains("2 series")
        );
    }
}
