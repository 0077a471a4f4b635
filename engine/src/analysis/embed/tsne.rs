//! Barnes–Hut t-SNE through the `bhtsne` crate, in f64 (in f32 it fails to separate 256-D
//! clusters), fed our own exact k-NN (3·perplexity neighbours) so the slow phase reports
//! progress, and started from PCA scaled to σ = 1e-4 (openTSNE's default initialisation).

use super::Progress;
use super::pca::pca_2d;
use crate::error::{Error, Result};
use crate::geometry::{Features, knn};

#[derive(Debug, Clone)]
pub struct TsneConfig {
    pub perplexity: f64,
    /// Barnes–Hut accuracy (smaller is slower and more exact).
    pub theta: f64,
    /// Iterations, the first `exaggeration_epochs` of them with early exaggeration 12.
    pub epochs: usize,
    pub exaggeration_epochs: usize,
    /// `None`: max(2n, 200). bhtsne's own "auto" (n/48) and openTSNE's n/12 leave its layouts
    /// under-expanded: on 5,000 × 256 points the k-NN preservation rises with the rate up to
    /// about 2n and then flattens, there matching openTSNE's (which runs its main phase at n).
    pub learning_rate: Option<f64>,
}

impl Default for TsneConfig {
    fn default() -> Self {
        Self { perplexity: 30.0, theta: 0.5, epochs: 750, exaggeration_epochs: 250, learning_rate: None }
    }
}

/// t-SNE layout of `f` (n × 2, row-major). bhtsne's optimiser cannot be stopped from its epoch
/// callback, so a cancel during the optimisation takes effect when it ends; the result is then
/// discarded (Error::Cancelled).
pub fn tsne(f: &Features, cfg: &TsneConfig, seed: u64, progress: &mut Progress) -> Result<Vec<f32>> {
    let n = f.n;
    // bhtsne requires n − 1 > 3·perplexity; small sets get a smaller perplexity.
    let perplexity = cfg.perplexity.min((n as f64 - 2.0) / 3.0).max(1.0);
    let k = ((3.0 * perplexity) as usize).clamp(1, n - 1);
    if !progress(0.0, None) {
        return Err(Error::Cancelled);
    }
    let neighbours: Vec<Vec<bhtsne::Neighbor<f64>>> =
        knn(f, k).into_iter().map(|row| row.into_iter().map(|(index, d2)| bhtsne::Neighbor { index, distance: d2.sqrt() }).collect()).collect();
    if !progress(0.1, None) {
        return Err(Error::Cancelled);
    }
    let pca = pca_2d(f)?;
    let sd = {
        let m = pca.iter().step_by(2).map(|&v| v as f64).sum::<f64>() / n as f64;
        (pca.iter().step_by(2).map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / n as f64).sqrt().max(1e-12)
    };
    // The seed perturbs the start a little so different seeds give different (equally valid)
    // layouts while one seed always gives the same one.
    let mut r = crate::rng::rng(seed, crate::rng::Stream::Analysis, 78);
    let jitter = crate::rng::normal_vec(&mut r, 2 * n);
    let init: Vec<f64> = pca.iter().zip(jitter).map(|(&v, e)| 1e-4 * (v as f64 / sd) + 1e-6 * e as f64).collect();
    let data: Vec<&[f32]> = f.data.chunks(f.d).collect();
    let mut go_on = true;
    let epochs = cfg.epochs;
    let mut t = bhtsne::tSNE::<f64, &[f32], 2>::new(&data);
    t.learning_rate(cfg.learning_rate.unwrap_or((2.0 * n as f64).max(200.0)))
        .perplexity(perplexity)
        .epochs(epochs)
        .stop_lying_epoch(cfg.exaggeration_epochs)
        .momentum_switch_epoch(cfg.exaggeration_epochs)
        .initial_embedding(init)
        .epoch_callback(|epoch, y: &[f64]| {
            if go_on && epoch % 10 == 9 {
                let snapshot: Option<Vec<f32>> = (epoch % 50 == 49).then(|| y.iter().map(|&v| v as f32).collect());
                go_on = progress(0.1 + 0.9 * (epoch + 1) as f32 / epochs as f32, snapshot.as_deref());
            }
        })
        .barnes_hut_with_neighbors(cfg.theta, &neighbours);
    let y = t.embedding();
    drop(t);
    if !go_on {
        return Err(Error::Cancelled);
    }
    Ok(y.into_iter().map(|v| v as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{clusters, nn_accuracy};
    use super::*;

    #[test]
    fn tsne_separates_clusters_and_is_seeded() {
        let centres: Vec<Vec<f32>> = (0..3).map(|c| (0..16).map(|j| if j == c { 12.0 } else { 0.0 }).collect()).collect();
        let (f, labels) = clusters(&centres, 60, 4);
        let cfg = TsneConfig { epochs: 300, exaggeration_epochs: 100, ..Default::default() };
        let xy = tsne(&f, &cfg, 1, &mut |_, _| true).unwrap();
        assert!(xy.iter().all(|v| v.is_finite()));
        assert!(nn_accuracy(&xy, &labels) > 0.97, "{}", nn_accuracy(&xy, &labels));
        assert!(matches!(tsne(&f, &cfg, 1, &mut |p, _| p < 0.5), Err(Error::Cancelled)));
    }
}
