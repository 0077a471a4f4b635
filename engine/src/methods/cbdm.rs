//! CBDM (Qin et al. 2023), in the form of its reference code (SPEC §4.1).
//!
//! In kept-label batches every sample gets a second label y′ (drawn from q(y), or uniformly)
//! and a second forward on the same x_t, t. With w = τ·t/T:
//! L_reg = mean(w·‖ε(x_t,y) − sg(ε(x_t,y′))‖²) pulls the conditional prediction towards the
//! other classes', L_com = mean(w·‖sg(ε(x_t,y)) − ε(x_t,y′)‖²) commits the other way, weighted γ.

use super::{Batch, Forwards, HostBatch, MAIN, Method, MethodKind, MethodsConfig, Outputs, Slot, StepContext, Term, non_negative, per_sample_mean, positive};
use crate::error::Result;
use crate::model::UNet;
use crate::rng::{self, Stream};
use burn::prelude::*;
use crate::ops::TrainBackend;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Where y′ comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClassDraw {
    /// The long-tailed class frequency q(y) (the reference code's training mode).
    Prior,
    /// Uniform over classes (the paper's formula, the reference fine-tune mode).
    Uniform,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CbdmConfig {
    /// τ in w = τ·t/T (1 for CIFAR; 50 was used for CelebA-5).
    pub tau: f64,
    /// Weight of the commitment term.
    pub gamma: f64,
    pub y_prime: ClassDraw,
}

impl Default for CbdmConfig {
    fn default() -> Self {
        Self { tau: 1.0, gamma: 0.25, y_prime: ClassDraw::Prior }
    }
}

impl CbdmConfig {
    pub fn check(&self) -> Result<()> {
        positive("methods.cbdm.tau", self.tau)?;
        non_negative("methods.cbdm.gamma", self.gamma)
    }
}

pub struct Cbdm {
    cfg: CbdmConfig,
    slot: Option<Slot>,
}

impl Cbdm {
    pub fn new(cfg: CbdmConfig) -> Self {
        Self { cfg, slot: None }
    }
}

impl MethodKind for CbdmConfig {
    const NAMES: &'static [&'static str] = &["cbdm"];
    const SUMMARY: &'static str = "class-balancing regulariser towards other classes' predictions (Qin et al. 2023)";
    const TERMS: &'static [&'static str] = &["cbdm_reg", "cbdm_com"];
    const COST_TARGET: Option<f64> = Some(2.1);

    fn validate(&self, _: &MethodsConfig) -> Result<()> {
        self.check()
    }

    fn build<B: TrainBackend>(&self) -> Box<dyn Method<B>> {
        Box::new(Cbdm::new(self.clone()))
    }
}

/// y′ per sample, a pure function of (seed, step).
pub fn draw_y_prime(draw: ClassDraw, q: &[f64], n: usize, seed: u64, step: u64) -> Vec<usize> {
    let mut r = rng::rng(seed, Stream::Cbdm, step);
    (0..n)
        .map(|_| match draw {
            ClassDraw::Uniform => r.random_range(0..q.len()),
            ClassDraw::Prior => {
                let u = r.random::<f64>();
                let mut acc = 0.0;
                q.iter().position(|&p| {
                    acc += p;
                    u < acc
                })
                .unwrap_or(q.len() - 1)
            }
        })
        .collect()
}

/// (L_reg, L_com) for predictions ε(x_t,y), ε(x_t,y′) and per-sample weights w.
pub fn cbdm_terms<B: TrainBackend>(eps: Tensor<B, 4>, eps_alt: Tensor<B, 4>, w: Tensor<B, 1>) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let reg = per_sample_mean((eps.clone() - eps_alt.clone().detach()).powi_scalar(2));
    let com = per_sample_mean((eps.detach() - eps_alt).powi_scalar(2));
    ((reg * w.clone()).mean(), (com * w).mean())
}

impl<B: TrainBackend> Method<B> for Cbdm {
    fn request(&mut self, batch: &Batch<B>, ctx: &StepContext, fw: &mut Forwards<B>) {
        let h: &HostBatch = &batch.host;
        self.slot = None;
        // The reference code skips its regulariser in label-dropped batches.
        if h.uncond_batch || !h.any_kept() {
            return;
        }
        let y = draw_y_prime(self.cfg.y_prime, ctx.q, h.len(), ctx.seed, ctx.step);
        self.slot = Some(fw.add(batch.x_t.clone(), h.t.clone(), y, vec![true; h.len()], true));
    }

