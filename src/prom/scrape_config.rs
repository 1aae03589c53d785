//! ServiceMonitors → a plain Prometheus `scrape_configs:` (`slo-check stack scrape-config`):
//! one job per ServiceMonitor endpoint, selecting through `kubernetes_sd_configs` exactly
//! what the ServiceMonitor selects, with the relabelling prometheus-operator generates
//! (its `keep` rules for the Service's labels and the endpoint's port, and its
//! `namespace`, `service`, `pod`, `container`, `job` and `endpoint` target labels), for a
//! Prometheus that runs without the operator. Pure: rendered objects in, YAML out; a
//! field it cannot translate is an error naming the ServiceMonitor and the field.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// How Prometheus discovers the Services' endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `discovery.k8s.io/v1` EndpointSlices (the Endpoints API is deprecated since 1.33).
    EndpointSlice,
    /// `v1` Endpoints.
    Endpoints,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::EndpointSlice => "endpointslice",
            Role::Endpoints => "endpoints",
        }
    }

    /// The prefix of the role's per-endpoint meta labels.
    fn meta(self) -> &'static str {
        match self {
            Role::EndpointSlice => "__meta_kubernetes_endpointslice",
            Role::Endpoints => "__meta_kubernetes_endpoint",
        }
    }
}

/// What the translation needs besides the ServiceMonitors.
#[derive(Debug, Clone)]
pub struct Options {
    pub role: Role,
    /// Written as every job's `kubeconfig_file`.
    pub kubeconfig_file: String,
    /// Replaces every endpoint's `interval` (a scrape timeout above it is lowered to it).
    pub scrape_interval: Option<Duration>,
}

/// A field of a ServiceMonitor that cannot be translated, or is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ServiceMonitor {monitor}: {field}: {why}")]
pub struct Untranslatable {
    /// `namespace/name`.
    pub monitor: String,
    /// The field's path, e.g. `spec.endpoints[0].relabelings`.
    pub field: String,
    pub why: String,
}

/// The `scrape_configs:` document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScrapeConfigs {
    pub scrape_configs: Vec<ScrapeConfig>,
}

/// One Prometheus scrape job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScrapeConfig {
    /// `serviceMonitor/<namespace>/<name>/<endpoint index>`, as the operator names it.
    pub job_name: String,
    pub honor_labels: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    pub kubernetes_sd_configs: Vec<KubernetesSd>,
    pub relabel_configs: Vec<Relabel>,
}

/// One `kubernetes_sd_configs` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KubernetesSd {
    pub role: &'static str,
    pub kubeconfig_file: String,
    /// Absent: every namespace (`namespaceSelector.any`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Namespaces>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Namespaces {
    pub names: Vec<String>,
}

/// One `relabel_configs` entry (Prometheus's defaults where a field is absent).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Relabel {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub source_labels: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub separator: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
}

/// The spec and endpoint fields translated; any other is an error.
const SPEC_FIELDS: &[&str] = &[
    "selector",
    "namespaceSelector",
    "endpoints",
    "jobLabel",
    "targetLabels",
    "podTargetLabels",
];
const ENDPOINT_FIELDS: &[&str] = &[
    "port",
    "targetPort",
    "path",
    "interval",
    "scrapeTimeout",
    "scheme",
    "honorLabels",
];

/// The scrape jobs for every ServiceMonitor among `objects` (other kinds are skipped), in
/// their order; `default_namespace` for a ServiceMonitor without one.
pub fn translate(
    objects: &[Value],
    default_namespace: &str,
    options: &Options,
) -> Result<ScrapeConfigs, Untranslatable> {
    let mut scrape_configs = Vec::new();
    for o in objects.iter().filter(|o| o["kind"] == "ServiceMonitor") {
        scrape_configs.extend(monitor(o, default_namespace, options)?);
    }
    Ok(ScrapeConfigs { scrape_configs })
}

