//! What a pod's container becomes as a process: the executable (from the image
//! table), its arguments and its environment (`env`, `envFrom` and `valueFrom`
//! resolved through the API, `$(VAR)` expanded as the kubelet does), its probes, its
//! volumes (directories of the node's state, bind-mounted by the shim) and its user.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Pod, PodSecurityContext, Probe, Secret, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Api, Client};

pub use crate::shim::{Bind, User};

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

    /// The table with every executable copied into `dir` (mode 0755, as an image's
    /// files are fixed when it is built): pods run these copies, so a rebuild while the
    /// node runs changes nothing under them, and a pod's non-root user can execute one
    /// even when the original lies under a directory it cannot enter (a home).
    pub fn snapshot(&self, dir: &Path) -> anyhow::Result<ImageTable> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).with_context(|| format!("make {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        let mut out = Vec::new();
        for (i, (pattern, exe)) in self.0.iter().enumerate() {
            if exe == "-" {
                out.push((pattern.clone(), exe.clone()));
                continue;
            }
            let name = Path::new(exe)
                .file_name()
                .with_context(|| format!("image `{pattern}`: {exe} names no file"))?;
            let copy = dir.join(format!("{i}-{}", name.to_string_lossy()));
            let tmp = copy.with_extension("tmp");
            std::fs::copy(exe, &tmp)
                .with_context(|| format!("image `{pattern}`: copy {exe} to {}", tmp.display()))?;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
            std::fs::rename(&tmp, &copy)?;
            out.push((pattern.clone(), copy.display().to_string()));
        }
        Ok(ImageTable(out))
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
    /// The pod's volumes, as node directories mounted at the container's mount paths.
    pub binds: Vec<Bind>,
    /// The user the pod's securityContext asks for (`None`: root, as an image's default).
    pub user: Option<User>,
}

/// The pod's first container as a process (the stack's pods have one each).
/// `state` is the node's state directory, which holds the volumes' directories.
pub async fn resolve(
    client: &Client,
    pod: &Pod,
    images: &ImageTable,
    state: &Path,
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
    let user = user(spec.security_context.as_ref(), c.security_context.as_ref())?;
    let binds = volumes(pod, c, state)?;
    for b in &binds {
        make_volume_dir(Path::new(&b.source), user.as_ref())?;
    }
    fill_config_maps(client, &ns, pod, c, state).await?;
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
        binds,
        user,
    })
}

/// The pod's own directory in the node's state (its emptyDir volumes live there).
pub fn pod_dir(state: &Path, pod_uid: &str) -> std::path::PathBuf {
    state.join("pods").join(pod_uid)
}

/// Each of the container's volume mounts as a node directory: an `emptyDir` in the
/// pod's own directory (gone with the pod), a `persistentVolumeClaim` in one per claim
/// (kept across pods, as a StatefulSet's volume is), a `configMap` in the pod's own
/// directory (filled by `fill_config_maps`). The service account's projected token is
/// left out; other volume types are refused.
fn volumes(pod: &Pod, c: &Container, state: &Path) -> anyhow::Result<Vec<Bind>> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let declared = declared_volumes(pod);
    let mut binds = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        if m.sub_path.as_ref().is_some_and(|p| !p.is_empty())
            || m.sub_path_expr.as_ref().is_some_and(|p| !p.is_empty())
        {
            bail!(
                "volume mount `{}` has a subPath: the process node mounts whole volumes only",
                m.name
            );
        }
        let Some(v) = declared.iter().find(|v| v.name == m.name) else {
            bail!("volume mount `{}` names no volume of the pod", m.name);
        };
        let token = v.projected.as_ref().is_some_and(|p| {
            p.sources
                .iter()
                .flatten()
                .any(|s| s.service_account_token.is_some())
        });
        if token {
            // The API token the admission plugin adds (kube-api-access-*): no process
            // here talks to the API server, so it is not written.
            continue;
        }
        let source = if v.empty_dir.is_some() || v.config_map.is_some() {
            // A configMap volume is a directory of the pod's too, filled by `resolve`.
            if v.config_map.as_ref().is_some_and(|c| c.items.is_some()) {
                bail!(
                    "volume `{}`: the process node mounts a configMap's whole data (no `items`)",
                    v.name
                );
            }
            pod_dir(state, &uid).join("volumes").join(&v.name)
        } else if let Some(claim) = &v.persistent_volume_claim {
            state.join("claims").join(&ns).join(&claim.claim_name)
        } else {
            bail!(
                "volume `{}`: the process node mounts emptyDir, configMap and persistentVolumeClaim volumes only",
                v.name
            );
        };
        binds.push(Bind {
            source: source.display().to_string(),
            target: m.mount_path.clone(),
        });
    }
    Ok(binds)
}

