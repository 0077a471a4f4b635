//! GroupNorm (+ SiLU) forward and backward on flex: one pass per (image, group) over contiguous
//! NCHW f32 data, groups in parallel, statistics accumulated in f64. Non-f32 tensors go to the
//! composite form.

use super::norm::{GroupNormOptions, group_norm_backward_composite, group_norm_composite};
use burn::backend::Flex;
use burn::tensor::{DType, TensorData};
use burn_flex::FlexTensor;
use rayon::prelude::*;

fn f32s(t: &FlexTensor) -> Option<FlexTensor> {
    (!super::plain_ops() && t.dtype() == DType::F32).then(|| t.to_contiguous())
}

fn slice(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("a contiguous f32 tensor")
}

/// Σ f(x) in eight f32 lanes (so that it vectorises), the lanes added in f64.
fn lane_sum(xs: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut lanes = [0f32; 8];
    let chunks = xs.chunks_exact(8);
    let rest: f64 = chunks.remainder().iter().map(|&v| f(v) as f64).sum();
    for c in chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l += f(v);
        }
    }
    lanes.iter().map(|&l| l as f64).sum::<f64>() + rest
}

/// Σ f(a, b) over pairs, in eight f32 lanes like [`lane_sum`].
fn lane_sum_pairs(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let rest: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(&x, &y)| f(x, y) as f64).sum();
    for (x8, y8) in ca.zip(cb) {
        for ((l, &x), &y) in lanes.iter_mut().zip(x8).zip(y8) {
            *l += f(x, y);
        }
    }
    lanes.iter().map(|&l| l as f64).sum::<f64>() + rest
}

/// Mean and 1/√(var + ε) of one group's values (two passes: no cancellation in the variance).
fn stats(xs: &[f32], epsilon: f64) -> (f32, f32) {
    let m = xs.len() as f64;
    let mean = (lane_sum(xs, |v| v) / m) as f32;
    let var = lane_sum(xs, |v| (v - mean) * (v - mean)) / m;
    (mean, (1.0 / (var + epsilon).sqrt()) as f32)
}

/// eˣ without a libm call, so that loops over it vectorise: 2ⁿ·p(r) with n = round(x·log₂e),
/// r = x − n·ln 2 (two-part ln 2) and p the degree-6 Taylor polynomial (relative error < 2e-7 for
/// |r| ≤ ln2 / 2). Inputs are clamped to where f32 neither overflows nor goes subnormal.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³: adding and subtracting it rounds to an integer
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[inline(always)]
fn sigmoid(y: f32) -> f32 {
    1.0 / (1.0 + exp(-y))
}

/// The shape pieces: channels, pixels per channel, channels per group.
fn dims(x: &FlexTensor, o: &GroupNormOptions) -> (usize, usize, usize) {
    let s = x.layout().shape();
    let (c, hw) = (s[1], s[2] * s[3]);
    (c, hw, c / o.groups)
}

pub fn group_norm(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, o: GroupNormOptions) -> FlexTensor {
    let (Some(xc), Some(gc), Some(bc)) = (f32s(&x), f32s(&gamma), f32s(&beta)) else {
        return group_norm_composite::<Flex>(x, gamma, beta, o);
    };
    let (xs, gs, bs) = (slice(&xc), slice(&gc), slice(&bc));
    let (_, hw, cg) = dims(&xc, &o);
    let mut out = vec![0f32; xs.len()];
    out.par_chunks_mut(cg * hw).zip(xs.par_chunks(cg * hw)).enumerate().for_each(|(j, (out, xg))| {
        let (mean, rstd) = stats(xg, o.epsilon);
        let first = (j % o.groups) * cg;
        for (cl, (out, xch)) in out.chunks_mut(hw).zip(xg.chunks(hw)).enumerate() {
            let scale = rstd * gs[first + cl];
            let shift = bs[first + cl] - mean * scale;
            for (dst, &v) in out.iter_mut().zip(xch) {
                let y = v * scale + shift;
                *dst = if o.silu { y * sigmoid(y) } else { y };
            }
        }
    });
    FlexTensor::from_data(TensorData::new(out, xc.layout().shape().clone()))
}