/// The document as YAML.
pub fn to_yaml(configs: &ScrapeConfigs) -> String {
    serde_saphyr::to_string(configs).expect("plain strings, lists and maps serialize")
}

/// One ServiceMonitor's jobs, one per endpoint.
fn monitor(
    o: &Value,
    default_namespace: &str,
    options: &Options,
) -> Result<Vec<ScrapeConfig>, Untranslatable> {
    let namespace = o["metadata"]["namespace"]
        .as_str()
        .unwrap_or(default_namespace);
    let name = o["metadata"]["name"].as_str().unwrap_or_default();
    let id = format!("{namespace}/{name}");
    jobs(&o["spec"], namespace, &id, options).map_err(|(field, why)| Untranslatable {
        monitor: id.clone(),
        field,
        why,
    })
}

/// The jobs of the ServiceMonitor `id` in `namespace`, from its `spec`.
fn jobs(
    spec: &Value,
    namespace: &str,
    id: &str,
    options: &Options,
) -> Result<Vec<ScrapeConfig>, FieldError> {
    unsupported(spec, "spec", SPEC_FIELDS)?;
    let namespaces = namespace_selector(&spec["namespaceSelector"], namespace)?;
    let selector = selector(&spec["selector"])?;
    let job_label = optional_str(spec, "jobLabel")?;
    let service_labels = label_list(spec, "targetLabels")?;
    let pod_labels = label_list(spec, "podTargetLabels")?;
    let endpoints = spec["endpoints"]
        .as_array()
        .filter(|e| !e.is_empty())
        .ok_or_else(|| {
            (
                "spec.endpoints".to_string(),
                "a ServiceMonitor needs at least one endpoint".to_string(),
            )
        })?;
    let mut jobs = Vec::new();
    for (i, endpoint) in endpoints.iter().enumerate() {
        let at = format!("spec.endpoints[{i}]");
        let e = endpoint_settings(endpoint, &at, options)?;
        let mut relabel_configs = selector.clone();
        relabel_configs.extend(e.port_keep(options.role));
        relabel_configs.extend(target_labels(options.role, &service_labels, &pod_labels));
        relabel_configs.extend(job(job_label));
        relabel_configs.push(Relabel {
            target_label: Some("endpoint".into()),
            replacement: Some(e.port_label.clone()),
            ..Relabel::default()
        });
        jobs.push(ScrapeConfig {
            job_name: format!("serviceMonitor/{id}/{i}"),
            honor_labels: e.honor_labels,
            scrape_interval: e.interval,
            scrape_timeout: e.timeout,
            metrics_path: e.path,
            scheme: e.scheme,
            kubernetes_sd_configs: vec![KubernetesSd {
                role: options.role.name(),
                kubeconfig_file: options.kubeconfig_file.clone(),
                namespaces: namespaces.clone(),
            }],
            relabel_configs,
        });
    }
    Ok(jobs)
}

/// A field path and what is wrong with it.
type FieldError = (String, String);

fn unsupported(object: &Value, at: &str, known: &[&str]) -> Result<(), FieldError> {
    let Some(map) = object.as_object() else {
        return Err((at.into(), "must be a mapping".into()));
    };
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err((
            format!("{at}.{k}"),
            format!(
                "not translated by slo-check stack scrape-config (it translates {}); remove it or write that scrape job by hand",
                known.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

fn optional_str<'a>(object: &'a Value, key: &str) -> Result<Option<&'a str>, FieldError> {
    match &object[key] {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err((format!("spec.{key}"), "must be a string".into())),
    }
}

fn label_list(spec: &Value, key: &str) -> Result<Vec<String>, FieldError> {
    match &spec[key] {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                (
                    format!("spec.{key}"),
                    "must be a list of label names".into(),
                )
            }),
        _ => Err((
            format!("spec.{key}"),
            "must be a list of label names".into(),
        )),
    }
}