/// The pod's volumes.
fn declared_volumes(pod: &Pod) -> &[k8s_openapi::api::core::v1::Volume] {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or_default()
}

/// Each configMap volume the container mounts: the ConfigMap's `data`, a file per key
/// (mode 0644), written into the volume's directory before the process starts (read
/// once: a later change to the ConfigMap is not followed, unlike the kubelet).
async fn fill_config_maps(
    client: &Client,
    ns: &str,
    pod: &Pod,
    c: &Container,
    state: &Path,
) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let declared = declared_volumes(pod);
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    for m in c.volume_mounts.iter().flatten() {
        let Some(cm) = declared
            .iter()
            .find(|v| v.name == m.name)
            .and_then(|v| v.config_map.as_ref())
        else {
            continue;
        };
        let name = cm.name.clone();
        let data = match maps.get_opt(&name).await? {
            Some(found) => found.data.unwrap_or_default(),
            None if cm.optional == Some(true) => BTreeMap::new(),
            None => bail!("volume `{}`: ConfigMap {ns}/{name} not found", m.name),
        };
        let dir = pod_dir(state, &uid).join("volumes").join(&m.name);
        for (key, text) in data {
            let file = dir.join(&key);
            std::fs::write(&file, text).with_context(|| format!("write {}", file.display()))?;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644))?;
        }
    }
    Ok(())
}

/// The user from the container's securityContext, else the pod's: `runAsUser`,
/// `runAsGroup` (default 0, as for an image user without a group), and `fsGroup` plus
/// `supplementalGroups` as groups. `runAsNonRoot` without a `runAsUser` cannot be
/// checked (there is no image to read the user from) and is refused, as is uid 0
/// with `runAsNonRoot`.
fn user(
    pod: Option<&PodSecurityContext>,
    container: Option<&SecurityContext>,
) -> anyhow::Result<Option<User>> {
    let id = |v: Option<i64>, what: &str| -> anyhow::Result<Option<u32>> {
        v.map(|n| u32::try_from(n).with_context(|| format!("{what} {n} is not a uid/gid")))
            .transpose()
    };
    let uid = id(
        container
            .and_then(|c| c.run_as_user)
            .or(pod.and_then(|p| p.run_as_user)),
        "runAsUser",
    )?;
    let gid = id(
        container
            .and_then(|c| c.run_as_group)
            .or(pod.and_then(|p| p.run_as_group)),
        "runAsGroup",
    )?;
    let non_root = container
        .and_then(|c| c.run_as_non_root)
        .or(pod.and_then(|p| p.run_as_non_root))
        .unwrap_or(false);
    let Some(uid) = uid else {
        if non_root {
            bail!(
                "runAsNonRoot without runAsUser: the process node has no image to take the user from; set runAsUser"
            );
        }
        return Ok(None);
    };
    if non_root && uid == 0 {
        bail!("runAsNonRoot with runAsUser 0");
    }
    let mut groups = Vec::new();
    if let Some(fs) = id(pod.and_then(|p| p.fs_group), "fsGroup")? {
        groups.push(fs);
    }
    for g in pod
        .and_then(|p| p.supplemental_groups.clone())
        .unwrap_or_default()
    {
        groups.extend(id(Some(g), "supplementalGroups")?);
    }
    Ok(Some(User {
        uid,
        gid: gid.unwrap_or(0),
        groups,
    }))
}

