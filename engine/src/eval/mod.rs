//! Evaluation (SPEC §5): feature extractors, sample-quality metrics, per-class and split
//! reports.

pub mod domain;
pub mod feature_file;
pub mod features;
pub mod inception;
pub mod metrics;
pub mod reference;
pub mod report;
