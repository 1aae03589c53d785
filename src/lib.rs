//! slo-check: load testing and SLO verification for agent platforms.
//!
//! Layers, top to bottom; a module imports from lower layers, and from its own
//! layer where no two modules need each other (ARCHITECTURE.md draws them and one
//! run's data flow):
//!
//! 1. `commands` (with `cli`): flags, runtimes, exit codes.
//! 2. `run`, `capacity`: one run, one capacity search.
//! 3. `phase` (the load phase), `platform` (`local`, `url`, `kube`), `report`.
//! 4. `slo`, `prom`.
//! 5. `fault_timeline`, `autoscale`, `load`, `plan`, `workflow`, `agent`.
//! 6. Leaves: `target` (the platform seams), `scenario`, `distributions`, `stats`,
//!    `server`, `units`, `exit`, `errors`.

pub mod agent;
pub mod autoscale;
pub mod capacity;
pub mod cli;
pub mod commands;
pub mod distributions;
pub mod errors;
pub mod exit;
pub mod fault_timeline;
pub mod generate;
pub mod history;
pub mod live;
pub mod load;
pub mod phase;
pub mod plan;
pub mod platform;
pub mod prom;
pub mod recovery;
pub mod report;
pub mod run;
pub mod scenario;
pub(crate) mod server;
pub mod slo;
pub mod stats;
pub mod target;
pub mod units;
pub mod workflow;
