//! The headless commands.

pub mod analyze;
mod bench;
mod data;
mod eval;
mod model;
mod sample;
mod train;

use clap::{Args, Parser, Subcommand};
use ltlab_engine::data::{DataConfig, DatasetKind, Profile};
use ltlab_engine::burn::tensor::backend::AutodiffBackend;
use ltlab_engine::train::Trainer;
use ltlab_engine::train::checkpoint::Checkpoint;
use ltlab_engine::train::run_dir::RunDir;
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(name = "ltlab", version, about = "A lab for long-tailed (class-imbalanced) diffusion")]
pub struct Cli {
    /// Without a command: open the desktop lab.
    #[command(subcommand)]
    command: Option<Command>,
    /// Where the lab puts the runs it starts.
    #[arg(long, default_value = "runs")]
    runs: PathBuf,
    /// The lab's settings file (default: the platform's app-data folder).
    #[arg(long)]
    settings: Option<PathBuf>,
    /// Open the lab and start the new run its controls hold at once (as if Start was clicked).
    #[arg(long)]
    start: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Inspect datasets after the long-tail profile.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Inspect model presets.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Train a model (a new run, or `--resume DIR`).
    Train(train::TrainArgs),
    /// Sample per-class grids from a run's EMA model.
    Sample(sample::SampleArgs),
    /// Sample-quality metrics (FID, KID, IS, precision/recall, PRD; per class and Many/Medium/
    /// Few) of a run, two image folders or two feature files; `eval train-features` makes the
    /// domain network.
    Eval(eval::EvalArgs),
    /// Analyses: OC's transfer probability, per-class loss and purity, latent maps.
    #[command(subcommand)]
    Analyze(analyze::AnalyzeCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let Some(command) = cli.command else {
        return crate::lab::run(cli.runs, cli.settings, cli.start);
    };
    match command {
        Command::Data(c) => data::run(c),
        Command::Model(c) => model::run(c),
        Command::Train(a) => train::run(a),
        Command::Sample(a) => sample::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Analyze(c) => analyze::run(c),
        Command::Bench(c) => bench::run(c),
    }
}

/// The config `ltlab train ARGS…` would run (`args` start with `ltlab train`), so that the
/// lab's "Start" and its "Copy CLI" are the same run.
pub fn train_config(args: &[String]) -> anyhow::Result<ltlab_engine::train::TrainConfig> {
    match Cli::try_parse_from(args)?.command {
        Some(Command::Train(a)) => a.config(),
        _ => anyhow::bail!("not a train command: {}", args.join(" ")),
    }
}

/// The dataset options shared by several commands.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// synthetic, fashion-mnist, mnist, cifar10, cifar100 or folder.
    #[arg(long, default_value = "synthetic")]
    dataset: String,
    /// Folder with the dataset's files (fashion-mnist defaults to Debian's path).
    #[arg(long)]
    root: Option<PathBuf>,
    /// ρ = 1/IR in (0, 1], e.g. 0.01 for IR 100.
    #[arg(long, default_value_t = 0.01)]
    imbalance: f64,
    /// Long-tail profile: exp or step.
    #[arg(long, default_value = "exp")]
    profile: String,
    /// Seed of the per-class selection.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Resize images to this side length.
    #[arg(long)]
    image_size: Option<usize>,
}

impl DataArgs {
    pub fn config(&self) -> anyhow::Result<DataConfig> {
        let mut c = DataConfig::new(DatasetKind::parse(&self.dataset)?, self.imbalance);
        c.root = self.root.clone();
        c.profile = Profile::parse(&self.profile)?;
        c.seed = self.seed;
        c.image_size = self.image_size;
        c.validate()?;
        Ok(c)
    }
}

/// A progress bar with ETA for long work.
pub fn progress_bar(total: u64, what: &str) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(total);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed} elapsed, ETA {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_prefix(what.to_string());
    pb
}

/// A run's trainer restored from the checkpoint at `step` (default: the newest).
pub fn open_run<B: AutodiffBackend>(run: &Path, step: Option<u64>, device: B::Device) -> anyhow::Result<(Trainer<B>, u64)> {
    let dir = RunDir::open(run)?;
    let cfg = dir.read_config()?;
    let (step, path) = match step {
        Some(s) => {
            let p = dir.checkpoint_path(s);
            if !p.is_file() {
                let have: Vec<String> = dir.checkpoints().iter().map(|(s, _)| s.to_string()).collect();
                anyhow::bail!("option `step`: {} has no checkpoint at step {s} (have: {})", run.display(), have.join(", "));
            }
            (s, p)
        }
        None => dir.latest_checkpoint().ok_or_else(|| anyhow::anyhow!("{}: no checkpoints yet", run.display()))?,
    };
    let data = cfg.data.load()?;
    Ok((Trainer::<B>::restore(cfg, data, device, &Checkpoint::read(&path)?)?, step))
}
