//! Geometry of feature vectors, shared by evaluation and analysis: k nearest neighbours,
//! k-NN ball coverage, silhouettes, k-means and symmetric eigendecompositions, in f64 on the
//! CPU, through blocked matrix products (memory bounded, never an n×n matrix).

use crate::error::{Error, Result};
use faer::{Mat, Side};

/// n feature vectors of dimension d, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub n: usize,
    pub d: usize,
    pub data: Vec<f32>,
}

impl Features {
    pub fn new(n: usize, d: usize, data: Vec<f32>) -> Result<Self> {
        if data.len() != n * d {
            return Err(Error::Other(format!("features: {} values for {n} vectors of dimension {d}", data.len())));
        }
        Ok(Self { n, d, data })
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.d..(i + 1) * self.d]
    }
}

/// Eigenvalues and eigenvectors of a symmetric matrix.
pub fn sym_eigen(m: &Mat<f64>) -> Result<(Vec<f64>, Mat<f64>)> {
    let e = m.self_adjoint_eigen(Side::Lower).map_err(|e| Error::Other(format!("eigendecomposition failed: {e:?}")))?;
    let s = e.S();
    let vals = (0..m.nrows()).map(|i| s[i]).collect();
    Ok((vals, e.U().to_owned()))
}

/// The rows of `f` at `idx` as an f64 matrix.
pub(crate) fn rows_f64(f: &Features, idx: &[usize]) -> Mat<f64> {
    Mat::from_fn(idx.len(), f.d, |i, j| f.row(idx[i])[j] as f64)
}

/// Squared distances between every row of `set` and `query` rows `q0..q1`, as an
/// n × (q1 − q0) block (column-major, so one query's distances are contiguous):
/// ‖s‖² + ‖q‖² − 2 s·q through one matrix product.
fn distance_block(query: &Features, q0: usize, q1: usize, set_mat: &Mat<f64>, set_norms: &[f64]) -> Mat<f64> {
    use rayon::prelude::*;
    let q = Mat::<f64>::from_fn(q1 - q0, query.d, |i, j| query.row(q0 + i)[j] as f64);
    let mut g = set_mat * q.transpose();
    let n = set_norms.len();
    let qn: Vec<f64> = (q0..q1).map(|i| query.row(i).iter().map(|&v| (v as f64).powi(2)).sum()).collect();
    g.par_col_chunks_mut(1).enumerate().for_each(|(i, mut col)| {
        for j in 0..n {
            col[(j, 0)] = (set_norms[j] + qn[i] - 2.0 * col[(j, 0)]).max(0.0);
        }
    });
    g
}

/// Query rows per distance block: about 8 M distances (64 MB) at a time, whatever n is.
fn block_rows(n: usize) -> usize {
    (8_000_000 / n.max(1)).clamp(1, 4096)
}

fn norms(f: &Features) -> Vec<f64> {
    (0..f.n).map(|i| f.row(i).iter().map(|&v| (v as f64).powi(2)).sum()).collect()
}

/// Calls `visit(i, distances)` for every vector i of `f` with its squared distances to all
/// vectors of `f` (itself included, at 0), in blocks of rows through matrix products: memory
/// bounded, never an n×n matrix. Rows are visited in parallel.
fn for_each_distance_row<R: Send>(f: &Features, visit: impl Fn(usize, &[f64]) -> R + Sync) -> Vec<R> {
    use rayon::prelude::*;
    let all: Vec<usize> = (0..f.n).collect();
    let (mat, nrm) = (rows_f64(f, &all), norms(f));
    let mut out = Vec::with_capacity(f.n);
    let step = block_rows(f.n);
    for q0 in (0..f.n).step_by(step) {
        let q1 = (q0 + step).min(f.n);
        let block = distance_block(f, q0, q1, &mat, &nrm);
        out.par_extend((0..q1 - q0).into_par_iter().map(|i| {
            let col: Vec<f64> = (0..f.n).map(|j| if j == q0 + i { 0.0 } else { block[(j, i)] }).collect();
            visit(q0 + i, &col)
        }));
    }
    out
}

