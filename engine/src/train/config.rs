//! The full description of a training run, read from and written as TOML.

use super::optim::OptimConfig;
use crate::backend::BackendKind;
use crate::data::{DataConfig, sampler::BatchSampler};
use crate::diffusion::SamplerKind;
use crate::error::{Error, Result};
use crate::methods::MethodsConfig;
use crate::model::Preset;
use ltlab_types::DatasetSummary;
use serde::{Deserialize, Serialize};

/// How classifier-free guidance drops labels during training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabelDrop {
    /// The whole batch goes unconditional with probability p (all reference code).
    PerBatch,
    /// Each sample independently (what the CORAL and CCUA papers write).
    PerSample,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Run name (folder name under the runs directory).
    pub name: String,
    #[serde(default)]
    pub seed: u64,
    /// Total optimisation steps.
    pub steps: u64,
    pub batch: usize,
    #[serde(default)]
    pub backend: BackendKind,
    pub data: DataConfig,
    pub model: ModelConfig,
    #[serde(default)]
    pub optim: OptimConfig,
    #[serde(default)]
    pub diffusion: DiffusionConfig,
    /// Which images make a batch; none: the method's (OC's re-sampling, CCUA's brs) or uniform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_sampler: Option<BatchSampler>,
    /// The long-tail method stack (SPEC §4); empty = DDPM + CFG.
    #[serde(default, skip_serializing_if = "is_default")]
    pub methods: MethodsConfig,
    #[serde(default)]
    pub log: LogConfig,
    /// How `ltlab eval` samples this run unless told otherwise.
    #[serde(default, skip_serializing_if = "is_default")]
    pub eval: EvalConfig,
    /// Written by ltlab into a run's config.toml: what the run actually saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<RunRecord>,
    /// Written by `ltlab import`: the reference checkpoints the run was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported: Option<super::import::Imported>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub preset: Preset,
    /// Overrides the preset's dropout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f64>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub attn_out_init: AttnOutInit,
    /// A U-Net given layer by layer in place of the preset's (an imported model's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<Architecture>,
    /// False: a model without classes (no class embedding; pytorch-ddpm's unconditional
    /// U-Net). Its grids' rows are samples, not classes.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub conditional: bool,
}

/// The U-Net's shape, as the reference code's flags give it (`ch`, `ch_mult`,
/// `num_res_blocks`, `attn`); the time embedding is `time_mult · base_channels` wide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Architecture {
    pub base_channels: usize,
    pub channel_mults: Vec<usize>,
    pub res_blocks: usize,
    /// Levels whose ResBlocks carry self-attention (0 = full resolution).
    pub attn_levels: Vec<usize>,
    #[serde(default = "four")]
    pub time_mult: usize,
}

impl ModelConfig {
    /// The preset's U-Net as it is.
    pub fn new(preset: Preset) -> Self {
        Self { preset, dropout: None, attn_out_init: AttnOutInit::default(), architecture: None, conditional: true }
    }
}

fn yes() -> bool {
    true
}
fn is_true(v: &bool) -> bool {
    *v
}
fn four() -> usize {
    4
}

/// How the attention block's output projection starts (SPEC §2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttnOutInit {
    /// Xavier gain 1: the reference code's effective init (its ResBlock initialiser walks the
    /// attention block again after the block set the projection near zero).
    #[default]
    Xavier,
    /// Xavier gain 1e−5: the attention block's own near-zero init.
    NearZero,
}

impl AttnOutInit {
    pub fn gain(self) -> f64 {
        match self {
            Self::Xavier => 1.0,
            Self::NearZero => 1e-5,
        }
    }
}

/// Missing keys take the values of `Default` (the reference code's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiffusionConfig {
    pub timesteps: usize,
    pub beta_start: f64,
    pub beta_end: f64,
    /// Probability of dropping the label (CFG).
    pub label_drop_p: f64,
    pub label_drop: LabelDrop,
}

/// Missing keys take the values of `Default`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Steps between checkpoints (and at the last step).
    pub checkpoint_every: u64,
    /// Steps between EMA sample grids; 0 disables (a grid is still written at the end).
    pub sample_every: u64,
    /// Fixed-noise columns per class in the grids.
    pub grid_per_class: usize,
    pub grid_sampler: SamplerKind,
    pub grid_omega: f64,
    /// Keep only the newest N checkpoints; 0 keeps all.
    pub keep_checkpoints: usize,
    /// Extra steps with both a checkpoint and a grid, so that a short run's panels fill in
    /// early (the demo presets: within the first minute on two cores).
    pub early_marks: Vec<u64>,
}

