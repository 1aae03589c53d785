//! The load engine: the arrival schedule and the open-model executor that
//! issues workflow starts on time whatever the responses do.

pub mod engine;
pub mod schedule;
pub mod timer;
