//! The latent map: U-Net bottleneck features of real images (the same number from every class,
//! so tail classes never vanish) at one diffusion time, their per-class entanglement (k-NN
//! class purity and silhouette) and a 2-D layout by PCA, t-SNE or UMAP.

use super::embed::{EmbedMethod, Progress, embed};
use crate::data::Dataset;
use crate::diffusion::Schedule;
use crate::error::{Error, Result};
use crate::geometry::{Features, knn, silhouette};
use crate::model::{ClassCond, UNet};
use crate::ops::FastBackend;
use crate::rng::{self, Stream};
use burn::prelude::*;
use ltlab_types::{Entanglement, LatentMap, Thumbnails};
use rand::seq::SliceRandom;

#[derive(Debug, Clone)]
pub struct LatentSetup {
    /// Real images per class (fewer where a class has fewer).
    pub per_class: usize,
    /// Diffusion time of x_t.
    pub t: usize,
    /// Neighbours of the purity.
    pub k: usize,
    /// Give the network the true class (else the unconditional forward).
    pub conditional: bool,
    pub seed: u64,
}

impl Default for LatentSetup {
    fn default() -> Self {
        Self { per_class: 100, t: 100, k: 10, conditional: true, seed: 0 }
    }
}

/// Up to `per_class` images of every class (a seeded choice), in class order.
pub fn stratified(real: &Dataset, per_class: usize, seed: u64) -> Vec<usize> {
    let mut chosen = Vec::new();
    for (c, mut idx) in real.indices_by_class().into_iter().enumerate() {
        idx.shuffle(&mut rng::rng(seed, Stream::Analysis, 1000 + c as u64));
        chosen.extend(idx.into_iter().take(per_class));
    }
    chosen
}

/// The images at `chunk` in [−1, 1] and one ε each (drawn from `r` after the images), on `device`.
pub(crate) fn real_batch<B: FastBackend>(real: &Dataset, chunk: &[usize], r: &mut rand_chacha::ChaCha8Rng, device: &B::Device) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let (b, len) = (chunk.len(), real.image_len());
    let mut x0 = Vec::with_capacity(b * len);
    for &i in chunk {
        real.image_f32(i, false, &mut x0);
    }
    let shape = [b, real.channels, real.size, real.size];
    let x0 = Tensor::<B, 4>::from_data(TensorData::new(x0, shape), device);
    let eps = Tensor::<B, 4>::from_data(TensorData::new(rng::normal_vec(r, b * len), shape), device);
    (x0, eps)
}

/// Flattened bottleneck activations of `model` on x_t of the chosen images at `setup.t`, with
/// or without the class (one ε per image, seeded by `setup.seed`), in batches of 128.
/// `progress(fraction)` returning false cancels.
pub fn bottlenecks<B: FastBackend>(
    model: &UNet<B>,
    schedule: &Schedule,
    real: &Dataset,
    chosen: &[usize],
    setup: &LatentSetup,
    device: &B::Device,
    progress: &mut dyn FnMut(f32) -> bool,
) -> Result<Features> {
    let (t, conditional, seed) = (setup.t, setup.conditional, setup.seed);
    if t >= schedule.len() {
        return Err(Error::option("t", format!("{t} is outside 0..{}", schedule.len())));
    }
    let mut r = rng::rng(seed, Stream::Analysis, 998);
    let (mut out, mut dim) = (Vec::new(), 0);
    for (b_i, chunk) in chosen.chunks(128).enumerate() {
        if !progress(b_i as f32 * 128.0 / chosen.len().max(1) as f32) {
            return Err(Error::Cancelled);
        }
        let b = chunk.len();
        let (x0, eps) = real_batch(real, chunk, &mut r, device);
        let ts = vec![t; b];
        let x_t = schedule.noise(x0, eps, &ts);
        let cond = if conditional {
            let y: Vec<i64> = chunk.iter().map(|&i| real.labels[i] as i64).collect();
            ClassCond::Labels(Tensor::<B, 1, Int>::from_data(TensorData::new(y, [b]), device))
        } else {
            ClassCond::Uncond
        };
        let h = model.forward(x_t, &ts, &cond, true).bottleneck.expect("asked for the bottleneck");
        let [_, c, hh, ww] = h.dims();
        dim = c * hh * ww;
        out.extend(h.into_data().convert::<f32>().to_vec::<f32>().expect("f32 data"));
    }
    Features::new(chosen.len(), dim, out)
}

/// Per-class mean k-NN purity and silhouette of `f`.
pub fn entanglement(f: &Features, labels: &[usize], classes: usize, k: usize, step: u64, t: usize, per_class: usize) -> Entanglement {
    let per_class_mean = |values: &[f64]| -> Vec<f64> {
        let (mut sum, mut cnt) = (vec![0.0; classes], vec![0usize; classes]);
        for (&v, &l) in values.iter().zip(labels) {
            if v.is_finite() {
                sum[l] += v;
                cnt[l] += 1;
            }
        }
        (0..classes).map(|c| if cnt[c] > 0 { sum[c] / cnt[c] as f64 } else { f64::NAN }).collect()
    };
    let nn = knn(f, k);
    let purity: Vec<f64> =
        nn.iter().enumerate().map(|(i, row)| row.iter().filter(|&&(j, _)| labels[j] == labels[i]).count() as f64 / row.len().max(1) as f64).collect();
    Entanglement { step, t, k, per_class, purity: per_class_mean(&purity), silhouette: per_class_mean(&silhouette(f, labels, classes)) }
}

