//! Linear β schedule and the closed-form quantities every sampler and loss uses.

use burn::prelude::*;

/// β linear from `beta_start` to `beta_end` over T steps (0-based t), kept in f64 on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub betas: Vec<f64>,
    /// ᾱ_t = Π_{s≤t} (1 − β_s).
    pub alpha_bar: Vec<f64>,
}

impl Schedule {
    pub fn linear(t: usize, beta_start: f64, beta_end: f64) -> Self {
        let betas: Vec<f64> = (0..t).map(|i| if t == 1 { beta_start } else { beta_start + (beta_end - beta_start) * i as f64 / (t - 1) as f64 }).collect();
        let mut alpha_bar = Vec::with_capacity(t);
        let mut acc = 1.0;
        for b in &betas {
            acc *= 1.0 - b;
            alpha_bar.push(acc);
        }
        Self { betas, alpha_bar }
    }

    /// The reference schedule: T = 1000, β from 1e−4 to 0.02.
    pub fn ddpm() -> Self {
        Self::linear(1000, 1e-4, 0.02)
    }

    pub fn len(&self) -> usize {
        self.betas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.betas.is_empty()
    }

    /// ᾱ at t, with ᾱ_{−1} = 1.
    pub fn alpha_bar_at(&self, t: isize) -> f64 {
        if t < 0 { 1.0 } else { self.alpha_bar[t as usize] }
    }

    /// Variance of q(x_{t−1} | x_t, x₀): β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t).
    pub fn posterior_variance(&self, t: usize) -> f64 {
        self.betas[t] * (1.0 - self.alpha_bar_at(t as isize - 1)) / (1.0 - self.alpha_bar[t])
    }

    /// x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε, with one t per image.
    pub fn noise<B: Backend>(&self, x0: Tensor<B, 4>, eps: Tensor<B, 4>, t: &[usize]) -> Tensor<B, 4> {
        let device = x0.device();
        let a: Vec<f32> = t.iter().map(|&ti| self.alpha_bar[ti].sqrt() as f32).collect();
        let s: Vec<f32> = t.iter().map(|&ti| (1.0 - self.alpha_bar[ti]).sqrt() as f32).collect();
        let a = Tensor::<B, 1>::from_floats(a.as_slice(), &device).reshape([t.len(), 1, 1, 1]);
        let s = Tensor::<B, 1>::from_floats(s.as_slice(), &device).reshape([t.len(), 1, 1, 1]);
        x0 * a + eps * s
    }

    /// Coefficients of one DDPM ancestral step from t: x_{t−1} = c_xt·x_t + c_eps·ε̂ + σ·z, where
    /// x̂₀ = √(1/ᾱ_t)·x_t − √(1/ᾱ_t − 1)·ε̂ is put into the posterior mean
    /// μ = √ᾱ_{t−1} β_t/(1−ᾱ_t)·x̂₀ + √α_t (1−ᾱ_{t−1})/(1−ᾱ_t)·x_t, and σ² is the "fixed large"
    /// variance β_t. (The reference's variance table holds the posterior variance at t = 1 in
    /// the slot of t = 0, but no noise is added at t = 0, so it never matters.)
    pub fn ddpm_step_coefs(&self, t: usize) -> DdpmCoefs {
        let ab = self.alpha_bar[t];
        let ab_prev = self.alpha_bar_at(t as isize - 1);
        let beta = self.betas[t];
        let c0 = ab_prev.sqrt() * beta / (1.0 - ab);
        let ct = (1.0 - beta).sqrt() * (1.0 - ab_prev) / (1.0 - ab);
        let (x0_xt, x0_eps) = ((1.0 / ab).sqrt(), -(1.0 / ab - 1.0).sqrt());
        DdpmCoefs {
            c_xt: c0 * x0_xt + ct,
            c_eps: c0 * x0_eps,
            // Noise only when t > 0.
            sigma: if t > 0 { beta.sqrt() } else { 0.0 },
        }
    }

