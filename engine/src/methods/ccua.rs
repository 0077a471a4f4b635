//! CCUA (paper 001, SPEC §4.4): an unsupervised contrastive loss on the unconditional
//! bottleneck (UCL) plus conditional/unconditional alignment (AL).
//!
//! h = the flattened, L2-normalised bottleneck of an unconditional forward on the same x_t, t.
//! UCL_i = −log(e^{1/τ}/(e^{1/τ} + Σ_{j≠i} e^{h_i·h_j/τ})) weighted by t_i/T, every batch: an
//! InfoNCE whose only positive is the anchor itself. AL = (t/T)·‖ε(x_t,y) − ε(x_t,∅)‖² in
//! kept-label batches, gradients through both. The unconditional pass rides in the step's
//! batched forward; in a label-dropped batch the main pass already is unconditional.

use crate::ops::FastBackend;
use super::{Batch, Forwards, MAIN, Method, MethodKind, MethodsConfig, Outputs, Slot, StepContext, Term, non_negative, per_sample_mean, positive};
use crate::data::sampler::BatchSampler;
use crate::error::{Error, Result};
use crate::model::UNet;
use burn::prelude::*;
use crate::ops::TrainBackend;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CcuaConfig {
    /// Weight of UCL (U-Net reference 1.0; the paper's 0.05 is for the transformer).
    pub alpha: f64,
    /// Weight of AL.
    pub gamma: f64,
    pub temperature: f64,
    /// The brs batch sampler's f (0.1 in the paper); none keeps the run's sampler.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brs: Option<f64>,
}

impl Default for CcuaConfig {
    fn default() -> Self {
        Self { alpha: 1.0, gamma: 1.0, temperature: 0.1, brs: None }
    }
}

impl CcuaConfig {
    pub fn check(&self) -> Result<()> {
        non_negative("methods.ccua.alpha", self.alpha)?;
        non_negative("methods.ccua.gamma", self.gamma)?;
        positive("methods.ccua.temperature", self.temperature)?;
        if let Some(f) = self.brs
            && !(f > 0.0 && f <= 1.0)
        {
            return Err(Error::option("methods.ccua.brs", format!("{f}: expected f in (0, 1]")));
        }
        Ok(())
    }

}

impl MethodKind for CcuaConfig {
    const NAMES: &'static [&'static str] = &["ccua"];
    const SUMMARY: &'static str = "unsupervised contrastive loss on the unconditional bottleneck + conditional/unconditional alignment";
    const TERMS: &'static [&'static str] = &["ccua_ucl", "ccua_al"];
    const COST_TARGET: Option<f64> = Some(1.3);

    fn validate(&self, _: &MethodsConfig) -> Result<()> {
        self.check()
    }

    fn sampler_request(&self) -> Option<(&'static str, BatchSampler)> {
        self.brs.map(|f| ("brs", BatchSampler::Brs { f }))
    }

    fn build<B: TrainBackend>(&self) -> Box<dyn Method<B>> {
        Box::new(Ccua::new(self.clone()))
    }
}

pub struct Ccua {
    cfg: CcuaConfig,
    uncond: Option<Slot>,
}

impl Ccua {
    pub fn new(cfg: CcuaConfig) -> Self {
        Self { cfg, uncond: None }
    }
}

