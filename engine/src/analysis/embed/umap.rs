//! UMAP as umap-learn 0.5 defines it (McInnes et al. 2018; `umap_.py`): exact k-NN, the fuzzy
//! simplicial set (smooth k-NN distances, membership strengths, fuzzy union), then SGD on the
//! edges with negative sampling, each edge sampled in proportion to its weight.
//!
//! One deliberate difference: the layout starts from PCA (umap-learn's `init="pca"`) rather
//! than the spectral default, which needs a sparse eigensolver; the cross-check against
//! umap-learn reports both of its initialisations.

use super::Progress;
use super::pca::pca_2d;
use crate::error::{Error, Result};
use crate::geometry::{Features, knn};
use crate::rng::{self, Stream};
use rand::Rng;

#[derive(Debug, Clone)]
pub struct UmapConfig {
    /// Neighbourhood size, the point itself included (umap-learn's `n_neighbors`).
    pub n_neighbors: usize,
    pub min_dist: f64,
    pub spread: f64,
    /// `None`: 500 up to 10,000 points, else 200 (umap-learn's default).
    pub n_epochs: Option<usize>,
    pub learning_rate: f64,
    pub negative_sample_rate: usize,
    pub repulsion_strength: f64,
}

impl Default for UmapConfig {
    fn default() -> Self {
        Self { n_neighbors: 15, min_dist: 0.1, spread: 1.0, n_epochs: None, learning_rate: 1.0, negative_sample_rate: 5, repulsion_strength: 1.0 }
    }
}

/// a, b of the low-dimensional kernel 1 / (1 + a·d^{2b}), least-squares fitted (Levenberg–
/// Marquardt from a = b = 1, as SciPy's `curve_fit`) to 1 for d < min_dist and
/// exp(−(d − min_dist)/spread) beyond, on 300 points of [0, 3·spread].
pub fn find_ab(spread: f64, min_dist: f64) -> (f64, f64) {
    let xs: Vec<f64> = (0..300).map(|i| 3.0 * spread * i as f64 / 299.0).collect();
    let ys: Vec<f64> = xs.iter().map(|&x| if x < min_dist { 1.0 } else { (-(x - min_dist) / spread).exp() }).collect();
    let sse = |a: f64, b: f64| xs.iter().zip(&ys).map(|(&x, &y)| (1.0 / (1.0 + a * x.powf(2.0 * b)) - y).powi(2)).sum::<f64>();
    let (mut a, mut b, mut lambda) = (1.0f64, 1.0f64, 1e-3);
    let mut err = sse(a, b);
    for _ in 0..200 {
        // Normal equations of the Jacobian J = ∂f/∂(a, b).
        let (mut jtj, mut jtr) = ([[0.0f64; 2]; 2], [0.0f64; 2]);
        for (&x, &y) in xs.iter().zip(&ys) {
            let p = if x > 0.0 { x.powf(2.0 * b) } else { 0.0 };
            let den = 1.0 + a * p;
            let r = 1.0 / den - y;
            let ja = -p / (den * den);
            let jb = if x > 0.0 { -a * p * 2.0 * x.ln() / (den * den) } else { 0.0 };
            jtj[0][0] += ja * ja;
            jtj[0][1] += ja * jb;
            jtj[1][1] += jb * jb;
            jtr[0] += ja * r;
            jtr[1] += jb * r;
        }
        loop {
            let (m00, m11, m01) = (jtj[0][0] * (1.0 + lambda), jtj[1][1] * (1.0 + lambda), jtj[0][1]);
            let det = m00 * m11 - m01 * m01;
            let da = -(m11 * jtr[0] - m01 * jtr[1]) / det;
            let db = -(m00 * jtr[1] - m01 * jtr[0]) / det;
            let e = sse(a + da, b + db);
            if e < err {
                let done = (err - e) < 1e-15 * err.max(1e-300);
                (a, b, err, lambda) = (a + da, b + db, e, lambda / 10.0);
                if done {
                    return (a, b);
                }
                break;
            }
            lambda *= 10.0;
            if lambda > 1e12 {
                return (a, b);
            }
        }
    }
    (a, b)
}

