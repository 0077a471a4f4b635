//! DDPM ancestral and DDIM samplers with classifier-free guidance, from fixed noise.

use super::Schedule;
use crate::error::{Error, Result};
use crate::model::{ClassCond, UNet};
use crate::ops::FastBackend;
use crate::rng::{self, Stream};
use burn::prelude::*;

/// The sampler's kind and its CLI spelling live in `ltlab-types` (the lab's panels set it).
pub use ltlab_types::SamplerKind;

/// The DDIM timesteps, descending: T − T/k, …, T/k, 0.
pub fn ddim_timesteps(t_total: usize, k: usize) -> Vec<usize> {
    let skip = (t_total / k).max(1);
    let mut ts: Vec<usize> = (0..k.min(t_total)).map(|i| i * skip).collect();
    ts.reverse();
    ts
}

/// ε̂ = (1+ω)·ε(x, y) − ω·ε(x, ∅); the conditional and unconditional halves run as one batch.
pub fn guided_eps<B: FastBackend>(model: &UNet<B>, x: Tensor<B, 4>, t: &[usize], labels: &Tensor<B, 1, Int>, omega: f64) -> Tensor<B, 4> {
    guided_eps_with(x, t, labels, omega, |x, t, cond| model.forward(x, t, cond, false).eps)
}

/// [`guided_eps`] with the network as `forward(x, t, cond)`: one call, on [x; x] with the
/// class term kept for the first half and dropped for the second (ω = 0: only the first).
pub fn guided_eps_with<B: FastBackend>(
    x: Tensor<B, 4>,
    t: &[usize],
    labels: &Tensor<B, 1, Int>,
    omega: f64,
    forward: impl FnOnce(Tensor<B, 4>, &[usize], &ClassCond<B>) -> Tensor<B, 4>,
) -> Tensor<B, 4> {
    if omega == 0.0 {
        return forward(x, t, &ClassCond::Labels(labels.clone()));
    }
    let n = x.dims()[0];
    let device = x.device();
    let x2 = Tensor::cat(vec![x.clone(), x], 0);
    let t2: Vec<usize> = t.iter().chain(t.iter()).copied().collect();
    let labels2 = Tensor::cat(vec![labels.clone(), labels.clone()], 0);
    let keep = Tensor::cat(vec![Tensor::<B, 1>::ones([n], &device), Tensor::zeros([n], &device)], 0);
    let eps = forward(x2, &t2, &ClassCond::Masked { labels: labels2, keep });
    let cond = eps.clone().narrow(0, 0, n);
    let uncond = eps.narrow(0, n, n);
    cond.mul_scalar(1.0 + omega) - uncond.mul_scalar(omega)
}

/// What to sample: one entry per image. `ids` name the fixed noise of each image (e.g.
/// (class, slot)), so the same id always starts from, and is driven by, the same noise.
#[derive(Debug, Clone)]
pub struct SampleRequest {
    pub labels: Vec<usize>,
    pub ids: Vec<u64>,
    pub omega: f64,
    pub sampler: SamplerKind,
    pub seed: u64,
    pub channels: usize,
    pub size: usize,
    /// Images per model call (the guided call doubles it).
    pub batch: usize,
}

/// The id of slot `slot` of class `class` in per-class grids.
pub fn grid_id(class: usize, slot: usize) -> u64 {
    ((class as u64) << 32) | slot as u64
}

/// Initial noise x_T of one image, a pure function of (seed, id).
pub fn initial_noise(seed: u64, id: u64, len: usize) -> Vec<f32> {
    rng::normal_vec(&mut rng::rng(seed, Stream::FixedNoise, id), len)
}

fn step_noise(seed: u64, id: u64, t: usize, len: usize) -> Vec<f32> {
    rng::normal_vec(&mut rng::rng(seed ^ id.rotate_left(17), Stream::Sampling, t as u64), len)
}

/// x̂₀ = (x_t − √(1−ᾱ_t)·ε̂) / √ᾱ_t.
fn predict_x0<B: FastBackend>(x: Tensor<B, 4>, eps: Tensor<B, 4>, alpha_bar: f64) -> Tensor<B, 4> {
    (x - eps.mul_scalar((1.0 - alpha_bar).sqrt())).div_scalar(alpha_bar.sqrt())
}

