//! Checkpoints: one safetensors file holding model, EMA, Adam moments and the fixed sampling
//! noise, with step and seed in its metadata. Written to a temp file and renamed.

use super::optim::AdamState;
use super::params::{self, NamedParam};
use crate::error::{Error, Result, write_atomic};
use burn::module::Module;
use burn::prelude::*;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use std::collections::HashMap;
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
        let model_params = params::collect(model);
        let shapes: HashMap<String, Vec<usize>> = model_params.iter().map(|p| (p.path.clone(), p.shape.clone())).collect();
        tensors.extend(model_params.into_iter().map(|p| host("model", p)));
        tensors.extend(params::collect(ema).into_iter().map(|p| host("ema", p)));
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
        Self { step, seed, tensors }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let meta = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("step".to_string(), self.step.to_string()),
            ("seed".to_string(), self.seed.to_string()),
        ]);
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
        let mut tensors: Vec<_> = tensors.into_iter().map(|(k, s, d)| (rename(k), s, d)).collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Self { step, seed, tensors })
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
        let take = |p: &str| self.params::<B>(p, device).into_iter().map(|(k, v)| (k, v.value)).collect();
        AdamState { m: take("adam_m"), v: take("adam_v") }
    }
}

/// Named f32 tensors `(name, shape, values)`.
pub type HostTensors = Vec<(String, Vec<usize>, Vec<f32>)>;

/// Writes f32 tensors and string metadata as one safetensors file (temp file + rename).
pub fn write_tensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)], meta: HashMap<String, String>) -> Result<()> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> =
        tensors.iter().map(|(k, s, d)| (k.clone(), s.clone(), d.iter().flat_map(|x| x.to_le_bytes()).collect())).collect();
    let mut views = Vec::with_capacity(bytes.len());
    for (k, s, b) in &bytes {
        let view = TensorView::new(Dtype::F32, s.clone(), b).map_err(|e| Error::data(path, format!("tensor `{k}`: {e}")))?;
        views.push((k.clone(), view));
    }
    let out = safetensors::serialize(views, Some(meta)).map_err(|e| Error::data(path, format!("cannot serialise tensors: {e}")))?;
    write_atomic(path, &out)
}

/// Reads a safetensors file of f32 tensors: its metadata and its tensors.
pub fn read_tensors(path: &Path) -> Result<(HashMap<String, String>, HostTensors)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = |m: String| Error::data(path, m);
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let info = meta.metadata().clone().unwrap_or_default();
    let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("corrupt safetensors: {e}")))?;
    let mut tensors = Vec::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(bad(format!("tensor `{name}` is {:?}, expected F32", view.dtype())));
        }
        let data = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        tensors.push((name, view.shape().to_vec(), data));
    }
    Ok((info, tensors))
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
    #[test]
    fn format_1_names_are_migrated() {
        assert_eq!(super::migrate_from_1("model.up.3.Up.weight".into()), "model.up.3.Up.conv.weight");
        assert_eq!(super::migrate_from_1("adam_m.up.3.Up.bias".into()), "adam_m.up.3.Up.conv.bias");
        assert_eq!(super::migrate_from_1("model.up.2.Res.conv1.weight".into()), "model.up.2.Res.conv1.weight");
    }
}
