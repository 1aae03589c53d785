//! slo-check: load testing and SLO verification for agent platforms.
//!
//! Layers, top to bottom; a module imports only from layers below it (ARCHITECTURE.md
//! draws them and one run's data flow):
//!
//! 1. `commands` (with `cli`): flags, runtimes, exit codes.
//! 2. `run`, `capacity`: one run, one capacity search.
//! 3. `phase` (the load phase), `platform` (`local`, `url`, `kube`), `prom`, `report`.
//! 4. `slo`, `fault_timeline`, `autoscale`, `load`, `workflow`, `stats`, `plan`, `agent`.
//! 5. Leaves: `target` (the platform seams), `scenario`, `units`, `exit`, `errors`.

pub mod agent;
pub mod autoscale;
pub mod capacity;
pub mod cli;
pub mod commands;
pub mod errors;
pub mod exit;
pub mod fault_timeline;
pub mod load;
pub mod phase;
pub mod plan;
pub mod platform;
pub mod prom;
pub mod report;
pub mod run;
pub mod scenario;
pub(crate) mod server;
pub mod slo;
pub mod stats;
pub mod target;
pub mod units;
pub mod workflow;
