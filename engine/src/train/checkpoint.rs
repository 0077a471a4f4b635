//! Checkpoints: one safetensors file holding model, EMA, Adam moments and the fixed sampling
//! noise, with step and seed in its metadata. Written to a temp file and renamed.

use super::optim::AdamState;
use crate::error::{Error, Result};
use crate::weights::file::{read_tensors, write_tensors};
use crate::weights::{self, NamedParam};
use burn::module::Module;
use burn::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "ltlab-checkpoint-2";
/// Format 1 stored the up path's upsample conv as `up.N.Up.{weight,bias}`; format 2 nests it
/// (`up.N.Up.conv.…`) beside CM's expert. Format-1 files are read with that rename.
const FORMAT_1: &str = "ltlab-checkpoint-1";

fn migrate_from_1(name: String) -> String {
    for leaf in [".Up.weight", ".Up.bias"] {
        if let Some(stem) = name.strip_suffix(leaf) {
            return format!("{stem}.Up.conv.{}", &leaf[4..]);
        }
    }
    name
}

/// Host copy of everything a checkpoint holds.
pub struct Checkpoint {
    pub step: u64,
    pub seed: u64,
    /// Tensors by key: `model.<path>`, `ema.<path>`, `adam_m.<path>`, `adam_v.<path>`,
    /// `fixed_noise`.
    pub tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    /// Adam's update count per parameter path (metadata `adam_steps`, JSON). `None` in files
    /// written before the counts were kept: every parameter with moments then counts `step`
    /// updates, which is what those runs used.
    pub adam_steps: Option<BTreeMap<String, u64>>,
}

fn host<B: Backend>(prefix: &str, p: NamedParam<B>) -> (String, Vec<usize>, Vec<f32>) {
    let data: Vec<f32> = p.value.into_data().convert::<f32>().to_vec().expect("f32 data");
    (format!("{prefix}.{}", p.path), p.shape, data)
}

impl Checkpoint {
    /// Gathers the state of a training run.
    pub fn gather<B: Backend, M: Module<B>, E: Module<I>, I: Backend>(
        step: u64,
        seed: u64,
        model: &M,
        ema: &E,
        adam: &AdamState<I>,
        fixed_noise: (Vec<usize>, Vec<f32>),
    ) -> Self {
        let mut tensors = Vec::new();
        let model_params = weights::collect(model);
        let shapes: HashMap<String, Vec<usize>> = model_params.iter().map(|p| (p.path.clone(), p.shape.clone())).collect();
        tensors.extend(model_params.into_iter().map(|p| host("model", p)));
        tensors.extend(weights::collect(ema).into_iter().map(|p| host("ema", p)));
        for (prefix, map) in [("adam_m", &adam.m), ("adam_v", &adam.v)] {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for k in keys {
                let shape = shapes.get(k).cloned().unwrap_or_else(|| map[k].dims().to_vec());
                let data: Vec<f32> = map[k].clone().into_data().convert::<f32>().to_vec().expect("f32 data");
                tensors.push((format!("{prefix}.{k}"), shape, data));
            }
        }
        tensors.push(("fixed_noise".into(), fixed_noise.0, fixed_noise.1));
        let adam_steps = Some(adam.steps.iter().map(|(k, &v)| (k.clone(), v)).collect());
        Self { step, seed, tensors, adam_steps }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let mut meta = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("step".to_string(), self.step.to_string()),
            ("seed".to_string(), self.seed.to_string()),
        ]);
        if let Some(steps) = &self.adam_steps {
            meta.insert("adam_steps".to_string(), serde_json::to_string(steps).expect("a map of counts serialises"));
        }
        write_tensors(path, &self.tensors, meta)
    }

    pub fn read(path: &Path) -> Result<Self> {
        let (info, tensors) = read_tensors(path)?;
        let bad = |m: String| Error::data(path, m);
        let format = info.get("format").map(String::as_str);
        if format != Some(FORMAT) && format != Some(FORMAT_1) {
            return Err(bad(format!("not an ltlab checkpoint (format `{}`, expected `{FORMAT}`)", format.unwrap_or_default())));
        }
        let rename: fn(String) -> String = if format == Some(FORMAT_1) { migrate_from_1 } else { |n| n };
        let num = |k: &str| info.get(k).and_then(|v| v.parse::<u64>().ok()).ok_or_else(|| bad(format!("metadata `{k}` missing")));
        let (step, seed) = (num("step")?, num("seed")?);
        let adam_steps = match info.get("adam_steps") {
            Some(json) => {
                Some(serde_json::from_str(json).map_err(|e| bad(format!("metadata `adam_steps`: {e}; expected a JSON map of parameter path → count")))?)
            }
            None => None,
        };
        let mut tensors: Vec<_> = tensors.into_iter().map(|(k, s, d)| (rename(k), s, d)).collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Self { step, seed, tensors, adam_steps })
    }

    /// The tensors under `prefix.` as parameters on `device`.
    pub fn params<B: Backend>(&self, prefix: &str, device: &B::Device) -> HashMap<String, NamedParam<B>> {
        let pre = format!("{prefix}.");
        self.tensors
            .iter()
            .filter_map(|(k, s, d)| {
                let path = k.strip_prefix(&pre)?.to_string();
                let value = Tensor::<B, 1>::from_data(TensorData::new(d.clone(), [d.len()]), device);
                Some((path.clone(), NamedParam { path, shape: s.clone(), value }))
            })
            .collect()
    }

    pub fn adam<B: Backend>(&self, device: &B::Device) -> AdamState<B> {
        let take = |p: &str| self.params::<B>(p, device).into_iter().map(|(k, v)| (k, v.value)).collect::<HashMap<_, _>>();
        let m = take("adam_m");
        let steps = match &self.adam_steps {
            Some(steps) => steps.iter().map(|(k, &v)| (k.clone(), v)).collect(),
            None => m.keys().map(|k| (k.clone(), self.step)).collect(),
        };
        AdamState { m, v: take("adam_v"), steps }
    }
}

