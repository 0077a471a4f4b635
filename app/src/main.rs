//! `ltlab`: the lab's binary. Without arguments it opens the desktop lab; subcommands run
//! headless; both stand on the engine host.

mod cli;
mod host;
mod lab;

use clap::Parser;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "ltlab", version, about = "A lab for long-tailed (class-imbalanced) diffusion")]
struct Ltlab {
    /// Without a command: open the desktop lab.
    #[command(subcommand)]
    command: Option<cli::Command>,
    #[command(flatten)]
    lab: lab::LabArgs,
}

fn main() -> ExitCode {
    let args = Ltlab::parse();
    let result = match args.command {
        Some(command) => cli::run(command),
        None => lab::run(args.lab),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