    /// Coefficients of a DDIM (η = 0) step from t to t': x_{t'} = c_xt·x_t + c_eps·ε̂, with ᾱ_{t'}
    /// given (1 for the final x̂₀ step).
    pub fn ddim_step_coefs(&self, t: usize, alpha_bar_next: f64) -> (f64, f64) {
        let ab = self.alpha_bar[t];
        let c_xt = alpha_bar_next.sqrt() / ab.sqrt();
        let c_eps = (1.0 - alpha_bar_next).sqrt() - alpha_bar_next.sqrt() * (1.0 - ab).sqrt() / ab.sqrt();
        (c_xt, c_eps)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DdpmCoefs {
    pub c_xt: f64,
    pub c_eps: f64,
    pub sigma: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    type B = burn::backend::Flex;

    #[test]
    fn linear_schedule_by_hand() {
        let s = Schedule::linear(3, 0.1, 0.3);
        assert_eq!(s.betas.len(), 3);
        assert!((s.betas[1] - 0.2).abs() < 1e-15);
        let want = [0.9, 0.9 * 0.8, 0.9 * 0.8 * 0.7];
        for (a, b) in s.alpha_bar.iter().zip(want) {
            assert!((a - b).abs() < 1e-15);
        }
        let d = Schedule::ddpm();
        assert_eq!(d.len(), 1000);
        assert!((d.betas[999] - 0.02).abs() < 1e-15 && (d.betas[0] - 1e-4).abs() < 1e-15);
    }

    #[test]
    fn noising_by_hand() {
        let s = Schedule::linear(3, 0.1, 0.3);
        let dev = Default::default();
        let x0 = Tensor::<B, 4>::from_floats([[[[1.0f32]]], [[[2.0]]]], &dev);
        let eps = Tensor::<B, 4>::from_floats([[[[0.5f32]]], [[[-1.0]]]], &dev);
        let xt: Vec<f32> = s.noise(x0, eps, &[0, 2]).into_data().to_vec().unwrap();
        let ab2 = 0.9 * 0.8 * 0.7f64;
        let want = [0.9f64.sqrt() + 0.5 * 0.1f64.sqrt(), 2.0 * ab2.sqrt() - (1.0 - ab2).sqrt()];
        for (a, b) in xt.iter().zip(want) {
            assert!((*a as f64 - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn ddpm_coefficients_by_hand() {
        // T = 3, β = 0.1, 0.2, 0.3. At t = 2: ᾱ = 0.504, ᾱ_prev = 0.72.
        let s = Schedule::linear(3, 0.1, 0.3);
        let c = s.ddpm_step_coefs(2);
        let (ab, abp, beta) = (0.504f64, 0.72f64, 0.3f64);
        let c0 = abp.sqrt() * beta / (1.0 - ab);
        let ct = 0.7f64.sqrt() * (1.0 - abp) / (1.0 - ab);
        assert!((c.c_xt - (c0 / ab.sqrt() + ct)).abs() < 1e-12);
        assert!((c.c_eps + c0 * (1.0 / ab - 1.0).sqrt()).abs() < 1e-12);
        assert!((c.sigma - 0.3f64.sqrt()).abs() < 1e-12);
        // At t = 0 the posterior mean is x̂₀ exactly and there is no noise.
        let c = s.ddpm_step_coefs(0);
        assert!((c.c_xt - 1.0 / 0.9f64.sqrt()).abs() < 1e-12);
        assert!((c.c_eps + (1.0 / 0.9 - 1.0f64).sqrt()).abs() < 1e-12);
        assert_eq!(c.sigma, 0.0);
        // With ε̂ equal to the true noise the mean recovers the posterior mean of the true x₀.
        let (x0, eps) = (0.7f64, -0.4f64);
        let xt = ab.sqrt() * x0 + (1.0 - ab).sqrt() * eps;
        let c = s.ddpm_step_coefs(2);
        let mu = c0 * x0 + ct * xt;
        assert!((c.c_xt * xt + c.c_eps * eps - mu).abs() < 1e-12);
    }

    #[test]
    fn posterior_variance_by_hand() {
        let s = Schedule::linear(3, 0.1, 0.3);
        // β₁(1 − ᾱ₀)/(1 − ᾱ₁) = 0.2·(1 − 0.9)/(1 − 0.72)
        assert!((s.posterior_variance(1) - 0.2 * 0.1 / 0.28).abs() < 1e-12);
    }

    #[test]
    fn ddim_coefficients_by_hand() {
        let s = Schedule::linear(3, 0.1, 0.3);
        let (a, b) = s.ddim_step_coefs(2, 0.9);
        let ab = 0.504f64;
        assert!((a - (0.9f64 / ab).sqrt()).abs() < 1e-12);
        assert!((b - (0.1f64.sqrt() - 0.9f64.sqrt() * (1.0 - ab).sqrt() / ab.sqrt())).abs() < 1e-12);
        // To ᾱ' = 1 the step is the x̂₀ prediction.
        let (a, b) = s.ddim_step_coefs(2, 1.0);
        assert!((a - 1.0 / ab.sqrt()).abs() < 1e-12 && (b + (1.0 / ab - 1.0).sqrt()).abs() < 1e-12);
    }
}
