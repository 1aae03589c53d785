//! What a pod's container becomes as a process: the executable (from the image
//! table), its arguments and its environment (`env`, `envFrom` and `valueFrom`
//! resolved through the API, `$(VAR)` expanded as the kubelet does), and its probes.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Probe, Secret};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Api, Client};

/// Images the node can run, each to a local executable: `name=PATH` where `name` ends
/// in `*` for a prefix (`redis:*`), and PATH `-` means "the container's command, found
/// on PATH" (the image's own entrypoint is not known here).
#[derive(Clone, Debug)]
pub struct ImageTable(pub Vec<(String, String)>);

impl ImageTable {
    fn lookup(&self, image: &str) -> Option<&str> {
        self.0.iter().find_map(|(pattern, exe)| {
            let hit = match pattern.strip_suffix('*') {
                Some(prefix) => image.starts_with(prefix),
                None => image == pattern,
            };
            hit.then_some(exe.as_str())
        })
    }

    pub fn names(&self) -> String {
        self.0
            .iter()
            .map(|(p, _)| p.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// How a probe checks the process.
#[derive(Clone, Debug)]
pub enum Check {
    Http { path: String, port: u16 },
    Tcp { port: u16 },
}

#[derive(Clone, Debug)]
pub struct ProbeSpec {
    pub check: Check,
    pub initial_delay_s: u64,
    pub period_s: u64,
    pub timeout_s: u64,
    pub failure_threshold: u32,
    pub success_threshold: u32,
}

/// One container, ready to start.
#[derive(Clone, Debug)]
pub struct ProcessSpec {
    pub container: String,
    pub program: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub readiness: Option<ProbeSpec>,
    pub liveness: Option<ProbeSpec>,
    pub pre_stop_sleep_s: u64,
    pub grace_s: u64,
}

/// The pod's first container as a process (the stack's pods have one each).
pub async fn resolve(
    client: &Client,
    pod: &Pod,
    images: &ImageTable,
) -> anyhow::Result<ProcessSpec> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let spec = pod.spec.as_ref().context("the pod has no spec")?;
    let [c] = spec.containers.as_slice() else {
        bail!(
            "{} containers: the process node runs pods of exactly one",
            spec.containers.len()
        );
    };
    let image = c.image.clone().unwrap_or_default();
    let Some(exe) = images.lookup(&image) else {
        bail!(
            "image `{image}` is not in the process node's table ({}): it runs local executables, not images",
            images.names()
        );
    };
    let env = environment(client, &ns, pod, c).await?;
    let expand = |s: &String| expand(s, &env);
    let command: Vec<String> = c.command.iter().flatten().map(expand).collect();
    let args: Vec<String> = c.args.iter().flatten().map(expand).collect();
    let (program, args) = if exe == "-" {
        let Some((first, rest)) = command.split_first() else {
            bail!("image `{image}` runs the container's `command`, and it has none");
        };
        (first.clone(), rest.iter().cloned().chain(args).collect())
    } else {
        // The image's entrypoint is the executable; a `command` replaces it with
        // arguments of its own, which the table cannot honour.
        if !command.is_empty() {
            bail!("image `{image}` maps to {exe}; a container `command` cannot replace it");
        }
        (exe.to_string(), args)
    };
    let ports: BTreeMap<String, u16> = c
        .ports
        .iter()
        .flatten()
        .filter_map(|p| Some((p.name.clone()?, u16::try_from(p.container_port).ok()?)))
        .collect();
    let probe = |p: &Option<Probe>| -> anyhow::Result<Option<ProbeSpec>> {
        p.as_ref().map(|p| probe(p, &ports)).transpose()
    };
    Ok(ProcessSpec {
        container: c.name.clone(),
        program,
        args,
        env,
        readiness: probe(&c.readiness_probe)?,
        liveness: probe(&c.liveness_probe)?,
        pre_stop_sleep_s: c
            .lifecycle
            .as_ref()
            .and_then(|l| l.pre_stop.as_ref())
            .and_then(|h| h.sleep.as_ref())
            .map_or(0, |s| u64::try_from(s.seconds).unwrap_or(0)),
        grace_s: spec
            .termination_grace_period_seconds
            .map_or(30, |s| u64::try_from(s).unwrap_or(0)),
    })
}

fn port(p: &IntOrString, named: &BTreeMap<String, u16>) -> anyhow::Result<u16> {
    match p {
        IntOrString::Int(n) => u16::try_from(*n).context("probe port out of range"),
        IntOrString::String(name) => named
            .get(name)
            .copied()
            .with_context(|| format!("probe port `{name}` names no container port")),
    }
}

fn probe(p: &Probe, named: &BTreeMap<String, u16>) -> anyhow::Result<ProbeSpec> {
    let check = if let Some(h) = &p.http_get {
        Check::Http {
            path: h.path.clone().unwrap_or_else(|| "/".into()),
            port: port(&h.port, named)?,
        }
    } else if let Some(t) = &p.tcp_socket {
        Check::Tcp {
            port: port(&t.port, named)?,
        }
    } else {
        bail!("only httpGet and tcpSocket probes run on the process node");
    };
    let n = |v: Option<i32>, default: i32| u64::try_from(v.unwrap_or(default)).unwrap_or(0);
    Ok(ProbeSpec {
        check,
        initial_delay_s: n(p.initial_delay_seconds, 0),
        period_s: n(p.period_seconds, 10).max(1),
        timeout_s: n(p.timeout_seconds, 1).max(1),
        failure_threshold: u32::try_from(p.failure_threshold.unwrap_or(3))
            .unwrap_or(3)
            .max(1),
        success_threshold: u32::try_from(p.success_threshold.unwrap_or(1))
            .unwrap_or(1)
            .max(1),
    })
}

/// The container's environment, in the kubelet's order: `envFrom`, then `env` (which
/// may refer to earlier variables with `$(NAME)`).
async fn environment(
    client: &Client,
    ns: &str,
    pod: &Pod,
    c: &Container,
) -> anyhow::Result<BTreeMap<String, String>> {
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut env = BTreeMap::new();
    env.insert(
        "PATH".to_string(),
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
    );
    env.insert(
        "HOSTNAME".to_string(),
        pod.metadata.name.clone().unwrap_or_default(),
    );
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            let m = maps
                .get(&r.name)
                .await
                .with_context(|| format!("envFrom ConfigMap {ns}/{}", r.name))?;
            for (k, v) in m.data.unwrap_or_default() {
                env.insert(format!("{prefix}{k}"), v);
            }
        }
        if let Some(r) = &from.secret_ref {
            let s = secrets
                .get(&r.name)
                .await
                .with_context(|| format!("envFrom Secret {ns}/{}", r.name))?;
            for (k, v) in s.data.unwrap_or_default() {
                env.insert(
                    format!("{prefix}{k}"),
                    String::from_utf8_lossy(&v.0).into_owned(),
                );
            }
        }
    }
    for e in c.env.iter().flatten() {
        let value = if let Some(v) = &e.value {
            expand(v, &env)
        } else if let Some(from) = &e.value_from {
            if let Some(r) = &from.secret_key_ref {
                let s = secrets
                    .get(&r.name)
                    .await
                    .with_context(|| format!("env {}: Secret {ns}/{}", e.name, r.name))?;
                let v = s.data.unwrap_or_default().remove(&r.key).with_context(|| {
                    format!(
                        "env {}: Secret {ns}/{} has no key {}",
                        e.name, r.name, r.key
                    )
                })?;
                String::from_utf8_lossy(&v.0).into_owned()
            } else if let Some(r) = &from.config_map_key_ref {
                let m = maps
                    .get(&r.name)
                    .await
                    .with_context(|| format!("env {}: ConfigMap {ns}/{}", e.name, r.name))?;
                m.data.unwrap_or_default().remove(&r.key).with_context(|| {
                    format!(
                        "env {}: ConfigMap {ns}/{} has no key {}",
                        e.name, r.name, r.key
                    )
                })?
            } else if let Some(f) = &from.field_ref {
                match f.field_path.as_str() {
                    "metadata.name" => pod.metadata.name.clone().unwrap_or_default(),
                    "metadata.namespace" => ns.to_string(),
                    other => bail!("env {}: fieldRef {other} is not supported here", e.name),
                }
            } else {
                bail!(
                    "env {}: only secretKeyRef, configMapKeyRef and fieldRef are supported",
                    e.name
                );
            }
        } else {
            String::new()
        };
        env.insert(e.name.clone(), value);
    }
    Ok(env)
}

