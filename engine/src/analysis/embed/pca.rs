//! PCA to two dimensions: the eigenvectors of the covariance with the two largest eigenvalues,
//! signs fixed so the largest-magnitude loading of each is positive (deterministic layouts).

use crate::error::Result;
use crate::geometry::{Features, sym_eigen};
use faer::Mat;

/// The first `k` principal directions of `f` (d × k, column j = component j) and the mean.
pub fn principal_axes(f: &Features, k: usize) -> Result<(Mat<f64>, Vec<f64>)> {
    let (n, d) = (f.n, f.d);
    let mut mean = vec![0.0f64; d];
    for i in 0..n {
        for (m, &v) in mean.iter_mut().zip(f.row(i)) {
            *m += v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let x = Mat::<f64>::from_fn(n, d, |i, j| f.row(i)[j] as f64 - mean[j]);
    let cov = x.transpose() * &x;
    let (vals, vecs) = sym_eigen(&cov)?;
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| vals[b].total_cmp(&vals[a]));
    let axes = Mat::<f64>::from_fn(d, k.min(d), |i, j| vecs[(i, order[j])]);
    let mut axes = axes;
    for j in 0..axes.ncols() {
        let big = (0..d).max_by(|&a, &b| axes[(a, j)].abs().total_cmp(&axes[(b, j)].abs())).unwrap_or(0);
        if axes[(big, j)] < 0.0 {
            for i in 0..d {
                axes[(i, j)] = -axes[(i, j)];
            }
        }
    }
    Ok((axes, mean))
}

/// Coordinates of `f` on its first two principal components (n × 2, row-major). With one
/// input dimension the second coordinate is 0.
pub fn pca_2d(f: &Features) -> Result<Vec<f32>> {
    let (axes, mean) = principal_axes(f, 2)?;
    let mut out = vec![0.0f32; f.n * 2];
    for i in 0..f.n {
        for j in 0..axes.ncols() {
            out[i * 2 + j] = f.row(i).iter().enumerate().map(|(c, &v)| (v as f64 - mean[c]) * axes[(c, j)]).sum::<f64>() as f32;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pca_of_points_on_a_tilted_line_by_hand() {
        // Points t·(3, 4)/5 + small offsets along (−4, 3)/5: the first axis is ±(0.6, 0.8), the
        // first coordinate is t minus the mean of t, the second the offset.
        let ts = [-2.0f32, -1.0, 0.0, 1.0, 2.0];
        let off = [0.1f32, -0.2, 0.2, -0.2, 0.1]; // mean 0, uncorrelated with t
        let data: Vec<f32> = ts.iter().zip(&off).flat_map(|(&t, &o)| [0.6 * t - 0.8 * o, 0.8 * t + 0.6 * o]).collect();
        let f = Features::new(5, 2, data).unwrap();
        let (axes, mean) = principal_axes(&f, 2).unwrap();
        assert!((axes[(0, 0)] - 0.6).abs() < 1e-6 && (axes[(1, 0)] - 0.8).abs() < 1e-6, "{axes:?}");
        assert!(mean.iter().all(|m| m.abs() < 1e-7));
        let xy = pca_2d(&f).unwrap();
        for (i, (&t, &o)) in ts.iter().zip(&off).enumerate() {
            assert!((xy[2 * i] - t).abs() < 1e-5, "{xy:?}");
            // The second axis' sign is fixed by its largest loading (−0.8 → flipped to +0.8).
            assert!((xy[2 * i + 1].abs() - o.abs()).abs() < 1e-5, "{xy:?}");
        }
    }
}
