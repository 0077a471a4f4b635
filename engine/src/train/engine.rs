//! The engine thread: runs a training job and talks to its host only through channels
//! (commands in, events out), so the lab never blocks on training.

use super::config::{RunRecord, TrainConfig};
use super::run_dir::RunDir;
use super::trainer::{Trainer, Weights};
use crate::backend::{WithBackend, dispatch};
use crate::diffusion::SamplerKind;
use crate::error::{Error, Result};
use crate::grid;
use crate::ops::TrainBackend;
use crossbeam_channel::{Receiver, Sender, unbounded};
use ltlab_types::{Command, Event};
use std::path::PathBuf;
use std::thread::JoinHandle;

/// What to train.
#[derive(Debug, Clone)]
#[expect(clippy::large_enum_variant, reason = "one per run, moved once into the engine thread")]
pub enum Launch {
    /// A new run written to `out`.
    New { config: TrainConfig, out: PathBuf },
    /// Continue the run in `dir` from its newest checkpoint that loads (or the one at step
    /// `from`), optionally to a new total.
    Resume { dir: PathBuf, steps: Option<u64>, from: Option<u64> },
}

pub struct EngineHandle {
    pub commands: Sender<Command>,
    pub events: Receiver<Event>,
    thread: Option<JoinHandle<()>>,
}

impl EngineHandle {
    /// Waits for the engine thread to end.
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts training on a background thread.
pub fn spawn(launch: Launch) -> EngineHandle {
    let (cmd_tx, cmd_rx) = unbounded();
    let (ev_tx, ev_rx) = unbounded();
    let thread = std::thread::Builder::new()
        .name("ltlab-engine".into())
        .spawn(move || {
            let mut last_checkpoint = None;
            if let Err(e) = run(launch, &cmd_rx, &ev_tx, &mut last_checkpoint) {
                let _ = ev_tx.send(Event::Failed { message: e.to_string(), last_checkpoint });
            }
        })
        .expect("spawn engine thread");
    EngineHandle { commands: cmd_tx, events: ev_rx, thread: Some(thread) }
}

fn run(launch: Launch, commands: &Receiver<Command>, events: &Sender<Event>, last_checkpoint: &mut Option<u64>) -> Result<()> {
    // A new run's folder that this start made is removed again if the run fails before it holds
    // a config (data that does not load, a backend that cannot start): a failed Start leaves no
    // half run behind in the runs folder. A folder that was there before is left as it was.
    let fresh = match &launch {
        Launch::New { out, .. } if !out.exists() => Some(out.clone()),
        _ => None,
    };
    let result = run_in_dir(launch, commands, events, last_checkpoint);
    if result.is_err()
        && let Some(out) = fresh
        && !out.join("config.toml").exists()
    {
        let _ = std::fs::remove_dir_all(&out);
    }
    result
}

fn run_in_dir(launch: Launch, commands: &Receiver<Command>, events: &Sender<Event>, last_checkpoint: &mut Option<u64>) -> Result<()> {
    let (config, dir, resume) = match launch {
        Launch::New { config, out } => {
            config.validate()?;
            (config, RunDir::create(&out)?, None)
        }
        Launch::Resume { dir, steps, from } => {
            let dir = RunDir::open(&dir)?;
            let mut config = dir.read_config()?;
            if let Some(s) = steps {
                config.steps = s;
            }
            (config, dir, Some(from))
        }
    };
    // One writer per run, for as long as the job runs.
    let _lock = dir.lock_writer()?;
    dir.remove_interrupted_writes()?;
    let backend = config.backend;
    dispatch(backend, Job { config, dir, resume, commands, events, last_checkpoint })?
}

struct Job<'a> {
    config: TrainConfig,
    dir: RunDir,
    /// Resume (from this step, or the newest checkpoint that loads), or a new run.
    resume: Option<Option<u64>>,
    commands: &'a Receiver<Command>,
    events: &'a Sender<Event>,
    last_checkpoint: &'a mut Option<u64>,
}

