//! The long-tail methods of SPEC §4, one file each behind [`Method`].
//!
//! A method is an optional target transform (OC), an optional batch sampler and named loss
//! terms added to the base ε-MSE. The step gathers every forward pass the methods ask for into
//! one batched call per expert setting ([`Forwards`]), so CBDM's y′ pass, CCUA's unconditional
//! pass and DiffROP's partners ride along with the main batch; a pass whose output is a constant
//! of the loss runs outside the autodiff graph. [`Forwards::rows`] counts what each kind costs.
//!
//! Adding a method: one file here that implements [`Method`] and [`MethodKind`], and one line
//! in the [`registry!`] invocation below (`docs/adding-a-method.md` walks through one). The
//! config tables, the CLI's `--method`, the lab's forms and `bench methods` read the registry.

use crate::data::sampler::BatchSampler;
use crate::diffusion::Schedule;
use crate::error::{Error, Result};
use crate::model::{ClassCond, ForwardFlops, UNet};
use crate::ops::FastBackend;
use crate::ops::TrainBackend;
use burn::module::AutodiffModule;
use burn::prelude::*;
use ltlab_types::TransferCounts;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// What a method needs from the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelNeeds {
    /// CM's low-rank experts on the up path.
    pub experts: bool,
    /// Width of a projection head on the pooled bottleneck (CORAL); 0 = none.
    pub projection_dim: usize,
}

impl ModelNeeds {
    fn and(self, o: Self) -> Self {
        Self { experts: self.experts || o.experts, projection_dim: self.projection_dim.max(o.projection_dim) }
    }
}

/// A method as the registry knows it, implemented on its config table (defaults for every
/// key; unknown keys are errors): its names, its checks, what it needs from the network and
/// how it builds.
pub trait MethodKind: Clone + Default + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The `--method` names that switch it on (OC has three: t2h, h2t, full).
    const NAMES: &'static [&'static str];
    /// One line for help texts.
    const SUMMARY: &'static str;
    /// The loss terms it logs (beside `mse` and `total`).
    const TERMS: &'static [&'static str];
    /// The per-step cost relative to DDPM that `bench methods` holds it to, if any.
    const COST_TARGET: Option<f64> = None;

    /// The config `--method NAME` switches on.
    fn config_for(_name: &str) -> Self {
        Self::default()
    }

    /// Its part of a run's label (`cbdm+coral`).
    fn run_label(&self) -> String {
        Self::NAMES[0].to_string()
    }

    /// Checks the options; `stack` is the whole method stack, for methods that combine.
    fn validate(&self, stack: &MethodsConfig) -> Result<()>;

    /// Adds the methods this one brings along to the stack a run uses (CM: T2H).
    fn bring_along(&self, _stack: &mut MethodsConfig) {}

    fn model_needs(&self) -> ModelNeeds {
        ModelNeeds::default()
    }

    /// The batch sampler it asks for, and the option (in its table) that asks.
    fn sampler_request(&self) -> Option<(&'static str, BatchSampler)> {
        None
    }

    fn build<B: TrainBackend>(&self) -> Box<dyn Method<B>>;
}

/// One registered method, as front ends list it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MethodEntry {
    /// Its `[methods.KEY]` table.
    pub key: &'static str,
    pub names: &'static [&'static str],
    pub summary: &'static str,
    pub terms: &'static [&'static str],
    pub cost_target: Option<f64>,
}

