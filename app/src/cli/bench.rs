use clap::Subcommand;
use ltlab_engine::backend::{BackendKind, WithBackend, dispatch};
use ltlab_engine::data::{DataConfig, DatasetKind};
use ltlab_engine::model::Preset;
use ltlab_engine::train::config::{DiffusionConfig, LogConfig, ModelConfig};
use ltlab_engine::train::{TrainConfig, Trainer};
use ltlab_engine::burn::tensor::backend::AutodiffBackend;
use std::time::Instant;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Training throughput of a model preset (images/s, warm-up excluded) on synthetic 32×32 RGB.
    Train {
        #[arg(long, default_value = "small")]
        preset: String,
        #[arg(long, default_value_t = 32)]
        batch: usize,
        #[arg(long, default_value = "flex")]
        backend: String,
        /// Timed steps.
        #[arg(long, default_value_t = 10)]
        steps: u64,
        /// Untimed warm-up steps (allocation, autotune, shader compilation).
        #[arg(long, default_value_t = 3)]
        warmup: u64,
        #[arg(long, default_value_t = 32)]
        image_size: usize,
        #[arg(long)]
        json: bool,
    },
}

struct TrainBench {
    config: TrainConfig,
    warmup: u64,
    json: bool,
}

impl WithBackend for TrainBench {
    type Output = anyhow::Result<()>;
    fn run<B: AutodiffBackend>(self, device: B::Device, device_name: String) -> anyhow::Result<()> {
        let data = self.config.data.load()?;
        let mut t = Trainer::<B>::new(self.config.clone(), data, device.clone())?;
        for _ in 0..self.warmup {
            t.train_step()?;
        }
        B::sync(&device)?;
        let start = Instant::now();
        for _ in 0..self.config.steps {
            t.train_step()?; // each step reads its loss back, so it has finished when it returns
        }
        B::sync(&device)?;
        let secs = start.elapsed().as_secs_f64();
        let steps = self.config.steps as f64;
        let ips = steps * self.config.batch as f64 / secs;
        let c = &self.config;
        if self.json {
            println!("{}", serde_json::json!({
                "bench": "train", "preset": c.model.preset.name(), "batch": c.batch, "image_size": t.data.size,
                "backend": c.backend.name(), "device": device_name, "parameters": t.parameters(),
                "steps": c.steps, "warmup": self.warmup, "seconds": secs,
                "seconds_per_step": secs / steps, "images_per_s": ips,
            }));
        } else {
            println!("bench train: preset {} ({} parameters), batch {}, {}×{}, {} on {device_name}",
                c.model.preset.name(), t.parameters(), c.batch, t.data.size, t.data.size, c.backend.name());
            println!("{:.4} s/step over {} steps ({} warm-up excluded): {ips:.1} images/s", secs / steps, c.steps, self.warmup);
        }
        Ok(())
    }
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    let BenchCommand::Train { preset, batch, backend, steps, warmup, image_size, json } = cmd;
    let mut data = DataConfig::new(DatasetKind::Synthetic, 1.0);
    data.image_size = Some(image_size);
    data.synthetic_per_class = batch.div_ceil(10).max(16);
    let config = TrainConfig {
        name: "bench".into(),
        seed: 0,
        steps,
        batch,
        backend: BackendKind::parse(&backend)?,
        data,
        model: ModelConfig { preset: Preset::parse(&preset)?, dropout: None },
        optim: Default::default(),
        diffusion: DiffusionConfig::default(),
        batch_sampler: None,
        methods: Default::default(),
        log: LogConfig::default(),
        record: None,
    };
    config.validate()?;
    let backend = config.backend;
    dispatch(backend, TrainBench { config, warmup, json })?
}
