//! Dispatch: runs the parsed command and maps its outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Schema) => ExitCode::SUCCESS,
        _ => ExitCode::from(2),
    }
}
