use clap::Subcommand;
use ltlab_engine::backend::{BackendKind, WithBackend, dispatch};
use ltlab_engine::burn::tensor::backend::AutodiffBackend;
use ltlab_engine::burn::tensor::backend::Backend;
use ltlab_engine::data::{DataConfig, Dataset, DatasetKind};
use ltlab_engine::diffusion::sampler::SampleRequest;
use ltlab_engine::diffusion::{SamplerKind, sample};
use ltlab_engine::methods::REGISTRY;
use ltlab_engine::model::Preset;
use ltlab_engine::ops::TrainBackend;
use ltlab_engine::train::config::ModelConfig;
use ltlab_engine::train::{TrainConfig, Trainer};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// The lab's frame time on real run directories without a window: per scenario (pointer
    /// over the loss plot, scrubbing with the arrow keys, the compare view, a further run
    /// training) p50/p95/max
    /// in ms, the open time of each run and the resident memory. `tools/long_run.py` writes
    /// long runs to open.
    Lab {
        /// Run directories to open.
        #[arg(long, num_args = 1.., required = true)]
        runs: Vec<PathBuf>,
        /// Frames per scenario.
        #[arg(long, default_value_t = 300)]
        frames: usize,
        #[arg(long)]
        json: bool,
    },
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
    /// Per-step cost of every long-tail method relative to DDPM: same model, data, batch, seed
    /// and backend, in one process, steps interleaved round by round.
    Methods {
        /// Model preset: paper, small, tiny or micro.
        #[arg(long, default_value = "small")]
        preset: String,
        #[arg(long, default_value_t = 32)]
        batch: usize,
        #[arg(long, default_value = "flex")]
        backend: String,
        /// Rounds; each round times `--steps` steps of every method in turn.
        #[arg(long, default_value_t = 3)]
        rounds: u64,
        #[arg(long, default_value_t = 4)]
        steps: u64,
        #[arg(long, default_value_t = 2)]
        warmup: u64,
        #[arg(long, default_value_t = 32)]
        image_size: usize,
        /// Methods to compare with DDPM (comma-separated; `a+b` stacks a and b). Default: every
        /// registered method (OC as T2H).
        #[arg(long)]
        methods: Option<String>,
        /// Method options (repeatable), applied to the entries that contain that method, e.g.
        /// `methods.diffrop.partner_grad=false`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Sampling throughput (images/s) of a model preset with a sampler and guidance, on
    /// synthetic 32×32 RGB with 10 classes (the weights do not change the cost), and the time
    /// 50,000 samples (an FID evaluation) would take.
    Sample {
        #[arg(long, default_value = "small")]
        preset: String,
        /// Images per model call (the guided call runs twice as many rows).
        #[arg(long, default_value_t = 256)]
        batch: usize,
        /// Images timed.
        #[arg(long, default_value_t = 512)]
        images: usize,
        #[arg(long, default_value = "ddim:100")]
        sampler: String,
        /// Guidance ω (0: one unguided call per step).
        #[arg(long, default_value_t = 1.5)]
        omega: f64,
        #[arg(long, default_value = "flex")]
        backend: String,
        #[arg(long, default_value_t = 32)]
        image_size: usize,
        #[arg(long)]
        json: bool,
    },
    /// Evaluation cost: a feature network over images (random weights: the cost does not
    /// depend on them) and every SPEC §5 metric on N real + N generated feature vectors.
    /// `tools/peer_eval_bench.py` runs the same in PyTorch/numpy/scipy and prints the ratios.
    Eval {
        /// Feature vectors per set (real and generated).
        #[arg(long, default_value_t = 10000)]
        samples: usize,
        #[arg(long, default_value_t = 128)]
        dim: usize,
        #[arg(long, default_value_t = 10)]
        classes: usize,
        /// Network whose extraction is timed: domain or inception.
        #[arg(long, default_value = "domain")]
        network: String,
        /// Images pushed through the network.
        #[arg(long, default_value_t = 1000)]
        images: usize,
        #[arg(long, default_value_t = 16)]
        image_size: usize,
        #[arg(long, default_value_t = 1)]
        channels: usize,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        #[arg(long, default_value = "flex")]
        backend: String,
        #[arg(long)]
        json: bool,
    },
    /// Latent-map cost and quality: t-SNE and UMAP (and PCA) of the feature vectors in a .npy
    /// file, each timed (k-NN included) and scored by k-NN preservation. Layouts are written as
    /// OUT/<method>.npy. `tools/peer_embed_bench.py` runs openTSNE and umap-learn on the same
    /// file and prints the ratios.
    Embed {
        /// n × d float32 .npy of feature vectors.
        #[arg(long)]
        input: PathBuf,
        /// Comma-separated: pca, tsne, umap.
        #[arg(long, default_value = "tsne,umap")]
        methods: String,
        /// Neighbours of the k-NN preservation.
        #[arg(long, default_value_t = 10)]
        k: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Folder for the layouts.
        #[arg(long)]
        out: Option<PathBuf>,
        /// t-SNE learning rate (default: max(2n, 200)).
        #[arg(long)]
        tsne_lr: Option<f64>,
        #[arg(long, default_value_t = 750)]
        tsne_epochs: usize,
        #[arg(long, default_value_t = 30.0)]
        perplexity: f64,
        /// UMAP epochs (default: 500 up to 10,000 points, else 200).
        #[arg(long)]
        umap_epochs: Option<usize>,
        #[arg(long)]
        json: bool,
    },
}