/// The k nearest neighbours of every vector of `f` (itself excluded) as (index, squared
/// distance), nearest first; ties broken by index.
pub fn knn(f: &Features, k: usize) -> Vec<Vec<(usize, f64)>> {
    for_each_distance_row(f, |i, dist| {
        let mut d: Vec<(usize, f64)> = dist.iter().copied().enumerate().filter(|&(j, _)| j != i).collect();
        let by = |a: &(usize, f64), b: &(usize, f64)| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0));
        let kk = k.min(d.len());
        if kk > 0 && kk < d.len() {
            d.select_nth_unstable_by(kk - 1, by);
        }
        d.truncate(kk);
        d.sort_unstable_by(by);
        d
    })
}

/// Squared distance of every vector of `f` to its k-th nearest neighbour in `f` (itself
/// excluded).
pub fn knn_radii(f: &Features, k: usize) -> Vec<f64> {
    knn(f, k.max(1)).into_iter().map(|row| row.last().map_or(0.0, |&(_, d)| d)).collect()
}

/// Silhouette of every vector (Euclidean): s = (b − a) / max(a, b) with a the mean distance to
/// the other members of its class and b the smallest mean distance to another class's members;
/// 0 for a vector alone in its class (Rousseeuw 1987, as scikit-learn). NaN where no other
/// class exists.
pub fn silhouette(f: &Features, labels: &[usize], classes: usize) -> Vec<f64> {
    let mut size = vec![0usize; classes];
    for &l in labels {
        size[l] += 1;
    }
    for_each_distance_row(f, |i, dist| {
        let mut sum = vec![0.0f64; classes];
        for (j, &d) in dist.iter().enumerate() {
            sum[labels[j]] += d.sqrt();
        }
        let own = labels[i];
        if size[own] <= 1 {
            return 0.0;
        }
        let a = sum[own] / (size[own] - 1) as f64;
        let b = (0..classes).filter(|&c| c != own && size[c] > 0).map(|c| sum[c] / size[c] as f64).fold(f64::INFINITY, f64::min);
        if !b.is_finite() {
            return f64::NAN;
        }
        let m = a.max(b);
        if m > 0.0 { (b - a) / m } else { 0.0 }
    })
}

/// Fraction of `query` vectors inside at least one k-NN ball of `manifold` (Kynkäänniemi et
/// al.): precision = coverage(real manifold, fake), recall = coverage(fake manifold, real).
pub fn coverage(manifold: &Features, radii: &[f64], query: &Features) -> f64 {
    use rayon::prelude::*;
    let all: Vec<usize> = (0..manifold.n).collect();
    let (mat, nrm) = (rows_f64(manifold, &all), norms(manifold));
    let step = block_rows(manifold.n);
    let mut inside = 0usize;
    for q0 in (0..query.n).step_by(step) {
        let q1 = (q0 + step).min(query.n);
        let block = distance_block(query, q0, q1, &mat, &nrm);
        inside += (0..q1 - q0).into_par_iter().filter(|&i| (0..manifold.n).any(|j| block[(j, i)] <= radii[j])).count();
    }
    inside as f64 / query.n as f64
}

