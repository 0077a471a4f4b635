//! What the lab asks its host to do, returned by `Lab::ui` each frame.

use crate::store::{LatentSettings, RunId, SampleSettings, TransferSettings};
use serde::{Deserialize, Serialize};

/// What the lab asks of its front end: the engine host's work, or what only the front end does
/// (closing a run in its view, writing an export: a page downloads it, the desktop writes it).
#[derive(Debug, Clone, PartialEq)]
pub enum UiCommand {
    Host(HostCommand),
    /// Close the run (its engine keeps running if live).
    Close(RunId),
    /// Write this file (the host reports back with `Intake::Exported`).
    Export {
        path: String,
        data: ExportData,
    },
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

/// The contents of an exported file.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportData {
    Text(String),
    /// An RGBA image, to be written as PNG.
    Image {
        width: usize,
        height: usize,
        rgba: Vec<u8>,
    },
}
