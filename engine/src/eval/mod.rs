//! Evaluation (SPEC §5): feature extractors, sample-quality metrics, per-class and split
//! reports, and what `ltlab eval` scores (`modes`: a run, two folders, two feature files).

pub mod domain;
pub mod feature_file;
pub mod features;
pub mod inception;
pub mod metrics;
pub mod modes;
pub mod reference;
pub mod report;