pub fn file_name(step: u64) -> String {
    format!("step-{step:08}.safetensors")
}

/// Checkpoints in `dir`, sorted by step.
pub fn list(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix("step-")?.strip_suffix(".safetensors")?.parse().ok()?;
            Some((step, e.path()))
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adam's per-parameter counts survive a save and a read; a file without them (written
    /// before they were kept) gives every parameter with moments the checkpoint's step.
    #[test]
    fn adam_counts_round_trip_and_older_files_count_the_step() {
        type F = burn::backend::Flex;
        let dir = tempfile::tempdir().unwrap();
        let tensors = vec![
            ("adam_m.w".to_string(), vec![2], vec![0.1, 0.2]),
            ("adam_v.w".to_string(), vec![2], vec![0.3, 0.4]),
            ("adam_m.emb".to_string(), vec![1], vec![0.5]),
            ("adam_v.emb".to_string(), vec![1], vec![0.6]),
        ];
        let counts = BTreeMap::from([("w".to_string(), 7), ("emb".to_string(), 5)]);
        let c = Checkpoint { step: 7, seed: 1, tensors: tensors.clone(), adam_steps: Some(counts.clone()) };
        let path = dir.path().join("a.safetensors");
        c.save(&path).unwrap();
        let back = Checkpoint::read(&path).unwrap();
        assert_eq!(back.adam_steps.as_ref(), Some(&counts));
        let state = back.adam::<F>(&Default::default());
        assert_eq!((state.steps["w"], state.steps["emb"]), (7, 5));
        let old = Checkpoint { adam_steps: None, ..c };
        old.save(&path).unwrap();
        let state = Checkpoint::read(&path).unwrap().adam::<F>(&Default::default());
        assert_eq!((state.steps["w"], state.steps["emb"]), (7, 7));
    }

    #[test]
    fn format_1_names_are_migrated() {
        assert_eq!(migrate_from_1("model.up.3.Up.weight".into()), "model.up.3.Up.conv.weight");
        assert_eq!(migrate_from_1("adam_m.up.3.Up.bias".into()), "adam_m.up.3.Up.conv.bias");
        assert_eq!(migrate_from_1("model.up.2.Res.conv1.weight".into()), "model.up.2.Res.conv1.weight");
    }
}