/// `namespaceSelector`: `any: true` (every namespace), `matchNames`, or absent (the
/// ServiceMonitor's own namespace).
fn namespace_selector(sel: &Value, own: &str) -> Result<Option<Namespaces>, FieldError> {
    let at = "spec.namespaceSelector";
    if sel.is_null() {
        return Ok(Some(Namespaces {
            names: vec![own.to_string()],
        }));
    }
    unsupported(sel, at, &["any", "matchNames"])?;
    if sel["any"] == true {
        return Ok(None);
    }
    match &sel["matchNames"] {
        Value::Null => Ok(Some(Namespaces {
            names: vec![own.to_string()],
        })),
        Value::Array(names) if !names.is_empty() => names
            .iter()
            .map(|n| n.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .map(|names| Some(Namespaces { names }))
            .ok_or_else(|| {
                (
                    format!("{at}.matchNames"),
                    "must be a list of namespace names".into(),
                )
            }),
        _ => Err((
            format!("{at}.matchNames"),
            "must be a non-empty list of namespace names".into(),
        )),
    }
}

/// The meta label Prometheus's discovery gives a Kubernetes label: `kind` is
/// `service_label`, `service_labelpresent` or `pod_label`.
fn meta_label(kind: &str, label: &str) -> String {
    format!("__meta_kubernetes_{kind}_{}", sanitized(label))
}

/// A label value as an RE2 literal.
pub(super) fn re2_literal(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `keep`/`drop` rules for `selector` (matchLabels, matchExpressions), as the
/// operator writes them: each pairs the label's value with its `labelpresent` flag, so an
/// absent label never matches an empty value.
fn selector(sel: &Value) -> Result<Vec<Relabel>, FieldError> {
    let at = "spec.selector";
    if sel.is_null() {
        return Ok(Vec::new());
    }
    unsupported(sel, at, &["matchLabels", "matchExpressions"])?;
    let mut rules = Vec::new();
    for (label, value) in sel["matchLabels"].as_object().into_iter().flatten() {
        let value = value.as_str().ok_or_else(|| {
            (
                format!("{at}.matchLabels.{label}"),
                "must be a string".into(),
            )
        })?;
        rules.push(value_rule("keep", label, &[value]));
    }
    let expressions = match &sel["matchExpressions"] {
        Value::Null => &[][..],
        Value::Array(e) => e.as_slice(),
        _ => return Err((format!("{at}.matchExpressions"), "must be a list".into())),
    };
    for (i, e) in expressions.iter().enumerate() {
        let here = format!("{at}.matchExpressions[{i}]");
        let key = e["key"]
            .as_str()
            .ok_or_else(|| (format!("{here}.key"), "a label name is required".into()))?;
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| (format!("{here}.values"), "must be strings".into()))
            })
            .collect::<Result<_, _>>()?;
        let operator = e["operator"].as_str().unwrap_or_default();
        let rule = match operator {
            "In" | "NotIn" if values.is_empty() => {
                return Err((
                    format!("{here}.values"),
                    format!("{operator} needs at least one value"),
                ));
            }
            "In" => value_rule("keep", key, &values),
            "NotIn" => value_rule("drop", key, &values),
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err((
                    format!("{here}.values"),
                    format!("{operator} takes no values"),
                ));
            }
            "Exists" => present_rule("keep", key),
            "DoesNotExist" => present_rule("drop", key),
            other => {
                return Err((
                    format!("{here}.operator"),
                    format!(
                        "`{other}` is not a label selector operator (In, NotIn, Exists, DoesNotExist)"
                    ),
                ));
            }
        };
        rules.push(rule);
    }
    Ok(rules)
}

fn value_rule(action: &'static str, label: &str, values: &[&str]) -> Relabel {
    let alternatives: Vec<String> = values.iter().map(|v| re2_literal(v)).collect();
    Relabel {
        action: Some(action),
        source_labels: vec![
            meta_label("service_label", label),
            meta_label("service_labelpresent", label),
        ],
        regex: Some(format!("({});true", alternatives.join("|"))),
        ..Relabel::default()
    }
}

