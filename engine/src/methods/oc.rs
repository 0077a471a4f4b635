//! OC — oriented calibration (paper 003, SPEC §4.2): T2H, H2T, Full and the β variant.
//!
//! Per batch and without gradients: c_i = x₀,i + σ_{t_i}·ε_i (= x_t/√ᾱ_t), σ_t² = 1/ᾱ_t − 1;
//! p_sel(j|i) = softmax_j(−‖c_i − x₀,j‖²/(2σ_{t_i}²)) over every image of the batch, i included.
//! One j_i is drawn; the gate accepts it or keeps j_i = i; the target becomes
//! ε̂_i = (x_t,i − √ᾱ_t·x₀,j)/√(1−ᾱ_t) while the model still sees y_i.

use super::{Batch, HostBatch, Method, MethodKind, MethodsConfig, Outputs, StepContext, Term, non_negative};
use crate::data::sampler::BatchSampler;
use crate::diffusion::Schedule;
use crate::error::{Error, Result};
use crate::model::UNet;
use crate::rng::{self, Stream};
use crate::ops::TrainBackend;
use ltlab_types::{StepRecord, T_BUCKETS, TransferCounts};
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The gate's direction and its CLI spelling live in `ltlab-types` (the lab's transfer view sets it).
pub use ltlab_types::OcMode;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OcConfig {
    pub mode: OcMode,
    /// β variant: p_sel(j|i) ∝ q(y_j)^β·exp(ℓ_ij) and no gate (needs `mode = "full"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    /// Accept a swap only when t_i < cutoff (paper: 500–800 helps; reference code: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cutoff: Option<usize>,
    /// Balanced batch re-sampling (the paper's best result; the reference code lacks it).
    pub resample: bool,
}

impl Default for OcConfig {
    fn default() -> Self {
        Self { mode: OcMode::T2h, beta: None, cutoff: None, resample: false }
    }
}

impl OcConfig {
    pub fn check(&self) -> Result<()> {
        if let Some(b) = self.beta {
            non_negative("methods.oc.beta", b)?;
            if self.mode != OcMode::Full {
                return Err(Error::option(
                    "methods.oc.beta",
                    format!("the β variant has no gate, but mode is \"{}\": set mode = \"full\" with beta", self.mode.name()),
                ));
            }
        }
        Ok(())
    }

    pub fn gate(&self) -> Gate {
        Gate { mode: self.mode, beta: self.beta, cutoff: self.cutoff }
    }
}

/// The selection rule: softmax weights (with the β prior) and the acceptance gate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gate {
    pub mode: OcMode,
    pub beta: Option<f64>,
    pub cutoff: Option<usize>,
}

impl Gate {
    /// Whether a draw of j for anchor i at time t is kept.
    pub fn accepts(&self, q_i: f64, q_j: f64, t: usize) -> bool {
        if self.cutoff.is_some_and(|c| t >= c) {
            return false;
        }
        if self.beta.is_some() {
            return true;
        }
        match self.mode {
            OcMode::T2h => q_j >= q_i,
            OcMode::H2t => q_j <= q_i,
            OcMode::Full => true,
        }
    }
}

/// σ_t² = 1/ᾱ_t − 1.
pub fn sigma2(schedule: &Schedule, t: usize) -> f64 {
    1.0 / schedule.alpha_bar[t] - 1.0
}

/// p_sel(·|i) over the `n` images `x0` (each `len` values) for the noisy anchor c_i:
/// softmax_j(−‖c_i − x₀,j‖²/(2σ²) + β·ln q(y_j)).
pub fn selection_row(c_i: &[f32], x0: &[f32], len: usize, sigma2: f64, log_prior: Option<&[f64]>) -> Vec<f64> {
    let n = x0.len() / len;
    let mut logits: Vec<f64> = (0..n)
        .map(|j| {
            let d: f64 = c_i.iter().zip(&x0[j * len..(j + 1) * len]).map(|(&a, &b)| ((a - b) as f64).powi(2)).sum();
            -d / (2.0 * sigma2) + log_prior.map_or(0.0, |p| p[j])
        })
        .collect();
    let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for l in logits.iter_mut() {
        *l = (*l - max).exp();
        sum += *l;
    }
    logits.iter().map(|l| l / sum).collect()
}

