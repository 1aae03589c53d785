//! slo-check's integration tests: one test binary, one module per area (the layout of
//! ripgrep's tests/tests.rs), with the helpers they share in `support`.
//!
//! Run one area with a filter, e.g. `cargo test --release --test tests -- agent::`.

mod support;

mod agent;
mod agent_redis;
mod canary;
mod capacity;
mod cluster;
mod coordinated_omission;
mod distributed;
mod embedded_spike;
mod failures;
mod history;
mod hpa_manifest;
mod hpa_parity;
mod interrupts;
mod invalid;
mod kube_double;
mod kube_platform;
mod live_metrics;
mod local_platform;
mod malformed_corpus;
mod mesh;
mod misbehaving;
mod poisson;
mod process_node;
mod prometheus;
mod prometheus_rules;
mod reports;
mod reports_html;
mod run_control;
mod schedule_props;
mod secrets;
mod stack;
mod verdict;
mod workflow;