impl WithBackend for Job<'_> {
    type Output = Result<()>;

    fn run<B: TrainBackend>(self, device: B::Device, device_name: String) -> Result<()> {
        let Job { mut config, dir, resume, commands, events, last_checkpoint } = self;
        let data = config.data.load()?;
        let summary = data.summary();
        let send = |e: Event| {
            let _ = events.send(e);
        };
        let mut trainer = if let Some(from) = resume {
            if let Some(rec) = &config.record
                && rec.dataset.fingerprint != summary.fingerprint
            {
                return Err(Error::data(
                    &dir.path,
                    format!("the dataset changed since the run started (fingerprint {} now, {} recorded)", summary.fingerprint, rec.dataset.fingerprint),
                ));
            }
            let point = dir.resume_point(from)?;
            for d in &point.damaged {
                send(Event::CheckpointDamaged {
                    path: d.path.display().to_string(),
                    error: d.error.clone(),
                    kept_as: d.kept_as.display().to_string(),
                    resumed_from: point.step,
                });
            }
            dir.truncate_metrics(point.step)?;
            *last_checkpoint = Some(point.step);
            Trainer::<B>::restore(config.clone(), data, device, &point.checkpoint)?
        } else {
            Trainer::<B>::new(config.clone(), data, device)?
        };
        config.record = Some(RunRecord {
            dataset: summary,
            parameters: trainer.parameters(),
            code_version: crate::CODE_VERSION.to_string(),
            backend: config.backend.name().to_string(),
            device: device_name,
        });
        trainer.cfg = config.clone();
        dir.write_config(&config)?;
        send(Event::Started { run_dir: dir.path.display().to_string(), first_step: trainer.step, total_steps: config.steps });

        let mut paused = false;
        let mut stopped = false;
        while trainer.step < config.steps && !stopped {
            // Drain commands; while paused, block until one arrives.
            loop {
                let cmd = if paused { commands.recv().ok() } else { commands.try_recv().ok() };
                match cmd {
                    Some(Command::Pause) if !paused => {
                        paused = true;
                        send(Event::Paused { step: trainer.step });
                    }
                    Some(Command::Resume) if paused => {
                        paused = false;
                        send(Event::Resumed { step: trainer.step });
                    }
                    Some(Command::Stop) => {
                        stopped = true;
                        paused = false;
                    }
                    Some(Command::SampleNow) => send(write_grid(&trainer, &dir)?),
                    Some(_) => {}
                    None if paused => {
                        // The host hung up while we were paused: stop (with a checkpoint).
                        stopped = true;
                        paused = false;
                    }
                    None => break,
                }
                if !paused && stopped {
                    break;
                }
            }
            if stopped {
                break;
            }
            let rec = trainer.train_step().map_err(|cause| Error::NonFinite { cause, last_checkpoint: last_checkpoint.map(|s| dir.checkpoint_path(s)) })?;
            dir.append_metrics(&rec)?;
            let step = rec.step;
            send(Event::Step(rec));
            let early = config.log.early_marks.contains(&step);
            if early || step % config.log.checkpoint_every == 0 || step == config.steps {
                send(save_checkpoint(&trainer, &dir, last_checkpoint)?);
            }
            if early || (config.log.sample_every > 0 && step % config.log.sample_every == 0) || step == config.steps {
                send(write_grid(&trainer, &dir)?);
            }
        }
        if stopped && *last_checkpoint != Some(trainer.step) && trainer.step > 0 {
            send(save_checkpoint(&trainer, &dir, last_checkpoint)?);
        }
        send(Event::Finished { step: trainer.step, stopped });
        Ok(())
    }
}

fn save_checkpoint<B: TrainBackend>(trainer: &Trainer<B>, dir: &RunDir, last: &mut Option<u64>) -> Result<Event> {
    let path = dir.checkpoint_path(trainer.step);
    trainer.checkpoint().save(&path)?;
    *last = Some(trainer.step);
    dir.prune_checkpoints(trainer.cfg.log.keep_checkpoints)?;
    Ok(Event::CheckpointSaved { step: trainer.step, path: path.display().to_string() })
}

