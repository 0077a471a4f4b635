//! The step's batched forward: the main pass and every pass the methods ask for, gathered
//! into one call per expert setting (CBDM's y′ pass, CCUA's unconditional pass and DiffROP's
//! partners ride along with the main batch); a pass whose output is a constant of the loss runs
//! outside the autodiff graph. [`Forwards::rows`] counts what each kind costs.

use super::Batch;
use crate::model::{ClassCond, ForwardFlops, UNet};
use crate::ops::{FastBackend, TrainBackend};
use burn::module::AutodiffModule;
use burn::prelude::*;

/// Handle of one part of the step's batched forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(pub(super) usize);

/// The main forward pass of a step: slot 0.
pub const MAIN: Slot = Slot(0);

/// How a part is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PassKind {
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

pub(super) struct Part<B: Backend> {
    pub(super) kind: PassKind,
    pub(super) x: Tensor<B, 4>,
    pub(super) t: Vec<usize>,
    pub(super) labels: Vec<usize>,
    /// 1 = conditional, 0 = unconditional, per sample.
    pub(super) keep: Vec<f32>,
    pub(super) expert: bool,
}

/// Every forward pass a step needs, run as one batched call per expert setting.
pub struct Forwards<B: Backend> {
    pub(super) parts: Vec<Part<B>>,
}

/// The outputs of [`Forwards::run`], by slot.
pub struct Outputs<B: Backend> {
    pub(super) eps: Vec<Tensor<B, 4>>,
    pub(super) bottleneck: Vec<Tensor<B, 4>>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diffusion::Schedule;
    use crate::methods::HostBatch;
    use crate::methods::test_util::{AB as F, random_batch, upload};
    use crate::model::Preset;

    /// The batched call gives each part what its own forward would.
    #[test]
    fn batched_forward_equals_separate_forwards() {
        let dev = Default::default();
        let mut cfg = Preset::Tiny.config(1, 3, 8).unwrap();
        cfg.low_rank_expert = true;
        let model: UNet<F> = cfg.init(&dev);
        let host = HostBatch { keep: vec![true, false, true], ..random_batch(3, vec![10, 500, 990], vec![0, 1, 2], 1) };
        let batch = upload(host, &Schedule::ddpm());
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

    #[test]
    fn pass_rows_flops_count_a_backward_as_two_forwards() {
        let f = ForwardFlops { trunk: 6.0, up_path: 4.0 };
        // 2 trained rows: 3·2·10; 1 up-path row: 3·4; 3 constant rows: 3·10.
        assert_eq!(PassRows { trained: 2, up_path: 1, constant: 3 }.flops(&f), 60.0 + 12.0 + 30.0);
    }
}
