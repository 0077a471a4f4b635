//! What the lab asks its host to do, returned by `Lab::ui` each frame.

use crate::store::{HostCommand, RunId};

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
