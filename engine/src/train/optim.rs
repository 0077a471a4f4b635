//! Adam with PyTorch's update rule, global-norm gradient clipping and the parameter EMA.
//!
//! Burn has no global-norm clipping and no EMA, and its optimizer state is keyed by random
//! parameter ids; here everything is keyed by parameter path so checkpoints are plain
//! safetensors and resume is exact.

use crate::ops::FastBackend;
use crate::ops::TrainBackend;
use crate::weights::{self, NamedParam};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Missing keys take the values of `Default` (the reference code's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimConfig {
    pub lr: f64,
    /// Linear warm-up: the update after `k` earlier ones uses lr · min(k, warmup) / warmup, as
    /// the reference's `LambdaLR(min(step, W)/W)` stepped after `optim.step()` (its first
    /// update has lr 0).
    pub warmup: u64,
    /// Global gradient-norm clip (PyTorch's clip_grad_norm_); 0 disables.
    pub grad_clip: f64,
    pub ema_decay: f64,
    /// EMA warm-up: decay min(ema_decay, (1 + n)/(10 + n)) after n updates, so that a short
    /// run's EMA is not mostly its initial weights (0.99^100 = 37 % at step 100). Off: the
    /// reference code's constant decay.
    pub ema_warmup: bool,
    pub beta1: f64,
    pub beta2: f64,
    /// PyTorch's default (Burn's Adam defaults to 1e−5).
    pub eps: f64,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self { lr: 2e-4, warmup: 5000, grad_clip: 1.0, ema_decay: 0.9999, ema_warmup: false, beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }
}

impl OptimConfig {
    /// The learning rate of the update that follows `step` earlier ones.
    pub fn lr_at(&self, step: u64) -> f64 {
        if self.warmup == 0 { self.lr } else { self.lr * (step.min(self.warmup) as f64 / self.warmup as f64) }
    }

    /// The EMA decay of the update that follows `updates` earlier ones.
    pub fn ema_decay_at(&self, updates: u64) -> f64 {
        let n = updates as f64;
        if self.ema_warmup { self.ema_decay.min((1.0 + n) / (10.0 + n)) } else { self.ema_decay }
    }
}

struct GradSquares<'a, B: TrainBackend> {
    grads: &'a B::Gradients,
    total: Option<Tensor<B::InnerBackend, 1>>,
}

impl<B: TrainBackend> ModuleVisitor<B> for GradSquares<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = param.val().grad(self.grads) {
            let s = g.powi_scalar(2).sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + s,
                None => s,
            });
        }
    }
}

/// The sum of squares of all gradients, on the device (`[1]`; zero without gradients).
pub fn grad_squares<B: TrainBackend, M: Module<B>>(module: &M, grads: &B::Gradients, device: &B::Device) -> Tensor<B::InnerBackend, 1> {
    let mut v = GradSquares::<B> { grads, total: None };
    module.visit(&mut v);
    v.total.unwrap_or_else(|| Tensor::zeros([1], device))
}

/// The global L2 norm of all gradients (one device sync).
pub fn grad_norm<B: TrainBackend, M: Module<B>>(module: &M, grads: &B::Gradients) -> f64 {
    let mut v = GradSquares::<B> { grads, total: None };
    module.visit(&mut v);
    v.total.map(|t| t.into_scalar().elem::<f64>().sqrt()).unwrap_or(0.0)
}

/// Adam's state by parameter path (what a checkpoint holds of Adam): the moments and, as
/// PyTorch keeps them, each parameter's own count of updates for the bias corrections (a
/// parameter without a gradient in a step is skipped entirely, count included).
pub struct AdamState<B: Backend> {
    pub m: HashMap<String, Tensor<B, 1>>,
    pub v: HashMap<String, Tensor<B, 1>>,
    pub steps: HashMap<String, u64>,
}

impl<B: FastBackend> Default for AdamState<B> {
    fn default() -> Self {
        Self { m: HashMap::new(), v: HashMap::new(), steps: HashMap::new() }
    }
}

/// Adam with PyTorch's update rule.
pub struct Adam<B: TrainBackend> {
    beta1: f64,
    beta2: f64,
    eps: f64,
    pub state: AdamState<B::InnerBackend>,
}

impl<B: TrainBackend> Adam<B> {
    pub fn new(cfg: &OptimConfig) -> Self {
        Self::resume(cfg, AdamState::default())
    }

    /// Continues from a checkpoint's moments and counts.
    pub fn resume(cfg: &OptimConfig, state: AdamState<B::InnerBackend>) -> Self {
        Self { beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps, state }
    }

