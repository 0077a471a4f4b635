use super::DataArgs;
use crate::host::latents::{compute_latent_map, entanglement_sweep};
use anyhow::bail;
use clap::{Args, Subcommand};
use ltlab_engine::analysis::classes::class_report;
use ltlab_engine::analysis::embed::EmbedMethod;
use ltlab_engine::analysis::latents::LatentSetup;
use ltlab_engine::analysis::overlap::pair_overlap;
use ltlab_engine::analysis::transfer::{TransferSetup, transfer_curve, transfer_matrix};
use ltlab_engine::backend::{WithBackend, dispatch};
use ltlab_engine::burn::module::AutodiffModule;
use ltlab_engine::data::sampler::BatchSampler;
use ltlab_engine::diffusion::Schedule;
use ltlab_engine::error::write_atomic;
use ltlab_engine::methods::oc::{Gate, OcMode};
use ltlab_engine::ops::TrainBackend;
use ltlab_engine::train::run_dir::RunDir;
use ltlab_types::class_splits;
use ltlab_types::{LatentMap, class_colour};
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum AnalyzeCommand {
    /// OC's transfer probability P(t) without a model (SPEC §4.2): overall and per class, and
    /// the class→class matrix at one t.
    Transfer(TransferArgs),
    /// Per-class denoising loss and bottleneck k-NN class purity of a run's EMA model on the
    /// balanced real data, with Many/Medium/Few means.
    Classes(ClassesArgs),
    /// The latent map: the EMA model's bottleneck on real images (the same number per class) at
    /// one t, laid out by PCA, t-SNE or UMAP, with per-class entanglement (k-NN purity,
    /// silhouette). Writes OUT.json, OUT.csv and OUT.png.
    Latents(LatentsArgs),
    /// How much of DiffROP's e^{−d} term can act: per t bucket, the share of different-class
    /// pairs (one random partner per anchor, at the anchor's t and ε) with e^{−d} > 0.01, for d
    /// summed over elements (the paper's Eq. 12) and averaged; the run's EMA model on its own
    /// training data.
    Diffrop(DiffropArgs),
}

#[derive(Args, Debug)]
pub struct DiffropArgs {
    #[arg(long)]
    run: PathBuf,
    /// Checkpoint step (default: the newest).
    #[arg(long)]
    step: Option<u64>,
    /// ema or raw (the trained weights: a young run's EMA is mostly its initial network).
    #[arg(long, default_value = "ema", value_parser = ["ema", "raw"])]
    weights: String,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Batches averaged over (one pair per image of each).
    #[arg(long, default_value_t = 20)]
    batches: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    json: bool,
}

struct DiffropJob(DiffropArgs);

impl WithBackend for DiffropJob {
    type Output = anyhow::Result<()>;
    fn run<B: TrainBackend>(self, device: B::Device, _: String) -> anyhow::Result<()> {
        let a = self.0;
        if a.batch < 2 || a.batches == 0 {
            bail!("options --batch (≥ 2) and --batches (≥ 1) must be positive");
        }
        let (trainer, step) = RunDir::open(&a.run)?.trainer::<B>(a.step, device.clone())?;
        let model = if a.weights == "raw" { trainer.model.valid() } else { trainer.ema.clone() }.merge_experts();
        let rows = pair_overlap(&model, &trainer.schedule, &trainer.data, a.batch, a.batches, a.seed, &device);
        if a.json {
            let v = serde_json::json!({ "run": a.run, "step": step, "weights": a.weights, "methods": trainer.cfg.methods.label(), "rows": rows });
            println!("{}", serde_json::to_string_pretty(&v)?);
            return Ok(());
        }
        println!(
            "{} (step {step}, {} weights): pairs with e^-d > 0.01, d = ‖μ_a − μ_p‖² summed (the paper) or averaged over {} elements",
            a.run.display(),
            a.weights,
            trainer.data.image_len()
        );
        println!("{:>9} {:>6} {:>10} {:>12} {:>10} {:>12}", "t", "pairs", "alive sum", "median sum", "alive mean", "median mean");
        for r in &rows {
            println!(
                "{:>4}-{:<4} {:>6} {:>10.3} {:>12.4} {:>10.3} {:>12.6}",
                r.t_from, r.t_to, r.pairs, r.alive_sum, r.median_sum, r.alive_mean, r.median_mean
            );
        }
        Ok(())
    }
}

