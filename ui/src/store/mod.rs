//! The run store as the panels see it, and what travels with it, one module per job: every open
//! run's record and the series derived from it (`run`), its per-step log in columns (`metrics`), the settings the views ask the host to
//! compute with (`settings`), how those settings are written as CLI commands and labels
//! (`codec`), the config diff of the compare view (`config_diff`), and the messages the host
//! feeds the lab (`intake`), one at a time, drained once per frame.

mod codec;
mod config_diff;
mod intake;
mod metrics;
mod run;
mod settings;

pub use config_diff::{config_diff, flatten_toml};
pub use intake::{DataPreview, Intake, JobKind, JobView};
pub use metrics::Metrics;
pub use run::{EvalSummary, GridImage, RealisedSwaps, RunData, RunId, RunStatus, ViewGrid};
pub use settings::{LatentSettings, SampleSettings, TransferSettings};
