use crate::host::launch::TrainArgs;
use ltlab_engine::train::engine::{self, Launch};
use ltlab_types::Event;
use std::io::Write as _;
use std::path::PathBuf;

pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    let launch = match &a.resume {
        Some(dir) => Launch::Resume { dir: dir.clone(), steps: a.steps, from: a.step },
        None => {
            let config = a.config()?;
            let out = a.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(&config.name));
            Launch::New { config, out }
        }
    };
    let handle = engine::spawn(launch);
    let mut bar = None;
    let mut result = Ok(());
    for ev in handle.events.iter() {
        if a.json {
            // A reader that went away (a closed pipe) does not stop the training.
            let _ = writeln!(std::io::stdout(), "{}", serde_json::to_string(&ev)?);
        }
        match ev {
            Event::Started { run_dir, first_step, total_steps } => {
                if !a.json {
                    eprintln!("run {run_dir}: steps {first_step}..{total_steps}");
                    let pb = super::progress_bar(total_steps, "train");
                    pb.set_position(first_step);
                    pb.reset_eta();
                    bar = Some(pb);
                }
            }
            Event::Step(r) => {
                if let Some(pb) = &bar {
                    pb.set_position(r.step);
                    pb.set_message(format!("loss {:.4} {:.0} img/s", r.losses["total"], r.images_per_s));
                }
            }
            Event::CheckpointSaved { path, .. } | Event::SamplesWritten { path, .. } => {
                if let Some(pb) = &bar {
                    pb.println(format!("wrote {path}"));
                }
            }
            Event::Finished { step, stopped } => {
                if let Some(pb) = &bar {
                    pb.finish();
                }
                if !a.json {
                    eprintln!("{} at step {step}", if stopped { "stopped" } else { "finished" });
                }
            }
            Event::Failed { message, .. } => {
                if let Some(pb) = &bar {
                    pb.abandon();
                }
                result = Err(anyhow::anyhow!(message));
            }
            Event::CheckpointDamaged { path, error, kept_as, resumed_from } => {
                let line = format!("warning: {error}; kept aside as {kept_as}, resuming from step {resumed_from}");
                match &bar {
                    Some(pb) => pb.println(line),
                    None if !a.json => eprintln!("{line} ({path})"),
                    None => {}
                }
            }
            Event::Paused { .. } | Event::Resumed { .. } => {}
        }
    }
    handle.join();
    result
}