fn present_rule(action: &'static str, label: &str) -> Relabel {
    Relabel {
        action: Some(action),
        source_labels: vec![meta_label("service_labelpresent", label)],
        regex: Some("true".into()),
        ..Relabel::default()
    }
}

/// Which of an endpoint's ports a job keeps.
enum Port {
    /// The Service's port of that name (`port:`).
    Name(String),
    /// The pod's container port of that number or name (`targetPort:`).
    TargetNumber(String),
    TargetName(String),
}

/// One endpoint's settings, checked.
struct Endpoint {
    /// `None`: every port.
    port: Option<Port>,
    /// The `endpoint` target label's value (the port's name or number).
    port_label: String,
    honor_labels: bool,
    interval: Option<String>,
    timeout: Option<String>,
    path: Option<String>,
    scheme: Option<String>,
}

impl Endpoint {
    fn port_keep(&self, role: Role) -> Option<Relabel> {
        let (source, regex) = match self.port.as_ref()? {
            Port::Name(name) => (format!("{}_port_name", role.meta()), re2_literal(name)),
            Port::TargetNumber(n) => (
                "__meta_kubernetes_pod_container_port_number".into(),
                n.clone(),
            ),
            Port::TargetName(name) => (
                "__meta_kubernetes_pod_container_port_name".into(),
                re2_literal(name),
            ),
        };
        Some(Relabel {
            action: Some("keep"),
            source_labels: vec![source],
            regex: Some(regex),
            ..Relabel::default()
        })
    }
}

fn endpoint_settings(e: &Value, at: &str, options: &Options) -> Result<Endpoint, FieldError> {
    unsupported(e, at, ENDPOINT_FIELDS)?;
    let text = |key: &str| -> Result<Option<String>, FieldError> {
        match &e[key] {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err((format!("{at}.{key}"), "must be a string".into())),
        }
    };
    let (port, port_label) = match (text("port")?, &e["targetPort"]) {
        (Some(name), _) => (Some(Port::Name(name.clone())), name),
        (None, Value::Number(n)) => (Some(Port::TargetNumber(n.to_string())), n.to_string()),
        (None, Value::String(name)) => (Some(Port::TargetName(name.clone())), name.clone()),
        (None, Value::Null) => (None, String::new()),
        (None, _) => {
            return Err((
                format!("{at}.targetPort"),
                "must be a port number or name".into(),
            ));
        }
    };
    let duration = |key: &str| -> Result<Option<Duration>, FieldError> {
        text(key)?
            .map(|t| crate::units::parse_duration(&t).map_err(|why| (format!("{at}.{key}"), why)))
            .transpose()
    };
    let mut interval = duration("interval")?;
    let mut timeout = duration("scrapeTimeout")?;
    if let Some(every) = options.scrape_interval {
        interval = Some(every);
        timeout = timeout.map(|t| t.min(every));
    }
    if let (Some(i), Some(t)) = (interval, timeout)
        && t > i
    {
        return Err((
            format!("{at}.scrapeTimeout"),
            format!(
                "{} is longer than the interval, {}; Prometheus refuses that",
                prom_duration(t),
                prom_duration(i)
            ),
        ));
    }
    let scheme = text("scheme")?;
    if let Some(s) = scheme.as_deref()
        && s != "http"
        && s != "https"
    {
        return Err((format!("{at}.scheme"), format!("`{s}`: http or https")));
    }
    let honor_labels = match &e["honorLabels"] {
        Value::Null => false,
        Value::Bool(b) => *b,
        _ => return Err((format!("{at}.honorLabels"), "must be true or false".into())),
    };
    Ok(Endpoint {
        port,
        port_label,
        honor_labels,
        interval: interval.map(prom_duration),
        timeout: timeout.map(prom_duration),
        path: text("path")?,
        scheme,
    })
}

