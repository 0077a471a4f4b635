//! Checkpoints of the reference PyTorch code: pytorch-ddpm's U-Net and the long-tail
//! repositories built on it (CBDM-pytorch, OC_LT, coral-lt-diffusion, CCUA), which all save
//! `torch.save({'net_model', 'ema_model', 'sched', 'optim', 'step', 'x_T' | 'fixed_x_T'})`.
//! Read here into ltlab's parameter names: the architecture inferred from the tensor shapes,
//! every reference key mapped to one of ltlab's parameters (PyTorch's `Linear` weights
//! transposed to Burn's), what ltlab has no place for reported, anything else an error that
//! names the file and the key.

use crate::error::{Error, Result};
use burn_store::TensorSnapshot;
use burn_store::pytorch::reader::PickleValue;
use burn_store::pytorch::{PytorchError, PytorchReader};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Which code wrote the file, from its keys (or as the user names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefFormat {
    /// w86763777/pytorch-ddpm: unconditional, `ckpt.pt` with `x_T`.
    PytorchDdpm,
    /// CBDM-pytorch, OC_LT, CCUA: a label embedding added to the time embedding, `ckpt_{step}.pt`
    /// with `fixed_x_T`.
    LongTail,
    /// coral-lt-diffusion: the long-tail U-Net plus CORAL's projection heads.
    Coral,
}

impl RefFormat {
    pub const NAMES: &'static str = "pytorch-ddpm, long-tail (CBDM-pytorch, OC_LT, CCUA), coral";

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "pytorch-ddpm" => Ok(Self::PytorchDdpm),
            "long-tail" | "cbdm" | "oc" | "ccua" => Ok(Self::LongTail),
            "coral" => Ok(Self::Coral),
            _ => Err(Error::option("format", format!("`{s}`: expected one of {}", Self::NAMES))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::PytorchDdpm => "pytorch-ddpm",
            Self::LongTail => "long-tail",
            Self::Coral => "coral",
        }
    }

    /// The format a set of `ema_model` keys was written by.
    fn detect(keys: &[&str]) -> Self {
        if keys.iter().any(|k| k.starts_with("mean_proj.") || k.starts_with("logvar_proj.")) {
            Self::Coral
        } else if keys.contains(&"label_embedding.weight") {
            Self::LongTail
        } else {
            Self::PytorchDdpm
        }
    }
}

/// The reference U-Net's shape, inferred from its tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct RefArchitecture {
    pub image_channels: usize,
    pub base_channels: usize,
    pub channel_mults: Vec<usize>,
    pub res_blocks: usize,
    pub attn_levels: Vec<usize>,
    pub time_mult: usize,
    /// Rows of the label embedding; 0 for an unconditional model.
    pub num_classes: usize,
    /// Rows of the sinusoid table: the diffusion's T.
    pub timesteps: usize,
}

/// One network (`ema_model` or `net_model`) in ltlab's names: path → (shape, values).
pub type RefWeights = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// A reference checkpoint read and mapped.
#[derive(Debug, Clone)]
pub struct RefCheckpoint {
    pub path: PathBuf,
    pub format: RefFormat,
    pub architecture: RefArchitecture,
    pub step: u64,
    pub ema: RefWeights,
    pub raw: RefWeights,
    /// The sampling noise the run drew once (`x_T` / `fixed_x_T`), N × C × S × S.
    pub fixed_noise: Option<(Vec<usize>, Vec<f32>)>,
    /// Reference tensors ltlab has no place for, and why.
    pub extras: Vec<String>,
}

/// The interleaved sin/cos table of the reference's `TimeEmbedding` (T × ch), as ltlab computes
/// it for every forward.
fn sinusoid_table(timesteps: usize, ch: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(timesteps * ch);
    for t in 0..timesteps {
        for i in 0..ch / 2 {
            let a = t as f64 * (-((2 * i) as f64) / ch as f64 * 10000f64.ln()).exp();
            out.extend([a.sin() as f32, a.cos() as f32]);
        }
    }
    out
}

/// What one network's tensors look like, by reference key.
struct Net<'a> {
    file: &'a Path,
    prefix: &'static str,
    tensors: HashMap<String, &'a TensorSnapshot>,
}