/// umap-learn's `smooth_knn_dist` with local_connectivity = 1 and bandwidth = 1: for each row
/// of Euclidean k-NN distances (the point itself first, at 0) ρ is the nearest non-zero
/// distance and σ solves Σ_{j≥1} exp(−max(0, d_j − ρ)/σ) = log₂ k by bisection (64 steps,
/// tolerance 1e-5), floored at 1e-3 × the mean distance. Returns (σ, ρ).
pub fn smooth_knn_dist(dists: &[Vec<f64>], k: usize) -> (Vec<f64>, Vec<f64>) {
    let target = (k as f64).log2();
    let all: Vec<f64> = dists.iter().flatten().copied().collect();
    let mean_all = all.iter().sum::<f64>() / all.len().max(1) as f64;
    let mut sigmas = Vec::with_capacity(dists.len());
    let mut rhos = Vec::with_capacity(dists.len());
    for row in dists {
        let rho = row.iter().copied().find(|&d| d > 0.0).unwrap_or(0.0);
        let (mut lo, mut hi, mut mid) = (0.0f64, f64::INFINITY, 1.0f64);
        for _ in 0..64 {
            let psum: f64 = row[1..].iter().map(|&d| if d - rho > 0.0 { (-(d - rho) / mid).exp() } else { 1.0 }).sum();
            if (psum - target).abs() < 1e-5 {
                break;
            }
            if psum > target {
                hi = mid;
                mid = (lo + hi) / 2.0;
            } else {
                lo = mid;
                mid = if hi.is_infinite() { mid * 2.0 } else { (lo + hi) / 2.0 };
            }
        }
        let floor = 1e-3 * if rho > 0.0 { row.iter().sum::<f64>() / row.len() as f64 } else { mean_all };
        sigmas.push(mid.max(floor));
        rhos.push(rho);
    }
    (sigmas, rhos)
}

/// The fuzzy simplicial set as a list of directed edges (i, j, w), sorted, both directions
/// present: w_ij = exp(−(d_ij − ρ_i)/σ_i) (1 within ρ_i), then the fuzzy union
/// w = a + aᵀ − a∘aᵀ. Rows of `neighbours` are (index, Euclidean distance), self first.
pub fn fuzzy_graph(neighbours: &[Vec<(usize, f64)>], k: usize) -> Vec<(usize, usize, f64)> {
    let dists: Vec<Vec<f64>> = neighbours.iter().map(|r| r.iter().map(|&(_, d)| d).collect()).collect();
    let (sigmas, rhos) = smooth_knn_dist(&dists, k);
    let rows: Vec<Vec<(usize, f64)>> = neighbours
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut row: Vec<(usize, f64)> = r
                .iter()
                .filter(|&&(j, _)| j != i)
                .map(|&(j, d)| (j, if d - rhos[i] <= 0.0 || sigmas[i] == 0.0 { 1.0 } else { (-(d - rhos[i]) / sigmas[i]).exp() }))
                .filter(|&(_, w)| w > 0.0)
                .collect();
            row.sort_by_key(|&(j, _)| j);
            row
        })
        .collect();
    let lookup = |i: usize, j: usize| rows[i].binary_search_by_key(&j, |&(c, _)| c).ok().map(|p| rows[i][p].1);
    let mut edges = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        for &(j, a) in row {
            match lookup(j, i) {
                Some(b) => edges.push((i, j, a + b - a * b)),
                None => {
                    edges.push((i, j, a));
                    edges.push((j, i, a));
                }
            }
        }
    }
    edges.sort_by_key(|x| (x.0, x.1));
    edges
}

