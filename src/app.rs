//! Dispatch: runs the parsed command and maps its outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Schema) => ExitCode::SUCCESS,
        Some(Command::Agent(args)) => run_agent(args),
        _ => ExitCode::from(2),
    }
}

/// `slo-check agent`: 0 after a clean shutdown, 2 on bad flags, 3 if --listen cannot be bound.
fn run_agent(args: crate::agent::AgentArgs) -> ExitCode {
    let result = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(crate::agent::run_cli(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            crate::agent::exit_code(&error)
        }
    }
}
