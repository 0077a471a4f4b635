use clap::Args;
use ltlab_engine::backend::BackendKind;
use ltlab_engine::data::{DatasetKind, sampler::BatchSampler};
use ltlab_engine::diffusion::SamplerKind;
use ltlab_engine::methods::REGISTRY;
use ltlab_engine::model::Preset;
use ltlab_engine::train::TrainConfig;
use ltlab_engine::train::config::BUILTIN_PRESETS;
use ltlab_engine::train::engine::{self, Launch};
use ltlab_types::Event;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[arg(long, conflicts_with = "resume", help = config_help())]
    config: Option<String>,
    /// Continue the run in this directory from its newest checkpoint.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Run directory (default runs/<name>).
    #[arg(long, conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// Model preset: paper, small or tiny.
    #[arg(long, conflicts_with = "resume")]
    preset: Option<String>,
    #[arg(long, conflicts_with = "resume")]
    dataset: Option<String>,
    #[arg(long, conflicts_with = "resume")]
    root: Option<PathBuf>,
    /// ρ = 1/IR in (0, 1].
    #[arg(long, conflicts_with = "resume")]
    imbalance: Option<f64>,
    #[arg(long, conflicts_with = "resume")]
    image_size: Option<usize>,
    #[arg(long, conflicts_with = "resume")]
    batch: Option<usize>,
    /// Total steps (with --resume: the new total).
    #[arg(long)]
    steps: Option<u64>,
    /// flex (CPU), wgpu or cuda.
    #[arg(long, conflicts_with = "resume")]
    backend: Option<String>,
    #[arg(long, conflicts_with = "resume")]
    seed: Option<u64>,
    #[arg(long, conflicts_with = "resume")]
    lr: Option<f64>,
    /// Batch sampler: uniform, balanced or brs:F.
    #[arg(long, conflicts_with = "resume")]
    sampler: Option<String>,
    #[arg(long, conflicts_with = "resume")]
    checkpoint_every: Option<u64>,
    #[arg(long, conflicts_with = "resume")]
    sample_every: Option<u64>,
    /// Fixed-noise columns per class in the sample grids.
    #[arg(long, conflicts_with = "resume")]
    grid_per_class: Option<usize>,
    /// Sampler of the grids: ddpm[:clip] or ddim:K[:ref][:clip].
    #[arg(long, conflicts_with = "resume")]
    grid_sampler: Option<String>,
    #[arg(long = "method", conflicts_with = "resume", help = method_help())]
    methods: Vec<String>,
    /// Set any config key by its TOML path (repeatable), e.g. `methods.coral.weight=0.02`,
    /// `methods.oc.cutoff=800`, `diffusion.label_drop="per-sample"`.
    #[arg(long = "set", value_name = "KEY=VALUE", conflicts_with = "resume")]
    set: Vec<String>,
    /// Print each event as a JSON line instead of a progress bar.
    #[arg(long)]
    json: bool,
}

impl TrainArgs {
    pub(crate) fn config(&self) -> anyhow::Result<TrainConfig> {
        let mut c = TrainConfig::load(self.config.as_deref().unwrap_or("demo-synthetic"))?;
        if let Some(p) = &self.preset {
            c.model.preset = Preset::parse(p)?;
        }
        if let Some(d) = &self.dataset {
            c.data.dataset = DatasetKind::parse(d)?;
            c.name = format!("{}-{d}", c.name);
        }
        if let Some(r) = &self.root {
            c.data.root = Some(r.clone());
        }
        if let Some(v) = self.imbalance {
            c.data.imbalance = v;
        }
        if self.image_size.is_some() {
            c.data.image_size = self.image_size;
        }
        if let Some(v) = self.batch {
            c.batch = v;
        }
        if let Some(v) = self.steps {
            c.steps = v;
        }
        if let Some(b) = &self.backend {
            c.backend = BackendKind::parse(b)?;
        }
        if let Some(v) = self.seed {
            c.seed = v;
        }
        if let Some(v) = self.lr {
            c.optim.lr = v;
        }
        if let Some(s) = &self.sampler {
            c.batch_sampler = Some(BatchSampler::parse(s)?);
        }
        if let Some(v) = self.checkpoint_every {
            c.log.checkpoint_every = v;
        }
        if let Some(v) = self.sample_every {
            c.log.sample_every = v;
        }
        if let Some(v) = self.grid_per_class {
            c.log.grid_per_class = v;
        }
        if let Some(s) = &self.grid_sampler {
            c.log.grid_sampler = SamplerKind::parse(s)?;
        }
        for m in &self.methods {
            c.methods.add(m)?;
        }
        if !self.methods.is_empty() {
            c.name = format!("{}-{}", c.name, c.methods.label());
        }
        for s in &self.set {
            c = c.with_override(s)?;
        }
        c.validate()?;
        Ok(c)
    }
}

fn config_help() -> String {
    let names: Vec<&str> = BUILTIN_PRESETS.iter().map(|(n, _)| *n).collect();
    format!("A run config: a TOML file or a built-in one: {}", names.join(", "))
}

/// `--method`'s help, from the method registry.
fn method_help() -> String {
    let mut s = String::from("Add a long-tail method with its defaults (repeatable; `ddpm` clears the stack):");
    for e in REGISTRY {
        s.push_str(&format!("\n  {}: {}", e.names.join(", "), e.summary));
    }
    s
}

pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    let launch = match &a.resume {
        Some(dir) => Launch::Resume { dir: dir.clone(), steps: a.steps },
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
            println!("{}", serde_json::to_string(&ev)?);
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
            Event::Paused { .. } | Event::Resumed { .. } => {}
        }
    }
    handle.join();
    result
}