impl Net<'_> {
    fn shape(&self, key: &str) -> Result<Vec<usize>> {
        let t =
            self.tensors.get(key).ok_or_else(|| Error::data(self.file, format!("`{}.{key}` is missing: not a U-Net of the reference code", self.prefix)))?;
        Ok(t.shape.to_vec())
    }

    fn has(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }

    fn values(&self, key: &str) -> Result<Vec<f32>> {
        let t = self.tensors[key];
        let data = t.to_data().map_err(|e| Error::data(self.file, format!("`{}.{key}`: {e:?}", self.prefix)))?;
        data.convert::<f32>().to_vec::<f32>().map_err(|e| Error::data(self.file, format!("`{}.{key}`: {e:?}", self.prefix)))
    }
}

/// The blocks of `downblocks` / `upblocks`: a ResBlock, or a resampling conv (`main`).
fn block_kinds(net: &Net, list: &str) -> Vec<bool> {
    (0..)
        .map_while(|i| {
            let res = net.has(&format!("{list}.{i}.block1.2.weight"));
            let resample = net.has(&format!("{list}.{i}.main.weight"));
            (res || resample).then_some(res)
        })
        .collect()
}

fn infer(net: &Net) -> Result<RefArchitecture> {
    let file = net.file;
    let head = net.shape("head.weight")?;
    let (base_channels, image_channels) = (head[0], head[1]);
    let tdim = net.shape("time_embedding.timembedding.1.weight")?[0];
    let table = net.shape("time_embedding.timembedding.0.weight")?;
    if base_channels == 0 || !tdim.is_multiple_of(base_channels) || table.get(1) != Some(&base_channels) {
        return Err(Error::data(file, format!("time embedding {tdim} wide on {base_channels} channels: not the reference U-Net")));
    }
    let down = block_kinds(net, "downblocks");
    // Levels: the ResBlocks between resampling convs; each level has the same count.
    let levels: Vec<Vec<usize>> = down.iter().enumerate().fold(vec![vec![]], |mut acc, (i, &res)| {
        if res {
            acc.last_mut().expect("one level at least").push(i);
        } else {
            acc.push(vec![]);
        }
        acc
    });
    let res_blocks = levels[0].len();
    if res_blocks == 0 || levels.iter().any(|l| l.len() != res_blocks) {
        return Err(Error::data(file, "downblocks: the levels have different numbers of ResBlocks; not the reference U-Net"));
    }
    let mut channel_mults = Vec::new();
    let mut attn_levels = Vec::new();
    for (level, blocks) in levels.iter().enumerate() {
        let out = net.shape(&format!("downblocks.{}.block1.2.weight", blocks[0]))?[0];
        if !out.is_multiple_of(base_channels) {
            return Err(Error::data(file, format!("downblocks.{}: {out} channels is no multiple of {base_channels}", blocks[0])));
        }
        channel_mults.push(out / base_channels);
        if net.has(&format!("downblocks.{}.attn.proj_q.weight", blocks[0])) {
            attn_levels.push(level);
        }
    }
    let num_classes = if net.has("label_embedding.weight") { net.shape("label_embedding.weight")?[0] } else { 0 };
    Ok(RefArchitecture {
        image_channels,
        base_channels,
        channel_mults,
        res_blocks,
        attn_levels,
        time_mult: tdim / base_channels,
        num_classes,
        timesteps: table[0],
    })
}

/// ltlab's name for a ResBlock's part; `transpose` for PyTorch's `Linear` weight.
fn res_part(rest: &str) -> Option<(String, bool)> {
    let (module, leaf) = rest.rsplit_once('.')?;
    let norm = |name: &str| match leaf {
        "weight" => Some((format!("{name}.gamma"), false)),
        "bias" => Some((format!("{name}.beta"), false)),
        _ => None,
    };
    match module {
        "block1.0" => norm("norm1"),
        "block1.2" => Some((format!("conv1.{leaf}"), false)),
        "temb_proj.1" => Some((format!("emb_proj.{leaf}"), leaf == "weight")),
        "block2.0" => norm("norm2"),
        "block2.3" => Some((format!("conv2.{leaf}"), false)),
        "shortcut" => Some((format!("shortcut.{leaf}"), false)),
        "attn.group_norm" => norm("attn.norm"),
        "attn.proj_q" => Some((format!("attn.q.{leaf}"), false)),
        "attn.proj_k" => Some((format!("attn.k.{leaf}"), false)),
        "attn.proj_v" => Some((format!("attn.v.{leaf}"), false)),
        "attn.proj" => Some((format!("attn.proj.{leaf}"), false)),
        _ => None,
    }
}