#[derive(Args, Debug)]
pub struct LatentsArgs {
    #[arg(long)]
    run: PathBuf,
    /// Checkpoint step (default: the newest).
    #[arg(long)]
    step: Option<u64>,
    /// pca, tsne or umap.
    #[arg(long, default_value = "umap")]
    method: String,
    /// Diffusion time of x_t.
    #[arg(long, default_value_t = 100)]
    t: usize,
    /// Real images per class (fewer where a class has fewer).
    #[arg(long, default_value_t = 100)]
    per_class: usize,
    /// Neighbours of the k-NN purity.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Use the unconditional forward (no class given) instead of the true class.
    #[arg(long)]
    uncond: bool,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output path without extension (default: RUN/analysis/latents-step-…).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also compute the entanglement at every checkpoint (kept in RUN/analysis/).
    #[arg(long)]
    all_checkpoints: bool,
}

struct LatentsJob(LatentsArgs);

impl WithBackend for LatentsJob {
    type Output = anyhow::Result<()>;
    fn run<B: TrainBackend>(self, device: B::Device, _: String) -> anyhow::Result<()> {
        let a = self.0;
        let method = EmbedMethod::parse(&a.method)?;
        if a.per_class < 2 || a.k == 0 {
            bail!("options --per-class (≥ 2) and --k (≥ 1) must be positive");
        }
        let dir = RunDir::open(&a.run)?;
        let setup = LatentSetup { per_class: a.per_class, t: a.t, k: a.k, conditional: !a.uncond, seed: a.seed };
        if a.all_checkpoints {
            let steps = dir.checkpoints().len() as u64;
            let pb = super::progress_bar(steps, "entanglement");
            entanglement_sweep::<B>(&a.run, &setup, &device, &mut |done, _| {
                pb.set_position(done as u64);
                true
            })?;
            pb.finish_and_clear();
        }
        let pb = super::progress_bar(1000, method.name());
        let (map, all) = compute_latent_map::<B>(&a.run, a.step, &setup, method, &device, &mut |p, _| {
            pb.set_position((p * 1000.0) as u64);
            true
        })?;
        pb.finish_and_clear();
        let step = map.step;
        let stem = a.out.clone().unwrap_or_else(|| dir.latent_map_path(step, a.t, setup.conditional, method.name()).with_extension(""));
        let stem = match stem.extension().and_then(|e| e.to_str()) {
            Some("json" | "csv" | "png") => stem.with_extension(""),
            _ => stem,
        };
        let with_ext = |e: &str| PathBuf::from(format!("{}.{e}", stem.display()));
        if with_ext("json") != dir.latent_map_path(step, a.t, setup.conditional, method.name()) {
            write_atomic(&with_ext("json"), serde_json::to_string(&map)?.as_bytes())?;
        }
        write_atomic(&with_ext("csv"), latent_csv(&map).as_bytes())?;
        let png = scatter_png(&map, 640);
        let mut bytes = Vec::new();
        png.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)?;
        write_atomic(&with_ext("png"), &bytes)?;
        let e = &map.entanglement;
        println!(
            "{} step {step}: {} of {} points ({} per class) at t = {}, {}",
            a.run.display(),
            method.name(),
            map.labels.len(),
            a.per_class,
            a.t,
            if setup.conditional { "conditional" } else { "unconditional" }
        );
        let w = map.class_names.iter().map(|n| n.chars().count()).max().unwrap_or(4).max(4);
        println!("{:<5} {:<w$} {:>6} {:>8} {:>11}", "class", "name", "train", "purity", "silhouette");
        for (c, name) in map.class_names.iter().enumerate() {
            println!("{c:<5} {name:<w$} {:>6} {:>8.3} {:>11.3}", map.train_counts[c], e.purity[c], e.silhouette[c]);
        }
        for (cls, name) in class_splits(&map.train_counts).iter().zip(["many", "medium", "few"]) {
            let mean = |v: &[f64]| cls.iter().map(|&c| v[c]).sum::<f64>() / cls.len().max(1) as f64;
            println!("{name:<width$} {:>6} {:>8.3} {:>11.3}", "", mean(&e.purity), mean(&e.silhouette), width = w + 6);
        }
        if all.len() > 1 {
            println!("over checkpoints (mean over classes): step, purity, silhouette");
            for x in &all {
                let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
                println!("{:>8} {:>8.3} {:>11.3}", x.step, mean(&x.purity), mean(&x.silhouette));
            }
        }
        println!("wrote {}.{{json,csv,png}}", stem.display());
        Ok(())
    }
}

