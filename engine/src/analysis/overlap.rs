//! How much of DiffROP's term is alive (SPEC §4.3): on a run's own training data, each anchor
//! with one random different-class partner at the anchor's t and ε, d = ‖μ_a − μ_p‖² from the
//! model, summed over elements (the paper's Eq. 12) or averaged. With h(d) = e^{−d}, a pair
//! whose d is above ln 100 ≈ 4.6 contributes under 0.01: the share of pairs above that line per
//! t bucket says where the term can act at all.

use crate::data::Dataset;
use crate::data::sampler::{BatchSampler, DrawBatches};
use crate::diffusion::Schedule;
use crate::methods::diffrop::{Distance, Partners, mu, pair_distance, pick_pairs};
use crate::model::{ClassCond, UNet};
use crate::ops::FastBackend;
use crate::rng::{self, Stream};
use burn::prelude::*;
use ltlab_types::T_BUCKETS;
use rand::Rng;
use serde::Serialize;

/// One t bucket: pairs seen, and for each distance the share of pairs with e^{−d} > 0.01 and
/// the median d.
#[derive(Debug, Clone, Serialize)]
pub struct OverlapRow {
    pub t_from: usize,
    pub t_to: usize,
    pub pairs: usize,
    pub alive_sum: f64,
    pub alive_mean: f64,
    pub median_sum: f64,
    pub median_mean: f64,
}

/// e^{−d} > 0.01.
pub fn alive(d: f64) -> bool {
    (-d).exp() > 0.01
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The overlap per t bucket over `batches` uniform batches of `batch` images (t uniform, ε
/// normal, drawn from `seed`), the model conditional on each image's label.
pub fn pair_overlap<B: FastBackend>(
    model: &UNet<B>,
    schedule: &Schedule,
    data: &Dataset,
    batch: usize,
    batches: usize,
    seed: u64,
    device: &B::Device,
) -> Vec<OverlapRow> {
    let by_class = data.indices_by_class();
    let (len, t_total) = (data.image_len(), schedule.len());
    let shape = |n: usize| [n, data.channels, data.size, data.size];
    let mut d_by_bucket: Vec<(Vec<f64>, Vec<f64>)> = vec![(vec![], vec![]); T_BUCKETS];
    for k in 0..batches as u64 {
        let idx = BatchSampler::Uniform.batch(&data.labels, &by_class, batch, seed, k);
        let labels: Vec<usize> = idx.iter().map(|&i| data.labels[i]).collect();
        let pairs = pick_pairs(&labels, &vec![true; idx.len()], Partners::Random, seed, k);
        if pairs.is_empty() {
            continue;
        }
        let mut r = rng::rng(seed, Stream::Analysis, 7000 + k);
        let t: Vec<usize> = pairs.iter().map(|_| r.random_range(0..t_total)).collect();
        let eps = rng::normal_vec(&mut r, pairs.len() * len);
        let (mut xa, mut xp) = (Vec::with_capacity(pairs.len() * len), Vec::with_capacity(pairs.len() * len));
        for &(a, p) in &pairs {
            data.image_f32(idx[a], false, &mut xa);
            data.image_f32(idx[p], false, &mut xp);
        }
        let n = pairs.len();
        let tensor = |v: Vec<f32>| Tensor::<B, 4>::from_data(TensorData::new(v, shape(n)), device);
        let eps = tensor(eps);
        let (x_a, x_p) = (schedule.noise(tensor(xa), eps.clone(), &t), schedule.noise(tensor(xp), eps, &t));
        let cond = |who: &dyn Fn(&(usize, usize)) -> usize| {
            let y: Vec<i64> = pairs.iter().map(|p| labels[who(p)] as i64).collect();
            ClassCond::Labels(Tensor::<B, 1, Int>::from_data(TensorData::new(y, [n]), device))
        };
        let mu_a = mu(x_a.clone(), model.forward(x_a, &t, &cond(&|p| p.0), false).eps, &t, schedule);
        let mu_p = mu(x_p.clone(), model.forward(x_p, &t, &cond(&|p| p.1), false).eps, &t, schedule);
        let read = |d: Tensor<B, 1>| d.into_data().convert::<f64>().to_vec::<f64>().expect("f64");
        let (sum, mean) = (read(pair_distance(mu_a.clone(), mu_p.clone(), Distance::Sum)), read(pair_distance(mu_a, mu_p, Distance::Mean)));
        for (i, &ti) in t.iter().enumerate() {
            let b = &mut d_by_bucket[ti * T_BUCKETS / t_total];
            b.0.push(sum[i]);
            b.1.push(mean[i]);
        }
    }
    d_by_bucket
        .into_iter()
        .enumerate()
        .map(|(b, (sum, mean))| {
            let share = |v: &[f64]| v.iter().filter(|&&d| alive(d)).count() as f64 / v.len().max(1) as f64;
            OverlapRow {
                t_from: b * t_total / T_BUCKETS,
                t_to: (b + 1) * t_total / T_BUCKETS - 1,
                pairs: sum.len(),
                alive_sum: share(&sum),
                alive_mean: share(&mean),
                median_sum: median(sum),
                median_mean: median(mean),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line a pair crosses (e^{−d} = 0.01 at d = ln 100) and the median, by hand.
    #[test]
    fn threshold_and_median_by_hand() {
        assert!(alive(4.6) && !alive(4.61), "e^-d > 0.01 ⇔ d < ln 100 = 4.605");
        assert_eq!(median(vec![5.0, 1.0, 3.0]), 3.0);
        assert!(median(vec![]).is_nan());
    }
}
