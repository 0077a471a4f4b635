//! The class-conditional DDPM U-Net (SPEC §2), the architecture of the reference CIFAR code.

use crate::ops::FastBackend;
use burn::module::{Initializer, Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{silu, softmax};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

use super::expert::{LowRankExpert, expert_conv, merge_expert};
use crate::ops::conv::conv2d;
use crate::ops::norm::{group_norm, group_norm_silu};

#[derive(Config, Debug, PartialEq)]
pub struct UNetConfig {
    /// Colour channels of the images (1 or 3).
    pub image_channels: usize,
    pub num_classes: usize,
    /// Channels of the first level; level i has `base_channels · channel_mults[i]`.
    pub base_channels: usize,
    pub channel_mults: Vec<usize>,
    /// ResBlocks per level on the way down; the way up has one more (it also consumes the
    /// downsample's skip).
    pub res_blocks: usize,
    /// Levels whose ResBlocks carry self-attention (0 = full resolution).
    pub attn_levels: Vec<usize>,
    #[config(default = 0.1)]
    pub dropout: f64,
    /// Time-embedding width = `time_mult · base_channels`.
    #[config(default = 4)]
    pub time_mult: usize,
    /// GroupNorm groups (reduced to a divisor of the channel count where needed).
    #[config(default = 32)]
    pub norm_groups: usize,
    /// CM: a low-rank expert on every 3×3 convolution of the up path.
    #[config(default = false)]
    pub low_rank_expert: bool,
    /// CORAL: width of the projection head on the pooled bottleneck (0 = no head).
    #[config(default = 0)]
    pub projection_dim: usize,
    /// Xavier gain of the attention output projection. 1 is the reference code's effective
    /// init (its ResBlock initialiser re-initialises the attention block after building it);
    /// 1e−5 starts the projection near zero, as the attention block alone would.
    #[config(default = 1.0)]
    pub attn_out_gain: f64,
}

/// Which class term the embedding gets.
#[derive(Debug, Clone)]
pub enum ClassCond<B: Backend> {
    /// No class term at all (the unconditional model; there is no learned null token).
    Uncond,
    Labels(Tensor<B, 1, Int>),
    /// Per-sample label drop: the class term is multiplied by `keep` (1 = conditional).
    Masked {
        labels: Tensor<B, 1, Int>,
        keep: Tensor<B, 1>,
    },
}

/// What the down path and middle produce: the bottleneck `h`, the skip stack and SiLU(emb).
#[derive(Debug, Clone)]
pub struct Trunk<B: Backend> {
    pub h: Tensor<B, 4>,
    skips: Vec<Tensor<B, 4>>,
    emb_act: Tensor<B, 2>,
}

#[derive(Debug, Clone)]
pub struct UNetOutput<B: Backend> {
    /// The predicted noise ε.
    pub eps: Tensor<B, 4>,
    /// Output of the second middle ResBlock, if asked for.
    pub bottleneck: Option<Tensor<B, 4>>,
}

fn xavier(gain: f64) -> Initializer {
    Initializer::XavierUniform { gain }
}

fn zero_bias<B: FastBackend>(bias: &mut Option<Param<Tensor<B, 1>>>) {
    if let Some(b) = bias.take() {
        let n = b.dims()[0];
        let device = b.device();
        *bias = Some(Param::from_tensor(Tensor::zeros([n], &device)));
    }
}

/// Xavier-uniform conv with zero bias; `gain` ≈ 0 makes layers that start near zero.
pub(crate) fn conv<B: FastBackend>(cin: usize, cout: usize, k: usize, stride: usize, gain: f64, device: &B::Device) -> Conv2d<B> {
    let mut c = Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
        .with_initializer(xavier(gain))
        .init(device);
    zero_bias(&mut c.bias);
    c
}

fn linear<B: FastBackend>(din: usize, dout: usize, device: &B::Device) -> Linear<B> {
    let mut l = LinearConfig::new(din, dout).with_initializer(xavier(1.0)).init(device);
    zero_bias(&mut l.bias);
    l
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Floating-point operations of one image's forward pass: 2 per multiply-add of the
/// convolutions, linear layers and attention products. Element-wise work (norms, activations,
/// additions) is not counted — the convention of paper tables and of PyTorch's FlopCounterMode.
/// A training row costs about three forwards (the backward computes gradients for inputs and
/// weights).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForwardFlops {
    /// Embedding MLP, head, down path and middle.
    pub trunk: f64,
    /// Up path and tail: what CM runs a second time.
    pub up_path: f64,
}

impl ForwardFlops {
    pub fn total(&self) -> f64 {
        self.trunk + self.up_path
    }
}

/// A conv producing `out_size`×`out_size` maps.
fn conv_flops<B: FastBackend>(c: &Conv2d<B>, out_size: usize) -> f64 {
    let [cout, cin_per_group, kh, kw] = c.weight.dims();
    2.0 * (cout * cin_per_group * kh * kw) as f64 * (out_size * out_size) as f64
}

fn linear_flops<B: FastBackend>(l: &Linear<B>) -> f64 {
    let [din, dout] = l.weight.dims();
    2.0 * (din * dout) as f64
}

fn norm<B: FastBackend>(groups: usize, ch: usize, device: &B::Device) -> GroupNorm<B> {
    GroupNormConfig::new(gcd(groups, ch), ch).init(device)
}

/// Single-head self-attention over positions, with a residual connection.
#[derive(Module, Debug)]
pub struct AttnBlock<B: Backend> {
    norm: GroupNorm<B>,
    q: Conv2d<B>,
    k: Conv2d<B>,
    v: Conv2d<B>,
    proj: Conv2d<B>,
}

impl<B: FastBackend> AttnBlock<B> {
    fn new(ch: usize, groups: usize, out_gain: f64, device: &B::Device) -> Self {
        Self {
            norm: norm(groups, ch, device),
            q: conv(ch, ch, 1, 1, 1.0, device),
            k: conv(ch, ch, 1, 1, 1.0, device),
            v: conv(ch, ch, 1, 1, 1.0, device),
            proj: conv(ch, ch, 1, 1, out_gain, device),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, c, h, w] = x.dims();
        let hn = group_norm(&self.norm, x.clone());
        let q = conv2d(&self.q, hn.clone()).reshape([b, c, h * w]).swap_dims(1, 2); // B, HW, C
        let k = conv2d(&self.k, hn.clone()).reshape([b, c, h * w]); // B, C, HW
        let v = conv2d(&self.v, hn).reshape([b, c, h * w]).swap_dims(1, 2); // B, HW, C
        let weights = softmax(q.matmul(k).mul_scalar((c as f64).powf(-0.5)), 2);
        let out = weights.matmul(v).swap_dims(1, 2).reshape([b, c, h, w]);
        x + conv2d(&self.proj, out)
    }

    /// Four 1×1 convs and the two HW×HW products.
    fn flops(&self, size: usize) -> f64 {
        let c = self.q.weight.dims()[0] as f64;
        let n = (size * size) as f64;
        [&self.q, &self.k, &self.v, &self.proj].iter().map(|p| conv_flops(p, size)).sum::<f64>() + 2.0 * 2.0 * n * n * c
    }
}

/// GN → SiLU → conv, plus the time/class embedding, GN → SiLU → dropout → conv, residual.
#[derive(Module, Debug)]
pub struct ResBlock<B: Backend> {
    norm1: GroupNorm<B>,
    conv1: Conv2d<B>,
    emb_proj: Linear<B>,
    norm2: GroupNorm<B>,
    dropout: Dropout,
    conv2: Conv2d<B>,
    shortcut: Option<Conv2d<B>>,
    attn: Option<AttnBlock<B>>,
    /// CM's experts on conv1 and conv2 (up path only).
    expert1: Option<LowRankExpert<B>>,
    expert2: Option<LowRankExpert<B>>,
}

impl<B: FastBackend> ResBlock<B> {
    fn new(cin: usize, cout: usize, emb: usize, attn: bool, expert: bool, cfg: &UNetConfig, device: &B::Device) -> Self {
        Self {
            expert1: expert.then(|| LowRankExpert::new(cin, cout, 3, device)),
            expert2: expert.then(|| LowRankExpert::new(cout, cout, 3, device)),
            norm1: norm(cfg.norm_groups, cin, device),
            conv1: conv(cin, cout, 3, 1, 1.0, device),
            emb_proj: linear(emb, cout, device),
            norm2: norm(cfg.norm_groups, cout, device),
            dropout: DropoutConfig::new(cfg.dropout).init(),
            conv2: conv(cout, cout, 3, 1, 1e-5, device),
            shortcut: (cin != cout).then(|| conv(cin, cout, 1, 1, 1.0, device)),
            attn: attn.then(|| AttnBlock::new(cout, cfg.norm_groups, cfg.attn_out_gain, device)),
        }
    }

    /// `emb_act` is SiLU(embedding), shared by all blocks. `mask` replays a dropout mask drawn
    /// by an earlier pass; the mask used (if any) is returned beside the output.
    fn forward(&self, x: Tensor<B, 4>, emb_act: Tensor<B, 2>, expert: bool, mask: Option<Tensor<B, 4>>) -> (Tensor<B, 4>, Option<Tensor<B, 4>>) {
        let h = expert_conv(&self.conv1, self.expert1.as_ref(), expert, group_norm_silu(&self.norm1, x.clone()));
        let [b, c] = [h.dims()[0], h.dims()[1]];
        let h = h + self.emb_proj.forward(emb_act).reshape([b, c, 1, 1]);
        let h = group_norm_silu(&self.norm2, h);
        let mask = mask.or_else(|| dropout_mask(self.dropout.prob, &h));
        let h = match &mask {
            Some(m) => h * m.clone(),
            None => h,
        };
        let h = expert_conv(&self.conv2, self.expert2.as_ref(), expert, h);
        let skip = match &self.shortcut {
            Some(s) => conv2d(s, x),
            None => x,
        };
        let out = h + skip;
        let out = match &self.attn {
            Some(a) => a.forward(out),
            None => out,
        };
        (out, mask)
    }

    fn flops(&self, size: usize) -> f64 {
        conv_flops(&self.conv1, size)
            + linear_flops(&self.emb_proj)
            + conv_flops(&self.conv2, size)
            + self.shortcut.as_ref().map_or(0.0, |s| conv_flops(s, size))
            + self.attn.as_ref().map_or(0.0, |a| a.flops(size))
    }
}

/// Inverted dropout as a mask (Bernoulli(1 − p) / (1 − p)), drawn only while training (the
/// autodiff backend), like Burn's `Dropout`. A mask rather than the op, so that a second pass
/// can replay it.
fn dropout_mask<B: FastBackend>(prob: f64, like: &Tensor<B, 4>) -> Option<Tensor<B, 4>> {
    if prob == 0.0 || !B::ad_enabled(&like.device()) {
        return None;
    }
    let keep = 1.0 - prob;
    Some(like.random_like(burn::tensor::Distribution::Bernoulli(keep)).mul_scalar(1.0 / keep))
}

/// The dropout masks one up path drew, one per ResBlock (`None` where dropout is off). CM's
/// θ^g twin replays them: both networks are compared on the same noise (SPEC §4.6).
#[derive(Debug, Clone)]
pub struct UpDropout<B: Backend>(Vec<Option<Tensor<B, 4>>>);

/// One step of the down path: a ResBlock or a stride-2 downsample, each pushed on the skip stack.
#[derive(Module, Debug)]
#[expect(clippy::large_enum_variant, reason = "a handful per network, built once; Module derive wants plain fields")]
pub enum DownLayer<B: Backend> {
    Res(ResBlock<B>),
    Down(Conv2d<B>),
}

/// One step of the up path: a ResBlock on concat(h, skip) or a ×2 nearest upsample + conv.
#[derive(Module, Debug)]
#[expect(clippy::large_enum_variant, reason = "a handful per network, built once; Module derive wants plain fields")]
pub enum UpLayer<B: Backend> {
    Res(ResBlock<B>),
    Up(Upsample<B>),
}

/// Nearest ×2 upsample, then a 3×3 conv (with CM's expert when the model has one).
#[derive(Module, Debug)]
pub struct Upsample<B: Backend> {
    conv: Conv2d<B>,
    expert: Option<LowRankExpert<B>>,
}

impl<B: FastBackend> ResBlock<B> {
    fn map_experts(mut self, f: &impl Fn(Conv2d<B>, Option<LowRankExpert<B>>) -> Conv2d<B>) -> Self {
        self.conv1 = f(self.conv1, self.expert1.take());
        self.conv2 = f(self.conv2, self.expert2.take());
        self
    }
}

#[derive(Module, Debug)]
pub struct UNet<B: Backend> {
    time_fc1: Linear<B>,
    time_fc2: Linear<B>,
    /// None in a model without classes (pytorch-ddpm's unconditional U-Net).
    class_emb: Option<Embedding<B>>,
    head: Conv2d<B>,
    down: Vec<DownLayer<B>>,
    mid1: ResBlock<B>,
    mid2: ResBlock<B>,
    up: Vec<UpLayer<B>>,
    tail_norm: GroupNorm<B>,
    tail: Conv2d<B>,
    /// CORAL's projection head (pooled bottleneck → `projection_dim`).
    projection: Option<Linear<B>>,
    base_channels: usize,
    num_classes: usize,
    levels: usize,
}

/// The fixed sinusoidal embedding of integer timesteps (interleaved sin/cos, as the
/// reference code builds its frozen table), computed on the host.
pub fn timestep_embedding<B: FastBackend>(t: &[usize], dim: usize, device: &B::Device) -> Tensor<B, 2> {
    let half = dim / 2;
    let mut data = Vec::with_capacity(t.len() * dim);
    for &ti in t {
        for i in 0..half {
            let freq = (-((2 * i) as f64) / dim as f64 * 10000f64.ln()).exp();
            let a = ti as f64 * freq;
            data.push(a.sin() as f32);
            data.push(a.cos() as f32);
        }
    }
    Tensor::from_data(TensorData::new(data, [t.len(), dim]), device)
}

impl UNetConfig {
    pub fn time_dim(&self) -> usize {
        self.base_channels * self.time_mult
    }

    /// Checks that `size` survives the downsampling (each level but the last halves it).
    pub fn check_image_size(&self, size: usize) -> Result<(), String> {
        let factor = 1usize << (self.channel_mults.len() - 1);
        if size == 0 || !size.is_multiple_of(factor) {
            Err(format!(
                "image size {size} is not supported by this model: it has {} levels, so the size must be a multiple of {factor}",
                self.channel_mults.len()
            ))
        } else {
            Ok(())
        }
    }

    pub fn init<B: FastBackend>(&self, device: &B::Device) -> UNet<B> {
        let ch = self.base_channels;
        let emb = self.time_dim();
        let levels = self.channel_mults.len();
        let mut skip_channels = vec![ch];
        let mut now = ch;
        let mut down = Vec::new();
        for (i, m) in self.channel_mults.iter().enumerate() {
            let out = ch * m;
            for _ in 0..self.res_blocks {
                down.push(DownLayer::Res(ResBlock::new(now, out, emb, self.attn_levels.contains(&i), false, self, device)));
                now = out;
                skip_channels.push(now);
            }
            if i + 1 < levels {
                down.push(DownLayer::Down(conv(now, now, 3, 2, 1.0, device)));
                skip_channels.push(now);
            }
        }
        let mid1 = ResBlock::new(now, now, emb, true, false, self, device);
        let mid2 = ResBlock::new(now, now, emb, false, false, self, device);
        let bottleneck_channels = now;
        let ex = self.low_rank_expert;
        let mut up = Vec::new();
        for (i, m) in self.channel_mults.iter().enumerate().rev() {
            let out = ch * m;
            for _ in 0..=self.res_blocks {
                let skip = skip_channels.pop().expect("one skip per up block");
                up.push(UpLayer::Res(ResBlock::new(now + skip, out, emb, self.attn_levels.contains(&i), ex, self, device)));
                now = out;
            }
            if i > 0 {
                up.push(UpLayer::Up(Upsample { conv: conv(now, now, 3, 1, 1.0, device), expert: ex.then(|| LowRankExpert::new(now, now, 3, device)) }));
            }
        }
        debug_assert!(skip_channels.is_empty());
        UNet {
            time_fc1: linear(ch, emb, device),
            time_fc2: linear(emb, emb, device),
            class_emb: (self.num_classes > 0).then(|| EmbeddingConfig::new(self.num_classes, emb).init(device)),
            head: conv(self.image_channels, ch, 3, 1, 1.0, device),
            down,
            mid1,
            mid2,
            up,
            tail_norm: norm(self.norm_groups, now, device),
            tail: conv(now, self.image_channels, 3, 1, 1e-5, device),
            projection: (self.projection_dim > 0).then(|| linear(bottleneck_channels, self.projection_dim, device)),
            base_channels: ch,
            num_classes: self.num_classes,
            levels,
        }
    }
}

impl<B: FastBackend> UNet<B> {
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// ε(x_t, t, y); with `want_bottleneck` also the output of the second middle block.
    pub fn forward(&self, x: Tensor<B, 4>, t: &[usize], cond: &ClassCond<B>, want_bottleneck: bool) -> UNetOutput<B> {
        self.forward_with(x, t, cond, want_bottleneck, true)
    }

    /// [`Self::forward`] with CM's switch: `expert = false` evaluates θ^g only.
    pub fn forward_with(&self, x: Tensor<B, 4>, t: &[usize], cond: &ClassCond<B>, want_bottleneck: bool, expert: bool) -> UNetOutput<B> {
        let trunk = self.trunk(x, t, cond);
        let (eps, _) = self.up_path(&trunk, expert);
        UNetOutput { eps, bottleneck: want_bottleneck.then_some(trunk.h) }
    }

    /// Embedding, down path and middle: everything before the experts.
    pub fn trunk(&self, x: Tensor<B, 4>, t: &[usize], cond: &ClassCond<B>) -> Trunk<B> {
        let device = x.device();
        let [b, _, _, _] = x.dims();
        assert_eq!(t.len(), b, "one timestep per image");
        let temb = timestep_embedding::<B>(t, self.base_channels, &device);
        let mut emb = self.time_fc2.forward(silu(self.time_fc1.forward(temb)));
        let class_term = |class_emb: &Embedding<B>, labels: &Tensor<B, 1, Int>| {
            let e = class_emb.forward(labels.clone().reshape([b, 1]));
            let d = e.dims()[2];
            e.reshape([b, d])
        };
        // A model without classes has no class term whatever the condition says.
        match (cond, &self.class_emb) {
            (ClassCond::Uncond, _) | (_, None) => {}
            (ClassCond::Labels(labels), Some(c)) => emb = emb + class_term(c, labels),
            (ClassCond::Masked { labels, keep }, Some(c)) => emb = emb + class_term(c, labels) * keep.clone().reshape([b, 1]),
        }
        let emb_act = silu(emb);

        let mut h = conv2d(&self.head, x);
        let mut skips = vec![h.clone()];
        for layer in &self.down {
            h = match layer {
                DownLayer::Res(r) => r.forward(h, emb_act.clone(), false, None).0,
                DownLayer::Down(c) => conv2d(c, h),
            };
            skips.push(h.clone());
        }
        h = self.mid1.forward(h, emb_act.clone(), false, None).0;
        h = self.mid2.forward(h, emb_act.clone(), false, None).0;
        Trunk { h, skips, emb_act }
    }

    /// The up path and tail on a trunk, and the dropout masks it drew.
    pub fn up_path(&self, trunk: &Trunk<B>, expert: bool) -> (Tensor<B, 4>, UpDropout<B>) {
        self.up_path_on(trunk.h.clone(), trunk.skips.clone(), trunk.emb_act.clone(), expert, None)
    }

    /// The up path on the first `rows` images of a trunk with the dropout masks of an earlier
    /// up path over it. CM evaluates the up path twice on one trunk, with and without the
    /// experts (they sit on the up path only), on the same noise.
    pub fn up_path_replay(&self, trunk: &Trunk<B>, rows: usize, expert: bool, masks: &UpDropout<B>) -> Tensor<B, 4> {
        let take = |x: Tensor<B, 4>| x.narrow(0, 0, rows);
        let skips = trunk.skips.iter().cloned().map(take).collect();
        let masks = masks.0.iter().map(|m| m.clone().map(take)).collect();
        self.up_path_on(take(trunk.h.clone()), skips, trunk.emb_act.clone().narrow(0, 0, rows), expert, Some(masks)).0
    }

    fn up_path_on(
        &self,
        mut h: Tensor<B, 4>,
        mut skips: Vec<Tensor<B, 4>>,
        emb_act: Tensor<B, 2>,
        expert: bool,
        replay: Option<Vec<Option<Tensor<B, 4>>>>,
    ) -> (Tensor<B, 4>, UpDropout<B>) {
        let mut replay = replay.map(|m| m.into_iter());
        let mut drawn = Vec::new();
        for layer in &self.up {
            h = match layer {
                UpLayer::Res(r) => {
                    let skip = skips.pop().expect("one skip per up block");
                    let given = replay.as_mut().and_then(|m| m.next().expect("one mask per up ResBlock"));
                    let (out, mask) = r.forward(Tensor::cat(vec![h, skip], 1), emb_act.clone(), expert, given);
                    drawn.push(mask);
                    out
                }
                UpLayer::Up(u) => {
                    let [_, _, hh, ww] = h.dims();
                    let up = interpolate(h, [hh * 2, ww * 2], InterpolateOptions::new(InterpolateMode::Nearest));
                    expert_conv(&u.conv, u.expert.as_ref(), expert, up)
                }
            };
        }
        (conv2d(&self.tail, group_norm_silu(&self.tail_norm, h)), UpDropout(drawn))
    }

    pub fn levels(&self) -> usize {
        self.levels
    }

    pub fn has_experts(&self) -> bool {
        self.up.iter().any(|l| match l {
            UpLayer::Res(r) => r.expert1.is_some(),
            UpLayer::Up(u) => u.expert.is_some(),
        })
    }

    /// FLOPs of one `size`×`size` image's forward pass (CM's experts are folded into the weight
    /// once per call, not per image, and CORAL's head is on the pooled bottleneck: neither is
    /// counted).
    pub fn forward_flops(&self, size: usize) -> ForwardFlops {
        let mut s = size;
        let mut trunk = linear_flops(&self.time_fc1) + linear_flops(&self.time_fc2) + conv_flops(&self.head, s);
        for layer in &self.down {
            trunk += match layer {
                DownLayer::Res(r) => r.flops(s),
                DownLayer::Down(c) => {
                    s /= c.stride[0];
                    conv_flops(c, s)
                }
            };
        }
        trunk += self.mid1.flops(s) + self.mid2.flops(s);
        let mut up_path = 0.0;
        for layer in &self.up {
            up_path += match layer {
                UpLayer::Res(r) => r.flops(s),
                UpLayer::Up(u) => {
                    s *= 2;
                    conv_flops(&u.conv, s)
                }
            };
        }
        up_path += conv_flops(&self.tail, s);
        ForwardFlops { trunk, up_path }
    }

    /// CORAL's projection: global average pool → Linear → L2 normalise. `None` without a head.
    pub fn project(&self, bottleneck: Tensor<B, 4>) -> Option<Tensor<B, 2>> {
        let head = self.projection.as_ref()?;
        let [b, c, _, _] = bottleneck.dims();
        let pooled = bottleneck.mean_dim(3).mean_dim(2).reshape([b, c]);
        let z = head.forward(pooled);
        let norm = z.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
        Some(z / norm)
    }

    /// Folds every expert into its base weight: the same function, no extra inference cost.
    pub fn merge_experts(self) -> Self {
        self.map_experts(&|conv, e| match e {
            Some(e) => merge_expert(conv, e),
            None => conv,
        })
    }

    /// Drops the experts: the network θ^g alone (CM's sampling ablation).
    pub fn without_experts(self) -> Self {
        self.map_experts(&|conv, _| conv)
    }

    fn map_experts(mut self, f: &impl Fn(Conv2d<B>, Option<LowRankExpert<B>>) -> Conv2d<B>) -> Self {
        self.up = self
            .up
            .into_iter()
            .map(|l| match l {
                UpLayer::Res(r) => UpLayer::Res(r.map_experts(f)),
                UpLayer::Up(mut u) => {
                    u.conv = f(u.conv, u.expert.take());
                    UpLayer::Up(u)
                }
            })
            .collect();
        self
    }
}

/// Tests outside this file need every path of the network to matter: the layers that start
/// near zero (each ResBlock's second conv, the tail) re-drawn at Xavier gain 1.
#[cfg(test)]
impl<B: FastBackend> UNet<B> {
    pub(crate) fn with_unit_gain_outputs(mut self, device: &B::Device) -> Self {
        let redraw = |c: &Conv2d<B>| {
            let [cout, cin, k, _] = c.weight.dims();
            conv(cin, cout, k, 1, 1.0, device)
        };
        let redraw_block = |r: &mut ResBlock<B>| r.conv2 = redraw(&r.conv2);
        for l in self.down.iter_mut() {
            if let DownLayer::Res(r) = l {
                redraw_block(r);
            }
        }
        redraw_block(&mut self.mid1);
        redraw_block(&mut self.mid2);
        for l in self.up.iter_mut() {
            if let UpLayer::Res(r) = l {
                redraw_block(r);
            }
        }
        self.tail = redraw(&self.tail);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Preset;
    use crate::weights;
    type B = burn::backend::Flex;

    /// Parameter count of the architecture by formula, independent of the module code.
    fn count_by_formula(cfg: &UNetConfig) -> usize {
        let (ch, emb) = (cfg.base_channels, cfg.time_dim());
        let conv = |i: usize, o: usize, k: usize| i * o * k * k + o;
        let gn = |c: usize| 2 * c;
        let attn = |c: usize| gn(c) + 4 * conv(c, c, 1);
        let res = |i: usize, o: usize, a: bool| {
            gn(i) + conv(i, o, 3) + emb * o + o + gn(o) + conv(o, o, 3) + if i != o { conv(i, o, 1) } else { 0 } + if a { attn(o) } else { 0 }
        };
        let mut n = ch * emb + emb + emb * emb + emb + cfg.num_classes * emb + conv(cfg.image_channels, ch, 3);
        let (mut skips, mut now) = (vec![ch], ch);
        let levels = cfg.channel_mults.len();
        for (l, m) in cfg.channel_mults.iter().enumerate() {
            for _ in 0..cfg.res_blocks {
                n += res(now, ch * m, cfg.attn_levels.contains(&l));
                now = ch * m;
                skips.push(now);
            }
            if l + 1 < levels {
                n += conv(now, now, 3);
                skips.push(now);
            }
        }
        n += res(now, now, true) + res(now, now, false);
        for (l, m) in cfg.channel_mults.iter().enumerate().rev() {
            for _ in 0..=cfg.res_blocks {
                n += res(now + skips.pop().unwrap(), ch * m, cfg.attn_levels.contains(&l));
                now = ch * m;
            }
            if l > 0 {
                n += conv(now, now, 3);
            }
        }
        n + gn(now) + conv(now, cfg.image_channels, 3)
    }

    #[test]
    fn parameter_counts_match_formula() {
        for (preset, ch, size) in [(Preset::Tiny, 1, 28), (Preset::Small, 3, 32), (Preset::Tiny, 3, 16)] {
            let cfg = preset.config(ch, 7, size).unwrap();
            let model: UNet<B> = cfg.init(&Default::default());
            assert_eq!(weights::count(&model), count_by_formula(&cfg), "{preset:?}");
        }
        // The reference configuration, by formula: 35,746,307 + 512·10.
        let paper = Preset::Paper.config(3, 10, 32).unwrap();
        assert_eq!(paper.attn_levels, vec![1]);
        assert_eq!(count_by_formula(&paper), 35_751_427);
    }

    /// FLOPs per image (trunk, up path) by formula from the config, independent of the modules.
    fn flops_by_formula(cfg: &UNetConfig, size: usize) -> (f64, f64) {
        let (ch, emb) = (cfg.base_channels, cfg.time_dim());
        let conv = |i: usize, o: usize, k: usize, s: usize| 2.0 * (i * o * k * k * s * s) as f64;
        let attn = |c: usize, s: usize| 4.0 * conv(c, c, 1, s) + 4.0 * (s * s * s * s * c) as f64;
        let res = |i: usize, o: usize, a: bool, s: usize| {
            conv(i, o, 3, s) + 2.0 * (emb * o) as f64 + conv(o, o, 3, s) + if i != o { conv(i, o, 1, s) } else { 0.0 } + if a { attn(o, s) } else { 0.0 }
        };
        let mut trunk = 2.0 * (ch * emb + emb * emb) as f64 + conv(cfg.image_channels, ch, 3, size);
        let (mut skips, mut now, mut s) = (vec![ch], ch, size);
        let levels = cfg.channel_mults.len();
        for (l, m) in cfg.channel_mults.iter().enumerate() {
            for _ in 0..cfg.res_blocks {
                trunk += res(now, ch * m, cfg.attn_levels.contains(&l), s);
                now = ch * m;
                skips.push(now);
            }
            if l + 1 < levels {
                s /= 2;
                trunk += conv(now, now, 3, s);
                skips.push(now);
            }
        }
        trunk += res(now, now, true, s) + res(now, now, false, s);
        let mut up = 0.0;
        for (l, m) in cfg.channel_mults.iter().enumerate().rev() {
            for _ in 0..=cfg.res_blocks {
                up += res(now + skips.pop().unwrap(), ch * m, cfg.attn_levels.contains(&l), s);
                now = ch * m;
            }
            if l > 0 {
                s *= 2;
                up += conv(now, now, 3, s);
            }
        }
        (trunk, up + conv(now, cfg.image_channels, 3, s))
    }

    #[test]
    fn forward_flops_by_hand_and_by_formula() {
        // One level, 2 channels, emb 8, 4×4, grey. Trunk: time MLP 2·(2·8 + 8·8) = 160, head
        // 2·1·2·9·16 = 576, ResBlock 2→2 (2·2·2·9·16 twice + 2·8·2) = 2336, mid1 = 2336 +
        // attention (four 1×1 convs 4·2·2·2·16 = 512, products 4·16·16·2 = 2048), mid2 = 2336.
        // Up: two ResBlocks 4→2 (2304 + 32 + 1152 + 1×1 shortcut 256 = 3744), tail 2·2·1·9·16.
        let cfg = UNetConfig::new(1, 3, 2, vec![1], 1, vec![]);
        let f = cfg.init::<B>(&Default::default()).forward_flops(4);
        assert_eq!(f.trunk, 160.0 + 576.0 + 2336.0 + (2336.0 + 512.0 + 2048.0) + 2336.0);
        assert_eq!(f.up_path, 2.0 * 3744.0 + 576.0);
        for (preset, ch, size) in [(Preset::Tiny, 1, 16), (Preset::Small, 3, 32), (Preset::Paper, 3, 32)] {
            let cfg = preset.config(ch, 10, size).unwrap().with_low_rank_expert(true);
            let f = cfg.init::<B>(&Default::default()).forward_flops(size);
            assert_eq!((f.trunk, f.up_path), flops_by_formula(&cfg, size), "{preset:?}");
        }
    }

    #[test]
    fn forward_shapes_and_bottleneck() {
        let dev = Default::default();
        let cfg = Preset::Small.config(3, 4, 16).unwrap();
        let model: UNet<B> = cfg.init(&dev);
        let x = Tensor::<B, 4>::random([2, 3, 16, 16], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
        let labels = Tensor::<B, 1, Int>::from_ints([0, 3], &dev);
        let out = model.forward(x, &[5, 999], &ClassCond::Labels(labels), true);
        assert_eq!(out.eps.dims(), [2, 3, 16, 16]);
        assert_eq!(out.bottleneck.unwrap().dims(), [2, 128, 4, 4]);
    }

    #[test]
    fn masked_class_term_interpolates_between_uncond_and_cond() {
        let dev = Default::default();
        let cfg = Preset::Tiny.config(1, 3, 8).unwrap();
        let mut model: UNet<B> = cfg.init(&dev);
        // Un-zero the layers that start near zero on the path from the embedding to the output.
        model.tail = conv(32, 1, 3, 1, 1.0, &dev);
        model.mid1.conv2 = conv(64, 64, 3, 1, 1.0, &dev);
        model.mid2.conv2 = conv(64, 64, 3, 1, 1.0, &dev);
        let x = Tensor::<B, 4>::random([2, 1, 8, 8], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
        let labels = Tensor::<B, 1, Int>::from_ints([1, 2], &dev);
        let t = [10, 700];
        let cond = model.forward(x.clone(), &t, &ClassCond::Labels(labels.clone()), false).eps;
        let uncond = model.forward(x.clone(), &t, &ClassCond::Uncond, false).eps;
        let keep = Tensor::<B, 1>::from_floats([1.0, 0.0], &dev);
        let mixed = model.forward(x, &t, &ClassCond::Masked { labels, keep }, false).eps;
        let diff = |a: Tensor<B, 4>, b: Tensor<B, 4>| a.sub(b).abs().max().into_scalar();
        assert!(diff(cond.clone(), uncond.clone()) > 1e-4, "the class term must matter");
        assert!(diff(mixed.clone().narrow(0, 0, 1), cond.narrow(0, 0, 1)) < 1e-6);
        assert!(diff(mixed.narrow(0, 1, 1), uncond.narrow(0, 1, 1)) < 1e-6);
    }

    /// A model with CM's experts whose B matrices are no longer zero.
    fn trained_expert_model(dev: &burn::tensor::Device<B>) -> UNet<B> {
        let cfg = Preset::Tiny.config(1, 3, 8).unwrap().with_low_rank_expert(true);
        let mut model: UNet<B> = cfg.init(dev);
        model.tail = conv(32, 1, 3, 1, 1.0, dev);
        let randomise = |e: &mut Option<LowRankExpert<B>>| {
            let e = e.as_mut().unwrap();
            e.b = Param::from_tensor(Tensor::random(e.b.val().dims(), burn::tensor::Distribution::Normal(0.0, 0.1), dev));
        };
        for l in model.up.iter_mut() {
            match l {
                UpLayer::Res(r) => {
                    randomise(&mut r.expert1);
                    randomise(&mut r.expert2);
                }
                UpLayer::Up(u) => randomise(&mut u.expert),
            }
        }
        model
    }

    #[test]
    fn expert_switch_merge_and_base_only() {
        let dev = Default::default();
        let model = trained_expert_model(&dev);
        assert!(model.has_experts());
        let x = Tensor::<B, 4>::random([2, 1, 8, 8], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
        let cond = ClassCond::Labels(Tensor::<B, 1, Int>::from_ints([0, 2], &dev));
        let t = [10, 600];
        let diff = |a: Tensor<B, 4>, b: Tensor<B, 4>| a.sub(b).abs().max().into_scalar();
        let with = model.forward(x.clone(), &t, &cond, false).eps;
        let off = model.forward_with(x.clone(), &t, &cond, false, false).eps;
        assert!(diff(with.clone(), off.clone()) > 1e-4, "the expert must matter");
        let base = model.clone().without_experts();
        assert!(!base.has_experts());
        assert!(diff(base.forward(x.clone(), &t, &cond, false).eps, off.clone()) < 1e-6, "switch off = θ^g");
        // One trunk, two up paths (CM's step): the same as two full forwards, also on a prefix.
        let trunk = model.trunk(x.clone(), &t, &cond);
        let (up_off, masks) = model.up_path(&trunk, false);
        assert!(diff(up_off, off.clone()) < 1e-6);
        assert!(diff(model.up_path_replay(&trunk, 1, true, &masks), with.clone().narrow(0, 0, 1)) < 1e-6);
        let merged = model.merge_experts();
        assert!(!merged.has_experts());
        assert!(diff(merged.forward(x, &t, &cond, false).eps, with) < 1e-4, "merged = W^g + BA");
    }

    #[test]
    fn expert_and_projection_parameter_counts() {
        let cfg = Preset::Tiny.config(1, 3, 8).unwrap();
        let plain = weights::count(&cfg.init::<B>(&Default::default()));
        let with = cfg.clone().with_low_rank_expert(true).with_projection_dim(128);
        let model: UNet<B> = with.init(&Default::default());
        // Up-path 3×3 convs of the tiny preset (ch 32, mults [1,2,2], 1 block down, 2 up; skips
        // 32,32,32,64,64,64): level 2: 64+64→64 twice, up conv 64; level 1: 64+64→64, 64+32→64,
        // up conv 64; level 0: 64+32→32, 32+32→32 (each ResBlock also has conv2 o→o).
        let lora = |i: usize, o: usize| {
            let r = (i.min(o) / 10).max(1);
            r * 3 * i * 3 + o * 3 * r * 3
        };
        let res = |i: usize, o: usize| lora(i, o) + lora(o, o);
        let experts = res(128, 64) + res(128, 64) + lora(64, 64) + res(128, 64) + res(96, 64) + lora(64, 64) + res(96, 32) + res(64, 32);
        assert_eq!(weights::count(&model), plain + experts + 64 * 128 + 128);
        let x = Tensor::<B, 4>::random([3, 64, 2, 2], burn::tensor::Distribution::Normal(0.0, 1.0), &Default::default());
        let z = model.project(x).unwrap();
        let norms: Vec<f32> = z.powi_scalar(2).sum_dim(1).into_data().to_vec().unwrap();
        assert!(norms.iter().all(|n| (n - 1.0).abs() < 1e-5), "{norms:?}");
    }

    fn floats<const D: usize>(x: Tensor<B, D>) -> Vec<f64> {
        x.into_data().convert::<f32>().to_vec::<f32>().unwrap().into_iter().map(f64::from).collect()
    }

    /// x + proj(softmax_j(q_i·k_j/√C)·v_j) after a GroupNorm, by hand in f64 from the block's
    /// own weights: tells softmax over positions from softmax over queries, and the C^−½ scale.
    #[test]
    fn attention_by_hand() {
        let dev = Default::default();
        let (c, n) = (3, 4); // 3 channels, 2×2 = 4 positions
        let mut a = AttnBlock::<B>::new(c, 1, 1.0, &dev);
        let bias = |v: [f32; 3]| Some(Param::from_tensor(Tensor::<B, 1>::from_floats(v, &dev)));
        a.q.bias = bias([0.1, -0.2, 0.3]);
        a.v.bias = bias([0.5, 0.0, -0.5]);
        let x = Tensor::<B, 4>::random([1, c, 2, 2], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
        let got = floats(a.forward(x.clone()));
        let xs = floats(x);
        // GroupNorm with one group, γ = 1, β = 0, ε = 1e−5: over all C·H·W values.
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        let hn: Vec<f64> = xs.iter().map(|v| (v - mean) / (var + 1e-5).sqrt()).collect();
        // 1×1 conv: out[o][p] = Σ_i W[o][i]·in[i][p] + b[o].
        let conv1x1 = |conv: &Conv2d<B>, input: &[f64]| -> Vec<f64> {
            let w = floats(conv.weight.val());
            let b = conv.bias.as_ref().map_or(vec![0.0; c], |b| floats(b.val()));
            (0..c).flat_map(|o| (0..n).map(move |p| (o, p))).map(|(o, p)| b[o] + (0..c).map(|i| w[o * c + i] * input[i * n + p]).sum::<f64>()).collect()
        };
        let (q, k, v) = (conv1x1(&a.q, &hn), conv1x1(&a.k, &hn), conv1x1(&a.v, &hn));
        let mut out = vec![0.0; c * n];
        for i in 0..n {
            let scores: Vec<f64> = (0..n).map(|j| (0..c).map(|ch| q[ch * n + i] * k[ch * n + j]).sum::<f64>() / (c as f64).sqrt()).collect();
            let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
            let z: f64 = e.iter().sum();
            for ch in 0..c {
                out[ch * n + i] = (0..n).map(|j| e[j] / z * v[ch * n + j]).sum();
            }
        }
        let proj = conv1x1(&a.proj, &out);
        for (idx, g) in got.iter().enumerate() {
            let want = xs[idx] + proj[idx];
            assert!((g - want).abs() < 1e-4, "position {idx}: {g} vs {want}");
        }
    }

    /// The attention output projection starts at Xavier gain 1 (the reference's effective
    /// init) unless asked to start near zero.
    #[test]
    fn attention_output_init_follows_the_option() {
        let dev = Default::default();
        let ch = 64;
        // Xavier-uniform bound for a 1×1 conv: gain·√(6/(fan_in + fan_out)).
        let bound = (6.0 / (2.0 * ch as f64)).sqrt();
        let max_abs = |a: &AttnBlock<B>| floats(a.proj.weight.val()).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let xavier = AttnBlock::<B>::new(ch, 32, UNetConfig::new(1, 2, ch, vec![1], 1, vec![]).attn_out_gain, &dev);
        let m = max_abs(&xavier);
        assert!(m <= bound && m > 0.9 * bound, "{m} vs bound {bound}");
        let near_zero = AttnBlock::<B>::new(ch, 32, 1e-5, &dev);
        assert!(max_abs(&near_zero) <= 1e-5 * bound);
    }

    /// The bottleneck is the second middle ResBlock's output, not the first's.
    #[test]
    fn bottleneck_is_the_second_middle_block() {
        let dev = Default::default();
        let cfg = Preset::Tiny.config(1, 3, 8).unwrap();
        let mut model: UNet<B> = cfg.init(&dev);
        // mid2 starts as (almost) the identity: make it change its input visibly.
        model.mid2.conv2 = conv(64, 64, 3, 1, 1.0, &dev);
        let x = Tensor::<B, 4>::random([2, 1, 8, 8], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
        let t = [40, 800];
        let cond = ClassCond::Labels(Tensor::<B, 1, Int>::from_ints([0, 2], &dev));
        let trunk = model.trunk(x.clone(), &t, &cond);
        let bottleneck = model.forward(x, &t, &cond, true).bottleneck.unwrap();
        // The middle by hand on the last skip (the down path's output).
        let down_out = trunk.skips.last().unwrap().clone();
        let mid1 = model.mid1.forward(down_out, trunk.emb_act.clone(), false, None).0;
        let mid2 = model.mid2.forward(mid1.clone(), trunk.emb_act.clone(), false, None).0;
        let diff = |a: Tensor<B, 4>, b: Tensor<B, 4>| a.sub(b).abs().max().into_scalar();
        assert!(diff(bottleneck.clone(), mid2) < 1e-6);
        assert!(diff(bottleneck, mid1) > 1e-3, "mid1's output must differ from the bottleneck");
    }

    #[test]
    fn nearest_upsample_repeats_pixels() {
        let dev = Default::default();
        let x = Tensor::<B, 4>::from_floats([[[[1.0, 2.0], [3.0, 4.0]]]], &dev);
        let up = interpolate(x, [4, 4], InterpolateOptions::new(InterpolateMode::Nearest));
        let v: Vec<f32> = up.into_data().to_vec().unwrap();
        assert_eq!(v, vec![1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.]);
    }

    #[test]
    fn timestep_embedding_by_hand() {
        let e: Vec<f32> = timestep_embedding::<B>(&[0, 1], 4, &Default::default()).into_data().to_vec().unwrap();
        let want = [0.0, 1.0, 0.0, 1.0, 1f64.sin(), 1f64.cos(), 0.01f64.sin(), 0.01f64.cos()];
        for (a, b) in e.iter().zip(want) {
            assert!((*a as f64 - b).abs() < 1e-6, "{e:?}");
        }
    }

    #[test]
    fn output_starts_near_zero() {
        let dev = Default::default();
        let model: UNet<B> = Preset::Tiny.config(3, 2, 8).unwrap().init(&dev);
        let x = Tensor::<B, 4>::random([1, 3, 8, 8], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
        let eps = model.forward(x, &[3], &ClassCond::Uncond, false).eps;
        assert!(eps.abs().max().into_scalar() < 1e-2);
    }
}
