//! The lab's panels over a run store. Plain egui: no Burn, no threads, no files — the host
//! (desktop app, later the web app) feeds `Intake` messages and carries out `UiCommand`s.

pub mod lab;
mod panels;
pub mod smooth;
pub mod store;

pub use lab::{Lab, LabState, NewRun, UiCommand, View};
pub use store::{EvalSummary, GridImage, Intake, JobView, LatentSettings, RealisedSwaps, RunData, RunId, RunStatus, TransferSettings};