/// The EMA per-class grid of the current step, as the run's log settings ask.
pub fn write_grid<B: TrainBackend>(trainer: &Trainer<B>, dir: &RunDir) -> Result<Event> {
    let log = &trainer.cfg.log;
    let path = dir.samples_path(trainer.step);
    write_class_grid(trainer, &path, log.grid_per_class, log.grid_sampler, log.grid_omega, Weights::Ema, &mut |_, _| true)?;
    Ok(Event::SamplesWritten { step: trainer.step, path: path.display().to_string() })
}

/// Samples `per_class` fixed-noise images of every class and writes them as a PNG grid, one row
/// per class, head (largest class) at the top. Returns `false` if `progress` cancelled.
pub fn write_class_grid<B: TrainBackend>(
    trainer: &Trainer<B>,
    path: &std::path::Path,
    per_class: usize,
    sampler: SamplerKind,
    omega: f64,
    weights: Weights,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<bool> {
    let counts = trainer.data.counts();
    let order = grid::head_first(&counts);
    let Some(images) = trainer.sample_classes(&order, per_class, sampler, omega, weights, progress)? else {
        return Ok(false);
    };
    let rows: Vec<Vec<usize>> = (0..order.len()).map(|r| (r * per_class..(r + 1) * per_class).collect()).collect();
    let row_counts: Vec<usize> = order.iter().map(|&c| counts[c]).collect();
    grid::write_png(path, &images, trainer.data.channels, trainer.data.size, &rows, &row_counts)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DataConfig, DatasetKind};
    use crate::model::Preset;
    use crate::train::config::{LogConfig, ModelConfig};
    use std::time::Duration;

    fn config() -> TrainConfig {
        let mut data = DataConfig::new(DatasetKind::Synthetic, 0.5);
        data.image_size = Some(8);
        data.synthetic_per_class = 4;
        let log = LogConfig {
            checkpoint_every: 1_000_000,
            sample_every: 0,
            grid_per_class: 1,
            grid_sampler: SamplerKind::Ddim { steps: 2, final_x0: true, clip_x0: false },
            ..Default::default()
        };
        TrainConfig { seed: 1, log, ..TrainConfig::new("engine-test", data, ModelConfig::new(Preset::Tiny), 100_000, 2) }
    }

    fn next(h: &EngineHandle) -> Event {
        h.events.recv_timeout(Duration::from_secs(60)).expect("an event within a minute")
    }

    /// One writer per run: a second engine on a run that is training fails and names the
    /// process that holds it; the lock goes with the first engine.
    #[test]
    fn a_second_writer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let mut cfg = config();
        cfg.log.checkpoint_every = 1;
        let first = spawn(Launch::New { config: cfg, out: out.clone() });
        assert!(matches!(next(&first), Event::Started { .. }));
        while !matches!(next(&first), Event::CheckpointSaved { .. }) {}
        let second = spawn(Launch::Resume { dir: out.clone(), steps: None, from: None });
        match next(&second) {
            Event::Failed { message, .. } => {
                assert!(message.contains(&format!("process {}", std::process::id())) && message.contains("run"), "{message}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        second.join();
        first.commands.send(Command::Stop).unwrap();
        while !matches!(next(&first), Event::Finished { .. }) {}
        first.join();
        // Free again: a resume takes the lock (and runs its one remaining step).
        let third = spawn(Launch::Resume { dir: out, steps: None, from: None });
        assert!(matches!(next(&third), Event::Started { .. }));
        third.commands.send(Command::Stop).unwrap();
        while !matches!(next(&third), Event::Finished { .. } | Event::Failed { .. }) {}
        third.join();
    }

    #[test]
    fn pause_resume_sample_and_stop_through_channels() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let h = spawn(Launch::New { config: config(), out: out.clone() });
        assert!(matches!(next(&h), Event::Started { first_step: 0, total_steps: 100_000, .. }));
        h.commands.send(Command::Pause).unwrap();
        let paused_at = loop {
            if let Event::Paused { step } = next(&h) {
                break step;
            }
        };
        // While paused no step runs; a sample request is still served.
        h.commands.send(Command::SampleNow).unwrap();
        assert!(matches!(next(&h), Event::SamplesWritten { step, .. } if step == paused_at));
        h.commands.send(Command::Resume).unwrap();
        assert!(matches!(next(&h), Event::Resumed { step } if step == paused_at));
        assert!(matches!(next(&h), Event::Step(r) if r.step == paused_at + 1));
        h.commands.send(Command::Stop).unwrap();
        let (saved, finished) = loop {
            match next(&h) {
                Event::CheckpointSaved { step, .. } => {
                    if let Event::Finished { step: f, stopped } = next(&h) {
                        assert!(stopped);
                        break (step, f);
                    }
                }
                Event::Step(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(saved, finished, "stopping writes a checkpoint of the last step");
        h.join();
        let run = RunDir::open(&out).unwrap();
        assert_eq!(run.latest_checkpoint().unwrap().0, finished);
        assert_eq!(run.read_metrics().unwrap().len() as u64, finished);
        assert!(run.read_config().unwrap().record.is_some());
    }

    #[test]
    fn early_marks_write_a_checkpoint_and_a_grid() {
        let mut c = config();
        c.steps = 4;
        c.log.early_marks = vec![2];
        let dir = tempfile::tempdir().unwrap();
        let h = spawn(Launch::New { config: c, out: dir.path().join("run") });
        let marks: Vec<(&str, u64)> = h
            .events
            .iter()
            .filter_map(|e| match e {
                Event::CheckpointSaved { step, .. } => Some(("checkpoint", step)),
                Event::SamplesWritten { step, .. } => Some(("grid", step)),
                _ => None,
            })
            .collect();
        h.join();
        // Step 2 by the early mark, step 4 as the last step; nothing else (every = 10⁶, 0).
        assert_eq!(marks, [("checkpoint", 2), ("grid", 2), ("checkpoint", 4), ("grid", 4)]);
    }

    #[test]
    fn host_hanging_up_while_paused_stops_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let h = spawn(Launch::New { config: config(), out: dir.path().join("run") });
        h.commands.send(Command::Pause).unwrap();
        let EngineHandle { commands, events, thread } = h;
        while !matches!(events.recv_timeout(Duration::from_secs(60)).unwrap(), Event::Paused { .. }) {}
        drop(commands);
        let last = events.iter().last().unwrap();
        assert!(matches!(last, Event::Finished { stopped: true, .. }), "{last:?}");
        thread.unwrap().join().unwrap();
    }

    /// A run that fails before it starts (here: a dataset folder without images) removes the
    /// folder it made; a folder that existed before is left.
    #[test]
    fn a_failed_start_leaves_no_half_run() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("empty/a")).unwrap();
        let mut c = config();
        c.data = crate::data::DataConfig::new(crate::data::DatasetKind::Folder, 1.0);
        c.data.root = Some(tmp.path().join("empty"));
        for (out, existed) in [(tmp.path().join("new-run"), false), (tmp.path().join("kept"), true)] {
            if existed {
                std::fs::create_dir_all(&out).unwrap();
            }
            let h = spawn(Launch::New { config: c.clone(), out: out.clone() });
            assert!(matches!(next(&h), Event::Failed { .. }));
            h.join();
            assert_eq!(out.exists(), existed, "{}", out.display());
        }
    }

    #[test]
    fn failures_arrive_as_events() {
        let mut c = config();
        c.data.imbalance = 2.0;
        let h = spawn(Launch::New { config: c, out: tempfile::tempdir().unwrap().path().join("x") });
        match next(&h) {
            Event::Failed { message, last_checkpoint: None } => assert!(message.contains("imbalance"), "{message}"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
