//! `stack/` renders with `kubectl kustomize` (kind and gpu overlays), and every rendered
//! object is valid against the real APIs (tests/support/stack.rs): Istio and
//! prometheus-operator kinds against their upstream CRD schemas, Kubernetes kinds by a
//! lossless k8s-openapi round trip. Beyond validity: the names are the scenario defaults,
//! the HPA is exactly the file the embedded autoscaler reads, references between objects
//! resolve, the agent's settings parse with the agent's own flags, and no secret value
//! is committed.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::support::stack::{
    Checked, StackCopy, TEST_REDIS_PASSWORD, describe, find, find_generated, kubectl, root,
    validate, yaml,
};
use base64::Engine;
use clap::{CommandFactory, Parser};
use serde_json::{Value, json};
use slo_check::agent::CpuMode;
use slo_check::cli::AgentArgs;
use slo_check::scenario::model::PlatformRefs;

const OVERLAYS: [&str; 2] = ["kind", "gpu"];

/// Renders every overlay (`None` when kubectl is absent and not required: the reason is
/// printed by `kubectl()`).
fn rendered() -> Option<Vec<(&'static str, Vec<Value>)>> {
    let kubectl = kubectl()?;
    let copy = StackCopy::with_secrets();
    Some(
        OVERLAYS
            .iter()
            .map(|overlay| (*overlay, copy.render(&kubectl, overlay)))
            .collect(),
    )
}

fn agent_container(deployment: &Value) -> &Value {
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    containers
        .iter()
        .find(|c| c["name"] == "agent")
        .expect("a container named agent")
}

#[test]
fn every_rendered_object_is_valid_against_the_real_api() {
    let Some(overlays) = rendered() else { return };
    for (overlay, objects) in &overlays {
        let mut problems = Vec::new();
        let mut by_crd = BTreeSet::new();
        for obj in objects {
            match validate(obj) {
                Ok(Checked::CrdSchema) => {
                    by_crd.insert(obj["kind"].as_str().unwrap().to_owned());
                }
                Ok(Checked::RoundTrip) => {}
                Err(errors) => {
                    problems.push(format!("{}:\n  {}", describe(obj), errors.join("\n  ")))
                }
            }
        }
        assert!(
            problems.is_empty(),
            "stack/overlays/{overlay}: objects the API would not accept as written:\n{}",
            problems.join("\n")
        );
        let expected: BTreeSet<String> = [
            "DestinationRule",
            "Gateway",
            "PrometheusRule",
            "ServiceMonitor",
            "VirtualService",
        ]
        .map(String::from)
        .into();
        assert_eq!(by_crd, expected, "{overlay}: kinds checked against CRDs");
    }
}

