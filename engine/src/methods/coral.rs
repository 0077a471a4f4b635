//! CORAL (paper 000, SPEC §4.5): supervised contrastive loss on the projected bottleneck.
//!
//! z = normalise(Linear(GAP(bottleneck))) from the conditional forward; SupCon with τ_SC over
//! the batch; weighted by λ(t) = w·exp((1 − t/T)/τ_r), per sample (paper) or as the batch mean
//! (reference code). Defaults (SPEC §4.5): the paper's loss without the reference code's τ_SC
//! factor, and no term in a label-dropped batch (per-batch drop: the batch carries no class
//! signal, as for every extra loss); with per-sample drop every sample enters with its true
//! label, the paper's Alg. 1.

use crate::ops::FastBackend;
use super::{Batch, MAIN, Method, MethodKind, MethodsConfig, ModelNeeds, Outputs, StepContext, Term, non_negative, positive};
use crate::error::{Error, Result};
use crate::model::UNet;
use burn::prelude::*;
use crate::ops::TrainBackend;
use serde::{Deserialize, Serialize};

/// How λ(t) meets the per-anchor losses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LambdaMode {
    /// λ(t_i) on anchor i (the paper).
    PerSample,
    /// The batch mean of λ(t) on the whole term (the reference code).
    BatchMean,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoralConfig {
    /// w in λ(t).
    pub weight: f64,
    /// τ_SC.
    pub temperature: f64,
    /// τ_r in λ(t).
    pub tau_r: f64,
    pub lambda: LambdaMode,
    /// Multiply the term by τ_SC (reference code). Default off: the paper's loss.
    pub scale_by_temperature: bool,
    /// No term in a label-dropped batch (per-batch drop; the reference code, and SPEC §3's
    /// rule for the extra losses). Off: such a batch enters with its true labels and the
    /// unconditional bottleneck. Per-sample drop never filters: every sample enters with its
    /// true label (the paper's Alg. 1).
    pub skip_dropped: bool,
    /// Width of the projection head.
    pub projection_dim: usize,
}

impl Default for CoralConfig {
    fn default() -> Self {
        Self {
            weight: 0.01,
            temperature: 0.12,
            tau_r: 0.8,
            lambda: LambdaMode::PerSample,
            scale_by_temperature: false,
            skip_dropped: true,
            projection_dim: 128,
        }
    }
}

impl CoralConfig {
    pub fn check(&self) -> Result<()> {
        non_negative("methods.coral.weight", self.weight)?;
        positive("methods.coral.temperature", self.temperature)?;
        positive("methods.coral.tau_r", self.tau_r)?;
        if self.projection_dim == 0 {
            return Err(Error::option("methods.coral.projection_dim", "0: expected a positive width"));
        }
        Ok(())
    }

    /// λ(t).
    pub fn lambda_at(&self, t: usize, t_total: usize) -> f64 {
        self.weight * ((1.0 - t as f64 / t_total as f64) / self.tau_r).exp()
    }

    /// The weight of each anchor of a batch at times `t`: λ(t_i) (paper) or the batch mean of
    /// λ(t) (reference code).
    pub fn anchor_weights(&self, t: &[usize], t_total: usize) -> Vec<f32> {
        match self.lambda {
            LambdaMode::PerSample => t.iter().map(|&t| self.lambda_at(t, t_total) as f32).collect(),
            LambdaMode::BatchMean => {
                let mean = t.iter().map(|&t| self.lambda_at(t, t_total)).sum::<f64>() / t.len() as f64;
                vec![mean as f32; t.len()]
            }
        }
    }
}

impl MethodKind for CoralConfig {
    const NAMES: &'static [&'static str] = &["coral"];
    const SUMMARY: &'static str = "supervised contrastive loss on the projected bottleneck, weighted by t";
    const TERMS: &'static [&'static str] = &["coral"];
    const COST_TARGET: Option<f64> = Some(1.05);

    fn validate(&self, _: &MethodsConfig) -> Result<()> {
        self.check()
    }

    fn model_needs(&self) -> ModelNeeds {
        ModelNeeds { projection_dim: self.projection_dim, ..Default::default() }
    }

    fn build<B: TrainBackend>(&self) -> Box<dyn Method<B>> {
        Box::new(Coral::new(self.clone()))
    }
}

pub struct Coral {
    cfg: CoralConfig,
}

impl Coral {
    pub fn new(cfg: CoralConfig) -> Self {
        Self { cfg }
    }
}

