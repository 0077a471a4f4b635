use clap::Args;
use ltlab_engine::backend::{BackendKind, WithBackend, dispatch};
use ltlab_engine::diffusion::SamplerKind;
use ltlab_engine::ops::TrainBackend;
use ltlab_engine::train::engine::write_class_grid;
use ltlab_engine::train::run_dir::RunDir;
use ltlab_engine::train::trainer::Weights;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct SampleArgs {
    /// The run directory.
    #[arg(long)]
    run: PathBuf,
    /// Checkpoint step (default: the newest).
    #[arg(long)]
    step: Option<u64>,
    /// Fixed-noise images per class.
    #[arg(long, default_value_t = 8)]
    per_class: usize,
    /// ddpm[:clip] or ddim:K[:ref][:clip] (`ref`: the reference code's ending without the final
    /// x̂₀ step; `clip`: clip x̂₀ to [−1, 1] at every step).
    #[arg(long, default_value = "ddim:50")]
    sampler: String,
    /// Guidance ω: ε̂ = (1+ω)·ε(x, y) − ω·ε(x, ∅).
    #[arg(long, default_value_t = 0.0)]
    omega: f64,
    /// Sample with the EMA weights (default), the raw trained weights, or the EMA without CM's
    /// low-rank experts (θ^g only, the CM paper's ablation).
    #[arg(long, default_value = "ema", value_parser = ["ema", "raw", "ema-base"])]
    weights: String,
    /// Backend to sample on (default: the run's).
    #[arg(long)]
    backend: Option<String>,
    /// The PNG to write (default: the run's `analysis/`, where the lab shows it as a grid
    /// "sampled now").
    #[arg(long)]
    out: Option<PathBuf>,
}

struct SampleJob {
    args: SampleArgs,
    sampler: SamplerKind,
}

impl WithBackend for SampleJob {
    type Output = anyhow::Result<()>;
    fn run<B: TrainBackend>(self, device: B::Device, _: String) -> anyhow::Result<()> {
        let a = &self.args;
        let (trainer, step) = RunDir::open(&a.run)?.trainer::<B>(a.step, device)?;
        let out = match &a.out {
            Some(p) => p.clone(),
            None => RunDir::open(&a.run)?.view_grid_path(step, &self.sampler, a.omega, a.per_class),
        };
        let total = self.sampler.evaluations(trainer.schedule.len()) as u64;
        let pb = super::progress_bar(total, "sample");
        let weights = match a.weights.as_str() {
            "raw" => Weights::Raw,
            "ema-base" => Weights::EmaBase,
            _ => Weights::Ema,
        };
        write_class_grid(&trainer, &out, a.per_class, self.sampler, a.omega, weights, &mut |done, all| {
            pb.set_length(all as u64);
            pb.set_position(done as u64);
            true
        })?;
        pb.finish_and_clear();
        println!("wrote {} (step {step}, {}, ω = {})", out.display(), self.sampler.label(), a.omega);
        Ok(())
    }
}

pub fn run(a: SampleArgs) -> anyhow::Result<()> {
    let sampler = SamplerKind::parse(&a.sampler)?;
    if a.per_class == 0 {
        anyhow::bail!("option `per-class`: must be at least 1");
    }
    let backend = match &a.backend {
        Some(b) => BackendKind::parse(b)?,
        None => RunDir::open(&a.run)?.read_config()?.backend,
    };
    dispatch(backend, SampleJob { args: a, sampler })?
}
