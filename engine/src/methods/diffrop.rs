//! DiffROP (paper 002, SPEC §4.3): push apart the denoising means of different classes.
//!
//! For an anchor i and a partner j of another class at the anchor's t and ε (paper Eq. 12):
//! d_ij = ‖μ(x_t^i,t,c_i) − μ(x_t^j,t,c_j)‖², μ(x_t,t,c) = (x_t − β_t/√(1−ᾱ_t)·ε(x_t,t,c))/√α_t,
//! loss = mean over pairs of τ(t)·h(d). The paper publishes no training code: τ(t)'s form and
//! constants are ltlab's choice (τ(t) = w·exp(−t/(T·τ_r)), decreasing in t as the paper asks).

use crate::ops::FastBackend;
use super::{Batch, Forwards, MAIN, Method, MethodKind, MethodsConfig, Outputs, Slot, StepContext, Term, non_negative, positive};
use crate::diffusion::Schedule;
use crate::error::{Error, Result};
use crate::model::UNet;
use crate::rng::{self, Stream};
use burn::prelude::*;
use crate::ops::TrainBackend;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// h(d), the paper's Table 5 variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Form {
    /// e^{−d} (the paper's best).
    Exponential,
    /// 1/(1+d) (the paper's Algorithm 1).
    Reciprocal,
    /// max(0, m − d).
    Hinge,
    /// −d (diverges; kept for the ablation).
    NegativeL2,
}

/// Which different-class partners each anchor gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Partners {
    /// One random different-class image of the batch per anchor (one extra forward).
    Random,
    /// Every different-class image of the batch (B·(B−1) extra rows at most: small batches).
    All,
}

/// How ‖·‖² sums over pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Distance {
    /// The squared norm (the paper).
    Sum,
    /// The squared norm divided by the number of elements.
    Mean,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiffRopConfig {
    pub form: Form,
    /// Hinge margin m.
    pub margin: f64,
    pub partners: Partners,
    pub distance: Distance,
    /// τ(t) = weight·exp(−t/(T·tau_r)) (unconfirmed form and constants).
    pub weight: f64,
    pub tau_r: f64,
    /// Back-propagate through the partner's μ too (the loss as written). `false` treats the
    /// partner pass as a constant: no backward for its rows, about a third of the extra cost.
    pub partner_grad: bool,
}

impl Default for DiffRopConfig {
    fn default() -> Self {
        Self { form: Form::Exponential, margin: 1.0, partners: Partners::Random, distance: Distance::Sum, weight: 1.0, tau_r: 0.5, partner_grad: true }
    }
}

impl DiffRopConfig {
    pub fn check(&self) -> Result<()> {
        non_negative("methods.diffrop.weight", self.weight)?;
        positive("methods.diffrop.tau_r", self.tau_r)?;
        if self.form == Form::Hinge {
            positive("methods.diffrop.margin", self.margin)?;
        } else if self.margin != 1.0 {
            return Err(Error::option("methods.diffrop.margin", "only the hinge form has a margin: set form = \"hinge\" or drop margin"));
        }
        Ok(())
    }

    /// τ(t).
    pub fn tau(&self, t: usize, t_total: usize) -> f64 {
        self.weight * (-(t as f64) / (t_total as f64 * self.tau_r)).exp()
    }
}

impl MethodKind for DiffRopConfig {
    const NAMES: &'static [&'static str] = &["diffrop"];
    const SUMMARY: &'static str = "probabilistic contrastive loss between the posterior means of different classes at the same t and ε";
    const TERMS: &'static [&'static str] = &["diffrop"];
    const COST_TARGET: Option<f64> = Some(1.6);

    fn validate(&self, _: &MethodsConfig) -> Result<()> {
        self.check()
    }

    fn build<B: TrainBackend>(&self) -> Box<dyn Method<B>> {
        Box::new(DiffRop::<B>::new(self.clone()))
    }
}

