//! What crosses a boundary between the engine host and a front end, defined once: the commands
//! a front end sends ([`HostCommand`]), the messages the host feeds the lab ([`Intake`]), and
//! the web lab's wire — what a page gets when it opens ([`Hello`]) and the live channel
//! ([`Live`]). Images do not travel in these messages: a page fetches them as PNG (or raw
//! thumbnails) by URL, and metrics as columns.

use crate::metrics::Metrics;
use crate::run::{GridImage, RunData, RunId, RunSnapshot, ThumbnailShape, ViewGrid};
use crate::settings::{LatentSettings, SampleSettings, TransferSettings};
use crate::{BackendChoice, Entanglement, Event, LatentMap, TransferAnalysis};
use serde::{Deserialize, Serialize};

/// Each method's hyper-parameters as the controls offer them: (method name, [(config key,
/// default as TOML)]).
pub type MethodParams = Vec<(String, Vec<(String, String)>)>;

/// The hyper-parameters of method `name`.
pub fn params_of<'a>(all: &'a MethodParams, name: &str) -> &'a [(String, String)] {
    all.iter().find(|(m, _)| m == name).map_or(&[], |(_, p)| p.as_slice())
}

/// What a host can start: its built-in configs, each method's parameters, its backends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    pub configs: Vec<String>,
    pub method_params: MethodParams,
    pub backends: Vec<BackendChoice>,
}

/// What a front end asks the engine host to do (the desktop directly, a page over HTTP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HostCommand {
    /// Start a run with these `ltlab train` arguments.
    Start(Vec<String>),
    /// Load the config's dataset at ρ for the controls' histogram and images.
    PreviewData {
        config: String,
        imbalance: f64,
    },
    Pause(RunId),
    Resume(RunId),
    Stop(RunId),
    SampleNow(RunId),
    /// Open the run directory at this path.
    Open(String),
    /// Compute a latent map of the run's checkpoint at `step`.
    LatentMap {
        run: RunId,
        step: u64,
        settings: LatentSettings,
    },
    /// Compute the entanglement at every checkpoint of the run.
    Entanglement {
        run: RunId,
        settings: LatentSettings,
    },
    /// Compute OC's transfer probability on the run's training data.
    Transfer {
        run: RunId,
        settings: TransferSettings,
    },
    /// Sample the run's checkpoint `step` into a per-class grid with these settings.
    Sample {
        run: RunId,
        step: u64,
        settings: SampleSettings,
    },
    CancelJob(u64),
}

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

/// What a page gets when it opens: the server's state as of live message `seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub seq: u64,
    pub offer: Offer,
    pub runs: Vec<RunSnapshot>,
    pub jobs: Vec<JobView>,
    /// The server refuses commands (`--read-only`).
    pub read_only: bool,
}

/// One message of the live channel; `seq` counts up by one per message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Live {
    pub seq: u64,
    pub msg: LiveMsg,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LiveMsg {
    /// A run opened or started on the server (or re-read): the page (re)loads it.
    Run(RunSnapshot),
    Engine(RunId, Event),
    /// A training grid at `/api/runs/{id}/grids/{step}`.
    Grid(RunId, u64),
    /// A latent map; its thumbnails, if any, at `/api/runs/{id}/latents/{index}`.
    Latent {
        run: RunId,
        index: usize,
        map: LatentMap,
        thumbnails: Option<ThumbnailShape>,
    },
    /// A view-time grid at `/api/runs/{id}/view-grids/{index}`.
    ViewGrid {
        run: RunId,
        index: usize,
        step: u64,
        settings: SampleSettings,
    },
    DataPreview(DataPreview),
    Transfer(RunId, TransferAnalysis),
    Entanglement(RunId, usize, bool, Vec<Entanglement>),
    Job(JobView),
    JobEnded(u64),
    Error(String),
}

/// The body of every error the server answers with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}
