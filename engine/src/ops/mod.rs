//! Fast paths for the operations a training step spends its time in, with Burn's backend
//! extension pattern: [`FastBackend`] is a trait the engine's backend bound requires. Its
//! methods default to Burn's own ops (what wgpu and CUDA use); flex overrides them with kernels
//! over contiguous NCHW data ([`flex_conv`], [`flex_norm`]), and `Autodiff<B>` routes them through its own
//! `Backward` nodes so that the backward pass calls the inner backend's fast gradients too.
//!
//! Why: Burn 0.21's flex computes a convolution's input gradient as a transposed convolution and
//! its weight gradient as a convolution over swapped dimensions, each wrapped in NHWC ↔ NCHW
//! copies; that overhead, not the arithmetic, was most of a training step (`tools/profile.sh`).

mod autodiff;
pub mod conv;
mod flex_conv;
mod flex_norm;
pub mod norm;

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ops::{ConvOptions, FloatTensor, ModuleOps};
use norm::GroupNormOptions;

/// A backend with the engine's fast paths. Every method has a default that is Burn's own op.
pub trait FastBackend: Backend {
    /// 2-D convolution, as `ModuleOps::conv2d`.
    fn fast_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: Option<FloatTensor<Self>>, options: ConvOptions<2>) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::conv2d(x, weight, bias, options)
    }

    /// The convolution's gradient with respect to its input, as `ModuleOps::conv2d_x_backward`.
    fn fast_conv2d_x_backward(x: FloatTensor<Self>, weight: FloatTensor<Self>, output_grad: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::conv2d_x_backward(x, weight, output_grad, options)
    }

    /// The convolution's gradient with respect to its weight, as `ModuleOps::conv2d_weight_backward`.
    fn fast_conv2d_weight_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::conv2d_weight_backward(x, weight, output_grad, options)
    }

    /// The convolution's gradient with respect to its bias, as `ModuleOps::conv2d_bias_backward`.
    fn fast_conv2d_bias_backward(x: FloatTensor<Self>, bias: FloatTensor<Self>, output_grad: FloatTensor<Self>) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::conv2d_bias_backward(x, bias, output_grad)
    }

    /// GroupNorm with affine γ, β over `[n, c, h, w]`, then SiLU if asked ([`norm`]).
    fn fast_group_norm(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, options: GroupNormOptions) -> FloatTensor<Self> {
        norm::group_norm_composite::<Self>(x, gamma, beta, options)
    }

    /// The gradients of [`FastBackend::fast_group_norm`] with respect to x, γ and β.
    fn fast_group_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: GroupNormOptions,
    ) -> [FloatTensor<Self>; 3] {
        norm::group_norm_backward_composite::<Self>(x, gamma, beta, output_grad, options)
    }
}

/// What training code is generic over: an autodiff backend whose inner backend (used for
/// sampling and evaluation) has the fast paths too.
pub trait TrainBackend: AutodiffBackend<InnerBackend: FastBackend> + FastBackend {}
impl<B: AutodiffBackend<InnerBackend: FastBackend> + FastBackend> TrainBackend for B {}

