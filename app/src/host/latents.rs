//! Latent maps and entanglement sweeps of a run's checkpoints, saved in its `analysis/`: one
//! implementation for `ltlab analyze latents` and the lab's background jobs.

use ltlab_engine::analysis::embed::{EmbedMethod, Progress};
use ltlab_engine::analysis::latents::{LatentSetup, ModelAt, bottlenecks, entanglement, latent_map, read_entanglement, record_entanglement, stratified};
use ltlab_engine::error::write_atomic;
use ltlab_engine::ops::TrainBackend;
use ltlab_engine::train::Trainer;
use ltlab_engine::train::checkpoint::Checkpoint;
use ltlab_engine::train::run_dir::RunDir;
use ltlab_types::{Entanglement, LatentMap};
use std::path::Path;

/// The latent map of a run's checkpoint (default: the newest), saved in the run's `analysis/`
/// with its entanglement added to the run's list (returned by step). Shared by the CLI and the
/// lab's background jobs; `progress` returning false cancels.
pub fn compute_latent_map<B: TrainBackend>(
    run: &Path,
    step: Option<u64>,
    setup: &LatentSetup,
    method: EmbedMethod,
    device: &B::Device,
    progress: &mut Progress,
) -> anyhow::Result<(LatentMap, Vec<Entanglement>)> {
    let dir = RunDir::open(run)?;
    let (trainer, step) = RunDir::open(run)?.trainer::<B>(step, device.clone())?;
    let real = trainer.cfg.data.load_balanced()?;
    let model = trainer.ema.clone().merge_experts();
    let at = ModelAt { model: &model, schedule: &trainer.schedule, step, device };
    let map = latent_map(&at, &real, &trainer.data.counts(), setup, method, progress)?;
    write_atomic(&dir.latent_map_path(step, setup.t, setup.conditional, method.name()), serde_json::to_string(&map)?.as_bytes())?;
    let all = record_entanglement(&dir.entanglement_path(setup.t, setup.conditional), &map.entanglement)?;
    Ok((map, all))
}

/// Entanglement at every checkpoint of a run that has none recorded yet with these settings;
/// `progress(done, total)` returning false cancels. Returns the run's list by step.
pub fn entanglement_sweep<B: TrainBackend>(
    run: &Path,
    setup: &LatentSetup,
    device: &B::Device,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> anyhow::Result<Vec<Entanglement>> {
    let dir = RunDir::open(run)?;
    let path = dir.entanglement_path(setup.t, setup.conditional);
    let have: Vec<u64> = read_entanglement(&path)?.into_iter().filter(|e| e.same_measure(setup.k, setup.per_class)).map(|e| e.step).collect();
    let steps: Vec<u64> = dir.checkpoints().into_iter().map(|(s, _)| s).filter(|s| !have.contains(s)).collect();
    let mut all = read_entanglement(&path)?;
    if !steps.is_empty() {
        // The data once for every checkpoint: only the weights change.
        let cfg = dir.read_config()?;
        let data = cfg.data.load()?;
        let real = cfg.data.load_balanced()?;
        let chosen = stratified(&real, setup.per_class, setup.seed);
        let labels: Vec<usize> = chosen.iter().map(|&i| real.labels[i]).collect();
        for (i, &s) in steps.iter().enumerate() {
            if !progress(i, steps.len()) {
                return Err(ltlab_engine::error::Error::Cancelled.into());
            }
            let ckpt = Checkpoint::read(&dir.checkpoint_path(s))?;
            let trainer = Trainer::<B>::restore(cfg.clone(), data.clone(), device.clone(), &ckpt)?;
            let model = trainer.ema.merge_experts();
            let f = bottlenecks(&model, &trainer.schedule, &real, &chosen, setup, device, &mut |_| true)?;
            all = record_entanglement(&path, &entanglement(&f, &labels, real.num_classes(), setup.k, s, setup.t, setup.per_class))?;
        }
    }
    progress(steps.len(), steps.len());
    Ok(all)
}
