//! `ltlab backends`: what this binary can train on here, and on which device.

use clap::Args;
use ltlab_engine::backend::{self, BackendChoice, BackendKind, DeviceClass};

#[derive(Args, Debug)]
pub struct BackendsArgs {
    /// One JSON object per backend instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(a: BackendsArgs) -> anyhow::Result<()> {
    let mut choices = Vec::new();
    for kind in BackendKind::ALL {
        let probed = backend::probe(kind);
        if a.json {
            let line = match &probed {
                Ok(c) => serde_json::json!({ "backend": kind.name(), "available": true, "device": c.device, "class": c.class }),
                Err(e) => serde_json::json!({ "backend": kind.name(), "available": false, "why": e.to_string() }),
            };
            println!("{line}");
        } else {
            match &probed {
                Ok(c) if c.class == DeviceClass::Software => {
                    println!("{:<5} {} (software: a CPU implementing the GPU API, slower than flex)", kind.name(), c.device)
                }
                Ok(c) => println!("{:<5} {}", kind.name(), c.device),
                Err(e) => println!("{:<5} not available: {e}", kind.name()),
            }
        }
        choices.extend(probed.ok());
    }
    if !a.json {
        println!("a new run in the lab defaults to {}", BackendChoice::preferred(&choices).name());
    }
    Ok(())
}