/// Samples images with `eps_fn(x, t)` giving ε̂ for a chunk; the images in [−1, 1], N×C×S×S.
/// `progress(done, total)` is called after every model evaluation; returning `false` cancels
/// (then `Ok(None)`).
pub fn sample_with<B: FastBackend>(
    schedule: &Schedule,
    req: &SampleRequest,
    device: &B::Device,
    mut eps_fn: impl FnMut(Tensor<B, 4>, &[usize], &[usize]) -> Tensor<B, 4>,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Option<Tensor<B, 4>>> {
    let n = req.labels.len();
    if req.ids.len() != n {
        return Err(Error::Other("sample request: one id per label expected".into()));
    }
    let len = req.channels * req.size * req.size;
    let evals = req.sampler.evaluations(schedule.len());
    let chunks: Vec<(usize, usize)> = (0..n).step_by(req.batch.max(1)).map(|s| (s, (s + req.batch.max(1)).min(n))).collect();
    let total = evals * chunks.len();
    let mut done = 0;
    let mut outs = Vec::new();
    for (a, b) in chunks {
        let m = b - a;
        let ids = &req.ids[a..b];
        let labels = &req.labels[a..b];
        let mut init = Vec::with_capacity(m * len);
        for &id in ids {
            init.extend(initial_noise(req.seed, id, len));
        }
        let shape = [m, req.channels, req.size, req.size];
        let mut x = Tensor::<B, 4>::from_data(TensorData::new(init, shape), device);
        match req.sampler {
            SamplerKind::Ddpm { clip_x0 } => {
                for t in (0..schedule.len()).rev() {
                    let ts = vec![t; m];
                    let eps = eps_fn(x.clone(), &ts, labels);
                    let c = schedule.ddpm_step_coefs(t);
                    x = if clip_x0 {
                        let (ab, ab_prev, beta) = (schedule.alpha_bar[t], schedule.alpha_bar_at(t as isize - 1), schedule.betas[t]);
                        let x0 = predict_x0(x.clone(), eps, ab).clamp(-1.0, 1.0);
                        // Posterior mean of q(x_{t−1} | x_t, x̂₀).
                        x0.mul_scalar(ab_prev.sqrt() * beta / (1.0 - ab)) + x.mul_scalar((1.0 - beta).sqrt() * (1.0 - ab_prev) / (1.0 - ab))
                    } else {
                        x.mul_scalar(c.c_xt) + eps.mul_scalar(c.c_eps)
                    };
                    if c.sigma > 0.0 {
                        let mut z = Vec::with_capacity(m * len);
                        for &id in ids {
                            z.extend(step_noise(req.seed, id, t, len));
                        }
                        x = x + Tensor::<B, 4>::from_data(TensorData::new(z, shape), device).mul_scalar(c.sigma);
                    }
                    done += 1;
                    if !progress(done, total) {
                        return Ok(None);
                    }
                }
            }
            SamplerKind::Ddim { steps, final_x0, clip_x0 } => {
                let ts = ddim_timesteps(schedule.len(), steps);
                for (i, &t) in ts.iter().enumerate() {
                    let next = match ts.get(i + 1) {
                        Some(&tn) => schedule.alpha_bar[tn],
                        None if final_x0 => 1.0,
                        None => break, // reference: stop at x at t = 0
                    };
                    let eps = eps_fn(x.clone(), &vec![t; m], labels);
                    x = if clip_x0 {
                        // x' = √ᾱ'·x̂₀ + √(1−ᾱ')·ε̂ with x̂₀ clipped and ε̂ made consistent with it.
                        let ab = schedule.alpha_bar[t];
                        let x0 = predict_x0(x.clone(), eps, ab).clamp(-1.0, 1.0);
                        let eps = (x - x0.clone().mul_scalar(ab.sqrt())).div_scalar((1.0 - ab).sqrt());
                        x0.mul_scalar(next.sqrt()) + eps.mul_scalar((1.0 - next).sqrt())
                    } else {
                        let (cx, ce) = schedule.ddim_step_coefs(t, next);
                        x.mul_scalar(cx) + eps.mul_scalar(ce)
                    };
                    done += 1;
                    if !progress(done, total) {
                        return Ok(None);
                    }
                }
            }
        }
        outs.push(x.clamp(-1.0, 1.0));
    }
    Ok(Some(Tensor::cat(outs, 0)))
}

/// Samples from the U-Net with guidance ω.
pub fn sample<B: FastBackend>(
    model: &UNet<B>,
    schedule: &Schedule,
    req: &SampleRequest,
    device: &B::Device,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Option<Tensor<B, 4>>> {
    // A model without classes ignores the labels: they only pick each image's fixed noise.
    let classes = model.num_classes();
    if let Some(&bad) = req.labels.iter().find(|&&y| classes > 0 && y >= classes) {
        return Err(Error::option("class", format!("class {bad} does not exist; the model has {} classes", model.num_classes())));
    }
    sample_with(
        schedule,
        req,
        device,
        |x, t, labels| {
            let l: Vec<i64> = labels.iter().map(|&y| y as i64).collect();
            let labels = Tensor::<B, 1, Int>::from_data(TensorData::new(l, [labels.len()]), device);
            guided_eps(model, x, t, &labels, req.omega)
        },
        progress,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    type B = burn::backend::Flex;

    fn req(sampler: SamplerKind) -> SampleRequest {
        SampleRequest { labels: vec![0, 1], ids: vec![3, 9], omega: 0.0, sampler, seed: 11, channels: 1, size: 1, batch: 8 }
    }

    #[test]
    fn ddim_timesteps_match_reference() {
        assert_eq!(ddim_timesteps(1000, 4), vec![750, 500, 250, 0]);
        assert_eq!(ddim_timesteps(10, 3), vec![6, 3, 0]);
    }

    /// ε̂ = 0.5·x: run the DDIM loop by hand in f64 and compare, with and without x̂₀ clipping.
    #[test]
    fn ddim_loop_by_hand() {
        let s = Schedule::linear(10, 0.05, 0.3);
        let dev = Default::default();
        for (final_x0, clip_x0) in [(true, false), (false, false), (true, true)] {
            let r = req(SamplerKind::Ddim { steps: 3, final_x0, clip_x0 });
            let out = sample_with::<B>(&s, &r, &dev, |x, _, _| x.mul_scalar(0.5), &mut |_, _| true).unwrap().unwrap();
            let got: Vec<f32> = out.into_data().to_vec().unwrap();
            for (k, &id) in r.ids.iter().enumerate() {
                let mut x = initial_noise(11, id, 1)[0] as f64;
                let ts = [6usize, 3, 0];
                for (i, &t) in ts.iter().enumerate() {
                    let next = if i + 1 < ts.len() {
                        s.alpha_bar[ts[i + 1]]
                    } else if final_x0 {
                        1.0
                    } else {
                        break;
                    };
                    let ab = s.alpha_bar[t];
                    let eps = 0.5 * x;
                    let mut x0 = (x - (1.0 - ab).sqrt() * eps) / ab.sqrt();
                    if clip_x0 {
                        x0 = x0.clamp(-1.0, 1.0);
                    }
                    let eps = (x - ab.sqrt() * x0) / (1.0 - ab).sqrt();
                    x = next.sqrt() * x0 + (1.0 - next).sqrt() * eps;
                }
                let want = x.clamp(-1.0, 1.0);
                assert!((got[k] as f64 - want).abs() < 1e-5, "final_x0={final_x0} clip={clip_x0}: {} vs {want}", got[k]);
            }
        }
    }

    #[test]
    fn clipping_changes_the_trajectory() {
        // ε̂ = 0 makes x̂₀ = x/√ᾱ, far outside [−1, 1] at large t: clipped and unclipped differ.
        let s = Schedule::linear(10, 0.05, 0.3);
        let run = |clip_x0| {
            let r = req(SamplerKind::Ddpm { clip_x0 });
            let out = sample_with::<B>(&s, &r, &Default::default(), |x, _, _| x.zeros_like(), &mut |_, _| true).unwrap().unwrap();
            out.into_data().to_vec::<f32>().unwrap()
        };
        assert_ne!(run(true), run(false));
    }

    /// ε̂ = 0.5·x + 0.1: the DDPM loop against Ho et al.'s Algorithm 2, an independent form of
    /// the step: x_{t−1} = (x_t − β_t/√(1−ᾱ_t)·ε̂)/√α_t + √β_t·z (no z at t = 0), ᾱ recomputed
    /// from the betas; the "fixed large" σ_t = √β_t at every t > 0.
    #[test]
    fn ddpm_loop_by_hand() {
        let s = Schedule::linear(5, 0.1, 0.3);
        let dev = Default::default();
        let r = SampleRequest { channels: 1, size: 2, ..req(SamplerKind::Ddpm { clip_x0: false }) };
        let mut calls = 0;
        let out = sample_with::<B>(
            &s,
            &r,
            &dev,
            |x, t, _| {
                calls += 1;
                assert!(t.iter().all(|&ti| ti == 5 - calls));
                x.mul_scalar(0.5).add_scalar(0.1)
            },
            &mut |_, _| true,
        )
        .unwrap()
        .unwrap();
        assert_eq!(calls, 5);
        let got: Vec<f32> = out.into_data().to_vec().unwrap();
        let betas: Vec<f64> = (0..5).map(|k| 0.1 + 0.05 * k as f64).collect();
        let alpha_bar: Vec<f64> = betas
            .iter()
            .scan(1.0, |acc, b| {
                *acc *= 1.0 - b;
                Some(*acc)
            })
            .collect();
        let mut inside = 0;
        for (k, &value) in got.iter().enumerate() {
            let (id, e) = (r.ids[k / 4], k % 4);
            let mut x = initial_noise(11, id, 4)[e] as f64;
            for t in (0..5).rev() {
                let eps = 0.5 * x + 0.1;
                x = (x - betas[t] / (1.0 - alpha_bar[t]).sqrt() * eps) / (1.0 - betas[t]).sqrt();
                if t > 0 {
                    x += betas[t].sqrt() * step_noise(11, id, t, 4)[e] as f64;
                }
            }
            inside += usize::from(x.abs() < 1.0);
            assert!((value as f64 - x.clamp(-1.0, 1.0)).abs() < 1e-5, "element {k}: {value} vs {x}");
        }
        assert!(inside > 0, "every value was clipped: the test would not see the loop");
    }

    /// A stand-in network whose ε depends on whether the class term is kept: ε = x + keep·10(y+1)
    /// per image. `FnOnce`, so at most one call; checks that call is on [x; x] with t twice.
    fn fake_forward(n: usize, t: &[usize], omega: f64) -> impl FnOnce(Tensor<B, 4>, &[usize], &ClassCond<B>) -> Tensor<B, 4> {
        let t = t.to_vec();
        move |x, t2, cond| {
            let [rows, c, h, w] = x.dims();
            let len = c * h * w;
            let ints = |l: &Tensor<B, 1, Int>| l.to_data().convert::<i64>().to_vec::<i64>().unwrap();
            let (labels, keep) = match cond {
                ClassCond::Labels(l) => (ints(l), vec![1.0f32; rows]),
                ClassCond::Masked { labels, keep } => (ints(labels), keep.to_data().convert::<f32>().to_vec::<f32>().unwrap()),
                ClassCond::Uncond => (vec![0; rows], vec![0.0; rows]),
            };
            let halves = if omega == 0.0 { 1 } else { 2 };
            assert_eq!(rows, halves * n);
            let want_t: Vec<usize> = (0..halves).flat_map(|_| t.iter().copied()).collect();
            assert_eq!(t2, want_t.as_slice());
            let xs: Vec<f32> = x.to_data().convert::<f32>().to_vec().unwrap();
            if halves == 2 {
                assert_eq!(xs[..n * len], xs[n * len..], "both halves see the same x");
            }
            let out: Vec<f32> = (0..rows * len).map(|k| xs[k] + keep[k / len] * 10.0 * (labels[k / len] + 1) as f32).collect();
            Tensor::from_data(TensorData::new(out, [rows, c, h, w]), &x.device())
        }
    }

    #[test]
    fn guidance_combines_cond_and_uncond_by_hand() {
        let dev = Default::default();
        // Two images of 1×1×2, classes 0 and 3 → class terms 10 and 40.
        let x = Tensor::<B, 4>::from_data(TensorData::new(vec![0.5f32, -1.0, 2.0, 0.25], [2, 1, 1, 2]), &dev);
        let labels = Tensor::<B, 1, Int>::from_data(TensorData::new(vec![0i64, 3], [2]), &dev);
        let t = [7usize, 2];
        // ε_c = x + term, ε_u = x, so (1+ω)·ε_c − ω·ε_u = x + (1+ω)·term; swapped halves would
        // give x − ω·term.
        let cases: [(f64, [f32; 4]); 3] = [(0.0, [10.5, 9.0, 42.0, 40.25]), (2.0, [30.5, 29.0, 122.0, 120.25]), (0.5, [15.5, 14.0, 62.0, 60.25])];
        for (omega, want) in cases {
            let got = guided_eps_with(x.clone(), &t, &labels, omega, fake_forward(2, &t, omega));
            let got: Vec<f32> = got.into_data().to_vec().unwrap();
            assert_eq!(got, want, "ω = {omega}");
        }
    }

    /// With the real U-Net: the batched guided call equals (1+ω)·ε(x, y) − ω·ε(x, ∅) from two
    /// separate calls (the masked class term at keep = 0 is the unconditional model).
    #[test]
    fn guidance_with_the_unet_matches_separate_calls() {
        let dev = Default::default();
        use crate::weights::{self, NamedParam};
        let model: UNet<B> = crate::model::Preset::Tiny.config(1, 3, 8).unwrap().init(&dev);
        // At init the class term barely reaches ε (each ResBlock's last conv and the tail start
        // near zero), so every parameter is redrawn, N(0, 0.05²), the class embedding N(0, 1)
        // to make the class term as large as the time term.
        let mut r = rng::rng(5, Stream::Init, 0);
        let values = weights::collect(&model)
            .into_iter()
            .map(|p| {
                let n = p.shape.iter().product::<usize>();
                let std = if p.path.starts_with("class_emb") { 1.0 } else { 0.05 };
                let v: Vec<f32> = rng::normal_vec(&mut r, n).into_iter().map(|z| std * z).collect();
                (p.path.clone(), NamedParam { value: Tensor::from_data(TensorData::new(v, [n]), &dev), ..p })
            })
            .collect();
        let model = weights::load(model, values).unwrap();
        let x = Tensor::<B, 4>::from_data(TensorData::new(rng::normal_vec(&mut rng::rng(5, Stream::Analysis, 0), 2 * 64), [2, 1, 8, 8]), &dev);
        let labels = Tensor::<B, 1, Int>::from_data(TensorData::new(vec![2i64, 0], [2]), &dev);
        let t = [900usize, 10];
        let vec = |e: Tensor<B, 4>| e.into_data().convert::<f32>().to_vec::<f32>().unwrap();
        let cond = vec(model.forward(x.clone(), &t, &ClassCond::Labels(labels.clone()), false).eps);
        let uncond = vec(model.forward(x.clone(), &t, &ClassCond::Uncond, false).eps);
        let scale = cond.iter().chain(&uncond).fold(0.0f32, |a, &b| a.max(b.abs()));
        let gap = cond.iter().zip(&uncond).fold(0.0f32, |a, (c, u)| a.max((c - u).abs()));
        // The class term must matter, or the test could not tell the halves apart.
        assert!(gap > 1e-2 * scale, "cond and uncond barely differ: {gap} of {scale}");
        for omega in [0.0, 1.5] {
            let got = vec(guided_eps(&model, x.clone(), &t, &labels, omega));
            for k in 0..got.len() {
                let want = (1.0 + omega as f32) * cond[k] - omega as f32 * uncond[k];
                assert!((got[k] - want).abs() <= 1e-4 * scale, "ω = {omega}, element {k}: {} vs {want}", got[k]);
            }
        }
    }

    /// DDPM with x̂₀ clipping, ε̂ a fixed vector: every step from the x the sampler passed in,
    /// by hand in f64 with ᾱ recomputed from the betas:
    /// x̂₀ = clip(√(1/ᾱ_t)·x_t − √(1/ᾱ_t − 1)·ε̂), x_{t−1} = β_t√ᾱ_{t−1}/(1−ᾱ_t)·x̂₀ +
    /// (1−ᾱ_{t−1})√α_t/(1−ᾱ_t)·x_t + √β_t·z (no z at t = 0).
    #[test]
    fn ddpm_clipped_step_by_hand() {
        let s = Schedule::linear(6, 0.05, 0.4);
        let dev = Default::default();
        let r = SampleRequest { channels: 1, size: 2, ..req(SamplerKind::Ddpm { clip_x0: true }) };
        let len = 4;
        let eps_hat = [-2.0f32, -0.3, 0.4, 1.7, 0.0, 0.9, -1.1, 2.5];
        let mut seen: Vec<(usize, Vec<f32>)> = Vec::new();
        let out = sample_with::<B>(
            &s,
            &r,
            &dev,
            |x, t, _| {
                seen.push((t[0], x.to_data().convert::<f32>().to_vec().unwrap()));
                Tensor::from_data(TensorData::new(eps_hat.to_vec(), [2, 1, 2, 2]), &dev)
            },
            &mut |_, _| true,
        )
        .unwrap()
        .unwrap();
        let out: Vec<f32> = out.into_data().to_vec().unwrap();
        assert_eq!(seen.len(), 6);
        let mut ab = Vec::new();
        let mut acc = 1.0f64;
        for &b in &s.betas {
            acc *= 1.0 - b;
            ab.push(acc);
        }
        let (mut clipped, mut inside) = (0, 0);
        for (i, (t, x)) in seen.iter().enumerate() {
            let t = *t;
            assert_eq!(t, 5 - i);
            let (a, a_prev, beta) = (ab[t], if t > 0 { ab[t - 1] } else { 1.0 }, s.betas[t]);
            for k in 0..2 * len {
                let (xt, e) = (x[k] as f64, eps_hat[k] as f64);
                let raw = (1.0 / a).sqrt() * xt - (1.0 / a - 1.0).sqrt() * e;
                if raw.abs() > 1.0 {
                    clipped += 1
                } else {
                    inside += 1
                }
                let x0 = raw.clamp(-1.0, 1.0);
                let mean = beta * a_prev.sqrt() / (1.0 - a) * x0 + (1.0 - a_prev) * (1.0 - beta).sqrt() / (1.0 - a) * xt;
                let (got, want) = if t > 0 {
                    let z = step_noise(11, r.ids[k / len], t, len)[k % len] as f64;
                    (seen[i + 1].1[k] as f64, mean + beta.sqrt() * z)
                } else {
                    (out[k] as f64, mean.clamp(-1.0, 1.0))
                };
                assert!((got - want).abs() < 1e-4, "t = {t}, element {k}: {got} vs {want}");
            }
        }
        // Both sides of the clip were exercised.
        assert!(clipped > 0 && inside > 0, "{clipped} clipped, {inside} inside");
    }

    #[test]
    fn cancel_stops_early() {
        let s = Schedule::linear(5, 0.1, 0.3);
        let r = req(SamplerKind::Ddpm { clip_x0: false });
        let out = sample_with::<B>(&s, &r, &Default::default(), |x, _, _| x, &mut |done, _| done < 2).unwrap();
        assert!(out.is_none());
    }

    #[test]
    fn fixed_noise_depends_on_id_only() {
        assert_eq!(initial_noise(1, grid_id(3, 2), 4), initial_noise(1, grid_id(3, 2), 4));
        assert_ne!(initial_noise(1, grid_id(3, 2), 4), initial_noise(1, grid_id(2, 3), 4));
    }
}