/// UMAP layout of `f` (n × 2, row-major).
pub fn umap(f: &Features, cfg: &UmapConfig, seed: u64, progress: &mut Progress) -> Result<Vec<f32>> {
    let n = f.n;
    if cfg.n_neighbors < 2 {
        return Err(Error::option("n-neighbors", "UMAP needs at least 2 neighbours (the point itself included)"));
    }
    let k = cfg.n_neighbors.min(n);
    if !progress(0.0, None) {
        return Err(Error::Cancelled);
    }
    let neighbours: Vec<Vec<(usize, f64)>> =
        knn(f, k - 1).into_iter().enumerate().map(|(i, row)| std::iter::once((i, 0.0)).chain(row.into_iter().map(|(j, d)| (j, d.sqrt()))).collect()).collect();
    let mut edges = fuzzy_graph(&neighbours, k);
    let n_epochs = cfg.n_epochs.unwrap_or(if n <= 10_000 { 500 } else { 200 });
    let w_max = edges.iter().map(|e| e.2).fold(0.0f64, f64::max);
    edges.retain(|e| e.2 >= w_max / n_epochs as f64);
    if !progress(0.05, None) {
        return Err(Error::Cancelled);
    }

    // PCA start: scaled so the largest |coordinate| is 10, tiny noise, then each axis to [0, 10].
    let mut r = rng::rng(seed, Stream::Analysis, 77);
    let mut y: Vec<f64> = pca_2d(f)?.into_iter().map(|v| v as f64).collect();
    let big = y.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-12);
    let noise = rng::normal_vec(&mut r, y.len());
    for (v, e) in y.iter_mut().zip(noise) {
        *v = *v * 10.0 / big + 1e-4 * e as f64;
    }
    for d in 0..2 {
        let (lo, hi) = (0..n).map(|i| y[2 * i + d]).fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
        let span = (hi - lo).max(1e-12);
        for i in 0..n {
            y[2 * i + d] = 10.0 * (y[2 * i + d] - lo) / span;
        }
    }

    let (a, b) = find_ab(cfg.spread, cfg.min_dist);
    let gamma = cfg.repulsion_strength;
    let epochs_per_sample: Vec<f64> = edges.iter().map(|e| w_max / e.2).collect();
    let epochs_per_negative: Vec<f64> = epochs_per_sample.iter().map(|e| e / cfg.negative_sample_rate as f64).collect();
    let mut next_sample = epochs_per_sample.clone();
    let mut next_negative = epochs_per_negative.clone();
    let clip = |v: f64| v.clamp(-4.0, 4.0);
    for epoch in 0..n_epochs {
        let alpha = cfg.learning_rate * (1.0 - epoch as f64 / n_epochs as f64);
        let ep = epoch as f64;
        for (e, &(j, kk, _)) in edges.iter().enumerate() {
            if next_sample[e] > ep {
                continue;
            }
            let (dx, dy) = (y[2 * j] - y[2 * kk], y[2 * j + 1] - y[2 * kk + 1]);
            let d2 = dx * dx + dy * dy;
            if d2 > 0.0 {
                let c = -2.0 * a * b * d2.powf(b - 1.0) / (a * d2.powf(b) + 1.0);
                let (gx, gy) = (clip(c * dx), clip(c * dy));
                y[2 * j] += gx * alpha;
                y[2 * j + 1] += gy * alpha;
                y[2 * kk] -= gx * alpha;
                y[2 * kk + 1] -= gy * alpha;
            }
            next_sample[e] += epochs_per_sample[e];
            let negatives = ((ep - next_negative[e]) / epochs_per_negative[e]).floor().max(0.0) as usize;
            for _ in 0..negatives {
                let o = r.random_range(0..n);
                let (dx, dy) = (y[2 * j] - y[2 * o], y[2 * j + 1] - y[2 * o + 1]);
                let d2 = dx * dx + dy * dy;
                if d2 > 0.0 {
                    let c = 2.0 * gamma * b / ((0.001 + d2) * (a * d2.powf(b) + 1.0));
                    y[2 * j] += clip(c * dx) * alpha;
                    y[2 * j + 1] += clip(c * dy) * alpha;
                }
            }
            next_negative[e] += negatives as f64 * epochs_per_negative[e];
        }
        if epoch % 10 == 9 {
            let snapshot: Option<Vec<f32>> = (epoch % 50 == 49).then(|| y.iter().map(|&v| v as f32).collect());
            if !progress(0.05 + 0.95 * (epoch + 1) as f32 / n_epochs as f32, snapshot.as_deref()) {
                return Err(Error::Cancelled);
            }
        }
    }
    Ok(y.into_iter().map(|v| v as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{clusters, nn_accuracy};
    use super::*;

    #[test]
    fn ab_fit_matches_umap_learn_defaults() {
        // umap-learn's find_ab_params(1.0, 0.1) = (1.5769434603, 0.8950608781).
        let (a, b) = find_ab(1.0, 0.1);
        assert!((a - 1.576_943_460).abs() < 1e-4 && (b - 0.895_060_878).abs() < 1e-4, "{a} {b}");
    }

    #[test]
    fn smooth_knn_dist_solves_its_equation() {
        // Row: self 0, then 1, 2, 3 → ρ = 1, and Σ exp(−(d − 1)/σ) over d = 1, 2, 3 is
        // 1 + e^{−1/σ} + e^{−2/σ} = log₂ 4 = 2, i.e. u + u² = 1 with u = e^{−1/σ}:
        // u = (√5 − 1)/2, σ = −1/ln u.
        let (s, r) = smooth_knn_dist(&[vec![0.0, 1.0, 2.0, 3.0]], 4);
        let u = (5f64.sqrt() - 1.0) / 2.0;
        assert_eq!(r[0], 1.0);
        assert!((s[0] - (-1.0 / u.ln())).abs() < 1e-4, "{} vs {}", s[0], -1.0 / u.ln());
    }

    #[test]
    fn fuzzy_union_by_hand() {
        // Three points on a line 0, 1, 3 with k = 2 (self + one neighbour): each point's one
        // neighbour is at ρ, so every directed membership is 1 and σ is irrelevant.
        // 0 → 1, 1 → 0, 2 → 1: union gives 0–1 both ways 1 + 1 − 1 = 1, 2–1 both ways 1.
        let nb = vec![vec![(0, 0.0), (1, 1.0)], vec![(1, 0.0), (0, 1.0)], vec![(2, 0.0), (1, 2.0)]];
        let g = fuzzy_graph(&nb, 2);
        assert_eq!(g, vec![(0, 1, 1.0), (1, 0, 1.0), (1, 2, 1.0), (2, 1, 1.0)]);
        // A one-sided edge of weight w < 1 stays w in both directions; a two-sided one a+b−ab.
        let nb = vec![vec![(0, 0.0), (1, 1.0), (2, 2.0)], vec![(1, 0.0), (0, 1.0), (2, 3.0)], vec![(2, 0.0), (0, 2.0), (1, 3.0)]];
        let (s, r) = smooth_knn_dist(&[vec![0.0, 1.0, 2.0], vec![0.0, 1.0, 3.0], vec![0.0, 2.0, 3.0]], 3);
        let w = |i: usize, d: f64| if d <= r[i] { 1.0 } else { (-(d - r[i]) / s[i]).exp() };
        let g = fuzzy_graph(&nb, 3);
        let get = |i, j| g.iter().find(|e| e.0 == i && e.1 == j).unwrap().2;
        let (a02, a20) = (w(0, 2.0), w(2, 2.0));
        assert!((get(0, 2) - (a02 + a20 - a02 * a20)).abs() < 1e-12);
        assert!((get(1, 2) - get(2, 1)).abs() < 1e-12);
    }

    #[test]
    fn umap_separates_clusters_and_is_seeded() {
        let centres: Vec<Vec<f32>> = (0..3).map(|c| (0..16).map(|j| if j == c { 12.0 } else { 0.0 }).collect()).collect();
        let (f, labels) = clusters(&centres, 60, 3);
        let cfg = UmapConfig { n_epochs: Some(200), ..Default::default() };
        let xy = umap(&f, &cfg, 1, &mut |_, _| true).unwrap();
        assert_eq!(xy, umap(&f, &cfg, 1, &mut |_, _| true).unwrap());
        assert!(nn_accuracy(&xy, &labels) > 0.97, "{}", nn_accuracy(&xy, &labels));
        // Cancelling stops the job with Error::Cancelled.
        assert!(matches!(umap(&f, &cfg, 1, &mut |p, _| p < 0.3), Err(Error::Cancelled)));
    }
}
