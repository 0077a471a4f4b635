//! The DDPM U-Net of SPEC §2 and its presets.

pub mod expert;
pub mod presets;
pub mod reference;
pub mod unet;

pub use presets::Preset;
pub use unet::{ClassCond, ForwardFlops, UNet, UNetConfig, UNetOutput, timestep_embedding};
