//! The FID Inception-V3: the TF-ported network of pytorch-fid / torch-fidelity (weights file
//! `pt_inception-2015-12-05-6726825d.pth`), built in Burn for inference.
//!
//! Layout and names follow torchvision's Inception3, lower-cased (the file's
//! `Conv2d_1a_3x3.conv.weight` is `conv2d_1a_3x3.conv.weight` here), so the keys map one to one. The TF port differs from torchvision in three places:
//! 1008 classes, average pools that do not count padding (Mixed_5*/6*/7b), and a max pool in
//! the last block's pool branch (mixed_7c). BatchNorm ε is 0.001, convolutions have no bias.

use crate::error::{Error, Result};
use crate::ops::FastBackend;
use crate::ops::conv::conv2d_affine;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn_store::{ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore};
use std::path::Path;

/// Reads PyTorch weights into `module`: a `.pth` file (a zip of pickled tensors), or a
/// `.safetensors` file of the same state dict (PyTorch's names and layouts, e.g. converted with
/// `safetensors.torch.save_file`), renaming the file's keys by `remap` (regex → replacement)
/// first. Every tensor of `module` must be there; keys the module does not have are ignored. A
/// file that is not such a weights file is an error naming it.
pub fn load_pth<B: Backend, M: Module<B>>(module: &mut M, path: &Path, remap: &[(&str, &str)]) -> Result<()> {
    let loaded = if path.extension().is_some_and(|e| e == "safetensors") {
        let store = SafetensorsStore::from_file(path).with_from_adapter(PyTorchToBurnAdapter);
        let mut store = remap.iter().fold(store, |s, &(from, to)| s.with_key_remapping(from, to)).allow_partial(true);
        module.load_from(&mut store).map_err(|e| e.to_string())
    } else {
        let mut store = remap.iter().fold(PytorchStore::from_file(path), |s, &(from, to)| s.with_key_remapping(from, to)).allow_partial(true);
        module.load_from(&mut store).map_err(|e| e.to_string())
    };
    let result = loaded.map_err(|e| Error::data(path, format!("not a usable PyTorch weights file for the FID Inception: {e}")))?;
    if !result.errors.is_empty() || !result.missing.is_empty() {
        let missing: Vec<&str> = result.missing.iter().take(5).map(|m| m.0.as_str()).collect();
        let errors: Vec<String> = result.errors.iter().take(3).map(|e| format!("{e:?}")).collect();
        return Err(Error::data(
            path,
            format!(
                "does not hold the FID Inception-V3 ({} tensors missing, e.g. {}; {} errors {})",
                result.missing.len(),
                missing.join(", "),
                result.errors.len(),
                errors.join("; ")
            ),
        ));
    }
    Ok(())
}

/// Conv (no bias) → BatchNorm(ε = 0.001) → ReLU.
#[derive(Module, Debug)]
pub struct BasicConv<B: Backend> {
    conv: Conv2d<B>,
    bn: BatchNorm<B>,
}

impl<B: FastBackend> BasicConv<B> {
    fn new(cin: usize, cout: usize, k: [usize; 2], stride: usize, pad: [usize; 2], device: &B::Device) -> Self {
        Self {
            conv: Conv2dConfig::new([cin, cout], k)
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(pad[0], pad[1], pad[0], pad[1]))
                .with_bias(false)
                .init(device),
            bn: BatchNormConfig::new(cout).with_epsilon(1e-3).init(device),
        }
    }

    /// A square `k`×`k` convolution block (the stem's first layer is `sq(3, 32, 3, 2, 0)`).
    pub fn sq(cin: usize, cout: usize, k: usize, stride: usize, pad: usize, device: &B::Device) -> Self {
        Self::new(cin, cout, [k, k], stride, [pad, pad], device)
    }

    /// ReLU(BatchNorm(conv(x))) with the BatchNorm (inference: running statistics) folded into
    /// the convolution: weight·s per output channel and bias β − μ·s, s = γ / √(σ² + ε). The
    /// fold is a few thousand multiplications; the BatchNorm it replaces touched every activation.
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let bn = &self.bn;
        let scale = bn.gamma.val() / bn.running_var.value().add_scalar(bn.epsilon).sqrt();
        let shift = bn.beta.val() - bn.running_mean.value() * scale.clone();
        relu(conv2d_affine(&self.conv, x, scale, shift))
    }
}

