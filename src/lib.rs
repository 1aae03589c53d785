//! slo-check: load testing and SLO verification for agent platforms.
//!
//! Data flows one way: `scenario` (parse, validate) → `plan` → `platform`
//! (a `Target`) → `load` (drives `workflow`s, produces records) → `stats`
//! (one aggregator owns the histograms) → `slo` (verdict) → `report`.

pub mod agent;
pub mod app;
pub mod autoscale;
pub mod capacity;
pub mod cli;
pub mod distributions;
pub mod errors;
pub mod faults;
pub mod load;
pub mod plan;
pub mod platform;
pub mod prom;
pub mod report;
pub mod run;
pub mod scenario;
pub(crate) mod server;
pub mod slo;
pub mod stats;
pub mod units;
pub mod workflow;
