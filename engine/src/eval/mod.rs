//! Evaluation (SPEC §5): sample-quality metrics on feature vectors.

pub mod inception;
pub mod metrics;
