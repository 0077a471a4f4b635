//! Analyses of data and trained runs: OC's transfer probability, per-class loss and the
//! bottleneck's class structure.

pub mod transfer;
pub mod classes;
