//! The Kubernetes API-server double (tests/support/kube_double/) exercised with the real kube
//! client in-process: discovery, server-side apply, patches, fake controllers, watches
//! (incl. 410 Gone recovery), namespace termination, and port-forward; and the gateway's
//! Envoy admin read through that port-forward (a fake admin on port 15000).

use crate::support;
use std::future::Future;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::discovery::Discovery;
use kube::runtime::wait::{Condition, await_condition};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

use crate::support::envoy_admin::{FakeEnvoyAdmin, istio_to_envoy};
use crate::support::kube_double::{ApiServerDouble, DoubleOptions, Failure};
use slo_check::platform::kube::envoy::{self, EnvoyAdmin};
use slo_check::platform::kube::{KubeRequest, KubeSettings};
use slo_check::scenario::PlatformRefs;
use slo_check::target::{DataPlane, GatewayCounters};

/// Every test is bounded.
async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

fn apply() -> PatchParams {
    PatchParams::apply("slo-check").force()
}

fn deployment(name: &str, replicas: Option<u32>, image: &str) -> Value {
    let mut d = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": image,
                    "ports": [{"containerPort": 8080}]}]},
            },
        },
    });
    if let Some(n) = replicas {
        d["spec"]["replicas"] = json!(n);
    }
    d
}

fn hpa(name: &str, target: &str) -> Value {
    json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": 1,
            "maxReplicas": 10,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70}}}],
        },
    })
}

fn api_status(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

#[tokio::test]
async fn discovery_finds_the_groups_the_stack_needs() {
    let double = ApiServerDouble::start(DoubleOptions::default()).await;
    let client = double.client();
    let version = bounded("version", client.apiserver_version())
        .await
        .unwrap();
    assert_eq!(version.git_version, "v1.34.1");

    for aggregated in [false, true] {
        let discovery = Discovery::new(client.clone());
        let discovery = if aggregated {
            bounded("aggregated discovery", discovery.run_aggregated()).await
        } else {
            bounded("discovery", discovery.run()).await
        }
        .unwrap();
        for (group, kind) in [
            ("networking.istio.io", "VirtualService"),
            ("networking.istio.io", "DestinationRule"),
            ("networking.istio.io", "Gateway"),
            ("monitoring.coreos.com", "ServiceMonitor"),
            ("monitoring.coreos.com", "PrometheusRule"),
            ("metrics.k8s.io", "PodMetrics"),
            ("apps", "Deployment"),
            ("autoscaling", "HorizontalPodAutoscaler"),
            ("policy", "PodDisruptionBudget"),
            ("rbac.authorization.k8s.io", "RoleBinding"),
            ("networking.k8s.io", "NetworkPolicy"),
            ("", "Namespace"),
            ("", "Pod"),
        ] {
            let found = discovery.get(group).and_then(|g| g.recommended_kind(kind));
            assert!(found.is_some(), "{group}/{kind} (aggregated: {aggregated})");
        }
        let (_, caps) = discovery
            .get("")
            .and_then(|g| g.recommended_kind("Pod"))
            .unwrap();
        assert!(
            caps.subresources
                .iter()
                .any(|(ar, _)| ar.plural == "portforward"),
            "pods/portforward is discovered (aggregated: {aggregated})"
        );
        let (_, caps) = discovery
            .get("apps")
            .and_then(|g| g.recommended_kind("Deployment"))
            .unwrap();
        assert!(
            caps.subresources
                .iter()
                .any(|(ar, _)| ar.plural == "status")
        );
    }
    let requests = double.requests();
    assert!(
        requests.iter().any(|r| r.path == "/apis"
            && r.accept
                .as_deref()
                .is_some_and(|a| a.contains("apidiscovery.k8s.io"))),
        "run_aggregated asks /apis with the aggregated Accept"
    );
}

#[tokio::test]
async fn groups_can_be_turned_off() {
    let double = ApiServerDouble::start(DoubleOptions {
        istio: false,
        monitoring: false,
        metrics: false,
        ..DoubleOptions::default()
    })
    .await;
    let client = double.client();
    for aggregated in [false, true] {
        let discovery = Discovery::new(client.clone());
        let discovery = if aggregated {
            discovery.run_aggregated().await
        } else {
            discovery.run().await
        }
        .unwrap();
        assert!(!discovery.has_group("networking.istio.io"));
        assert!(!discovery.has_group("monitoring.coreos.com"));
        assert!(!discovery.has_group("metrics.k8s.io"));
        assert!(discovery.has_group("apps"));
    }
    let vs: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client,
        "default",
        &kube::api::ApiResource {
            group: "networking.istio.io".into(),
            version: "v1".into(),
            api_version: "networking.istio.io/v1".into(),
            kind: "VirtualService".into(),
            plural: "virtualservices".into(),
        },
    );
    let error = vs.list(&ListParams::default()).await.unwrap_err();
    assert_eq!(api_status(&error), Some(404));
}

