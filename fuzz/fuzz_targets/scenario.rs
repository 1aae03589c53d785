//! Fuzz target: scenario parse + validate + plan must never panic or hang,
//! whatever the bytes; every failure must be a located error.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use slo_check::plan::{Plan, PlanOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match slo_check::scenario::parse_str(text, Path::new("fuzz.yaml")) {
        Ok(scenario) => {
            // A valid scenario must also plan without panicking (bounded: skip huge schedules).
            if scenario.load.stages.iter().all(|s| {
                s.duration.as_secs_f64() * s.start_rate_per_s.max(s.end_rate_per_s) < 1e5
            }) {
                let _ = Plan::new(scenario, PlanOptions { time_scale: 1.0, seed: Some(1) });
            }
        }
        Err(errors) => assert!(!errors.0.is_empty()),
    }
});