fn avg3() -> AvgPool2d {
    AvgPool2dConfig::new([3, 3]).with_strides([1, 1]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).with_count_include_pad(false).init()
}

fn max3(stride: usize, pad: usize) -> MaxPool2d {
    MaxPool2dConfig::new([3, 3]).with_strides([stride, stride]).with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad)).init()
}

#[derive(Module, Debug)]
pub struct InceptionA<B: Backend> {
    branch1x1: BasicConv<B>,
    branch5x5_1: BasicConv<B>,
    branch5x5_2: BasicConv<B>,
    branch3x3dbl_1: BasicConv<B>,
    branch3x3dbl_2: BasicConv<B>,
    branch3x3dbl_3: BasicConv<B>,
    branch_pool: BasicConv<B>,
    pool: AvgPool2d,
}

impl<B: FastBackend> InceptionA<B> {
    fn new(cin: usize, pool_features: usize, d: &B::Device) -> Self {
        Self {
            branch1x1: BasicConv::sq(cin, 64, 1, 1, 0, d),
            branch5x5_1: BasicConv::sq(cin, 48, 1, 1, 0, d),
            branch5x5_2: BasicConv::sq(48, 64, 5, 1, 2, d),
            branch3x3dbl_1: BasicConv::sq(cin, 64, 1, 1, 0, d),
            branch3x3dbl_2: BasicConv::sq(64, 96, 3, 1, 1, d),
            branch3x3dbl_3: BasicConv::sq(96, 96, 3, 1, 1, d),
            branch_pool: BasicConv::sq(cin, pool_features, 1, 1, 0, d),
            pool: avg3(),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let a = self.branch1x1.forward(x.clone());
        let b = self.branch5x5_2.forward(self.branch5x5_1.forward(x.clone()));
        let c = self.branch3x3dbl_3.forward(self.branch3x3dbl_2.forward(self.branch3x3dbl_1.forward(x.clone())));
        let p = self.branch_pool.forward(self.pool.forward(x));
        Tensor::cat(vec![a, b, c, p], 1)
    }
}

#[derive(Module, Debug)]
pub struct InceptionB<B: Backend> {
    branch3x3: BasicConv<B>,
    branch3x3dbl_1: BasicConv<B>,
    branch3x3dbl_2: BasicConv<B>,
    branch3x3dbl_3: BasicConv<B>,
    pool: MaxPool2d,
}

impl<B: FastBackend> InceptionB<B> {
    fn new(cin: usize, d: &B::Device) -> Self {
        Self {
            branch3x3: BasicConv::sq(cin, 384, 3, 2, 0, d),
            branch3x3dbl_1: BasicConv::sq(cin, 64, 1, 1, 0, d),
            branch3x3dbl_2: BasicConv::sq(64, 96, 3, 1, 1, d),
            branch3x3dbl_3: BasicConv::sq(96, 96, 3, 2, 0, d),
            pool: max3(2, 0),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let a = self.branch3x3.forward(x.clone());
        let b = self.branch3x3dbl_3.forward(self.branch3x3dbl_2.forward(self.branch3x3dbl_1.forward(x.clone())));
        Tensor::cat(vec![a, b, self.pool.forward(x)], 1)
    }
}

#[derive(Module, Debug)]
pub struct InceptionC<B: Backend> {
    branch1x1: BasicConv<B>,
    branch7x7_1: BasicConv<B>,
    branch7x7_2: BasicConv<B>,
    branch7x7_3: BasicConv<B>,
    branch7x7dbl_1: BasicConv<B>,
    branch7x7dbl_2: BasicConv<B>,
    branch7x7dbl_3: BasicConv<B>,
    branch7x7dbl_4: BasicConv<B>,
    branch7x7dbl_5: BasicConv<B>,
    branch_pool: BasicConv<B>,
    pool: AvgPool2d,
}

impl<B: FastBackend> InceptionC<B> {
    fn new(cin: usize, c7: usize, d: &B::Device) -> Self {
        let row = |i, o| BasicConv::new(i, o, [1, 7], 1, [0, 3], d);
        let col = |i, o| BasicConv::new(i, o, [7, 1], 1, [3, 0], d);
        Self {
            branch1x1: BasicConv::sq(cin, 192, 1, 1, 0, d),
            branch7x7_1: BasicConv::sq(cin, c7, 1, 1, 0, d),
            branch7x7_2: row(c7, c7),
            branch7x7_3: col(c7, 192),
            branch7x7dbl_1: BasicConv::sq(cin, c7, 1, 1, 0, d),
            branch7x7dbl_2: col(c7, c7),
            branch7x7dbl_3: row(c7, c7),
            branch7x7dbl_4: col(c7, c7),
            branch7x7dbl_5: row(c7, 192),
            branch_pool: BasicConv::sq(cin, 192, 1, 1, 0, d),
            pool: avg3(),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let a = self.branch1x1.forward(x.clone());
        let b = self.branch7x7_3.forward(self.branch7x7_2.forward(self.branch7x7_1.forward(x.clone())));
        let mut c = self.branch7x7dbl_1.forward(x.clone());
        for l in [&self.branch7x7dbl_2, &self.branch7x7dbl_3, &self.branch7x7dbl_4, &self.branch7x7dbl_5] {
            c = l.forward(c);
        }
        let p = self.branch_pool.forward(self.pool.forward(x));
        Tensor::cat(vec![a, b, c, p], 1)
    }
}

#[derive(Module, Debug)]
pub struct InceptionD<B: Backend> {
    branch3x3_1: BasicConv<B>,
    branch3x3_2: BasicConv<B>,
    branch7x7x3_1: BasicConv<B>,
    branch7x7x3_2: BasicConv<B>,
    branch7x7x3_3: BasicConv<B>,
    branch7x7x3_4: BasicConv<B>,
    pool: MaxPool2d,
}

impl<B: FastBackend> InceptionD<B> {
    fn new(cin: usize, d: &B::Device) -> Self {
        Self {
            branch3x3_1: BasicConv::sq(cin, 192, 1, 1, 0, d),
            branch3x3_2: BasicConv::sq(192, 320, 3, 2, 0, d),
            branch7x7x3_1: BasicConv::sq(cin, 192, 1, 1, 0, d),
            branch7x7x3_2: BasicConv::new(192, 192, [1, 7], 1, [0, 3], d),
            branch7x7x3_3: BasicConv::new(192, 192, [7, 1], 1, [3, 0], d),
            branch7x7x3_4: BasicConv::sq(192, 192, 3, 2, 0, d),
            pool: max3(2, 0),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let a = self.branch3x3_2.forward(self.branch3x3_1.forward(x.clone()));
        let mut b = self.branch7x7x3_1.forward(x.clone());
        for l in [&self.branch7x7x3_2, &self.branch7x7x3_3, &self.branch7x7x3_4] {
            b = l.forward(b);
        }
        Tensor::cat(vec![a, b, self.pool.forward(x)], 1)
    }
}

/// mixed_7b (average pool without padding counted) or mixed_7c (max pool): the TF port.
#[derive(Module, Clone, Debug)]
pub enum EPool {
    Avg(AvgPool2d),
    Max(MaxPool2d),
}

#[derive(Module, Debug)]
pub struct InceptionE<B: Backend> {
    branch1x1: BasicConv<B>,
    branch3x3_1: BasicConv<B>,
    branch3x3_2a: BasicConv<B>,
    branch3x3_2b: BasicConv<B>,
    branch3x3dbl_1: BasicConv<B>,
    branch3x3dbl_2: BasicConv<B>,
    branch3x3dbl_3a: BasicConv<B>,
    branch3x3dbl_3b: BasicConv<B>,
    branch_pool: BasicConv<B>,
    pool: EPool,
}

impl<B: FastBackend> InceptionE<B> {
    fn new(cin: usize, pool: EPool, d: &B::Device) -> Self {
        Self {
            branch1x1: BasicConv::sq(cin, 320, 1, 1, 0, d),
            branch3x3_1: BasicConv::sq(cin, 384, 1, 1, 0, d),
            branch3x3_2a: BasicConv::new(384, 384, [1, 3], 1, [0, 1], d),
            branch3x3_2b: BasicConv::new(384, 384, [3, 1], 1, [1, 0], d),
            branch3x3dbl_1: BasicConv::sq(cin, 448, 1, 1, 0, d),
            branch3x3dbl_2: BasicConv::sq(448, 384, 3, 1, 1, d),
            branch3x3dbl_3a: BasicConv::new(384, 384, [1, 3], 1, [0, 1], d),
            branch3x3dbl_3b: BasicConv::new(384, 384, [3, 1], 1, [1, 0], d),
            branch_pool: BasicConv::sq(cin, 192, 1, 1, 0, d),
            pool,
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let a = self.branch1x1.forward(x.clone());
        let b = self.branch3x3_1.forward(x.clone());
        let b = Tensor::cat(vec![self.branch3x3_2a.forward(b.clone()), self.branch3x3_2b.forward(b)], 1);
        let c = self.branch3x3dbl_2.forward(self.branch3x3dbl_1.forward(x.clone()));
        let c = Tensor::cat(vec![self.branch3x3dbl_3a.forward(c.clone()), self.branch3x3dbl_3b.forward(c)], 1);
        let pooled = match &self.pool {
            EPool::Avg(p) => p.forward(x),
            EPool::Max(p) => p.forward(x),
        };
        Tensor::cat(vec![a, b, c, self.branch_pool.forward(pooled)], 1)
    }
}

#[derive(Module, Debug)]
pub struct FidInception<B: Backend> {
    conv2d_1a_3x3: BasicConv<B>,
    conv2d_2a_3x3: BasicConv<B>,
    conv2d_2b_3x3: BasicConv<B>,
    conv2d_3b_1x1: BasicConv<B>,
    conv2d_4a_3x3: BasicConv<B>,
    mixed_5b: InceptionA<B>,
    mixed_5c: InceptionA<B>,
    mixed_5d: InceptionA<B>,
    mixed_6a: InceptionB<B>,
    mixed_6b: InceptionC<B>,
    mixed_6c: InceptionC<B>,
    mixed_6d: InceptionC<B>,
    mixed_6e: InceptionC<B>,
    mixed_7a: InceptionD<B>,
    mixed_7b: InceptionE<B>,
    mixed_7c: InceptionE<B>,
    fc: Linear<B>,
    pool: MaxPool2d,
}

/// The 2048-d pool features and the 1008-way logits (without the fc bias, for IS).
pub struct InceptionOutput<B: Backend> {
    pub features: Tensor<B, 2>,
    pub logits: Tensor<B, 2>,
}

impl<B: FastBackend> FidInception<B> {
    /// The architecture with freshly initialised weights (load the real file over them).
    pub fn new(device: &B::Device) -> Self {
        let d = device;
        Self {
            conv2d_1a_3x3: BasicConv::sq(3, 32, 3, 2, 0, d),
            conv2d_2a_3x3: BasicConv::sq(32, 32, 3, 1, 0, d),
            conv2d_2b_3x3: BasicConv::sq(32, 64, 3, 1, 1, d),
            conv2d_3b_1x1: BasicConv::sq(64, 80, 1, 1, 0, d),
            conv2d_4a_3x3: BasicConv::sq(80, 192, 3, 1, 0, d),
            mixed_5b: InceptionA::new(192, 32, d),
            mixed_5c: InceptionA::new(256, 64, d),
            mixed_5d: InceptionA::new(288, 64, d),
            mixed_6a: InceptionB::new(288, d),
            mixed_6b: InceptionC::new(768, 128, d),
            mixed_6c: InceptionC::new(768, 160, d),
            mixed_6d: InceptionC::new(768, 160, d),
            mixed_6e: InceptionC::new(768, 192, d),
            mixed_7a: InceptionD::new(768, d),
            mixed_7b: InceptionE::new(1280, EPool::Avg(avg3()), d),
            mixed_7c: InceptionE::new(2048, EPool::Max(max3(1, 1)), d),
            fc: LinearConfig::new(2048, 1008).init(d),
            pool: max3(2, 0),
        }
    }