/// The per-step cost a registered method is held to (ratio to DDPM); none for stacks.
fn cost_target(name: &str) -> Option<f64> {
    REGISTRY.iter().find(|e| e.names.contains(&name)).and_then(|e| e.cost_target)
}

/// A benchmark's result: its JSON record with `--json`, else its table.
fn report(json: bool, record: serde_json::Value, table: impl FnOnce()) {
    if json {
        println!("{record}");
    } else {
        table();
    }
}

/// A trainer on `config` after `warmup` untimed steps (allocation, autotune, shaders).
fn warm_trainer<B: TrainBackend>(config: TrainConfig, data: Dataset, device: &B::Device, warmup: u64) -> anyhow::Result<Trainer<B>> {
    let mut t = Trainer::<B>::new(config, data, device.clone())?;
    for _ in 0..warmup {
        t.train_step()?;
    }
    Ok(t)
}

/// One row of `bench methods`.
#[derive(serde::Serialize)]
struct MethodRow {
    method: String,
    seconds_per_step: f64,
    ratio_to_ddpm: f64,
    flops_per_step: f64,
    flops_ratio_to_ddpm: f64,
    target: Option<f64>,
}

struct MethodsBench {
    base: TrainConfig,
    methods: Vec<String>,
    set: Vec<String>,
    rounds: u64,
    warmup: u64,
    json: bool,
}

