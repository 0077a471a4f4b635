use super::DataArgs;
use anyhow::bail;
use clap::{Args, Subcommand};
use ltlab_engine::analysis::classes::class_report;
use ltlab_engine::backend::{WithBackend, dispatch};
use ltlab_engine::burn::tensor::backend::AutodiffBackend;
use ltlab_engine::train::run_dir::RunDir;
use std::path::PathBuf;
use ltlab_engine::analysis::transfer::{TransferSetup, transfer_curve, transfer_matrix};
use ltlab_engine::data::sampler::BatchSampler;
use ltlab_engine::diffusion::Schedule;
use ltlab_engine::methods::oc::{Gate, OcMode};
use std::fmt::Write as _;

#[derive(Subcommand, Debug)]
pub enum AnalyzeCommand {
    /// OC's transfer probability P(t) without a model (SPEC §4.2): overall and per class, and
    /// the class→class matrix at one t.
    Transfer(TransferArgs),
    /// Per-class denoising loss and bottleneck k-NN class purity of a run's EMA model on the
    /// balanced real data, with Many/Medium/Few means.
    Classes(ClassesArgs),
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
    fn run<B: AutodiffBackend>(self, device: B::Device, _: String) -> anyhow::Result<()> {
        let a = self.0;
        let (trainer, step) = super::open_run::<B>(&a.run, a.step, device.clone())?;
        if a.t >= trainer.schedule.len() {
            bail!("option --t: {} is outside 0..{}", a.t, trainer.schedule.len());
        }
        let real = trainer.cfg.data.load_balanced()?;
        let counts = trainer.data.counts();
        let model = trainer.ema.clone().merge_experts();
        let r = class_report(&model, &trainer.schedule, &real, &counts, a.per_class, a.t, a.k, 7, &device);
        if a.json {
            let v = serde_json::json!({ "run": a.run, "step": step, "methods": trainer.cfg.methods.label(), "report": r });
            println!("{}", serde_json::to_string_pretty(&v)?);
            return Ok(());
        }
        println!("{} (step {step}, {}): loss over t ~ U, k-NN purity (k = {}) of the bottleneck at t = {}", a.run.display(), trainer.cfg.methods.label(), r.k, r.t_purity);
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
        AnalyzeCommand::Classes(a) => {
            let backend = RunDir::open(&a.run)?.read_config()?.backend;
            dispatch(backend, ClassesJob(a))?
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