/// The canary overlay (kind + stack/components/canary) is valid against the real APIs and
/// the upstream CRDs, and adds exactly what a canary needs: the canary Deployment
/// (`version: canary`, its own selector, the ConfigMap and Secret it references
/// resolved), the stable pods labelled `version: stable`, the DestinationRule's two
/// subsets, and the VirtualService's header route to the canary before the weighted
/// route (stable 100, canary 0), which `slo-check run` shifts.
#[test]
fn the_canary_overlay_is_valid_and_splits_between_the_subsets() {
    let Some(kubectl) = kubectl() else { return };
    let copy = StackCopy::with_secrets();
    let objects = copy.render(&kubectl, "kind-canary");
    let kind = copy.render(&kubectl, "kind");
    assert_eq!(
        objects.len(),
        kind.len() + 1,
        "one object more: the canary Deployment"
    );
    for obj in &objects {
        if let Err(errors) = validate(obj) {
            panic!("{}: {}", describe(obj), errors.join("; "));
        }
    }
    let find = |k: &str, name: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == k && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{k} {name} rendered"))
    };
    let canary = find("Deployment", "mcp-agent-canary");
    assert_eq!(canary["metadata"]["namespace"], "mcp-agents");
    assert_eq!(
        canary["spec"]["selector"]["matchLabels"]["version"],
        "canary"
    );
    assert_eq!(
        canary["spec"]["template"]["metadata"]["labels"]["version"],
        "canary"
    );
    let stable = find("Deployment", "mcp-agent");
    assert_eq!(
        stable["spec"]["template"]["metadata"]["labels"]["version"],
        "stable"
    );
    for d in [canary, stable] {
        let c = agent_container(d);
        let env = c["env"].as_array().unwrap();
        assert!(
            env.iter().any(|e| e["name"] == "AGENT_VERSION_LABEL"
                && e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['version']"),
            "{env:?}"
        );
        // The generated names, with their hash suffix, not the bare ones.
        let config = c["envFrom"][0]["configMapRef"]["name"].as_str().unwrap();
        assert!(config.starts_with("mcp-agent-config-"), "{config}");
    }
    let dr = find("DestinationRule", "mcp-agent-dr");
    assert_eq!(
        dr["spec"]["subsets"],
        serde_json::json!([{"name": "stable", "labels": {"version": "stable"}},
                           {"name": "canary", "labels": {"version": "canary"}}])
    );
    let vs = find("VirtualService", "mcp-agent-vs");
    let http = vs["spec"]["http"].as_array().unwrap();
    assert_eq!(
        http[0]["match"][0]["headers"]["canary-user"]["exact"],
        "true"
    );
    assert_eq!(http[0]["route"][0]["destination"]["subset"], "canary");
    let weights: Vec<(&str, u64)> = http[1]["route"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["destination"]["subset"].as_str().unwrap(),
                d["weight"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(weights, [("stable", 100), ("canary", 0)]);
}

/// The tests' overlay (tests/overlays/process) is valid too, and changes only where the
/// agent and Redis run and how much CPU the agent asks for and burns.
#[test]
fn the_tests_process_overlay_is_valid_and_puts_agent_and_redis_on_the_process_node() {
    let Some(kubectl) = kubectl() else { return };
    let copy = StackCopy::with_secrets();
    crate::support::stack::copy_tree(
        &crate::support::stack::root().join("tests/overlays/process"),
        &copy.stack.join("overlays/process"),
    );
    let objects = copy.render(&kubectl, "process");
    let kind = copy.render(&kubectl, "kind");
    assert_eq!(objects.len(), kind.len());
    for obj in &objects {
        if let Err(errors) = validate(obj) {
            panic!("{}: {}", describe(obj), errors.join("; "));
        }
    }
    for (k, name) in [("Deployment", "mcp-agent"), ("StatefulSet", "redis")] {
        let o = objects
            .iter()
            .find(|o| o["kind"] == k && o["metadata"]["name"] == name)
            .expect("rendered");
        let pod = &o["spec"]["template"]["spec"];
        assert_eq!(
            pod["nodeSelector"]["slo-check.io/process-node"], "true",
            "{k}"
        );
        assert_eq!(pod["tolerations"][0]["key"], "slo-check.io/process", "{k}");
    }
    let config = objects
        .iter()
        .find(|o| {
            o["kind"] == "ConfigMap"
                && o["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("mcp-agent-config"))
        })
        .expect("the agent's ConfigMap");
    assert_eq!(config["data"]["AGENT_CPU_PER_WORKFLOW"], "1ms");
    assert_eq!(config["data"]["AGENT_CPU_MODE"], "burn");
}

#[test]
fn the_stack_holds_every_object_of_the_platform() {
    let Some(overlays) = rendered() else { return };
    let refs = PlatformRefs::default();
    for (overlay, objects) in &overlays {
        let kinds: Vec<(&str, &str)> = objects
            .iter()
            .map(|o| {
                (
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap(),
                )
            })
            .collect();
        for (kind, name) in [
            ("Namespace", refs.namespace.as_str()),
            ("ResourceQuota", "mcp-agents-quota"),
            ("ServiceAccount", "mcp-agent"),
            ("Role", "mcp-agent"),
            ("RoleBinding", "mcp-agent"),
            ("Deployment", refs.deployment.as_str()),
            ("Service", refs.service.as_str()),
            ("HorizontalPodAutoscaler", refs.hpa.as_str()),
            ("PodDisruptionBudget", "mcp-agent-pdb"),
            ("StatefulSet", "redis"),
            ("Service", "redis"),
            ("Gateway", "mcp-agent-gateway"),
            ("VirtualService", refs.virtual_service.as_str()),
            ("DestinationRule", "mcp-agent-dr"),
            ("NetworkPolicy", "mcp-agent-ingress"),
            ("NetworkPolicy", "redis-ingress"),
            ("ServiceMonitor", "mcp-agent"),
            ("PrometheusRule", "mcp-agent-alerts"),
        ] {
            find(objects, kind, name);
        }
        find_generated(objects, "ConfigMap", "mcp-agent-config-");
        find_generated(objects, "Secret", "mcp-agent-secrets-");
        assert_eq!(kinds.len(), 20, "{overlay}: unexpected objects {kinds:?}");
    }
}

#[test]
fn names_and_namespace_are_the_scenario_defaults() {
    let Some(overlays) = rendered() else { return };
    let refs = PlatformRefs::default();
    // Short names, which Istio resolves in the rule's own namespace: the routes follow
    // the stack into any namespace.
    let service_host = refs.service.clone();
    for (overlay, objects) in &overlays {
        for obj in objects.iter().filter(|o| o["kind"] != "Namespace") {
            assert_eq!(
                obj["metadata"]["namespace"],
                refs.namespace,
                "{overlay}: {} is not in the scenario's namespace",
                describe(obj)
            );
        }
        let namespace = find(objects, "Namespace", &refs.namespace);
        assert_eq!(
            namespace["metadata"]["labels"]["istio-injection"],
            "enabled"
        );
        let hpa = find(objects, "HorizontalPodAutoscaler", &refs.hpa);
        assert_eq!(hpa["spec"]["scaleTargetRef"]["kind"], "Deployment");
        assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], refs.deployment);
        find(objects, "Deployment", &refs.deployment);
        find(objects, "Service", &refs.service);
        let vs = find(objects, "VirtualService", &refs.virtual_service);
        let destination = &vs["spec"]["http"][0]["route"][0]["destination"];
        assert_eq!(destination["host"], service_host.as_str());
        assert_eq!(destination["port"]["number"], 80);
        let dr = find(objects, "DestinationRule", "mcp-agent-dr");
        assert_eq!(dr["spec"]["host"], service_host.as_str());
    }
}

#[test]
fn the_rendered_hpa_is_exactly_the_file_the_embedded_autoscaler_reads() {
    let Some(overlays) = rendered() else { return };
    let file = yaml(&root().join("stack/base/hpa.yaml"));
    for (overlay, objects) in &overlays {
        let hpa = find(objects, "HorizontalPodAutoscaler", "mcp-agent-hpa");
        assert_eq!(
            hpa, &file,
            "{overlay}: the rendered HPA differs from stack/base/hpa.yaml"
        );
    }
}

/// Whether every `key: value` of `selector` is among `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let selector = selector.as_object().expect("matchLabels");
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[test]
fn references_between_objects_resolve() {
    let Some(overlays) = rendered() else { return };
    for (overlay, objects) in &overlays {
        let deployment = find(objects, "Deployment", "mcp-agent");
        let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
        assert!(selects(
            &deployment["spec"]["selector"]["matchLabels"],
            pod_labels
        ));
        let service = find(objects, "Service", "mcp-agent-service");
        assert!(
            selects(&service["spec"]["selector"], pod_labels),
            "{overlay}: Service"
        );
        let pdb = find(objects, "PodDisruptionBudget", "mcp-agent-pdb");
        assert!(selects(&pdb["spec"]["selector"]["matchLabels"], pod_labels));
        let policy = find(objects, "NetworkPolicy", "mcp-agent-ingress");
        assert!(selects(
            &policy["spec"]["podSelector"]["matchLabels"],
            pod_labels
        ));

        // The ServiceMonitor selects the Service and names one of its ports.
        let monitor = find(objects, "ServiceMonitor", "mcp-agent");
        assert!(selects(
            &monitor["spec"]["selector"]["matchLabels"],
            &service["metadata"]["labels"]
        ));
        let port = &service["spec"]["ports"][0];
        assert_eq!(monitor["spec"]["endpoints"][0]["port"], port["name"]);
        assert_eq!(
            (port["name"].as_str(), port["port"].as_u64()),
            (Some("http"), Some(80))
        );
        let container = agent_container(deployment);
        assert_eq!(port["targetPort"], container["ports"][0]["name"]);
        assert_eq!(container["ports"][0]["containerPort"], 8080);

        // Generated (hashed) ConfigMap and Secret names are the ones the pods use.
        let config = find_generated(objects, "ConfigMap", "mcp-agent-config-");
        let secret = find_generated(objects, "Secret", "mcp-agent-secrets-");
        assert_eq!(
            container["envFrom"][0]["configMapRef"]["name"],
            config["metadata"]["name"]
        );
        let redis = find(objects, "StatefulSet", "redis");
        let redis_container = &redis["spec"]["template"]["spec"]["containers"][0];
        for env in [&container["env"], &redis_container["env"]] {
            let from_secret = env
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["name"] == "REDIS_PASSWORD")
                .expect("REDIS_PASSWORD env");
            assert_eq!(
                from_secret["valueFrom"]["secretKeyRef"]["name"],
                secret["metadata"]["name"]
            );
        }

        // RBAC: the pods run as the ServiceAccount the RoleBinding binds to the Role.
        let spec = &deployment["spec"]["template"]["spec"];
        find(
            objects,
            "ServiceAccount",
            spec["serviceAccountName"].as_str().unwrap(),
        );
        let binding = find(objects, "RoleBinding", "mcp-agent");
        find(
            objects,
            "Role",
            binding["roleRef"]["name"].as_str().unwrap(),
        );
        assert_eq!(binding["subjects"][0]["name"], spec["serviceAccountName"]);
        assert_eq!(binding["subjects"][0]["namespace"], "mcp-agents");

        // Redis: its headless Service, its policy, and the agent's REDIS_URL.
        let redis_service = find(
            objects,
            "Service",
            redis["spec"]["serviceName"].as_str().unwrap(),
        );
        assert_eq!(redis_service["spec"]["clusterIP"], "None");
        let redis_labels = &redis["spec"]["template"]["metadata"]["labels"];
        assert!(selects(&redis_service["spec"]["selector"], redis_labels));
        let redis_policy = find(objects, "NetworkPolicy", "redis-ingress");
        assert!(selects(
            &redis_policy["spec"]["podSelector"]["matchLabels"],
            redis_labels
        ));
        let only_from = &redis_policy["spec"]["ingress"][0]["from"];
        assert_eq!(only_from.as_array().unwrap().len(), 1);
        assert!(selects(
            &only_from[0]["podSelector"]["matchLabels"],
            pod_labels
        ));
        let redis_url = container["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "REDIS_URL")
            .expect("REDIS_URL env");
        assert_eq!(
            redis_url["value"],
            format!(
                "redis://:$(REDIS_PASSWORD)@{}:6379/0",
                redis_service["metadata"]["name"].as_str().unwrap()
            )
        );

        // Istio: the VirtualService is bound to the Gateway in the stack.
        let vs = find(objects, "VirtualService", "mcp-agent-vs");
        for gateway in vs["spec"]["gateways"].as_array().unwrap() {
            find(objects, "Gateway", gateway.as_str().unwrap());
        }
    }
}

#[test]
fn the_agent_deployment_is_hardened_and_probed() {
    let Some(overlays) = rendered() else { return };
    for (overlay, objects) in &overlays {
        let deployment = find(objects, "Deployment", "mcp-agent");
        let spec = &deployment["spec"];
        assert!(
            spec.get("replicas").is_none(),
            "{overlay}: the HPA owns the replica count"
        );
        assert_eq!(
            spec["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
        );
        let pod = &spec["template"]["spec"];
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        let anti = &pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            [0];
        assert_eq!(
            anti["podAffinityTerm"]["topologyKey"],
            "kubernetes.io/hostname"
        );
        let container = agent_container(deployment);
        assert_eq!(container["image"], "slo-check:dev");
        assert_eq!(
            container["args"],
            json!(["agent", "--listen", "0.0.0.0:8080", "--allow-non-loopback"])
        );
        let security = &container["securityContext"];
        assert_eq!(security["readOnlyRootFilesystem"], true);
        assert_eq!(security["allowPrivilegeEscalation"], false);
        assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
        for (probe, path) in [
            ("startupProbe", "/health"),
            ("livenessProbe", "/health"),
            ("readinessProbe", "/ready"),
        ] {
            assert_eq!(
                container[probe]["httpGet"]["path"], path,
                "{overlay}: {probe}"
            );
        }
        for bound in ["requests", "limits"] {
            let resources = &container["resources"][bound];
            assert!(resources["cpu"].is_string() && resources["memory"].is_string());
        }
    }
}

#[test]
fn overlays_differ_only_where_they_should() {
    let Some(overlays) = rendered() else { return };
    let [(_, kind), (_, gpu)] = overlays.as_slice() else {
        panic!("two overlays")
    };
    let kind_agent = agent_container(find(kind, "Deployment", "mcp-agent"));
    assert_eq!(
        kind_agent["imagePullPolicy"], "Never",
        "kind: image comes from `kind load`"
    );
    assert!(
        kind_agent["resources"]["limits"]
            .get("nvidia.com/gpu")
            .is_none()
    );

    let gpu_deployment = find(gpu, "Deployment", "mcp-agent");
    let gpu_agent = agent_container(gpu_deployment);
    assert_eq!(gpu_agent["resources"]["requests"]["nvidia.com/gpu"], "1");
    assert_eq!(gpu_agent["resources"]["limits"]["nvidia.com/gpu"], "1");
    assert_eq!(gpu_agent["imagePullPolicy"], "IfNotPresent");
    let pod = &gpu_deployment["spec"]["template"]["spec"];
    assert_eq!(
        pod["nodeSelector"],
        json!({"nvidia.com/gpu.present": "true"})
    );
    assert_eq!(
        pod["tolerations"],
        json!([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])
    );
    let quota = find(gpu, "ResourceQuota", "mcp-agents-quota");
    assert_eq!(quota["spec"]["hard"]["requests.nvidia.com/gpu"], "10");
    // Redis: a smaller volume on kind, the base's on gpu; the template keeps its labels.
    for (objects, storage) in [(kind, "256Mi"), (gpu, "1Gi")] {
        let template = &find(objects, "StatefulSet", "redis")["spec"]["volumeClaimTemplates"][0];
        assert_eq!(
            template["spec"]["resources"]["requests"]["storage"],
            storage
        );
        assert_eq!(
            template["metadata"]["labels"]["app.kubernetes.io/name"],
            "redis"
        );
    }
    // The overlays' patches keep the base's hardening (a strategic merge, not a replace).
    assert_eq!(gpu_agent["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        kind_agent["securityContext"]["readOnlyRootFilesystem"],
        true
    );
}

/// `slo-check agent`'s flags, as the binary parses them.
#[derive(Debug, Parser)]
struct AgentCli {
    #[command(flatten)]
    agent: AgentArgs,
}

#[test]
fn the_agent_settings_parse_with_the_agents_own_flags() {
    let Some(overlays) = rendered() else { return };
    let command = AgentCli::command();
    for (overlay, objects) in &overlays {
        let deployment = find(objects, "Deployment", "mcp-agent");
        let config = find_generated(objects, "ConfigMap", "mcp-agent-config-");
        let args: Vec<String> = agent_container(deployment)["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(args[0], "agent");
        // The container's args, then each AGENT_* variable as the flag that reads it.
        let mut argv = vec!["slo-check-agent".to_owned()];
        argv.extend(args[1..].iter().cloned());
        for (name, value) in config["data"].as_object().unwrap() {
            let arg = command
                .get_arguments()
                .find(|a| a.get_env().is_some_and(|e| e == name.as_str()))
                .unwrap_or_else(|| panic!("{overlay}: {name} is not a `slo-check agent` variable"));
            argv.push(format!(
                "--{}={}",
                arg.get_long().unwrap(),
                value.as_str().unwrap()
            ));
        }
        let cli = AgentCli::try_parse_from(&argv)
            .unwrap_or_else(|e| panic!("{overlay}: {argv:?} does not parse:\n{e}"));
        let agent = slo_check::commands::agent::config(cli.agent)
            .unwrap_or_else(|e| panic!("{overlay}: agent settings rejected: {e}"));
        assert_eq!(agent.listen.port(), 8080);
        // Real CPU per workflow, so metrics-server and the CPU-based HPA see the load.
        assert_eq!(agent.cpu_mode, CpuMode::Burn, "{overlay}");
    }
}

#[test]
fn the_secret_comes_from_the_deploy_time_environment() {
    let Some(kubectl) = kubectl() else { return };
    // Rendered from the environment, via scripts/stack-secrets.sh.
    let copy = StackCopy::with_secrets();
    let objects = copy.render(&kubectl, "kind");
    let secret = find_generated(&objects, "Secret", "mcp-agent-secrets-");
    let encoded = base64::engine::general_purpose::STANDARD.encode(TEST_REDIS_PASSWORD);
    assert_eq!(secret["data"], json!({"REDIS_PASSWORD": encoded}));

    // Without secrets.env nothing renders, and kustomize names the missing file.
    let bare = StackCopy::bare();
    let out = bare.kustomize(&kubectl, "kind");
    assert!(!out.status.success(), "rendered without secrets.env");
    assert!(String::from_utf8_lossy(&out.stderr).contains("secrets.env"));

    // The script refuses an unset variable, naming it.
    let out = bare.stack_secrets(None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("$REDIS_PASSWORD is not set"));
    assert!(!bare.stack.join("base/secrets.env").exists());

    // ... and one that would break REDIS_URL (it is put there unescaped).
    let out = bare.stack_secrets(Some("base64/with+slash="));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("$REDIS_PASSWORD may hold only"));
    assert!(!bare.stack.join("base/secrets.env").exists());
}

#[test]
fn no_secret_value_is_committed() {
    let out = std::process::Command::new("git")
        .args(["ls-files", "--", "stack"])
        .current_dir(root())
        .output()
        .expect("git ls-files");
    if !out.status.success() {
        eprintln!("SKIPPED: not a git work tree");
        return;
    }
    let files = String::from_utf8(out.stdout).unwrap();
    assert!(
        !files.lines().any(|f| f.ends_with("secrets.env")),
        "{files}"
    );
    let ignored = std::process::Command::new("git")
        .args(["check-ignore", "-q", "stack/base/secrets.env"])
        .current_dir(root())
        .status()
        .expect("git check-ignore");
    assert!(
        ignored.success(),
        "stack/base/secrets.env must be git-ignored"
    );
    let kustomization = yaml(&root().join("stack/base/kustomization.yaml"));
    for generator in kustomization["secretGenerator"].as_array().unwrap() {
        assert!(
            generator.get("literals").is_none(),
            "secret literals in git"
        );
        assert_eq!(generator["envs"], json!(["secrets.env"]));
    }
}

fn rendered_kind(name: &str) -> Option<Value> {
    let kubectl = kubectl()?;
    let objects = StackCopy::with_secrets().render(&kubectl, "kind");
    objects.into_iter().find(|o| o["kind"] == name)
}

#[test]
fn a_destination_rule_with_circuit_breaker_is_rejected() {
    let mut dr = json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "seed-dr", "namespace": "mcp-agents"},
        "spec": {
            "host": "mcp-agent-service",
            "trafficPolicy": {
                "loadBalancer": {"simple": "LEAST_CONN"},
                "outlierDetection": {"consecutive5xxErrors": 5, "interval": "10s"}
            }
        }
    });
    assert_eq!(validate(&dr), Ok(Checked::CrdSchema));
    // The seeds' field: Istio has no such thing (connectionPool + outlierDetection do it).
    dr["spec"]["trafficPolicy"]["circuitBreaker"] = json!({"maxConnections": 100});
    let errors = validate(&dr).expect_err("circuitBreaker must be rejected");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("/spec/trafficPolicy") && e.contains("circuitBreaker")),
        "{errors:?}"
    );
    // And an unknown load balancer is rejected by the schema's enum.
    let mut lb = dr.clone();
    lb["spec"]["trafficPolicy"]
        .as_object_mut()
        .unwrap()
        .remove("circuitBreaker");
    lb["spec"]["trafficPolicy"]["loadBalancer"]["simple"] = json!("FASTEST");
    assert!(validate(&lb).is_err());
}