/// c_i = x₀,i + σ·ε_i.
pub fn noisy_anchor(x0_i: &[f32], eps_i: &[f32], sigma: f64) -> Vec<f32> {
    x0_i.iter().zip(eps_i).map(|(&x, &e)| (x as f64 + sigma * e as f64) as f32).collect()
}

/// The VP target for a swap: ε̂ = (x_t − √ᾱ·x₀,j)/√(1−ᾱ) with x_t = √ᾱ·x₀,i + √(1−ᾱ)·ε_i.
pub fn swapped_target(x0_i: &[f32], x0_j: &[f32], eps_i: &[f32], alpha_bar: f64) -> Vec<f32> {
    let (a, s) = (alpha_bar.sqrt(), (1.0 - alpha_bar).sqrt());
    x0_i.iter()
        .zip(x0_j)
        .zip(eps_i)
        .map(|((&xi, &xj), &e)| {
            let x_t = (a * xi as f64 + s * e as f64) as f32;
            ((x_t as f64 - a * xj as f64) / s) as f32
        })
        .collect()
}

pub struct Oc {
    cfg: OcConfig,
    /// The swaps of the step under way, for its record.
    swaps: Option<TransferCounts>,
}

impl Oc {
    pub fn new(cfg: OcConfig) -> Self {
        Self { cfg, swaps: None }
    }
}

/// OC on a host batch: draws j_i, applies the gate, rewrites `target`; returns the swaps.
pub fn apply(gate: &Gate, batch: &mut HostBatch, schedule: &Schedule, q: &[f64], seed: u64, step: u64) -> TransferCounts {
    let (n, len, t_total) = (batch.len(), batch.image_len(), schedule.len());
    let log_prior: Option<Vec<f64>> = gate.beta.map(|b| batch.labels.iter().map(|&y| b * q[y].ln()).collect());
    // The draws come first and in order (reproducible); the rows, the costly part
    // (B²·pixels), in parallel.
    let mut r = rng::rng(seed, Stream::Oc, step);
    let u: Vec<f64> = (0..n).map(|_| r.random::<f64>()).collect();
    let (x0, eps, t) = (&batch.x0, &batch.eps, &batch.t);
    let drawn: Vec<usize> = (0..n)
        .into_par_iter()
        .map(|i| {
            let s2 = sigma2(schedule, t[i]);
            let c = noisy_anchor(&x0[i * len..(i + 1) * len], &eps[i * len..(i + 1) * len], s2.sqrt());
            let row = selection_row(&c, x0, len, s2, log_prior.as_deref());
            let mut acc = 0.0;
            row.iter()
                .position(|&p| {
                    acc += p;
                    u[i] < acc
                })
                .unwrap_or(i)
        })
        .collect();
    let mut counts = TransferCounts { samples_by_t: vec![0; T_BUCKETS], swaps_by_t: vec![0; T_BUCKETS], pairs: vec![] };
    let mut pairs: BTreeMap<(usize, usize), u32> = BTreeMap::new();
    for (i, &j) in drawn.iter().enumerate() {
        let t = batch.t[i];
        let (yi, yj) = (batch.labels[i], batch.labels[j]);
        let k = t * T_BUCKETS / t_total;
        counts.samples_by_t[k] += 1;
        // Drawing the anchor itself, or an image equal to it (a sampler with replacement can
        // put the same image twice; flipped the other way it is another x₀), changes nothing.
        let (xi, ei) = (&batch.x0[i * len..(i + 1) * len], &batch.eps[i * len..(i + 1) * len]);
        if j != i && batch.x0[j * len..(j + 1) * len] != *xi && gate.accepts(q[yi], q[yj], t) {
            let target = swapped_target(xi, &batch.x0[j * len..(j + 1) * len], ei, schedule.alpha_bar[t]);
            batch.target[i * len..(i + 1) * len].copy_from_slice(&target);
            counts.swaps_by_t[k] += 1;
            *pairs.entry((yi, yj)).or_default() += 1;
        }
    }
    counts.pairs = pairs.into_iter().map(|((a, b), c)| (a, b, c)).collect();
    counts
}

