//! Types shared by the engine, the desktop lab and the web app.
//!
//! Nothing here depends on Burn, so the UI panels that read these types compile to wasm.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Number of diffusion-time buckets the per-step loss is split into.
pub const T_BUCKETS: usize = 10;

/// What a dataset looks like after the long-tail profile was applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetSummary {
    /// Short dataset name, e.g. `cifar10`.
    pub name: String,
    pub class_names: Vec<String>,
    /// Images per class in the long-tailed training set (class 0 = head).
    pub counts: Vec<usize>,
    pub total: usize,
    /// Class frequency q(y) = count / total.
    pub q: Vec<f64>,
    /// Hash of the selected images and labels (hex).
    pub fingerprint: String,
    pub channels: usize,
    pub image_size: usize,
    /// Ground truth of the synthetic set: the head class each tail class resembles and the
    /// attributes they share. Empty for real datasets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resembles: Vec<Resemblance>,
}

/// A tail class that was generated to share attributes with a head class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resemblance {
    pub class: usize,
    pub head_class: usize,
    /// Which attributes are shared, e.g. `["shape", "colour"]`.
    pub shared: Vec<String>,
}

/// Everything logged for one training step (one line of `metrics.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: u64,
    /// Every loss term by name; `total` is the optimised sum, `mse` the base ε loss.
    pub losses: BTreeMap<String, f64>,
    /// Mean base loss per diffusion-time bucket (`T_BUCKETS` equal ranges of t); `None` where
    /// the batch had no sample in that bucket.
    pub loss_by_t: Vec<Option<f64>>,
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    pub images_per_s: f64,
    /// Whether the whole batch was trained unconditionally (per-batch label drop).
    pub uncond_batch: bool,
    /// Mean base loss per class; `None` where the batch had no image of that class.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loss_by_class: Vec<Option<f64>>,
    /// The swaps OC (T2H/H2T/Full) actually made in this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfers: Option<TransferCounts>,
}

/// Swaps made by OC's target transform in one step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TransferCounts {
    /// Samples per t-bucket (`T_BUCKETS` equal ranges of t).
    pub samples_by_t: Vec<u32>,
    /// Samples per t-bucket whose target was swapped to another image (j ≠ i).
    pub swaps_by_t: Vec<u32>,
    /// `(from class, to class, count)` of the swaps, sorted.
    pub pairs: Vec<(usize, usize, u32)>,
}

/// Messages from the engine to its host (CLI or lab).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    Started { run_dir: String, first_step: u64, total_steps: u64 },
    Step(StepRecord),
    CheckpointSaved { step: u64, path: String },
    SamplesWritten { step: u64, path: String },
    Paused { step: u64 },
    Resumed { step: u64 },
    /// Training ended normally (all steps done, or stopped on request).
    Finished { step: u64, stopped: bool },
    /// Training ended with an error; `last_checkpoint` is the newest good one.
    Failed { message: String, last_checkpoint: Option<u64> },
}

/// Messages from the host to the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    Pause,
    Resume,
    /// Stop after the current step, writing a checkpoint first.
    Stop,
    /// Write an EMA sample grid now.
    SampleNow,
}