/// Declares the method modules, [`MethodsConfig`] (one optional table each) and [`REGISTRY`],
/// in the order the methods act and appear in labels.
macro_rules! registry {
    ($($key:ident => $config:ident),* $(,)?) => {
        $(pub mod $key;)*

        /// The method stack of a run: each present table switches a method on (`[methods.cbdm]` …).
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct MethodsConfig {
            $(
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $key: Option<$key::$config>,
            )*
        }

        /// Every method ltlab knows, in stack order.
        pub const REGISTRY: &[MethodEntry] = &[$(MethodEntry {
            key: stringify!($key),
            names: <$key::$config as MethodKind>::NAMES,
            summary: <$key::$config as MethodKind>::SUMMARY,
            terms: <$key::$config as MethodKind>::TERMS,
            cost_target: <$key::$config as MethodKind>::COST_TARGET,
        }),*];

        impl MethodsConfig {
            /// Switches on the method `--method NAME` names, with its defaults; `ddpm` clears
            /// the stack.
            pub fn add(&mut self, name: &str) -> Result<()> {
                if name == "ddpm" {
                    *self = Self::default();
                    return Ok(());
                }
                $(
                    if <$key::$config as MethodKind>::NAMES.contains(&name) {
                        self.$key = Some(<$key::$config as MethodKind>::config_for(name));
                        return Ok(());
                    }
                )*
                Err(Error::option("--method", format!("`{name}`: expected {}", method_names().join(", "))))
            }

            /// The stack a run uses: the tables given plus what their methods bring along.
            pub fn effective(&self) -> Self {
                let mut out = self.clone();
                $(
                    if let Some(c) = &self.$key {
                        c.bring_along(&mut out);
                    }
                )*
                out
            }

            /// The stack as written in run names and tables, e.g. `cbdm+coral`; `ddpm` when empty.
            pub fn label(&self) -> String {
                let stack = self.effective();
                let mut parts: Vec<String> = Vec::new();
                $(
                    if let Some(c) = &stack.$key {
                        parts.push(c.run_label());
                    }
                )*
                if parts.is_empty() { "ddpm".into() } else { parts.join("+") }
            }

            /// The tables present, in stack order.
            pub fn keys(&self) -> Vec<&'static str> {
                let mut keys = Vec::new();
                $(
                    if self.$key.is_some() {
                        keys.push(stringify!($key));
                    }
                )*
                keys
            }

            /// Checks every option and returns the batch sampler the run uses: the run's own
            /// `batch_sampler`, or the one a method asks for (OC's re-sampling, CCUA's brs).
            pub fn check(&self, run_sampler: Option<BatchSampler>) -> Result<BatchSampler> {
                $(
                    if let Some(c) = &self.$key {
                        c.validate(self)?;
                    }
                )*
                let stack = self.effective();
                let mut wanted: Vec<(String, BatchSampler)> = run_sampler.map(|s| ("batch_sampler".to_string(), s)).into_iter().collect();
                $(
                    if let Some((option, s)) = stack.$key.as_ref().and_then(MethodKind::sampler_request) {
                        wanted.push((format!("methods.{}.{option}", stringify!($key)), s));
                    }
                )*
                one_sampler(wanted)
            }

            /// What the stack needs from the network.
            pub fn needs(&self) -> ModelNeeds {
                let stack = self.effective();
                let mut needs = ModelNeeds::default();
                $(
                    if let Some(c) = &stack.$key {
                        needs = needs.and(c.model_needs());
                    }
                )*
                needs
            }

            /// The method objects of the stack, in the order they act.
            pub fn build<B: TrainBackend>(&self) -> Vec<Box<dyn Method<B>>> {
                let stack = self.effective();
                let mut out: Vec<Box<dyn Method<B>>> = Vec::new();
                $(
                    if let Some(c) = &stack.$key {
                        out.push(c.build::<B>());
                    }
                )*
                out
            }
        }
    };
}

registry! {
    cbdm => CbdmConfig,
    oc => OcConfig,
    diffrop => DiffRopConfig,
    ccua => CcuaConfig,
    coral => CoralConfig,
    cm => CmConfig,
    cb_loss => CbLossConfig,
}

/// Every `--method` name, in registry order.
pub fn method_names() -> Vec<&'static str> {
    std::iter::once("ddpm").chain(REGISTRY.iter().flat_map(|e| e.names.iter().copied())).collect()
}

/// The hyper-parameters `--method NAME` offers: (config key, default as TOML), without the
/// keys the name itself sets (OC's mode is t2h, h2t or full).
pub fn offered_params(name: &str) -> Result<Vec<(String, String)>> {
    let defaults = |n: &str| -> Result<toml::Table> {
        let mut m = MethodsConfig::default();
        m.add(n)?;
        Ok(toml::Table::try_from(&m).expect("method configs serialise"))
    };
    let table = defaults(name)?;
    let siblings: Vec<toml::Table> = REGISTRY.iter().find(|e| e.names.contains(&name)).map_or(Ok(vec![]), |e| e.names.iter().map(|n| defaults(n)).collect())?;
    let mut out = Vec::new();
    for (key, values) in &table {
        let Some(values) = values.as_table() else { continue };
        for (option, value) in values {
            let fixed_by_name = siblings.iter().any(|s| s.get(key).and_then(|t| t.get(option)) != Some(value));
            if !fixed_by_name {
                out.push((format!("methods.{key}.{option}"), value.to_string()));
            }
        }
    }
    Ok(out)
}