/// Lloyd's k-means with k-means++ seeding; returns each vector's cluster. Assignments go
/// through one matrix product per iteration (‖x − c‖² = ‖x‖² − 2x·c + ‖c‖², ‖x‖² constant).
pub fn kmeans(f: &Features, k: usize, iterations: usize, seed: u64) -> Vec<usize> {
    use rand::Rng;
    use rayon::prelude::*;
    let mut r = crate::rng::rng(seed, crate::rng::Stream::Analysis, 5000);
    let (n, d, k) = (f.n, f.d, k.min(f.n));
    let x = Mat::<f64>::from_fn(n, d, |i, j| f.row(i)[j] as f64);
    let dist_c = |i: usize, c: &[f64]| f.row(i).iter().zip(c).map(|(&p, &q)| (p as f64 - q).powi(2)).sum::<f64>();
    let first: Vec<f64> = f.row(r.random_range(0..n)).iter().map(|&v| v as f64).collect();
    let mut nearest: Vec<f64> = (0..n).into_par_iter().map(|i| dist_c(i, &first)).collect();
    let mut centres = vec![first];
    while centres.len() < k {
        let total: f64 = nearest.iter().sum();
        let mut u = r.random::<f64>() * total;
        let mut pick = n - 1;
        for (i, &w) in nearest.iter().enumerate() {
            if u < w {
                pick = i;
                break;
            }
            u -= w;
        }
        let c: Vec<f64> = f.row(pick).iter().map(|&v| v as f64).collect();
        nearest.par_iter_mut().enumerate().for_each(|(i, m)| *m = m.min(dist_c(i, &c)));
        centres.push(c);
    }
    let mut assign = vec![usize::MAX; n];
    for _ in 0..iterations {
        let cm = Mat::<f64>::from_fn(k, d, |c, j| centres[c][j]);
        let cn: Vec<f64> = centres.iter().map(|c| c.iter().map(|v| v * v).sum()).collect();
        let g = &x * cm.transpose();
        let mut changed = false;
        for (i, a) in assign.iter_mut().enumerate() {
            let best = (0..k).min_by(|&p, &q| (cn[p] - 2.0 * g[(i, p)]).total_cmp(&(cn[q] - 2.0 * g[(i, q)]))).unwrap();
            changed |= *a != best;
            *a = best;
        }
        if !changed {
            break;
        }
        let mut sums = vec![vec![0.0f64; d]; k];
        let mut counts = vec![0usize; k];
        for (i, &a) in assign.iter().enumerate() {
            counts[a] += 1;
            for (s, &v) in sums[a].iter_mut().zip(f.row(i)) {
                *s += v as f64;
            }
        }
        for (c, (s, m)) in centres.iter_mut().zip(sums.into_iter().zip(counts)) {
            if m > 0 {
                *c = s.into_iter().map(|v| v / m as f64).collect();
            }
        }
    }
    assign
}

/// Σ‖x − c‖² of an assignment, c the mean of each cluster: k-means' objective (inertia).
pub fn inertia(f: &Features, assign: &[usize], k: usize) -> f64 {
    let mut sums = vec![vec![0.0f64; f.d]; k];
    let mut counts = vec![0usize; k];
    for (i, &a) in assign.iter().enumerate() {
        counts[a] += 1;
        for (s, &v) in sums[a].iter_mut().zip(f.row(i)) {
            *s += v as f64;
        }
    }
    assign.iter().enumerate().map(|(i, &a)| f.row(i).iter().zip(&sums[a]).map(|(&v, &s)| (v as f64 - s / counts[a] as f64).powi(2)).sum::<f64>()).sum()
}