/// The sampler and guidance ω a run is evaluated with by default: the ones its method's paper
/// reports (SPEC §6: each paper tuned its own), so that a preset's numbers are the paper's
/// setting. Unset, the grids' sampler and ω. The eval report names both and where they came
/// from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampler: Option<SamplerKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omega: Option<f64>,
    /// Where the values come from (paper, table), for the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Facts about a run, recorded when it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub dataset: DatasetSummary,
    pub parameters: usize,
    pub code_version: String,
    pub backend: String,
    pub device: String,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}
impl Default for DiffusionConfig {
    fn default() -> Self {
        Self { timesteps: 1000, beta_start: 1e-4, beta_end: 0.02, label_drop_p: 0.1, label_drop: LabelDrop::PerBatch }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            checkpoint_every: 1000,
            sample_every: 1000,
            grid_per_class: 8,
            grid_sampler: SamplerKind::Ddim { steps: 50, final_x0: true, clip_x0: false },
            grid_omega: 0.0,
            keep_checkpoints: 0,
            early_marks: Vec::new(),
        }
    }
}

/// The presets shipped in `assets/presets/`, embedded so the binary works from anywhere.
pub const BUILTIN_PRESETS: &[(&str, &str)] = &[
    ("demo-fashion-mnist", include_str!("../../../assets/presets/demo-fashion-mnist.toml")),
    ("demo-fashion-mnist-cbdm", include_str!("../../../assets/presets/demo-fashion-mnist-cbdm.toml")),
    ("demo-fashion-mnist-ccua", include_str!("../../../assets/presets/demo-fashion-mnist-ccua.toml")),
    ("demo-fashion-mnist-cm", include_str!("../../../assets/presets/demo-fashion-mnist-cm.toml")),
    ("demo-fashion-mnist-coral", include_str!("../../../assets/presets/demo-fashion-mnist-coral.toml")),
    ("demo-fashion-mnist-diffrop", include_str!("../../../assets/presets/demo-fashion-mnist-diffrop.toml")),
    ("demo-fashion-mnist-t2h", include_str!("../../../assets/presets/demo-fashion-mnist-t2h.toml")),
    ("demo-synthetic", include_str!("../../../assets/presets/demo-synthetic.toml")),
    ("demo-synthetic-cbdm", include_str!("../../../assets/presets/demo-synthetic-cbdm.toml")),
    ("demo-synthetic-ccua", include_str!("../../../assets/presets/demo-synthetic-ccua.toml")),
    ("demo-synthetic-cm", include_str!("../../../assets/presets/demo-synthetic-cm.toml")),
    ("demo-synthetic-coral", include_str!("../../../assets/presets/demo-synthetic-coral.toml")),
    ("demo-synthetic-diffrop", include_str!("../../../assets/presets/demo-synthetic-diffrop.toml")),
    ("demo-synthetic-t2h", include_str!("../../../assets/presets/demo-synthetic-t2h.toml")),
    ("cifar10-lt-cbdm", include_str!("../../../assets/presets/cifar10-lt-cbdm.toml")),
    ("cifar10-lt-ccua", include_str!("../../../assets/presets/cifar10-lt-ccua.toml")),
    ("cifar10-lt-cm", include_str!("../../../assets/presets/cifar10-lt-cm.toml")),
    ("cifar10-lt-coral", include_str!("../../../assets/presets/cifar10-lt-coral.toml")),
    ("cifar10-lt-ddpm", include_str!("../../../assets/presets/cifar10-lt-ddpm.toml")),
    ("cifar10-lt-diffrop", include_str!("../../../assets/presets/cifar10-lt-diffrop.toml")),
    ("cifar10-lt-t2h", include_str!("../../../assets/presets/cifar10-lt-t2h.toml")),
    ("cifar100-lt-cbdm", include_str!("../../../assets/presets/cifar100-lt-cbdm.toml")),
    ("cifar100-lt-coral", include_str!("../../../assets/presets/cifar100-lt-coral.toml")),
    ("cifar100-lt-ddpm", include_str!("../../../assets/presets/cifar100-lt-ddpm.toml")),
    ("cifar100-lt-t2h", include_str!("../../../assets/presets/cifar100-lt-t2h.toml")),
];