pub struct DiffRop<B: Backend> {
    cfg: DiffRopConfig,
    /// This step's (anchor, partner) pairs and the partners' pass: its slot (trained, or a
    /// constant without `partner_grad`), x_t and t.
    pairs: Vec<(usize, usize)>,
    partners: Option<(Slot, Tensor<B, 4>, Vec<usize>)>,
}

impl<B: FastBackend> DiffRop<B> {
    pub fn new(cfg: DiffRopConfig) -> Self {
        Self { cfg, pairs: vec![], partners: None }
    }
}

/// The anchor/partner pairs among kept-label samples, a pure function of (seed, step).
pub fn pick_pairs(labels: &[usize], keep: &[bool], partners: Partners, seed: u64, step: u64) -> Vec<(usize, usize)> {
    let mut r = rng::rng(seed, Stream::DiffRop, step);
    let mut pairs = Vec::new();
    for i in (0..labels.len()).filter(|&i| keep[i]) {
        let others: Vec<usize> = (0..labels.len()).filter(|&j| keep[j] && labels[j] != labels[i]).collect();
        match partners {
            Partners::Random if !others.is_empty() => pairs.push((i, others[r.random_range(0..others.len())])),
            Partners::Random => {}
            Partners::All => pairs.extend(others.into_iter().map(|j| (i, j))),
        }
    }
    pairs
}

/// μ(x_t, t, ε̂) = (x_t − β_t/√(1−ᾱ_t)·ε̂)/√α_t per sample.
pub fn mu<B: FastBackend>(x_t: Tensor<B, 4>, eps_hat: Tensor<B, 4>, t: &[usize], schedule: &Schedule) -> Tensor<B, 4> {
    let device = x_t.device();
    let n = t.len();
    let c_eps: Vec<f32> = t.iter().map(|&t| (schedule.betas[t] / (1.0 - schedule.alpha_bar[t]).sqrt()) as f32).collect();
    let inv: Vec<f32> = t.iter().map(|&t| (1.0 / (1.0 - schedule.betas[t]).sqrt()) as f32).collect();
    let c_eps = Tensor::<B, 1>::from_data(TensorData::new(c_eps, [n]), &device).reshape([n, 1, 1, 1]);
    let inv = Tensor::<B, 1>::from_data(TensorData::new(inv, [n]), &device).reshape([n, 1, 1, 1]);
    (x_t - eps_hat * c_eps) * inv
}

/// h(d) element-wise.
pub fn h<B: FastBackend>(form: Form, margin: f64, d: Tensor<B, 1>) -> Tensor<B, 1> {
    match form {
        Form::Exponential => d.neg().exp(),
        Form::Reciprocal => d.add_scalar(1.0).recip(),
        Form::Hinge => d.neg().add_scalar(margin).clamp_min(0.0),
        Form::NegativeL2 => d.neg(),
    }
}

fn index<B: FastBackend>(v: Vec<usize>, device: &B::Device) -> Tensor<B, 1, Int> {
    let n = v.len();
    Tensor::from_data(TensorData::new(v.into_iter().map(|i| i as i64).collect::<Vec<_>>(), [n]), device)
}

impl<B: TrainBackend> Method<B> for DiffRop<B> {
    fn request(&mut self, batch: &Batch<B>, ctx: &StepContext, fw: &mut Forwards<B>) {
        let hb = &batch.host;
        self.partners = None;
        // Classes are what the term separates: nothing to do without labels.
        self.pairs = if hb.uncond_batch { vec![] } else { pick_pairs(&hb.labels, &hb.keep, self.cfg.partners, ctx.seed, ctx.step) };
        if self.pairs.is_empty() {
            return;
        }
        let (x_p, t, labels) = partner_inputs(batch, &self.pairs, ctx.schedule);
        let slot = if self.cfg.partner_grad {
            fw.add(x_p.clone(), t.clone(), labels, vec![true; self.pairs.len()], true)
        } else {
            fw.add_constant(x_p.clone(), t.clone(), labels)
        };
        self.partners = Some((slot, x_p, t));
    }