impl MethodKind for OcConfig {
    const NAMES: &'static [&'static str] = &["t2h", "h2t", "full"];
    const SUMMARY: &'static str = "oriented calibration: ε targets swapped within the batch, gated by class frequency (T2H, H2T, Full)";
    const TERMS: &'static [&'static str] = &[];
    const COST_TARGET: Option<f64> = Some(1.05);

    fn config_for(name: &str) -> Self {
        Self { mode: OcMode::parse(name).unwrap_or(OcMode::T2h), ..Default::default() }
    }

    fn run_label(&self) -> String {
        match self.beta {
            Some(b) => format!("oc-beta{b}"),
            None => self.mode.name().to_string(),
        }
    }

    fn validate(&self, _: &MethodsConfig) -> Result<()> {
        self.check()
    }

    fn sampler_request(&self) -> Option<(&'static str, BatchSampler)> {
        self.resample.then_some(("resample", BatchSampler::Balanced))
    }

    fn build<B: TrainBackend>(&self) -> Box<dyn Method<B>> {
        Box::new(Oc::new(self.clone()))
    }
}

impl<B: TrainBackend> Method<B> for Oc {
    fn transform(&mut self, batch: &mut HostBatch, ctx: &StepContext) {
        // The swap runs in label-dropped batches too.
        self.swaps = Some(apply(&self.cfg.gate(), batch, ctx.schedule, ctx.q, ctx.seed, ctx.step));
    }

    fn losses(&mut self, _: &Batch<B>, _: &StepContext, _: &Outputs<B>, _: &UNet<B>) -> Vec<Term<B>> {
        vec![]
    }