    fn losses(&mut self, batch: &Batch<B>, ctx: &StepContext, out: &Outputs<B>, _model: &UNet<B>) -> Vec<Term<B>> {
        let Some(slot) = self.slot else { return vec![] };
        let w: Vec<f32> = batch
            .t_frac(ctx.schedule)
            .iter()
            .zip(batch.keep_mask())
            .map(|(f, k)| (self.cfg.tau as f32) * f * k)
            .collect();
        let (reg, com) = cbdm_terms(out.eps(MAIN), out.eps(slot), batch.per_sample(w));
        vec![("cbdm_reg", reg), ("cbdm_com", com.mul_scalar(self.cfg.gamma))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::test_util::*;

    #[test]
    fn terms_by_hand_and_gradient_paths() {
        let dev = Default::default();
        // Two samples of one element each: ε = [1, 2], ε′ = [0, 4], w = [0.5, 0.25].
        let eps = Tensor::<AB, 4>::from_floats([[[[1.0]]], [[[2.0]]]], &dev).require_grad();
        let alt = Tensor::<AB, 4>::from_floats([[[[0.0]]], [[[4.0]]]], &dev).require_grad();
        let (reg, com) = cbdm_terms(eps.clone(), alt.clone(), t1(&[0.5, 0.25]));
        // mean(0.5·1, 0.25·4) = 0.75 for both.
        assert!(close(vals(reg.clone())[0] as f64, 0.75, 1e-6));
        assert!(close(vals(com.clone())[0] as f64, 0.75, 1e-6));
        // L_reg: gradient to ε only, d/dε = w·2(ε−ε′)/B = [0.5, −0.5]; none to ε′.
        let g = reg.backward();
        assert_eq!(vals(eps.grad(&g).unwrap().reshape([2])), vec![0.5, -0.5]);
        assert!(alt.grad(&g).is_none_or(|x| vals(x.reshape([2])) == vec![0.0, 0.0]));
        // L_com: gradient to ε′ only, d/dε′ = w·2(ε′−ε)/B = [−0.5, 0.5].
        let g = com.backward();
        assert_eq!(vals(alt.grad(&g).unwrap().reshape([2])), vec![-0.5, 0.5]);
        assert!(eps.grad(&g).is_none_or(|x| vals(x.reshape([2])) == vec![0.0, 0.0]));
    }

    #[test]
    fn y_prime_follows_the_prior_or_uniform() {
        let q = [0.9, 0.1, 0.0];
        let y = draw_y_prime(ClassDraw::Prior, &q, 10_000, 1, 2);
        let ones = y.iter().filter(|&&c| c == 1).count() as f64 / 1e4;
        assert!((ones - 0.1).abs() < 0.02, "{ones}");
        assert!(!y.contains(&2));
        let u = draw_y_prime(ClassDraw::Uniform, &q, 9_000, 1, 2);
        let twos = u.iter().filter(|&&c| c == 2).count() as f64 / 9e3;
        assert!((twos - 1.0 / 3.0).abs() < 0.02, "{twos}");
        assert_eq!(y, draw_y_prime(ClassDraw::Prior, &q, 10_000, 1, 2), "pure function of (seed, step)");
    }

    /// `[n, 1, 1, 2]` images from flat values.
    fn img(v: &[f32]) -> Tensor<AB, 4> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len() / 2, 1, 1, 2]), &Default::default())
    }

    /// The wiring of `request` and `losses`: the y′ pass is conditional on the main x_t and t,
    /// w = τ·t/T per sample and 0 where the label was dropped, γ only on L_com.
    #[test]
    fn request_and_losses_by_hand() {
        let dev = Default::default();
        let s = crate::diffusion::Schedule::ddpm();
        let q = [0.5, 0.3, 0.2];
        let ctx = StepContext { schedule: &s, counts: &[5, 3, 2], q: &q, seed: 7, step: 3 };
        // Three 2-pixel samples; sample 1's label was dropped (per-sample CFG drop).
        let host = HostBatch { keep: vec![true, false, true], ..small_batch(vec![250, 500, 750]) };
        let batch = upload(host.clone(), &s);
        let mut m = Cbdm::new(CbdmConfig { tau: 2.0, gamma: 0.3, y_prime: ClassDraw::Prior });
        let mut fw = Forwards::new(&batch);
        m.request(&batch, &ctx, &mut fw);
        assert_eq!(m.slot, Some(Slot(1)));
        let p = &fw.parts[1];
        assert_eq!(vals(p.x.clone()), vals(batch.x_t.clone()), "same x_t");
        assert_eq!(p.t, host.t, "same t");
        assert_eq!(p.labels, draw_y_prime(ClassDraw::Prior, &q, 3, 7, 3), "y′ of (seed, step)");
        assert_eq!(p.keep, vec![1.0; 3], "y′ is a conditional pass for every sample");

        // ε = [1,2 | 3,3 | 0,1], ε′ = [0,0 | 0,0 | 2,1]: per-sample MSE [2.5, 9, 2].
        let zeros = Tensor::<AB, 4>::zeros([3, 1, 1, 1], &dev);
        let out = Outputs { eps: vec![img(&[1.0, 2.0, 3.0, 3.0, 0.0, 1.0]), img(&[0.0, 0.0, 0.0, 0.0, 2.0, 1.0])], bottleneck: vec![zeros.clone(), zeros] };
        let model: UNet<AB> = crate::model::Preset::Tiny.config(1, 3, 8).unwrap().init(&dev);
        let terms = m.losses(&batch, &ctx, &out, &model);
        assert_eq!(terms.iter().map(|t| t.0).collect::<Vec<_>>(), vec!["cbdm_reg", "cbdm_com"]);
        // w = 2·[0.25, 0.5, 0.75]·[1, 0, 1] = [0.5, 0, 1.5]:
        // L_reg = (0.5·2.5 + 0·9 + 1.5·2)/3 = 4.25/3; L_com = 0.3·4.25/3.
        // (No keep mask would give 13.25/3, no τ 2.125/3, γ = 1/4 on L_com 1.0625/3.)
        let reg = vals(terms[0].1.clone())[0] as f64;
        let com = vals(terms[1].1.clone())[0] as f64;
        assert!(close(reg, 4.25 / 3.0, 1e-6), "{reg}");
        assert!(close(com, 0.3 * 4.25 / 3.0, 1e-6), "{com}");

        // A label-dropped batch asks for no pass and has no term.
        let dropped = upload(HostBatch { uncond_batch: true, ..host }, &s);
        let mut fw = Forwards::new(&dropped);
        m.request(&dropped, &ctx, &mut fw);
        assert_eq!((m.slot, fw.parts.len()), (None, 1));
        assert!(m.losses(&dropped, &ctx, &out, &model).is_empty());
    }
}