/// One row per point: x, y, class index, class name, index of the image in the balanced data.
fn latent_csv(map: &LatentMap) -> String {
    let mut out = String::from("x,y,class,name,image\n");
    for (i, &l) in map.labels.iter().enumerate() {
        let _ = writeln!(out, "{},{},{l},{},{}", map.xy[2 * i], map.xy[2 * i + 1], csv_field(&map.class_names[l]), map.indices[i]);
    }
    out
}

/// The map as a scatter plot (class colours of the lab, 3×3 dots, 5 % margins), no text.
fn scatter_png(map: &LatentMap, size: u32) -> image::RgbImage {
    let mut img = image::RgbImage::from_pixel(size, size, image::Rgb([255, 255, 255]));
    let n = map.labels.len();
    let range = |d: usize| (0..n).map(|i| map.xy[2 * i + d]).fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    let ((x0, x1), (y0, y1)) = (range(0), range(1));
    let inner = size as f32 * 0.9;
    let to_px = |v: f32, lo: f32, hi: f32| (size as f32 * 0.05 + inner * (v - lo) / (hi - lo).max(1e-12)) as i64;
    for (i, &l) in map.labels.iter().enumerate() {
        let (px, py) = (to_px(map.xy[2 * i], x0, x1), size as i64 - 1 - to_px(map.xy[2 * i + 1], y0, y1));
        for (dx, dy) in (-1..=1).flat_map(|a| (-1..=1).map(move |b| (a, b))) {
            let (x, y) = (px + dx, py + dy);
            if (0..size as i64).contains(&x) && (0..size as i64).contains(&y) {
                img.put_pixel(x as u32, y as u32, image::Rgb(class_colour(l)));
            }
        }
    }
    img
}

#[derive(Args, Debug)]
pub struct ClassesArgs {
    #[arg(long)]
    run: PathBuf,
    /// Checkpoint step (default: the newest).
    #[arg(long)]
    step: Option<u64>,
    /// Real images per class (from the balanced data, seeded choice).
    #[arg(long, default_value_t = 100)]
    per_class: usize,
    /// Diffusion time of the bottleneck for the purity.
    #[arg(long, default_value_t = 500)]
    t: usize,
    /// Neighbours of the k-NN purity.
    #[arg(long, default_value_t = 10)]
    k: usize,
    #[arg(long)]
    json: bool,
}

struct ClassesJob(ClassesArgs);

impl WithBackend for ClassesJob {
    type Output = anyhow::Result<()>;
    fn run<B: TrainBackend>(self, device: B::Device, _: String) -> anyhow::Result<()> {
        let a = self.0;
        let (trainer, step) = RunDir::open(&a.run)?.trainer::<B>(a.step, device.clone())?;
        if a.t >= trainer.schedule.len() {
            bail!("option --t: {} is outside 0..{}", a.t, trainer.schedule.len());
        }
        let real = trainer.cfg.data.load_balanced()?;
        let counts = trainer.data.counts();
        let model = trainer.ema.clone().merge_experts();
        let setup = LatentSetup { per_class: a.per_class, t: a.t, k: a.k, conditional: true, seed: 7 };
        let r = class_report(&model, &trainer.schedule, &real, &counts, &setup, &device);
        if a.json {
            let v = serde_json::json!({ "run": a.run, "step": step, "methods": trainer.cfg.methods.label(), "report": r });
            println!("{}", serde_json::to_string_pretty(&v)?);
            return Ok(());
        }
        println!(
            "{} (step {step}, {}): loss over t ~ U, k-NN purity (k = {}) of the bottleneck at t = {}",
            a.run.display(),
            trainer.cfg.methods.label(),
            r.k,
            r.t_purity
        );
        println!("{:<5} {:<14} {:>6} {:>8} {:>12} {:>14}", "class", "name", "train", "loss", "purity cond", "purity uncond");
        for row in &r.rows {
            println!("{:<5} {:<14} {:>6} {:>8.5} {:>12.3} {:>14.3}", row.class, row.name, row.train_count, row.loss, row.purity_cond, row.purity_uncond);
        }
        for (name, cls, l, pc, pu) in &r.splits {
            println!("{name:<6} {:<26} {l:>8.5} {pc:>12.3} {pu:>14.3}", format!("{cls:?}"));
        }
        Ok(())
    }
}