// Tests turn flex's fast paths off on their thread to compare against Burn's own ops.
#[cfg(test)]
thread_local! {
    static PLAIN_OPS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with flex on Burn's own ops (the fast paths off) on this thread.
#[cfg(test)]
pub(crate) fn with_plain_ops<R>(f: impl FnOnce() -> R) -> R {
    PLAIN_OPS.set(true);
    let out = f();
    PLAIN_OPS.set(false);
    out
}

/// Whether flex's kernels stand aside for Burn's own ops (only ever in tests); they also do
/// where they do not apply (grouped, dilated, non-f32).
pub(crate) fn plain_ops() -> bool {
    #[cfg(test)]
    return PLAIN_OPS.get();
    #[cfg(not(test))]
    false
}

impl FastBackend for burn::backend::Flex {
    fn fast_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: Option<FloatTensor<Self>>, options: ConvOptions<2>) -> FloatTensor<Self> {
        flex_conv::conv2d(x, weight, bias, options)
    }

    fn fast_conv2d_x_backward(x: FloatTensor<Self>, weight: FloatTensor<Self>, output_grad: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self> {
        flex_conv::conv2d_x_backward(x, weight, output_grad, options)
    }

    fn fast_conv2d_weight_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        flex_conv::conv2d_weight_backward(x, weight, output_grad, options)
    }

    fn fast_conv2d_bias_backward(x: FloatTensor<Self>, bias: FloatTensor<Self>, output_grad: FloatTensor<Self>) -> FloatTensor<Self> {
        flex_conv::conv2d_bias_backward(x, bias, output_grad)
    }

    fn fast_group_norm(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, options: GroupNormOptions) -> FloatTensor<Self> {
        flex_norm::group_norm(x, gamma, beta, options)
    }

    fn fast_group_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: GroupNormOptions,
    ) -> [FloatTensor<Self>; 3] {
        flex_norm::group_norm_backward(x, gamma, beta, output_grad, options)
    }
}

#[cfg(feature = "wgpu")]
impl FastBackend for burn::backend::Wgpu {}

#[cfg(feature = "cuda")]
impl FastBackend for burn::backend::Cuda {}

impl<B: FastBackend, C: CheckpointStrategy> FastBackend for Autodiff<B, C> {
    fn fast_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: Option<FloatTensor<Self>>, options: ConvOptions<2>) -> FloatTensor<Self> {
        autodiff::conv2d::<B, C>(x, weight, bias, options)
    }

    fn fast_group_norm(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, options: GroupNormOptions) -> FloatTensor<Self> {
        autodiff::group_norm::<B, C>(x, gamma, beta, options)
    }
}

#[cfg(test)]
mod tests {
    use super::conv::conv2d_with;
    use burn::backend::{Autodiff, Flex};
    use burn::prelude::*;
    use burn::tensor::Distribution;
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;

    type AB = Autodiff<Flex>;

    /// Largest |a − b| relative to the largest |b|.
    fn rel_diff<const D: usize>(a: Tensor<Flex, D>, b: Tensor<Flex, D>) -> f32 {
        let scale = b.clone().abs().max().into_scalar().max(1e-6);
        a.sub(b).abs().max().into_scalar() / scale
    }

