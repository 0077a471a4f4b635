//! CM's low-rank expert (SPEC §4.6): a 3×3 convolution whose weight is W^g + B·A, with a
//! per-forward switch that evaluates W^g alone.
//!
//! Shapes as in LoRA for convolutions (unconfirmed for CM, which has no public code):
//! A ∈ R^{(r·k)×(C_in·k)}, B ∈ R^{(C_out·k)×(r·k)}, ΔW = B·A viewed row-major as
//! (C_out, C_in, k, k). A is Kaiming-uniform (LoRA's bound 1/√fan_in), B = 0, so training starts
//! from the base network.

use crate::ops::FastBackend;
use crate::ops::conv::{conv2d, conv2d_with};
use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::ops::ConvOptions;

#[derive(Module, Debug)]
pub struct LowRankExpert<B: Backend> {
    pub a: Param<Tensor<B, 2>>,
    pub b: Param<Tensor<B, 2>>,
}

/// CM's rank: r = max(1, ⌊0.1·min(C_in, C_out)⌋).
pub fn expert_rank(cin: usize, cout: usize) -> usize {
    (cin.min(cout) / 10).max(1)
}

impl<B: FastBackend> LowRankExpert<B> {
    pub fn new(cin: usize, cout: usize, k: usize, device: &B::Device) -> Self {
        let r = expert_rank(cin, cout);
        let bound = 1.0 / ((cin * k) as f64).sqrt();
        Self {
            a: Param::from_tensor(Tensor::random([r * k, cin * k], Distribution::Uniform(-bound, bound), device)),
            b: Param::from_tensor(Tensor::zeros([cout * k, r * k], device)),
        }
    }

    /// ΔW = B·A as a conv weight of shape `[cout, cin, k, k]`.
    pub fn delta(&self, shape: [usize; 4]) -> Tensor<B, 4> {
        self.b.val().matmul(self.a.val()).reshape(shape)
    }
}

/// The stride-1 "same" 3×3 convolution of the up path, with the expert added when `on`.
pub fn expert_conv<B: FastBackend>(conv: &Conv2d<B>, expert: Option<&LowRankExpert<B>>, on: bool, x: Tensor<B, 4>) -> Tensor<B, 4> {
    match expert {
        Some(e) if on => {
            let w = conv.weight.val();
            let w = w.clone() + e.delta(w.dims());
            let [_, _, k, _] = w.dims();
            let p = k / 2;
            conv2d_with(x, w, conv.bias.as_ref().map(|b| b.val()), ConvOptions::new([1, 1], [p, p], [1, 1], 1))
        }
        _ => conv2d(conv, x),
    }
}

/// W^g ← W^g + B·A (inference: no extra cost). The expert is consumed.
pub fn merge_expert<B: FastBackend>(conv: Conv2d<B>, expert: LowRankExpert<B>) -> Conv2d<B> {
    let mut conv = conv;
    let w = conv.weight.val();
    let merged = w.clone() + expert.delta(w.dims());
    conv.weight = Param::from_tensor(merged);
    conv
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::unet::conv;
    type B = burn::backend::Flex;

    #[test]
    fn rank_rule() {
        assert_eq!(expert_rank(128, 256), 12);
        assert_eq!(expert_rank(32, 64), 3);
        assert_eq!(expert_rank(6, 64), 1);
    }

    #[test]
    fn starts_as_the_base_layer_and_switch_off_is_the_base() {
        let dev = Default::default();
        let c: Conv2d<B> = conv(4, 6, 3, 1, 1.0, &dev);
        let mut e = LowRankExpert::<B>::new(4, 6, 3, &dev);
        assert_eq!(e.a.val().dims(), [3, 12]);
        assert_eq!(e.b.val().dims(), [18, 3]);
        let x = Tensor::<B, 4>::random([2, 4, 5, 5], Distribution::Normal(0.0, 1.0), &dev);
        let base = conv2d(&c, x.clone());
        let diff = |a: Tensor<B, 4>, b: Tensor<B, 4>| a.sub(b).abs().max().into_scalar();
        // B = 0 at init: W^g + BA = W^g.
        assert!(diff(expert_conv(&c, Some(&e), true, x.clone()), base.clone()) < 1e-6);
        // A trained expert changes the output only when switched on.
        e.b = Param::from_tensor(Tensor::random([18, 3], Distribution::Normal(0.0, 1.0), &dev));
        assert!(diff(expert_conv(&c, Some(&e), true, x.clone()), base.clone()) > 1e-3);
        assert!(diff(expert_conv(&c, Some(&e), false, x.clone()), base) < 1e-7);
    }

    /// A is Kaiming-uniform with LoRA's bound 1/√(C_in·k) and B starts at exactly zero.
    #[test]
    fn initial_a_bound_and_zero_b() {
        let (cin, cout, k) = (40, 24, 3);
        let e = LowRankExpert::<B>::new(cin, cout, k, &Default::default());
        let bound = 1.0 / ((cin * k) as f64).sqrt();
        let a: Vec<f32> = e.a.val().into_data().to_vec().unwrap();
        assert_eq!(a.len(), expert_rank(cin, cout) * k * cin * k);
        let max = a.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64));
        assert!(max <= bound && max > 0.95 * bound, "{max} vs {bound}");
        let mean = a.iter().map(|&v| v as f64).sum::<f64>() / a.len() as f64;
        assert!(mean.abs() < 0.1 * bound, "centred: {mean}");
        let b: Vec<f32> = e.b.val().into_data().to_vec().unwrap();
        assert!(b.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn delta_is_b_times_a_viewed_as_conv_weight() {
        let dev = Default::default();
        let e = LowRankExpert::<B> {
            a: Param::from_tensor(Tensor::from_floats([[1.0, 2.0]], &dev)),    // r·k=1 × cin·k=2
            b: Param::from_tensor(Tensor::from_floats([[1.0], [-1.0]], &dev)), // cout·k=2 × 1
        };
        // BA = [[1,2],[-1,-2]] viewed as (cout=1, cin=1, k=2, k=2).
        let d: Vec<f32> = e.delta([1, 1, 2, 2]).into_data().to_vec().unwrap();
        assert_eq!(d, vec![1.0, 2.0, -1.0, -2.0]);
    }

    #[test]
    fn merged_weights_equal_the_unmerged_forward() {
        let dev = Default::default();
        let c: Conv2d<B> = conv(4, 6, 3, 1, 1.0, &dev);
        let mut e = LowRankExpert::<B>::new(4, 6, 3, &dev);
        e.b = Param::from_tensor(Tensor::random([18, 3], Distribution::Normal(0.0, 1.0), &dev));
        let x = Tensor::<B, 4>::random([2, 4, 5, 5], Distribution::Normal(0.0, 1.0), &dev);
        let unmerged = expert_conv(&c, Some(&e), true, x.clone());
        let merged = conv2d(&merge_expert(c, e), x);
        assert!(unmerged.sub(merged).abs().max().into_scalar() < 1e-5);
    }
}
