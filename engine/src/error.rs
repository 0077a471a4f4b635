//! One error type for the engine: every variant says which file or option and what was expected.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {message}")]
    Data { path: PathBuf, message: String },
    #[error("option `{option}`: {message}")]
    Option { option: String, message: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A step went non-finite; the run's last good checkpoint, if it wrote one.
    #[error("{cause}; {}", last_good(.last_checkpoint))]
    NonFinite { cause: NonFinite, last_checkpoint: Option<PathBuf> },
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// A training step whose loss or gradient norm is not finite; the step left the model as it was.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("training stopped at step {step}: the loss became {value} (not finite)")]
pub struct NonFinite {
    /// The step that failed (1-based, as the metrics count).
    pub step: u64,
    pub value: f64,
}

fn last_good(checkpoint: &Option<PathBuf>) -> String {
    match checkpoint {
        Some(path) => format!("the last good checkpoint is {}", path.display()),
        None => "no checkpoint was written before it".to_string(),
    }
}

impl Error {
    pub fn data(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Data { path: path.into(), message: message.into() }
    }
    pub fn option(option: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Option { option: option.into(), message: message.into() }
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

/// An option's text that does not parse (the CLI spellings in `ltlab-types`): the same message.
impl From<ltlab_types::ParseError> for Error {
    fn from(e: ltlab_types::ParseError) -> Self {
        Error::option(e.option, e.message)
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
/// crash never leaves a half-written file behind.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = dir.join(format!(".{}.tmp", path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()));
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