/// ltlab's name for a reference parameter: `Some((path, transpose))`, or `None` for a key the
/// reference U-Net does not have.
fn ltlab_name(key: &str, down: &[bool], up: &[bool]) -> Option<(String, bool)> {
    let (first, rest) = key.split_once('.')?;
    let indexed = |kinds: &[bool], list: &str, rest: &str, resample: &str| -> Option<(String, bool)> {
        let (i, rest) = rest.split_once('.')?;
        let i: usize = i.parse().ok()?;
        if *kinds.get(i)? {
            res_part(rest).map(|(p, t)| (format!("{list}.{i}.Res.{p}"), t))
        } else {
            let leaf = rest.strip_prefix("main.")?;
            matches!(leaf, "weight" | "bias").then(|| (format!("{list}.{i}.{resample}.{leaf}"), false))
        }
    };
    match first {
        "time_embedding" => match rest {
            "timembedding.1.weight" => Some(("time_fc1.weight".into(), true)),
            "timembedding.1.bias" => Some(("time_fc1.bias".into(), false)),
            "timembedding.3.weight" => Some(("time_fc2.weight".into(), true)),
            "timembedding.3.bias" => Some(("time_fc2.bias".into(), false)),
            _ => None,
        },
        "label_embedding" => (rest == "weight").then(|| ("class_emb.weight".into(), false)),
        "head" => matches!(rest, "weight" | "bias").then(|| (format!("head.{rest}"), false)),
        "downblocks" => indexed(down, "down", rest, "Down"),
        "upblocks" => indexed(up, "up", rest, "Up.conv"),
        "middleblocks" => {
            let (i, rest) = rest.split_once('.')?;
            let name = match i {
                "0" => "mid1",
                "1" => "mid2",
                _ => return None,
            };
            res_part(rest).map(|(p, t)| (format!("{name}.{p}"), t))
        }
        "tail" => match rest {
            "0.weight" => Some(("tail_norm.gamma".into(), false)),
            "0.bias" => Some(("tail_norm.beta".into(), false)),
            "2.weight" | "2.bias" => Some((format!("tail.{}", &rest[2..]), false)),
            _ => None,
        },
        _ => None,
    }
}

/// Extras the reference repositories add that ltlab has no place for.
fn extra_reason(key: &str) -> Option<&'static str> {
    if key.starts_with("augm_embedding.") {
        Some("CBDM's augmentation embedding (--augm): ltlab trains without ADA augmentation")
    } else if key.starts_with("mean_proj.") || key.starts_with("logvar_proj.") {
        Some("CORAL's projection heads: ltlab's CORAL head is trained afresh with the run")
    } else {
        None
    }
}

/// One network mapped to ltlab's names; every key used, reported or an error.
fn map_net(net: &Net, arch: &RefArchitecture, extras: &mut Vec<String>) -> Result<RefWeights> {
    let down = block_kinds(net, "downblocks");
    let up = block_kinds(net, "upblocks");
    let mut out = RefWeights::new();
    let mut keys: Vec<&String> = net.tensors.keys().collect();
    keys.sort();
    for key in keys {
        if key == "time_embedding.timembedding.0.weight" {
            // The frozen sinusoid table: ltlab computes the same one; a different table would
            // be a different network.
            let got = net.values(key)?;
            let want = sinusoid_table(arch.timesteps, arch.base_channels);
            let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            if got.len() != want.len() || worst > 1e-4 {
                return Err(Error::data(net.file, format!("`{}.{key}` is not the interleaved sin/cos table ltlab computes (off by {worst})", net.prefix)));
            }
            continue;
        }
        if let Some(reason) = extra_reason(key) {
            let line = format!("{}.{key}: {reason}", net.prefix);
            if !extras.contains(&line) {
                extras.push(line);
            }
            continue;
        }
        let Some((name, transpose)) = ltlab_name(key, &down, &up) else {
            return Err(Error::data(
                net.file,
                format!("`{}.{key}`: a key the reference U-Net does not have (another model, or `--format` to name it)", net.prefix),
            ));
        };
        let shape = net.shape(key)?;
        let values = net.values(key)?;
        let (shape, values) = if transpose {
            let [rows, cols] = shape[..] else { return Err(Error::data(net.file, format!("`{}.{key}`: a Linear weight of shape {shape:?}", net.prefix))) };
            let t = (0..cols).flat_map(|c| (0..rows).map(move |r| (r, c))).map(|(r, c)| values[r * cols + c]).collect();
            (vec![cols, rows], t)
        } else {
            (shape, values)
        };
        out.insert(name, (shape, values));
    }
    Ok(out)
}

