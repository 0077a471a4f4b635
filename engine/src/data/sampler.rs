//! Batch samplers (SPEC §1): which images make up the batch of a step.
//!
//! Each sampler is a pure function of (seed, step), so a resumed run draws the same batches.

use crate::rng::{self, Stream};
use rand::Rng;
use rand::seq::SliceRandom;

/// The sampler's kind and its CLI spelling live in `ltlab-types` (the lab's transfer view sets
/// it); drawing the batches is the engine's.
pub use ltlab_types::BatchSampler;

/// What a [`BatchSampler`] draws: each class's probability and the batch of a step.
pub trait DrawBatches {
    /// Probability of drawing each class (uniform: the data frequency).
    fn class_probs(&self, counts: &[usize]) -> Vec<f64>;

    /// The dataset indices of the batch at `step`.
    fn batch(&self, labels: &[usize], by_class: &[Vec<usize>], batch: usize, seed: u64, step: u64) -> Vec<usize>;
}

impl DrawBatches for BatchSampler {
    fn class_probs(&self, counts: &[usize]) -> Vec<f64> {
        let c = counts.len();
        let w: Vec<f64> = match *self {
            Self::Uniform => counts.iter().map(|&n| n as f64).collect(),
            Self::Balanced => vec![1.0; c],
            Self::Brs { f } => (0..c).map(|i| if c == 1 { 1.0 } else { f.powf(i as f64 / (c - 1) as f64) }).collect(),
        };
        let s: f64 = w.iter().sum();
        w.iter().map(|x| x / s).collect()
    }

    fn batch(&self, labels: &[usize], by_class: &[Vec<usize>], batch: usize, seed: u64, step: u64) -> Vec<usize> {
        let n = labels.len();
        match *self {
            Self::Uniform => {
                // The batch's place in an endless stream of epochs, each its own seeded shuffle.
                let start = step as usize * batch;
                let mut perm: Option<(usize, Vec<usize>)> = None;
                (start..start + batch)
                    .map(|k| {
                        let epoch = k / n;
                        if perm.as_ref().is_none_or(|(e, _)| *e != epoch) {
                            perm = Some((epoch, epoch_permutation(n, seed, epoch as u64)));
                        }
                        perm.as_ref().unwrap().1[k % n]
                    })
                    .collect()
            }
            Self::Balanced | Self::Brs { .. } => {
                let counts: Vec<usize> = by_class.iter().map(Vec::len).collect();
                let probs = self.class_probs(&counts);
                let mut r = rng::rng(seed, Stream::Batch, step);
                (0..batch)
                    .map(|_| {
                        let c = draw(&probs, r.random::<f64>());
                        by_class[c][r.random_range(0..by_class[c].len())]
                    })
                    .collect()
            }
        }
    }
}

fn draw(probs: &[f64], u: f64) -> usize {
    let mut acc = 0.0;
    for (i, p) in probs.iter().enumerate() {
        acc += p;
        if u < acc {
            return i;
        }
    }
    probs.len() - 1
}

fn epoch_permutation(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    p.shuffle(&mut rng::rng(seed, Stream::Batch, u64::MAX - epoch));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> (Vec<usize>, Vec<Vec<usize>>) {
        let labels = vec![0, 0, 0, 0, 0, 0, 1, 1, 2];
        let mut by = vec![vec![]; 3];
        for (i, &y) in labels.iter().enumerate() {
            by[y].push(i);
        }
        (labels, by)
    }

    #[test]
    fn uniform_covers_each_epoch_exactly_once() {
        let (labels, by) = toy();
        let s = BatchSampler::Uniform;
        let mut seen: Vec<usize> = (0..3).flat_map(|step| s.batch(&labels, &by, 3, 7, step)).collect();
        seen.sort();
        assert_eq!(seen, (0..9).collect::<Vec<_>>());
        assert_eq!(s.batch(&labels, &by, 4, 7, 5), s.batch(&labels, &by, 4, 7, 5));
    }

    #[test]
    fn brs_probabilities_by_hand() {
        // C = 3, f = 0.25: weights 1, 0.5, 0.25 → 4/7, 2/7, 1/7.
        let p = BatchSampler::Brs { f: 0.25 }.class_probs(&[6, 2, 1]);
        for (a, b) in p.iter().zip([4.0 / 7.0, 2.0 / 7.0, 1.0 / 7.0]) {
            assert!((a - b).abs() < 1e-12);
        }
        assert_eq!(BatchSampler::Brs { f: 1.0 }.class_probs(&[6, 2, 1]), vec![1.0 / 3.0; 3]);
    }

    #[test]
    fn balanced_draws_classes_evenly() {
        let (labels, by) = toy();
        let mut per = [0usize; 3];
        for step in 0..200 {
            for i in BatchSampler::Balanced.batch(&labels, &by, 30, 1, step) {
                per[labels[i]] += 1;
            }
        }
        for n in per {
            assert!((n as f64 / 6000.0 - 1.0 / 3.0).abs() < 0.02, "{per:?}");
        }
    }
}
