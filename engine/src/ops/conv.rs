//! Burn's `Conv2d` module run through [`FastBackend::fast_conv2d`]. The module stays Burn's
//! (same parameters, same checkpoint names); only its forward goes another way.

use super::FastBackend;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::TensorPrimitive;
use burn::tensor::ops::ConvOptions;

/// The options of a conv with symmetric padding (every conv of the U-Net and the Inception).
fn options<B: Backend>(conv: &Conv2d<B>) -> Option<ConvOptions<2>> {
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [0, 0],
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => [top, left],
        _ => return None,
    };
    Some(ConvOptions::new(conv.stride, padding, conv.dilation, conv.groups))
}

/// `conv.forward(x)`, through the fast path when the padding is symmetric; Burn's forward
/// otherwise.
pub fn conv2d<B: FastBackend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    match options(conv) {
        Some(o) => conv2d_with(x, conv.weight.val(), conv.bias.as_ref().map(|b| b.val()), o),
        None => conv.forward(x),
    }
}

/// `conv.forward(x) · scale + shift` per output channel, as one convolution by the scaled
/// weight with bias `bias · scale + shift` (a folded inference BatchNorm).
pub fn conv2d_affine<B: FastBackend>(conv: &Conv2d<B>, x: Tensor<B, 4>, scale: Tensor<B, 1>, shift: Tensor<B, 1>) -> Tensor<B, 4> {
    let cout = scale.dims()[0];
    let Some(o) = options(conv) else {
        return conv.forward(x) * scale.reshape([1, cout, 1, 1]) + shift.reshape([1, cout, 1, 1]);
    };
    let bias = match &conv.bias {
        Some(b) => b.val() * scale.clone() + shift,
        None => shift,
    };
    conv2d_with(x, conv.weight.val() * scale.reshape([cout, 1, 1, 1]), Some(bias), o)
}

/// `burn::tensor::module::conv2d` through the fast path: a convolution by a given weight.
pub fn conv2d_with<B: FastBackend>(x: Tensor<B, 4>, weight: Tensor<B, 4>, bias: Option<Tensor<B, 1>>, options: ConvOptions<2>) -> Tensor<B, 4> {
    let bias = bias.map(|b| b.into_primitive().tensor());
    Tensor::from_primitive(TensorPrimitive::Float(B::fast_conv2d(x.into_primitive().tensor(), weight.into_primitive().tensor(), bias, options)))
}