    fn losses(&mut self, batch: &Batch<B>, ctx: &StepContext, out: &Outputs<B>, _model: &UNet<B>) -> Vec<Term<B>> {
        let Some((slot, x_p, t)) = self.partners.take() else { return vec![] };
        let device = batch.x0.device();
        let a: Vec<usize> = self.pairs.iter().map(|p| p.0).collect();
        let ia = index::<B>(a, &device);
        let mu_a = mu(batch.x_t.clone().select(0, ia.clone()), out.eps(MAIN).select(0, ia), &t, ctx.schedule);
        let mu_p = mu(x_p, out.eps(slot), &t, ctx.schedule);
        let d = pair_distance(mu_a, mu_p, self.cfg.distance);
        let tau: Vec<f32> = t.iter().map(|&t| self.cfg.tau(t, ctx.schedule.len()) as f32).collect();
        let n = tau.len();
        let tau = Tensor::<B, 1>::from_data(TensorData::new(tau, [n]), &device);
        vec![("diffrop", (h(self.cfg.form, self.cfg.margin, d) * tau).mean())]
    }
}

/// The partners' images re-noised with their anchors' t and ε, the anchors' t, the partners'
/// labels.
fn partner_inputs<B: FastBackend>(batch: &Batch<B>, pairs: &[(usize, usize)], schedule: &Schedule) -> (Tensor<B, 4>, Vec<usize>, Vec<usize>) {
    let device = batch.x0.device();
    let (a, p): (Vec<usize>, Vec<usize>) = pairs.iter().copied().unzip();
    let x0_p = batch.x0.clone().select(0, index::<B>(p.clone(), &device));
    let eps_a = batch.eps.clone().select(0, index::<B>(a.clone(), &device));
    let t: Vec<usize> = a.iter().map(|&i| batch.host.t[i]).collect();
    (schedule.noise(x0_p, eps_a, &t), t, p.iter().map(|&j| batch.host.labels[j]).collect())
}

