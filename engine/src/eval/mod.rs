//! Evaluation (SPEC §5): sample-quality metrics on feature vectors.

pub mod metrics;