    /// One update of `module` at learning rate `lr`, the gradients scaled by `grad_scale` (the
    /// clip). Returns the module and every parameter's value after the update, by path.
    pub fn step<M: Module<B>>(&mut self, module: M, grads: &B::Gradients, lr: f64, grad_scale: f64) -> (M, HashMap<String, Tensor<B::InnerBackend, 1>>) {
        let mut mapper = AdamMapper::<B> {
            grads,
            state: &mut self.state,
            path: Vec::new(),
            lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            grad_scale,
            values: HashMap::new(),
        };
        let module = module.map(&mut mapper);
        (module, mapper.values)
    }
}

struct AdamMapper<'a, B: TrainBackend> {
    grads: &'a B::Gradients,
    state: &'a mut AdamState<B::InnerBackend>,
    path: Vec<String>,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    grad_scale: f64,
    /// Every parameter's value after the step (updated or not), handed to the EMA.
    values: HashMap<String, Tensor<B::InnerBackend, 1>>,
}

impl<B: TrainBackend> ModuleMapper<B> for AdamMapper<'_, B> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let path = self.path.join(".");
        let dims = tensor.dims();
        let n: usize = dims.iter().product();
        // No gradient this step (the class embedding in a label-dropped batch, a skipped
        // head): Adam leaves it, as PyTorch's does, but the EMA still averages it.
        let Some(grad) = tensor.grad(self.grads) else {
            self.values.insert(path, tensor.clone().inner().reshape([n]));
            return Param::from_mapped_value(id, tensor, mapper);
        };
        // This parameter's own update count t (PyTorch's per-parameter `step`).
        let t = self.state.steps.get(&path).copied().unwrap_or(0) + 1;
        let (bc1, bc2) = (1.0 - self.beta1.powi(t as i32), 1.0 - self.beta2.powi(t as i32));
        let g = grad.reshape([n]).mul_scalar(self.grad_scale);
        let p = tensor.inner().reshape([n]);
        let m = match self.state.m.remove(&path) {
            Some(m) => m.mul_scalar(self.beta1) + g.clone().mul_scalar(1.0 - self.beta1),
            None => g.clone().mul_scalar(1.0 - self.beta1),
        };
        let v = match self.state.v.remove(&path) {
            Some(v) => v.mul_scalar(self.beta2) + g.powi_scalar(2).mul_scalar(1.0 - self.beta2),
            None => g.powi_scalar(2).mul_scalar(1.0 - self.beta2),
        };
        // PyTorch: p -= lr · (m / bc1) / (√(v / bc2) + eps)
        let denom = v.clone().div_scalar(bc2).sqrt().add_scalar(self.eps);
        let new = p - m.clone().div(denom).mul_scalar(self.lr / bc1);
        self.state.steps.insert(path.clone(), t);
        self.state.m.insert(path.clone(), m);
        self.state.v.insert(path.clone(), v);
        self.values.insert(path, new.clone());
        let t = Tensor::<B, D>::from_inner(new.reshape(dims)).require_grad();
        Param::from_mapped_value(id, t, mapper)
    }
}

/// The clip factor of PyTorch's clip_grad_norm_: max_norm / (norm + 1e−6), capped at 1.
pub fn clip_scale(norm: f64, max_norm: f64) -> f64 {
    if max_norm <= 0.0 { 1.0 } else { (max_norm / (norm + 1e-6)).min(1.0) }
}

