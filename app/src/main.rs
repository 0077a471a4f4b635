//! `ltlab`: the lab's binary. Without arguments it opens the desktop lab; subcommands run
//! headless; both share the engine.

mod cli;
mod jobs;
mod lab;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
