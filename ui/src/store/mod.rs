//! The run store as the panels see it: the run record, its log in columns, the view settings and
//! the messages the host feeds the lab are `ltlab-types`' (one definition for the engine host,
//! the server and the page); the config diff of the compare view is the lab's own.

mod config_diff;

pub use config_diff::{config_diff, flatten_toml};
pub use ltlab_types::{
    DataPreview, EvalSummary, GridImage, HostCommand, Intake, JobKind, JobView, LatentSettings, Metrics, RealisedSwaps, RunData, RunHeader, RunId, RunStatus,
    SampleSettings, TransferSettings, ViewGrid,
};