impl TrainConfig {
    /// A run of `steps` steps of `batch` images on `data` with `model`, every other setting its
    /// default (DDPM + CFG on flex, seed 0).
    pub fn new(name: impl Into<String>, data: DataConfig, model: ModelConfig, steps: u64, batch: usize) -> Self {
        Self {
            name: name.into(),
            seed: 0,
            steps,
            batch,
            backend: BackendKind::default(),
            data,
            model,
            optim: OptimConfig::default(),
            diffusion: DiffusionConfig::default(),
            batch_sampler: None,
            methods: MethodsConfig::default(),
            log: LogConfig::default(),
            eval: EvalConfig::default(),
            record: None,
            imported: None,
        }
    }

    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let cfg: TrainConfig = toml::from_str(text).map_err(|e| Error::data(origin, format!("not a valid run config: {e}")))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// A built-in preset by name, or a TOML file by path.
    pub fn load(name_or_path: &str) -> Result<Self> {
        if let Some((_, text)) = BUILTIN_PRESETS.iter().find(|(n, _)| *n == name_or_path) {
            return Self::from_toml(text, &format!("preset {name_or_path}"));
        }
        let path = std::path::Path::new(name_or_path);
        if !path.is_file() {
            let names: Vec<&str> = BUILTIN_PRESETS.iter().map(|(n, _)| *n).collect();
            return Err(Error::option("config", format!("`{name_or_path}` is neither a file nor a built-in preset ({})", names.join(", "))));
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml(&text, name_or_path)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the config serialises")
    }

    pub fn validate(&self) -> Result<()> {
        self.data.validate()?;
        if self.batch == 0 {
            return Err(Error::option("batch", "must be at least 1"));
        }
        if self.steps == 0 {
            return Err(Error::option("steps", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.diffusion.label_drop_p) {
            return Err(Error::option("diffusion.label_drop_p", format!("{} is not a probability", self.diffusion.label_drop_p)));
        }
        if self.diffusion.timesteps < 2 {
            return Err(Error::option("diffusion.timesteps", "must be at least 2"));
        }
        if !(self.optim.lr > 0.0 && self.optim.lr.is_finite()) {
            return Err(Error::option("lr", format!("{} must be a positive number", self.optim.lr)));
        }
        if !(0.0..1.0).contains(&self.optim.ema_decay) {
            return Err(Error::option("optim.ema_decay", format!("{} must be in [0, 1)", self.optim.ema_decay)));
        }
        if self.log.grid_per_class == 0 {
            return Err(Error::option("log.grid_per_class", "must be at least 1"));
        }
        if self.log.checkpoint_every == 0 {
            return Err(Error::option("log.checkpoint_every", "must be at least 1"));
        }
        if let Some(d) = self.model.dropout
            && !(0.0..1.0).contains(&d)
        {
            return Err(Error::option("model.dropout", format!("{d} must be in [0, 1)")));
        }
        self.methods.check(self.batch_sampler)?;
        Ok(())
    }

    /// Sets one key by its dotted TOML path (`methods.coral.weight`, `optim.lr`) to a TOML
    /// value (a bare word counts as a string); unknown keys and wrong types are errors.
    pub fn with_override(&self, assignment: &str) -> Result<Self> {
        let bad = |m: String| Error::option("set", m);
        let (key, value) = assignment.split_once('=').ok_or_else(|| bad(format!("`{assignment}`: expected KEY=VALUE")))?;
        let value: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {value}")) {
            Ok(mut t) => t.remove("v").expect("parsed"),
            Err(_) => toml::Value::String(value.to_string()),
        };
        let mut root = toml::Value::try_from(self).expect("the config serialises");
        let parts: Vec<&str> = key.trim().split('.').collect();
        let mut at = &mut root;
        for (k, part) in parts.iter().enumerate() {
            let table = at.as_table_mut().ok_or_else(|| bad(format!("`{key}`: `{}` is not a table", parts[..k].join("."))))?;
            if k + 1 == parts.len() {
                table.insert(part.to_string(), value.clone());
                break;
            }
            at = table.entry(part.to_string()).or_insert_with(|| toml::Value::Table(Default::default()));
        }
        let cfg: TrainConfig = root.try_into().map_err(|e: toml::de::Error| bad(format!("`{assignment}`: {}", e.message())))?;
        cfg.validate()?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::sampler::BatchSampler;

    /// The settings the papers used: CCUA's brs sampler only on ImageNet-LT and TinyImageNet-LT
    /// (appendix A.1), so the CIFAR preset trains on uniform batches; the EMA warm-up only in
    /// the CPU demos (the paper presets keep the reference's constant decay).
    #[test]
    fn presets_follow_the_papers() {
        let ccua = TrainConfig::load("cifar10-lt-ccua").unwrap();
        assert_eq!(ccua.methods.ccua.as_ref().unwrap().brs, None);
        assert_eq!(ccua.methods.check(ccua.batch_sampler).unwrap(), BatchSampler::Uniform);
        for (name, _) in BUILTIN_PRESETS {
            let c = TrainConfig::load(name).unwrap();
            assert_eq!(c.optim.ema_warmup, name.starts_with("demo-"), "{name}");
            assert_eq!(c.model.attn_out_init, AttnOutInit::Xavier, "{name}: the reference's effective init");
        }
    }

    /// Each CIFAR preset against its paper (the values and where they are written):
    /// (preset, steps, batch, eval sampler, eval ω).
    #[test]
    fn cifar_presets_train_and_evaluate_as_their_papers() {
        let ddpm = Some(SamplerKind::Ddpm { clip_x0: false });
        let ddim = |steps| Some(SamplerKind::Ddim { steps, final_x0: true, clip_x0: false });
        type Row = (&'static str, u64, usize, Option<SamplerKind>, Option<f64>);
        let table: &[Row] = &[
            // CORAL Tab. 3 ω for DDPM and CBDM; DDPM-1000 as the CBDM reference code samples.
            ("cifar10-lt-ddpm", 300_000, 128, ddpm, Some(0.8)),
            ("cifar100-lt-ddpm", 300_000, 128, ddpm, Some(0.8)),
            ("cifar10-lt-cbdm", 300_000, 128, ddpm, Some(1.0)),
            ("cifar100-lt-cbdm", 300_000, 128, ddpm, Some(1.6)),
            // OC: DDIM-100 (its §5); ω as CORAL's Tab. 3 ran T2H.
            ("cifar10-lt-t2h", 300_000, 128, ddim(100), Some(1.0)),
            ("cifar100-lt-t2h", 300_000, 128, ddim(100), Some(1.5)),
            // CORAL: 150k steps (§5), ω 0.6 / 0.8 (Tab. 3).
            ("cifar10-lt-coral", 150_000, 128, ddpm, Some(0.6)),
            ("cifar100-lt-coral", 150_000, 128, ddpm, Some(0.8)),
            // CCUA A.1: 200k steps, batch 64, DDIM-100 (Tab. 7), ω not reported.
            ("cifar10-lt-ccua", 200_000, 64, ddim(100), None),
            // CM appendix: 300k steps, batch 64, DDIM-50, no ω named.
            ("cifar10-lt-cm", 300_000, 64, ddim(50), None),
        ];
        for &(name, steps, batch, sampler, omega) in table {
            let c = TrainConfig::load(name).unwrap();
            assert_eq!((c.steps, c.batch), (steps, batch), "{name}: steps and batch");
            assert_eq!((c.eval.sampler, c.eval.omega), (sampler, omega), "{name}: eval sampler and ω");
            assert!(c.eval.source.is_some(), "{name}: the eval setting names its source");
        }
        // CORAL's CIFAR-100-LT values (Tab. 3), not CIFAR-10's.
        let coral = |name: &str| TrainConfig::load(name).unwrap().methods.coral.unwrap();
        let (c10, c100) = (coral("cifar10-lt-coral"), coral("cifar100-lt-coral"));
        assert_eq!((c10.temperature, c10.tau_r, c10.weight), (0.12, 0.8, 0.01));
        assert_eq!((c100.temperature, c100.tau_r, c100.weight), (0.09, 1.0, 0.01));
        // SPEC §4.5's defaults: the paper's loss (no τ_SC factor), skipped in dropped batches.
        assert!(!c100.scale_by_temperature && c100.skip_dropped);
    }
}