/// ema ← decay·ema + (1 − decay)·param for every parameter in `values` (all of them after
/// [`Adam::step`]: the reference averages every weight every step).
pub fn ema_update<B: FastBackend, M: Module<B>>(ema: M, values: HashMap<String, Tensor<B, 1>>, decay: f64) -> M {
    let values = weights::collect(&ema)
        .into_iter()
        .map(|p| {
            let value = match values.get(&p.path) {
                Some(new) => p.value.mul_scalar(decay) + new.clone().mul_scalar(1.0 - decay),
                None => p.value,
            };
            (p.path.clone(), NamedParam { path: p.path, shape: p.shape, value })
        })
        .collect();
    weights::load(ema, values).expect("the EMA has the model's parameters")
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Autodiff;
    use burn::module::AutodiffModule;
    type I = burn::backend::Flex;
    type B = Autodiff<I>;

    #[derive(Module, Debug)]
    struct Toy<B: Backend> {
        w: Param<Tensor<B, 2>>,
        b: Param<Tensor<B, 1>>,
    }

    fn toy(dev: &burn::tensor::Device<B>) -> Toy<B> {
        Toy {
            w: Param::from_tensor(Tensor::from_floats([[1.0, -2.0], [0.5, 3.0]], dev).require_grad()),
            b: Param::from_tensor(Tensor::from_floats([0.25], dev).require_grad()),
        }
    }

    /// loss = Σ c ⊙ w + 2·b, so ∇w = c and ∇b = 2 whatever the values.
    fn loss(m: &Toy<B>, dev: &burn::tensor::Device<B>) -> Tensor<B, 1> {
        let c = Tensor::<B, 2>::from_floats([[3.0, -4.0], [0.0, 12.0]], dev);
        (m.w.val() * c).sum() + m.b.val().mul_scalar(2.0).sum()
    }

    #[test]
    fn grad_norm_and_clip_by_hand() {
        let dev = Default::default();
        let m = toy(&dev);
        let grads = loss(&m, &dev).backward();
        // √(9 + 16 + 0 + 144 + 4) = √173
        assert!((grad_norm(&m, &grads) - 173f64.sqrt()).abs() < 1e-5);
        assert!((clip_scale(173f64.sqrt(), 1.0) - 1.0 / (173f64.sqrt() + 1e-6)).abs() < 1e-12);
        assert_eq!(clip_scale(0.5, 1.0), 1.0);
        assert_eq!(clip_scale(5.0, 0.0), 1.0);
    }

    /// loss = f·(Σ c ⊙ w + 2·b): ∇w = f·c and ∇b = 2f.
    fn scaled_loss(m: &Toy<B>, f: f64, dev: &burn::tensor::Device<B>) -> Tensor<B, 1> {
        loss(m, dev).mul_scalar(f)
    }

    /// PyTorch's rule in f64, for one parameter's elements: moments, bias corrections from the
    /// parameter's own count, and eps outside the square root.
    fn adam_by_hand(p: &mut [f64], m: &mut [f64], v: &mut [f64], g: &[f64], t: i32, lr: f64, eps: f64) {
        for k in 0..p.len() {
            m[k] = 0.9 * m[k] + 0.1 * g[k];
            v[k] = 0.999 * v[k] + 0.001 * g[k] * g[k];
            let mhat = m[k] / (1.0 - 0.9f64.powi(t));
            let vhat = v[k] / (1.0 - 0.999f64.powi(t));
            p[k] -= lr * mhat / (vhat.sqrt() + eps);
        }
    }

    /// Gradients of 1e−8…1e−7, changing every step: here eps (1e−8) and the clip factor both
    /// change the update (with constant gradients, m̂/√v̂ would hide them).
    #[test]
    fn adam_matches_pytorch_rule_by_hand() {
        let dev = Default::default();
        let cfg = OptimConfig { lr: 0.1, ..Default::default() };
        let mut m = toy(&dev);
        let mut adam = Adam::<B>::new(&cfg);
        let scale = 0.5;
        let c = [3.0, -4.0, 0.0, 12.0];
        let factors = [1e-8, -3e-8, 2e-9];
        let run_by_hand = |eps: f64, scale: f64| {
            let (mut p, mut mm, mut vv) = ([1.0, -2.0, 0.5, 3.0], [0.0f64; 4], [0.0f64; 4]);
            for (k, f) in factors.iter().enumerate() {
                let g = c.map(|c| c * f * scale);
                adam_by_hand(&mut p, &mut mm, &mut vv, &g, k as i32 + 1, 0.1, eps);
            }
            p
        };
        for &f in &factors {
            let grads = scaled_loss(&m, f, &dev).backward();
            let (next, updated) = adam.step(m, &grads, cfg.lr, scale);
            m = next;
            assert_eq!(updated.len(), 2);
        }
        let got: Vec<f32> = m.w.val().into_data().to_vec().unwrap();
        let want = run_by_hand(1e-8, scale);
        for (a, b) in got.iter().zip(want) {
            assert!((*a as f64 - b).abs() < 1e-5, "{got:?} vs {want:?}");
        }
        // The test can tell: Burn's eps (1e−5), or the clip factor left out, lands elsewhere.
        for (other, what) in [(run_by_hand(1e-5, scale), "eps 1e-5"), (run_by_hand(1e-8, 1.0), "no clip factor")] {
            let gap = got.iter().zip(other).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
            assert!(gap > 1e-3, "{what} would pass too ({gap})");
        }
        assert!(m.w.val().is_require_grad(), "parameters stay trainable");
    }

    /// PyTorch counts updates per parameter: b, without a gradient in the first step (a
    /// label-dropped batch for the class embedding), gets its first update with t = 1.
    #[test]
    fn adam_counts_updates_per_parameter() {
        let dev = Default::default();
        let cfg = OptimConfig { lr: 0.1, ..Default::default() };
        let m = toy(&dev);
        let mut adam = Adam::<B>::new(&cfg);
        let only_w = (m.w.val() * Tensor::<B, 2>::ones([2, 2], &dev)).sum().backward();
        let (m, _) = adam.step(m, &only_w, cfg.lr, 1.0);
        assert_eq!(adam.state.steps.get("w"), Some(&1));
        assert_eq!(adam.state.steps.get("b"), None, "b is skipped entirely");
        let grads = scaled_loss(&m, 1.0, &dev).backward();
        let (m, _) = adam.step(m, &grads, cfg.lr, 1.0);
        assert_eq!((adam.state.steps["w"], adam.state.steps["b"]), (2, 1));
        // b's first update: m̂ = g, v̂ = g², so it moves by lr·g/(|g| + eps) ≈ lr (a global
        // count t = 2 would move it by 0.744·lr).
        let (mut p, mut mm, mut vv) = ([0.25], [0.0], [0.0]);
        adam_by_hand(&mut p, &mut mm, &mut vv, &[2.0], 1, 0.1, 1e-8);
        let b = m.b.val().into_scalar() as f64;
        assert!((b - p[0]).abs() < 1e-6 && (b - 0.15).abs() < 1e-6, "{b} vs {}", p[0]);
    }

    #[test]
    fn ema_by_hand() {
        let dev = Default::default();
        let ema = toy(&dev).valid();
        let updated = HashMap::from([("w".to_string(), Tensor::<I, 1>::from_floats([2.0, 0.0, 0.0, 0.0], &dev))]);
        let ema = ema_update(ema, updated, 0.75);
        let w: Vec<f32> = ema.w.val().into_data().to_vec().unwrap();
        assert_eq!(w, vec![0.75 * 1.0 + 0.25 * 2.0, 0.75 * -2.0, 0.75 * 0.5, 0.75 * 3.0]);
        assert_eq!(ema.b.val().into_scalar(), 0.25, "parameters without an update are kept");
    }

    /// A parameter without a gradient this step: Adam leaves it, the EMA still averages it
    /// towards the model (the reference averages every weight every step).
    #[test]
    fn ema_averages_parameters_without_a_gradient() {
        let dev = Default::default();
        let m = toy(&dev);
        let mut ema = toy(&dev).valid();
        ema.b = Param::from_tensor(Tensor::<I, 1>::from_floats([1.0], &dev));
        // The loss reads w only: b gets no gradient.
        let c = Tensor::<B, 2>::from_floats([[1.0, 1.0], [1.0, 1.0]], &dev);
        let grads = (m.w.val() * c).sum().backward();
        assert!(m.b.val().grad(&grads).is_none());
        let mut adam = Adam::<B>::new(&OptimConfig::default());
        let (m, values) = adam.step(m, &grads, 0.1, 1.0);
        assert_eq!(m.b.val().into_scalar(), 0.25, "Adam does not move b");
        assert!(!adam.state.m.contains_key("b"), "nor does it start moments for it");
        assert_eq!(values.len(), 2);
        let ema = ema_update(ema, values, 0.75);
        // 0.75·1 + 0.25·0.25
        assert_eq!(ema.b.val().into_scalar(), 0.8125);
    }

    #[test]
    fn ema_warmup_by_hand() {
        let constant = OptimConfig { ema_decay: 0.99, ..Default::default() };
        assert_eq!(constant.ema_decay_at(0), 0.99);
        assert_eq!(constant.ema_decay_at(100), 0.99);
        let warm = OptimConfig { ema_warmup: true, ..constant };
        // (1 + n)/(10 + n): 0.1 at the first update, 101/110 after 100, capped by the decay.
        assert_eq!(warm.ema_decay_at(0), 0.1);
        assert_eq!(warm.ema_decay_at(100), 101.0 / 110.0);
        assert_eq!(warm.ema_decay_at(1000), 0.99);
        assert_eq!(warm.ema_decay_at(100_000), 0.99);
    }

    /// The reference: `LambdaLR(lambda s: min(s, W)/W)`, `sched.step()` after each
    /// `optim.step()`, so update k (0-based) runs at lr·min(k, W)/W and the first at 0.
    #[test]
    fn warmup_is_the_references_lambda_lr() {
        let c = OptimConfig { lr: 2e-4, warmup: 4, ..Default::default() };
        let lr: Vec<f64> = (0..6).map(|k| c.lr_at(k)).collect();
        assert_eq!(lr, [0.0, 0.25, 0.5, 0.75, 1.0, 1.0].map(|f| 2e-4 * f).to_vec());
        assert_eq!(OptimConfig { warmup: 0, ..c }.lr_at(0), 2e-4, "no warm-up");
    }
}
