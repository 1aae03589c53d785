//! Support code shared by the test modules of tests/tests.rs (one test binary, so
//! every helper here is used somewhere; nothing needs `allow(dead_code)`).

/// The reference agent in-process: quick settings, replicas on loopback, a JSON client.
pub mod agent;
/// The shared test cluster (a real control plane, KWOK nodes) of scripts/cluster.sh.
pub mod cluster;
/// The real `slo-check` binary with quiet defaults, and loopback test servers.
pub mod common;
/// CPU per component of the machine during a cluster test, from /proc.
pub mod cpu;
/// A fake of the gateway's Envoy admin: config_dump routes and /stats it is told.
pub mod envoy_admin;
/// An in-process Kubernetes API-server double for the real kube client.
pub mod kube_double;
/// A real PostgreSQL started per test on a free loopback port (the history store).
pub mod postgres;
/// A real Prometheus (and promtool) started per test on a free loopback port.
pub mod prom;
/// A deterministic example `RunReport` (a 10× spike with a fault window).
pub mod sample;
/// `stack/` rendered with `kubectl kustomize` and validated against the real APIs.
pub mod stack;
