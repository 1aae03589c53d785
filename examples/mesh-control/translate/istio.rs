//! Reading Istio's objects as istiod does: their names, Go durations, host names (short
//! names, wildcards, intersections) and label selectors.

use std::collections::BTreeMap;

use serde_json::Value;

/// The cluster's DNS suffix, as in istiod's default mesh config.
pub(super) const DOMAIN_SUFFIX: &str = "svc.cluster.local";

/// The API versions of networking.istio.io this reads (all have the same schema).
const VERSIONS: [&str; 3] = [
    "networking.istio.io/v1",
    "networking.istio.io/v1beta1",
    "networking.istio.io/v1alpha3",
];

/// Name and namespace of an object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Meta {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The metadata of an Istio object (namespace "default" when absent, as the API server
/// would have set it).
pub(super) fn meta(obj: &Value) -> Meta {
    let m = &obj["metadata"];
    Meta {
        namespace: m["namespace"].as_str().unwrap_or("default").to_string(),
        name: m["name"].as_str().unwrap_or("").to_string(),
    }
}

/// Whether `obj` is an Istio object of `kind` in one of the versions this reads.
pub(super) fn is_kind(obj: &Value, kind: &str) -> bool {
    obj["kind"].as_str() == Some(kind)
        && obj["apiVersion"]
            .as_str()
            .is_some_and(|v| VERSIONS.contains(&v))
}

/// The objects of `kind`, in istiod's order: oldest first, then by namespace and name
/// (istiod sorts VirtualServices and DestinationRules by creation time, so the older
/// one wins a conflict).
pub(super) fn sorted<'a>(objs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    let mut out: Vec<&Value> = objs.iter().filter(|o| is_kind(o, kind)).collect();
    out.sort_by_key(|o| {
        (
            o["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            meta(o),
        )
    });
    out
}

/// Collects the warnings of one translation: every field that matters and is not
/// translated is named here, never silently dropped.
#[derive(Default)]
pub(super) struct Warnings(pub Vec<String>);

impl Warnings {
    pub fn push(&mut self, w: impl Into<String>) {
        let w = w.into();
        if !self.0.contains(&w) {
            self.0.push(w);
        }
    }

    /// Warns about every key of `obj` not in `known` (fields this translation does not
    /// implement), naming `what` (object and field path).
    pub fn unknown_keys(&mut self, obj: &Value, known: &[&str], what: &str) {
        if let Some(map) = obj.as_object() {
            for k in map.keys() {
                if !known.contains(&k.as_str()) {
                    self.push(format!("{what}.{k}: not supported, ignored"));
                }
            }
        }
    }
}

/// Parses a Go duration (`time.ParseDuration`, which Istio's CRDs use): "30s", "250ms",
/// "1.5s", "1h2m", "0". Returns nanoseconds.
pub(super) fn parse_go_duration(s: &str) -> Result<u128, String> {
    let err = || format!("invalid duration {s:?}");
    let body = s.strip_prefix('+').unwrap_or(s);
    if body.starts_with('-') {
        return Err(format!("negative duration {s:?}"));
    }
    if body == "0" {
        return Ok(0);
    }
    if body.is_empty() {
        return Err(err());
    }
    let mut total: f64 = 0.0;
    let mut rest = body;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        if num_len == 0 {
            return Err(err());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(err()),
        };
        rest = &rest[unit_len..];
        total += value * unit;
    }
    Ok(total.round() as u128)
}

/// A protobuf JSON Duration ("30s", "0.250s") for `nanos`.
pub(super) fn proto_duration(nanos: u128) -> String {
    let secs = nanos / 1_000_000_000;
    let frac = nanos % 1_000_000_000;
    if frac == 0 {
        format!("{secs}s")
    } else {
        let digits = format!("{frac:09}");
        format!("{secs}.{}s", digits.trim_end_matches('0'))
    }
}

/// The protobuf Duration of the Go duration at `v` (a string), or a warning naming
/// `what` when it does not parse.
pub(super) fn duration(v: &Value, what: &str, warnings: &mut Warnings) -> Option<String> {
    let s = v.as_str()?;
    match parse_go_duration(s) {
        Ok(n) => Some(proto_duration(n)),
        Err(e) => {
            warnings.push(format!("{what}: {e}, ignored"));
            None
        }
    }
}

