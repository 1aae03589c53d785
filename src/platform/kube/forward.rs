//! A local port-forward to the Istio ingress gateway: a loopback listener whose every
//! connection is carried to a ready gateway pod through the API server's port-forward
//! (WebSocket) endpoint, so traffic takes the VirtualService's routes and faults.

use std::net::SocketAddr;

use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;

use super::catalog::ingress_pod;
use super::settings::KubeSettings;
use crate::errors::error_chain;
use crate::platform::PlatformError;

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
        let pod = ingress_pod(client, settings)
            .await
            .map_err(PlatformError::Infra)?;
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
            "http://{addr} (port-forward to {}/{pod}:{})",
            ingress.namespace, ingress.port
        );
        settings.say(&format!("kube: {description}"));
        let shared = Forwarding {
            pods,
            client: client.clone(),
            settings: settings.clone(),
            pod: RwLock::new(pod),
        };
        tokio::spawn(accept(listener, std::sync::Arc::new(shared), stop.clone()));
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
    /// The pod forwarded to; replaced when forwards to it start failing.
    pod: RwLock<String>,
}

impl Forwarding {
    /// Carry one connection; on a failed forward, pick a ready pod again and retry once.
    async fn carry(&self, mut conn: TcpStream) {
        for attempt in 0..2 {
            let pod = self.pod.read().await.clone();
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
                Err(_) if attempt == 0 => {
                    if let Ok(fresh) = ingress_pod(&self.client, &self.settings).await {
                        *self.pod.write().await = fresh;
                    }
                }
                Err(_) => return, // the client sees the connection close: a connect failure
            }
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
