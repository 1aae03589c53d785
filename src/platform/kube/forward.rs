//! A local port-forward to the Istio ingress gateway: a loopback listener whose every
//! connection is carried to a ready gateway pod through the API server's port-forward
//! (WebSocket) endpoint, so traffic takes the VirtualService's routes and faults. With
//! several ready pods, new connections take them in turn (the set is listed again every
//! `REFRESH`), as a Service would spread them; a connection stays on its pod.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;

use super::catalog::ingress_pods;
use super::settings::KubeSettings;
use crate::errors::error_chain;
use crate::platform::PlatformError;

/// How often the ready pods are listed again.
const REFRESH: Duration = Duration::from_secs(2);

/// A running forward; connections stop when `stop` is called.
pub struct PortForward {
    addr: SocketAddr,
    description: String,
    stop: CancellationToken,
}

impl PortForward {
    /// Find a ready gateway pod, check that a forward to it opens, and start listening.
    pub async fn start(
        client: &Client,
        settings: &KubeSettings,
    ) -> Result<PortForward, PlatformError> {
        let ingress = settings.ingress.clone();
        let ready = ingress_pods(client, settings)
            .await
            .map_err(PlatformError::Infra)?;
        let pod = ready[0].clone();
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ingress.namespace);
        // One forward now, so that a refusal (RBAC on pods/portforward, a dying pod) is
        // reported before the load starts rather than as connection failures.
        match pods.portforward(&pod, &[ingress.port]).await {
            Ok(pf) => pf.abort(),
            Err(e) => {
                return Err(PlatformError::Infra(format!(
                    "cannot port-forward to pod {}/{pod} port {}: {}; check `kubectl -n {} port-forward pod/{pod} {}` works, or pass --target-url",
                    ingress.namespace,
                    ingress.port,
                    error_chain(&e),
                    ingress.namespace,
                    ingress.port
                )));
            }
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| {
            PlatformError::Infra(format!(
                "cannot listen on loopback for the port-forward: {e}"
            ))
        })?;
        let addr = listener
            .local_addr()
            .map_err(|e| PlatformError::Infra(format!("port-forward listener: {e}")))?;
        let stop = CancellationToken::new();
        let description = format!(
            "http://{addr} (port-forward to the ready pods labelled {} in {}, port {}, each new connection to the next; ready now: {})",
            ingress.selector,
            ingress.namespace,
            ingress.port,
            ready.join(", ")
        );
        settings.say(&format!("kube: {description}"));
        let shared = std::sync::Arc::new(Forwarding {
            pods,
            client: client.clone(),
            settings: settings.clone(),
            ready: RwLock::new(ready),
            next: AtomicUsize::new(0),
        });
        tokio::spawn(refresh(shared.clone(), stop.clone()));
        tokio::spawn(accept(listener, shared, stop.clone()));
        Ok(PortForward {
            addr,
            description,
            stop,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn description(&self) -> String {
        self.description.clone()
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

struct Forwarding {
    pods: Api<Pod>,
    client: Client,
    settings: KubeSettings,
    /// The ready pods, as last listed; kept when a listing fails.
    ready: RwLock<Vec<String>>,
    /// Which of them the next connection goes to.
    next: AtomicUsize,
}

impl Forwarding {
    async fn pick(&self) -> Option<String> {
        let ready = self.ready.read().await;
        if ready.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % ready.len();
        Some(ready[i].clone())
    }

    async fn relist(&self) {
        if let Ok(fresh) = ingress_pods(&self.client, &self.settings).await {
            *self.ready.write().await = fresh;
        }
    }

    /// Carry one connection; on a failed forward, list the ready pods again and retry
    /// once on the next one.
    async fn carry(&self, mut conn: TcpStream) {
        for attempt in 0..2 {
            let Some(pod) = self.pick().await else { return };
            let port = self.settings.ingress.port;
            match self.pods.portforward(&pod, &[port]).await {
                Ok(mut pf) => {
                    let Some(mut upstream) = pf.take_stream(port) else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
                    drop(upstream);
                    let _ = pf.join().await;
                    return;
                }
                Err(_) if attempt == 0 => self.relist().await,
                Err(_) => return, // the client sees the connection close: a connect failure
            }
        }
    }
}

/// List the ready pods every `REFRESH` until `stop`.
async fn refresh(shared: std::sync::Arc<Forwarding>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(REFRESH) => shared.relist().await,
        }
    }
}

async fn accept(
    listener: TcpListener,
    shared: std::sync::Arc<Forwarding>,
    stop: CancellationToken,
) {
    loop {
        let conn = tokio::select! {
            _ = stop.cancelled() => return,
            c = listener.accept() => c,
        };
        let Ok((conn, _)) = conn else { continue };
        let _ = conn.set_nodelay(true);
        let shared = shared.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = shared.carry(conn) => {}
            }
        });
    }
}