#[derive(Args, Debug)]
pub struct TransferArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Gate: t2h, h2t or full.
    #[arg(long, default_value = "t2h")]
    mode: String,
    /// β variant: p_sel ∝ q(y_j)^β·exp(ℓ) with no gate (needs --mode full).
    #[arg(long)]
    beta: Option<f64>,
    /// Accept swaps only for t below this.
    #[arg(long)]
    cutoff: Option<usize>,
    /// Batch sampler: uniform, balanced or brs:F.
    #[arg(long, default_value = "balanced")]
    sampler: String,
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Batches averaged over.
    #[arg(long, default_value_t = 20)]
    batches: usize,
    /// Spacing of the t grid.
    #[arg(long, default_value_t = 10)]
    t_step: usize,
    /// Also print the class→class matrix at this t (a second CSV table after a blank line).
    #[arg(long)]
    matrix_at: Option<usize>,
    /// Seed of the batches and ε.
    #[arg(long, default_value_t = 0)]
    batch_seed: u64,
    #[arg(long, conflicts_with = "json")]
    csv: bool,
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: AnalyzeCommand) -> anyhow::Result<()> {
    match cmd {
        AnalyzeCommand::Transfer(a) => transfer(a),
        AnalyzeCommand::Latents(a) => {
            let backend = RunDir::open(&a.run)?.read_config()?.backend;
            dispatch(backend, LatentsJob(a))?
        }
        AnalyzeCommand::Classes(a) => {
            let backend = RunDir::open(&a.run)?.read_config()?.backend;
            dispatch(backend, ClassesJob(a))?
        }
        AnalyzeCommand::Diffrop(a) => {
            let backend = RunDir::open(&a.run)?.read_config()?.backend;
            dispatch(backend, DiffropJob(a))?
        }
    }
}

fn transfer(a: TransferArgs) -> anyhow::Result<()> {
    let mode = OcMode::parse(&a.mode)?;
    if a.beta.is_some() && mode != OcMode::Full {
        bail!("option --beta: the β variant has no gate; use it with --mode full");
    }
    if a.batch < 2 || a.batches == 0 || a.t_step == 0 {
        bail!("options --batch (≥ 2), --batches (≥ 1) and --t-step (≥ 1) must be positive");
    }
    let schedule = Schedule::ddpm();
    if let Some(t) = a.matrix_at.filter(|&t| t >= schedule.len()) {
        bail!("option --matrix-at: {t} is outside 0..{}", schedule.len());
    }
    let data = a.data.config()?.load()?;
    let setup = TransferSetup {
        gate: Gate { mode, beta: a.beta, cutoff: a.cutoff },
        sampler: BatchSampler::parse(&a.sampler)?,
        batch: a.batch,
        batches: a.batches,
        t_step: a.t_step,
        seed: a.batch_seed,
    };
    let pb = super::progress_bar((schedule.len() / a.t_step) as u64, "transfer");
    let curve = transfer_curve(&data, &schedule, &setup, &mut |done, _| pb.set_position(done as u64));
    pb.finish_and_clear();
    let matrix = a.matrix_at.map(|t| transfer_matrix(&data, &schedule, &setup, t));
    let names = data.class_names.clone();
    if a.json {
        let v = serde_json::json!({
            "dataset": data.summary().name, "imbalance": a.data.imbalance, "mode": a.mode, "beta": a.beta,
            "cutoff": a.cutoff, "sampler": a.sampler, "batch": a.batch, "batches": a.batches,
            "classes": names, "counts": data.counts(), "curve": curve,
            "matrix_at": a.matrix_at, "matrix": matrix,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let mut out = String::new();
    let fmt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
    writeln!(out, "t,p_transfer,{}", names.iter().map(|n| csv_field(n)).collect::<Vec<_>>().join(","))?;
    for (k, t) in curve.t.iter().enumerate() {
        let per: Vec<String> = curve.per_class[k].iter().map(|&v| fmt(v)).collect();
        writeln!(out, "{t},{:.6},{}", curve.p_transfer[k], per.join(","))?;
    }
    if let Some(m) = matrix {
        writeln!(out)?;
        writeln!(out, "from\\to,{}", names.iter().map(|n| csv_field(n)).collect::<Vec<_>>().join(","))?;
        for (a, row) in m.iter().enumerate() {
            let cells: Vec<String> = (0..names.len()).map(|b| fmt(row.as_ref().map(|r| r[b]))).collect();
            writeln!(out, "{},{}", csv_field(&names[a]), cells.join(","))?;
        }
    }
    print!("{out}");
    Ok(())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}
