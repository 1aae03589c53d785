//! `pods/{name}/portforward` over WebSocket, the way kube's `Api::<Pod>::portforward`
//! speaks it: subprotocol `v4.channel.k8s.io`; per requested port two channels (data
//! `2i`, error `2i+1`), each opened by the server with a frame holding the port number
//! (2 bytes, little endian); every later binary frame is `[channel, payload...]`.
//! Each connection's ports are carried to the pod's loopback backend over TCP (one per
//! pod, or per port of a pod: the gateway's Envoy admin).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::Shared;
use super::http::{Body, Target, error_response};
use super::store::{ApiError, pod_key};

const PROTOCOL: &str = "v4.channel.k8s.io";

fn header<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn parse_ports(query: &HashMap<String, String>) -> Result<Vec<u16>, ApiError> {
    let ports: Vec<u16> = query
        .get("ports")
        .map(|p| p.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_default();
    if ports.is_empty() {
        return Err(ApiError::bad_request("at least 1 port must be specified"));
    }
    Ok(ports)
}

/// Answers the upgrade request and spawns the forwarding.
pub fn handle(
    shared: Arc<Shared>,
    mut req: Request<Incoming>,
    target: Target,
    query: &HashMap<String, String>,
) -> Response<Body> {
    let namespace = target.namespace.clone().unwrap_or_default();
    let name = target.name.clone().unwrap_or_default();
    let ports = match parse_ports(query) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let backends: Vec<Option<SocketAddr>> = {
        let state = shared.lock();
        if state.get(&pod_key(&namespace, &name)).is_none() {
            return error_response(&ApiError::not_found(target.r, &name));
        }
        let pod = state
            .port_forwards
            .get(&(namespace.clone(), name.clone()))
            .copied()
            .or(shared.options.port_forward_backend);
        ports
            .iter()
            .map(|port| {
                let key = (namespace.clone(), name.clone(), *port);
                state.port_forward_ports.get(&key).copied().or(pod)
            })
            .collect()
    };
    let upgrade = header(&req, "upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let Some(key) = header(&req, "sec-websocket-key").filter(|_| upgrade) else {
        return error_response(&ApiError::bad_request("Upgrade request required"));
    };
    let offered = header(&req, "sec-websocket-protocol")
        .is_some_and(|p| p.split(',').any(|p| p.trim() == PROTOCOL));
    if !offered {
        return error_response(&ApiError::bad_request(format!(
            "none of the requested subprotocols is supported; supported: {PROTOCOL}"
        )));
    }
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    let cancel = shared.cancel.clone();
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let ws =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            tokio::select! {
                _ = forward(ws, ports, backends) => {}
                _ = cancel.cancelled() => {}
            }
        }
    });
    let mut response = Response::new(http_body_util::Empty::<bytes::Bytes>::new().boxed());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    for (name, value) in [
        ("upgrade", "websocket".to_string()),
        ("connection", "Upgrade".to_string()),
        ("sec-websocket-accept", accept),
        ("sec-websocket-protocol", PROTOCOL.to_string()),
    ] {
        if let Ok(v) = value.parse() {
            headers.insert(name, v);
        }
    }
    response
}

fn frame(channel: u8, payload: &[u8]) -> Message {
    let mut bytes = Vec::with_capacity(payload.len() + 1);
    bytes.push(channel);
    bytes.extend_from_slice(payload);
    Message::binary(bytes)
}

enum Out {
    Frame(Message),
    Close,
}

async fn forward<S>(ws: WebSocketStream<S>, ports: Vec<u16>, backends: Vec<Option<SocketAddr>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut incoming) = ws.split();
    for (index, port) in ports.iter().enumerate() {
        let channel = 2 * index as u8;
        for ch in [channel, channel + 1] {
            if sink.send(frame(ch, &port.to_le_bytes())).await.is_err() {
                return;
            }
        }
    }
    let (out_tx, mut out_rx) = mpsc::channel::<Out>(64);
    let mut writers: Vec<Option<OwnedWriteHalf>> = vec![];
    for (index, port) in ports.iter().enumerate() {
        let channel = 2 * index as u8;
        match connect(backends[index], *port).await {
            Ok(stream) => {
                let (read, write) = stream.into_split();
                writers.push(Some(write));
                tokio::spawn(pump_from_backend(read, channel, out_tx.clone()));
            }
            Err(message) => {
                writers.push(None);
                let _ = out_tx
                    .send(Out::Frame(frame(channel + 1, message.as_bytes())))
                    .await;
            }
        }
    }
    drop(out_tx);
    let writer = tokio::spawn(async move {
        while let Some(out) = out_rx.recv().await {
            match out {
                Out::Frame(message) => {
                    if sink.send(message).await.is_err() {
                        return;
                    }
                }
                Out::Close => {
                    let _ = sink.send(Message::Close(None)).await;
                    return;
                }
            }
        }
    });
    while let Some(Ok(message)) = incoming.next().await {
        match message {
            Message::Binary(data) if data.len() > 1 => {
                let index = (data[0] / 2) as usize;
                if data[0] % 2 != 0 {
                    continue;
                }
                if let Some(Some(write)) = writers.get_mut(index)
                    && write.write_all(&data[1..]).await.is_err()
                {
                    writers[index] = None;
                }
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    drop(writers);
    let _ = writer.await;
}

async fn connect(backend: Option<SocketAddr>, port: u16) -> Result<TcpStream, String> {
    let Some(addr) = backend else {
        return Err(format!(
            "error forwarding port {port} to pod: the double has no backend for this pod"
        ));
    };
    TcpStream::connect(addr).await.map_err(|e| {
        format!("error forwarding port {port} to pod, uid : failed to connect to {addr}: {e}")
    })
}

async fn pump_from_backend(mut read: OwnedReadHalf, channel: u8, out: mpsc::Sender<Out>) {
    let mut buffer = vec![0u8; 32 * 1024];
    loop {
        match read.read(&mut buffer).await {
            Ok(0) | Err(_) => {
                let _ = out.send(Out::Close).await;
                return;
            }
            Ok(n) => {
                if out
                    .send(Out::Frame(frame(channel, &buffer[..n])))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}
