//! Class-balanced loss (Cui et al., CVPR 2019): the ε-loss re-weighted per sample by the
//! inverse effective number of samples of its class, a standard long-tail baseline.
//!
//! E_y = (1 − β^{n_y})/(1 − β) is the effective number of class y's n_y images; the weights
//! w_y ∝ 1/E_y = (1 − β)/(1 − β^{n_y}) are normalised so that Σ_y w_y = C (the paper's choice).
//! β = 0 weighs every class alike (plain DDPM), β → 1 approaches inverse class frequency. The
//! re-weighted loss is mean_i w_{y_i}·‖ε_θ − target‖²_i; the logged term is what it adds to
//! the base mse, mean_i (w_{y_i} − 1)·‖ε_θ − target‖²_i, so `total` is the re-weighted loss.
//! It weighs the base loss's own target, so it composes with OC's swapped targets.

use super::{Batch, MAIN, Method, MethodKind, MethodsConfig, Outputs, StepContext, Term, per_sample_mean};
use crate::error::{Error, Result};
use crate::model::UNet;
use crate::ops::TrainBackend;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CbLossConfig {
    /// β of the effective number, in [0, 1) (the paper tries 0.9 to 0.9999).
    pub beta: f64,
}

impl Default for CbLossConfig {
    fn default() -> Self {
        Self { beta: 0.999 }
    }
}

impl MethodKind for CbLossConfig {
    const NAMES: &'static [&'static str] = &["cb-loss"];
    const SUMMARY: &'static str = "ε-loss re-weighted by the inverse effective number of samples per class (Cui et al. 2019)";
    const TERMS: &'static [&'static str] = &["cb_loss"];
    const COST_TARGET: Option<f64> = Some(1.05);

    fn validate(&self, _: &MethodsConfig) -> Result<()> {
        if (0.0..1.0).contains(&self.beta) {
            Ok(())
        } else {
            Err(Error::option("methods.cb_loss.beta", format!("{}: expected β in [0, 1)", self.beta)))
        }
    }

    fn build<B: TrainBackend>(&self) -> Box<dyn Method<B>> {
        Box::new(CbLoss { weights: None, beta: self.beta })
    }
}

/// w_y = (1 − β)/(1 − β^{n_y}), scaled so that the weights of the C classes sum to C.
pub fn class_weights(counts: &[usize], beta: f64) -> Vec<f64> {
    let raw: Vec<f64> = counts.iter().map(|&n| (1.0 - beta) / (1.0 - beta.powf(n as f64))).collect();
    let sum: f64 = raw.iter().sum();
    raw.iter().map(|w| w * counts.len() as f64 / sum).collect()
}

pub struct CbLoss {
    beta: f64,
    /// The class weights, computed once from the run's class counts.
    weights: Option<Vec<f64>>,
}

impl<B: TrainBackend> Method<B> for CbLoss {
    fn losses(&mut self, batch: &Batch<B>, ctx: &StepContext, out: &Outputs<B>, _model: &UNet<B>) -> Vec<Term<B>> {
        let w = self.weights.get_or_insert_with(|| class_weights(ctx.counts, self.beta));
        let extra: Vec<f32> = batch.host.labels.iter().map(|&y| (w[y] - 1.0) as f32).collect();
        let mse = per_sample_mean((out.eps(MAIN) - batch.target.clone()).powi_scalar(2));
        vec![("cb_loss", (mse * batch.per_sample(extra)).mean())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diffusion::Schedule;
    use crate::methods::HostBatch;
    use crate::methods::test_util::*;
    use burn::prelude::*;

    #[test]
    fn weights_by_hand() {
        // β = 0.5, n = [3, 1]: raw (1−β)/(1−β^n) = [0.5/0.875, 0.5/0.5] = [4/7, 1]; Σ = 11/7;
        // scaled to Σ = 2: [8/11, 14/11].
        let w = class_weights(&[3, 1], 0.5);
        assert!(close(w[0], 8.0 / 11.0, 1e-12) && close(w[1], 14.0 / 11.0, 1e-12), "{w:?}");
        // β = 0: every class alike.
        assert_eq!(class_weights(&[100, 10, 1], 0.0), vec![1.0, 1.0, 1.0]);
    }

    /// The logged term on a batch of two single-pixel images, and the total it makes.
    #[test]
    fn term_by_hand() {
        let dev = Default::default();
        let host = HostBatch { target: vec![1.0, -1.0], ..host_batch([2, 1, 1, 1], vec![0.0, 0.0], vec![0.0, 0.0], vec![10, 20], vec![1, 0]) };
        let batch = upload(host, &Schedule::ddpm());
        // ε_θ = [3, 1] against targets [1, −1]: per-sample errors [4, 4].
        let eps = Tensor::<AB, 4>::from_floats([[[[3.0]]], [[[1.0]]]], &dev);
        let out = Outputs { eps: vec![eps], bottleneck: vec![Tensor::zeros([2, 1, 1, 1], &dev)] };
        let counts = [3, 1];
        let schedule = Schedule::ddpm();
        let ctx = StepContext { schedule: &schedule, counts: &counts, q: &[0.75, 0.25], seed: 0, step: 0 };
        let model = crate::model::Preset::Tiny.config(1, 2, 8).unwrap().init::<AB>(&dev);
        let mut m = CbLossConfig { beta: 0.5 }.build::<AB>();
        let terms = m.losses(&batch, &ctx, &out, &model);
        assert_eq!(terms[0].0, "cb_loss");
        // Sample 0 is class 1 (w = 14/11), sample 1 class 0 (w = 8/11); equal errors of 4:
        // mean((14/11 − 1)·4, (8/11 − 1)·4) = (6/11 − 6/11)·4/2 = 0.
        assert!(close(vals(terms[0].1.clone())[0] as f64, 0.0, 1e-6));
        // Unequal errors: ε_θ = [3, −1] → errors [4, 0]: term = (14/11 − 1)·4/2 = 6/11, and
        // mse + term = (4 + 0)/2 + 6/11 = mean(w·error) = (14/11·4)/2 = 28/11.
        let eps = Tensor::<AB, 4>::from_floats([[[[3.0]]], [[[-1.0]]]], &dev);
        let out = Outputs { eps: vec![eps], bottleneck: vec![Tensor::zeros([2, 1, 1, 1], &dev)] };
        let term = vals(m.losses(&batch, &ctx, &out, &model).remove(0).1)[0] as f64;
        assert!(close(term, 6.0 / 11.0, 1e-6), "{term}");
        assert!(close(2.0 + term, 28.0 / 11.0, 1e-6));
    }

    #[test]
    fn beta_outside_the_unit_interval_is_an_error() {
        let e = CbLossConfig { beta: 1.0 }.validate(&MethodsConfig::default()).unwrap_err().to_string();
        assert!(e.contains("methods.cb_loss.beta"), "{e}");
    }
}
