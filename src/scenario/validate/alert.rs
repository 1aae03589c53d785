//! Alert-verification SLOs (`alert`, `fires_within`, `resolves_within`): checked apart
//! from metric and PromQL SLOs because they have no `max`/`min`; the deadlines are the
//! thresholds.

use serde_saphyr::Location;

use super::Ctx;
use crate::scenario::model::{AlertCheck, Bound, Slo, SloSource, WindowRef};
use crate::scenario::raw::RawSlo;

/// Whether the SLO is an alert check (any of its keys given).
pub(super) fn is_alert(s: &RawSlo) -> bool {
    s.alert.is_some() || s.fires_within.is_some() || s.resolves_within.is_some()
}

/// Validates an alert SLO; every problem is reported with the SLO's location.
pub(super) fn validate_alert(
    cx: &mut Ctx,
    loc: Option<Location>,
    path: &str,
    s: &RawSlo,
    window: WindowRef,
) -> Option<Slo> {
    let before = cx.errors.len();
    let others: Vec<&str> = [
        ("metric", s.metric.is_some()),
        ("promql", s.promql.is_some()),
        ("max", s.max.is_some()),
        ("min", s.min.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, given)| given.then_some(k))
    .collect();
    if !others.is_empty() {
        cx.err(
            loc,
            path,
            format!(
                "an alert SLO takes `alert`, `fires_within` and `resolves_within`, not `{}`: its deadlines are its thresholds (write a separate SLO for a metric)",
                others.join("`, `")
            ),
        );
    }
    let alert = match &s.alert {
        Some(a) if is_alert_name(a) => Some(a.clone()),
        Some(a) => {
            cx.err(
                loc,
                format!("{path}.alert"),
                format!(
                    "`{a}` is not an alert name; use the `alert:` name of a Prometheus alerting rule, e.g. HighErrorRate"
                ),
            );
            None
        }
        None => {
            cx.err(
                loc,
                format!("{path}.alert"),
                "`fires_within`/`resolves_within` need `alert: NAME` (the alerting rule to check)",
            );
            None
        }
    };
    let fires_within = match s.fires_within {
        Some(d) if !d.0.is_zero() => Some(d.0),
        Some(_) => {
            cx.err(
                loc,
                format!("{path}.fires_within"),
                "must be longer than 0s, e.g. `fires_within: 60s`",
            );
            None
        }
        None => {
            cx.err(
                loc,
                format!("{path}.fires_within"),
                "an alert SLO needs `fires_within`, e.g. `fires_within: 60s` (how soon after the window's start the alert must fire)",
            );
            None
        }
    };
    let resolves_within = s.resolves_within.map(|d| d.0);
    if cx.errors.len() != before {
        return None;
    }
    let fires_within = fires_within?;
    Some(Slo {
        name: s.name.clone(),
        source: SloSource::Alert(AlertCheck {
            alert: alert?,
            fires_within,
            resolves_within,
        }),
        bound: Bound::Max,
        threshold: fires_within.as_secs_f64(),
        window,
        allow_unknown: s.allow_unknown,
        subset: None,
    })
}

/// Prometheus label values may be anything, but rule names are metric-name-like; this
/// also keeps the name safe to quote in a selector.
fn is_alert_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    use super::is_alert_name;

    #[test]
    fn alert_names() {
        assert!(is_alert_name("HighErrorRate"));
        assert!(is_alert_name("high_error:rate"));
        assert!(!is_alert_name("9lives"));
        assert!(!is_alert_name("a\"b"));
        assert!(!is_alert_name(""));
    }
}