/// The one sampler every asker agrees on (uniform when none asks).
fn one_sampler(wanted: Vec<(String, BatchSampler)>) -> Result<BatchSampler> {
    let Some((first_name, first)) = wanted.first().cloned() else { return Ok(BatchSampler::Uniform) };
    for (name, s) in &wanted[1..] {
        if *s != first {
            return Err(Error::option(
                name,
                format!("asks for the `{}` batch sampler but `{first_name}` asks for `{}`: keep one of the two", s.label(), first.label()),
            ));
        }
    }
    Ok(first)
}

/// What every method may read about the run.
pub struct StepContext<'a> {
    pub schedule: &'a Schedule,
    /// Training images per class (long-tailed).
    pub counts: &'a [usize],
    /// q(y) = count / total.
    pub q: &'a [f64],
    pub seed: u64,
    pub step: u64,
}

/// The batch of a step on the host, before anything is uploaded.
#[derive(Debug, Clone)]
pub struct HostBatch {
    /// `[B, C, S, S]`.
    pub shape: [usize; 4],
    pub x0: Vec<f32>,
    pub eps: Vec<f32>,
    pub t: Vec<usize>,
    /// Dataset index of each image.
    pub indices: Vec<usize>,
    pub labels: Vec<usize>,
    /// Whether each sample's label was kept (CFG label drop).
    pub keep: Vec<bool>,
    /// The whole batch went unconditional (per-batch label drop).
    pub uncond_batch: bool,
    /// Regression target of the base loss: ε unless a method replaced it.
    pub target: Vec<f32>,
}

impl HostBatch {
    pub fn len(&self) -> usize {
        self.shape[0]
    }

    pub fn is_empty(&self) -> bool {
        self.shape[0] == 0
    }

    pub fn image_len(&self) -> usize {
        self.shape[1] * self.shape[2] * self.shape[3]
    }

    pub fn any_kept(&self) -> bool {
        self.keep.iter().any(|&k| k)
    }
}

/// The batch on the device.
pub struct Batch<B: Backend> {
    pub host: HostBatch,
    pub x0: Tensor<B, 4>,
    pub eps: Tensor<B, 4>,
    pub x_t: Tensor<B, 4>,
    pub target: Tensor<B, 4>,
}

impl<B: FastBackend> Batch<B> {
    pub fn upload(host: HostBatch, schedule: &Schedule, device: &B::Device) -> Self {
        let shape = host.shape;
        let x0 = Tensor::<B, 4>::from_data(TensorData::new(host.x0.clone(), shape), device);
        let eps = Tensor::<B, 4>::from_data(TensorData::new(host.eps.clone(), shape), device);
        let target = Tensor::<B, 4>::from_data(TensorData::new(host.target.clone(), shape), device);
        let x_t = schedule.noise(x0.clone(), eps.clone(), &host.t);
        Self { host, x0, eps, x_t, target }
    }

    /// A per-sample host vector as a `[B]` tensor.
    pub fn per_sample(&self, v: Vec<f32>) -> Tensor<B, 1> {
        let n = v.len();
        Tensor::from_data(TensorData::new(v, [n]), &self.x0.device())
    }

    /// t/T per sample.
    pub fn t_frac(&self, schedule: &Schedule) -> Vec<f32> {
        self.host.t.iter().map(|&t| t as f32 / schedule.len() as f32).collect()
    }

    /// 1 where the label was kept, 0 where dropped.
    pub fn keep_mask(&self) -> Vec<f32> {
        self.host.keep.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect()
    }
}

/// Mean over all elements of each sample: `[B, …] → [B]`.
pub fn per_sample_mean<B: FastBackend>(x: Tensor<B, 4>) -> Tensor<B, 1> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c * h * w]).mean_dim(1).reshape([b])
}

/// Handle of one part of the step's batched forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(usize);

/// The main forward pass of a step: slot 0.
pub const MAIN: Slot = Slot(0);

/// How a part is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PassKind {
    /// In the batched call, with gradients.
    Trained,
    /// θ^g on the main pass's own inputs: only the up path runs again, on the main trunk.
    BaseOfMain,
    /// Outside the autodiff graph: a constant for the loss, no backward.
    Constant,
}