/// The best of `inits` k-means runs (seeds `seed`, `seed + 1`, …): the assignment of lowest
/// inertia, as scikit-learn's `n_init`.
pub fn kmeans_best(f: &Features, k: usize, iterations: usize, inits: usize, seed: u64) -> Vec<usize> {
    (0..inits.max(1) as u64)
        .map(|i| {
            let assign = kmeans(f, k, iterations, seed.wrapping_add(i));
            (inertia(f, &assign, k.min(f.n)), assign)
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .expect("at least one init")
        .1
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rng::{self, Stream};

    /// n vectors drawn N(mean, std²) per dimension.
    pub(crate) fn gaussian(n: usize, mean: &[f64], std: &[f64], seed: u64) -> Features {
        let d = mean.len();
        let z = rng::normal_vec(&mut rng::rng(seed, Stream::Analysis, 1), n * d);
        Features::new(n, d, z.iter().enumerate().map(|(k, &v)| (mean[k % d] + std[k % d] * v as f64) as f32).collect()).unwrap()
    }

    #[test]
    fn kmeans_best_keeps_the_start_of_lowest_inertia() {
        // Points 0, 1, 10, 11 on a line, two clusters {0, 1} and {10, 11}: inertia 4·0.25 = 1.
        let f = Features::new(4, 1, vec![0.0, 1.0, 10.0, 11.0]).unwrap();
        assert_eq!(inertia(&f, &[0, 0, 1, 1], 2), 1.0);
        // {0}, {1, 10, 11}: 0 + (1 − 22/3)² + (10 − 22/3)² + (11 − 22/3)² = (361 + 64 + 121)/9 = 182/3.
        assert!((inertia(&f, &[0, 1, 1, 1], 2) - 182.0 / 3.0).abs() < 1e-12);
        // Three blobs in 2-d, 6 clusters: single starts land in different optima.
        let blobs = [gaussian(60, &[0.0, 0.0], &[1.0, 1.0], 1), gaussian(60, &[6.0, 0.0], &[1.0, 1.0], 2), gaussian(60, &[0.0, 6.0], &[1.0, 1.0], 3)];
        let f = Features::new(180, 2, blobs.iter().flat_map(|b| b.data.clone()).collect()).unwrap();
        let singles: Vec<f64> = (0..8).map(|s| inertia(&f, &kmeans(&f, 6, 100, 40 + s), 6)).collect();
        let best = inertia(&f, &kmeans_best(&f, 6, 100, 8, 40), 6);
        let lowest = singles.iter().cloned().fold(f64::INFINITY, f64::min);
        assert_eq!(best, lowest, "{singles:?}");
        assert!(singles.iter().any(|&s| s > lowest * 1.001), "the starts differ: {singles:?}");
    }

    #[test]
    fn knn_lists_by_hand() {
        // 1-D points 0, 1, 3, 7: neighbours nearest first, squared distances.
        let f = Features::new(4, 1, vec![0.0, 1.0, 3.0, 7.0]).unwrap();
        let nn = knn(&f, 2);
        assert_eq!(nn[0], vec![(1, 1.0), (2, 9.0)]);
        assert_eq!(nn[2], vec![(1, 4.0), (0, 9.0)]);
        assert_eq!(nn[3], vec![(2, 16.0), (1, 36.0)]);
        // k larger than n − 1 gives everyone else.
        assert_eq!(knn(&f, 10)[1].len(), 3);
    }

    #[test]
    fn silhouette_by_hand() {
        // Class 0 at 0 and 1, class 1 at 4 and 6 (1-D).
        let f = Features::new(4, 1, vec![0.0, 1.0, 4.0, 6.0]).unwrap();
        let s = silhouette(&f, &[0, 0, 1, 1], 2);
        // Point 0: a = 1, b = (4 + 6)/2 = 5 → 0.8. Point 1: a = 1, b = 4 → 0.75.
        // Point 2: a = 2, b = (4 + 3)/2 = 3.5 → 1.5/3.5. Point 3: a = 2, b = 5.5 → 3.5/5.5.
        let want = [0.8, 0.75, 1.5 / 3.5, 3.5 / 5.5];
        for (g, w) in s.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{s:?}");
        }
        // A class of one scores 0; with a single class there is no b.
        assert_eq!(silhouette(&f, &[0, 0, 0, 1], 2)[3], 0.0);
        assert!(silhouette(&f, &[0, 0, 0, 0], 1)[0].is_nan());
    }

    #[test]
    fn blocked_distances_match_the_direct_ones() {
        // More rows than one block holds, so the blocking itself is exercised.
        let n = 3000;
        let f = gaussian(n, &[0.0; 3], &[1.0; 3], 12);
        assert!(block_rows(n) < n);
        let radii = knn_radii(&f, 3);
        for &i in &[0usize, 1234, n - 1] {
            let mut d: Vec<f64> = (0..n).filter(|&j| j != i).map(|j| f.row(i).iter().zip(f.row(j)).map(|(&p, &q)| ((p - q) as f64).powi(2)).sum()).collect();
            d.sort_by(f64::total_cmp);
            assert!((radii[i] - d[2]).abs() < 1e-9, "{} vs {}", radii[i], d[2]);
        }
    }
}
