//! `slo-check generate`: one generator of a distributed run. Prints `listening on ADDR`
//! once its control API listens (the coordinator reads that line), then runs until its
//! coordinator says exit (0) or stops asking (3). Bad flags exit 2.

use crate::cli::GenerateArgs;
use crate::exit;
use crate::generate::{GenerateConfig, GenerateEnd, Generator};
use crate::load::schedule::Shard;
use crate::phase::remote::process::LISTENING;

/// Run the command.
pub fn run(args: &GenerateArgs) -> u8 {
    let (cfg, listen) = match configure(args) {
        Ok(c) => c,
        Err(e) => return super::usage(&e),
    };
    exit::block_on(async move {
        let generator = match Generator::bind(cfg, listen).await {
            Ok(g) => g,
            Err(e) => return super::usage(&e),
        };
        match generator.addr() {
            Ok(addr) => println!("{LISTENING}{addr}"),
            Err(e) => {
                eprintln!("error: cannot read the listening address: {e}");
                return exit::INFRA;
            }
        }
        match generator.serve().await {
            GenerateEnd::Told => exit::PASS,
            GenerateEnd::Idle => {
                eprintln!(
                    "error: no coordinator asked anything for {} s: exiting",
                    crate::generate::IDLE_EXIT.as_secs()
                );
                exit::INFRA
            }
        }
    })
}

fn configure(args: &GenerateArgs) -> Result<(GenerateConfig, std::net::SocketAddr), String> {
    let mut plan = match &args.capacity_step {
        None => super::load_plan(&args.scenario)?,
        Some(step) => capacity_step_plan(args, step)?,
    };
    if let Some(bytes) = args.max_response_bytes {
        plan.scenario.load.max_response_bytes = bytes;
    }
    let shard = parse_shard(&args.shard)?;
    let mut targets = Vec::new();
    for url in &args.target_url {
        targets.push(crate::platform::url::target(Some(url)).map_err(|e| e.to_string())?);
    }
    let target = targets.swap_remove(shard.index as usize % targets.len().max(1));
    let listen = args.listen.parse().map_err(|_| {
        format!(
            "--listen {}: expected IP:PORT, e.g. 127.0.0.1:0 (port 0: any free port)",
            args.listen
        )
    })?;
    Ok((
        GenerateConfig {
            plan,
            target_url: target.base_url,
            shard,
        },
        listen,
    ))
}

/// `--capacity-step INDEX:RATE` with `--step-for` and `--warmup`: the plan of that step of
/// the coordinator's capacity search (`capacity::step_plan`).
fn capacity_step_plan(args: &GenerateArgs, step: &str) -> Result<crate::plan::Plan, String> {
    let wrong = || format!("--capacity-step {step}: expected INDEX:RATE, e.g. 3:250");
    let (index, rate) = step.split_once(':').ok_or_else(wrong)?;
    let index: usize = index.trim().parse().map_err(|_| wrong())?;
    let rate: f64 = rate.trim().parse().map_err(|_| wrong())?;
    if index == 0 || !(rate.is_finite() && rate > 0.0) {
        return Err(wrong());
    }
    let duration = |flag: &str, text: &Option<String>| {
        let text = text.as_deref().unwrap_or_default();
        crate::units::parse_duration(text).map_err(|e| format!("{flag} {text}: {e}"))
    };
    let step_for = duration("--step-for", &args.step_for)?;
    let warmup = duration("--warmup", &args.warmup)?;
    let sc = super::load_scenario(&args.scenario)?;
    let seed = args.scenario.seed.or(sc.load.seed).unwrap_or(0);
    crate::capacity::step_plan(
        &sc,
        (warmup, step_for, args.scenario.time_scale, seed),
        (index, rate),
    )
}

/// `I/N` with 0 ≤ I < N.
fn parse_shard(text: &str) -> Result<Shard, String> {
    let wrong = || format!("--shard {text}: expected I/N with 0 ≤ I < N, e.g. 0/3");
    let (i, n) = text.split_once('/').ok_or_else(wrong)?;
    let (i, n) = (
        i.trim().parse().map_err(|_| wrong())?,
        n.trim().parse().map_err(|_| wrong())?,
    );
    Shard::new(i, n).ok_or_else(wrong)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_i_of_n() {
        assert_eq!(parse_shard("1/3"), Ok(Shard::new(1, 3).unwrap()));
        for bad in ["3/3", "1", "a/2", "1/0", "-1/2"] {
            assert!(parse_shard(bad).unwrap_err().contains("--shard"), "{bad}");
        }
    }
}