    /// The network with the weights of a pytorch-fid `.pth` file (its `Conv2d_*` / `Mixed_*`
    /// keys lower-cased; BatchNorm's weight/bias become γ/β, the fc weight is transposed).
    pub fn load(path: &Path, device: &B::Device) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::data(
                path,
                format!("no Inception weights here; put pytorch-fid's `{}` there or pass --features inception:PATH", super::features::INCEPTION_FILE),
            ));
        }
        let mut net = Self::new(device);
        load_pth(&mut net, path, &[(r"^Conv2d_", "conv2d_"), (r"^Mixed_", "mixed_")])?;
        Ok(net)
    }

    /// Images already resized to 299×299 and scaled to [−1, 1] (SPEC §5's preprocessing).
    pub fn forward(&self, x: Tensor<B, 4>) -> InceptionOutput<B> {
        let x = self.conv2d_2b_3x3.forward(self.conv2d_2a_3x3.forward(self.conv2d_1a_3x3.forward(x)));
        let x = self.pool.forward(x);
        let x = self.pool.forward(self.conv2d_4a_3x3.forward(self.conv2d_3b_1x1.forward(x)));
        let x = self.mixed_5d.forward(self.mixed_5c.forward(self.mixed_5b.forward(x)));
        let x = self.mixed_6a.forward(x);
        let x = self.mixed_6e.forward(self.mixed_6d.forward(self.mixed_6c.forward(self.mixed_6b.forward(x))));
        let x = self.mixed_7c.forward(self.mixed_7b.forward(self.mixed_7a.forward(x)));
        let [b, c, _, _] = x.dims();
        let features = x.mean_dim(3).mean_dim(2).reshape([b, c]);
        let logits = features.clone().matmul(self.fc.weight.val().unsqueeze());
        InceptionOutput { features, logits }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights;
    type F = burn::backend::Flex;

    /// The folded BatchNorm equals Burn's conv → BatchNorm (running statistics) → ReLU, with
    /// statistics and affine weights away from their init, on a square and a 1×7 kernel.
    #[test]
    fn folded_batch_norm_equals_burns_conv_then_batch_norm() {
        use burn::module::{Param, RunningState};
        use burn::tensor::Distribution;
        let dev = Default::default();
        for (block, x) in [(BasicConv::<F>::sq(3, 8, 3, 2, 0, &dev), [2, 3, 11, 11]), (BasicConv::<F>::new(4, 6, [1, 7], 1, [0, 3], &dev), [1, 4, 9, 9])] {
            let mut block = block;
            let c = block.conv.weight.dims()[0];
            let random = |mean: f64, sd: f64| Tensor::<F, 1>::random([c], Distribution::Normal(mean, sd), &dev);
            block.bn.gamma = Param::from_tensor(random(1.0, 0.3));
            block.bn.beta = Param::from_tensor(random(0.0, 0.5));
            block.bn.running_mean = RunningState::new(random(0.2, 0.5));
            block.bn.running_var = RunningState::new(random(1.0, 0.2).abs().add_scalar(0.1));
            let x = Tensor::<F, 4>::random(x, Distribution::Normal(0.0, 1.0), &dev);
            let want = relu(block.bn.forward(block.conv.forward(x.clone())));
            let got = block.forward(x);
            let scale = want.clone().abs().max().into_scalar();
            assert!(got.sub(want).abs().max().into_scalar() < 1e-5 * scale.max(1.0));
        }
    }

    /// Parameters (conv weights, BN γ and β, fc) by an independent count of the architecture.
    fn count_by_formula(classes: usize) -> usize {
        let conv = |i: usize, o: usize, kh: usize, kw: usize| i * o * kh * kw + 2 * o;
        let a = |i: usize, p: usize| {
            conv(i, 64, 1, 1) + conv(i, 48, 1, 1) + conv(48, 64, 5, 5) + conv(i, 64, 1, 1) + conv(64, 96, 3, 3) + conv(96, 96, 3, 3) + conv(i, p, 1, 1)
        };
        let b = |i: usize| conv(i, 384, 3, 3) + conv(i, 64, 1, 1) + conv(64, 96, 3, 3) + conv(96, 96, 3, 3);
        let c = |i: usize, c7: usize| {
            conv(i, 192, 1, 1)
                + conv(i, c7, 1, 1)
                + conv(c7, c7, 1, 7)
                + conv(c7, 192, 7, 1)
                + conv(i, c7, 1, 1)
                + 3 * conv(c7, c7, 7, 1)
                + conv(c7, 192, 1, 7)
                + conv(i, 192, 1, 1)
        };
        let d = |i: usize| conv(i, 192, 1, 1) + conv(192, 320, 3, 3) + conv(i, 192, 1, 1) + 2 * conv(192, 192, 1, 7) + conv(192, 192, 3, 3);
        let e = |i: usize| {
            conv(i, 320, 1, 1)
                + conv(i, 384, 1, 1)
                + 2 * conv(384, 384, 1, 3)
                + conv(i, 448, 1, 1)
                + conv(448, 384, 3, 3)
                + 2 * conv(384, 384, 1, 3)
                + conv(i, 192, 1, 1)
        };
        conv(3, 32, 3, 3)
            + conv(32, 32, 3, 3)
            + conv(32, 64, 3, 3)
            + conv(64, 80, 1, 1)
            + conv(80, 192, 3, 3)
            + a(192, 32)
            + a(256, 64)
            + a(288, 64)
            + b(288)
            + c(768, 128)
            + c(768, 160)
            + c(768, 160)
            + c(768, 192)
            + d(768)
            + e(1280)
            + e(2048)
            + 2048 * classes
            + classes
    }

    #[test]
    fn parameter_count_of_the_reference_architecture() {
        // torchvision's Inception3 without the auxiliary head has 23,834,568 parameters for
        // 1000 classes (27,161,264 with it); the FID network has 1008.
        assert_eq!(count_by_formula(1000), 23_834_568);
        let net: FidInception<F> = FidInception::new(&Default::default());
        // BatchNorm's running mean and variance are buffers, not parameters.
        let all = weights::collect(&net);
        let size = |p: &weights::NamedParam<F>| p.shape.iter().product::<usize>();
        let learned: usize = all.iter().filter(|p| !p.path.contains("running_")).map(size).sum();
        let buffers: usize = all.iter().filter(|p| p.path.contains("running_")).map(size).sum();
        assert_eq!(learned, count_by_formula(1008));
        assert_eq!(learned, 23_850_960);
        // Every BatchNorm has as many buffers as parameters (γ, β ↔ mean, var).
        let bn: usize = all.iter().filter(|p| p.path.ends_with("bn.gamma") || p.path.ends_with("bn.beta")).map(size).sum();
        assert_eq!(buffers, bn);
    }

    #[test]
    fn layer_shapes_on_a_299_image() {
        let dev = Default::default();
        let net: FidInception<F> = FidInception::new(&dev);
        let x = Tensor::<F, 4>::random([1, 3, 299, 299], burn::tensor::Distribution::Uniform(-1.0, 1.0), &dev);
        let out = net.forward(x.clone());
        assert_eq!((out.features.dims(), out.logits.dims()), ([1, 2048], [1, 1008]));
        let x = net.conv2d_2b_3x3.forward(net.conv2d_2a_3x3.forward(net.conv2d_1a_3x3.forward(x)));
        assert_eq!(x.dims(), [1, 64, 147, 147]);
        let x = net.pool.forward(x);
        let x = net.pool.forward(net.conv2d_4a_3x3.forward(net.conv2d_3b_1x1.forward(x)));
        assert_eq!(x.dims(), [1, 192, 35, 35]);
        let x = net.mixed_5d.forward(net.mixed_5c.forward(net.mixed_5b.forward(x)));
        assert_eq!(x.dims(), [1, 288, 35, 35]);
        let x = net.mixed_6a.forward(x);
        assert_eq!(x.dims(), [1, 768, 17, 17]);
        let x = net.mixed_6e.forward(net.mixed_6d.forward(net.mixed_6c.forward(net.mixed_6b.forward(x))));
        assert_eq!(x.dims(), [1, 768, 17, 17]);
        let x = net.mixed_7a.forward(x);
        assert_eq!(x.dims(), [1, 1280, 8, 8]);
        let x = net.mixed_7c.forward(net.mixed_7b.forward(x));
        assert_eq!(x.dims(), [1, 2048, 8, 8]);
    }
}
