//! Units a scenario is written in: durations (`250ms`, `10s`, `2m`, `1h`),
//! ratios (`1%` or `0.01`) and Istio percentages (`1` or `1%`), each with
//! serde and JSON Schema support so a bad value is reported at its location.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

const DURATION_HINT: &str = "a duration with a unit, like 250ms, 10s, 1.5m, 2h or 1m30s";

/// Parse `250ms`, `10s`, `1.5m`, `2h`, `1m30s` (units ms, s, m, h).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err(format!("empty duration; expected {DURATION_HINT}"));
    }
    let mut total = 0.0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("`{s}` is not {DURATION_HINT}"));
        }
        let value: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("`{s}` is not {DURATION_HINT}"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => {
                return Err(format!("`{s}` has no unit; expected {DURATION_HINT}"));
            }
            other => {
                return Err(format!(
                    "`{other}` is not a duration unit in `{s}`; use ms, s, m or h"
                ));
            }
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    if !total.is_finite() || total > 1e9 {
        return Err(format!("`{s}` is too long a duration"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Format a duration the way a person reads it: `250ms`, `1.5s`, `2m30s`.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs == 0.0 {
        "0s".to_string()
    } else if secs < 1.0 {
        trim_float(secs * 1000.0) + "ms"
    } else if secs < 60.0 || secs.fract() != 0.0 {
        trim_float(secs) + "s"
    } else {
        let whole = secs as u64;
        let (h, m, s) = (whole / 3600, whole % 3600 / 60, whole % 60);
        let mut out = String::new();
        if h > 0 {
            out += &format!("{h}h");
        }
        if m > 0 {
            out += &format!("{m}m");
        }
        if s > 0 {
            out += &format!("{s}s");
        }
        out
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A duration written with a unit in a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(DURATION_HINT)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                parse_duration(v).map(Dur).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "`{v}` has no unit; expected {DURATION_HINT} (e.g. `{v}s`)"
                )))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                Err(E::custom(format!("`{v}` is not {DURATION_HINT}")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "`{v}` has no unit; expected {DURATION_HINT}"
                )))
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

impl JsonSchema for Dur {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$",
            "description": "A duration with a unit: ms, s, m or h (e.g. 250ms, 10s, 1m30s)."
        })
    }
}

/// A number or a unit-bearing string, kept raw until the field that owns it
/// knows which unit applies (an SLO threshold's unit depends on its metric).
#[derive(Debug, Clone, PartialEq)]
pub enum Quantity {
    Number(f64),
    Text(String),
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or a value with a unit (300ms, 1%)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
                Ok(Quantity::Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity::Number(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
                Ok(Quantity::Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Quantity, E> {
                Ok(Quantity::Number(v))
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl JsonSchema for Quantity {
    fn schema_name() -> Cow<'static, str> {
        "Quantity".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": ["number", "string"],
            "description": "A threshold: a duration (300ms) for latency metrics, a ratio (1% or 0.01) for failure_rate, a plain number otherwise."
        })
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quantity::Number(n) => write!(f, "{n}"),
            Quantity::Text(t) => write!(f, "{t}"),
        }
    }
}

/// Parse a ratio: `1%`, `0.5%` or a fraction `0.01`; must lie in 0..=1.
pub fn parse_ratio(q: &Quantity) -> Result<f64, String> {
    let value = match q {
        Quantity::Number(n) => *n,
        Quantity::Text(t) => {
            let t = t.trim();
            match t.strip_suffix('%') {
                Some(p) => p
                    .trim()
                    .parse::<f64>()
                    .map(|v| v / 100.0)
                    .map_err(|_| format!("`{t}` is not a percentage; write e.g. 1% or 0.01"))?,
                None => t
                    .parse::<f64>()
                    .map_err(|_| format!("`{t}` is not a ratio; write e.g. 1% or 0.01"))?,
            }
        }
    };
    if !value.is_finite() || !(0.0..=1.0).contains(&value) {
        return Err(format!(
            "`{q}` is outside 0%..100%; write a percentage like 2% or a fraction like 0.02"
        ));
    }
    Ok(value)
}

/// Istio's fault percentage: `1` or `1%` both mean one percent (0..=100).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Percent(pub f64);

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let q = Quantity::deserialize(deserializer)?;
        let value = match &q {
            Quantity::Number(n) => Ok(*n),
            Quantity::Text(t) => t
                .trim()
                .trim_end_matches('%')
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("`{t}` is not a percentage; write e.g. 1 or 1% (Istio's percentage, 0 to 100)")),
        }
        .map_err(de::Error::custom)?;
        if !value.is_finite() || !(0.0..=100.0).contains(&value) {
            return Err(de::Error::custom(format!(
                "percentage `{q}` is outside 0..100 (Istio's percentage: 1 means one percent)"
            )));
        }
        Ok(Percent(value))
    }
}

impl JsonSchema for Percent {
    fn schema_name() -> Cow<'static, str> {
        "Percent".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": ["number", "string"],
            "description": "Istio's percentage of requests, 0 to 100: `1` or `1%` both mean one percent."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_every_unit_and_compounds() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn durations_without_units_or_with_wrong_units_are_refused() {
        assert!(parse_duration("10").unwrap_err().contains("no unit"));
        assert!(parse_duration("10 sec").is_err());
        assert!(parse_duration("10d").unwrap_err().contains("`d`"));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn durations_format_for_people() {
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_secs(150)), "2m30s");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
    }

    #[test]
    fn ratios_accept_percent_and_fraction_and_refuse_over_100() {
        assert_eq!(parse_ratio(&Quantity::Text("1%".into())), Ok(0.01));
        assert_eq!(parse_ratio(&Quantity::Number(0.02)), Ok(0.02));
        assert!(parse_ratio(&Quantity::Text("101%".into())).is_err());
        assert!(
            parse_ratio(&Quantity::Number(2.0))
                .unwrap_err()
                .contains("2%")
        );
        assert!(parse_ratio(&Quantity::Number(f64::NAN)).is_err());
    }
}
