//! `ltlab import`: checkpoints of the reference PyTorch code as an ordinary ltlab run. One file,
//! or a folder of `ckpt_{step}.pt` (one checkpoint per step, so the scrubber walks the reference
//! run's training). The run's config takes the architecture from the tensors and the training
//! settings from the reference run's `flagfile.txt` (beside the checkpoint, or given).

use super::checkpoint::Checkpoint;
use super::config::{Architecture, ModelConfig, RunRecord, TrainConfig};
use super::run_dir::RunDir;
use super::trainer::model_config;
use crate::backend::Flex;
use crate::data::DataConfig;
use crate::error::{Error, Result};
use crate::model::Preset;
use crate::model::reference::{RefCheckpoint, RefFormat, RefWeights, read_flagfile};
use crate::weights;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where an imported run came from (written into its config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Imported {
    /// The checkpoint files, as given.
    pub files: Vec<String>,
    pub format: String,
    pub flagfile: Option<String>,
    /// What the files hold that ltlab has no place for.
    pub extras: Vec<String>,
}

/// What to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// A checkpoint file, or a folder of `ckpt_{step}.pt` / `ckpt.pt`.
    pub source: PathBuf,
    pub out: PathBuf,
    /// Overrides the format read from the keys.
    pub format: Option<RefFormat>,
    /// The reference run's flags; default: `flagfile.txt` beside the checkpoints, if there.
    pub flags: Option<PathBuf>,
    /// The data the model was trained on (its class count and channels must match).
    pub data: DataConfig,
}

