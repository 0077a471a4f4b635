//! What the host feeds the lab, one message at a time: runs read or started, engine events,
//! decoded grids, analysis results, the background jobs computing them, and the new run's
//! dataset preview.

use super::metrics::Metrics;
use super::run::{GridImage, RunData, RunId, ViewGrid};
use ltlab_types::{Entanglement, Event, LatentMap, TransferAnalysis};
use serde::{Deserialize, Serialize};

/// A config's training set at a ρ as the controls show it: class counts and the first few
/// images of each class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataPreview {
    pub config: String,
    pub imbalance: f64,
    pub dataset: String,
    pub class_names: Vec<String>,
    pub counts: Vec<usize>,
    /// Per class: its first few images, 8-bit, each channels × size × size.
    pub images: Vec<Vec<u8>>,
    pub channels: usize,
    pub size: usize,
}

/// A background job of the host (latent map, entanglement sweep) as the lab shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub id: u64,
    pub run: RunId,
    pub label: String,
    pub progress: f32,
    /// The layout so far with its labels (n × 2), for a live preview.
    pub preview: Option<(Vec<usize>, Vec<f32>)>,
    pub kind: JobKind,
}

/// What a job computes (each panel shows its own kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobKind {
    Latent,
    Transfer,
    Sample,
}

/// What the host feeds the lab.
#[derive(Debug, Clone)]
pub enum Intake {
    /// A run read from its directory (or just created); boxed, the largest message by far.
    Opened(Box<RunData>),
    Engine(RunId, Event),
    /// A run's whole log read afresh, in place of the one it has (the web page draws the loss
    /// curves first and fills in the rest after).
    Metrics(RunId, Box<Metrics>),
    /// A sample grid decoded from the PNG the engine wrote.
    Grid(RunId, u64, GridImage),
    Latent(RunId, LatentMap),
    /// A grid sampled at view time.
    ViewGrid(RunId, ViewGrid),
    /// The new run's dataset, for the controls.
    DataPreview(DataPreview),
    /// An export was written to this path.
    Exported(String),
    Transfer(RunId, TransferAnalysis),
    Entanglement(RunId, usize, bool, Vec<Entanglement>),
    /// A job started or moved on.
    Job(JobView),
    /// A job ended (its result, if any, arrives as its own message).
    JobEnded(u64),
    Error(String),
}
