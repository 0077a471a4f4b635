//! The training loop, its checkpoints, the run directory and the engine thread.

pub mod checkpoint;
pub mod config;
pub mod engine;
pub mod import;
pub mod optim;
pub mod run_dir;
pub mod trainer;

pub use config::{LabelDrop, TrainConfig};
pub use trainer::Trainer;