    fn record(&mut self, record: &mut StepRecord) {
        record.transfers = self.swaps.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4-image batch of 1-pixel images: p_sel, the gate and the swaps, by hand.
    #[test]
    fn selection_probabilities_and_gate_for_four_images() {
        let x0 = [0.0f32, 0.5, 1.0, -1.0];
        let c = [0.25f32];
        let s2 = 0.5;
        let p = selection_row(&c, &x0, 1, s2, None);
        // ℓ_j = −(0.25 − x_j)²/(2·0.5)
        let l: Vec<f64> = x0.iter().map(|&x| -((0.25 - x as f64).powi(2)) / 1.0).collect();
        let z: f64 = l.iter().map(|v| v.exp()).sum();
        for j in 0..4 {
            assert!((p[j] - l[j].exp() / z).abs() < 1e-12, "{p:?}");
        }
        // With the β prior q = [0.5, 0.3, 0.15, 0.05], β = 1: p ∝ q_j·e^{ℓ_j}.
        let q = [0.5f64, 0.3, 0.15, 0.05];
        let lp: Vec<f64> = q.iter().map(|v| v.ln()).collect();
        let pb = selection_row(&c, &x0, 1, s2, Some(&lp));
        let zb: f64 = (0..4).map(|j| q[j] * l[j].exp()).sum();
        for j in 0..4 {
            assert!((pb[j] - q[j] * l[j].exp() / zb).abs() < 1e-12);
        }
        // Gates: anchor of class frequency 0.15 (a tail class) drawing a head image (0.5).
        let g = |mode, cutoff| Gate { mode, beta: None, cutoff };
        assert!(g(OcMode::T2h, None).accepts(0.15, 0.5, 900));
        assert!(!g(OcMode::T2h, None).accepts(0.5, 0.15, 900));
        assert!(g(OcMode::T2h, None).accepts(0.3, 0.3, 900), "equal frequency passes both ways");
        assert!(g(OcMode::H2t, None).accepts(0.5, 0.15, 900));
        assert!(!g(OcMode::H2t, None).accepts(0.15, 0.5, 900));
        assert!(g(OcMode::Full, None).accepts(0.5, 0.15, 900));
        assert!(!g(OcMode::Full, Some(800)).accepts(0.5, 0.15, 800));
        assert!(g(OcMode::Full, Some(800)).accepts(0.5, 0.15, 799));
        assert!(Gate { mode: OcMode::Full, beta: Some(1.0), cutoff: None }.accepts(0.5, 0.01, 10));
    }

    #[test]
    fn vp_target_by_hand() {
        // ᾱ = 0.64: √ᾱ = 0.8, √(1−ᾱ) = 0.6. x_t = 0.8·1 + 0.6·0.5 = 1.1; ε̂ = (1.1 − 0.8·(−1))/0.6.
        let e = swapped_target(&[1.0], &[-1.0], &[0.5], 0.64);
        assert!((e[0] as f64 - 1.9 / 0.6).abs() < 1e-6, "{e:?}");
        // j = i gives back ε.
        let e = swapped_target(&[1.0], &[1.0], &[0.5], 0.64);
        assert!((e[0] - 0.5).abs() < 1e-6);
    }

    fn batch(t: usize) -> HostBatch {
        // Classes 0 (head) and 1 (tail), 2 images each, 2 pixels.
        let x0 = vec![0.0, 0.0, 0.1, 0.0, 1.0, 1.0, 0.9, 1.0];
        let eps = vec![0.3, -0.2, 0.1, 0.4, -0.5, 0.2, 0.0, 0.1];
        crate::methods::test_util::host_batch([4, 1, 1, 2], x0, eps, vec![t; 4], vec![0, 0, 1, 1])
    }

    #[test]
    fn swaps_follow_the_gate_and_rewrite_targets() {
        let s = Schedule::ddpm();
        let q = [0.8, 0.2];
        // t = 0: σ² ≈ 1e−4, p_sel(i|i) ≈ 1: no swaps.
        let mut b = batch(0);
        let c = apply(&Gate { mode: OcMode::Full, beta: None, cutoff: None }, &mut b, &s, &q, 1, 0);
        assert_eq!(c.swaps_by_t.iter().sum::<u32>(), 0);
        assert_eq!(b.target, b.eps);
        // t = 999: nearly uniform selection. T2H: head anchors may only move within the head.
        let mut swaps = 0;
        for step in 0..50 {
            let mut b = batch(999);
            let c = apply(&Gate { mode: OcMode::T2h, beta: None, cutoff: None }, &mut b, &s, &q, 1, step);
            assert_eq!(c.samples_by_t[9], 4);
            for &(from, to, _) in &c.pairs {
                assert!(q[to] >= q[from], "T2H never moves head to tail: {from}→{to}");
            }
            for i in 0..4 {
                if b.target[i * 2..i * 2 + 2] != b.eps[i * 2..i * 2 + 2] {
                    swaps += 1;
                }
            }
            assert_eq!(c.swaps_by_t[9] as usize, c.pairs.iter().map(|p| p.2 as usize).sum::<usize>());
        }
        assert!(swaps > 50, "at t = 999 most draws are another image: {swaps}/200");
        // A cutoff below t stops every swap.
        let mut b = batch(999);
        let c = apply(&Gate { mode: OcMode::Full, beta: None, cutoff: Some(500) }, &mut b, &s, &q, 1, 0);
        assert_eq!(c.swaps_by_t.iter().sum::<u32>(), 0);
    }

    /// The anchor is what it is, not where it came from: a second copy of the anchor's image
    /// flipped the other way (same dataset index, another x₀) is a transfer; an equal copy is
    /// not (its target would be ε itself). Swaps counted = targets changed, every step.
    #[test]
    fn a_flipped_copy_of_the_anchor_is_a_transfer_and_an_equal_copy_is_not() {
        let s = Schedule::ddpm();
        let q = [1.0];
        let mut changed_total = 0;
        for step in 0..40 {
            // One image drawn three times (index 0): as is, flipped, as is.
            let x0 = vec![0.0f32, 1.0, 1.0, 0.0, 0.0, 1.0];
            let eps = vec![0.3f32, -0.2, 0.1, 0.4, -0.5, 0.2];
            let mut b = HostBatch {
                shape: [3, 1, 1, 2],
                target: eps.clone(),
                x0,
                eps,
                t: vec![999; 3],
                indices: vec![0, 0, 0],
                labels: vec![0, 0, 0],
                keep: vec![true; 3],
                uncond_batch: false,
            };
            let c = apply(&Gate { mode: OcMode::Full, beta: None, cutoff: None }, &mut b, &s, &q, 2, step);
            let changed = (0..3).filter(|&i| b.target[i * 2..i * 2 + 2] != b.eps[i * 2..i * 2 + 2]).count();
            assert_eq!(c.swaps_by_t[9] as usize, changed, "step {step}: counted swaps are the changed targets");
            // Images 0 and 2 are equal: a changed target of either is the flipped image's.
            for i in [0, 2] {
                let got = &b.target[i * 2..i * 2 + 2];
                if got != &b.eps[i * 2..i * 2 + 2] {
                    let want = swapped_target(&b.x0[i * 2..i * 2 + 2], &b.x0[2..4], &b.eps[i * 2..i * 2 + 2], s.alpha_bar[999]);
                    assert!(got.iter().zip(&want).all(|(a, w)| (a - w).abs() < 1e-5), "anchor {i}: {got:?} is not the flipped copy's {want:?}");
                }
            }
            changed_total += changed;
        }
        // At t = 999 each anchor draws the flipped image (or, for it, one of the others) about
        // a third to two thirds of the time.
        assert!(changed_total > 20, "{changed_total}/120 anchors swapped with the flipped copy");
    }

    /// SPEC §4.2: the swap also runs in label-dropped batches. `transform` on a dropped batch
    /// gives exactly the targets of the same batch with its labels kept, and swaps do happen.
    #[test]
    fn transform_swaps_in_label_dropped_batches() {
        type AB = crate::methods::test_util::AB;
        let s = Schedule::ddpm();
        let q = [0.8, 0.2];
        let mut oc = Oc::new(OcConfig { mode: OcMode::Full, ..Default::default() });
        let mut swaps = 0;
        for step in 0..20 {
            let ctx = StepContext { schedule: &s, counts: &[8, 2], q: &q, seed: 4, step };
            let mut kept = batch(999);
            let mut dropped = HostBatch { keep: vec![false; 4], uncond_batch: true, ..batch(999) };
            Method::<AB>::transform(&mut oc, &mut kept, &ctx);
            let ck = oc.swaps.take().unwrap();
            Method::<AB>::transform(&mut oc, &mut dropped, &ctx);
            let cd = oc.swaps.take().unwrap();
            assert_eq!(dropped.target, kept.target, "step {step}");
            assert_eq!(cd.swaps_by_t, ck.swaps_by_t);
            swaps += cd.swaps_by_t.iter().sum::<u32>();
        }
        // At t = 999 selection is near uniform over 4 images: about 3/4 of 80 draws swap.
        assert!(swaps > 30, "{swaps}/80 swaps in label-dropped batches");
    }

    /// The β variant draws j ~ p(j|i) ∝ q(y_j)^β·exp(ℓ_ij), no gate: over many steps the
    /// frequency of each j for each anchor i matches the probabilities computed here directly.
    #[test]
    fn beta_draws_follow_the_prior_weighted_softmax() {
        type AB = crate::methods::test_util::AB;
        let s = Schedule::ddpm();
        let q = [0.5f64, 0.3, 0.2];
        let beta = 1.5;
        // Four 2-pixel images of classes 0, 1, 2, 2, each anchor at its own t (σ² ≈ 0.3–1.1).
        let x0 = vec![0.0f32, 0.2, 0.5, -0.3, -0.4, 0.6, 0.9, 0.8];
        let eps = vec![0.3f32, -0.2, 0.1, 0.4, -0.5, 0.2, 0.0, -0.6];
        let template = crate::methods::test_util::host_batch([4, 1, 1, 2], x0.clone(), eps.clone(), vec![150, 200, 250, 300], vec![0, 1, 2, 2]);
        // p(j|i) = q(y_j)^β·exp(−‖x0_i + σε_i − x0_j‖²/(2σ²)) / Σ, σ² = 1/ᾱ_{t_i} − 1.
        let p: Vec<Vec<f64>> = (0..4)
            .map(|i| {
                let ab = s.alpha_bar[template.t[i]];
                let s2 = 1.0 / ab - 1.0;
                let w: Vec<f64> = (0..4)
                    .map(|j| {
                        let d: f64 = (0..2).map(|k| (x0[i * 2 + k] as f64 + s2.sqrt() * eps[i * 2 + k] as f64 - x0[j * 2 + k] as f64).powi(2)).sum();
                        q[template.labels[j]].powf(beta) * (-d / (2.0 * s2)).exp()
                    })
                    .collect();
                let z: f64 = w.iter().sum();
                w.iter().map(|v| v / z).collect()
            })
            .collect();
        let mut oc = Oc::new(OcConfig { mode: OcMode::Full, beta: Some(beta), ..Default::default() });
        let draws = 4000;
        let mut hits = [[0usize; 4]; 4];
        for step in 0..draws {
            let ctx = StepContext { schedule: &s, counts: &[5, 3, 2], q: &q, seed: 11, step };
            let mut b = template.clone();
            Method::<AB>::transform(&mut oc, &mut b, &ctx);
            for i in 0..4 {
                let got = &b.target[i * 2..i * 2 + 2];
                // The drawn j from the target: ε_i unchanged for j = i, otherwise
                // ε̂ = ε_i + √ᾱ·(x0_i − x0_j)/√(1−ᾱ), distinct for every j.
                let ab = s.alpha_bar[template.t[i]];
                let dist = |j: usize| -> f64 {
                    (0..2).map(|k| (got[k] as f64 - eps[i * 2 + k] as f64 - ab.sqrt() * (x0[i * 2 + k] - x0[j * 2 + k]) as f64 / (1.0 - ab).sqrt()).powi(2)).sum::<f64>().sqrt()
                };
                let j = (0..4).min_by(|&a, &b| dist(a).total_cmp(&dist(b))).unwrap();
                assert!(dist(j) < 1e-4, "anchor {i}: target {got:?} matches no image");
                hits[i][j] += 1;
            }
        }
        for i in 0..4 {
            for j in 0..4 {
                let f = hits[i][j] as f64 / draws as f64;
                let se = (p[i][j] * (1.0 - p[i][j]) / draws as f64).sqrt();
                assert!((f - p[i][j]).abs() <= 4.0 * se + 1e-9, "p({j}|{i}): {f} drawn vs {} (4 SE = {})", p[i][j], 4.0 * se);
            }
            // Every row has some mass off the diagonal, so the test sees real swaps.
            assert!(p[i][i] < 0.9, "p({i}|{i}) = {}", p[i][i]);
        }
    }

    #[test]
    fn beta_needs_full_mode() {
        let c = OcConfig { beta: Some(1.0), ..Default::default() };
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("methods.oc.beta") && e.contains("full"), "{e}");
        assert!(OcConfig { beta: Some(1.0), mode: OcMode::Full, ..Default::default() }.check().is_ok());
    }
}