#[tokio::test]
async fn a_failing_server_answers_503_or_401() {
    let double = ApiServerDouble::start(DoubleOptions {
        failure: Some(Failure::Unavailable),
        ..DoubleOptions::default()
    })
    .await;
    // kube's default client retries 503 (up to 15 times, exponential from 5 ms).
    let retrying = double.client();
    let gave_up =
        tokio::time::timeout(Duration::from_millis(500), retrying.apiserver_version()).await;
    assert!(gave_up.is_err(), "still retrying after 500 ms: {gave_up:?}");
    let attempts = double
        .requests()
        .iter()
        .filter(|r| r.path == "/version")
        .count();
    assert!(attempts >= 3, "{attempts} attempts");

    let mut config = double.config();
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();
    let error = bounded("version", client.apiserver_version())
        .await
        .unwrap_err();
    assert_eq!(api_status(&error), Some(503), "{error:?}");
    double.set_failure(Some(Failure::Unauthorized));
    let Err(error) = Discovery::new(client.clone()).run().await else {
        panic!("discovery succeeded against a 401 server");
    };
    assert_eq!(api_status(&error), Some(401), "{error:?}");
    double.set_failure(None);
    assert!(client.apiserver_version().await.is_ok());
}

#[tokio::test]
async fn server_side_apply_creates_then_updates() {
    let double = ApiServerDouble::start(DoubleOptions::default()).await;
    let api: Api<Deployment> = Api::namespaced(double.client(), "default");
    let created = bounded(
        "apply",
        api.patch(
            "web",
            &apply(),
            &Patch::Apply(deployment("web", Some(2), "web:1")),
        ),
    )
    .await
    .unwrap();
    let meta = &created.metadata;
    assert_eq!(meta.generation, Some(1));
    assert!(meta.uid.is_some() && meta.creation_timestamp.is_some());
    let managers: Vec<_> = meta
        .managed_fields
        .iter()
        .flatten()
        .map(|m| (m.manager.clone(), m.operation.clone()))
        .collect();
    assert_eq!(managers, [(Some("slo-check".into()), Some("Apply".into()))]);
    let rv = |d: &Deployment| {
        d.metadata
            .resource_version
            .clone()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };

    let configmaps: Api<ConfigMap> = Api::namespaced(double.client(), "default");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}});
    let first = configmaps
        .patch("c", &apply(), &Patch::Apply(cm.clone()))
        .await
        .unwrap();
    let again = configmaps
        .patch("c", &apply(), &Patch::Apply(cm))
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version, first.metadata.resource_version,
        "an unchanged apply writes nothing"
    );

    let mut relabelled = deployment("web", Some(2), "web:1");
    relabelled["metadata"]["labels"]["tier"] = json!("front");
    let relabelled = api
        .patch("web", &apply(), &Patch::Apply(relabelled))
        .await
        .unwrap();
    assert_eq!(
        relabelled.metadata.generation,
        Some(1),
        "labels are not spec"
    );
    assert!(rv(&relabelled) > rv(&created));

    let updated = api
        .patch(
            "web",
            &apply(),
            &Patch::Apply(deployment("web", Some(3), "web:2")),
        )
        .await
        .unwrap();
    assert_eq!(updated.metadata.generation, Some(2));
    assert!(rv(&updated) > rv(&relabelled));
    assert!(
        !updated.labels().contains_key("tier"),
        "a field the manager stopped applying is removed"
    );

    let dry = api
        .patch(
            "web",
            &apply().dry_run(),
            &Patch::Apply(deployment("web", Some(5), "web:3")),
        )
        .await
        .unwrap();
    assert_eq!(dry.spec.replicas, Some(5));
    let stored = double
        .get_object("apps/v1", "deployments", Some("default"), "web")
        .unwrap();
    assert_eq!(
        stored["spec"]["replicas"],
        json!(3),
        "dryRun=All stores nothing"
    );

    let applies: Vec<_> = double
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path.contains("deployments"))
        .collect();
    assert_eq!(applies.len(), 4);
    for r in &applies {
        assert_eq!(
            r.content_type.as_deref(),
            Some("application/apply-patch+yaml")
        );
        assert_eq!(r.param("fieldManager").as_deref(), Some("slo-check"));
        assert_eq!(r.param("force").as_deref(), Some("true"));
        assert_eq!(r.path, "/apis/apps/v1/namespaces/default/deployments/web");
    }
}

use kube::ResourceExt as _;

