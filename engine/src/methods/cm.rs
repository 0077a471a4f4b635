//! CM — capacity manipulation (paper 004, SPEC §4.6).
//!
//! The model carries a low-rank expert on its up-path 3×3 convolutions (W = W^g + B·A). With
//! class weights ω_Con^y = C·N_y/ΣN_c and ω_Div^y = C/(N_y·Σ_c 1/N_c),
//! L_CM = (ω_Con^y − ω_Div^y)·‖ε_{g+e}(x_t,t,y) − ε_g(x_t,t,y)‖², gradients to both branches:
//! head classes keep the expert close to the base (consolidation), tail classes push it away
//! (diversity). The base objective is T2H unless `with_t2h = false`.
//! Balanced data gives ω_Con = ω_Div = 1 and no loss. The diversity part is an unbounded
//! negative MSE; `clamp` bounds each sample's loss below by −clamp.

use crate::ops::FastBackend;
use super::oc::OcConfig;
use super::{Batch, Forwards, MAIN, Method, MethodKind, MethodsConfig, ModelNeeds, Outputs, Slot, StepContext, Term, per_sample_mean, positive};
use crate::error::{Error, Result};
use crate::model::UNet;
use burn::prelude::*;
use crate::ops::TrainBackend;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CmConfig {
    /// λ, the weight of mean(L_CM).
    pub lambda: f64,
    /// Bound each sample's L_CM below by −clamp (none: unbounded, as the paper writes it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clamp: Option<f64>,
    /// Stack CM over T2H (the paper's default base) when no `[methods.oc]` is given.
    pub with_t2h: bool,
}

impl Default for CmConfig {
    fn default() -> Self {
        Self { lambda: 1.0, clamp: None, with_t2h: true }
    }
}

impl CmConfig {
    pub fn check(&self) -> Result<()> {
        positive("methods.cm.lambda", self.lambda)?;
        if let Some(c) = self.clamp {
            positive("methods.cm.clamp", c)?;
        }
        Ok(())
    }
}

impl MethodKind for CmConfig {
    const NAMES: &'static [&'static str] = &["cm"];
    const SUMMARY: &'static str = "capacity manipulation: a low-rank expert on the up path, consolidated on head and diversified on tail classes (over T2H)";
    const TERMS: &'static [&'static str] = &["cm"];
    const COST_TARGET: Option<f64> = Some(1.6);

    fn validate(&self, stack: &MethodsConfig) -> Result<()> {
        self.check()?;
        if stack.oc.is_some() && !self.with_t2h {
            return Err(Error::option(
                "methods.cm.with_t2h",
                "false, but [methods.oc] is set too: remove one (with_t2h = false means CM over the plain objective)",
            ));
        }
        Ok(())
    }

    /// The paper's base objective is T2H.
    fn bring_along(&self, stack: &mut MethodsConfig) {
        if self.with_t2h && stack.oc.is_none() {
            stack.oc = Some(OcConfig::default());
        }
    }

    fn model_needs(&self) -> ModelNeeds {
        ModelNeeds { experts: true, ..Default::default() }
    }

    fn build<B: TrainBackend>(&self) -> Box<dyn Method<B>> {
        Box::new(Cm::new(self.clone()))
    }
}

/// (ω_Con^y, ω_Div^y) for every class.
pub fn cm_weights(counts: &[usize]) -> Vec<(f64, f64)> {
    let c = counts.len() as f64;
    let total: f64 = counts.iter().map(|&n| n as f64).sum();
    let inv: f64 = counts.iter().map(|&n| 1.0 / n as f64).sum();
    counts.iter().map(|&n| (c * n as f64 / total, c / (n as f64 * inv))).collect()
}

/// λ·mean_i((ω_Con − ω_Div)_{y_i}·‖ε_{g+e} − ε_g‖²_i), each sample clamped below at −clamp.
pub fn cm_loss<B: FastBackend>(eps_full: Tensor<B, 4>, eps_base: Tensor<B, 4>, coef: Tensor<B, 1>, lambda: f64, clamp: Option<f64>) -> Tensor<B, 1> {
    let mut l = per_sample_mean((eps_full - eps_base).powi_scalar(2)) * coef;
    if let Some(c) = clamp {
        l = l.clamp_min(-c);
    }
    l.mean().mul_scalar(lambda)
}

pub struct Cm {
    cfg: CmConfig,
    base: Option<Slot>,
}

impl Cm {
    pub fn new(cfg: CmConfig) -> Self {
        Self { cfg, base: None }
    }
}