/// An EMA model at one checkpoint, as the analyses read it.
pub struct ModelAt<'a, B: Backend> {
    pub model: &'a UNet<B>,
    pub schedule: &'a Schedule,
    pub step: u64,
    pub device: &'a B::Device,
}

/// The whole latent map of the model at its step: bottlenecks (first 30 % of the progress),
/// entanglement, then the layout.
pub fn latent_map<B: FastBackend>(
    at: &ModelAt<B>,
    real: &Dataset,
    train_counts: &[usize],
    setup: &LatentSetup,
    method: EmbedMethod,
    progress: &mut Progress,
) -> Result<LatentMap> {
    let chosen = stratified(real, setup.per_class, setup.seed);
    let (model, schedule, step, device) = (at.model, at.schedule, at.step, at.device);
    let f = bottlenecks(model, schedule, real, &chosen, setup, device, &mut |p| progress(0.3 * p, None))?;
    let labels: Vec<usize> = chosen.iter().map(|&i| real.labels[i]).collect();
    let ent = entanglement(&f, &labels, real.num_classes(), setup.k, step, setup.t, setup.per_class);
    let xy = embed(&f, method, &Default::default(), setup.seed, &mut |p, snap| progress(0.3 + 0.7 * p, snap))?;
    let mut pixels = Vec::with_capacity(chosen.len() * real.image_len());
    for &i in &chosen {
        pixels.extend_from_slice(real.image(i));
    }
    Ok(LatentMap {
        step,
        t: setup.t,
        method,
        conditional: setup.conditional,
        per_class: setup.per_class,
        class_names: real.class_names.clone(),
        train_counts: train_counts.to_vec(),
        labels,
        indices: chosen,
        xy,
        entanglement: ent,
        images: Some(Thumbnails { channels: real.channels, size: real.size, pixels }),
    })
}

/// Entanglement over checkpoints as stored in a run (`RunDir::entanglement_path`), by step;
/// empty when not computed yet.
pub fn read_entanglement(path: &std::path::Path) -> Result<Vec<Entanglement>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| Error::data(path, format!("not an entanglement list: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Adds (or replaces) one checkpoint's entanglement in the run's list, atomically; returns the
/// list by step. Measurements with another k or number of images per class are kept beside it.
pub fn record_entanglement(path: &std::path::Path, e: &Entanglement) -> Result<Vec<Entanglement>> {
    let mut all = read_entanglement(path)?;
    all.retain(|x| !(x.step == e.step && x.same_measure(e.k, e.per_class)));
    all.push(e.clone());
    all.sort_by_key(|x| x.step);
    let text = serde_json::to_string_pretty(&all).map_err(|e| Error::Other(e.to_string()))?;
    crate::error::write_atomic(path, text.as_bytes())?;
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entanglement_by_hand() {
        // Class 0 at 0, 1; class 1 at 4, 6 (1-D), k = 1: every nearest neighbour is of the
        // same class except none → purity 1 both; silhouettes as in metrics' hand example.
        let f = Features::new(4, 1, vec![0.0, 1.0, 4.0, 6.0]).unwrap();
        let e = entanglement(&f, &[0, 0, 1, 1], 2, 1, 7, 3, 2);
        assert_eq!(e.purity, vec![1.0, 1.0]);
        assert!((e.silhouette[0] - (0.8 + 0.75) / 2.0).abs() < 1e-12);
        assert!((e.silhouette[1] - (1.5 / 3.5 + 3.5 / 5.5) / 2.0).abs() < 1e-12);
        assert_eq!((e.step, e.t, e.k), (7, 3, 1));
        // k = 2: every point's second neighbour is of the other class (0 → 1, 4; 1 → 0, 4;
        // 4 → 6, 1; 6 → 4, 1) → ½ everywhere.
        let e = entanglement(&f, &[0, 0, 1, 1], 2, 2, 0, 0, 2);
        assert_eq!(e.purity, vec![0.5, 0.5]);
    }

    #[test]
    fn entanglement_list_is_kept_by_step() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("analysis/entanglement.json");
        assert!(read_entanglement(&path).unwrap().is_empty());
        let e = |step, p| Entanglement { step, t: 10, k: 5, per_class: 100, purity: vec![p], silhouette: vec![0.0] };
        record_entanglement(&path, &e(20, 0.5)).unwrap();
        record_entanglement(&path, &e(10, 0.4)).unwrap();
        let all = record_entanglement(&path, &e(20, 0.7)).unwrap();
        assert_eq!(all, vec![e(10, 0.4), e(20, 0.7)]);
        // Another number of images per class at the same step is another measurement.
        let other = Entanglement { per_class: 1000, ..e(20, 0.9) };
        let all = record_entanglement(&path, &other).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all.iter().filter(|x| x.same_measure(5, 100)).count(), 2);
        assert_eq!(read_entanglement(&path).unwrap(), all);
        std::fs::write(&path, "nonsense").unwrap();
        let err = read_entanglement(&path).unwrap_err().to_string();
        assert!(err.contains("entanglement.json") && err.contains("not an entanglement list"), "{err}");
    }
}
