//! What the method tests share: the test backend, batches on the host and on the device, a
//! model with every parameter drawn, and small numeric helpers.

pub type AB = burn::backend::Autodiff<burn::backend::Flex>;
use super::{Batch, HostBatch};
use crate::diffusion::Schedule;
use burn::prelude::*;

pub fn t1(v: &[f32]) -> Tensor<AB, 1> {
    Tensor::from_floats(v, &Default::default())
}

pub fn vals<B: Backend, const D: usize>(x: Tensor<B, D>) -> Vec<f32> {
    x.into_data().convert::<f32>().to_vec().unwrap()
}

pub fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

/// Every parameter redrawn N(0, 0.05²) from `seed`: the output layers that start near
/// zero, and CM's B = 0, would hide what a test looks for.
pub fn redrawn(model: crate::model::UNet<AB>, seed: u64) -> crate::model::UNet<AB> {
    use crate::weights::{self, NamedParam};
    let dev = Default::default();
    let mut r = crate::rng::rng(seed, crate::rng::Stream::Init, 0);
    let values = weights::collect(&model)
        .into_iter()
        .map(|p| {
            let n = p.shape.iter().product::<usize>();
            let v: Vec<f32> = crate::rng::normal_vec(&mut r, n).into_iter().map(|z| 0.05 * z).collect();
            (p.path.clone(), NamedParam { value: Tensor::from_data(TensorData::new(v, [n]), &dev), ..p })
        })
        .collect();
    weights::load(model, values).unwrap()
}

/// A batch of the given images, noise, t and labels: dataset indices 0…n, every label kept,
/// the target ε.
pub fn host_batch(shape: [usize; 4], x0: Vec<f32>, eps: Vec<f32>, t: Vec<usize>, labels: Vec<usize>) -> HostBatch {
    let n = shape[0];
    HostBatch { shape, x0, target: eps.clone(), eps, t, indices: (0..n).collect(), labels, keep: vec![true; n], uncond_batch: false }
}

/// A batch of `n` random 1×8×8 images at the given t and labels, every label kept.
pub fn random_batch(n: usize, t: Vec<usize>, labels: Vec<usize>, seed: u64) -> HostBatch {
    let mut r = crate::rng::rng(seed, crate::rng::Stream::Noise, 0);
    let eps = crate::rng::normal_vec(&mut r, n * 64);
    let x0 = crate::rng::normal_vec(&mut r, n * 64);
    host_batch([n, 1, 8, 8], x0, eps, t, labels)
}

/// The batch on the test device, x_t = q(x₀, t, ε) as the step computes it.
pub fn upload(host: HostBatch, schedule: &Schedule) -> Batch<AB> {
    let dev = Default::default();
    let (x0, eps, target) = (Batch::images(&host, &host.x0, &dev), Batch::images(&host, &host.eps, &dev), Batch::images(&host, &host.target, &dev));
    let x_t = schedule.noise(x0.clone(), eps.clone(), &host.t);
    Batch { host, x0, eps, x_t, target }
}

/// Σ of the squared gradients of every parameter of `model` from `loss`.
pub fn grad_sq(model: &crate::model::UNet<AB>, loss: Tensor<AB, 1>) -> f64 {
    let grads = loss.backward();
    crate::train::optim::grad_squares::<AB, _>(model, &grads, &Default::default()).into_scalar() as f64
}

/// Three 1×1×2 images of classes 0, 1, 2 at the given t, every label kept: small enough to
/// compute a loss by hand.
pub fn small_batch(t: Vec<usize>) -> HostBatch {
    host_batch([3, 1, 1, 2], vec![0.1, -0.2, 0.3, 0.4, -0.5, 0.6], vec![0.7, 0.8, -0.9, 1.0, 0.2, -0.3], t, vec![0, 1, 2])
}
