//! What the lab asks its host to do, returned by `Lab::ui` each frame.

use crate::store::{LatentSettings, RunId, SampleSettings, TransferSettings};

/// What the lab asks its host to do.
#[derive(Debug, Clone, PartialEq)]
pub enum UiCommand {
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
    /// Close the run (its engine keeps running if live).
    Close(RunId),
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
    /// Write this file (the host reports back with `Intake::Exported`).
    Export {
        path: String,
        data: ExportData,
    },
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