fn integer(path: &Path, key: &str) -> Result<Option<u64>> {
    match PytorchReader::read_pickle_data(path, Some(key)) {
        Ok(PickleValue::Int(i)) if i >= 0 => Ok(Some(i as u64)),
        Ok(other) => Err(Error::data(path, format!("`{key}` is {other:?}, expected a step number"))),
        Err(PytorchError::KeyNotFound(_)) => Ok(None),
        Err(e) => Err(Error::data(path, format!("not a PyTorch checkpoint of the reference code: {e}"))),
    }
}

impl RefCheckpoint {
    /// The training step a checkpoint was saved at (its pickle only, no tensor read).
    pub fn step_of(path: &Path) -> Result<u64> {
        integer(path, "step")?.ok_or_else(|| Error::data(path, "no `step`: not a training checkpoint of the reference code"))
    }

    /// Reads a checkpoint of the reference code; `format` overrides the detection.
    pub fn read(path: &Path, format: Option<RefFormat>) -> Result<Self> {
        let reader = PytorchReader::new(path).map_err(|e| Error::data(path, format!("not a PyTorch checkpoint of the reference code: {e}")))?;
        let all = reader.tensors();
        let net = |prefix: &'static str| -> Result<Net> {
            let start = format!("{prefix}.");
            let tensors: HashMap<String, &TensorSnapshot> = all.iter().filter_map(|(k, v)| k.strip_prefix(&start).map(|k| (k.to_string(), v))).collect();
            if tensors.is_empty() {
                let mut top: Vec<&str> = all.keys().map(|k| k.split('.').next().unwrap_or(k)).collect();
                top.sort();
                top.dedup();
                return Err(Error::data(
                    path,
                    format!("no `{prefix}` state dict (has: {}); expected torch.save({{'net_model', 'ema_model', …}})", top.join(", ")),
                ));
            }
            Ok(Net { file: path, prefix, tensors })
        };
        let (ema, raw) = (net("ema_model")?, net("net_model")?);
        let keys: Vec<&str> = ema.tensors.keys().map(String::as_str).collect();
        let format = format.unwrap_or_else(|| RefFormat::detect(&keys));
        if format == RefFormat::PytorchDdpm && ema.has("label_embedding.weight") {
            return Err(Error::option("format", "pytorch-ddpm's U-Net has no label embedding but this file has one (a long-tail repository's)"));
        }
        let architecture = infer(&ema)?;
        if infer(&raw)? != architecture {
            return Err(Error::data(path, "net_model and ema_model are different networks"));
        }
        let mut extras = Vec::new();
        let (ema_w, raw_w) = (map_net(&ema, &architecture, &mut extras)?, map_net(&raw, &architecture, &mut extras)?);
        let step = Self::step_of(path)?;
        let noise = ["x_T", "fixed_x_T"].iter().find_map(|k| all.get(*k));
        let fixed_noise = match noise {
            Some(t) => {
                let shape: Vec<usize> = t.shape.to_vec();
                let values = t
                    .to_data()
                    .map_err(|e| Error::data(path, format!("x_T: {e:?}")))?
                    .convert::<f32>()
                    .to_vec::<f32>()
                    .map_err(|e| Error::data(path, format!("x_T: {e:?}")))?;
                Some((shape, values))
            }
            None => None,
        };
        let ignored = ["optim", "sched"].iter().filter(|k| all.keys().any(|a| a.starts_with(&format!("{k}.")))).count();
        if ignored > 0 {
            extras.push("optim, sched: Adam's moments and the lr schedule start afresh when an imported run trains on".into());
        }
        Ok(Self { path: path.to_path_buf(), format, architecture, step, ema: ema_w, raw: raw_w, fixed_noise, extras })
    }
}