    /// Forward values and the gradients of input, weight and bias, fast path against Burn's own
    /// conv2d (flex's forward, Burn's composite gradients), for a loss Σ y·r with random r.
    fn check(x_shape: [usize; 4], cout: usize, k: [usize; 2], stride: [usize; 2], padding: [usize; 2], bias: bool) {
        let dev = Default::default();
        let cin = x_shape[1];
        let x = Tensor::<Flex, 4>::random(x_shape, Distribution::Normal(0.0, 1.0), &dev);
        let w = Tensor::<Flex, 4>::random([cout, cin, k[0], k[1]], Distribution::Normal(0.0, 1.0), &dev);
        let b = Tensor::<Flex, 1>::random([cout], Distribution::Normal(0.0, 1.0), &dev);
        let options = ConvOptions::new(stride, padding, [1, 1], 1);
        let run = |fast: bool| {
            let xa = Tensor::<AB, 4>::from_inner(x.clone()).require_grad();
            let wa = Tensor::<AB, 4>::from_inner(w.clone()).require_grad();
            let ba = Tensor::<AB, 1>::from_inner(b.clone()).require_grad();
            let bias = bias.then(|| ba.clone());
            let y = if fast { conv2d_with(xa.clone(), wa.clone(), bias, options.clone()) } else { conv2d(xa.clone(), wa.clone(), bias, options.clone()) };
            let r = Tensor::<AB, 4>::from_inner(Tensor::<Flex, 4>::random(y.dims(), Distribution::Normal(0.0, 1.0), &dev));
            (y, r, xa, wa, ba)
        };
        // The same r for both: draw once from the plain run's shape.
        let (y_plain, r, xa, wa, ba) = run(false);
        let grads = (y_plain.clone() * r.clone()).sum().backward();
        let plain = (y_plain.inner(), xa.grad(&grads).unwrap(), wa.grad(&grads).unwrap(), ba.grad(&grads));
        let (y_fast, _, xf, wf, bf) = run(true);
        let grads = (y_fast.clone() * r).sum().backward();
        let fast = (y_fast.inner(), xf.grad(&grads).unwrap(), wf.grad(&grads).unwrap(), bf.grad(&grads));
        let case = format!("x {x_shape:?} cout {cout} k {k:?} stride {stride:?} pad {padding:?} bias {bias}");
        assert_eq!(fast.0.dims(), plain.0.dims(), "{case}");
        assert!(rel_diff(fast.0, plain.0) < 1e-5, "output, {case}");
        assert!(rel_diff(fast.1, plain.1) < 1e-5, "input gradient, {case}");
        assert!(rel_diff(fast.2, plain.2) < 1e-5, "weight gradient, {case}");
        assert_eq!(fast.3.is_some(), bias, "{case}");
        if let (Some(f), Some(p)) = (fast.3, plain.3) {
            assert!(rel_diff(f, p) < 1e-5, "bias gradient, {case}");
        }
    }

    #[test]
    fn fast_conv_matches_burns_conv_values_and_gradients() {
        check([2, 3, 8, 8], 4, [3, 3], [1, 1], [1, 1], true); // the U-Net's 3×3 "same"
        check([3, 5, 7, 9], 6, [3, 3], [1, 1], [1, 1], false); // odd sizes, no bias
        check([2, 4, 9, 7], 5, [3, 3], [2, 2], [1, 1], true); // stride-2 downsample, odd input
        check([4, 6, 5, 5], 3, [1, 1], [1, 1], [0, 0], true); // 1×1 (attention, shortcuts)
        check([2, 3, 6, 6], 2, [1, 1], [2, 2], [0, 0], false); // strided 1×1
        check([1, 2, 6, 10], 3, [1, 7], [1, 1], [0, 3], true); // Inception's 1×7
        check([1, 3, 11, 11], 4, [3, 3], [2, 2], [0, 0], false); // Inception's stem, one image
        check([2, 2, 2, 2], 3, [3, 3], [1, 1], [2, 2], true); // padding wider than the image
        check([8, 16, 4, 4], 32, [3, 3], [1, 1], [1, 1], true); // all images in one GEMM
        check([5, 2, 40, 40], 3, [3, 3], [1, 1], [1, 1], true); // blocks of 2 images, the last of 1
        check([6, 3, 33, 31], 2, [3, 3], [2, 2], [1, 1], false); // blocks in parallel, stride 2
        check([3, 4, 30, 30], 5, [1, 1], [1, 1], [0, 0], true); // 1×1, one image per block
        check([1, 4, 6, 6], 3, [1, 1], [1, 1], [0, 0], false); // 1×1, one image
        check([2, 3, 6, 5], 2, [5, 5], [1, 1], [2, 2], true); // 5×5 "same" (Inception)
        check([2, 2, 3, 3], 2, [3, 3], [1, 1], [1, 1], false); // kernel as large as the image
    }

