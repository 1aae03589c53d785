//! Watches (the watch API, not polling) the HPA and the Deployment the scenario names,
//! and keeps their status as the replica timeline: desired from the HPA, current and
//! ready from the Deployment, one sample whenever any of them changes.

use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::settings::KubeSettings;
use crate::target::{AutoscalerClock, ReplicaObserver, ReplicaSample};

/// The latest counts and every change so far.
#[derive(Debug, Default)]
struct State {
    desired: Option<u32>,
    current: Option<u32>,
    ready: Option<u32>,
    samples: Vec<ReplicaSample>,
}

impl State {
    /// Record the counts now, if they changed and are all known.
    fn record(&mut self, at: Instant) {
        let (Some(desired), Some(current), Some(ready)) = (self.desired, self.current, self.ready)
        else {
            return;
        };
        let sample = ReplicaSample {
            at,
            desired,
            current,
            ready,
        };
        let same = self
            .samples
            .last()
            .is_some_and(|l| (l.desired, l.current, l.ready) == (desired, current, ready));
        if !same {
            self.samples.push(sample);
        }
    }
}

/// The replica timeline of a deployed stack; implements `ReplicaObserver`.
#[derive(Debug)]
pub struct Observer {
    state: Mutex<State>,
    stop: CancellationToken,
}

impl Observer {
    /// Start both watches; they run until `stop`.
    pub fn start(client: &Client, settings: &KubeSettings) -> Arc<Observer> {
        let observer = Arc::new(Observer {
            state: Mutex::new(State::default()),
            stop: CancellationToken::new(),
        });
        let ns = &settings.namespace;
        let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), ns);
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
        let o = observer.clone();
        tokio::spawn(watch(
            hpas,
            settings.refs.hpa.clone(),
            o.clone(),
            move |s, hpa: HorizontalPodAutoscaler| {
                // 0 until the controller's first pass (an HPA never asks for 0 pods:
                // minReplicas is at least 1).
                if let Some(status) = hpa.status
                    && status.desired_replicas > 0
                {
                    s.desired = Some(status.desired_replicas as u32);
                }
            },
        ));
        tokio::spawn(watch(
            deployments,
            settings.refs.deployment.clone(),
            o,
            move |s, d: Deployment| {
                if let Some(status) = d.status {
                    s.current = Some(status.replicas.unwrap_or(0).max(0) as u32);
                    s.ready = Some(status.ready_replicas.unwrap_or(0).max(0) as u32);
                }
                if s.desired.is_none() {
                    s.desired = d.spec.replicas.map(|r| r.max(0) as u32);
                }
            },
        ));
        observer
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut state);
        state.record(Instant::now());
    }
}

impl ReplicaObserver for Observer {
    fn timeline(&self) -> Vec<ReplicaSample> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .samples
            .clone()
    }

    fn clock(&self) -> AutoscalerClock {
        AutoscalerClock::Real
    }
}

/// Watch the object `name` of `api` until the observer stops; watch errors (a dropped
/// connection, 410 Gone) are retried with backoff by the watcher.
async fn watch<K>(
    api: Api<K>,
    name: String,
    observer: Arc<Observer>,
    apply: impl Fn(&mut State, K) + Send + 'static,
) where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = watcher(api, config)
        .default_backoff()
        .applied_objects()
        .boxed();
    loop {
        tokio::select! {
            _ = observer.stop.cancelled() => return,
            next = stream.try_next() => match next {
                Ok(Some(obj)) => observer.update(|s| apply(s, obj)),
                Ok(None) => return,
                Err(_) => continue, // retried by the backoff
            },
        }
    }
}
