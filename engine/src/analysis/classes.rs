//! Per-class behaviour of a trained model on real images: the denoising loss and how well the
//! bottleneck separates classes (k-NN class purity), with SPEC §5's Many/Medium/Few splits.

use super::latents::LatentSetup;
use crate::data::Dataset;
use crate::diffusion::Schedule;
use crate::model::{ClassCond, UNet};
use crate::ops::FastBackend;
use crate::rng::{self, Stream};
use burn::prelude::*;
use rand::Rng;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct ClassRow {
    pub class: usize,
    pub name: String,
    /// Images of the class in the long-tailed training set.
    pub train_count: usize,
    /// Images of the class evaluated.
    pub images: usize,
    /// Mean ε-MSE of the conditional model over t ~ U{0..T−1}.
    pub loss: f64,
    /// Fraction of the k nearest bottleneck neighbours (conditional forward) of the same class.
    pub purity_cond: f64,
    /// The same with the unconditional forward (no class term in the network).
    pub purity_uncond: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClassReport {
    pub t_purity: usize,
    pub k: usize,
    pub rows: Vec<ClassRow>,
    /// (split name, classes, mean loss, mean purity cond, mean purity uncond) for Many/Medium/Few.
    pub splits: Vec<(String, Vec<usize>, f64, f64, f64)>,
}

use ltlab_types::class_splits;

/// Mean over points of each class of the fraction of its k nearest neighbours (Euclidean,
/// itself excluded) that share its class. `sq_dist(i, j)` gives squared distances.
pub fn knn_purity(labels: &[usize], classes: usize, k: usize, sq_dist: impl Fn(usize, usize) -> f32) -> Vec<f64> {
    let n = labels.len();
    let (mut sum, mut cnt) = (vec![0.0f64; classes], vec![0usize; classes]);
    for i in 0..n {
        let mut d: Vec<(f32, usize)> = (0..n).filter(|&j| j != i).map(|j| (sq_dist(i, j), j)).collect();
        let kk = k.min(d.len());
        if kk == 0 {
            continue;
        }
        d.select_nth_unstable_by(kk - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let same = d[..kk].iter().filter(|&&(_, j)| labels[j] == labels[i]).count();
        sum[labels[i]] += same as f64 / kk as f64;
        cnt[labels[i]] += 1;
    }
    (0..classes).map(|c| if cnt[c] > 0 { sum[c] / cnt[c] as f64 } else { f64::NAN }).collect()
}

/// Evaluates `model` on up to `setup.per_class` images of every class of `real` (a seeded
/// choice): the loss at random t, and bottleneck purity with `setup.k` neighbours at `setup.t`
/// with and without the class (`setup.conditional` is not used).
pub fn class_report<B: FastBackend>(
    model: &UNet<B>,
    schedule: &Schedule,
    real: &Dataset,
    train_counts: &[usize],
    setup: &LatentSetup,
    device: &B::Device,
) -> ClassReport {
    let c = real.num_classes();
    let len = real.image_len();
    let (per_class, t_purity, k, seed) = (setup.per_class, setup.t, setup.k, setup.seed);
    let chosen = super::latents::stratified(real, per_class, seed);
    let labels: Vec<usize> = chosen.iter().map(|&i| real.labels[i]).collect();
    let mut r = rng::rng(seed, Stream::Analysis, 999);
    let (mut loss_sum, mut loss_n) = (vec![0.0f64; c], vec![0usize; c]);
    let (mut bn_cond, mut bn_uncond): (Vec<f32>, Vec<f32>) = (Vec::new(), Vec::new());
    let mut dim = 0;
    for chunk in chosen.chunks(128) {
        let b = chunk.len();
        let (x0, eps) = super::latents::real_batch(real, chunk, &mut r, device);
        let t: Vec<usize> = (0..b).map(|_| r.random_range(0..schedule.len())).collect();
        let y: Vec<i64> = chunk.iter().map(|&i| real.labels[i] as i64).collect();
        let y = Tensor::<B, 1, Int>::from_data(TensorData::new(y, [b]), device);
        let cond = ClassCond::Labels(y);
        // Loss at random t.
        let x_t = schedule.noise(x0.clone(), eps.clone(), &t);
        let pred = model.forward(x_t, &t, &cond, false).eps;
        let per: Vec<f32> = (pred - eps.clone()).powi_scalar(2).reshape([b, len]).mean_dim(1).into_data().convert::<f32>().to_vec().expect("f32");
        for (&i, &l) in chunk.iter().zip(&per) {
            loss_sum[real.labels[i]] += l as f64;
            loss_n[real.labels[i]] += 1;
        }
        // Bottlenecks at the fixed t.
        let tp = vec![t_purity; b];
        let x_t = schedule.noise(x0, eps, &tp);
        for (cond, out) in [(&cond, &mut bn_cond), (&ClassCond::Uncond, &mut bn_uncond)] {
            let h = model.forward(x_t.clone(), &tp, cond, true).bottleneck.expect("asked for it");
            let [_, ch, hh, ww] = h.dims();
            dim = ch * hh * ww;
            out.extend(h.into_data().convert::<f32>().to_vec::<f32>().expect("f32"));
        }
    }
    let purity = |bn: &[f32]| {
        let norms: Vec<f32> = bn.chunks(dim).map(|v| v.iter().map(|x| x * x).sum()).collect();
        knn_purity(&labels, c, k, |i, j| {
            let dot: f32 = bn[i * dim..(i + 1) * dim].iter().zip(&bn[j * dim..(j + 1) * dim]).map(|(a, b)| a * b).sum();
            norms[i] + norms[j] - 2.0 * dot
        })
    };
    let (pc, pu) = (purity(&bn_cond), purity(&bn_uncond));
    let rows: Vec<ClassRow> = (0..c)
        .map(|cl| ClassRow {
            class: cl,
            name: real.class_names[cl].clone(),
            train_count: train_counts[cl],
            images: loss_n[cl],
            loss: loss_sum[cl] / loss_n[cl].max(1) as f64,
            purity_cond: pc[cl],
            purity_uncond: pu[cl],
        })
        .collect();
    let mean = |cls: &[usize], f: &dyn Fn(&ClassRow) -> f64| cls.iter().map(|&i| f(&rows[i])).sum::<f64>() / cls.len().max(1) as f64;
    let splits = class_splits(train_counts)
        .into_iter()
        .zip(["many", "medium", "few"])
        .map(|(cls, name)| {
            let (l, a, u) = (mean(&cls, &|r| r.loss), mean(&cls, &|r| r.purity_cond), mean(&cls, &|r| r.purity_uncond));
            (name.to_string(), cls, l, a, u)
        })
        .collect();
    ClassReport { t_purity, k, rows, splits }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_sizes_for_10_and_100_classes() {
        let c10: Vec<usize> = (0..10).map(|i| 1000 - i).collect();
        let s = class_splits(&c10);
        assert_eq!((s[0].len(), s[1].len(), s[2].len()), (3, 3, 4));
        assert_eq!(s[0], vec![0, 1, 2]);
        assert_eq!(s[2], vec![6, 7, 8, 9]);
        let c100: Vec<usize> = (0..100).map(|i| 500 - i).collect();
        let s = class_splits(&c100);
        assert_eq!((s[0].len(), s[1].len(), s[2].len()), (33, 33, 34));
        // Sorted by count, not by index.
        let s = class_splits(&[5, 50, 10]);
        assert_eq!(s, [vec![1], vec![2], vec![0]]);
    }

    #[test]
    fn knn_purity_by_hand() {
        // 1-D points: class 0 at 0, 1, 2; class 1 at 2.5, 10, 11.
        let x = [0.0f32, 1.0, 2.0, 2.5, 10.0, 11.0];
        let y = [0, 0, 0, 1, 1, 1];
        let p = knn_purity(&y, 2, 2, |i, j| (x[i] - x[j]).powi(2));
        // k = 2: point 0 → {1, 2}: 1; point 1 → {0, 2}: 1; point 2 → {2.5, 1}: 0.5;
        // point 3 → {2, 1}: 0; point 4 → {11, 2.5}: 1; point 5 → {10, 2.5}: 1.
        assert!((p[0] - 2.5 / 3.0).abs() < 1e-12, "{p:?}");
        assert!((p[1] - 2.0 / 3.0).abs() < 1e-12, "{p:?}");
    }
}
