//! The accept loop (hyper http1, keep-alive) and `AgentHandle`, which controls a running
//! replica: readiness, utilisation, graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::http;
use super::state::AgentState;

/// A running agent replica. Dropping it stops the replica in the background;
/// `shutdown` stops it and waits.
#[derive(Debug)]
pub struct AgentHandle {
    addr: SocketAddr,
    state: Arc<AgentState>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl AgentHandle {
    /// The address the replica serves on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// CPU utilisation ratio (0..=1) over the sliding window.
    pub fn cpu_utilisation(&self) -> f64 {
        self.state.cpu.utilisation()
    }

    /// Workflows admitted and not yet finished.
    pub fn active_workflows(&self) -> usize {
        self.state.active_workflows()
    }

    /// Whether `/ready` answers 200 now.
    pub fn is_ready(&self) -> bool {
        self.state.is_ready()
    }

    /// Marks the replica ready or not (e.g. unready while draining). The start-up delay
    /// still applies: `set_ready(true)` during it keeps the replica unready until it ends.
    pub fn set_ready(&self, ready: bool) {
        self.state.set_ready(ready);
    }

    /// Stops accepting connections, lets in-flight requests finish (bounded by the
    /// configured shutdown grace), then ends running workflows and returns.
    pub async fn shutdown(mut self) {
        self.state.set_ready(false);
        self.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for AgentHandle {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// Serves `listener` with a fresh replica until its handle stops it.
pub(crate) fn spawn(listener: TcpListener, state: Arc<AgentState>) -> std::io::Result<AgentHandle> {
    let addr = listener.local_addr()?;
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(serve(listener, state.clone(), stop_rx));
    Ok(AgentHandle {
        addr,
        state,
        stop,
        task: Some(task),
    })
}

async fn serve(listener: TcpListener, state: Arc<AgentState>, mut stop: watch::Receiver<bool>) {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        // A dropped sender also means stop.
        let _ = stop.wait_for(|stopping| *stopping).await;
        cancel.cancel();
    });
    let conn_state = state.clone();
    let handler = move |request| http::handle(conn_state.clone(), request);
    // Idle keep-alive connections close at once; busy ones after their current request.
    crate::server::serve(listener, token, state.config.shutdown_grace, handler).await;
    state.stop();
}