/// A duration as Prometheus writes one: whole seconds as `15s`, else milliseconds.
fn prom_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The operator's target labels: `node` or `pod` from the endpoint's target, `namespace`,
/// `service`, `pod`, `container`, the ServiceMonitor's `targetLabels` (from the Service)
/// and `podTargetLabels` (from the pod); pods that have ended are dropped.
fn target_labels(role: Role, service_labels: &[String], pod_labels: &[String]) -> Vec<Relabel> {
    let meta = role.meta();
    let copy = |source: &str, target: &str| Relabel {
        source_labels: vec![source.to_string()],
        target_label: Some(target.to_string()),
        ..Relabel::default()
    };
    let mut rules: Vec<Relabel> = ["Node", "Pod"]
        .into_iter()
        .map(|kind| Relabel {
            source_labels: vec![
                format!("{meta}_address_target_kind"),
                format!("{meta}_address_target_name"),
            ],
            separator: Some(";"),
            regex: Some(format!("{kind};(.*)")),
            replacement: Some("${1}".into()),
            target_label: Some(kind.to_lowercase()),
            ..Relabel::default()
        })
        .collect();
    rules.extend([
        copy("__meta_kubernetes_namespace", "namespace"),
        copy("__meta_kubernetes_service_name", "service"),
        copy("__meta_kubernetes_pod_name", "pod"),
        copy("__meta_kubernetes_pod_container_name", "container"),
        Relabel {
            action: Some("drop"),
            source_labels: vec!["__meta_kubernetes_pod_phase".into()],
            regex: Some("(Failed|Succeeded)".into()),
            ..Relabel::default()
        },
    ]);
    for l in service_labels {
        rules.push(copy(&meta_label("service_label", l), &sanitized(l)));
    }
    for l in pod_labels {
        rules.push(copy(&meta_label("pod_label", l), &sanitized(l)));
    }
    rules
}

