//! `slo-check plan`: the plan a scenario would run (stages, arrival schedule, fault
//! and SLO windows, optionally every intended start), without running it.

use crate::cli::PlanArgs;
use crate::exit;
use crate::scenario;
use crate::units::format_duration;

/// `slo-check plan`: what a run would do, without doing it.
pub fn run(args: &PlanArgs) -> u8 {
    let plan = match super::load_plan(&args.scenario) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let sc = &plan.scenario;
    println!("scenario   {} ({})", sc.name, sc.source.display());
    println!(
        "arrival    {:?}{}; time scale {}",
        sc.load.arrival,
        if sc.load.arrival == scenario::Arrival::Poisson {
            format!(" (seed {})", plan.schedule.seed)
        } else {
            String::new()
        },
        plan.time_scale
    );
    println!(
        "schedule   {} starts over {} (mean {:.2}/s); max in flight {}; pacing slack {}",
        plan.scheduled,
        format_duration(plan.schedule.duration()),
        plan.schedule.mean_rate_per_s(),
        sc.load.max_in_flight,
        format_duration(sc.load.pacing_slack)
    );
    for (i, seg) in plan.schedule.segments.iter().enumerate() {
        println!(
            "  stage {}  {:>8} → {:>8}  rate {} → {}/s",
            i + 1,
            format_duration(std::time::Duration::from_secs_f64(seg.start_s)),
            format_duration(std::time::Duration::from_secs_f64(
                seg.start_s + seg.duration_s
            )),
            seg.start_rate_per_s,
            seg.end_rate_per_s
        );
    }
    for (f, (from, to)) in sc.faults.iter().zip(&plan.fault_windows) {
        println!(
            "fault      {}: {} → {}",
            f.name,
            format_duration(*from),
            format_duration(*to)
        );
    }
    for (slo, w) in sc.slos.iter().zip(&plan.slo_windows) {
        println!("slo        {} over {}", slo.name, plan.windows[*w].label);
    }
    if args.starts {
        for t in plan.schedule.iter() {
            println!("{t:.6}");
        }
    }
    exit::PASS
}
