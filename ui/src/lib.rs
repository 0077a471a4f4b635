//! The lab's panels over a run store. Plain egui: no Burn, no threads, no files — the host
//! (desktop app, later the web app) feeds `Intake` messages and carries out `UiCommand`s.

mod command;
pub mod export;
pub mod lab;
mod panels;
pub mod remote;
pub mod series;
pub mod store;

pub use lab::{ExportData, HostCommand, Lab, LabState, MethodParams, NewRun, UiCommand, VIEWS, View, ViewEntry};
pub use panels::grids::GridSettings;
pub use panels::losses::LossSettings;
pub use store::{
    DataPreview, EvalSummary, GridImage, Intake, JobKind, JobView, LatentSettings, Metrics, RealisedSwaps, RunData, RunId, RunStatus, SampleSettings,
    TransferSettings, ViewGrid,
};