/// SupCon: for anchor i with positives P(i) (same label, j ≠ i),
/// l_i = −(1/|P(i)|)·Σ_{p∈P(i)} log(e^{z_i·z_p/τ}/Σ_{k≠i} e^{z_i·z_k/τ}).
/// Returns Σ_i a_i·l_i / (number of anchors with a positive), where `anchor_weight` gives a_i;
/// zero when the batch has no positive or no negative pair. `z` rows are unit-norm.
pub fn supcon<B: FastBackend>(z: Tensor<B, 2>, labels: &[usize], temperature: f64, anchor_weight: &[f32]) -> Tensor<B, 1> {
    let [n, _] = z.dims();
    let device = z.device();
    let positives: Vec<usize> = (0..n).map(|i| (0..n).filter(|&j| j != i && labels[j] == labels[i]).count()).collect();
    let has_negative = (0..n).any(|i| (0..n).any(|j| labels[j] != labels[i]));
    let anchors = positives.iter().filter(|&&p| p > 0).count();
    if anchors == 0 || !has_negative {
        return Tensor::zeros([1], &device);
    }
    // W_ij = a_i/(|P(i)|·anchors) on positives: the loss is −Σ W ⊙ log p.
    let mut w = vec![0f32; n * n];
    for i in 0..n {
        for j in 0..n {
            if j != i && labels[j] == labels[i] {
                w[i * n + j] = anchor_weight[i] / (positives[i] * anchors) as f32;
            }
        }
    }
    let w = Tensor::<B, 2>::from_data(TensorData::new(w, [n, n]), &device);
    let sim = z.clone().matmul(z.transpose()).mul_scalar(1.0 / temperature);
    // The anchor itself leaves the denominator.
    let logits = sim - Tensor::<B, 2>::eye(n, &device).mul_scalar(1e9);
    let max = logits.clone().max_dim(1).detach();
    let lse = (logits.clone() - max.clone()).exp().sum_dim(1).log() + max;
    let log_p = logits - lse;
    (w * log_p).sum().neg().reshape([1])
}

