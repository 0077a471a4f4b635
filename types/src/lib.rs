//! Types shared by the engine, the engine host, the desktop lab and the web app, each defined
//! once: what the engine logs and computes (here), a run as the lab holds it ([`run`], its log
//! in columns in [`metrics`]), the settings views compute with ([`settings`]), and the
//! protocol between a host and its front ends ([`protocol`]).
//!
//! Nothing here depends on Burn, so the UI panels that read these types compile to wasm.

mod codec;
pub mod metrics;
mod options;
pub mod protocol;
pub mod run;
pub mod settings;

pub use metrics::Metrics;
pub use options::{BackendChoice, BackendKind, BatchSampler, DeviceClass, EmbedMethod, OcMode, ParseError, SamplerKind};
pub use protocol::{DataPreview, ErrorBody, Hello, HostCommand, Intake, JobKind, JobView, Live, LiveMsg, MethodParams, Offer, params_of};
pub use run::{EvalSummary, GridImage, RealisedSwaps, RunData, RunHeader, RunId, RunSnapshot, RunStatus, ThumbnailShape, ViewGrid};
use serde::{Deserialize, Serialize};
pub use settings::{LatentSettings, SampleSettings, TransferSettings};
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
    Started {
        run_dir: String,
        first_step: u64,
        total_steps: u64,
    },
    Step(StepRecord),
    CheckpointSaved {
        step: u64,
        path: String,
    },
    SamplesWritten {
        step: u64,
        path: String,
    },
    Paused {
        step: u64,
    },
    Resumed {
        step: u64,
    },
    /// Training ended normally (all steps done, or stopped on request).
    Finished {
        step: u64,
        stopped: bool,
    },
    /// Training ended with an error; `last_checkpoint` is the newest good one.
    Failed {
        message: String,
        last_checkpoint: Option<u64>,
    },
    /// A checkpoint newer than the one the run resumes from does not load: it was kept aside
    /// (renamed to `kept_as`, not deleted).
    CheckpointDamaged {
        path: String,
        error: String,
        kept_as: String,
        resumed_from: u64,
    },
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

/// How entangled a model's bottleneck is per class, on real images at one diffusion time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entanglement {
    pub step: u64,
    pub t: usize,
    /// Neighbours of the purity.
    pub k: usize,
    /// Real images per class it was measured on (0: not recorded, lists of older versions).
    #[serde(default)]
    pub per_class: usize,
    /// Per class: mean fraction of a point's k nearest bottleneck neighbours of its own class.
    pub purity: Vec<f64>,
    /// Per class: mean silhouette (Euclidean) of its points; higher is better separated.
    pub silhouette: Vec<f64>,
}

impl Entanglement {
    /// Measured the same way (k and images per class), so comparable over steps.
    pub fn same_measure(&self, k: usize, per_class: usize) -> bool {
        self.k == k && self.per_class == per_class
    }
}

/// A 2-D map of bottleneck features of real images (the lab's latent map; `ltlab analyze
/// latents` writes the same as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatentMap {
    pub step: u64,
    pub t: usize,
    pub method: EmbedMethod,
    /// Whether the network was given the true class (else the unconditional forward).
    pub conditional: bool,
    /// Real images asked for per class (a class with fewer gives all it has).
    pub per_class: usize,
    pub class_names: Vec<String>,
    /// Images per class in the long-tailed training set.
    pub train_counts: Vec<usize>,
    /// Class of every point.
    pub labels: Vec<usize>,
    /// Index of every point's image in the balanced real data.
    pub indices: Vec<usize>,
    /// Coordinates, n × 2 row-major.
    pub xy: Vec<f32>,
    pub entanglement: Entanglement,
    /// The images themselves (8-bit, N × C × S × S), for hovering; not written to files.
    #[serde(skip)]
    pub images: Option<Thumbnails>,
}

impl LatentMap {
    /// A copy without its thumbnails (which can be tens of MB).
    pub fn without_images(&self) -> Self {
        Self {
            step: self.step,
            t: self.t,
            method: self.method,
            conditional: self.conditional,
            per_class: self.per_class,
            class_names: self.class_names.clone(),
            train_counts: self.train_counts.clone(),
            labels: self.labels.clone(),
            indices: self.indices.clone(),
            xy: self.xy.clone(),
            entanglement: self.entanglement.clone(),
            images: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Thumbnails {
    pub channels: usize,
    pub size: usize,
    pub pixels: Vec<u8>,
}

/// A distinct colour per class: Tableau-10 for the first ten, then golden-angle hues.
pub fn class_colour(c: usize) -> [u8; 3] {
    const TAB10: [[u8; 3]; 10] = [
        [31, 119, 180],
        [255, 127, 14],
        [44, 160, 44],
        [214, 39, 40],
        [148, 103, 189],
        [140, 86, 75],
        [227, 119, 194],
        [127, 127, 127],
        [188, 189, 34],
        [23, 190, 207],
    ];
    if c < TAB10.len() {
        return TAB10[c];
    }
    // HSV with s = 0.65, v = 0.9 and hue stepping by the golden angle.
    let h = (c as f64 * 137.507_764) % 360.0 / 60.0;
    let (s, v) = (0.65, 0.9);
    let x = v * s * (1.0 - ((h % 2.0) - 1.0).abs());
    let m = v - v * s;
    let (r, g, b) = match h as u32 {
        0 => (v * s, x, 0.0),
        1 => (x, v * s, 0.0),
        2 => (0.0, v * s, x),
        3 => (0.0, x, v * s),
        4 => (x, 0.0, v * s),
        _ => (v * s, 0.0, x),
    };
    [((r + m) * 255.0) as u8, ((g + m) * 255.0) as u8, ((b + m) * 255.0) as u8]
}

/// Many / Medium / Few (SPEC §5): classes sorted by training count (descending, ties by index),
/// round(C/3) each for the first two, the rest Few.
pub fn class_splits(counts: &[usize]) -> [Vec<usize>; 3] {
    let c = counts.len();
    let mut order: Vec<usize> = (0..c).collect();
    order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
    let third = ((c as f64) / 3.0).round() as usize;
    [order[..third].to_vec(), order[third..(2 * third).min(c)].to_vec(), order[(2 * third).min(c)..].to_vec()]
}

/// OC's transfer probability on a run's training data (no model needed): P(t) overall and per
/// anchor class on a grid of t, and the class→class matrix at one t (SPEC §4.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferAnalysis {
    pub mode: OcMode,
    pub sampler: BatchSampler,
    pub batch: usize,
    pub t: Vec<usize>,
    pub p_transfer: Vec<f64>,
    /// `per_class[k][c]`: P(t_k) for anchors of class c (`None` where none was drawn).
    pub per_class: Vec<Vec<Option<f64>>>,
    pub matrix_t: usize,
    /// Row a: where anchors of class a take their target from (`None`: no anchor of a).
    pub matrix: Vec<Option<Vec<f64>>>,
    /// Diffusion steps T of the schedule.
    pub timesteps: usize,
}
