//! The settings the views ask the host to compute with (a latent map, a transfer analysis, a
//! grid sampled at view time), persisted with the lab's state, and which stored result each
//! setting matches.

use ltlab_types::{LatentMap, TransferAnalysis};
use serde::{Deserialize, Serialize};

/// How the grids panel samples a checkpoint at view time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SampleSettings {
    /// `ddpm` or `ddim`.
    pub sampler: String,
    /// DDIM's number of steps.
    pub ddim_steps: usize,
    /// Clip x̂₀ to [−1, 1] at every step.
    pub clip: bool,
    /// Guidance ω.
    pub omega: f64,
    /// Fixed-noise images per class.
    pub per_class: usize,
}

impl Default for SampleSettings {
    fn default() -> Self {
        // Clipped like the demo presets' grids: a young model's samples stay in range.
        Self { sampler: "ddim".into(), ddim_steps: 50, clip: true, omega: 0.0, per_class: 8 }
    }
}

/// The settings of the transfer view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TransferSettings {
    pub mode: String,
    pub sampler: String,
    pub batch: usize,
    /// t of the class→class matrix.
    pub matrix_t: usize,
}

impl Default for TransferSettings {
    fn default() -> Self {
        Self { mode: "t2h".into(), sampler: "balanced".into(), batch: 128, matrix_t: 300 }
    }
}

impl TransferSettings {
    /// The settings an analysis was made with.
    pub fn of(a: &TransferAnalysis) -> Self {
        Self { mode: a.mode.clone(), sampler: a.sampler.clone(), batch: a.batch, matrix_t: a.matrix_t }
    }

    pub fn matches(&self, a: &TransferAnalysis) -> bool {
        a.mode == self.mode && a.sampler == self.sampler && a.batch == self.batch && a.matrix_t == self.matrix_t
    }
}

/// The settings of a latent map (besides run and step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LatentSettings {
    /// `pca`, `tsne` or `umap`.
    pub method: String,
    pub t: usize,
    pub per_class: usize,
    pub k: usize,
    pub conditional: bool,
}

impl Default for LatentSettings {
    fn default() -> Self {
        Self { method: "umap".into(), t: 100, per_class: 100, k: 10, conditional: true }
    }
}

impl LatentSettings {
    /// The settings a map was made with.
    pub fn of(m: &LatentMap) -> Self {
        Self { method: m.method.clone(), t: m.t, per_class: m.per_class, k: m.entanglement.k, conditional: m.conditional }
    }

    pub fn matches(&self, m: &LatentMap) -> bool {
        m.method == self.method && m.t == self.t && m.conditional == self.conditional && m.entanglement.k == self.k && m.per_class == self.per_class
    }
}
