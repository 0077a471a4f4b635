//! Analyses of data and trained runs: OC's transfer probability, per-class loss and the
//! bottleneck's class structure and its 2-D maps.

pub mod classes;
pub mod embed;
pub mod latents;
pub mod overlap;
pub mod transfer;
