//! Debiased exponential smoothing of a whole series (TensorBoard's): s_k = β·s_{k−1} + (1−β)·x_k
//! from s_0 = 0, divided by 1 − β^k so that early points are not pulled towards zero.

/// The smoothed series; non-finite values are skipped (they keep the previous value).
pub fn debiased_ema(values: &[f64], beta: f64) -> Vec<f64> {
    let beta = beta.clamp(0.0, 0.9999);
    let (mut s, mut weight) = (0.0f64, 0.0f64);
    let mut out = Vec::with_capacity(values.len());
    for &x in values {
        if x.is_finite() {
            s = beta * s + (1.0 - beta) * x;
            weight = beta * weight + (1.0 - beta);
        }
        out.push(if weight > 0.0 { s / weight } else { f64::NAN });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand() {
        // β = ½: s = ½x₁ → ½ / ½ = x₁; then (¼x₁ + ½x₂) / ¾.
        let s = debiased_ema(&[4.0, 8.0, 8.0], 0.5);
        assert!((s[0] - 4.0).abs() < 1e-12);
        assert!((s[1] - (1.0 + 4.0) / 0.75).abs() < 1e-12);
        assert!((s[2] - (0.5 * 5.0 + 4.0) / 0.875).abs() < 1e-12);
        // A constant series stays constant (the debiasing at work); β = 0 is the raw series.
        assert!(debiased_ema(&[3.0; 50], 0.99).iter().all(|v| (v - 3.0).abs() < 1e-9));
        assert_eq!(debiased_ema(&[1.0, 5.0, 2.0], 0.0), vec![1.0, 5.0, 2.0]);
        // A NaN is skipped.
        let s = debiased_ema(&[2.0, f64::NAN, 2.0], 0.9);
        assert!(s.iter().all(|v| (v - 2.0).abs() < 1e-12));
    }
}