/// Flatten and L2-normalise each row: `[N, C, H, W] → [N, C·H·W]`.
pub fn normalise_rows<B: FastBackend>(x: Tensor<B, 4>) -> Tensor<B, 2> {
    let [n, c, h, w] = x.dims();
    let x = x.reshape([n, c * h * w]);
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

/// Per-anchor InfoNCE with the anchor as its own positive (`h` rows unit-norm):
/// log(e^{1/τ} + Σ_{j≠i} e^{h_i·h_j/τ}) − 1/τ. The self-similarity is set to exactly 1/τ.
pub fn ucl_per_anchor<B: FastBackend>(h: Tensor<B, 2>, temperature: f64) -> Tensor<B, 1> {
    let [n, _] = h.dims();
    let device = h.device();
    let inv_t = 1.0 / temperature;
    let sim = h.clone().matmul(h.transpose()).mul_scalar(inv_t);
    let eye = Tensor::<B, 2>::eye(n, &device);
    let logits = sim * (eye.clone().neg().add_scalar(1.0)) + eye.mul_scalar(inv_t);
    let max = logits.clone().max_dim(1).detach();
    let lse = (logits - max.clone()).exp().sum_dim(1).log() + max;
    lse.reshape([n]).sub_scalar(inv_t)
}

/// AL = mean(w·‖ε(x_t,y) − ε(x_t,∅)‖²), gradients through both predictions.
pub fn alignment<B: FastBackend>(eps_cond: Tensor<B, 4>, eps_uncond: Tensor<B, 4>, w: Tensor<B, 1>) -> Tensor<B, 1> {
    (per_sample_mean((eps_cond - eps_uncond).powi_scalar(2)) * w).mean()
}

impl<B: TrainBackend> Method<B> for Ccua {
    fn request(&mut self, batch: &Batch<B>, _ctx: &StepContext, fw: &mut Forwards<B>) {
        let hb = &batch.host;
        self.uncond = (!hb.uncond_batch).then(|| fw.add(batch.x_t.clone(), hb.t.clone(), hb.labels.clone(), vec![false; hb.len()], true));
    }

    fn losses(&mut self, batch: &Batch<B>, ctx: &StepContext, out: &Outputs<B>, _model: &UNet<B>) -> Vec<Term<B>> {
        let tf = batch.per_sample(batch.t_frac(ctx.schedule));
        let uncond = self.uncond.unwrap_or(MAIN);
        let h = normalise_rows(out.bottleneck(uncond));
        let ucl = (ucl_per_anchor(h, self.cfg.temperature) * tf.clone()).mean().mul_scalar(self.cfg.alpha);
        let mut terms = vec![("ccua_ucl", ucl)];
        if let Some(slot) = self.uncond {
            let w = tf * batch.per_sample(batch.keep_mask());
            terms.push(("ccua_al", alignment(out.eps(MAIN), out.eps(slot), w).mul_scalar(self.cfg.gamma)));
        }
        terms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::test_util::*;

    #[test]
    fn infonce_negatives_only_by_hand() {
        let dev = Default::default();
        // Three unit vectors in 2-D: e1, e2 and (e1+e2)/√2.
        let s = std::f32::consts::FRAC_1_SQRT_2;
        let h = Tensor::<AB, 2>::from_floats([[1.0, 0.0], [0.0, 1.0], [s, s]], &dev);
        let tau = 0.5;
        let got = vals(ucl_per_anchor(h, tau));
        let dot = [[1.0, 0.0, s as f64], [0.0, 1.0, s as f64], [s as f64, s as f64, 1.0]];
        for i in 0..3 {
            let pos = (1.0 / tau).exp();
            let neg: f64 = (0..3).filter(|&j| j != i).map(|j| (dot[i][j] / tau).exp()).sum();
            let want = -(pos / (pos + neg)).ln();
            assert!(close(got[i] as f64, want, 1e-5), "{i}: {} vs {want}", got[i]);
        }
        // One anchor alone: no negatives, zero loss.
        let one = vals(ucl_per_anchor(Tensor::<AB, 2>::from_floats([[0.6, 0.8]], &dev), 0.1));
        assert!(one[0].abs() < 1e-6);
    }

    #[test]
    fn alignment_by_hand_with_gradients_to_both() {
        let dev = Default::default();
        let c = Tensor::<AB, 4>::from_floats([[[[1.0, 3.0]]]], &dev).require_grad();
        let u = Tensor::<AB, 4>::from_floats([[[[0.0, 1.0]]]], &dev).require_grad();
        // w = t/T = 0.5: 0.5·(1 + 4)/2 = 1.25.
        let al = alignment(c.clone(), u.clone(), t1(&[0.5]));
        assert!(close(vals(al.clone())[0] as f64, 1.25, 1e-6));
        let g = al.backward();
        // d/dc = w·2(c − u)/2 = [0.5, 1.0]; d/du = −d/dc: no stop-gradient on either side.
        assert_eq!(vals(c.grad(&g).unwrap()), vec![0.5, 1.0]);
        assert_eq!(vals(u.grad(&g).unwrap()), vec![-0.5, -1.0]);
    }

    #[test]
    fn rows_are_unit_norm() {
        let x = Tensor::<AB, 4>::from_floats([[[[3.0, 4.0]]], [[[0.0, 2.0]]]], &Default::default());
        assert_eq!(vals(normalise_rows(x)), vec![0.6, 0.8, 0.0, 1.0]);
    }

    fn tensor(v: &[f32], shape: [usize; 4]) -> Tensor<AB, 4> {
        Tensor::from_data(TensorData::new(v.to_vec(), shape), &Default::default())
    }

    /// UCL by an independent loop: α·mean_i (t_i/T)·−log(e^{1/τ}/(e^{1/τ} + Σ_{j≠i} e^{h_i·h_j/τ})).
    fn ucl_by_hand(h: &[[f64; 2]], tf: &[f64], tau: f64, alpha: f64) -> f64 {
        let unit: Vec<[f64; 2]> = h.iter().map(|v| {
            let n = (v[0] * v[0] + v[1] * v[1]).sqrt();
            [v[0] / n, v[1] / n]
        }).collect();
        let n = h.len();
        let mut total = 0.0;
        for i in 0..n {
            let pos = (1.0 / tau).exp();
            let neg: f64 = (0..n).filter(|&j| j != i).map(|j| ((unit[i][0] * unit[j][0] + unit[i][1] * unit[j][1]) / tau).exp()).sum();
            total += tf[i] * -(pos / (pos + neg)).ln();
        }
        alpha * total / n as f64
    }

    /// The wiring of `request` and `losses`: UCL reads the unconditional pass's bottleneck
    /// (never the main pass's) weighted by t/T; AL compares the main and unconditional ε.
    #[test]
    fn request_and_losses_read_the_unconditional_pass() {
        let dev = Default::default();
        let s = crate::diffusion::Schedule::ddpm();
        let ctx = StepContext { schedule: &s, counts: &[1, 1, 1], q: &[1.0 / 3.0; 3], seed: 1, step: 0 };
        let host = small_batch(vec![200, 500, 800]);
        let batch = upload(host.clone(), &s);
        let cfg = CcuaConfig { alpha: 0.5, gamma: 2.0, temperature: 0.5, brs: None };
        let mut m = Ccua::new(cfg.clone());
        let mut fw = Forwards::new(&batch);
        m.request(&batch, &ctx, &mut fw);
        assert_eq!(m.uncond, Some(Slot(1)));
        let p = &fw.parts[1];
        assert_eq!(vals(p.x.clone()), vals(batch.x_t.clone()), "same x_t");
        assert_eq!(p.t, host.t, "same t");
        assert_eq!(p.keep, vec![0.0; 3], "every sample unconditional");

        // Main bottleneck: three copies of e1; unconditional: [2,0], [0,3], [1,1] (unit after
        // normalising: e1, e2, (e1+e2)/√2).
        let main_h = [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]];
        let uncond_h = [[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]];
        let flat = |h: &[[f64; 2]; 3]| h.iter().flatten().map(|&v| v as f32).collect::<Vec<_>>();
        // ε(x_t,y) = [1,3 | 0,0 | 2,2], ε(x_t,∅) = [0,1 | 0,2 | 2,2]: per-sample MSE [2.5, 2, 0].
        let eps_c = tensor(&[1.0, 3.0, 0.0, 0.0, 2.0, 2.0], [3, 1, 1, 2]);
        let eps_u = tensor(&[0.0, 1.0, 0.0, 2.0, 2.0, 2.0], [3, 1, 1, 2]);
        let out = Outputs { eps: vec![eps_c, eps_u.clone()], bottleneck: vec![tensor(&flat(&main_h), [3, 2, 1, 1]), tensor(&flat(&uncond_h), [3, 2, 1, 1])] };
        let model: UNet<AB> = crate::model::Preset::Tiny.config(1, 3, 8).unwrap().init(&dev);
        let terms = m.losses(&batch, &ctx, &out, &model);
        assert_eq!(terms.iter().map(|t| t.0).collect::<Vec<_>>(), vec!["ccua_ucl", "ccua_al"]);
        let tf = [0.2, 0.5, 0.8];
        // Anchors 0, 1: ln(e² + e⁰ + e^{√2}) − 2 ≈ 0.526; anchor 2: ln(e² + 2e^{√2}) − 2 ≈ 0.748;
        // UCL = 0.5·(0.2·0.526 + 0.5·0.526 + 0.8·0.748)/3 ≈ 0.161.
        let want = ucl_by_hand(&uncond_h, &tf, 0.5, 0.5);
        assert!(close(want, 0.161, 2e-3), "{want}");
        let got = vals(terms[0].1.clone())[0] as f64;
        assert!(close(got, want, 1e-5), "UCL {got} vs {want}");
        // The main pass's bottleneck gives 0.5·ln 3·(1.5/3) ≈ 0.275: a different number.
        assert!((ucl_by_hand(&main_h, &tf, 0.5, 0.5) - want).abs() > 0.1);
        // AL = 2·(0.2·2.5 + 0.5·2 + 0.8·0)/3 = 1.
        let al = vals(terms[1].1.clone())[0] as f64;
        assert!(close(al, 1.0, 1e-6), "AL {al}");

        // A label-dropped batch: no extra pass, the main pass is the unconditional one; no AL.
        let dropped = upload(crate::methods::HostBatch { uncond_batch: true, ..host }, &s);
        let mut fw = Forwards::new(&dropped);
        m.request(&dropped, &ctx, &mut fw);
        assert_eq!((m.uncond, fw.parts.len()), (None, 1));
        let out = Outputs { eps: vec![eps_u], bottleneck: vec![tensor(&flat(&uncond_h), [3, 2, 1, 1])] };
        let terms = m.losses(&dropped, &ctx, &out, &model);
        assert_eq!(terms.len(), 1, "UCL only");
        let got = vals(terms[0].1.clone())[0] as f64;
        assert!(close(got, want, 1e-5), "UCL {got} vs {want}");
    }

    /// UCL's gradient flows into the unconditional pass: the parameters' gradient of the term
    /// equals that of UCL on a plain unconditional forward kept in the graph, and differs from
    /// the same with that forward detached.
    #[test]
    fn ucl_gradient_reaches_the_unconditional_pass() {
        use crate::model::ClassCond;
        let dev = Default::default();
        let s = crate::diffusion::Schedule::ddpm();
        let ctx = StepContext { schedule: &s, counts: &[1, 1, 1], q: &[1.0 / 3.0; 3], seed: 1, step: 0 };
        let model = redrawn(crate::model::Preset::Tiny.config(1, 3, 8).unwrap().init(&dev), 6);
        let h = random_batch(4, vec![100, 400, 700, 900], vec![0, 1, 2, 0], 3);
        let batch = upload(h.clone(), &s);
        let cfg = CcuaConfig { alpha: 0.5, gamma: 2.0, temperature: 0.5, brs: None };
        let mut m = Ccua::new(cfg.clone());
        let mut fw = Forwards::new(&batch);
        m.request(&batch, &ctx, &mut fw);
        let out = fw.run(&model);
        let terms = m.losses(&batch, &ctx, &out, &model);
        assert_eq!(terms[0].0, "ccua_ucl");
        let method = grad_sq(&model, terms[0].1.clone());
        let tf: Vec<f32> = h.t.iter().map(|&t| t as f32 / 1000.0).collect();
        let by_hand = |detach: bool| {
            let mut b = model.forward(batch.x_t.clone(), &h.t, &ClassCond::Uncond, true).bottleneck.unwrap();
            if detach {
                b = b.detach();
            }
            (ucl_per_anchor(normalise_rows(b), cfg.temperature) * t1(&tf)).mean().mul_scalar(cfg.alpha)
        };
        let want = grad_sq(&model, by_hand(false));
        assert!(want > 1e-12 && close(method, want, 1e-4), "{method} vs {want}");
        assert_eq!(grad_sq(&model, by_hand(true)), 0.0, "detached, UCL would train nothing");
    }
}