/// The FQDN of a host named in an object of `namespace`: "svc" becomes
/// "svc.<namespace>.svc.cluster.local" (istiod's ResolveShortnameToFQDN), and "svc.ns"
/// becomes "svc.ns.svc.cluster.local" (which istiod would not do: it keeps "svc.ns" as
/// is, a host no Service has; `warnings` says so). FQDNs, wildcards and IPs are kept.
pub(super) fn fqdn(host: &str, namespace: &str, what: &str, warnings: &mut Warnings) -> String {
    let host = host.to_ascii_lowercase();
    if host == "*" || host.starts_with("*.") || host.parse::<std::net::IpAddr>().is_ok() {
        return host;
    }
    match host.matches('.').count() {
        0 => format!("{host}.{namespace}.{DOMAIN_SUFFIX}"),
        1 => {
            warnings.push(format!(
                "{what}: host {host:?} expanded to {host}.{DOMAIN_SUFFIX}; istiod would keep \
                 it as is (a host with no Service): write the FQDN"
            ));
            format!("{host}.{DOMAIN_SUFFIX}")
        }
        _ => host,
    }
}

/// Whether host `a` is a subset of host `b` (istiod's host.Name.SubsetOf): every name
/// `a` matches, `b` matches too. Wildcards are "*" and "*.suffix".
pub(super) fn subset_of(a: &str, b: &str) -> bool {
    if b == "*" {
        return true;
    }
    if let Some(suffix) = b.strip_prefix('*') {
        // suffix is ".example.com"
        return match a.strip_prefix('*') {
            Some(a_suffix) => a_suffix.ends_with(suffix),
            None => a.ends_with(suffix) && a.len() > suffix.len(),
        };
    }
    a == b
}

/// The intersection of two host lists (istiod's host.Names.Intersection): for each
/// pair where one is a subset of the other, the more specific one, without duplicates.
pub(super) fn intersection(a: &[String], b: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for x in a {
        for y in b {
            let pick = if subset_of(x, y) {
                x
            } else if subset_of(y, x) {
                y
            } else {
                continue;
            };
            if !out.contains(pick) {
                out.push(pick.clone());
            }
        }
    }
    out
}

/// The string map at `v` (labels, selectors); non-string values are skipped.
pub(super) fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether every label of `selector` is in `labels` (an empty selector matches all, as
/// istiod's labels.Instance.SubsetOf).
pub(super) fn selects(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_as_time_parse_duration() {
        let ns = |s| parse_go_duration(s).unwrap();
        assert_eq!(ns("30s"), 30_000_000_000);
        assert_eq!(ns("250ms"), 250_000_000);
        assert_eq!(ns("1m"), 60_000_000_000);
        assert_eq!(ns("1.5s"), 1_500_000_000);
        assert_eq!(ns("1h2m"), 3_720_000_000_000);
        assert_eq!(ns("0"), 0);
        assert_eq!(ns("10us"), 10_000);
        assert_eq!(ns("2m3.5s"), 123_500_000_000);
        for bad in ["", "s", "10", "1x", "-1s", "1.2.3s", "ms5"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} must not parse");
        }
    }

    #[test]
    fn proto_durations_are_seconds_with_a_fraction() {
        assert_eq!(proto_duration(30_000_000_000), "30s");
        assert_eq!(proto_duration(250_000_000), "0.25s");
        assert_eq!(proto_duration(1_500_000_000), "1.5s");
        assert_eq!(proto_duration(0), "0s");
        assert_eq!(proto_duration(1), "0.000000001s");
    }

    #[test]
    fn hosts_expand_and_intersect_as_istiod() {
        let mut w = Warnings::default();
        assert_eq!(fqdn("svc", "ns", "x", &mut w), "svc.ns.svc.cluster.local");
        assert!(w.0.is_empty());
        assert_eq!(
            fqdn("svc.other", "ns", "x", &mut w),
            "svc.other.svc.cluster.local"
        );
        assert_eq!(w.0.len(), 1, "svc.ns differs from istiod: {:?}", w.0);
        assert_eq!(
            fqdn("a.b.example.com", "ns", "x", &mut w),
            "a.b.example.com"
        );
        assert_eq!(fqdn("*", "ns", "x", &mut w), "*");
        assert_eq!(fqdn("*.example.com", "ns", "x", &mut w), "*.example.com");

        assert!(subset_of("a.example.com", "*.example.com"));
        assert!(subset_of("*.a.example.com", "*.example.com"));
        assert!(!subset_of("example.com", "*.example.com"));
        assert!(subset_of("anything", "*"));
        assert!(!subset_of("*", "a.example.com"));
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(intersection(&s(&["*"]), &s(&["*"])), s(&["*"]));
        assert_eq!(
            intersection(&s(&["a.com", "b.com"]), &s(&["*"])),
            s(&["a.com", "b.com"])
        );
        assert_eq!(intersection(&s(&["*"]), &s(&["a.com"])), s(&["a.com"]));
        assert_eq!(
            intersection(&s(&["*.example.com"]), &s(&["x.example.com", "other.org"])),
            s(&["x.example.com"])
        );
        assert!(intersection(&s(&["a.com"]), &s(&["b.com"])).is_empty());
    }
}