    /// Fused GroupNorm (+ SiLU) against Burn's GroupNorm module (and Burn's SiLU) through
    /// autodiff: values and the gradients of x, γ and β, for a loss Σ y·r.
    fn check_norm(x_shape: [usize; 4], groups: usize, then_silu: bool) {
        use super::norm::{group_norm, group_norm_silu};
        use burn::module::Param;
        use burn::nn::GroupNormConfig;
        let dev = Default::default();
        let c = x_shape[1];
        let x = Tensor::<Flex, 4>::random(x_shape, Distribution::Normal(0.5, 2.0), &dev);
        let r = Tensor::<Flex, 4>::random(x_shape, Distribution::Normal(0.0, 1.0), &dev);
        let mut norm = GroupNormConfig::new(groups, c).init::<AB>(&dev);
        // γ, β away from their 1, 0 init so that a swapped or missing term shows.
        norm.gamma = Some(Param::from_tensor(Tensor::random([c], Distribution::Normal(1.0, 0.5), &dev)));
        norm.beta = Some(Param::from_tensor(Tensor::random([c], Distribution::Normal(0.0, 0.5), &dev)));
        let run = |fast: bool| {
            let xa = Tensor::<AB, 4>::from_inner(x.clone()).require_grad();
            let y = match (fast, then_silu) {
                (true, true) => group_norm_silu(&norm, xa.clone()),
                (true, false) => group_norm(&norm, xa.clone()),
                (false, true) => burn::tensor::activation::silu(norm.forward(xa.clone())),
                (false, false) => norm.forward(xa.clone()),
            };
            let grads = (y.clone() * Tensor::from_inner(r.clone())).sum().backward();
            let g = |p: &Option<Param<Tensor<AB, 1>>>| p.as_ref().unwrap().val().grad(&grads).unwrap();
            (y.inner(), xa.grad(&grads).unwrap(), g(&norm.gamma), g(&norm.beta))
        };
        let (plain, fast) = (run(false), run(true));
        let case = format!("x {x_shape:?} groups {groups} silu {then_silu}");
        // The composite form (what wgpu and CUDA run) gives the same values and gradients.
        let options = super::norm::GroupNormOptions { groups, epsilon: norm.epsilon, silu: then_silu };
        let inner = |p: &Option<Param<Tensor<AB, 1>>>| p.as_ref().unwrap().val().inner().into_primitive().tensor();
        let prim = |t: Tensor<Flex, 4>| t.into_primitive().tensor();
        let y = super::norm::group_norm_composite::<Flex>(prim(x.clone()), inner(&norm.gamma), inner(&norm.beta), options);
        let [dx, dgamma, dbeta] =
            super::norm::group_norm_backward_composite::<Flex>(prim(x.clone()), inner(&norm.gamma), inner(&norm.beta), prim(r.clone()), options);
        let float = |t| Tensor::<Flex, 4>::from_primitive(burn::tensor::TensorPrimitive::Float(t));
        let float1 = |t| Tensor::<Flex, 1>::from_primitive(burn::tensor::TensorPrimitive::Float(t));
        assert!(rel_diff(float(y), plain.0.clone()) < 1e-5, "composite output, {case}");
        assert!(rel_diff(float(dx), plain.1.clone()) < 1e-4, "composite input gradient, {case}");
        assert!(rel_diff(float1(dgamma), plain.2.clone()) < 1e-4, "composite γ gradient, {case}");
        assert!(rel_diff(float1(dbeta), plain.3.clone()) < 1e-4, "composite β gradient, {case}");
        assert!(rel_diff(fast.0, plain.0) < 1e-5, "output, {case}");
        assert!(rel_diff(fast.1, plain.1) < 1e-4, "input gradient, {case}");
        assert!(rel_diff(fast.2, plain.2) < 1e-4, "γ gradient, {case}");
        assert!(rel_diff(fast.3, plain.3) < 1e-4, "β gradient, {case}");
    }

    #[test]
    fn fused_group_norm_matches_burns_values_and_gradients() {
        check_norm([2, 8, 4, 4], 4, true);
        check_norm([3, 6, 5, 3], 3, false); // odd sizes (the attention block's norm has no SiLU)
        check_norm([1, 4, 7, 7], 1, true); // one group, one image
        check_norm([4, 32, 2, 2], 32, true); // one channel per group
    }
}