/// Images through the network in the steps counted, by kind of pass: the compute a method
/// adds, independent of how fast a backend runs it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassRows {
    /// Full forward and backward.
    pub trained: usize,
    /// Up path only, forward and backward (CM's θ^g twin of the main pass).
    pub up_path: usize,
    /// Full forward without backward (DiffROP's partners with `partner_grad = false`).
    pub constant: usize,
}

impl PassRows {
    /// FLOPs of these passes, a backward counted as two forwards (gradients for inputs and
    /// weights).
    pub fn flops(&self, per_image: &ForwardFlops) -> f64 {
        3.0 * (self.trained as f64 * per_image.total() + self.up_path as f64 * per_image.up_path) + self.constant as f64 * per_image.total()
    }
}

impl std::ops::AddAssign for PassRows {
    fn add_assign(&mut self, o: Self) {
        self.trained += o.trained;
        self.up_path += o.up_path;
        self.constant += o.constant;
    }
}

struct Part<B: Backend> {
    kind: PassKind,
    x: Tensor<B, 4>,
    t: Vec<usize>,
    labels: Vec<usize>,
    /// 1 = conditional, 0 = unconditional, per sample.
    keep: Vec<f32>,
    expert: bool,
}

/// Every forward pass a step needs, run as one batched call per expert setting.
pub struct Forwards<B: Backend> {
    parts: Vec<Part<B>>,
}

/// The outputs of [`Forwards::run`], by slot.
pub struct Outputs<B: Backend> {
    eps: Vec<Tensor<B, 4>>,
    bottleneck: Vec<Tensor<B, 4>>,
}

impl<B: FastBackend> Outputs<B> {
    pub fn eps(&self, s: Slot) -> Tensor<B, 4> {
        self.eps[s.0].clone()
    }

    pub fn bottleneck(&self, s: Slot) -> Tensor<B, 4> {
        self.bottleneck[s.0].clone()
    }
}

impl<B: FastBackend> Forwards<B> {
    /// Starts with the main pass: x_t with the batch's (possibly dropped) labels, experts on.
    pub fn new(batch: &Batch<B>) -> Self {
        let h = &batch.host;
        let keep = h.keep.iter().map(|&k| if k && !h.uncond_batch { 1.0 } else { 0.0 }).collect();
        Self { parts: vec![Part { kind: PassKind::Trained, x: batch.x_t.clone(), t: h.t.clone(), labels: h.labels.clone(), keep, expert: true }] }
    }

    /// Adds a pass; `keep[i] = false` makes sample i unconditional.
    pub fn add(&mut self, x: Tensor<B, 4>, t: Vec<usize>, labels: Vec<usize>, keep: Vec<bool>, expert: bool) -> Slot {
        let keep = keep.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
        self.parts.push(Part { kind: PassKind::Trained, x, t, labels, keep, expert });
        Slot(self.parts.len() - 1)
    }

    /// A conditional pass (experts on) outside the autodiff graph: its output is a constant
    /// of the loss, and it costs a forward only.
    pub fn add_constant(&mut self, x: Tensor<B, 4>, t: Vec<usize>, labels: Vec<usize>) -> Slot {
        let keep = vec![1.0; t.len()];
        self.parts.push(Part { kind: PassKind::Constant, x, t, labels, keep, expert: true });
        Slot(self.parts.len() - 1)
    }

    /// θ^g (experts off) on exactly the main pass's inputs. Costs the up path only.
    pub fn add_base_of_main(&mut self) -> Slot {
        let m = &self.parts[0];
        let part = Part { kind: PassKind::BaseOfMain, x: m.x.clone(), t: m.t.clone(), labels: m.labels.clone(), keep: m.keep.clone(), expert: false };
        self.parts.push(part);
        Slot(self.parts.len() - 1)
    }

    /// The images each kind of pass will push through the network.
    pub fn rows(&self) -> PassRows {
        let mut r = PassRows::default();
        for p in &self.parts {
            let n = p.t.len();
            match p.kind {
                PassKind::Trained => r.trained += n,
                PassKind::BaseOfMain => r.up_path += n,
                PassKind::Constant => r.constant += n,
            }
        }
        r
    }
}