impl<B: TrainBackend> Method<B> for Cm {
    fn request(&mut self, _batch: &Batch<B>, _ctx: &StepContext, fw: &mut Forwards<B>) {
        // θ^g alone on the same x_t, t and conditioning as the main pass: the experts sit on
        // the up path only, so only the up path runs twice.
        self.base = Some(fw.add_base_of_main());
    }

    fn losses(&mut self, batch: &Batch<B>, ctx: &StepContext, out: &Outputs<B>, _model: &UNet<B>) -> Vec<Term<B>> {
        let Some(base) = self.base else { return vec![] };
        let w = cm_weights(ctx.counts);
        let coef: Vec<f32> = batch.host.labels.iter().map(|&y| (w[y].0 - w[y].1) as f32).collect();
        vec![("cm", cm_loss(out.eps(MAIN), out.eps(base), batch.per_sample(coef), self.cfg.lambda, self.cfg.clamp))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::test_util::*;

    #[test]
    fn weights_for_given_counts() {
        // N = [100, 10], ΣN = 110, Σ1/N = 0.11.
        let w = cm_weights(&[100, 10]);
        assert!(close(w[0].0, 2.0 * 100.0 / 110.0, 1e-12) && close(w[1].0, 2.0 * 10.0 / 110.0, 1e-12));
        assert!(close(w[0].1, 2.0 / (100.0 * 0.11), 1e-12) && close(w[1].1, 2.0 / (10.0 * 0.11), 1e-12));
        assert!(w[0].0 > w[0].1 && w[1].0 < w[1].1, "head consolidates, tail diversifies");
        for (con, div) in cm_weights(&[7, 7, 7]) {
            assert!(close(con, 1.0, 1e-12) && close(div, 1.0, 1e-12));
        }
    }

    #[test]
    fn zero_loss_on_balanced_data_and_gradient_to_both_branches() {
        let dev = Default::default();
        let full = Tensor::<AB, 4>::from_floats([[[[1.0, 2.0]]], [[[0.0, -1.0]]]], &dev).require_grad();
        let base = Tensor::<AB, 4>::from_floats([[[[0.0, 2.0]]], [[[1.0, 1.0]]]], &dev).require_grad();
        let w = cm_weights(&[5, 5]);
        let coef: Vec<f32> = [0usize, 1].iter().map(|&y| (w[y].0 - w[y].1) as f32).collect();
        assert_eq!(vals(cm_loss(full.clone(), base.clone(), t1(&coef), 1.0, None)), vec![0.0]);
        // coef = [1, −2]: per-sample MSE = [0.5, 2.5] → mean(0.5, −5) = −2.25; ×λ = 2 → −4.5.
        let l = cm_loss(full.clone(), base.clone(), t1(&[1.0, -2.0]), 2.0, None);
        assert!(close(vals(l.clone())[0] as f64, -4.5, 1e-6));
        let g = l.backward();
        // d/d full = λ·coef_i·2(full − base)/(2 elements)/(2 samples).
        assert_eq!(vals(full.grad(&g).unwrap()), vec![1.0, 0.0, 2.0, 4.0]);
        assert_eq!(vals(base.grad(&g).unwrap()), vec![-1.0, 0.0, -2.0, -4.0]);
        // The clamp bounds the diversity part: −5 → −1.
        let c = cm_loss(full, base, t1(&[1.0, -2.0]), 1.0, Some(1.0));
        assert!(close(vals(c)[0] as f64, (0.5 - 1.0) / 2.0, 1e-6));
    }

    /// With B = 0 the two networks are the same function, so with the same dropout masks in
    /// both passes L_CM is exactly 0 even with dropout on (fresh masks in the θ^g pass would
    /// make it the squared difference of two dropout draws).
    #[test]
    fn loss_is_exactly_zero_at_init_with_dropout_on() {
        use crate::diffusion::Schedule;
        use crate::methods::Forwards;
        use crate::model::Preset;
        let dev = Default::default();
        let cfg = Preset::Tiny.config(1, 2, 8).unwrap().with_low_rank_expert(true).with_dropout(0.5);
        let model: UNet<AB> = cfg.init(&dev);
        // Layers that start near zero would hide dropout's effect on ε.
        let model = model.with_unit_gain_outputs(&dev);
        let n = 4;
        let host = random_batch(n, vec![3, 300, 600, 900], vec![0, 1, 0, 1], 9);
        let batch = upload(host, &Schedule::ddpm());
        let counts = [90, 10];
        let q = [0.9, 0.1];
        let schedule = Schedule::ddpm();
        let ctx = StepContext { schedule: &schedule, counts: &counts, q: &q, seed: 0, step: 0 };
        let mut cm = Cm::new(CmConfig::default());
        let run = |cm: &mut Cm| {
            let mut fw = Forwards::new(&batch);
            cm.request(&batch, &ctx, &mut fw);
            let out = fw.run(&model);
            let loss = cm.losses(&batch, &ctx, &out, &model).remove(0).1;
            (vals(out.eps(MAIN)), vals(loss)[0])
        };
        let (eps_a, loss_a) = run(&mut cm);
        let (eps_b, loss_b) = run(&mut cm);
        assert_ne!(eps_a, eps_b, "dropout is on: two draws of the main pass differ");
        assert_eq!((loss_a, loss_b), (0.0, 0.0));
    }

    /// With B ≠ 0 and dropout on, θ^g's pass replays the main pass's masks: it equals the
    /// network without experts run from the same generator state (the same draws), in a kept
    /// batch and in a label-dropped one (both passes unconditional there); L_CM by hand from
    /// the two outputs and the true labels' weights.
    #[test]
    fn the_base_pass_replays_the_masks_with_experts_on_and_in_dropped_batches() {
        use crate::diffusion::Schedule;
        use crate::methods::{Forwards, HostBatch};
        use crate::model::Preset;
        use burn::tensor::backend::Backend as _;
        let dev = Default::default();
        let cfg = Preset::Tiny.config(1, 2, 8).unwrap().with_low_rank_expert(true).with_dropout(0.5);
        let model = redrawn(cfg.init(&dev), 3);
        let base_only = model.clone().without_experts();
        let n = 4;
        let template = random_batch(n, vec![3, 300, 600, 900], vec![0, 1, 0, 1], 5);
        let schedule = Schedule::ddpm();
        let (counts, q) = ([90usize, 10], [0.9, 0.1]);
        let ctx = StepContext { schedule: &schedule, counts: &counts, q: &q, seed: 0, step: 0 };
        for uncond_batch in [false, true] {
            let host = HostBatch { keep: vec![!uncond_batch; n], uncond_batch, ..template.clone() };
            let batch = upload(host, &schedule);
            let mut cm = Cm::new(CmConfig::default());
            // Flex's generator is one per process, and not every test takes its lock before
            // drawing: an interleaved draw elsewhere shows as a mismatch, so up to 5 tries.
            let (mut loss, mut full, mut base, mut want_base) = (0.0, vec![], vec![], vec![]);
            let mut worst = f32::INFINITY;
            for _ in 0..5 {
                let _draws = crate::rng::flex_draws();
                AB::seed(&dev, 77);
                let mut fw = Forwards::new(&batch);
                cm.request(&batch, &ctx, &mut fw);
                let out = fw.run(&model);
                loss = vals(cm.losses(&batch, &ctx, &out, &model).remove(0).1)[0] as f64;
                (full, base) = (vals(out.eps(MAIN)), vals(out.eps(cm.base.unwrap())));
                // The same draws through θ^g alone: the main pass of the expert-free network.
                AB::seed(&dev, 77);
                want_base = vals(Forwards::new(&batch).run(&base_only).eps(MAIN));
                worst = base.iter().zip(&want_base).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                if worst <= 1e-5 * want_base.iter().fold(0f32, |m, v| m.max(v.abs())) {
                    break;
                }
            }
            let scale = want_base.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(worst <= 1e-5 * scale, "dropped = {uncond_batch}: θ^g pass off by {worst} of {scale}");
            // And the draws matter: another seed gives another θ^g output.
            AB::seed(&dev, 78);
            assert_ne!(vals(Forwards::new(&batch).run(&base_only).eps(MAIN)), want_base, "dropout is on");
            // L_CM = λ·mean_i (ω_Con − ω_Div)(y_i)·mean‖ε_{g+e} − ε_g‖², true labels.
            let w = cm_weights(&counts);
            let want: f64 = (0..n)
                .map(|i| {
                    let y = [0, 1, 0, 1][i];
                    let mse = (0..64).map(|k| (full[i * 64 + k] as f64 - base[i * 64 + k] as f64).powi(2)).sum::<f64>() / 64.0;
                    (w[y].0 - w[y].1) * mse
                })
                .sum::<f64>()
                / n as f64;
            let gap = full.iter().zip(&base).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(gap > 1e-2 * scale && want != 0.0, "B ≠ 0: the two networks differ (gap {gap} of {scale})");
            assert!((loss - want).abs() <= 1e-3 * want.abs(), "dropped = {uncond_batch}: {loss} vs {want}");
        }
    }
}
