//! GroupNorm, optionally followed by SiLU, as one op ([`FastBackend::fast_group_norm`]) — the
//! U-Net's `SiLU(GroupNorm(x))` — and the composite form every backend gets by default.

use super::FastBackend;
use burn::nn::GroupNorm;
use burn::prelude::*;
use burn::tensor::TensorPrimitive;
use burn::tensor::activation::{sigmoid, silu};
use burn::tensor::ops::FloatTensor;

/// Burn's `GroupNorm` module (biased variance, as Burn and PyTorch) through the fast path.
pub fn group_norm<B: FastBackend>(norm: &GroupNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    apply(norm, x, false)
}

/// `silu(norm.forward(x))` as one op.
pub fn group_norm_silu<B: FastBackend>(norm: &GroupNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    apply(norm, x, true)
}

fn apply<B: FastBackend>(norm: &GroupNorm<B>, x: Tensor<B, 4>, then_silu: bool) -> Tensor<B, 4> {
    let (Some(gamma), Some(beta)) = (&norm.gamma, &norm.beta) else {
        let y = norm.forward(x);
        return if then_silu { silu(y) } else { y };
    };
    let out = B::fast_group_norm(
        x.into_primitive().tensor(),
        gamma.val().into_primitive().tensor(),
        beta.val().into_primitive().tensor(),
        GroupNormOptions { groups: norm.num_groups, epsilon: norm.epsilon, silu: then_silu },
    );
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// What a fused GroupNorm does besides its tensors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupNormOptions {
    pub groups: usize,
    pub epsilon: f64,
    /// Apply SiLU to the normalised, affine output.
    pub silu: bool,
}

fn float<B: Backend, const D: usize>(t: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

/// x̂ (as `[n, groups, c/groups·h·w]`) and 1/√(var + ε) per group (`[n, groups, 1]`).
fn normalised<B: Backend>(x: Tensor<B, 4>, o: GroupNormOptions) -> (Tensor<B, 3>, Tensor<B, 3>) {
    let [n, c, h, w] = x.dims();
    let xg = x.reshape([n, o.groups, c / o.groups * h * w]);
    let centred = xg.clone() - xg.mean_dim(2);
    let rstd = centred.clone().powi_scalar(2).mean_dim(2).add_scalar(o.epsilon).sqrt().recip();
    (centred * rstd.clone(), rstd)
}

/// The composite forward (Burn's tensor ops), the default of [`FastBackend::fast_group_norm`].
pub fn group_norm_composite<B: Backend>(x: FloatTensor<B>, gamma: FloatTensor<B>, beta: FloatTensor<B>, o: GroupNormOptions) -> FloatTensor<B> {
    let x: Tensor<B, 4> = float(x);
    let [n, c, h, w] = x.dims();
    let (xhat, _) = normalised(x, o);
    let y = xhat.reshape([n, c, h, w]) * float::<B, 1>(gamma).reshape([1, c, 1, 1]) + float::<B, 1>(beta).reshape([1, c, 1, 1]);
    let y = if o.silu { silu(y) } else { y };
    y.into_primitive().tensor()
}

/// The gradients of x, γ and β (composite), the default of
/// [`FastBackend::fast_group_norm_backward`]: with y = x̂·γ + β and dy = dout·SiLU'(y) (or dout),
/// dβ = Σ dy, dγ = Σ dy·x̂, dx = (dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) / σ per group, dx̂ = dy·γ.
pub fn group_norm_backward_composite<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    output_grad: FloatTensor<B>,
    o: GroupNormOptions,
) -> [FloatTensor<B>; 3] {
    let x: Tensor<B, 4> = float(x);
    let [n, c, h, w] = x.dims();
    let (gamma, beta) = (float::<B, 1>(gamma).reshape([1, c, 1, 1]), float::<B, 1>(beta).reshape([1, c, 1, 1]));
    let (xhat_g, rstd) = normalised(x, o);
    let xhat = xhat_g.clone().reshape([n, c, h, w]);
    let dout: Tensor<B, 4> = float(output_grad);
    let dy = if o.silu {
        let y = xhat.clone() * gamma.clone() + beta;
        let s = sigmoid(y.clone());
        dout * (s.clone() * (y * (s.neg().add_scalar(1.0))).add_scalar(1.0))
    } else {
        dout
    };
    let per_channel = |t: Tensor<B, 4>| t.sum_dim(3).sum_dim(2).sum_dim(0).reshape([c]);
    let dbeta = per_channel(dy.clone());
    let dgamma = per_channel(dy.clone() * xhat);
    let dxhat = (dy * gamma).reshape([n, o.groups, c / o.groups * h * w]);
    let dx = (dxhat.clone() - dxhat.clone().mean_dim(2) - xhat_g.clone() * (dxhat * xhat_g).mean_dim(2)) * rstd;
    [dx.reshape([n, c, h, w]).into_primitive().tensor(), dgamma.into_primitive().tensor(), dbeta.into_primitive().tensor()]
}