/// The checkpoint files of a source, by step.
fn files(source: &Path) -> Result<Vec<PathBuf>> {
    if !source.is_dir() {
        return Ok(vec![source.to_path_buf()]);
    }
    let entries = std::fs::read_dir(source).map_err(|e| Error::io(source, e))?;
    let mut found: Vec<(u64, PathBuf)> = Vec::new();
    for e in entries {
        let path = e.map_err(|e| Error::io(source, e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let step = match name {
            "ckpt.pt" => Some(u64::MAX),
            _ => name.strip_prefix("ckpt_").and_then(|s| s.strip_suffix(".pt")).and_then(|s| s.parse().ok()),
        };
        if let Some(step) = step {
            found.push((step, path));
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(Error::data(source, "holds no ckpt_{step}.pt or ckpt.pt"));
    }
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

fn flag<T: std::str::FromStr>(flags: &BTreeMap<String, Vec<String>>, name: &str, file: &Path) -> Result<Option<T>> {
    match flags.get(name).and_then(|v| v.last()) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| Error::data(file, format!("--{name}={v}: not a value ltlab can read"))),
    }
}

/// The run config of an import: architecture from the tensors, training settings from the flags.
fn config(
    name: &str,
    r: &RefCheckpoint,
    steps: u64,
    flags: &BTreeMap<String, Vec<String>>,
    flagfile: &Path,
    data: DataConfig,
    imported: Imported,
) -> Result<TrainConfig> {
    let a = &r.architecture;
    let mut model = ModelConfig::new(Preset::Paper);
    model.architecture = Some(Architecture {
        base_channels: a.base_channels,
        channel_mults: a.channel_mults.clone(),
        res_blocks: a.res_blocks,
        attn_levels: a.attn_levels.clone(),
        time_mult: a.time_mult,
    });
    model.conditional = a.num_classes > 0;
    model.dropout = Some(flag(flags, "dropout", flagfile)?.unwrap_or(0.1));
    let batch = flag(flags, "batch_size", flagfile)?.unwrap_or(128);
    let mut cfg = TrainConfig { imported: Some(imported), ..TrainConfig::new(name, data, model, steps, batch) };
    cfg.diffusion.timesteps = a.timesteps;
    if let Some(b) = flag(flags, "beta_1", flagfile)? {
        cfg.diffusion.beta_start = b;
    }
    if let Some(b) = flag(flags, "beta_T", flagfile)? {
        cfg.diffusion.beta_end = b;
    }
    let o = &mut cfg.optim;
    o.lr = flag(flags, "lr", flagfile)?.unwrap_or(o.lr);
    o.warmup = flag(flags, "warmup", flagfile)?.unwrap_or(o.warmup);
    o.grad_clip = flag(flags, "grad_clip", flagfile)?.unwrap_or(o.grad_clip);
    o.ema_decay = flag(flags, "ema_decay", flagfile)?.unwrap_or(o.ema_decay);
    if cfg.data.image_size.is_none() {
        cfg.data.image_size = flag(flags, "img_size", flagfile)?.or(r.fixed_noise.as_ref().map(|(s, _)| s[3]));
    }
    Ok(cfg)
}

/// The host tensors of one network, checked against the parameters of ltlab's U-Net.
fn checked(weights: &RefWeights, want: &BTreeMap<String, Vec<usize>>, which: &str, file: &Path) -> Result<()> {
    for (path, shape) in want {
        match weights.get(path) {
            None => return Err(Error::data(file, format!("{which}: ltlab's `{path}` has no tensor in the file"))),
            Some((s, _)) if s != shape => return Err(Error::data(file, format!("{which}: `{path}` is {s:?} in the file, {shape:?} in ltlab's U-Net"))),
            Some(_) => {}
        }
    }
    if let Some(extra) = weights.keys().find(|k| !want.contains_key(*k)) {
        return Err(Error::data(file, format!("{which}: `{extra}` has no place in ltlab's U-Net of this shape")));
    }
    Ok(())
}

/// A reference checkpoint as ltlab's: raw weights as `model.*`, EMA as `ema.*`, the fixed noise;
/// no Adam moments (they start afresh).
fn into_checkpoint(c: RefCheckpoint, seed: u64) -> Checkpoint {
    let named = |prefix: &str, w: RefWeights| w.into_iter().map(|(k, (s, v))| (format!("{prefix}.{k}"), s, v)).collect::<Vec<_>>();
    let mut tensors = named("model", c.raw);
    tensors.extend(named("ema", c.ema));
    tensors.extend(c.fixed_noise.map(|(shape, values)| ("fixed_noise".to_string(), shape, values)));
    Checkpoint { step: c.step, seed, tensors, adam_steps: Some(BTreeMap::new()) }
}

/// Imports the checkpoints into a new run directory; returns its config and the steps written.
/// One checkpoint is in memory at a time (a folder of paper-sized ones is gigabytes); a failure
/// part-way removes the new folder, and the config is written last.
pub fn import(o: &ImportOptions) -> Result<(TrainConfig, Vec<u64>)> {
    let paths = files(&o.source)?;
    let steps = paths.iter().map(|p| RefCheckpoint::step_of(p)).collect::<Result<Vec<u64>>>()?;
    let first = RefCheckpoint::read(&paths[0], o.format)?;
    let folder = if o.source.is_dir() { o.source.clone() } else { o.source.parent().map(Path::to_path_buf).unwrap_or_default() };
    let flagfile = o.flags.clone().or_else(|| Some(folder.join("flagfile.txt")).filter(|p| p.is_file()));
    let flags = flagfile.as_deref().map(read_flagfile).transpose()?.unwrap_or_default();
    let imported = Imported {
        files: paths.iter().map(|p| p.display().to_string()).collect(),
        format: first.format.name().to_string(),
        flagfile: flagfile.as_ref().map(|p| p.display().to_string()),
        extras: first.extras.clone(),
    };
    let name = o.out.file_name().and_then(|n| n.to_str()).unwrap_or("imported");
    let last = steps.iter().copied().max().unwrap_or(0);
    let mut cfg = config(name, &first, last, &flags, flagfile.as_deref().unwrap_or(&folder), o.data.clone(), imported)?;
    cfg.validate()?;
    let data = cfg.data.load()?;
    let a = first.architecture.clone();
    if data.channels != a.image_channels {
        return Err(Error::option("dataset", format!("{} has {}-channel images; the model takes {}", data.name, data.channels, a.image_channels)));
    }
    if a.num_classes > 0 && data.num_classes() != a.num_classes {
        return Err(Error::option("dataset", format!("{} has {} classes; the model's label embedding has {}", data.name, data.num_classes(), a.num_classes)));
    }
    let unet = model_config(&cfg, &data)?.init::<Flex>(&Default::default());
    let want: BTreeMap<String, Vec<usize>> = weights::collect(&unet).into_iter().map(|p| (p.path, p.shape)).collect();
    cfg.record = Some(RunRecord {
        dataset: data.summary(),
        parameters: want.values().map(|s| s.iter().product::<usize>()).sum(),
        code_version: crate::CODE_VERSION.to_string(),
        backend: format!("imported ({})", first.format.name()),
        device: String::new(),
    });
    let fresh = !o.out.exists();
    let dir = RunDir::create(&o.out)?;
    let mut next = Some(first);
    let written = (|| -> Result<()> {
        for path in &paths {
            let c = match next.take() {
                Some(c) => c,
                None => RefCheckpoint::read(path, o.format)?,
            };
            if c.architecture != a {
                return Err(Error::data(path, format!("another network than {}", paths[0].display())));
            }
            checked(&c.ema, &want, "ema_model", path)?;
            checked(&c.raw, &want, "net_model", path)?;
            let extras = &mut cfg.imported.as_mut().expect("set above").extras;
            for e in &c.extras {
                if !extras.contains(e) {
                    extras.push(e.clone());
                }
            }
            let step = c.step;
            into_checkpoint(c, cfg.seed).save(&dir.checkpoint_path(step))?;
        }
        dir.write_config(&cfg)
    })();
    if let Err(e) = written {
        if fresh {
            let _ = std::fs::remove_dir_all(&o.out);
        }
        return Err(e);
    }
    Ok((cfg, steps))
}