#[tokio::test]
async fn apply_without_field_manager_and_into_missing_namespace_are_refused() {
    let double = ApiServerDouble::start(DoubleOptions::default()).await;
    let client = double.client();
    let request = hyper::Request::patch("/api/v1/namespaces/default/configmaps/c?force=true")
        .header("content-type", "application/apply-patch+yaml")
        .body(br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}"#.to_vec())
        .unwrap();
    let error = client.request_text(request).await.unwrap_err();
    assert_eq!(api_status(&error), Some(422), "{error:?}");

    let api: Api<ConfigMap> = Api::namespaced(client, "nowhere");
    let error = api
        .patch(
            "c",
            &apply(),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
            ),
        )
        .await
        .unwrap_err();
    match &error {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 404);
            assert_eq!(status.message, "namespaces \"nowhere\" not found");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn json_patch_with_a_failing_test_is_422() {
    let double = ApiServerDouble::start(DoubleOptions::default()).await;
    let api: Api<ConfigMap> = Api::namespaced(double.client(), "default");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}});
    api.patch("c", &apply(), &Patch::Apply(cm)).await.unwrap();

    let failing: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/data/k", "value": "other"},
        {"op": "replace", "path": "/data/k", "value": "w"},
    ]))
    .unwrap();
    let error = api
        .patch("c", &PatchParams::default(), &Patch::<()>::Json(failing))
        .await
        .unwrap_err();
    match &error {
        kube::Error::Api(status) => {
            assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
        }
        other => panic!("{other:?}"),
    }
    let passing: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/data/k", "value": "v"},
        {"op": "replace", "path": "/data/k", "value": "w"},
    ]))
    .unwrap();
    let patched = api
        .patch("c", &PatchParams::default(), &Patch::<()>::Json(passing))
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["k"], "w");

    let merged = api
        .patch(
            "c",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"x": "y"}})),
        )
        .await
        .unwrap();
    assert_eq!(merged.data.unwrap().len(), 2);
    let requests = double.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.content_type.as_deref() == Some("application/json-patch+json"))
    );
    assert!(
        requests
            .iter()
            .any(|r| r.content_type.as_deref() == Some("application/merge-patch+json"))
    );
}

/// Rollout complete: the controller saw this generation and every desired pod is
/// updated and available.
fn rollout_complete() -> impl Condition<Deployment> {
    |d: Option<&Deployment>| {
        let Some(d) = d else { return false };
        let (Some(status), Some(generation)) = (&d.status, d.metadata.generation) else {
            return false;
        };
        let desired = status.replicas.unwrap_or(0);
        status.observed_generation.unwrap_or(0) >= generation
            && status.updated_replicas.unwrap_or(0) == desired
            && status.available_replicas.unwrap_or(0) == desired
            && desired > 0
    }
}

#[tokio::test]
async fn a_deployment_becomes_complete_with_pods() {
    let double = ApiServerDouble::start(DoubleOptions::default()).await;
    let client = double.client();
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    api.patch(
        "web",
        &apply(),
        &Patch::Apply(deployment("web", Some(3), "web:1")),
    )
    .await
    .unwrap();
    let done = bounded(
        "rollout",
        await_condition(api.clone(), "web", rollout_complete()),
    )
    .await
    .unwrap()
    .unwrap();
    let status = done.status.unwrap();
    assert_eq!(status.ready_replicas, Some(3));
    let conditions = status.conditions.unwrap();
    let progressing = conditions
        .iter()
        .find(|c| c.type_.as_deref() == Some("Progressing"))
        .unwrap();
    assert_eq!(
        progressing.reason.as_deref(),
        Some("NewReplicaSetAvailable")
    );

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let listed = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 3);
    for pod in &listed.items {
        assert_eq!(
            pod.status.as_ref().unwrap().phase.as_deref(),
            Some("Running")
        );
    }

    let pod_metrics: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &kube::api::ApiResource {
            group: "metrics.k8s.io".into(),
            version: "v1beta1".into(),
            api_version: "metrics.k8s.io/v1beta1".into(),
            kind: "PodMetrics".into(),
            plural: "pods".into(),
        },
    );
    let metrics = pod_metrics
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(metrics.items.len(), 3);
    assert_eq!(
        metrics.items[0].data["containers"][0]["usage"]["cpu"],
        "10m"
    );

    // A new template replaces the pods; the first status after it is not complete.
    api.patch(
        "web",
        &apply(),
        &Patch::Apply(deployment("web", Some(2), "web:2")),
    )
    .await
    .unwrap();
    let done = bounded(
        "second rollout",
        await_condition(api, "web", rollout_complete()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(done.status.unwrap().observed_generation, Some(2));
    let listed = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);
    assert!(
        listed
            .items
            .iter()
            .all(|p| p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("web:2"))
    );
    let history = double.deployment_history();
    let incomplete_after_update = history.iter().any(|r| {
        r.status["observedGeneration"] == json!(2) && r.status["updatedReplicas"] == json!(0)
    });
    assert!(incomplete_after_update, "{history:#?}");
}