impl WithBackend for MethodsBench {
    type Output = anyhow::Result<()>;
    fn run<B: TrainBackend>(self, device: B::Device, device_name: String) -> anyhow::Result<()> {
        let data = self.base.data.load()?;
        let names: Vec<String> = std::iter::once("ddpm".to_string()).chain(self.methods.iter().cloned()).collect();
        let mut trainers = Vec::new();
        for name in &names {
            let mut c = self.base.clone();
            for part in name.split('+') {
                c.methods.add(part)?;
            }
            for s in &self.set {
                // `methods.X.…` only where X is in this entry's stack.
                let table = s.strip_prefix("methods.").and_then(|k| k.split('.').next());
                let present = |t: &str| serde_json::to_value(&c.methods).ok().and_then(|v| v.get(t).cloned()).is_some();
                if table.is_none_or(present) {
                    c = c.with_override(s)?;
                }
            }
            c.validate()?;
            trainers.push(warm_trainer::<B>(c, data.clone(), &device, self.warmup)?);
        }
        let mut secs = vec![0.0f64; names.len()];
        for _ in 0..self.rounds {
            for (k, t) in trainers.iter_mut().enumerate() {
                secs[k] += timed_steps(t, self.base.steps, &device)?;
            }
        }
        let steps = (self.rounds * self.base.steps) as f64;
        let c = &self.base;
        // The network work per step (warm-up included: the same batches for every method).
        let size = trainers[0].data.size;
        let ddpm_flops = trainers[0].model.forward_flops(size);
        let work: Vec<f64> = trainers.iter().map(|t| t.pass_rows.flops(&t.model.forward_flops(size)) / t.step as f64).collect();
        let rows: Vec<MethodRow> = names
            .iter()
            .enumerate()
            .map(|(k, n)| MethodRow {
                method: n.clone(),
                seconds_per_step: secs[k] / steps,
                ratio_to_ddpm: secs[k] / secs[0],
                flops_per_step: work[k],
                flops_ratio_to_ddpm: work[k] / work[0],
                target: cost_target(n),
            })
            .collect();
        let record = serde_json::json!({
            "bench": "methods", "preset": c.model.preset.name(), "batch": c.batch, "image_size": c.data.image_size,
            "backend": c.backend.name(), "device": device_name, "steps_per_method": steps,
            "forward_flops_per_image": {"trunk": ddpm_flops.trunk, "up_path": ddpm_flops.up_path}, "methods": &rows,
        });
        report(self.json, record, || {
            let side = c.data.image_size.unwrap_or(0);
            println!(
                "bench methods: preset {}, batch {}, {side}×{side}, {} on {device_name}, {steps} timed steps each",
                c.model.preset.name(),
                c.batch,
                c.backend.name()
            );
            println!("{:<10} {:>10} {:>8} {:>8} {:>8}", "method", "s/step", "ratio", "FLOPs", "target");
            for r in &rows {
                let target = r.target.map_or(String::new(), |t| format!("≤ {t}"));
                println!("{:<10} {:>10.4} {:>8.3} {:>8.3} {:>8}", r.method, r.seconds_per_step, r.ratio_to_ddpm, r.flops_ratio_to_ddpm, target);
            }
            println!("ratio: time per step / DDPM's. FLOPs: network work per step / DDPM's (a backward counted as two forwards),");
            println!("the ratio a compute-bound backend cannot go below; a backend with idle capacity at this batch can.");
        });
        Ok(())
    }
}

/// Seconds for `steps` training steps, the device synchronised on both ends.
fn timed_steps<B: TrainBackend>(t: &mut Trainer<B>, steps: u64, device: &B::Device) -> anyhow::Result<f64> {
    B::sync(device)?;
    let start = Instant::now();
    for _ in 0..steps {
        t.train_step()?; // each step reads its losses back, so it has finished when it returns
    }
    B::sync(device)?;
    Ok(start.elapsed().as_secs_f64())
}

struct SampleBench {
    config: TrainConfig,
    images: usize,
    sampler: SamplerKind,
    omega: f64,
    json: bool,
}

impl WithBackend for SampleBench {
    type Output = anyhow::Result<()>;
    fn run<B: TrainBackend>(self, device: B::Device, device_name: String) -> anyhow::Result<()> {
        let data = self.config.data.load()?;
        let t = Trainer::<B>::new(self.config.clone(), data, device.clone())?;
        let classes = t.data.num_classes();
        let request = |images: usize, sampler| SampleRequest {
            labels: (0..images).map(|i| i % classes).collect(),
            ids: (0..images as u64).collect(),
            omega: self.omega,
            sampler,
            seed: 0,
            channels: t.data.channels,
            size: t.data.size,
            batch: self.config.batch,
        };
        // Warm-up: one batch through two steps of the same shapes (allocation, autotune, shaders).
        let warm = self.config.batch.min(self.images);
        sample(&t.ema, &t.schedule, &request(warm, SamplerKind::Ddim { steps: 2, final_x0: true, clip_x0: false }), &device, &mut |_, _| true)?;
        <B::InnerBackend as Backend>::sync(&device)?;
        let start = Instant::now();
        let out = sample(&t.ema, &t.schedule, &request(self.images, self.sampler), &device, &mut |_, _| true)?;
        // Reading the images back is part of sampling them.
        let _ = out.map(|x| x.into_data());
        let secs = start.elapsed().as_secs_f64();
        let ips = self.images as f64 / secs;
        let c = &self.config;
        let calls = self.sampler.evaluations(c.diffusion.timesteps);
        let record = serde_json::json!({
            "bench": "sample", "preset": c.model.preset.name(), "batch": c.batch, "image_size": t.data.size,
            "backend": c.backend.name(), "device": device_name, "parameters": t.parameters(),
            "sampler": self.sampler.label(), "omega": self.omega, "model_calls": calls,
            "rows_per_call": if self.omega == 0.0 { 1 } else { 2 }, "images": self.images,
            "seconds": secs, "images_per_s": ips, "seconds_for_50k": 50_000.0 / ips,
        });
        report(self.json, record, || {
            let (p, s) = (c.model.preset.name(), t.data.size);
            println!(
                "bench sample: preset {p} ({} parameters), {s}×{s}, {} with ω {}, batch {}, {} on {device_name}",
                t.parameters(),
                self.sampler.label(),
                self.omega,
                c.batch,
                c.backend.name()
            );
            println!("{} images in {secs:.2} s: {ips:.1} images/s; 50,000 samples would take {:.1} min", self.images, 50_000.0 / ips / 60.0);
        });
        Ok(())
    }
}

