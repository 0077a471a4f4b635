//! ltlab's domain network (SPEC §5 (b)): a small classifier trained on the balanced real data,
//! whose pooled features replace Inception's when no Inception weights are at hand, and whose
//! predictions give per-class accuracy and the borrowing matrix of generated samples.

use super::features::Images;
use crate::data::Dataset;
use crate::error::Error;
use crate::ops::FastBackend;
use crate::ops::TrainBackend;
use crate::rng::{self, Stream};
use crate::weights;
use crate::weights::file::{read_tensors, write_tensors};
use burn::module::AutodiffModule;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::activation::relu;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

pub const FORMAT: &str = "ltlab-domain-net-1";
pub const FILE_NAME: &str = "domain-net.safetensors";

#[derive(Config, Debug)]
pub struct DomainNetConfig {
    pub channels: usize,
    pub classes: usize,
    /// Channels of the first stage; the next two have 2× and 4×.
    #[config(default = 32)]
    pub width: usize,
}

impl DomainNetConfig {
    /// Dimension of the features (the pooled last stage).
    pub fn feature_dim(&self) -> usize {
        4 * self.width
    }

    pub fn init<B: FastBackend>(&self, device: &B::Device) -> DomainNet<B> {
        let w = self.width;
        let block = |i: usize, o: usize| ConvBlock::new(i, o, device);
        DomainNet {
            stages: vec![block(self.channels, w), block(w, w), block(w, 2 * w), block(2 * w, 2 * w), block(2 * w, 4 * w), block(4 * w, 4 * w)],
            pool: AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            head: LinearConfig::new(4 * w, self.classes).init(device),
        }
    }
}

/// 3×3 conv → GroupNorm(8) → ReLU.
#[derive(Module, Debug)]
pub struct ConvBlock<B: Backend> {
    conv: Conv2d<B>,
    norm: GroupNorm<B>,
}

impl<B: FastBackend> ConvBlock<B> {
    fn new(cin: usize, cout: usize, device: &B::Device) -> Self {
        Self {
            conv: Conv2dConfig::new([cin, cout], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(device),
            norm: GroupNormConfig::new(8, cout).init(device),
        }
    }
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        relu(self.norm.forward(self.conv.forward(x)))
    }
}

/// Three stages of two conv blocks, 2× average pooling between them, global mean pooling,
/// a linear classifier.
#[derive(Module, Debug)]
pub struct DomainNet<B: Backend> {
    stages: Vec<ConvBlock<B>>,
    pool: AvgPool2d,
    head: Linear<B>,
}

impl<B: FastBackend> DomainNet<B> {
    /// Images in [−1, 1] → (features N × 4w, logits N × C).
    pub fn forward(&self, x: Tensor<B, 4>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let mut x = x;
        for (i, s) in self.stages.iter().enumerate() {
            x = s.forward(x);
            if i == 1 || i == 3 {
                x = self.pool.forward(x);
            }
        }
        let [b, c, _, _] = x.dims();
        let features = x.mean_dim(3).mean_dim(2).reshape([b, c]);
        let logits = self.head.forward(features.clone());
        (features, logits)
    }
}

/// What a trained domain network was trained on and how well it classifies held-out images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainInfo {
    pub dataset: String,
    /// Fingerprint of the balanced data it was trained on (at `size`).
    pub fingerprint: String,
    pub class_names: Vec<String>,
    pub channels: usize,
    pub size: usize,
    pub width: usize,
    pub epochs: usize,
    pub train_images: usize,
    /// Accuracy on the held-out images, overall and per class.
    pub val_accuracy: f64,
    pub val_accuracy_per_class: Vec<f64>,
}

impl DomainInfo {
    /// How reports name these features.
    pub fn label(&self) -> String {
        format!(
            "domain ({} {}px, {} epochs, held-out accuracy {:.3}, fingerprint {})",
            self.dataset, self.size, self.epochs, self.val_accuracy, self.fingerprint
        )
    }
}

/// A domain network with its record.
pub struct Domain<B: Backend> {
    pub net: DomainNet<B>,
    pub info: DomainInfo,
}

#[derive(Debug, Clone)]
pub struct DomainTrainConfig {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub width: usize,
    /// Fraction of every class held out to measure accuracy.
    pub held_out: f64,
    pub seed: u64,
}

