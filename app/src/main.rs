//! `ltlab`: the lab's binary. Without arguments it opens the desktop lab; subcommands run
//! headless; both stand on the engine host.

mod cli;
mod host;
mod lab;
mod serve;

use clap::Parser;
use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps freed memory instead of handing it back to the OS, so that a training step reuses the
/// previous step's pages instead of faulting in freshly zeroed ones (with mimalloc's 10 ms purge
/// delay: ≈ 475 page faults and 9 % of the tiny preset's step in the kernel's page clearing; with
/// 10 s, still ≈ 600 per step on the small preset). The price: resident memory stays at its peak.
fn keep_freed_memory() {
    // `mi_option_purge_delay` comes right before `mi_option_use_numa_nodes` in mimalloc's
    // option enum (v2 and v3); the bindings have no constant for it.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = libmimalloc_sys::mi_option_use_numa_nodes - 1;
    // SAFETY: sets an allocator option before any thread is started; no pointer is involved.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) };
}

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
    keep_freed_memory();
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