struct TrainBench {
    config: TrainConfig,
    warmup: u64,
    json: bool,
}

impl WithBackend for TrainBench {
    type Output = anyhow::Result<()>;
    fn run<B: TrainBackend>(self, device: B::Device, device_name: String) -> anyhow::Result<()> {
        let data = self.config.data.load()?;
        let mut t = warm_trainer::<B>(self.config.clone(), data, &device, self.warmup)?;
        let secs = timed_steps(&mut t, self.config.steps, &device)?;
        let steps = self.config.steps as f64;
        let ips = steps * self.config.batch as f64 / secs;
        // Network work actually done per second (a training image = three forwards).
        let gflops_per_s = ips * 3.0 * t.model.forward_flops(t.data.size).total() / 1e9;
        let c = &self.config;
        let record = serde_json::json!({
            "bench": "train", "preset": c.model.preset.name(), "batch": c.batch, "image_size": t.data.size,
            "backend": c.backend.name(), "device": device_name, "parameters": t.parameters(),
            "steps": c.steps, "warmup": self.warmup, "seconds": secs,
            "seconds_per_step": secs / steps, "images_per_s": ips, "network_gflops_per_s": gflops_per_s,
        });
        report(self.json, record, || {
            let (p, s) = (c.model.preset.name(), t.data.size);
            println!("bench train: preset {p} ({} parameters), batch {}, {s}×{s}, {} on {device_name}", t.parameters(), c.batch, c.backend.name());
            println!(
                "{:.4} s/step over {} steps ({} warm-up excluded): {ips:.1} images/s, {gflops_per_s:.1} GFLOP/s of network work",
                secs / steps,
                c.steps,
                self.warmup
            );
        });
        Ok(())
    }
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Lab { runs, frames, json } => super::bench_lab::LabBench { runs, frames, json }.run(),
        BenchCommand::Embed { input, methods, k, seed, out, tsne_lr, tsne_epochs, perplexity, umap_epochs, json } => {
            use ltlab_engine::analysis::embed::{EmbedConfig, EmbedMethod, embed, knn_preservation, tsne::TsneConfig, umap::UmapConfig};
            let cfg = EmbedConfig {
                tsne: TsneConfig { learning_rate: tsne_lr, epochs: tsne_epochs, perplexity, ..Default::default() },
                umap: UmapConfig { n_epochs: umap_epochs, ..Default::default() },
            };
            let methods: Vec<EmbedMethod> = methods.split(',').map(|m| EmbedMethod::parse(m.trim())).collect::<Result<_, _>>()?;
            let f = ltlab_engine::eval::feature_file::read_features(&input)?;
            let mut rows = Vec::new();
            for m in methods {
                let t0 = std::time::Instant::now();
                let xy = embed(&f, m, &cfg, seed, &mut |_, _| true)?;
                let secs = t0.elapsed().as_secs_f64();
                let kept = knn_preservation(&f, &xy, k)?;
                if let Some(dir) = &out {
                    let layout = ltlab_engine::geometry::Features::new(f.n, 2, xy)?;
                    ltlab_engine::eval::feature_file::write_features(&dir.join(format!("{}.npy", m.name())), &layout)?;
                }
                rows.push((m.name(), secs, kept));
            }
            let results: Vec<_> = rows.iter().map(|(m, s, kept)| serde_json::json!({ "method": m, "seconds": s, "knn_preservation": kept })).collect();
            report(json, serde_json::json!({ "n": f.n, "d": f.d, "k": k, "results": results }), || {
                for (m, secs, kept) in &rows {
                    println!("{m:<5} {secs:>8.2} s  k-NN preservation (k = {k}) {kept:.4}");
                }
            });
            Ok(())
        }
        BenchCommand::Eval { samples, dim, classes, network, images, image_size, channels, batch, backend, json } => {
            if !["domain", "inception"].contains(&network.as_str()) {
                anyhow::bail!("option `network`: `{network}`; expected domain or inception");
            }
            if samples < 4 || classes == 0 || dim == 0 || images == 0 {
                anyhow::bail!("bench eval: samples ≥ 4, classes, dim and images ≥ 1");
            }
            let backend = BackendKind::parse(&backend)?;
            dispatch(backend, EvalBench { samples, dim, classes, network, images, image_size, channels, batch, json })?
        }
        BenchCommand::Train { preset, batch, backend, steps, warmup, image_size, json } => {
            let config = bench_config(&preset, batch, &backend, steps, image_size, 1.0)?;
            let backend = config.backend;
            dispatch(backend, TrainBench { config, warmup, json })?
        }
        BenchCommand::Sample { preset, batch, images, sampler, omega, backend, image_size, json } => {
            if batch == 0 || images == 0 {
                anyhow::bail!("bench sample: --batch and --images must be at least 1");
            }
            let config = bench_config(&preset, batch, &backend, 1, image_size, 1.0)?;
            let sampler = SamplerKind::parse(&sampler)?;
            let backend = config.backend;
            dispatch(backend, SampleBench { config, images, sampler, omega, json })?
        }
        BenchCommand::Methods { preset, batch, backend, rounds, steps, warmup, image_size, methods, set, json } => {
            // Long-tailed data, so that every method has head and tail classes to work on.
            let base = bench_config(&preset, batch, &backend, steps, image_size, 0.1)?;
            let methods = match methods {
                Some(list) => list.split(',').map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect(),
                None => REGISTRY.iter().map(|e| e.names[0].to_string()).collect(),
            };
            let backend = base.backend;
            dispatch(backend, MethodsBench { base, methods, set, rounds, warmup, json })?
        }
    }
}

