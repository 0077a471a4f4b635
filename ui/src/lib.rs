//! The lab's panels over a run store. Plain egui: no Burn, no threads, no files — the host
//! (desktop app, web app) feeds `Intake` messages and carries out `UiCommand`s; the run store's
//! types and the protocol are `ltlab-types`'.

mod command;
pub mod export;
pub mod lab;
mod panels;
pub mod series;
pub mod store;

pub use lab::{ExportData, Lab, LabState, NewRun, UiCommand, VIEWS, View, ViewEntry};
pub use panels::grids::GridSettings;
pub use panels::losses::LossSettings;
