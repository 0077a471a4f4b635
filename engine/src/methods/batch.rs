//! The data of one training step as the methods see it: the batch on the host (where OC swaps
//! targets), the same batch on the device, and what every method may read about the run.

use crate::diffusion::Schedule;
use crate::ops::FastBackend;
use burn::prelude::*;

/// What every method may read about the run.
pub struct StepContext<'a> {
    pub schedule: &'a Schedule,
    /// Training images per class (long-tailed).
    pub counts: &'a [usize],
    /// q(y) = count / total.
    pub q: &'a [f64],
    pub seed: u64,
    pub step: u64,
}

/// The batch of a step on the host, before anything is uploaded.
#[derive(Debug, Clone)]
pub struct HostBatch {
    /// `[B, C, S, S]`.
    pub shape: [usize; 4],
    pub x0: Vec<f32>,
    pub eps: Vec<f32>,
    pub t: Vec<usize>,
    /// Dataset index of each image.
    pub indices: Vec<usize>,
    pub labels: Vec<usize>,
    /// Whether each sample's label was kept (CFG label drop).
    pub keep: Vec<bool>,
    /// The whole batch went unconditional (per-batch label drop).
    pub uncond_batch: bool,
    /// Regression target of the base loss: ε unless a method replaced it.
    pub target: Vec<f32>,
}

impl HostBatch {
    pub fn len(&self) -> usize {
        self.shape[0]
    }

    pub fn is_empty(&self) -> bool {
        self.shape[0] == 0
    }

    pub fn image_len(&self) -> usize {
        self.shape[1] * self.shape[2] * self.shape[3]
    }

    pub fn any_kept(&self) -> bool {
        self.keep.iter().any(|&k| k)
    }
}

/// The batch on the device; the step builds it, x_t = q(x₀, t, ε) in plain sight.
pub struct Batch<B: Backend> {
    pub host: HostBatch,
    pub x0: Tensor<B, 4>,
    pub eps: Tensor<B, 4>,
    pub x_t: Tensor<B, 4>,
    pub target: Tensor<B, 4>,
}

impl<B: FastBackend> Batch<B> {
    /// A host vector of the batch's image shape (x₀, ε, a target) on the device.
    pub fn images(host: &HostBatch, v: &[f32], device: &B::Device) -> Tensor<B, 4> {
        Tensor::from_data(TensorData::new(v.to_vec(), host.shape), device)
    }

    /// A per-sample host vector as a `[B]` tensor.
    pub fn per_sample(&self, v: Vec<f32>) -> Tensor<B, 1> {
        let n = v.len();
        Tensor::from_data(TensorData::new(v, [n]), &self.x0.device())
    }

    /// t/T per sample.
    pub fn t_frac(&self, schedule: &Schedule) -> Vec<f32> {
        self.host.t.iter().map(|&t| t as f32 / schedule.len() as f32).collect()
    }

    /// 1 where the label was kept, 0 where dropped.
    pub fn keep_mask(&self) -> Vec<f32> {
        self.host.keep.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect()
    }
}

/// Mean over all elements of each sample: `[B, …] → [B]`.
pub fn per_sample_mean<B: FastBackend>(x: Tensor<B, 4>) -> Tensor<B, 1> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c * h * w]).mean_dim(1).reshape([b])
}
