//! ltlab's training engine: data, model, diffusion, training loop, checkpoints.
//! No UI code; the lab and the CLI talk to it through [`train::engine`].

pub mod analysis;
pub mod backend;
pub mod data;
pub mod diffusion;
pub mod error;
pub mod eval;
pub mod geometry;
pub mod grid;
pub mod methods;
pub mod model;
pub mod ops;
pub mod rng;
pub mod train;
pub mod weights;

pub use error::{Error, Result};

/// The version recorded in every run.
pub const CODE_VERSION: &str = env!("CARGO_PKG_VERSION");
pub use burn;