impl<B: TrainBackend> Forwards<B> {
    pub fn run(self, model: &UNet<B>) -> Outputs<B> {
        let n = self.parts.len();
        let mut eps: Vec<Option<Tensor<B, 4>>> = vec![None; n];
        let mut bottleneck: Vec<Option<Tensor<B, 4>>> = vec![None; n];
        for expert in [true, false] {
            let group: Vec<usize> = (0..n).filter(|&i| self.parts[i].expert == expert && self.parts[i].kind == PassKind::Trained).collect();
            if group.is_empty() {
                continue;
            }
            let device = self.parts[group[0]].x.device();
            let x = Tensor::cat(group.iter().map(|&i| self.parts[i].x.clone()).collect(), 0);
            let t: Vec<usize> = group.iter().flat_map(|&i| self.parts[i].t.iter().copied()).collect();
            let labels: Vec<i64> = group.iter().flat_map(|&i| self.parts[i].labels.iter().map(|&l| l as i64)).collect();
            let keep: Vec<f32> = group.iter().flat_map(|&i| self.parts[i].keep.iter().copied()).collect();
            let total = t.len();
            let labels = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [total]), &device);
            // Plain labels or none at all where the whole call agrees: exactly the DDPM forward.
            let cond = if keep.iter().all(|&k| k == 1.0) {
                ClassCond::Labels(labels)
            } else if keep.iter().all(|&k| k == 0.0) {
                ClassCond::Uncond
            } else {
                ClassCond::Masked { labels, keep: Tensor::from_data(TensorData::new(keep, [total]), &device) }
            };
            let trunk = model.trunk(x, &t, &cond);
            let (out, masks) = model.up_path(&trunk, expert);
            let mut at = 0;
            for &i in &group {
                let len = self.parts[i].t.len();
                eps[i] = Some(out.clone().narrow(0, at, len));
                bottleneck[i] = Some(trunk.h.clone().narrow(0, at, len));
                at += len;
            }
            // The main pass is the first rows of the first group: its θ^g twin reuses the trunk
            // and the main pass's dropout masks, so the two networks differ by the experts only.
            if expert {
                let main_rows = self.parts[0].t.len();
                for i in (0..n).filter(|&i| self.parts[i].kind == PassKind::BaseOfMain) {
                    eps[i] = Some(model.up_path_replay(&trunk, main_rows, false, &masks));
                    bottleneck[i] = Some(trunk.h.clone().narrow(0, 0, main_rows));
                }
            }
        }
        let constant: Vec<usize> = (0..n).filter(|&i| self.parts[i].kind == PassKind::Constant).collect();
        if !constant.is_empty() {
            let valid = model.valid();
            for i in constant {
                let p = &self.parts[i];
                let device = p.x.device();
                let labels = p.labels.iter().map(|&l| l as i64).collect::<Vec<_>>();
                let y = Tensor::from_data(TensorData::new(labels, [p.t.len()]), &device);
                let out = valid.forward(p.x.clone().inner(), &p.t, &ClassCond::Labels(y), true);
                eps[i] = Some(Tensor::from_inner(out.eps));
                bottleneck[i] = out.bottleneck.map(Tensor::from_inner);
            }
        }
        Outputs { eps: eps.into_iter().map(Option::unwrap).collect(), bottleneck: bottleneck.into_iter().map(Option::unwrap).collect() }
    }
}