/// A training config on the synthetic set for benchmarks.
fn bench_config(preset: &str, batch: usize, backend: &str, steps: u64, image_size: usize, imbalance: f64) -> anyhow::Result<TrainConfig> {
    let mut data = DataConfig::new(DatasetKind::Synthetic, imbalance);
    data.image_size = Some(image_size);
    data.synthetic_per_class = (batch.div_ceil(10).max(16) as f64 / imbalance).ceil() as usize;
    let config =
        TrainConfig { backend: BackendKind::parse(backend)?, ..TrainConfig::new("bench", data, ModelConfig::new(Preset::parse(preset)?), steps, batch) };
    config.validate()?;
    Ok(config)
}

struct EvalBench {
    samples: usize,
    dim: usize,
    classes: usize,
    network: String,
    images: usize,
    image_size: usize,
    channels: usize,
    batch: usize,
    json: bool,
}

impl WithBackend for EvalBench {
    type Output = anyhow::Result<()>;
    fn run<B: TrainBackend>(self, device: B::Device, device_name: String) -> anyhow::Result<()> {
        use ltlab_engine::eval::domain::{Domain, DomainInfo, DomainNetConfig};
        use ltlab_engine::eval::features::{Extractor, Images};
        use ltlab_engine::eval::inception::FidInception;
        use ltlab_engine::eval::report::{ClassInfo, FakeLogits, LabelledSet, MetricOptions, evaluate};
        use ltlab_engine::geometry::Features;
        use ltlab_engine::rng::{self, Stream};
        type I<B> = <B as AutodiffBackend>::InnerBackend;

        // Features: class-dependent Gaussian clouds, the generated set shifted and wider.
        let labels: Vec<usize> = (0..self.samples).map(|i| i % self.classes).collect();
        let centres = rng::normal_vec(&mut rng::rng(0, Stream::Analysis, 1), self.classes * self.dim);
        let cloud = |stream: u64, scale: f32, shift: f32| {
            let z = rng::normal_vec(&mut rng::rng(0, Stream::Analysis, stream), self.samples * self.dim);
            let data = z.iter().enumerate().map(|(k, v)| centres[labels[k / self.dim] * self.dim + k % self.dim] * 2.0 + v * scale + shift).collect();
            Features::new(self.samples, self.dim, data)
        };
        let (real, fake) = (cloud(2, 1.0, 0.0)?, cloud(3, 1.2, 0.1)?);
        let info = ClassInfo {
            names: (0..self.classes).map(|c| format!("class {c}")).collect(),
            train_counts: Some((0..self.classes).map(|c| 1000 >> c.min(9)).collect()),
            resembles: Vec::new(),
        };
        let clock = Instant::now();
        let report = evaluate(
            &LabelledSet { features: &real, labels: Some(&labels) },
            &LabelledSet { features: &fake, labels: Some(&labels) },
            &FakeLogits::NONE,
            &info,
            true,
            "bench",
            &MetricOptions::default(),
        )?;
        let metrics_total = clock.elapsed().as_secs_f64();

        let (size, channels) = if self.network == "inception" { (self.image_size, 3) } else { (self.image_size, self.channels) };
        let ex: Extractor<I<B>> = if self.network == "inception" {
            Extractor::Inception { net: FidInception::new(&device), file: "random weights".into() }
        } else {
            let net = DomainNetConfig::new(channels, self.classes).init(&device);
            let info = DomainInfo {
                dataset: "bench".into(),
                fingerprint: String::new(),
                class_names: info.names.clone(),
                channels,
                size,
                width: 32,
                epochs: 0,
                train_images: 0,
                val_accuracy: 0.0,
                val_accuracy_per_class: Vec::new(),
            };
            Extractor::Domain { domain: Domain { net, info }, file: "random weights".into() }
        };
        let pixels: Vec<f32> = (0..self.images * channels * size * size).map(|k| ((k * 7919) % 256) as f32 / 255.0).collect();
        let imgs = Images::new(self.images, channels, size, pixels)?;
        // One untimed batch first (allocation, autotune).
        ex.extract(&Images::new(1, channels, size, imgs.data[..channels * size * size].to_vec())?, 1, &device, &mut |_, _| {})?;
        let clock = Instant::now();
        ex.extract(&imgs, self.batch, &device, &mut |_, _| {})?;
        let feature_secs = clock.elapsed().as_secs_f64();
        let per_image = feature_secs / self.images as f64;
        let record = serde_json::json!({
            "bench": "eval", "samples": self.samples, "dim": self.dim, "classes": self.classes, "device": device_name,
            "metrics_seconds": report.seconds, "metrics_total": metrics_total,
            "network": self.network, "images": self.images, "image_size": size, "channels": channels, "batch": self.batch,
            "feature_seconds": feature_secs, "feature_seconds_per_image": per_image,
        });
        self::report(self.json, record, || {
            println!(
                "bench eval on {device_name}: {} real + {} generated vectors of dimension {}, {} classes",
                self.samples, self.samples, self.dim, self.classes
            );
            for (k, v) in &report.seconds {
                println!("  {k:<18} {v:>8.2} s");
            }
            println!("  {:<18} {metrics_total:>8.2} s", "metrics total");
            let (n, b) = (self.images, self.batch);
            println!(
                "{} network, {n} images of {channels}×{size}×{size}, batch {b}: {feature_secs:.2} s ({:.1} images/s; {:.0} s per 10k)",
                self.network,
                1.0 / per_image,
                per_image * 1e4
            );
        });
        Ok(())
    }
}