impl Default for DomainTrainConfig {
    fn default() -> Self {
        Self { epochs: 3, batch: 128, lr: 2e-3, width: 32, held_out: 0.1, seed: 0 }
    }
}

/// Images of `data` at `idx` as a batch in [−1, 1].
fn batch_tensor<B: FastBackend>(data: &Dataset, idx: &[usize], device: &B::Device) -> Tensor<B, 4> {
    let mut v = Vec::with_capacity(idx.len() * data.image_len());
    for &i in idx {
        data.image_f32(i, false, &mut v);
    }
    Tensor::from_data(TensorData::new(v, [idx.len(), data.channels, data.size, data.size]), device)
}

/// Arg-max of each row of an N × C host matrix.
pub fn argmax_rows(logits: &[f32], classes: usize) -> Vec<usize> {
    logits.chunks(classes).map(|r| (0..classes).max_by(|&a, &b| r[a].total_cmp(&r[b]).then(b.cmp(&a))).unwrap_or(0)).collect()
}

/// Trains the domain network on the balanced `data`, holding out a stratified fraction of
/// every class. `progress(step, steps, loss)` after every step; returning `false` cancels.
pub fn train<B: TrainBackend>(
    data: &Dataset,
    cfg: &DomainTrainConfig,
    device: &B::Device,
    progress: &mut dyn FnMut(usize, usize, f64) -> bool,
) -> crate::Result<Option<Domain<B::InnerBackend>>> {
    if data.size < 4 || !data.size.is_multiple_of(4) {
        return Err(Error::option("image-size", format!("{}: the domain network pools twice by 2, so it needs a multiple of 4", data.size)));
    }
    if !(0.0..0.9).contains(&cfg.held_out) || cfg.epochs == 0 || cfg.batch == 0 {
        return Err(Error::option("train-features", "held-out fraction must be in [0, 0.9), epochs and batch at least 1"));
    }
    B::seed(device, rng::derive_seed(cfg.seed, Stream::Init, 31));
    let mut r = rng::rng(cfg.seed, Stream::Analysis, 31);
    let (mut train_idx, mut val_idx) = (Vec::new(), Vec::new());
    for mut idx in data.indices_by_class() {
        idx.shuffle(&mut r);
        let k = ((idx.len() as f64) * cfg.held_out).round() as usize;
        val_idx.extend_from_slice(&idx[..k]);
        train_idx.extend_from_slice(&idx[k..]);
    }
    let net_cfg = DomainNetConfig::new(data.channels, data.num_classes()).with_width(cfg.width);
    let mut net: DomainNet<B> = net_cfg.init(device);
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init::<B, DomainNet<B>>();
    let ce = CrossEntropyLossConfig::new().init(device);
    let per_epoch = train_idx.len().div_ceil(cfg.batch);
    let steps = per_epoch * cfg.epochs;
    let mut step = 0;
    for _ in 0..cfg.epochs {
        train_idx.shuffle(&mut r);
        for chunk in train_idx.chunks(cfg.batch) {
            let x = batch_tensor::<B>(data, chunk, device);
            let y: Vec<i64> = chunk.iter().map(|&i| data.labels[i] as i64).collect();
            let y = Tensor::<B, 1, Int>::from_data(TensorData::new(y, [chunk.len()]), device);
            let (_, logits) = net.forward(x);
            let loss = ce.forward(logits, y);
            let value = loss.clone().into_scalar().elem::<f64>();
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            // Cosine decay over the whole run.
            let lr = cfg.lr * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / steps as f64).cos());
            net = optim.step(lr, net, grads);
            step += 1;
            if !progress(step, steps, value) {
                return Ok(None);
            }
        }
    }
    let net = net.valid();
    let mut correct = vec![(0usize, 0usize); data.num_classes()];
    for chunk in val_idx.chunks(256) {
        let (_, logits) = net.forward(batch_tensor(data, chunk, device));
        let logits: Vec<f32> = logits.into_data().convert::<f32>().to_vec().expect("f32");
        for (&i, p) in chunk.iter().zip(argmax_rows(&logits, data.num_classes())) {
            let y = data.labels[i];
            correct[y].1 += 1;
            correct[y].0 += usize::from(p == y);
        }
    }
    let total: usize = correct.iter().map(|c| c.1).sum();
    let info = DomainInfo {
        dataset: data.name.clone(),
        fingerprint: data.fingerprint(),
        class_names: data.class_names.clone(),
        channels: data.channels,
        size: data.size,
        width: cfg.width,
        epochs: cfg.epochs,
        train_images: train_idx.len(),
        val_accuracy: correct.iter().map(|c| c.0).sum::<usize>() as f64 / total.max(1) as f64,
        val_accuracy_per_class: correct.iter().map(|&(a, n)| a as f64 / n.max(1) as f64).collect(),
    };
    Ok(Some(Domain { net, info }))
}