/// The kubelet's `$(NAME)` expansion: defined names are replaced, `$$` is a `$`, and
/// anything else is left as written.
pub fn expand(s: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
            && let Some(v) = env.get(&inner[..end])
        {
            out.push_str(v);
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_the_kubelet() {
        let env = BTreeMap::from([
            ("PASSWORD".to_string(), "s3cret".to_string()),
            ("EMPTY".to_string(), String::new()),
        ]);
        assert_eq!(
            expand("redis://:$(PASSWORD)@redis:6379/0", &env),
            "redis://:s3cret@redis:6379/0"
        );
        // Undefined names and malformed references stay as written; `$$` escapes.
        assert_eq!(expand("$(UNSET) $(PASSWORD", &env), "$(UNSET) $(PASSWORD");
        assert_eq!(expand("$$(PASSWORD) $(EMPTY)x $", &env), "$(PASSWORD) x $");
    }

    #[test]
    fn the_image_table_matches_exact_names_and_prefixes() {
        let t = ImageTable(vec![
            ("slo-check:dev".into(), "/bin/slo-check".into()),
            ("redis:*".into(), "-".into()),
        ]);
        assert_eq!(t.lookup("slo-check:dev"), Some("/bin/slo-check"));
        assert_eq!(t.lookup("slo-check:v2"), None);
        assert_eq!(t.lookup("redis:7.4-bookworm"), Some("-"));
        assert_eq!(t.lookup("nginx:1"), None);
        assert_eq!(t.names(), "slo-check:dev, redis:*");
    }
}