/// A Kubernetes label name as a Prometheus label name (`app.kubernetes.io/name` →
/// `app_kubernetes_io_name`), as Prometheus's discovery sanitizes it.
fn sanitized(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `job`: the Service's name, or the value of its `jobLabel` label when it has one.
fn job(job_label: Option<&str>) -> Vec<Relabel> {
    let mut rules = vec![Relabel {
        source_labels: vec!["__meta_kubernetes_service_name".into()],
        target_label: Some("job".into()),
        replacement: Some("${1}".into()),
        ..Relabel::default()
    }];
    if let Some(label) = job_label {
        rules.push(Relabel {
            source_labels: vec![meta_label("service_label", label)],
            target_label: Some("job".into()),
            regex: Some("(.+)".into()),
            replacement: Some("${1}".into()),
            ..Relabel::default()
        });
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn options() -> Options {
        Options {
            role: Role::EndpointSlice,
            kubeconfig_file: "/home/u/.kube/config".into(),
            scrape_interval: None,
        }
    }

    fn monitor_with(spec: Value) -> Value {
        json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
               "metadata": {"name": "mcp-agent", "namespace": "perf"}, "spec": spec})
    }

    fn one(spec: Value) -> Result<ScrapeConfig, Untranslatable> {
        let configs = translate(&[monitor_with(spec)], "mcp-agents", &options())?;
        assert_eq!(configs.scrape_configs.len(), 1);
        Ok(configs.scrape_configs.into_iter().next().unwrap())
    }

    fn err(spec: Value) -> Untranslatable {
        one(spec).unwrap_err()
    }

    /// The rules that keep or drop by the Service's labels (the selector's).
    fn selection(job: &ScrapeConfig) -> Vec<(&str, Vec<&str>, &str)> {
        job.relabel_configs
            .iter()
            .filter(|r| {
                r.source_labels
                    .iter()
                    .any(|l| l.starts_with("__meta_kubernetes_service_label"))
            })
            .filter_map(|r| {
                Some((
                    r.action?,
                    r.source_labels.iter().map(String::as_str).collect(),
                    r.regex.as_deref()?,
                ))
            })
            .collect()
    }

    const NAME: &str = "__meta_kubernetes_service_label_app_kubernetes_io_name";
    const NAME_PRESENT: &str = "__meta_kubernetes_service_labelpresent_app_kubernetes_io_name";

    #[test]
    fn the_stacks_monitor_becomes_the_operators_job() {
        let job = one(json!({
            "selector": {"matchLabels": {"app.kubernetes.io/name": "mcp-agent"}},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}]
        }))
        .unwrap();
        assert_eq!(job.job_name, "serviceMonitor/perf/mcp-agent/0");
        assert_eq!(
            (
                job.scrape_interval.as_deref(),
                job.scrape_timeout.as_deref(),
                job.metrics_path.as_deref()
            ),
            (Some("15s"), Some("10s"), Some("/metrics"))
        );
        assert!(!job.honor_labels);
        assert_eq!(job.scheme, None);
        let sd = &job.kubernetes_sd_configs[0];
        assert_eq!(
            (sd.role, sd.kubeconfig_file.as_str()),
            ("endpointslice", "/home/u/.kube/config")
        );
        assert_eq!(sd.namespaces.as_ref().unwrap().names, ["perf"]);
        assert_eq!(
            selection(&job),
            [("keep", vec![NAME, NAME_PRESENT], "(mcp-agent);true")]
        );
        let port = job
            .relabel_configs
            .iter()
            .find(|r| r.source_labels == ["__meta_kubernetes_endpointslice_port_name"])
            .unwrap();
        assert_eq!(
            (port.action, port.regex.as_deref()),
            (Some("keep"), Some("http"))
        );
        let targets: Vec<(&str, &str)> = job
            .relabel_configs
            .iter()
            .filter_map(|r| {
                Some((
                    r.target_label.as_deref()?,
                    r.source_labels.first().map_or("", String::as_str),
                ))
            })
            .collect();
        for expected in [
            ("namespace", "__meta_kubernetes_namespace"),
            ("service", "__meta_kubernetes_service_name"),
            ("pod", "__meta_kubernetes_pod_name"),
            ("container", "__meta_kubernetes_pod_container_name"),
            ("job", "__meta_kubernetes_service_name"),
            ("endpoint", ""),
        ] {
            assert!(targets.contains(&expected), "{expected:?} in {targets:?}");
        }
        let endpoint = job.relabel_configs.last().unwrap();
        assert_eq!(endpoint.replacement.as_deref(), Some("http"));
    }

    #[test]
    fn the_yaml_parses_back_to_the_same_document() {
        let configs = translate(
            &[monitor_with(json!({
                "selector": {"matchLabels": {"app.kubernetes.io/name": "mcp-agent"}},
                "endpoints": [{"port": "http", "honorLabels": true}]
            }))],
            "mcp-agents",
            &options(),
        )
        .unwrap();
        let yaml = to_yaml(&configs);
        let back: Value = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(back, serde_json::to_value(&configs).unwrap(), "{yaml}");
        assert_eq!(back["scrape_configs"][0]["honor_labels"], true);
        assert_eq!(
            back["scrape_configs"][0]["relabel_configs"][0]["regex"],
            "(mcp-agent);true"
        );
    }

    #[test]
    fn match_expressions_in_notin_exists_and_doesnotexist() {
        let job = one(json!({
            "selector": {"matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["api", "web.v2"]},
                {"key": "track", "operator": "NotIn", "values": ["canary"]},
                {"key": "app.kubernetes.io/name", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist"}
            ]},
            "endpoints": [{"port": "http"}]
        }))
        .unwrap();
        assert_eq!(
            selection(&job),
            [
                (
                    "keep",
                    vec![
                        "__meta_kubernetes_service_label_tier",
                        "__meta_kubernetes_service_labelpresent_tier"
                    ],
                    r"(api|web\.v2);true"
                ),
                (
                    "drop",
                    vec![
                        "__meta_kubernetes_service_label_track",
                        "__meta_kubernetes_service_labelpresent_track"
                    ],
                    "(canary);true"
                ),
                ("keep", vec![NAME_PRESENT], "true"),
                (
                    "drop",
                    vec!["__meta_kubernetes_service_labelpresent_legacy"],
                    "true"
                ),
            ]
        );
    }

    #[test]
    fn an_empty_selector_selects_every_service() {
        let job = one(json!({"selector": {}, "endpoints": [{"port": "http"}]})).unwrap();
        assert!(selection(&job).is_empty());
    }

    #[test]
    fn namespace_selector_any_and_match_names() {
        let any = one(json!({"namespaceSelector": {"any": true}, "endpoints": [{"port": "http"}]}))
            .unwrap();
        assert_eq!(any.kubernetes_sd_configs[0].namespaces, None);
        let named = one(json!({"namespaceSelector": {"matchNames": ["a", "b"]}, "endpoints": [{"port": "http"}]}))
            .unwrap();
        assert_eq!(
            named.kubernetes_sd_configs[0]
                .namespaces
                .as_ref()
                .unwrap()
                .names,
            ["a", "b"]
        );
    }

    #[test]
    fn a_monitor_without_a_namespace_gets_the_default() {
        let mut m = monitor_with(json!({"endpoints": [{"port": "http"}]}));
        m["metadata"].as_object_mut().unwrap().remove("namespace");
        let configs = translate(&[m], "mcp-agents", &options()).unwrap();
        let job = &configs.scrape_configs[0];
        assert_eq!(job.job_name, "serviceMonitor/mcp-agents/mcp-agent/0");
        assert_eq!(
            job.kubernetes_sd_configs[0]
                .namespaces
                .as_ref()
                .unwrap()
                .names,
            ["mcp-agents"]
        );
    }

    #[test]
    fn target_ports_job_label_target_labels_and_the_endpoints_role() {
        let configs = translate(
            &[monitor_with(json!({
                "jobLabel": "app.kubernetes.io/name",
                "targetLabels": ["team"],
                "podTargetLabels": ["version"],
                "endpoints": [{"targetPort": 9090}, {"targetPort": "metrics", "scheme": "https"}]
            }))],
            "mcp-agents",
            &Options {
                role: Role::Endpoints,
                ..options()
            },
        )
        .unwrap();
        let [by_number, by_name] = configs.scrape_configs.as_slice() else {
            panic!("two jobs");
        };
        assert_eq!(by_name.job_name, "serviceMonitor/perf/mcp-agent/1");
        assert_eq!(by_name.scheme.as_deref(), Some("https"));
        let keep = |job: &ScrapeConfig, source: &str| {
            job.relabel_configs
                .iter()
                .find(|r| r.source_labels == [source])
                .and_then(|r| r.regex.clone())
        };
        assert_eq!(
            keep(by_number, "__meta_kubernetes_pod_container_port_number").as_deref(),
            Some("9090")
        );
        assert_eq!(
            keep(by_name, "__meta_kubernetes_pod_container_port_name").as_deref(),
            Some("metrics")
        );
        assert_eq!(by_number.kubernetes_sd_configs[0].role, "endpoints");
        assert!(
            by_number
                .relabel_configs
                .iter()
                .any(|r| r.source_labels.first().map(String::as_str)
                    == Some("__meta_kubernetes_endpoint_address_target_kind"))
        );
        let target = |job: &ScrapeConfig, label: &str| {
            job.relabel_configs
                .iter()
                .filter(|r| r.target_label.as_deref() == Some(label))
                .map(|r| r.source_labels.join(","))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            target(by_number, "job"),
            [
                "__meta_kubernetes_service_name",
                "__meta_kubernetes_service_label_app_kubernetes_io_name"
            ]
        );
        assert_eq!(
            target(by_number, "team"),
            ["__meta_kubernetes_service_label_team"]
        );
        assert_eq!(
            target(by_number, "version"),
            ["__meta_kubernetes_pod_label_version"]
        );
    }

    #[test]
    fn the_interval_flag_replaces_every_interval_and_caps_the_timeout() {
        let configs = translate(
            &[monitor_with(json!({"endpoints": [
                {"port": "http", "interval": "15s", "scrapeTimeout": "10s"},
                {"port": "admin", "scrapeTimeout": "500ms"}
            ]}))],
            "mcp-agents",
            &Options {
                scrape_interval: Some(Duration::from_secs(1)),
                ..options()
            },
        )
        .unwrap();
        let got: Vec<_> = configs
            .scrape_configs
            .iter()
            .map(|j| (j.scrape_interval.as_deref(), j.scrape_timeout.as_deref()))
            .collect();
        assert_eq!(got, [(Some("1s"), Some("1s")), (Some("1s"), Some("500ms"))]);
    }

    #[test]
    fn other_kinds_are_skipped() {
        let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}});
        assert!(
            translate(&[service], "mcp-agents", &options())
                .unwrap()
                .scrape_configs
                .is_empty()
        );
    }

    #[test]
    fn what_cannot_be_translated_names_the_monitor_and_the_field() {
        let http = json!([{"port": "http"}]);
        for (spec, field, why) in [
            (
                json!({"endpoints": [{"port": "http", "relabelings": []}]}),
                "spec.endpoints[0].relabelings",
                "not translated",
            ),
            (
                json!({"endpoints": http, "sampleLimit": 10}),
                "spec.sampleLimit",
                "not translated",
            ),
            (
                json!({"endpoints": []}),
                "spec.endpoints",
                "at least one endpoint",
            ),
            (json!({}), "spec.endpoints", "at least one endpoint"),
            (
                json!({"endpoints": http, "selector": {"matchExpressions": [{"key": "a", "operator": "Like", "values": ["x"]}]}}),
                "spec.selector.matchExpressions[0].operator",
                "`Like` is not a label selector operator",
            ),
            (
                json!({"endpoints": http, "selector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}),
                "spec.selector.matchExpressions[0].values",
                "In needs at least one value",
            ),
            (
                json!({"endpoints": http, "selector": {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}}),
                "spec.selector.matchExpressions[0].values",
                "Exists takes no values",
            ),
            (
                json!({"endpoints": http, "selector": {"matchExpressions": [{"operator": "Exists"}]}}),
                "spec.selector.matchExpressions[0].key",
                "label name is required",
            ),
            (
                json!({"endpoints": http, "namespaceSelector": {"matchNames": []}}),
                "spec.namespaceSelector.matchNames",
                "non-empty",
            ),
            (
                json!({"endpoints": [{"port": "http", "interval": "soon"}]}),
                "spec.endpoints[0].interval",
                "",
            ),
            (
                json!({"endpoints": [{"port": "http", "interval": "5s", "scrapeTimeout": "10s"}]}),
                "spec.endpoints[0].scrapeTimeout",
                "longer than the interval",
            ),
            (
                json!({"endpoints": [{"port": "http", "scheme": "ftp"}]}),
                "spec.endpoints[0].scheme",
                "http or https",
            ),
            (
                json!({"endpoints": [{"targetPort": true}]}),
                "spec.endpoints[0].targetPort",
                "number or name",
            ),
        ] {
            let e = err(spec);
            assert_eq!(
                (e.monitor.as_str(), e.field.as_str()),
                ("perf/mcp-agent", field),
                "{e}"
            );
            assert!(e.why.contains(why), "{e}");
            assert!(
                e.to_string()
                    .starts_with(&format!("ServiceMonitor perf/mcp-agent: {field}: ")),
                "{e}"
            );
        }
    }
}