/// Make a volume's directory, owned by the pod's user and its fsGroup (the first of
/// its groups) as the kubelet makes a volume writable for it.
fn make_volume_dir(dir: &Path, user: Option<&User>) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("make {}", dir.display()))?;
    if let Some(u) = user {
        let group = u.groups.first().copied().unwrap_or(u.gid);
        std::os::unix::fs::chown(dir, Some(u.uid), Some(group))
            .with_context(|| format!("chown {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o2775))
            .with_context(|| format!("chmod {}", dir.display()))?;
    }
    Ok(())
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
                let path = f.field_path.as_str();
                // The kubelet's `metadata.labels['k']` and `metadata.annotations['k']`.
                let keyed = |prefix: &str| {
                    path.strip_prefix(prefix)
                        .and_then(|k| k.strip_suffix("']"))
                        .map(str::to_string)
                };
                match path {
                    "metadata.name" => pod.metadata.name.clone().unwrap_or_default(),
                    "metadata.namespace" => ns.to_string(),
                    _ if let Some(k) = keyed("metadata.labels['") => pod
                        .metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(&k).cloned())
                        .unwrap_or_default(),
                    _ if let Some(k) = keyed("metadata.annotations['") => pod
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(&k).cloned())
                        .unwrap_or_default(),
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

    fn pod(yaml: &str) -> Pod {
        serde_saphyr::from_str(yaml).expect("a pod")
    }

    #[test]
    fn the_user_comes_from_the_container_then_the_pod() {
        let p = pod(r#"
metadata: {name: r, namespace: ns, uid: u1}
spec:
  securityContext: {runAsUser: 999, runAsGroup: 998, fsGroup: 997, supplementalGroups: [5], runAsNonRoot: true}
  containers: [{name: c, securityContext: {runAsUser: 1000}}]
"#);
        let spec = p.spec.as_ref().unwrap();
        let u = user(
            spec.security_context.as_ref(),
            spec.containers[0].security_context.as_ref(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            u,
            User {
                uid: 1000,
                gid: 998,
                groups: vec![997, 5]
            }
        );
        assert_eq!(user(None, None).unwrap(), None);
        let non_root_unknown =
            pod("spec: {securityContext: {runAsNonRoot: true}, containers: [{name: c}]}");
        let spec = non_root_unknown.spec.as_ref().unwrap();
        let e = user(spec.security_context.as_ref(), None).unwrap_err();
        assert!(format!("{e}").contains("set runAsUser"), "{e}");
        let root = pod(
            "spec: {securityContext: {runAsNonRoot: true, runAsUser: 0}, containers: [{name: c}]}",
        );
        let spec = root.spec.as_ref().unwrap();
        assert!(user(spec.security_context.as_ref(), None).is_err());
    }

    #[test]
    fn volumes_are_node_directories_by_kind() {
        let p = pod(r#"
metadata: {name: redis-0, namespace: ns, uid: u1}
spec:
  volumes:
  - {name: data, persistentVolumeClaim: {claimName: data-redis-0}}
  - {name: tmp, emptyDir: {}}
  - {name: cfg, configMap: {name: x}}
  - {name: some, configMap: {name: x, items: [{key: a, path: b}]}}
  - {name: sec, secret: {secretName: x}}
  - {name: kube-api-access-x, projected: {sources: [{serviceAccountToken: {path: token}}]}}
  containers:
  - name: c
    volumeMounts: [{name: data, mountPath: /data}, {name: tmp, mountPath: /tmp/x}, {name: kube-api-access-x, mountPath: /var/run/secrets/kubernetes.io/serviceaccount}]
  - name: d
    volumeMounts: [{name: cfg, mountPath: /etc/x}]
  - name: e
    volumeMounts: [{name: data, mountPath: /d, subPath: a}]
  - name: f
    volumeMounts: [{name: nope, mountPath: /d}]
  - name: g
    volumeMounts: [{name: sec, mountPath: /s}]
  - name: h
    volumeMounts: [{name: some, mountPath: /s}]
"#);
        let state = Path::new("/state");
        let cs = &p.spec.as_ref().unwrap().containers;
        assert_eq!(
            volumes(&p, &cs[0], state).unwrap(),
            vec![
                Bind {
                    source: "/state/claims/ns/data-redis-0".into(),
                    target: "/data".into()
                },
                Bind {
                    source: "/state/pods/u1/volumes/tmp".into(),
                    target: "/tmp/x".into()
                },
            ]
        );
        // A configMap is a directory of the pod's, filled from the ConfigMap's data.
        assert_eq!(
            volumes(&p, &cs[1], state).unwrap(),
            vec![Bind {
                source: "/state/pods/u1/volumes/cfg".into(),
                target: "/etc/x".into()
            }]
        );
        for (c, says) in [
            (&cs[2], "subPath"),
            (&cs[3], "names no volume"),
            (&cs[4], "emptyDir, configMap and persistentVolumeClaim"),
            (&cs[5], "no `items`"),
        ] {
            let e = volumes(&p, c, state).unwrap_err();
            assert!(format!("{e}").contains(says), "{e}");
        }
    }

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