#[test]
fn a_misspelt_virtual_service_field_is_rejected() {
    let Some(mut vs) = rendered_kind("VirtualService") else {
        return;
    };
    assert_eq!(validate(&vs), Ok(Checked::CrdSchema));
    let route = vs["spec"]["http"][0].as_object_mut().unwrap();
    let timeout = route.remove("timeout").unwrap();
    route.insert("timeOut".into(), timeout);
    let errors = validate(&vs).expect_err("timeOut is not a field");
    assert!(errors.iter().any(|e| e.contains("timeOut")), "{errors:?}");
}

#[test]
fn a_misspelt_service_monitor_field_is_rejected() {
    let Some(mut monitor) = rendered_kind("ServiceMonitor") else {
        return;
    };
    assert_eq!(validate(&monitor), Ok(Checked::CrdSchema));
    monitor["spec"]["endpoints"][0]["scrapeInterval"] = json!("15s");
    let errors = validate(&monitor).expect_err("scrapeInterval is not a field");
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("/spec/endpoints/0") && e.contains("scrapeInterval")),
        "{errors:?}"
    );
}

#[test]
fn a_deployment_with_a_misspelt_field_fails_the_round_trip() {
    let Some(deployment) = rendered_kind("Deployment") else {
        return;
    };
    assert_eq!(validate(&deployment), Ok(Checked::RoundTrip));

    let mut misspelt = deployment.clone();
    let container = &mut misspelt["spec"]["template"]["spec"]["containers"][0];
    let probe = container
        .as_object_mut()
        .unwrap()
        .remove("readinessProbe")
        .unwrap();
    container["readynessProbe"] = probe;
    let errors = validate(&misspelt).expect_err("readynessProbe is not a field");
    assert_eq!(
        errors,
        ["/spec/template/spec/containers/0/readynessProbe: dropped (not a field of the API type)"]
    );

    let mut wrong_type = deployment.clone();
    wrong_type["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = json!(true);
    assert!(
        validate(&wrong_type).is_err(),
        "maxSurge must be an int or a string"
    );

    let mut unknown_kind = deployment;
    unknown_kind["apiVersion"] = json!("apps/v1beta1");
    let errors = validate(&unknown_kind).unwrap_err();
    assert!(errors[0].contains("apps/v1beta1 Deployment"), "{errors:?}");
}

#[test]
fn the_dockerfile_builds_the_agent_image_as_non_root() {
    let path: PathBuf = root().join("Dockerfile");
    let text = std::fs::read_to_string(&path).expect("Dockerfile");
    let stages = text.lines().filter(|l| l.starts_with("FROM ")).count();
    assert!(stages >= 2, "multi-stage: {stages} FROM lines");
    let user = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    assert!(
        !["root", "0", "0:0"].contains(&user.trim()),
        "runs as {user}"
    );
    assert!(text.contains(r#"ENTRYPOINT ["/usr/local/bin/slo-check"]"#));
    assert!(text.contains(r#"CMD ["agent", "--listen", "0.0.0.0:8080", "--allow-non-loopback"]"#));
    assert!(root().join(".dockerignore").is_file());
}

/// `slo-check stack scrape-config ARGS --stack <copy>` with KUBECONFIG=`kubeconfig`:
/// (exit code, stdout, stderr). Renders only; no cluster is reached.
fn scrape_config(
    copy: &StackCopy,
    kubeconfig: &std::path::Path,
    args: &[&str],
) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("slo-check"))
        .args(["stack", "scrape-config", "--stack"])
        .arg(&copy.stack)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("run slo-check stack scrape-config");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_stacks_service_monitor_becomes_scrape_jobs_that_promtool_accepts() {
    if kubectl().is_none() {
        return;
    }
    let Some(promtool) = crate::support::prom::kubernetes_sd_binary("promtool") else {
        return;
    };
    let copy = StackCopy::bare();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig.yaml");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\ncurrent-context: test\ncontexts: [{name: test, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]\nusers: [{name: u, user: {token: t}}]\n",
    )
    .unwrap();
    let (code, config, stderr) = scrape_config(&copy, &kubeconfig, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        config.contains(&format!(
            "kubeconfig_file: {} (from KUBECONFIG); Prometheus uses its current context, test.",
            kubeconfig.display()
        )),
        "{config}"
    );
    let jobs: Value = serde_saphyr::from_str(&config).unwrap();
    let job = &jobs["scrape_configs"][0];
    assert_eq!(job["job_name"], "serviceMonitor/mcp-agents/mcp-agent/0");
    assert_eq!(job["honor_labels"], true, "{job:#}");
    assert_eq!(
        (
            &job["scrape_interval"],
            &job["scrape_timeout"],
            &job["metrics_path"]
        ),
        (&json!("15s"), &json!("10s"), &json!("/metrics"))
    );
    let sd = &job["kubernetes_sd_configs"][0];
    assert_eq!(sd["namespaces"]["names"], json!(["mcp-agents"]));
    assert_eq!(sd["kubeconfig_file"], kubeconfig.display().to_string());
    assert_eq!(
        job["relabel_configs"][0],
        json!({"action": "keep", "regex": "(mcp-agent);true", "source_labels": [
            "__meta_kubernetes_service_label_app_kubernetes_io_name",
            "__meta_kubernetes_service_labelpresent_app_kubernetes_io_name"]})
    );
    // Prometheus's own config checker accepts it as prometheus.yml's scrape_configs
    // (upstream's: Debian's has no kubernetes_sd_configs).
    let prometheus_yml = dir.path().join("prometheus.yml");
    std::fs::write(
        &prometheus_yml,
        format!("global: {{scrape_interval: 15s}}\n{config}"),
    )
    .unwrap();
    let check = std::process::Command::new(promtool)
        .args(["check", "config"])
        .arg(&prometheus_yml)
        .output()
        .expect("run promtool");
    assert!(
        check.status.success(),
        "promtool check config:\n{}{}\n{config}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    // Another context than the file's current one cannot be given to Prometheus.
    let (code, _, stderr) = scrape_config(&copy, &kubeconfig, &["--context", "prod"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--context prod") && stderr.contains("is test"),
        "{stderr}"
    );

    // A ServiceMonitor field it cannot translate: the overlay, the monitor and the field.
    let overlay = copy.stack.join("overlays/relabelled");
    std::fs::create_dir_all(&overlay).unwrap();
    std::fs::write(
        overlay.join("kustomization.yaml"),
        "resources: [../kind]\npatches:\n  - target: {kind: ServiceMonitor, name: mcp-agent}\n    patch: '[{\"op\": \"add\", \"path\": \"/spec/endpoints/0/relabelings\", \"value\": []}]'\n",
    )
    .unwrap();
    let (code, _, stderr) = scrape_config(&copy, &kubeconfig, &["--overlay", "relabelled"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("overlays/relabelled: ServiceMonitor mcp-agents/mcp-agent: spec.endpoints[0].relabelings: not translated"),
        "{stderr}"
    );
}
