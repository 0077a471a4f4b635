//! FID, KID, precision/recall and PRD on feature vectors, in f64 on the CPU (SPEC §5).

use crate::error::{Error, Result};
use crate::geometry::{Features, coverage, kmeans_best, knn_radii, rows_f64, sym_eigen};
use faer::Mat;

fn same_dim(a: &Features, b: &Features) -> Result<()> {
    if a.d != b.d {
        return Err(Error::Other(format!("feature dimensions differ: {} vs {}", a.d, b.d)));
    }
    Ok(())
}

/// Mean and covariance (unbiased, n − 1, as numpy's `cov`) of a feature set.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianStats {
    pub n: usize,
    pub mean: Vec<f64>,
    /// d × d, row-major.
    pub cov: Vec<f64>,
}

impl GaussianStats {
    pub fn of(f: &Features) -> Result<Self> {
        if f.n < 2 {
            return Err(Error::Other(format!("statistics need at least 2 feature vectors, got {}", f.n)));
        }
        let d = f.d;
        let mut mean = vec![0.0f64; d];
        for i in 0..f.n {
            for (m, &x) in mean.iter_mut().zip(f.row(i)) {
                *m += x as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= f.n as f64);
        let centred = Mat::<f64>::from_fn(f.n, d, |i, j| f.row(i)[j] as f64 - mean[j]);
        let cov = centred.transpose() * &centred;
        let scale = 1.0 / (f.n - 1) as f64;
        Ok(Self { n: f.n, mean, cov: (0..d * d).map(|k| cov[(k / d, k % d)] * scale).collect() })
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    fn cov_mat(&self) -> Mat<f64> {
        let d = self.dim();
        Mat::from_fn(d, d, |i, j| self.cov[i * d + j])
    }
}

/// FID = ‖μ_a − μ_b‖² + tr Σ_a + tr Σ_b − 2·tr (Σ_a Σ_b)^{1/2}, the square-root trace through
/// symmetric eigendecompositions: with S = Σ_a^{1/2}, (Σ_a Σ_b)^{1/2} has the eigenvalues of
/// (S Σ_b S)^{1/2}, which is symmetric positive semi-definite.
pub fn fid(a: &GaussianStats, b: &GaussianStats) -> Result<f64> {
    if a.dim() != b.dim() {
        return Err(Error::Other(format!("feature dimensions differ: {} vs {}", a.dim(), b.dim())));
    }
    let d = a.dim();
    let mean_term: f64 = a.mean.iter().zip(&b.mean).map(|(x, y)| (x - y).powi(2)).sum();
    let trace = |s: &GaussianStats| (0..d).map(|i| s.cov[i * d + i]).sum::<f64>();
    let (vals, vecs) = sym_eigen(&a.cov_mat())?;
    let root = Mat::<f64>::from_fn(d, d, |i, j| vals[j].max(0.0).sqrt() * vecs[(i, j)]);
    let sqrt_a = &root * vecs.transpose();
    let m = &sqrt_a * b.cov_mat() * &sqrt_a;
    // Symmetrise against rounding before the second decomposition.
    let m = Mat::<f64>::from_fn(d, d, |i, j| 0.5 * (m[(i, j)] + m[(j, i)]));
    let (mv, _) = sym_eigen(&m)?;
    let tr_sqrt: f64 = mv.iter().map(|v| v.max(0.0).sqrt()).sum();
    Ok(mean_term + trace(a) + trace(b) - 2.0 * tr_sqrt)
}

/// KID: the unbiased MMD² with the cubic polynomial kernel k(x, y) = (x·y/d + 1)³, averaged
/// over `subsets` random subsets of `subset_size` from each set (without replacement within a
/// subset). Returns (mean, standard deviation) over subsets. Kernel matrices are products of
/// the subset matrices (m × m each, never n × n).
pub fn kid(a: &Features, b: &Features, subsets: usize, subset_size: usize, seed: u64) -> Result<(f64, f64)> {
    use rand::seq::index::sample;
    same_dim(a, b)?;
    let m = subset_size.min(a.n).min(b.n);
    if m < 2 || subsets == 0 {
        return Err(Error::Other(format!("KID needs subsets of at least 2 vectors (sets of {} and {})", a.n, b.n)));
    }
    let d = a.d as f64;
    let kernel_sum = |x: &Mat<f64>, y: &Mat<f64>, skip_diagonal: bool| {
        let g = x * y.transpose();
        let mut s = 0.0;
        for j in 0..g.ncols() {
            for i in 0..g.nrows() {
                if !(skip_diagonal && i == j) {
                    s += (g[(i, j)] / d + 1.0).powi(3);
                }
            }
        }
        s
    };
    let mut r = crate::rng::rng(seed, crate::rng::Stream::Analysis, 77);
    let mut values = Vec::with_capacity(subsets);
    for _ in 0..subsets {
        // With m = n the subset is the whole set (in a permuted order, which the sums ignore).
        let x = rows_f64(a, &sample(&mut r, a.n, m).into_vec());
        let y = rows_f64(b, &sample(&mut r, b.n, m).into_vec());
        let (kxx, kyy, kxy) = (kernel_sum(&x, &x, true), kernel_sum(&y, &y, true), kernel_sum(&x, &y, false));
        let mf = m as f64;
        values.push((kxx + kyy) / (mf * (mf - 1.0)) - 2.0 * kxy / (mf * mf));
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
    Ok((mean, var.sqrt()))
}

/// (precision, recall) with k-NN manifolds of k neighbours.
pub fn precision_recall(real: &Features, fake: &Features, k: usize) -> Result<(f64, f64)> {
    same_dim(real, fake)?;
    if real.n <= k || fake.n <= k {
        return Err(Error::Other(format!("precision/recall with k = {k} needs more than {k} vectors per set (got {} and {})", real.n, fake.n)));
    }
    let (rr, rf) = (knn_radii(real, k), knn_radii(fake, k));
    Ok((coverage(real, &rr, fake), coverage(fake, &rf, real)))
}

/// Index of the stream that shuffles the rows before the IS splits.
const IS_SHUFFLE_STREAM: u64 = 92;

/// The row order the IS splits are cut from: a permutation of 0..n seeded by `seed`; the k-th
/// row of the shuffled order is original row `perm[k]`.
fn is_permutation(n: usize, seed: u64) -> Vec<usize> {
    use rand::seq::SliceRandom;
    let mut perm: Vec<usize> = (0..n).collect();
    perm.shuffle(&mut crate::rng::rng(seed, crate::rng::Stream::Analysis, IS_SHUFFLE_STREAM));
    perm
}

/// Inception Score from class logits (n × C, row-major): exp E_x KL(p(y|x) ‖ p(y)) on each of
/// `splits` consecutive splits of a seeded shuffle of the rows; (mean, standard deviation) over
/// splits. The shuffle matters (as torch-fidelity's): generated samples come class by class, so
/// unshuffled splits would each hold few classes and their marginal p(y) would collapse.
pub fn inception_score(logits: &[f32], classes: usize, splits: usize, seed: u64) -> Result<(f64, f64)> {
    let n = logits.len() / classes.max(1);
    if classes == 0 || logits.len() != n * classes || n < splits || splits == 0 {
        return Err(Error::Other(format!("inception score: {} logits of {classes} classes cannot make {splits} splits", logits.len())));
    }
    let rows: Vec<&[f32]> = logits.chunks(classes).collect();
    let probs: Vec<Vec<f64>> = is_permutation(n, seed)
        .into_iter()
        .map(|i| {
            let row = rows[i];
            let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
            let e: Vec<f64> = row.iter().map(|&v| (v as f64 - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(|v| v / s).collect()
        })
        .collect();
    let mut scores = Vec::with_capacity(splits);
    for k in 0..splits {
        let part = &probs[k * n / splits..(k + 1) * n / splits];
        let marginal: Vec<f64> = (0..classes).map(|c| part.iter().map(|p| p[c]).sum::<f64>() / part.len() as f64).collect();
        let kl: f64 =
            part.iter().map(|p| p.iter().zip(&marginal).map(|(&pc, &mc)| if pc > 0.0 { pc * (pc.ln() - mc.ln()) } else { 0.0 }).sum::<f64>()).sum::<f64>()
                / part.len() as f64;
        scores.push(kl.exp());
    }
    let mean = scores.iter().sum::<f64>() / splits as f64;
    let var = scores.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / splits as f64;
    Ok((mean, var.sqrt()))
}

/// The PRD curve (Sajjadi et al. 2018) of two histograms over the same bins: for slopes
/// λ = tan θ, θ on `angles` points of (0, π/2), α(λ) = Σ min(λ·ref, eval), β(λ) = α(λ)/λ.
/// Returns (precision α, recall β).
pub fn prd_curve(eval: &[f64], reference: &[f64], angles: usize) -> (Vec<f64>, Vec<f64>) {
    let eps = 1e-10;
    let (mut p, mut r) = (Vec::with_capacity(angles), Vec::with_capacity(angles));
    for k in 0..angles {
        let theta = eps + (std::f64::consts::FRAC_PI_2 - 2.0 * eps) * k as f64 / (angles - 1) as f64;
        let slope = theta.tan();
        let prec: f64 = reference.iter().zip(eval).map(|(&rf, &ev)| (slope * rf).min(ev)).sum();
        p.push(prec.clamp(0.0, 1.0));
        r.push((prec / slope).clamp(0.0, 1.0));
    }
    (p, r)
}

/// max over the curve of F_β = (1+β²)·p·r/(β²·p + r); returns (F_β, F_{1/β}).
pub fn max_f_beta(precision: &[f64], recall: &[f64], beta: f64) -> (f64, f64) {
    let f = |b: f64| {
        precision.iter().zip(recall).map(|(&p, &r)| if p + r > 0.0 { (1.0 + b * b) * p * r / (b * b * p + r).max(1e-300) } else { 0.0 }).fold(0.0f64, f64::max)
    };
    (f(beta), f(1.0 / beta))
}

/// PRD's (F₈, F₁/₈): the union of both sets clustered into `clusters` bins (the best of `inits`
/// k-means starts, Sajjadi et al.'s n_init = 10), histograms of each set over the bins, the PRD
/// curve averaged over `runs` clusterings.
pub fn prd(real: &Features, fake: &Features, clusters: usize, runs: usize, inits: usize, angles: usize, seed: u64) -> Result<(f64, f64)> {
    same_dim(real, fake)?;
    let both = Features::new(real.n + fake.n, real.d, real.data.iter().chain(&fake.data).copied().collect())?;
    let (mut p, mut r) = (vec![0.0; angles], vec![0.0; angles]);
    let inits = inits.max(1);
    for run in 0..runs {
        let assign = kmeans_best(&both, clusters, 100, inits, seed.wrapping_add((run * inits) as u64));
        let mut hr = vec![0.0f64; clusters];
        let mut hf = vec![0.0f64; clusters];
        for (i, &c) in assign.iter().enumerate() {
            if i < real.n { hr[c] += 1.0 / real.n as f64 } else { hf[c] += 1.0 / fake.n as f64 }
        }
        let (pp, rr) = prd_curve(&hf, &hr, angles);
        for k in 0..angles {
            p[k] += pp[k] / runs as f64;
            r[k] += rr[k] / runs as f64;
        }
    }
    Ok(max_f_beta(&p, &r, 8.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::tests::gaussian;

    #[test]
    fn fid_of_a_set_with_itself_is_zero() {
        let f = gaussian(500, &[0.0, 1.0, -2.0, 0.5], &[1.0, 2.0, 0.5, 1.0], 1);
        let s = GaussianStats::of(&f).unwrap();
        assert!(fid(&s, &s).unwrap().abs() < 1e-9);
    }

    #[test]
    fn fid_matches_the_closed_form() {
        // Diagonal (commuting) covariances: FID = ‖Δμ‖² + Σ (σ_a − σ_b)².
        let d = 3;
        let diag = |v: [f64; 3]| GaussianStats { n: 10, mean: vec![0.0; d], cov: (0..9).map(|k| if k % 4 == 0 { v[k / 4] } else { 0.0 }).collect() };
        let mut a = diag([1.0, 4.0, 9.0]);
        let b = diag([4.0, 1.0, 9.0]);
        a.mean = vec![1.0, 0.0, 2.0];
        let want = 1.0 + 4.0 + (1.0f64 - 2.0).powi(2) + (2.0f64 - 1.0).powi(2);
        assert!((fid(&a, &b).unwrap() - want).abs() < 1e-9);
        // A rotated (non-diagonal) Σ_b against Σ_a = I: tr(Σ_b^{1/2}) is rotation-invariant.
        let (c, s) = (0.6f64, 0.8f64);
        let lam = [4.0, 1.0];
        let rot = [[c, -s], [s, c]];
        let mut cov = vec![0.0; 4];
        for i in 0..2 {
            for j in 0..2 {
                cov[i * 2 + j] = (0..2).map(|k| rot[i][k] * lam[k] * rot[j][k]).sum();
            }
        }
        let a = GaussianStats { n: 10, mean: vec![0.0; 2], cov: vec![1.0, 0.0, 0.0, 1.0] };
        let b = GaussianStats { n: 10, mean: vec![0.0; 2], cov };
        let want = 2.0 + 5.0 - 2.0 * (2.0 + 1.0);
        assert!((fid(&a, &b).unwrap() - want).abs() < 1e-9);
        // Sample statistics of two Gaussians approach the closed form.
        let fa = GaussianStats::of(&gaussian(20000, &[0.0, 0.0], &[1.0, 1.0], 2)).unwrap();
        let fb = GaussianStats::of(&gaussian(20000, &[1.0, 0.0], &[2.0, 1.0], 3)).unwrap();
        assert!((fid(&fa, &fb).unwrap() - 2.0).abs() < 0.1);
    }

    #[test]
    fn dimension_mismatch_is_an_error() {
        let a = GaussianStats::of(&gaussian(10, &[0.0; 3], &[1.0; 3], 1)).unwrap();
        let b = GaussianStats::of(&gaussian(10, &[0.0; 2], &[1.0; 2], 1)).unwrap();
        assert!(fid(&a, &b).unwrap_err().to_string().contains("dimensions differ"));
        assert!(Features::new(3, 2, vec![0.0; 5]).is_err());
    }

    #[test]
    fn kid_is_unbiased_on_equal_distributions() {
        let a = gaussian(400, &[0.0; 4], &[1.0; 4], 4);
        let b = gaussian(400, &[0.0; 4], &[1.0; 4], 5);
        let (m, sd) = kid(&a, &b, 50, 100, 0).unwrap();
        assert!(m.abs() < 3.0 * sd / (50f64).sqrt() + 1e-3, "{m} ± {sd}");
        let c = gaussian(400, &[1.0; 4], &[1.0; 4], 6);
        let (far, _) = kid(&a, &c, 20, 100, 0).unwrap();
        assert!(far > 0.1, "{far}");
    }

    #[test]
    fn precision_recall_on_toy_manifolds() {
        // Integer coordinates, so every squared distance is exact. Real: x = 0..9 on the x axis
        // (k = 3 radii²: 9 at the ends, 4 inside) and 15 points far off at (−100 − i, −100).
        let real_data: Vec<f32> = (0..10).flat_map(|i| [i as f32, 0.0]).chain((0..15).flat_map(|i| [-100.0 - i as f32, -100.0])).collect();
        let real = Features::new(25, 2, real_data).unwrap();
        // Fake: 6 near the line, 4 far off at (100 + i, 100).
        //   (2, 1), (6, 0), (7, 1): strictly inside a real ball (d² 1, 0, 1 < 4);
        //   (12, 0), (−3, 0): d² 9 to the end points 9 and 0, exactly their radius²;
        //   (4, 2): d² 4 to real 4, exactly its radius² (5 to reals 3 and 5).
        // Precision = 6/10 = 0.6; a strict `<` would drop the three boundary points (0.3).
        let near = [[2.0, 1.0], [6.0, 0.0], [7.0, 1.0], [12.0, 0.0], [-3.0, 0.0], [4.0, 2.0]];
        let fake_data: Vec<f32> = near.iter().flatten().copied().chain((0..4).flat_map(|i| [100.0 + i as f32, 100.0])).collect();
        let fake = Features::new(10, 2, fake_data).unwrap();
        let (p, r) = precision_recall(&real, &fake, 3).unwrap();
        assert!((p - 0.6).abs() < 1e-12, "{p}");
        // Recall: the fake radii² of (2, 1) and (7, 1) are 25 (their 3rd neighbours (7, 1) and
        // (2, 1)), so they cover x = 0..6 and 3..9: the 10 line points, not the 15 far ones
        // → 10/25 = 0.4.
        assert!((r - 0.4).abs() < 1e-12, "{r}");
        let (p, r) = precision_recall(&real, &real, 3).unwrap();
        assert_eq!((p, r), (1.0, 1.0));
    }

    #[test]
    fn prd_on_known_cases() {
        // Identical histograms: the curve reaches (1, 1).
        let h = [0.25, 0.25, 0.5];
        let (p, r) = prd_curve(&h, &h, 1001);
        let (f8, f18) = max_f_beta(&p, &r, 8.0);
        assert!(f8 > 0.99 && f18 > 0.99, "{f8} {f18}");
        // Disjoint supports: nothing.
        let (p, r) = prd_curve(&[1.0, 0.0], &[0.0, 1.0], 1001);
        assert_eq!(max_f_beta(&p, &r, 8.0), (0.0, 0.0));
        // Eval covers half the reference (mode dropping): precision 1 at small λ, recall ≤ ½.
        let (p, r) = prd_curve(&[1.0, 0.0], &[0.5, 0.5], 1001);
        assert!(r.iter().all(|&v| v <= 0.5 + 1e-9) && p.iter().any(|&v| v > 0.99));
        // Asymmetric: α(λ) = min(λ/2, 1), β = min(½, 1/λ), whose best point is the corner
        // (p, r) = (1, ½) at λ = 2. F₈ = 65·½/(64 + ½) = 65/129 ≈ 0.504 (recall-weighted),
        // F₁/₈ = (65/64)·½/(1/64 + ½) = 65/66 ≈ 0.985 (precision-weighted); the 1001 angles
        // miss λ = 2 by a hair (≈ 2e−5 below).
        let (f8, f18) = max_f_beta(&p, &r, 8.0);
        assert!((f8 - 65.0 / 129.0).abs() < 1e-4 && (f18 - 65.0 / 66.0).abs() < 1e-4, "{f8} {f18}");
        // The roles swap with the sets: eval on both modes, reference on one → (½, 1).
        let (p, r) = prd_curve(&[0.5, 0.5], &[1.0, 0.0], 1001);
        let (f8, f18) = max_f_beta(&p, &r, 8.0);
        assert!((f8 - 65.0 / 66.0).abs() < 1e-4 && (f18 - 65.0 / 129.0).abs() < 1e-4, "{f8} {f18}");
        // max_f_beta on one point, exactly: (p, r) = (1, ½) → (65/129, 65/66).
        let (f8, f18) = max_f_beta(&[1.0], &[0.5], 8.0);
        assert!((f8 - 65.0 / 129.0).abs() < 1e-12 && (f18 - 65.0 / 66.0).abs() < 1e-12, "{f8} {f18}");
        // On features: the same cloud twice gives F ≈ 1; far apart gives ≈ 0.
        let a = gaussian(300, &[0.0, 0.0], &[1.0, 1.0], 7);
        let b = gaussian(300, &[0.0, 0.0], &[1.0, 1.0], 8);
        let (f8, f18) = prd(&a, &b, 20, 3, 1, 1001, 0).unwrap();
        assert!(f8 > 0.8 && f18 > 0.8, "{f8} {f18}");
        let c = gaussian(300, &[50.0, 0.0], &[1.0, 1.0], 9);
        let (f8, f18) = prd(&a, &c, 20, 3, 1, 1001, 0).unwrap();
        assert!(f8 < 0.05 && f18 < 0.05, "{f8} {f18}");
        // Mode dropping on features: real in two far blobs, fake in one of them. Two clusters
        // split the blobs, so the histograms are the (1, 0) vs (½, ½) case above: high
        // precision, half the recall → F₁/₈ ≈ 65/66, F₈ ≈ 65/129.
        let real = Features::new(600, 2, a.data.iter().chain(&c.data).copied().collect()).unwrap();
        let (f8, f18) = prd(&real, &b, 2, 3, 2, 1001, 0).unwrap();
        assert!((f8 - 65.0 / 129.0).abs() < 1e-3 && (f18 - 65.0 / 66.0).abs() < 1e-3, "{f8} {f18}");
    }

    /// n_init: the best of several k-means starts is the one of lowest inertia (by hand on a
    /// line of points), and over random starts it is never worse than the first.
    #[test]
    fn inception_score_by_hand() {
        // Confident and spread over two classes: KL = ln 2 for each → IS = 2.
        let big = 60.0f32;
        let logits = [big, 0.0, 0.0, big];
        let (m, sd) = inception_score(&logits, 2, 1, 0).unwrap();
        assert!((m - 2.0).abs() < 1e-9 && sd == 0.0, "{m}");
        // Uniform predictions: IS = 1.
        let (m, _) = inception_score(&[0.5; 12], 3, 2, 0).unwrap();
        assert!((m - 1.0).abs() < 1e-12);
        // p(y|x) = (0.75, 0.25) and (0.25, 0.75): marginal ½, KL = 0.75 ln 1.5 + 0.25 ln 0.5.
        let l = (3.0f32).ln();
        let (m, _) = inception_score(&[l, 0.0, 0.0, l], 2, 1, 0).unwrap();
        let want = (0.75 * 1.5f64.ln() + 0.25 * 0.5f64.ln()).exp();
        assert!((m - want).abs() < 1e-6, "{m} vs {want}");
        // Two splits of different sets (IS 2 and 1): the mean and spread of the per-split
        // scores. The rows are placed so that the seeded shuffle brings them into this order.
        let ordered = [[big, 0.0], [0.0, big], [0.5, 0.5], [0.5, 0.5]];
        let perm = is_permutation(4, 7);
        let mut rows = [[0.0f32; 2]; 4];
        for (k, &i) in perm.iter().enumerate() {
            rows[i] = ordered[k];
        }
        let (m, sd) = inception_score(rows.as_flattened(), 2, 2, 7).unwrap();
        assert!((m - 1.5).abs() < 1e-9 && (sd - 0.5).abs() < 1e-9, "{m} {sd}");
        assert!(inception_score(&[0.0; 5], 2, 1, 0).is_err());
    }

    /// Samples come class by class: consecutive splits of 10 would each hold one class and
    /// score 1. The seeded shuffle mixes the classes into every split.
    #[test]
    fn inception_score_shuffles_class_ordered_samples() {
        // 10 classes × 10 samples, row i confident on class i / 10, in class order.
        let logits: Vec<f32> = (0..100).flat_map(|i| (0..10).map(move |c| if c == i / 10 { 60.0 } else { 0.0 })).collect();
        // Unsplit: 10 equally frequent one-hot classes → IS = exp(ln 10) = 10.
        let (whole, _) = inception_score(&logits, 10, 1, 3).unwrap();
        assert!((whole - 10.0).abs() < 1e-9, "{whole}");
        for seed in [0u64, 1, 2] {
            let (m, sd) = inception_score(&logits, 10, 10, seed).unwrap();
            // Independently: with one-hot rows, a split's IS is exp of the entropy of its class
            // counts, exp(−Σ_c (n_c/10)·ln(n_c/10)).
            let perm = is_permutation(100, seed);
            let per_split: Vec<f64> = perm
                .chunks(10)
                .map(|split| {
                    let mut counts = [0usize; 10];
                    split.iter().for_each(|&i| counts[i / 10] += 1);
                    (-counts.iter().filter(|&&c| c > 0).map(|&c| c as f64 / 10.0 * (c as f64 / 10.0).ln()).sum::<f64>()).exp()
                })
                .collect();
            let want = per_split.iter().sum::<f64>() / 10.0;
            let want_sd = (per_split.iter().map(|v| (v - want).powi(2)).sum::<f64>() / 10.0).sqrt();
            assert!((m - want).abs() < 1e-9 && (sd - want_sd).abs() < 1e-9, "seed {seed}: {m} ± {sd} vs {want} ± {want_sd}");
            // Far from the collapsed 1 (10 draws from 10 classes hold ≈ 6.5 distinct ones).
            assert!(m > 3.0 && m <= whole, "seed {seed}: {m}");
            // The same seed gives the same value.
            assert_eq!(inception_score(&logits, 10, 10, seed).unwrap(), (m, sd));
        }
        assert_ne!(inception_score(&logits, 10, 10, 0).unwrap(), inception_score(&logits, 10, 10, 1).unwrap());
    }

    #[test]
    fn kid_by_hand_on_two_points_each() {
        // d = 1, x = {0, 1}, y = {1, 2}: k(u, v) = (uv + 1)³.
        let a = Features::new(2, 1, vec![0.0, 1.0]).unwrap();
        let b = Features::new(2, 1, vec![1.0, 2.0]).unwrap();
        let k = |u: f64, v: f64| (u * v + 1.0f64).powi(3);
        let kxx = 2.0 * k(0.0, 1.0);
        let kyy = 2.0 * k(1.0, 2.0);
        let kxy = k(0.0, 1.0) + k(0.0, 2.0) + k(1.0, 1.0) + k(1.0, 2.0);
        let want = (kxx + kyy) / 2.0 - 2.0 * kxy / 4.0;
        let (m, sd) = kid(&a, &b, 3, 2, 0).unwrap();
        assert!((m - want).abs() < 1e-9 && sd < 1e-12, "{m} vs {want}");
    }
}