/// d per pair: ‖μ_a − μ_p‖² summed (or averaged) over elements.
pub fn pair_distance<B: FastBackend>(mu_a: Tensor<B, 4>, mu_p: Tensor<B, 4>, distance: Distance) -> Tensor<B, 1> {
    let [n, c, hh, w] = mu_a.dims();
    let sq = (mu_a - mu_p).powi_scalar(2).reshape([n, c * hh * w]);
    match distance {
        Distance::Sum => sq.sum_dim(1).reshape([n]),
        Distance::Mean => sq.mean_dim(1).reshape([n]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::test_util::*;

    #[test]
    fn mu_by_hand() {
        let s = Schedule::ddpm();
        let t = 500;
        let (b, ab) = (s.betas[t], s.alpha_bar[t]);
        let x = Tensor::<AB, 4>::from_floats([[[[0.7, -0.2]]]], &Default::default());
        let e = Tensor::<AB, 4>::from_floats([[[[0.1, 0.5]]]], &Default::default());
        let m = vals(mu(x, e, &[t], &s));
        for (k, (xv, ev)) in [(0.7, 0.1), (-0.2, 0.5)].into_iter().enumerate() {
            let want = (xv - b / (1.0 - ab).sqrt() * ev) / (1.0 - b).sqrt();
            assert!(close(m[k] as f64, want, 1e-6), "{m:?}");
        }
    }

    #[test]
    fn each_h_by_hand() {
        let d = [0.0f32, 0.5, 2.0];
        let get = |f| vals(h(f, 1.0, t1(&d)));
        let e = get(Form::Exponential);
        let r = get(Form::Reciprocal);
        let g = get(Form::Hinge);
        let n = get(Form::NegativeL2);
        for k in 0..3 {
            let dk = d[k] as f64;
            assert!(close(e[k] as f64, (-dk).exp(), 1e-6));
            assert!(close(r[k] as f64, 1.0 / (1.0 + dk), 1e-6));
            assert!(close(g[k] as f64, (1.0 - dk).max(0.0), 1e-6));
            assert!(close(n[k] as f64, -dk, 1e-6));
        }
    }

    #[test]
    fn distance_sums_or_averages() {
        let a = Tensor::<AB, 4>::from_floats([[[[1.0, 2.0]]]], &Default::default());
        let b = Tensor::<AB, 4>::from_floats([[[[0.0, 4.0]]]], &Default::default());
        assert_eq!(vals(pair_distance(a.clone(), b.clone(), Distance::Sum)), vec![5.0]);
        assert_eq!(vals(pair_distance(a, b, Distance::Mean)), vec![2.5]);
    }

    #[test]
    fn tau_decreases_in_t() {
        let c = DiffRopConfig::default();
        assert_eq!(c.tau(0, 1000), 1.0);
        assert!(close(c.tau(500, 1000), (-1.0f64).exp(), 1e-12));
        assert!(c.tau(900, 1000) < c.tau(100, 1000));
    }

    #[test]
    fn partners_are_of_another_class() {
        let labels = [0, 0, 1, 2];
        let keep = [true, true, true, false];
        let p = pick_pairs(&labels, &keep, Partners::Random, 1, 0);
        assert_eq!(p.len(), 3, "sample 3's label was dropped");
        assert!(p.iter().all(|&(i, j)| labels[i] != labels[j] && j != 3));
        let all = pick_pairs(&labels, &keep, Partners::All, 1, 0);
        assert_eq!(all, vec![(0, 2), (1, 2), (2, 0), (2, 1)]);
        assert!(pick_pairs(&[1, 1], &[true, true], Partners::Random, 1, 0).is_empty());
    }

    fn tensor(v: &[f32], shape: [usize; 4]) -> Tensor<AB, 4> {
        Tensor::from_data(TensorData::new(v.to_vec(), shape), &Default::default())
    }

    /// Three 2-pixel samples of classes 0, 1, 1 at different t.
    fn host(uncond_batch: bool) -> crate::methods::HostBatch {
        crate::methods::HostBatch {
            shape: [3, 1, 1, 2],
            x0: vec![0.9, -0.8, -0.3, 0.6, 0.5, 0.1],
            eps: vec![0.7, 0.4, -1.2, 0.3, 0.2, -0.5],
            target: vec![0.7, 0.4, -1.2, 0.3, 0.2, -0.5],
            t: vec![100, 400, 900],
            indices: vec![0, 1, 2],
            labels: vec![0, 1, 1],
            keep: vec![true; 3],
            uncond_batch,
        }
    }

    /// x_t of image `img` noised with sample `a`'s t and ε, in f64 from ᾱ:
    /// √ᾱ_{t_a}·x0_img + √(1−ᾱ_{t_a})·ε_a.
    fn noised(h: &crate::methods::HostBatch, s: &Schedule, img: usize, a: usize) -> Vec<f64> {
        let ab = s.alpha_bar[h.t[a]];
        (0..2).map(|k| ab.sqrt() * h.x0[img * 2 + k] as f64 + (1.0 - ab).sqrt() * h.eps[a * 2 + k] as f64).collect()
    }

    /// The partner pass `request` adds: each partner re-noised with its ANCHOR's t and ε, with
    /// the partner's label; trained or constant as `partner_grad` says.
    #[test]
    fn partners_are_noised_with_the_anchors_t_and_eps() {
        let s = Schedule::ddpm();
        let ctx = StepContext { schedule: &s, counts: &[1, 2], q: &[1.0 / 3.0, 2.0 / 3.0], seed: 5, step: 9 };
        let h = host(false);
        let batch = upload(h.clone(), &s);
        for (partners, grad) in [(Partners::All, true), (Partners::Random, false)] {
            let mut m = DiffRop::<AB>::new(DiffRopConfig { partners, partner_grad: grad, ..Default::default() });
            let mut fw = Forwards::new(&batch);
            m.request(&batch, &ctx, &mut fw);
            let pairs = pick_pairs(&h.labels, &h.keep, partners, 5, 9);
            if partners == Partners::All {
                assert_eq!(pairs, vec![(0, 1), (0, 2), (1, 0), (2, 0)]);
            }
            assert_eq!(m.pairs, pairs);
            assert_eq!(fw.parts.len(), 2);
            let p = &fw.parts[1];
            assert_eq!(p.kind, if grad { crate::methods::forwards::PassKind::Trained } else { crate::methods::forwards::PassKind::Constant });
            assert_eq!(p.t, pairs.iter().map(|&(a, _)| h.t[a]).collect::<Vec<_>>(), "the anchors' t");
            assert_eq!(p.labels, pairs.iter().map(|&(_, j)| h.labels[j]).collect::<Vec<_>>(), "the partners' labels");
            assert_eq!(p.keep, vec![1.0; pairs.len()]);
            let x = vals(p.x.clone());
            for (k, &(a, j)) in pairs.iter().enumerate() {
                let want = noised(&h, &s, j, a);
                // Not the partner's own noising: that would be a different image.
                let own = noised(&h, &s, j, j);
                for e in 0..2 {
                    assert!(close(x[k * 2 + e] as f64, want[e], 1e-5), "pair {k}: {x:?} vs {want:?}");
                    assert!((want[e] - own[e]).abs() > 1e-2);
                }
            }
        }
        // A label-dropped batch has no pairs and asks for no pass.
        let dropped = upload(host(true), &s);
        let mut m = DiffRop::<AB>::new(DiffRopConfig::default());
        let mut fw = Forwards::new(&dropped);
        m.request(&dropped, &ctx, &mut fw);
        assert!(m.pairs.is_empty() && m.partners.is_none() && fw.parts.len() == 1);
    }

    /// `losses` on hand-made predictions: the anchor's μ from the main pass, the partner's from
    /// its slot, both at the anchor's t; mean over pairs of τ(t_a)·h(d).
    #[test]
    fn losses_by_hand_over_all_pairs() {
        let dev = Default::default();
        let s = Schedule::ddpm();
        let ctx = StepContext { schedule: &s, counts: &[1, 2], q: &[1.0 / 3.0, 2.0 / 3.0], seed: 5, step: 9 };
        let h = host(false);
        let batch = upload(h.clone(), &s);
        let cfg = DiffRopConfig { form: Form::Reciprocal, partners: Partners::All, weight: 2.0, tau_r: 0.5, ..Default::default() };
        let mut m = DiffRop::<AB>::new(cfg.clone());
        let mut fw = Forwards::new(&batch);
        m.request(&batch, &ctx, &mut fw);
        // Pairs (0,1), (0,2), (1,0), (2,0).
        let eps_main = [0.5f32, -0.1, 0.2, 0.3, -0.4, 0.6];
        let eps_part = [0.1f32, 0.2, -0.3, 0.4, 0.0, -0.2, 0.8, 0.1];
        let zeros = |n| Tensor::<AB, 4>::zeros([n, 1, 1, 1], &dev);
        let out = Outputs { eps: vec![tensor(&eps_main, [3, 1, 1, 2]), tensor(&eps_part, [4, 1, 1, 2])], bottleneck: vec![zeros(3), zeros(4)] };
        let model: UNet<AB> = crate::model::Preset::Tiny.config(1, 3, 8).unwrap().init(&dev);
        let terms = m.losses(&batch, &ctx, &out, &model);
        assert_eq!(terms.len(), 1);
        assert_eq!(terms[0].0, "diffrop");
        let got = vals(terms[0].1.clone())[0] as f64;
        // μ = (x_t − β_t/√(1−ᾱ_t)·ε̂)/√(1−β_t), everything at the anchor's t.
        let mu = |x: &[f64], e: &[f32], t: usize| -> Vec<f64> {
            let (b, ab) = (s.betas[t], s.alpha_bar[t]);
            (0..2).map(|k| (x[k] - b / (1.0 - ab).sqrt() * e[k] as f64) / (1.0 - b).sqrt()).collect()
        };
        let pairs = [(0, 1), (0, 2), (1, 0), (2, 0)];
        let mut want = 0.0;
        for (k, &(a, j)) in pairs.iter().enumerate() {
            let t = h.t[a];
            let mu_a = mu(&noised(&h, &s, a, a), &eps_main[a * 2..a * 2 + 2], t);
            let mu_p = mu(&noised(&h, &s, j, a), &eps_part[k * 2..k * 2 + 2], t);
            let d: f64 = (0..2).map(|e| (mu_a[e] - mu_p[e]).powi(2)).sum();
            let tau = 2.0 * (-(t as f64) / (1000.0 * 0.5)).exp();
            want += tau / (1.0 + d);
        }
        want /= 4.0;
        assert!(close(got, want, 1e-5), "{got} vs {want}");
    }

    /// The term's gradient reaches the network through the partner pass (partner_grad: the
    /// loss as written) or not (a constant pass): the parameters' gradient equals that of the
    /// same loss built from two plain forwards, the partner's in the graph or detached.
    #[test]
    fn the_partner_pass_gets_the_gradient_as_configured() {
        use crate::model::ClassCond;
        let dev = Default::default();
        let s = Schedule::ddpm();
        let ctx = StepContext { schedule: &s, counts: &[2, 2], q: &[0.5, 0.5], seed: 5, step: 9 };
        let model = redrawn(crate::model::Preset::Tiny.config(1, 2, 8).unwrap().init(&dev), 4);
        let hb = random_batch(4, vec![50, 300, 600, 150], vec![0, 1, 0, 1], 2);
        let batch = upload(hb.clone(), &s);
        let labels = |v: &[usize]| Tensor::<AB, 1, Int>::from_data(TensorData::new(v.iter().map(|&y| y as i64).collect::<Vec<_>>(), [v.len()]), &dev);
        // Reciprocal h on the mean distance keeps d small, so h'(d) is far from 0.
        let mut got = vec![];
        for partner_grad in [true, false] {
            let cfg = DiffRopConfig { form: Form::Reciprocal, distance: Distance::Mean, partners: Partners::All, partner_grad, ..Default::default() };
            let mut m = DiffRop::<AB>::new(cfg.clone());
            let mut fw = Forwards::new(&batch);
            m.request(&batch, &ctx, &mut fw);
            let out = fw.run(&model);
            let method = grad_sq(&model, m.losses(&batch, &ctx, &out, &model).remove(0).1);
            // By hand: the main pass and the partners' pass as two forwards.
            let pairs = m.pairs.clone();
            assert_eq!(pairs.len(), 8);
            let eps_main = model.forward(batch.x_t.clone(), &hb.t, &ClassCond::Labels(labels(&hb.labels)), false).eps;
            let (x_p, t_a, lab_p) = partner_inputs(&batch, &pairs, &s);
            let mut eps_p = model.forward(x_p.clone(), &t_a, &ClassCond::Labels(labels(&lab_p)), false).eps;
            if !partner_grad {
                eps_p = eps_p.detach();
            }
            let ia = index::<AB>(pairs.iter().map(|p| p.0).collect(), &dev);
            let mu_a = mu(batch.x_t.clone().select(0, ia.clone()), eps_main.select(0, ia), &t_a, &s);
            let d = pair_distance(mu_a, mu(x_p, eps_p, &t_a, &s), cfg.distance);
            let tau: Vec<f32> = t_a.iter().map(|&t| cfg.tau(t, 1000) as f32).collect();
            let want = grad_sq(&model, (h(cfg.form, cfg.margin, d) * t1(&tau)).mean());
            assert!(want > 1e-12, "a real gradient");
            assert!(close(method, want, 1e-4), "partner_grad = {partner_grad}: {method} vs {want}");
            got.push(method);
        }
        assert!((got[0] - got[1]).abs() > 1e-2 * got[0], "the partner's gradient matters: {got:?}");
    }
}