#[tokio::test]
async fn the_hpa_follows_its_script_and_watchers_see_every_status() {
    let double = ApiServerDouble::start(DoubleOptions {
        hpa_script: vec![
            (Duration::ZERO, 2),
            (Duration::from_millis(400), 4),
            (Duration::from_millis(800), 3),
        ],
        ready_after: Duration::from_millis(100),
        ..DoubleOptions::default()
    })
    .await;
    let client = double.client();
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "default");
    let observed = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, Value)>::new()));
    let sink = observed.clone();
    let watch = tokio::spawn(
        watcher(hpas.clone(), watcher::Config::default())
            .applied_objects()
            .try_for_each(move |hpa| {
                if let Some(status) = &hpa.status {
                    sink.lock().unwrap().push((
                        hpa.resource_version().unwrap_or_default(),
                        serde_json::to_value(status).unwrap(),
                    ));
                }
                futures::future::ready(Ok(()))
            }),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deployments
        .patch(
            "web",
            &apply(),
            &Patch::Apply(deployment("web", None, "web:1")),
        )
        .await
        .unwrap();
    hpas.patch("web", &apply(), &Patch::Apply(hpa("web", "web")))
        .await
        .unwrap();

    // Wait until the script is over and the Deployment has caught up with 3.
    bounded("scripted scale", async {
        loop {
            let d = deployments.get("web").await.unwrap();
            let ready = d.status.and_then(|s| s.ready_replicas);
            let current = double
                .hpa_history()
                .last()
                .map(|r| r.status["currentReplicas"].clone());
            if ready == Some(3) && current == Some(json!(3)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let history = double.hpa_history();
    let last_rv = history.last().unwrap().resource_version.clone();
    bounded("watcher catches up", async {
        while !observed
            .lock()
            .unwrap()
            .iter()
            .any(|(rv, _)| *rv == last_rv)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    watch.abort();

    let observed = observed.lock().unwrap().clone();
    let emitted: Vec<(String, Value)> = history
        .iter()
        .map(|r| (r.resource_version.clone(), r.status.clone()))
        .collect();
    assert_eq!(observed, emitted);
    let mut desired: Vec<u64> = emitted
        .iter()
        .map(|(_, s)| s["desiredReplicas"].as_u64().unwrap())
        .collect();
    desired.dedup();
    assert_eq!(desired, [2, 4, 3]);
    let deployment_replicas: Vec<u64> = double
        .deployment_history()
        .iter()
        .map(|r| r.status["readyReplicas"].as_u64().unwrap())
        .collect();
    assert!(deployment_replicas.contains(&4), "{deployment_replicas:?}");
    assert_eq!(deployment_replicas.last(), Some(&3));
}

#[tokio::test]
async fn a_watch_from_a_compacted_version_gets_410_and_the_watcher_relists() {
    let double = ApiServerDouble::start(DoubleOptions::default()).await;
    let client = double.client();
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm =
        |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
    api.patch("a", &apply(), &Patch::Apply(cm("a")))
        .await
        .unwrap();

    let mut events = watcher(api.clone(), watcher::Config::default()).boxed();
    let mut seen_gone = false;
    let mut inits = 0;
    bounded("first list", async {
        loop {
            match events.next().await.unwrap() {
                Ok(watcher::Event::InitDone) => break,
                Ok(watcher::Event::Init) => inits += 1,
                Ok(_) => {}
                Err(e) => panic!("{e:?}"),
            }
        }
    })
    .await;
    // The watch is open once a new object arrives through it.
    api.patch("a2", &apply(), &Patch::Apply(cm("a2")))
        .await
        .unwrap();
    bounded("live event", async {
        loop {
            match events.next().await.unwrap() {
                Ok(watcher::Event::Apply(o)) if o.name_any() == "a2" => break,
                Ok(_) => {}
                Err(e) => panic!("{e:?}"),
            }
        }
    })
    .await;
    double.compact();
    api.patch("b", &apply(), &Patch::Apply(cm("b")))
        .await
        .unwrap();
    let relisted = bounded("re-list", async {
        let mut names = vec![];
        loop {
            match events.next().await.unwrap() {
                Err(watcher::Error::WatchError(status)) => {
                    assert_eq!(status.code, 410);
                    seen_gone = true;
                }
                Err(other) => panic!("{other:?}"),
                Ok(watcher::Event::Init) => inits += 1,
                Ok(watcher::Event::InitApply(o)) => names.push(o.name_any()),
                Ok(watcher::Event::InitDone) => break names,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(seen_gone, "the resumed watch got 410 Gone");
    assert_eq!(inits, 2);
    assert_eq!(relisted, ["a", "a2", "b"]);
    // The resumed watch from the old version: HTTP 200 with one ERROR event (410).
    let watches: Vec<_> = double
        .requests()
        .into_iter()
        .filter(|r| r.param("watch").as_deref() == Some("true"))
        .collect();
    assert!(watches.len() >= 2, "{watches:#?}");
    let first = &watches[0];
    assert_eq!(first.param("allowWatchBookmarks").as_deref(), Some("true"));
    assert_eq!(first.param("timeoutSeconds").as_deref(), Some("290"));
    assert!(first.param("resourceVersion").is_some());
    assert!(first.param("sendInitialEvents").is_none());
}

#[tokio::test]
async fn selectors_and_bookmarks_apply_to_lists_and_watches() {
    let double = ApiServerDouble::start(DoubleOptions {
        bookmark_interval: Duration::from_millis(100),
        ..DoubleOptions::default()
    })
    .await;
    let client = double.client();
    double.create_namespace("other", &[("slo-check.io/faults", "allowed")]);
    for (ns, name, tier) in [
        ("default", "a", "x"),
        ("default", "b", "y"),
        ("other", "c", "x"),
    ] {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": {"tier": tier, "app": "t"}}});
        api.patch(name, &apply(), &Patch::Apply(cm)).await.unwrap();
    }
    let all: Api<ConfigMap> = Api::all(client.clone());
    let names = |list: kube::api::ObjectList<ConfigMap>| -> Vec<String> {
        list.items.iter().map(|c| c.name_any()).collect()
    };
    let x = all
        .list(&ListParams::default().labels("tier=x,app=t"))
        .await
        .unwrap();
    assert_eq!(names(x), ["a", "c"]);
    let by_name = all
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .unwrap();
    assert_eq!(names(by_name), ["b"]);
    let by_ns = all
        .list(&ListParams::default().fields("metadata.namespace=other"))
        .await
        .unwrap();
    assert_eq!(names(by_ns), ["c"]);
    let set = all
        .list(&ListParams::default().labels("tier in (x,y),tier!=y"))
        .await
        .unwrap();
    assert_eq!(names(set), ["a", "c"]);
    let ns: Api<Namespace> = Api::all(client.clone());
    let other = ns.get("other").await.unwrap();
    assert_eq!(other.labels()["slo-check.io/faults"], "allowed");
    assert_eq!(other.labels()["kubernetes.io/metadata.name"], "other");

    let stream = all
        .watch(
            &kube::api::WatchParams::default()
                .labels("tier=x")
                .timeout(1),
            "0",
        )
        .await
        .unwrap();
    let events: Vec<_> = bounded("watch with timeout", stream.try_collect::<Vec<_>>())
        .await
        .unwrap();
    let added: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            kube::api::WatchEvent::Added(c) => Some(c.name_any()),
            _ => None,
        })
        .collect();
    assert_eq!(added, ["a", "c"]);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, kube::api::WatchEvent::Bookmark(_))),
        "bookmarks every 100 ms within a 1 s watch"
    );
}

#[tokio::test]
async fn deleting_a_namespace_removes_its_objects() {
    let double = ApiServerDouble::start(DoubleOptions {
        namespace_delete_delay: Duration::from_millis(300),
        ..DoubleOptions::default()
    })
    .await;
    let client = double.client();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "run-1"}});
    namespaces
        .patch("run-1", &apply(), &Patch::Apply(ns))
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "run-1");
    deployments
        .patch(
            "web",
            &apply(),
            &Patch::Apply(deployment("web", Some(1), "web:1")),
        )
        .await
        .unwrap();
    bounded(
        "rollout",
        await_condition(deployments.clone(), "web", rollout_complete()),
    )
    .await
    .unwrap();
    let deleted = namespaces
        .delete("run-1", &DeleteParams::default())
        .await
        .unwrap();
    let terminating = deleted.left().unwrap();
    assert_eq!(
        terminating.status.unwrap().phase.as_deref(),
        Some("Terminating")
    );
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "run-1");
    let refused = configmaps
        .patch(
            "c",
            &apply(),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(api_status(&refused), Some(403));
    bounded(
        "namespace gone",
        await_condition(namespaces.clone(), "run-1", |n: Option<&Namespace>| {
            n.is_none()
        }),
    )
    .await
    .unwrap();
    assert_eq!(
        api_status(&deployments.get("web").await.unwrap_err()),
        Some(404)
    );
    let pods: Api<Pod> = Api::namespaced(client, "run-1");
    assert!(
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        double
            .objects()
            .iter()
            .all(|o| o["metadata"]["namespace"] != json!("run-1"))
    );
}

#[tokio::test]
async fn port_forward_reaches_the_loopback_backend() {
    let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend_addr = backend.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = backend.accept().await {
            tokio::spawn(async move {
                let mut request = vec![0u8; 4096];
                let n = socket.read(&mut request).await.unwrap_or(0);
                let first_line = String::from_utf8_lossy(&request[..n])
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let body = format!("backend saw: {first_line}");
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    let double = ApiServerDouble::start(DoubleOptions {
        istio_gateway: Some(backend_addr),
        ..DoubleOptions::default()
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(double.client(), "istio-system");
    let gateway = pods
        .list(&ListParams::default().labels("istio=ingressgateway"))
        .await
        .unwrap();
    let name = gateway.items[0].name_any();
    assert_eq!(name, support::kube_double::ISTIO_GATEWAY_POD);

    for attempt in 0..2 {
        let mut forwarder = bounded("port-forward", pods.portforward(&name, &[8080]))
            .await
            .unwrap();
        let mut stream = forwarder.take_stream(8080).unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let request = format!("GET /attempt/{attempt} HTTP/1.1\r\nhost: gateway\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        bounded("response", stream.read_to_string(&mut response))
            .await
            .unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert!(
            response.ends_with(&format!("backend saw: GET /attempt/{attempt} HTTP/1.1")),
            "{response}"
        );
        drop(stream);
        // The backend closed its connection, so the server closed the WebSocket first;
        // kube then fails to send its own Close: join() may report SendAfterClosing.
        if let Err(error) = bounded("join", forwarder.join()).await {
            assert!(error.to_string().contains("send"), "{error}");
        }
    }
    let pf = double
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/portforward"))
        .unwrap();
    assert_eq!(pf.param("ports").as_deref(), Some("8080"));
    assert_eq!(pf.method, "GET");
}

#[tokio::test]
async fn every_object_of_the_rendered_stack_applies_and_its_workloads_become_ready() {
    let Some(kubectl) = support::stack::kubectl() else {
        return;
    };
    let mut objects = support::stack::StackCopy::with_secrets().render(&kubectl, "kind");
    objects.sort_by_key(|o| o["kind"] != json!("Namespace"));
    let double = ApiServerDouble::start(DoubleOptions {
        ready_after: Duration::from_millis(50),
        ..DoubleOptions::default()
    })
    .await;
    let client = double.client();
    let discovery = bounded("discovery", Discovery::new(client.clone()).run())
        .await
        .unwrap();
    for object in &objects {
        let what = support::stack::describe(object);
        let (group, version) = match object["apiVersion"].as_str().unwrap().split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (
                String::new(),
                object["apiVersion"].as_str().unwrap().to_string(),
            ),
        };
        let gvk =
            kube::api::GroupVersionKind::gvk(&group, &version, object["kind"].as_str().unwrap());
        let (ar, caps) = discovery
            .resolve_gvk(&gvk)
            .unwrap_or_else(|| panic!("{what}: not discovered"));
        let name = object["metadata"]["name"].as_str().unwrap();
        let namespace = object["metadata"]["namespace"].as_str();
        let api: Api<kube::api::DynamicObject> = match caps.scope {
            kube::discovery::Scope::Namespaced => {
                Api::namespaced_with(client.clone(), namespace.unwrap_or("default"), &ar)
            }
            kube::discovery::Scope::Cluster => Api::all_with(client.clone(), &ar),
        };
        bounded(&what, api.patch(name, &apply(), &Patch::Apply(object)))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let stored = double.get_object(&ar.api_version, &ar.plural, namespace, name);
        assert!(stored.is_some(), "{what} is stored");
    }
    for object in objects
        .iter()
        .filter(|o| o["kind"] == json!("Deployment") || o["kind"] == json!("StatefulSet"))
    {
        let what = support::stack::describe(object);
        let plural = if object["kind"] == json!("Deployment") {
            "deployments"
        } else {
            "statefulsets"
        };
        let namespace = object["metadata"]["namespace"].as_str();
        let name = object["metadata"]["name"].as_str().unwrap();
        bounded(&format!("{what} ready"), async {
            loop {
                let stored = double
                    .get_object("apps/v1", plural, namespace, name)
                    .unwrap();
                let status = &stored["status"];
                if status["readyReplicas"].as_u64().is_some_and(|n| n > 0)
                    && status["readyReplicas"] == status["replicas"]
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }
}

#[tokio::test]
async fn the_kubeconfig_names_cluster_user_and_context_double() {
    let double = ApiServerDouble::start(DoubleOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = double.write_kubeconfig(dir.path());
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let options = kube::config::KubeConfigOptions {
        context: Some("double".into()),
        cluster: None,
        user: None,
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .unwrap();
    assert_eq!(config.cluster_url.to_string(), format!("{}/", double.url()));
    let client = kube::Client::try_from(config).unwrap();
    let namespaces: Api<Namespace> = Api::all(client);
    let listed = bounded("list", namespaces.list(&ListParams::default()))
        .await
        .unwrap();
    assert!(listed.items.iter().any(|n| n.name_any() == "default"));
}

#[tokio::test]
async fn a_streaming_list_watcher_gets_initial_events_then_changes() {
    let double = ApiServerDouble::start(DoubleOptions::default()).await;
    let api: Api<ConfigMap> = Api::namespaced(double.client(), "default");
    let cm =
        |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
    api.patch("a", &apply(), &Patch::Apply(cm("a")))
        .await
        .unwrap();
    let mut events = watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut initial = vec![];
    bounded("initial events", async {
        loop {
            match events.next().await.unwrap().unwrap() {
                watcher::Event::InitApply(o) => initial.push(o.name_any()),
                watcher::Event::InitDone => break,
                _ => {}
            }
        }
    })
    .await;
    assert_eq!(initial, ["a"]);
    api.patch("b", &apply(), &Patch::Apply(cm("b")))
        .await
        .unwrap();
    let next = bounded("change", events.next()).await.unwrap().unwrap();
    assert!(matches!(next, watcher::Event::Apply(o) if o.name_any() == "b"));
    let first_watch = double
        .requests()
        .into_iter()
        .find(|r| r.param("watch").as_deref() == Some("true"))
        .unwrap();
    assert_eq!(
        first_watch.param("sendInitialEvents").as_deref(),
        Some("true")
    );
    assert_eq!(
        first_watch.param("resourceVersionMatch").as_deref(),
        Some("NotOlderThan")
    );
    assert_eq!(first_watch.param("resourceVersion").as_deref(), Some("0"));
}

#[tokio::test]
async fn create_get_and_delete_answer_like_the_real_server() {
    let double = ApiServerDouble::start(DoubleOptions::default()).await;
    let client = double.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"generateName": "settings-"}, "data": {"k": "v"},
    }))
    .unwrap();
    let created = api
        .create(&kube::api::PostParams::default(), &cm)
        .await
        .unwrap();
    let name = created.name_any();
    assert!(name.starts_with("settings-") && name.len() == "settings-".len() + 5);
    assert_eq!(api.get(&name).await.unwrap().data, created.data);

    let mut named = cm.clone();
    named.metadata.generate_name = None;
    named.metadata.name = Some(name.clone());
    let conflict = api
        .create(&kube::api::PostParams::default(), &named)
        .await
        .unwrap_err();
    assert_eq!(api_status(&conflict), Some(409));

    let deleted = api.delete(&name, &DeleteParams::default()).await.unwrap();
    let status = deleted
        .right()
        .expect("a ConfigMap delete answers a Status");
    assert!(status.is_success());
    match api.get(&name).await.unwrap_err() {
        kube::Error::Api(status) => {
            assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
            assert_eq!(status.message, format!("configmaps \"{name}\" not found"));
        }
        other => panic!("{other:?}"),
    }
    assert!(api.get_opt(&name).await.unwrap().is_none());
    let missing = api
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap_err();
    assert_eq!(api_status(&missing), Some(404));

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let missing = deployments.get("nope").await.unwrap_err();
    match missing {
        kube::Error::Api(status) => {
            assert_eq!(status.message, "deployments.apps \"nope\" not found")
        }
        other => panic!("{other:?}"),
    }
    deployments
        .patch(
            "web",
            &apply(),
            &Patch::Apply(deployment("web", Some(1), "web:1")),
        )
        .await
        .unwrap();
    bounded(
        "rollout",
        await_condition(deployments.clone(), "web", rollout_complete()),
    )
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let pod = pods.list(&ListParams::default()).await.unwrap().items[0].name_any();
    let deleted_pod = pods.delete(&pod, &DeleteParams::default()).await.unwrap();
    assert!(deleted_pod.left().is_some(), "a Pod delete answers the Pod");
    deployments
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn deleted_pods_are_replaced_and_ready_dips_meanwhile() {
    let double = ApiServerDouble::start(DoubleOptions::default()).await;
    let client = double.client();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deployments
        .patch(
            "web",
            &apply(),
            &Patch::Apply(deployment("web", Some(2), "web:1")),
        )
        .await
        .unwrap();
    bounded(
        "rollout",
        await_condition(deployments.clone(), "web", rollout_complete()),
    )
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let names = |list: kube::api::ObjectList<Pod>| -> Vec<String> {
        list.items.iter().map(|p| p.name_any()).collect()
    };
    let before = names(
        pods.list(&ListParams::default().labels("app=web"))
            .await
            .unwrap(),
    );
    pods.delete(&before[0], &DeleteParams::default())
        .await
        .unwrap();
    let dipped = |d: Option<&Deployment>| {
        d.and_then(|d| d.status.as_ref())
            .is_some_and(|s| s.ready_replicas == Some(1))
    };
    bounded(
        "ready dips",
        await_condition(deployments.clone(), "web", dipped),
    )
    .await
    .unwrap();
    bounded(
        "replaced",
        await_condition(deployments, "web", rollout_complete()),
    )
    .await
    .unwrap();
    let after = names(
        pods.list(&ListParams::default().labels("app=web"))
            .await
            .unwrap(),
    );
    assert_eq!(after.len(), 2);
    assert!(
        after.contains(&before[1]) && !after.contains(&before[0]),
        "{before:?} -> {after:?}"
    );
}

/// The kube platform's view of the double's gateway (defaults: `istio-system`,
/// `istio=ingressgateway`, admin port 15000).
fn gateway_admin(double: &ApiServerDouble) -> EnvoyAdmin {
    let settings = KubeSettings::resolve(&KubeRequest::default(), &PlatformRefs::default(), true)
        .expect("default settings");
    EnvoyAdmin::new(double.client(), &settings)
}

#[tokio::test]
async fn envoys_admin_is_read_through_the_port_forward_until_it_holds_the_change() {
    let app = support::common::Server::http(|_req| async { support::common::respond(200, "ok") });
    let admin = FakeEnvoyAdmin::start("mcp-agents", "mcp-agent-vs", &["agent"]);
    let double = ApiServerDouble::start(DoubleOptions {
        istio_gateway: Some(app.addr),
        istio_gateway_admin: Some(admin.server.addr),
        ..DoubleOptions::default()
    })
    .await;
    let envoy = gateway_admin(&double);
    let istio = json!({"abort": {"percentage": {"value": 50.0}, "httpStatus": 503},
                       "delay": {"percentage": {"value": 1.5}, "fixedDelay": "200ms"}});
    let vs = json!({"spec": {"http": [{"name": "agent", "fault": istio}]}});
    let expected = envoy::expected_routes(&vs).unwrap();

    // istiod pushes the change 300 ms after the API server took it.
    let accepted_at = tokio::time::Instant::now();
    let pushed = istio_to_envoy(&istio);
    let late = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        admin.hold(vec![pushed]);
    };
    let (seen, ()) = bounded(
        "propagation",
        futures::future::join(
            envoy.wait_until_held(
                admin.config(),
                &expected,
                accepted_at,
                Duration::from_secs(5),
            ),
            late,
        ),
    )
    .await;
    let DataPlane::SeenAfter { after, seen_in } = seen else {
        panic!("not seen: {seen:?}");
    };
    assert!(
        after >= Duration::from_millis(300) && after < Duration::from_secs(2),
        "{after:?}"
    );
    assert_eq!(seen_in, "Envoy config_dump of 1 gateway pod");
    assert!(admin.dumps() >= 3, "polled: {} dumps", admin.dumps());

    // A change Envoy never shows is reported with what it holds instead.
    let reverted = envoy::expected_routes(&json!({"spec": {"http": [{"name": "agent"}]}})).unwrap();
    let bound = Duration::from_millis(400);
    let unseen = bounded(
        "never",
        envoy.wait_until_held(
            admin.config(),
            &reverted,
            tokio::time::Instant::now(),
            bound,
        ),
    )
    .await;
    let DataPlane::NotSeenWithin { last, .. } = &unseen else {
        panic!("seen? {unseen:?}");
    };
    assert!(
        last.contains(support::kube_double::ISTIO_GATEWAY_POD)
            && last.contains(
                "route `agent` holds abort 503 at 50% and delay 200ms at 1.5% instead of no fault"
            ),
        "{last}"
    );

    // A gateway with no route made from the VirtualService is not waited for.
    let elsewhere = envoy::istio_config("mcp-agents", "another-vs");
    let started = tokio::time::Instant::now();
    let none = bounded(
        "elsewhere",
        envoy.wait_until_held(&elsewhere, &reverted, started, Duration::from_secs(5)),
    )
    .await;
    assert_eq!(none, DataPlane::NotObserved);
    assert!(started.elapsed() < Duration::from_secs(2));

    // The counters, through the same port-forward.
    admin.set_stats(
        "http.outbound_0.0.0.0_8080.fault.aborts_injected: 212\nhttp.outbound_0.0.0.0_8080.downstream_rq_total: 4000\n",
    );
    let reading = bounded("stats", envoy.read()).await.expect("counters");
    assert_eq!(reading.source, "Envoy admin /stats of 1 gateway pod");
    assert_eq!(reading.counts.aborts_injected, Some(212));
    assert_eq!(reading.counts.downstream_rq, Some(4000));
    assert_eq!(
        reading.counts.delays_injected, None,
        "not exported: unknown"
    );
    let forwarded = double
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/portforward"))
        .all(|r| r.param("ports").as_deref() == Some("15000"));
    assert!(forwarded, "the admin port is forwarded, not the gateway's");
}

#[tokio::test]
async fn a_gateway_without_envoys_admin_is_not_observed_and_not_waited_for() {
    // Port 15000 reaches the app server, which is no Envoy admin.
    let app = support::common::Server::http(|_req| async { support::common::respond(200, "ok") });
    let double = ApiServerDouble::start(DoubleOptions {
        istio_gateway: Some(app.addr),
        ..DoubleOptions::default()
    })
    .await;
    let envoy = gateway_admin(&double);
    let expected = envoy::expected_routes(&json!({"spec": {"http": [{"name": "agent"}]}})).unwrap();
    let config = envoy::istio_config("mcp-agents", "mcp-agent-vs");
    let started = tokio::time::Instant::now();
    let seen = bounded(
        "unreachable",
        envoy.wait_until_held(&config, &expected, started, Duration::from_secs(5)),
    )
    .await;
    assert_eq!(seen, DataPlane::NotObserved);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Its counters are not zeros either: the reading says why there are none.
    let err = bounded("stats", envoy.read()).await.unwrap_err();
    assert!(
        err.contains("answered none of the gateway's counters") && err.contains("port 15000"),
        "{err}"
    );
}