/// The flags of a reference run's `flagfile.txt` (absl: `--name=value`, `--flag` / `--noflag`;
/// repeated names are lists).
pub fn read_flagfile(path: &Path) -> Result<BTreeMap<String, Vec<String>>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (n, line) in text.lines().map(str::trim).enumerate().filter(|(_, l)| !l.is_empty() && !l.starts_with('#')) {
        let Some(flag) = line.strip_prefix("--") else {
            return Err(Error::data(path, format!("line {}: `{line}` is not an absl flag (--name=value)", n + 1)));
        };
        let (name, value) = match flag.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => match flag.strip_prefix("no") {
                Some(k) if !k.is_empty() => (k.to_string(), "false".to_string()),
                _ => (flag.to_string(), "true".to_string()),
            },
        };
        out.entry(name).or_default().push(value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_keys_map_to_ltlab_names() {
        // Level 0: ResBlock 0, downsample 1; level 1: ResBlock 2. Up: ResBlocks 0, 1, upsample 2, …
        let down = [true, false, true];
        let up = [true, true, false, true, true];
        let cases = [
            ("time_embedding.timembedding.1.weight", Some(("time_fc1.weight", true))),
            ("time_embedding.timembedding.3.bias", Some(("time_fc2.bias", false))),
            ("label_embedding.weight", Some(("class_emb.weight", false))),
            ("downblocks.0.block1.0.weight", Some(("down.0.Res.norm1.gamma", false))),
            ("downblocks.0.block1.2.bias", Some(("down.0.Res.conv1.bias", false))),
            ("downblocks.0.temb_proj.1.weight", Some(("down.0.Res.emb_proj.weight", true))),
            ("downblocks.1.main.weight", Some(("down.1.Down.weight", false))),
            ("downblocks.2.attn.proj_q.weight", Some(("down.2.Res.attn.q.weight", false))),
            ("downblocks.2.attn.group_norm.bias", Some(("down.2.Res.attn.norm.beta", false))),
            ("middleblocks.1.block2.3.weight", Some(("mid2.conv2.weight", false))),
            ("upblocks.2.main.bias", Some(("up.2.Up.conv.bias", false))),
            ("upblocks.3.shortcut.weight", Some(("up.3.Res.shortcut.weight", false))),
            ("tail.0.weight", Some(("tail_norm.gamma", false))),
            ("tail.2.weight", Some(("tail.weight", false))),
            // A resampling index with ResBlock keys, an index past the end, an unknown module.
            ("downblocks.1.block1.2.weight", None),
            ("downblocks.9.main.weight", None),
            ("encoder.weight", None),
        ];
        for (key, want) in cases {
            let got = ltlab_name(key, &down, &up);
            assert_eq!(got.as_ref().map(|(p, t)| (p.as_str(), *t)), want, "{key}");
        }
    }

    #[test]
    fn the_sinusoid_table_interleaves_sin_and_cos() {
        // ch = 4: frequencies 1 and 10000^(-1/2) = 0.01, as the reference's TimeEmbedding.
        let t = sinusoid_table(2, 4);
        let want = [0.0, 1.0, 0.0, 1.0, 1f64.sin(), 1f64.cos(), 0.01f64.sin(), 0.01f64.cos()];
        for (a, b) in t.iter().zip(want) {
            assert!((*a as f64 - b).abs() < 1e-6, "{t:?}");
        }
    }

    #[test]
    fn flagfiles_read_values_lists_and_booleans() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("flagfile.txt");
        std::fs::write(&p, "--ch=32\n--ch_mult=1\n--ch_mult=2\n--conditional\n--noaugm\n").unwrap();
        let f = read_flagfile(&p).unwrap();
        assert_eq!(f["ch"], ["32"]);
        assert_eq!(f["ch_mult"], ["1", "2"]);
        assert_eq!((f["conditional"][0].as_str(), f["augm"][0].as_str()), ("true", "false"));
        std::fs::write(&p, "ch=32\n").unwrap();
        let e = read_flagfile(&p).unwrap_err().to_string();
        assert!(e.contains("flagfile.txt") && e.contains("line 1"), "{e}");
    }
}
