//! The headless commands.

pub mod analyze;
mod backends;
mod bench;
mod bench_lab;
mod data;
mod eval;
mod import;
mod model;
mod sample;
mod train;

use clap::{Args, Subcommand};
use ltlab_engine::data::{DataConfig, DatasetKind, Profile};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Inspect datasets after the long-tail profile.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Inspect model presets.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Train a model (a new run, or `--resume DIR`).
    Train(crate::host::launch::TrainArgs),
    /// A checkpoint of the reference PyTorch code (or a folder of them) as an ltlab run.
    Import(import::ImportArgs),
    /// Sample per-class grids from a run's EMA model.
    Sample(sample::SampleArgs),
    /// Sample-quality metrics (FID, KID, IS, precision/recall, PRD; per class and Many/Medium/
    /// Few) of a run, two image folders or two feature files; `eval train-features` makes the
    /// domain network.
    Eval(Box<eval::EvalArgs>),
    /// Analyses: OC's transfer probability, per-class loss and purity, latent maps.
    #[command(subcommand)]
    Analyze(analyze::AnalyzeCommand),
    /// What this binary can train on here (flex, wgpu's adapter, CUDA's device).
    Backends(backends::BackendsArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// The web lab: serve the runs folder and the page, live, to browsers.
    Serve(crate::serve::ServeArgs),
}

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Data(c) => data::run(c),
        Command::Model(c) => model::run(c),
        Command::Train(a) => train::run(a),
        Command::Import(a) => import::run(a),
        Command::Sample(a) => sample::run(a),
        Command::Eval(a) => eval::run(*a),
        Command::Analyze(c) => analyze::run(c),
        Command::Backends(a) => backends::run(a),
        Command::Bench(c) => bench::run(c),
        Command::Serve(a) => crate::serve::run(a),
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