impl<B: TrainBackend> Method<B> for Coral {
    fn losses(&mut self, batch: &Batch<B>, ctx: &StepContext, out: &Outputs<B>, model: &UNet<B>) -> Vec<Term<B>> {
        let hb = &batch.host;
        if (hb.uncond_batch && self.cfg.skip_dropped) || hb.len() < 2 {
            return vec![];
        }
        let z = model.project(out.bottleneck(MAIN)).expect("CORAL's run builds the projection head");
        let labels = &hb.labels;
        let lambda = self.cfg.anchor_weights(&hb.t, ctx.schedule.len());
        let mut loss = supcon(z, labels, self.cfg.temperature, &lambda);
        if self.cfg.scale_by_temperature {
            loss = loss.mul_scalar(self.cfg.temperature);
        }
        vec![("coral", loss)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::test_util::*;

    /// SupCon by an independent loop over anchors and positives.
    fn supcon_by_hand(z: &[[f64; 2]], labels: &[usize], tau: f64, a: &[f64]) -> f64 {
        let n = z.len();
        let dot = |i: usize, j: usize| (z[i][0] * z[j][0] + z[i][1] * z[j][1]) / tau;
        let (mut total, mut anchors) = (0.0, 0);
        for i in 0..n {
            let pos: Vec<usize> = (0..n).filter(|&j| j != i && labels[j] == labels[i]).collect();
            if pos.is_empty() {
                continue;
            }
            anchors += 1;
            let denom: f64 = (0..n).filter(|&k| k != i).map(|k| dot(i, k).exp()).sum();
            let l: f64 = pos.iter().map(|&p| -(dot(i, p).exp() / denom).ln()).sum::<f64>() / pos.len() as f64;
            total += a[i] * l;
        }
        total / anchors as f64
    }

    fn unit(deg: f64) -> [f64; 2] {
        let r = deg.to_radians();
        [r.cos(), r.sin()]
    }

    #[test]
    fn supcon_on_a_handful_of_vectors() {
        // Classes 0,0,1,1,2: class 2's anchor has no positive (negative only).
        let z = [unit(0.0), unit(20.0), unit(100.0), unit(130.0), unit(250.0)];
        let labels = [0, 0, 1, 1, 2];
        let a = [1.0, 0.5, 2.0, 1.0, 3.0];
        let zt = Tensor::<AB, 2>::from_data(TensorData::new(z.iter().flatten().map(|&v| v as f32).collect::<Vec<_>>(), [5, 2]), &Default::default());
        let af: Vec<f32> = a.iter().map(|&v| v as f32).collect();
        let got = vals(supcon(zt, &labels, 0.12, &af))[0] as f64;
        let want = supcon_by_hand(&z, &labels, 0.12, &a);
        assert!(close(got, want, 1e-4), "{got} vs {want}");
    }

    #[test]
    fn supcon_is_zero_without_positive_or_negative_pairs() {
        let z = Tensor::<AB, 2>::from_floats([[1.0, 0.0], [0.0, 1.0]], &Default::default());
        assert_eq!(vals(supcon(z.clone(), &[0, 1], 0.1, &[1.0, 1.0])), vec![0.0], "no positives");
        assert_eq!(vals(supcon(z, &[3, 3], 0.1, &[1.0, 1.0])), vec![0.0], "no negatives");
    }

    #[test]
    fn lambda_by_hand() {
        let c = CoralConfig::default();
        assert!(close(c.lambda_at(0, 1000), 0.01 * (1.0f64 / 0.8).exp(), 1e-12));
        assert!(close(c.lambda_at(500, 1000), 0.01 * (0.5f64 / 0.8).exp(), 1e-12));
        assert!(c.lambda_at(999, 1000) < c.lambda_at(0, 1000));
    }

    #[test]
    fn lambda_per_sample_and_batch_mean() {
        let per = CoralConfig::default();
        let t = [0, 500, 1000 - 1];
        let w = per.anchor_weights(&t, 1000);
        assert!(close(w[0] as f64, 0.01 * 1.25f64.exp(), 1e-6) && close(w[2] as f64, 0.01 * (0.001f64 / 0.8).exp(), 1e-6));
        let mean = CoralConfig { lambda: LambdaMode::BatchMean, ..Default::default() };
        let want = (0.01 * 1.25f64.exp() + 0.01 * 0.625f64.exp() + 0.01 * (0.001f64 / 0.8).exp()) / 3.0;
        let w = mean.anchor_weights(&t, 1000);
        assert_eq!(w.len(), 3);
        assert!(w.iter().all(|&v| close(v as f64, want, 1e-6)), "{w:?}");
    }

    #[test]
    fn supcon_gradient_reaches_z() {
        let z = Tensor::<AB, 2>::from_floats([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], &Default::default()).require_grad();
        let l = supcon(z.clone(), &[0, 0, 1], 0.5, &[1.0, 1.0, 1.0]);
        let g = l.backward();
        let gz = vals(z.grad(&g).unwrap());
        assert!(gz.iter().any(|v| v.abs() > 1e-3), "{gz:?}");
    }

    /// SupCon of any width by an independent loop (as `supcon_by_hand`).
    fn supcon_nd(z: &[Vec<f64>], labels: &[usize], tau: f64, a: &[f64]) -> f64 {
        let n = z.len();
        let dot = |i: usize, j: usize| z[i].iter().zip(&z[j]).map(|(x, y)| x * y).sum::<f64>() / tau;
        let (mut total, mut anchors) = (0.0, 0);
        for i in 0..n {
            let pos: Vec<usize> = (0..n).filter(|&j| j != i && labels[j] == labels[i]).collect();
            if pos.is_empty() {
                continue;
            }
            anchors += 1;
            let denom: f64 = (0..n).filter(|&k| k != i).map(|k| dot(i, k).exp()).sum();
            total += a[i] * pos.iter().map(|&p| -(dot(i, p).exp() / denom).ln()).sum::<f64>() / pos.len() as f64;
        }
        total / anchors as f64
    }

    /// CORAL's head by hand from its parameters: z = normalise(W·GAP(b) + bias), with Burn's
    /// Linear weight laid out [in, out].
    fn project_by_hand(model: &UNet<AB>, bottleneck: &[f32], ch: usize, hw: usize, dim: usize) -> Vec<f64> {
        let params = crate::weights::collect(model);
        let get = |name: &str| vals(params.iter().find(|p| p.path == name).unwrap_or_else(|| panic!("{name}")).value.clone());
        let (w, b) = (get("projection.weight"), get("projection.bias"));
        assert_eq!(w.len(), ch * dim);
        let pooled: Vec<f64> = (0..ch).map(|c| bottleneck[c * hw..(c + 1) * hw].iter().map(|&v| v as f64).sum::<f64>() / hw as f64).collect();
        let z: Vec<f64> = (0..dim).map(|o| b[o] as f64 + (0..ch).map(|c| pooled[c] * w[c * dim + o] as f64).sum::<f64>()).collect();
        let norm = z.iter().map(|v| v * v).sum::<f64>().sqrt();
        z.into_iter().map(|v| v / norm).collect()
    }

    /// The wiring of `losses`: z from the head on the conditional forward's bottleneck (by
    /// hand), every sample with its true label under per-sample drop (the paper's Alg. 1),
    /// λ(t_i) per anchor, the τ_SC factor, and the skip in label-dropped batches.
    #[test]
    fn losses_use_every_sample_scale_by_temperature_and_skip_dropped_batches() {
        use crate::methods::HostBatch;
        let dev = Default::default();
        let s = crate::diffusion::Schedule::ddpm();
        let mut mcfg = crate::model::Preset::Tiny.config(1, 3, 8).unwrap();
        mcfg.projection_dim = 3;
        let model: UNet<AB> = mcfg.init(&dev);
        let ch = mcfg.base_channels * mcfg.channel_mults.last().unwrap();
        let ctx = StepContext { schedule: &s, counts: &[3, 2], q: &[0.6, 0.4], seed: 1, step: 0 };
        // Five samples, classes 0,0,1,1,0; sample 4's label was dropped (per-sample drop).
        let n = 5;
        let host = HostBatch {
            shape: [n, 1, 1, 1],
            x0: vec![0.0; n],
            eps: vec![0.0; n],
            target: vec![0.0; n],
            t: vec![100, 300, 500, 700, 900],
            indices: (0..n).collect(),
            labels: vec![0, 0, 1, 1, 0],
            keep: vec![true, true, true, true, false],
            uncond_batch: false,
        };
        let batch = upload(host.clone(), &s);
        let mut r = crate::rng::rng(3, crate::rng::Stream::Noise, 0);
        let bn: Vec<f32> = crate::rng::normal_vec(&mut r, n * ch * 4);
        let bottleneck = Tensor::<AB, 4>::from_data(TensorData::new(bn.clone(), [n, ch, 2, 2]), &dev);
        let z: Vec<Vec<f64>> = (0..n).map(|i| project_by_hand(&model, &bn[i * ch * 4..(i + 1) * ch * 4], ch, 4, 3)).collect();
        let out = Outputs { eps: vec![Tensor::zeros([n, 1, 1, 1], &dev)], bottleneck: vec![bottleneck] };
        let cfg = CoralConfig { weight: 0.5, projection_dim: 3, ..Default::default() };
        // λ(t) = 0.5·exp((1 − t/1000)/0.8), per sample.
        let lam: Vec<f64> = host.t.iter().map(|&t| 0.5 * ((1.0 - t as f64 / 1000.0) / 0.8).exp()).collect();
        let want = supcon_nd(&z, &host.labels, 0.12, &lam);
        let without_dropped = supcon_nd(&z[..4], &host.labels[..4], 0.12, &lam[..4]);
        assert!((want - without_dropped).abs() > 1e-3 * want.abs(), "the dropped sample must matter");
        let term = |cfg: &CoralConfig, b: &Batch<AB>| -> Option<f64> {
            let t = Coral::new(cfg.clone()).losses(b, &ctx, &out, &model);
            assert!(t.len() <= 1 && t.iter().all(|t| t.0 == "coral"));
            t.first().map(|t| vals(t.1.clone())[0] as f64)
        };
        // Per-sample drop: the label-dropped sample 4 enters with its true label.
        let got = term(&cfg, &batch).unwrap();
        assert!(close(got, want, 1e-4), "{got} vs {want}");
        // scale_by_temperature multiplies the same term by τ_SC = 0.12.
        let scaled = CoralConfig { scale_by_temperature: true, ..cfg.clone() };
        let got = term(&scaled, &batch).unwrap();
        assert!(close(got, 0.12 * want, 1e-4), "{got} vs {}", 0.12 * want);
        // A label-dropped batch (per-batch drop): no term by default; every sample without the
        // skip.
        let dropped = upload(HostBatch { uncond_batch: true, keep: vec![false; n], ..host }, &s);
        assert_eq!(term(&cfg, &dropped), None);
        let all = CoralConfig { skip_dropped: false, ..cfg.clone() };
        let got = term(&all, &dropped).unwrap();
        assert!(close(got, want, 1e-4), "{got} vs {want}");
    }
}
