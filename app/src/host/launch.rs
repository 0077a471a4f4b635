//! Starting runs: the `ltlab train` options, so that the CLI, the lab's Start and its "Copy
//! CLI" are one parser and one run; and what the run controls offer.

use clap::{Args, Parser, Subcommand};
use ltlab_engine::backend::BackendKind;
use ltlab_engine::data::{DatasetKind, sampler::BatchSampler};
use ltlab_engine::diffusion::SamplerKind;
use ltlab_engine::methods::{self, REGISTRY};
use ltlab_engine::model::Preset;
use ltlab_engine::train::TrainConfig;
use ltlab_engine::train::config::BUILTIN_PRESETS;
use ltlab_types::MethodParams;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[arg(long, conflicts_with = "resume", help = config_help())]
    pub config: Option<String>,
    /// Continue the run in this directory from its newest checkpoint.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Run directory (default runs/<name>).
    #[arg(long, conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// Model preset: paper, small, tiny or micro.
    #[arg(long, conflicts_with = "resume")]
    pub preset: Option<String>,
    #[arg(long, conflicts_with = "resume")]
    pub dataset: Option<String>,
    #[arg(long, conflicts_with = "resume")]
    pub root: Option<PathBuf>,
    /// ρ = 1/IR in (0, 1].
    #[arg(long, conflicts_with = "resume")]
    pub imbalance: Option<f64>,
    #[arg(long, conflicts_with = "resume")]
    pub image_size: Option<usize>,
    #[arg(long, conflicts_with = "resume")]
    pub batch: Option<usize>,
    /// Total steps (with --resume: the new total).
    #[arg(long)]
    pub steps: Option<u64>,
    /// With --resume: continue from the checkpoint at this step instead of the newest that
    /// loads (newer checkpoints are kept aside as *.superseded).
    #[arg(long, requires = "resume")]
    pub step: Option<u64>,
    /// flex (CPU), wgpu or cuda.
    #[arg(long, conflicts_with = "resume")]
    pub backend: Option<String>,
    #[arg(long, conflicts_with = "resume")]
    pub seed: Option<u64>,
    #[arg(long, conflicts_with = "resume")]
    pub lr: Option<f64>,
    /// Batch sampler: uniform, balanced or brs:F.
    #[arg(long, conflicts_with = "resume")]
    pub sampler: Option<String>,
    #[arg(long, conflicts_with = "resume")]
    pub checkpoint_every: Option<u64>,
    #[arg(long, conflicts_with = "resume")]
    pub sample_every: Option<u64>,
    /// Fixed-noise columns per class in the sample grids.
    #[arg(long, conflicts_with = "resume")]
    pub grid_per_class: Option<usize>,
    /// Sampler of the grids: ddpm[:clip] or ddim:K[:ref][:clip].
    #[arg(long, conflicts_with = "resume")]
    pub grid_sampler: Option<String>,
    #[arg(long = "method", conflicts_with = "resume", help = method_help())]
    pub methods: Vec<String>,
    /// Set any config key by its TOML path (repeatable), e.g. `methods.coral.weight=0.02`,
    /// `methods.oc.cutoff=800`, `diffusion.label_drop="per-sample"`.
    #[arg(long = "set", value_name = "KEY=VALUE", conflicts_with = "resume")]
    pub set: Vec<String>,
    /// Print each event as a JSON line instead of a progress bar.
    #[arg(long)]
    pub json: bool,
}

impl TrainArgs {
    pub fn config(&self) -> anyhow::Result<TrainConfig> {
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

/// `ltlab train …` alone, to read the lab's commands.
#[derive(Parser, Debug)]
#[command(name = "ltlab")]
struct TrainCommandLine {
    #[command(subcommand)]
    command: TrainOnly,
}

#[derive(Subcommand, Debug)]
enum TrainOnly {
    Train(TrainArgs),
}

/// The config `ltlab train ARGS…` would run (`args` start with `ltlab train`).
pub fn train_config(args: &[String]) -> anyhow::Result<TrainConfig> {
    let TrainOnly::Train(a) = TrainCommandLine::try_parse_from(args)?.command;
    a.config()
}

/// Every registered method's `--method` names with their hyper-parameters and defaults.
pub fn method_params() -> MethodParams {
    let names = methods::REGISTRY.iter().flat_map(|e| e.names.iter());
    names.map(|&m| (m.to_string(), methods::offered_params(m).unwrap_or_default())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_offers_its_hyper_parameters_with_defaults() {
        let p = method_params();
        let keys = |m: &str| ltlab_types::params_of(&p, m).iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>();
        // Every name of the registry, the worked example of docs/adding-a-method.md included.
        assert_eq!(p.len(), methods::method_names().len() - 1, "all but ddpm");
        assert_eq!(keys("cb-loss"), ["methods.cb_loss.beta"]);
        assert!(keys("coral").contains(&"methods.coral.weight"), "{:?}", keys("coral"));
        assert!(keys("cbdm").contains(&"methods.cbdm.tau"), "{:?}", keys("cbdm"));
        // OC's mode is the method's name, not a parameter.
        assert!(keys("t2h").iter().all(|k| k.starts_with("methods.oc.") && !k.ends_with(".mode")), "{:?}", keys("t2h"));
        // Every default goes back through `--set` unchanged.
        for (m, params) in &p {
            let mut args: Vec<String> = ["ltlab", "train", "--method", m].iter().map(|s| s.to_string()).collect();
            for (k, v) in params {
                args.extend(["--set".to_string(), format!("{k}={v}")]);
            }
            let with_set = train_config(&args).unwrap_or_else(|e| panic!("{m}: {e:#}"));
            let plain = train_config(&args[..4]).unwrap();
            assert_eq!(with_set.methods, plain.methods, "{m}");
        }
    }
}