/// A named loss term as it enters the total.
pub type Term<B> = (&'static str, Tensor<B, 1>);

/// One long-tail method. Every hook has a default that does nothing.
pub trait Method<B: TrainBackend>: Send {
    /// Replaces the regression target on the host, without gradients (OC). Returns the swaps
    /// it made, if it makes any.
    fn transform(&mut self, _batch: &mut HostBatch, _ctx: &StepContext) -> Option<TransferCounts> {
        None
    }

    /// Asks for extra passes in the step's batched forward.
    fn request(&mut self, _batch: &Batch<B>, _ctx: &StepContext, _fw: &mut Forwards<B>) {}

    /// The method's loss terms (scalars, weights applied).
    fn losses(&mut self, batch: &Batch<B>, ctx: &StepContext, out: &Outputs<B>, model: &UNet<B>) -> Vec<Term<B>>;
}

pub(crate) fn positive(name: &str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 { Ok(()) } else { Err(Error::option(name, format!("{v}: expected a positive number"))) }
}

pub(crate) fn non_negative(name: &str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 { Ok(()) } else { Err(Error::option(name, format!("{v}: expected a number ≥ 0"))) }
}

#[cfg(test)]
pub(crate) mod test_util {
    pub type AB = burn::backend::Autodiff<burn::backend::Flex>;
    use burn::prelude::*;

    pub fn t1(v: &[f32]) -> Tensor<AB, 1> {
        Tensor::from_floats(v, &Default::default())
    }

    pub fn vals<B: Backend, const D: usize>(x: Tensor<B, D>) -> Vec<f32> {
        x.into_data().convert::<f32>().to_vec().unwrap()
    }

    pub fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    /// Every parameter redrawn N(0, 0.05²) from `seed`: the output layers that start near
    /// zero, and CM's B = 0, would hide what a test looks for.
    pub fn redrawn(model: crate::model::UNet<AB>, seed: u64) -> crate::model::UNet<AB> {
        use crate::train::params::{self, NamedParam};
        let dev = Default::default();
        let mut r = crate::rng::rng(seed, crate::rng::Stream::Init, 0);
        let values = params::collect(&model)
            .into_iter()
            .map(|p| {
                let n = p.shape.iter().product::<usize>();
                let v: Vec<f32> = crate::rng::normal_vec(&mut r, n).into_iter().map(|z| 0.05 * z).collect();
                (p.path.clone(), NamedParam { value: Tensor::from_data(TensorData::new(v, [n]), &dev), ..p })
            })
            .collect();
        params::load(model, values).unwrap()
    }

    /// A batch of `n` random 1×8×8 images at the given t and labels, every label kept.
    pub fn random_batch(n: usize, t: Vec<usize>, labels: Vec<usize>, seed: u64) -> super::HostBatch {
        let mut r = crate::rng::rng(seed, crate::rng::Stream::Noise, 0);
        let eps = crate::rng::normal_vec(&mut r, n * 64);
        super::HostBatch {
            shape: [n, 1, 8, 8],
            x0: crate::rng::normal_vec(&mut r, n * 64),
            target: eps.clone(),
            eps,
            t,
            indices: (0..n).collect(),
            labels,
            keep: vec![true; n],
            uncond_batch: false,
        }
    }

    /// Σ of the squared gradients of every parameter of `model` from `loss`.
    pub fn grad_sq(model: &crate::model::UNet<AB>, loss: Tensor<AB, 1>) -> f64 {
        let grads = loss.backward();
        crate::train::optim::grad_squares::<AB, _>(model, &grads, &Default::default()).into_scalar() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Preset;
    use test_util::AB as F;

    /// The batched call gives each part what its own forward would.
    #[test]
    fn batched_forward_equals_separate_forwards() {
        let dev = Default::default();
        let mut cfg = Preset::Tiny.config(1, 3, 8).unwrap();
        cfg.low_rank_expert = true;
        let model: UNet<F> = cfg.init(&dev);
        let (n, len) = (3, 64);
        let mut r = crate::rng::rng(1, crate::rng::Stream::Noise, 0);
        let host = HostBatch {
            shape: [n, 1, 8, 8],
            x0: crate::rng::normal_vec(&mut r, n * len),
            eps: crate::rng::normal_vec(&mut r, n * len),
            target: vec![0.0; n * len],
            t: vec![10, 500, 990],
            indices: vec![0, 1, 2],
            labels: vec![0, 1, 2],
            keep: vec![true, false, true],
            uncond_batch: false,
        };
        let batch = Batch::<F>::upload(host, &Schedule::ddpm(), &dev);
        let mut fw = Forwards::new(&batch);
        let uncond = fw.add(batch.x_t.clone(), vec![10, 500, 990], vec![0, 1, 2], vec![false; 3], true);
        let other = fw.add(batch.x0.clone().narrow(0, 0, 2), vec![7, 8], vec![2, 2], vec![true, true], true);
        let base = fw.add_base_of_main();
        let constant = fw.add_constant(batch.x0.clone().narrow(0, 1, 2), vec![3, 4], vec![1, 0]);
        assert_eq!(fw.rows(), PassRows { trained: 3 + 3 + 2, up_path: 3, constant: 2 });
        let out = fw.run(&model);
        let diff = |a: Tensor<F, 4>, b: Tensor<F, 4>| a.sub(b).abs().max().into_scalar();
        let t = [10, 500, 990];
        let labels = Tensor::<F, 1, Int>::from_ints([0, 1, 2], &dev);
        let keep = Tensor::<F, 1>::from_floats([1.0, 0.0, 1.0], &dev);
        let main_cond = ClassCond::Masked { labels, keep };
        let main = model.forward(batch.x_t.clone(), &t, &main_cond, true);
        assert!(diff(out.eps(MAIN), main.eps) < 1e-5);
        assert!(diff(out.bottleneck(MAIN), main.bottleneck.unwrap()) < 1e-5);
        let u = model.forward(batch.x_t.clone(), &t, &ClassCond::Uncond, false).eps;
        assert!(diff(out.eps(uncond), u) < 1e-5);
        let o = model.forward(batch.x0.clone().narrow(0, 0, 2), &[7, 8], &ClassCond::Labels(Tensor::from_ints([2, 2], &dev)), false).eps;
        assert!(diff(out.eps(other), o) < 1e-5);
        let b = model.forward_with(batch.x_t.clone(), &t, &main_cond, false, false).eps;
        assert!(diff(out.eps(base), b) < 1e-5);
        let c = model.forward(batch.x0.clone().narrow(0, 1, 2), &[3, 4], &ClassCond::Labels(Tensor::from_ints([1, 0], &dev)), false).eps;
        assert!(diff(out.eps(constant), c) < 1e-5);
        // The constant pass is outside the graph: a loss on it alone reaches no parameter.
        let grads = out.eps(constant).sum().backward();
        assert_eq!(crate::train::optim::grad_norm(&model, &grads), 0.0, "no gradient through a constant pass");
        let grads = out.eps(other).sum().backward();
        assert!(crate::train::optim::grad_norm(&model, &grads) > 0.0);
    }

    /// The registry is the one list: names are unique, each switches its own table on, the
    /// label and the offered parameters follow from it.
    #[test]
    fn registry_names_tables_and_params() {
        let names = method_names();
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for entry in REGISTRY {
            for name in entry.names {
                let mut m = MethodsConfig::default();
                m.add(name).unwrap();
                assert_eq!(m.keys(), vec![entry.key], "{name}");
                assert!(m.check(None).is_ok());
                let params = offered_params(name).unwrap();
                assert!(params.iter().all(|(k, _)| k.starts_with(&format!("methods.{}.", entry.key))), "{name}: {params:?}");
            }
        }
        // OC's mode is its name, not a parameter; its other options are.
        let oc = offered_params("h2t").unwrap();
        assert!(oc.iter().any(|(k, v)| k == "methods.oc.resample" && v == "false"), "{oc:?}");
        assert!(!oc.iter().any(|(k, _)| k == "methods.oc.mode"));
        let mut m = MethodsConfig::default();
        m.add("cbdm").unwrap();
        m.add("cm").unwrap();
        assert_eq!(m.label(), "cbdm+t2h+cm", "CM brings T2H along");
        assert!(m.needs().experts);
        let e = m.add("dpo").unwrap_err().to_string();
        assert!(e.contains("dpo") && e.contains("cb-loss") && e.contains("t2h"), "{e}");
        m.add("ddpm").unwrap();
        assert_eq!(m.label(), "ddpm");
    }

    /// The worked example of docs/adding-a-method.md reaches the config through its one line.
    #[test]
    fn the_example_method_is_registered_by_its_one_line() {
        let entry = REGISTRY.iter().find(|e| e.names == ["cb-loss"]).expect("cb-loss registered");
        assert_eq!(entry.key, "cb_loss");
        let toml = "[cb_loss]\nbeta = 0.99\n";
        let m: MethodsConfig = toml::from_str(toml).unwrap();
        assert_eq!(m.cb_loss.as_ref().map(|c| c.beta), Some(0.99));
        assert_eq!(m.label(), "cb-loss");
        assert_eq!(offered_params("cb-loss").unwrap(), vec![("methods.cb_loss.beta".to_string(), "0.999".to_string())]);
    }

    #[test]
    fn pass_rows_flops_count_a_backward_as_two_forwards() {
        let f = ForwardFlops { trunk: 6.0, up_path: 4.0 };
        // 2 trained rows: 3·2·10; 1 up-path row: 3·4; 3 constant rows: 3·10.
        assert_eq!(PassRows { trained: 2, up_path: 1, constant: 3 }.flops(&f), 60.0 + 12.0 + 30.0);
    }
}