pub fn group_norm_backward(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, output_grad: FlexTensor, o: GroupNormOptions) -> [FlexTensor; 3] {
    let (Some(xc), Some(gc), Some(bc), Some(dc)) = (f32s(&x), f32s(&gamma), f32s(&beta), f32s(&output_grad)) else {
        return group_norm_backward_composite::<Flex>(x, gamma, beta, output_grad, o);
    };
    let (xs, gs, bs, ds) = (slice(&xc), slice(&gc), slice(&bc), slice(&dc));
    let (c, hw, cg) = dims(&xc, &o);
    let m = (cg * hw) as f32;
    let mut dx = vec![0f32; xs.len()];
    // Per (image, channel): Σ dy·x̂ and Σ dy, summed over the images afterwards.
    let mut partial = vec![0f32; xs.len() / hw * 2];
    dx.par_chunks_mut(cg * hw).zip(partial.par_chunks_mut(cg * 2)).enumerate().for_each(|(j, (dx, partial))| {
        let at = j * cg * hw;
        let (xg, dg) = (&xs[at..at + cg * hw], &ds[at..at + cg * hw]);
        let (mean, rstd) = stats(xg, o.epsilon);
        let first = (j % o.groups) * cg;
        // Per channel: dy (after SiLU's derivative) into dx, then Σ dy and Σ dy·x̂, which give
        // dβ, dγ and the group's sums of dx̂ = dy·γ and dx̂·x̂.
        let (mut sum, mut sum_xhat) = (0f64, 0f64);
        for cl in 0..cg {
            let (ga, be) = (gs[first + cl], bs[first + cl]);
            let range = cl * hw..(cl + 1) * hw;
            let (dx, xch, gch) = (&mut dx[range.clone()], &xg[range.clone()], &dg[range]);
            if o.silu {
                for ((d, &v), &g) in dx.iter_mut().zip(xch).zip(gch) {
                    let y = (v - mean) * rstd * ga + be;
                    let s = sigmoid(y);
                    *d = g * s * (1.0 + y * (1.0 - s));
                }
            } else {
                dx.copy_from_slice(gch);
            }
            let dbeta = lane_sum(dx, |d| d);
            let dgamma = lane_sum_pairs(dx, xch, |d, v| d * ((v - mean) * rstd));
            partial[cl] = dgamma as f32;
            partial[cg + cl] = dbeta as f32;
            sum += ga as f64 * dbeta;
            sum_xhat += ga as f64 * dgamma;
            for d in dx.iter_mut() {
                *d *= ga;
            }
        }
        let (mean_d, mean_dx) = ((sum / m as f64) as f32, (sum_xhat / m as f64) as f32);
        for (d, &v) in dx.iter_mut().zip(xg) {
            let xhat = (v - mean) * rstd;
            *d = (*d - mean_d - xhat * mean_dx) * rstd;
        }
    });
    let (mut dgamma, mut dbeta) = (vec![0f32; c], vec![0f32; c]);
    for (j, p) in partial.chunks(cg * 2).enumerate() {
        let first = (j % o.groups) * cg;
        for cl in 0..cg {
            dgamma[first + cl] += p[cl];
            dbeta[first + cl] += p[cg + cl];
        }
    }
    let shape = xc.layout().shape().clone();
    [FlexTensor::from_data(TensorData::new(dx, shape)), FlexTensor::from_data(TensorData::new(dgamma, [c])), FlexTensor::from_data(TensorData::new(dbeta, [c]))]
}

#[cfg(test)]
mod tests {
    /// The polynomial eˣ against the standard library's, over the range SiLU sees and its ends.
    #[test]
    fn exp_matches_std_to_a_few_ulp() {
        let mut worst = 0f64;
        for i in -87_000..=88_000 {
            let x = i as f32 / 1000.0;
            let (got, want) = (super::exp(x) as f64, (x as f64).exp());
            worst = worst.max((got - want).abs() / want);
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        // Clamped, not overflowing or NaN, past the ends.
        assert!(super::exp(200.0).is_finite() && super::exp(-200.0) > 0.0);
        assert!((super::sigmoid(0.0) - 0.5).abs() < 1e-7);
    }
}