impl<B: FastBackend> Domain<B> {
    pub fn save(&self, path: &Path) -> crate::Result<()> {
        let tensors: Vec<_> =
            weights::collect(&self.net).into_iter().map(|p| (p.path, p.shape, p.value.into_data().convert::<f32>().to_vec::<f32>().expect("f32"))).collect();
        let info = serde_json::to_string(&self.info).map_err(|e| Error::Other(e.to_string()))?;
        write_tensors(path, &tensors, HashMap::from([("format".into(), FORMAT.into()), ("info".into(), info)]))
    }

    pub fn load(path: &Path, device: &B::Device) -> crate::Result<Self> {
        let (meta, tensors) = read_tensors(path)?;
        if meta.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(Error::data(
                path,
                format!("not an ltlab domain network (expected metadata format `{FORMAT}`); make one with `ltlab eval train-features`"),
            ));
        }
        let info: DomainInfo = serde_json::from_str(meta.get("info").map(String::as_str).unwrap_or_default())
            .map_err(|e| Error::data(path, format!("domain network record unreadable: {e}")))?;
        let net = DomainNetConfig::new(info.channels, info.class_names.len()).with_width(info.width).init::<B>(device);
        let values = tensors
            .into_iter()
            .map(|(k, s, d)| {
                let value = Tensor::<B, 1>::from_data(TensorData::new(d.clone(), [d.len()]), device);
                (k.clone(), weights::NamedParam { path: k, shape: s, value })
            })
            .collect();
        let net = weights::load(net, values).map_err(|e| Error::data(path, e.to_string()))?;
        Ok(Self { net, info })
    }

    /// Features and logits of host images (converted to the network's channels and size).
    pub fn extract(&self, images: &Images, batch: usize, device: &B::Device, progress: &mut dyn FnMut(usize, usize)) -> crate::Result<(Vec<f32>, Vec<f32>)> {
        let images = images.with_channels(self.info.channels)?.resized(self.info.size);
        let (mut feats, mut logits) = (Vec::new(), Vec::new());
        for (a, b) in images.chunks(batch) {
            let (f, l) = self.net.forward(images.tensor::<B>(a, b, device).mul_scalar(2.0).sub_scalar(1.0));
            feats.extend(f.into_data().convert::<f32>().to_vec::<f32>().expect("f32"));
            logits.extend(l.into_data().convert::<f32>().to_vec::<f32>().expect("f32"));
            progress(b, images.n);
        }
        Ok((feats, logits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    type A = burn::backend::Autodiff<burn::backend::Flex>;

    #[test]
    fn learns_the_synthetic_classes_and_round_trips_through_its_file() {
        let data = crate::data::synthetic::generate(16, 40, 0).unwrap();
        let cfg = DomainTrainConfig { epochs: 6, batch: 32, lr: 3e-3, width: 8, held_out: 0.25, seed: 0 };
        let dev = Default::default();
        let d = train::<A>(&data, &cfg, &dev, &mut |_, _, _| true).unwrap().unwrap();
        // 10 balanced classes: chance is 0.1.
        assert!(d.info.val_accuracy > 0.5, "{:?}", d.info);
        assert_eq!(d.info.train_images, 300);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        d.save(&path).unwrap();
        let back = Domain::<burn::backend::Flex>::load(&path, &dev).unwrap();
        assert_eq!(back.info, d.info);
        let imgs = Images::from_dataset(&data, &[0, 55, 399]);
        let a = d.extract(&imgs, 2, &dev, &mut |_, _| {}).unwrap();
        let b = back.extract(&imgs, 2, &dev, &mut |_, _| {}).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.0.len(), 3 * 32);
        // A file that is something else is refused by name.
        std::fs::write(&path, b"not a network").unwrap();
        let e = Domain::<burn::backend::Flex>::load(&path, &dev).err().unwrap().to_string();
        assert!(e.contains(FILE_NAME) && e.contains("safetensors"), "{e}");
    }
}
