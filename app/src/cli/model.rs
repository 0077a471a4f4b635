use anyhow::bail;
use clap::{Args, Subcommand};
use ltlab_engine::backend::{BackendKind, Flex, WithBackend, dispatch};
use ltlab_engine::burn::module::AutodiffModule;
use ltlab_engine::burn::prelude::*;
use ltlab_engine::eval::feature_file::{read_array, read_labels, write_array};
use ltlab_engine::model::{ClassCond, Preset, UNet};
use ltlab_engine::ops::TrainBackend;
use ltlab_engine::train::run_dir::RunDir;
use ltlab_engine::weights;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Parameter count, shape and forward FLOPs per image of a preset.
    Info {
        /// paper, small, tiny or micro.
        #[arg(long)]
        preset: String,
        #[arg(long)]
        classes: usize,
        #[arg(long, default_value_t = 32)]
        image_size: usize,
        /// Image channels (3 for RGB, 1 for grey).
        #[arg(long, default_value_t = 3)]
        channels: usize,
        #[arg(long)]
        json: bool,
    },
    /// The network's ε on given inputs (.npy files), to compare a model with another
    /// implementation: ε(x, t, y), or ε(x, t, ∅) without --y.
    Forward(ForwardArgs),
}

#[derive(Args, Debug)]
pub struct ForwardArgs {
    #[arg(long)]
    run: PathBuf,
    /// Checkpoint step (default: the newest).
    #[arg(long)]
    step: Option<u64>,
    /// ema or raw.
    #[arg(long, default_value = "ema", value_parser = ["ema", "raw"])]
    weights: String,
    /// Noisy images, N × C × S × S float32/float64.
    #[arg(long)]
    x: PathBuf,
    /// Timesteps, N integers in [0, T).
    #[arg(long)]
    t: PathBuf,
    /// Class labels, N integers; none: the unconditional forward.
    #[arg(long)]
    y: Option<PathBuf>,
    /// Where ε is written (.npy, float32, the shape of x).
    #[arg(long)]
    out: PathBuf,
    /// Backend (default: flex).
    #[arg(long, default_value = "flex")]
    backend: String,
}

impl WithBackend for ForwardArgs {
    type Output = anyhow::Result<()>;
    fn run<B: TrainBackend>(self, device: B::Device, _: String) -> anyhow::Result<()> {
        let (trainer, step) = RunDir::open(&self.run)?.trainer::<B>(self.step, device.clone())?;
        let (shape, x) = read_array(&self.x)?;
        let (c, s) = (trainer.data.channels, trainer.data.size);
        let [n, xc, xh, xw] = shape[..] else { bail!("{}: expected N × {c} × {s} × {s}, found shape {shape:?}", self.x.display()) };
        if (xc, xh, xw) != (c, s, s) || n == 0 {
            bail!("{}: expected N × {c} × {s} × {s} (the run's images), found shape {shape:?}", self.x.display());
        }
        let t = read_labels(&self.t)?;
        let timesteps = trainer.schedule.len();
        if t.len() != n || t.iter().any(|&v| v >= timesteps) {
            bail!("{}: expected {n} timesteps in [0, {timesteps}), found {} values (max {:?})", self.t.display(), t.len(), t.iter().max());
        }
        let model = if self.weights == "raw" { trainer.model.valid() } else { trainer.ema.clone() };
        let cond = match &self.y {
            None => ClassCond::Uncond,
            Some(path) => {
                let classes = model.num_classes();
                let y = read_labels(path)?;
                if classes == 0 {
                    bail!("option `y`: the run's model has no classes (an unconditional U-Net); leave --y out");
                }
                if y.len() != n || y.iter().any(|&v| v >= classes) {
                    bail!("{}: expected {n} class labels in [0, {classes}), found {} values (max {:?})", path.display(), y.len(), y.iter().max());
                }
                let y: Vec<i64> = y.into_iter().map(|v| v as i64).collect();
                ClassCond::Labels(Tensor::from_data(TensorData::new(y, [n]), &device))
            }
        };
        let x = Tensor::from_data(TensorData::new(x, [n, c, s, s]), &device);
        let eps = model.forward(x, &t, &cond, false).eps;
        let values: Vec<f32> = eps.into_data().convert::<f32>().to_vec().expect("f32 values");
        write_array(&self.out, &shape, &values)?;
        eprintln!("wrote ε of {n} images ({} weights, step {step}) to {}", self.weights, self.out.display());
        Ok(())
    }
}

pub fn run(cmd: ModelCommand) -> anyhow::Result<()> {
    let (preset, classes, image_size, channels, json) = match cmd {
        ModelCommand::Forward(a) => {
            let backend = BackendKind::parse(&a.backend)?;
            return dispatch(backend, a)?;
        }
        ModelCommand::Info { preset, classes, image_size, channels, json } => (preset, classes, image_size, channels, json),
    };
    if classes == 0 {
        anyhow::bail!("option `classes`: must be at least 1");
    }
    let cfg = Preset::parse(&preset)?.config(channels, classes, image_size)?;
    let model: UNet<Flex> = cfg.init(&Default::default());
    let total = weights::count(&model);
    let class_emb = classes * cfg.time_dim();
    // The sinusoidal time table is computed, not stored: it is not a parameter.
    let table = 1000 * cfg.base_channels;
    let flops = model.forward_flops(image_size);
    if json {
        let v = serde_json::json!({
            "preset": preset, "classes": classes, "image_size": image_size, "channels": channels,
            "parameters": total, "class_embedding": class_emb, "parameters_without_class_embedding": total - class_emb,
            "sinusoidal_table_not_counted": table,
            "forward_flops_per_image": flops.total(), "forward_flops_trunk": flops.trunk, "forward_flops_up_path": flops.up_path,
            "config": cfg,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "preset {preset}: base channels {}, multipliers {:?}, {} ResBlocks down / {} up per level, attention at levels {:?}, dropout {}",
            cfg.base_channels,
            cfg.channel_mults,
            cfg.res_blocks,
            cfg.res_blocks + 1,
            cfg.attn_levels,
            cfg.dropout
        );
        println!("parameters: {} (incl. class embedding {classes}×{} = {class_emb})", fmt_int(total), cfg.time_dim());
        println!(
            "forward per {image_size}×{image_size} image: {:.3} GFLOPs (down path and middle {:.3}, up path {:.3}; 2 per multiply-add, element-wise ops not counted)",
            flops.total() / 1e9,
            flops.trunk / 1e9,
            flops.up_path / 1e9
        );
        println!("not counted: the fixed sinusoidal time table (1000×{} = {table} values, computed, not learned)", cfg.base_channels);
    }
    Ok(())
}

pub fn fmt_int(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
